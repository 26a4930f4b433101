/* data_tokens.c — token files for `bmojo train` and `bmojo eval`, in the spirit of llm.c's data
 * files (a small header, then the ids as a flat array).
 *
 * Layout (all integers little-endian):
 *   offset  0  8 bytes  magic, the ASCII "BMOJOTOK"
 *   offset  8  uint32   version, 1
 *   offset 12  uint32   dtype, the bytes per id: 2 (uint16) or 4 (uint32)
 *   offset 16  uint64   count, the number of ids (>= 1)
 *   offset 24  count * dtype bytes: the ids, in text order
 * The file is exactly 24 + count * dtype bytes: anything shorter is truncated, anything longer is
 * refused too (a count that disagrees with the size means a writer stopped or the header lies).
 * Documents are simply concatenated; a separator token, if wanted, is the tokenizer's business
 * (tools/tokenize_file.py writes what the tokenizer gives).
 *
 * Reading: the file is mapped read-only (a few GB is fine: pages come in as windows touch them);
 * where mmap fails (some file systems) it is read into memory. At open every id is checked against
 * the vocabulary once, so a training step never meets an id the embedding does not have.
 * Ids are assembled from bytes, so a big-endian host reads the same file the same way. */
#include "data_tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bmojo.h"
#include "data_rng.h"
#include "error.h"
#include "file_read.h"
#include "file_write.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

int bm_tokens_parse_header(const char *path, const uint8_t *h, uint64_t file_size, int *dtype, uint64_t *count)
{
    if (file_size == 0)
        return bm_fail(BMOJO_EFORMAT, "token file %s is empty (a token file starts with a %d-byte header)", path,
                       BM_TOKENS_HEADER);
    if (file_size < BM_TOKENS_HEADER)
        return bm_fail(BMOJO_EFORMAT, "token file %s is truncated: %llu bytes, shorter than the %d-byte header", path,
                       (unsigned long long)file_size, BM_TOKENS_HEADER);
    if (memcmp(h, BM_TOKENS_MAGIC, 8) != 0)
        return bm_fail(BMOJO_EFORMAT,
                       "%s is not a token file: wrong magic (the first 8 bytes are %02x %02x %02x %02x %02x %02x "
                       "%02x %02x, not \"" BM_TOKENS_MAGIC "\")",
                       path, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
    uint32_t version = le32(h + 8), dt = le32(h + 12);
    uint64_t n = le64(h + 16);
    if (version != BM_TOKENS_VERSION)
        return bm_fail(BMOJO_EFORMAT, "token file %s has version %u; this build reads version %u", path, version,
                       BM_TOKENS_VERSION);
    if (dt != BM_TOKENS_U16 && dt != BM_TOKENS_U32)
        return bm_fail(BMOJO_EFORMAT, "token file %s has dtype %u; expected 2 (uint16 ids) or 4 (uint32 ids)", path, dt);
    if (n == 0) return bm_fail(BMOJO_EFORMAT, "token file %s holds no token ids (count 0)", path);
    uint64_t have = file_size - BM_TOKENS_HEADER;
    if (n > have / dt) /* n * dt > have, without overflow */
        return bm_fail(BMOJO_EFORMAT,
                       "token file %s is truncated: the header says %llu ids (%llu bytes) but the file has %llu "
                       "bytes after the header",
                       path, (unsigned long long)n, n > UINT64_MAX / dt ? 0ull : (unsigned long long)(n * dt),
                       (unsigned long long)have);
    if (n * dt != have)
        return bm_fail(BMOJO_EFORMAT,
                       "token file %s: count mismatch: the header says %llu ids (%llu bytes) but the file has %llu "
                       "bytes after the header",
                       path, (unsigned long long)n, (unsigned long long)(n * dt), (unsigned long long)have);
    *dtype = (int)dt;
    *count = n;
    return 0;
}

void bm_tokens_close(bm_tokens *t)
{
    if (t->map) munmap(t->map, t->map_len);
    free(t->buf);
    free(t->path);
    memset(t, 0, sizeof *t);
}

/* Reads exactly n bytes at off; a short read means the file shrank under us (truncated). */
static int read_at(int fd, const char *path, void *dst, size_t n, uint64_t off)
{
    uint8_t *p = dst;
    while (n > 0) {
        size_t piece = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t r = pread(fd, p, piece, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return bm_fail(BMOJO_EIO, "cannot read token file %s: %s", path, strerror(errno));
        if (r == 0) return bm_fail(BMOJO_EFORMAT, "token file %s is truncated: it ended while being read", path);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Every id < limit; the first that is not is named with its position. */
static int check_ids(const bm_tokens *t, uint64_t limit, int64_t vocab)
{
    if (t->dtype == BM_TOKENS_U16 && limit > 0xffff) return 0;
    for (uint64_t i = 0; i < t->count; i++) {
        uint32_t v = bm_tokens_at(t, i);
        if (v >= limit) {
            if (vocab > 0)
                return bm_fail(BMOJO_ERANGE,
                               "token file %s: token id %u at position %llu is not below the vocabulary size %lld",
                               t->path, v, (unsigned long long)i, (long long)vocab);
            return bm_fail(BMOJO_ERANGE, "token file %s: token id %u at position %llu is above 2^31 - 1", t->path, v,
                           (unsigned long long)i);
        }
    }
    return 0;
}

int bm_tokens_open(const char *path, int64_t vocab, bm_tokens *t)
{
    memset(t, 0, sizeof *t);
    int fd;
    int st = bm_open_regular(path, "token file", &fd);
    if (st) return st;
    t->path = strdup(path);
    if (!t->path) {
        close(fd);
        return bm_fail(BMOJO_ENOMEM, "opening token file %s: out of host memory", path);
    }
    struct stat sb;
    uint8_t h[BM_TOKENS_HEADER];
    if (fstat(fd, &sb) != 0) st = bm_fail(BMOJO_EIO, "cannot stat token file %s: %s", path, strerror(errno));
    uint64_t size = st ? 0 : (uint64_t)sb.st_size;
    if (!st && size >= BM_TOKENS_HEADER) st = read_at(fd, path, h, sizeof h, 0);
    if (!st) st = bm_tokens_parse_header(path, h, size, &t->dtype, &t->count);
    if (!st && size > SIZE_MAX)
        st = bm_fail(BMOJO_ENOMEM, "token file %s (%llu bytes) does not fit this host's address space", path,
                     (unsigned long long)size);
    if (!st) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            t->map = m;
            t->map_len = (size_t)size;
            t->data = (const uint8_t *)m + BM_TOKENS_HEADER;
        } else {
            size_t n = (size_t)(size - BM_TOKENS_HEADER);
            t->buf = malloc(n);
            if (!t->buf)
                st = bm_fail(BMOJO_ENOMEM, "reading token file %s: out of host memory for %zu bytes", path, n);
            else
                st = read_at(fd, path, t->buf, n, BM_TOKENS_HEADER);
            t->data = t->buf;
        }
    }
    close(fd);
    if (!st) st = check_ids(t, vocab > 0 && vocab <= (int64_t)1 << 31 ? (uint64_t)vocab : (uint64_t)1 << 31, vocab);
    if (st) bm_tokens_close(t);
    return st;
}

int bm_tokens_window(const bm_tokens *t, uint64_t seed, uint64_t index, int T, int32_t *ids, int32_t *targets)
{
    if (T < 1) return bm_fail(BMOJO_EINVAL, "token windows need a sequence length >= 1, not %d", T);
    if (t->count < (uint64_t)T + 1)
        return bm_fail(BMOJO_EINVAL, "token file %s has %llu tokens, fewer than one window of %d + 1", t->path,
                       (unsigned long long)t->count, T);
    bm_rng r;
    bm_rng_seed(&r, BM_RNG_DOM_TOKENS, seed, index);
    uint64_t start = bm_rng_below(&r, t->count - (uint64_t)T);
    for (int j = 0; j < T; j++) {
        ids[j] = (int32_t)bm_tokens_at(t, start + (uint64_t)j);
        targets[j] = (int32_t)bm_tokens_at(t, start + (uint64_t)j + 1);
    }
    return 0;
}

uint64_t bm_tokens_eval_windows(const bm_tokens *t, int T)
{
    if (T < 1 || t->count < 2) return 0;
    return (t->count - 1 + (uint64_t)T - 1) / (uint64_t)T;
}

int bm_tokens_eval_window(const bm_tokens *t, uint64_t w, int T, int32_t *ids, int32_t *targets)
{
    uint64_t nw = bm_tokens_eval_windows(t, T);
    if (T < 1 || w >= nw)
        return bm_fail(BMOJO_EINVAL, "token file %s: evaluation window %llu is past the last (%llu windows of %d)",
                       t->path, (unsigned long long)w, (unsigned long long)nw, T);
    uint64_t base = w * (uint64_t)T;
    for (int j = 0; j < T; j++) {
        uint64_t p = base + (uint64_t)j;
        ids[j] = p < t->count ? (int32_t)bm_tokens_at(t, p) : 0;
        targets[j] = p + 1 < t->count ? (int32_t)bm_tokens_at(t, p + 1) : -1;
    }
    return 0;
}

int bm_tokens_write(const char *path, int dtype, const uint32_t *ids, uint64_t n)
{
    if (dtype != BM_TOKENS_U16 && dtype != BM_TOKENS_U32)
        return bm_fail(BMOJO_EINVAL, "writing token file %s: dtype %d is not 2 (uint16) or 4 (uint32)", path, dtype);
    if (n == 0) return bm_fail(BMOJO_EINVAL, "writing token file %s: no token ids to write", path);
    for (uint64_t i = 0; dtype == BM_TOKENS_U16 && i < n; i++)
        if (ids[i] > 0xffff)
            return bm_fail(BMOJO_ERANGE, "writing token file %s: id %u at position %llu does not fit uint16", path,
                           ids[i], (unsigned long long)i);
    uint8_t h[BM_TOKENS_HEADER];
    memcpy(h, BM_TOKENS_MAGIC, 8);
    uint64_t fields[3] = {BM_TOKENS_VERSION, (uint64_t)dtype, n};
    for (int b = 0; b < 4; b++) {
        h[8 + b] = (uint8_t)(fields[0] >> (8 * b));
        h[12 + b] = (uint8_t)(fields[1] >> (8 * b));
    }
    for (int b = 0; b < 8; b++) h[16 + b] = (uint8_t)(fields[2] >> (8 * b));
    bm_atomic_file af;
    int st = bm_atomic_open(&af, path, 0644);
    if (st) return st;
    st = bm_atomic_write(&af, h, sizeof h);
    /* the ids in little-endian pieces of 64 Ki ids */
    enum { PIECE = 1 << 16 };
    uint8_t *buf = st ? NULL : malloc((size_t)PIECE * 4);
    if (!st && !buf) st = bm_fail(BMOJO_ENOMEM, "writing token file %s: out of host memory", path);
    for (uint64_t i = 0; !st && i < n; i += PIECE) {
        size_t k = n - i < PIECE ? (size_t)(n - i) : PIECE;
        for (size_t j = 0; j < k; j++)
            for (int b = 0; b < dtype; b++) buf[j * (size_t)dtype + (size_t)b] = (uint8_t)(ids[i + j] >> (8 * b));
        st = bm_atomic_write(&af, buf, k * (size_t)dtype);
    }
    free(buf);
    if (st) {
        bm_atomic_abort(&af);
        return st;
    }
    return bm_atomic_commit(&af);
}
