/* data_tokens.h — token files: a flat array of token ids behind a 24-byte header, read for
 * training (random windows) and evaluation (consecutive windows). The layout is defined at the top
 * of data_tokens.c and in docs/training.md, "Data files". */
#ifndef BM_DATA_TOKENS_H
#define BM_DATA_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#define BM_TOKENS_MAGIC "BMOJOTOK"
#define BM_TOKENS_VERSION 1u
#define BM_TOKENS_HEADER 24
enum { BM_TOKENS_U16 = 2, BM_TOKENS_U32 = 4 }; /* the dtype field: bytes per id */

typedef struct {
    char *path;
    int dtype;           /* BM_TOKENS_U16 or BM_TOKENS_U32 */
    uint64_t count;      /* token ids in the file */
    const uint8_t *data; /* the ids, little-endian, count * dtype bytes */
    void *map;           /* the whole file when mapped (map_len bytes), else NULL */
    size_t map_len;
    uint8_t *buf;        /* the ids when read instead (no mmap) */
} bm_tokens;

/* Opens and checks a token file: the header (magic, version, dtype), a size that matches the count
 * exactly, at least one id, and, when vocab > 0, every id < vocab (one pass over the file; the
 * error names the first bad id and its position). Maps the file (reads it when it cannot be
 * mapped). Errors name the file and the problem: BMOJO_EIO (cannot open/read, not a regular file),
 * BMOJO_EFORMAT (the header, the size), BMOJO_ERANGE (an id >= vocab), BMOJO_ENOMEM. */
int bm_tokens_open(const char *path, int64_t vocab, bm_tokens *t);
void bm_tokens_close(bm_tokens *t);

/* The id at position i (< count). */
static inline uint32_t bm_tokens_at(const bm_tokens *t, uint64_t i)
{
    const uint8_t *p = t->data + i * (uint64_t)t->dtype;
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    if (t->dtype == BM_TOKENS_U32) v |= (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return v;
}

/* Training windows. Row r of example `index` under `seed`: a window of T + 1 consecutive tokens
 * starting at a position drawn uniformly from [0, count - T - 1] by the example's own stream
 * (data_rng.h, domain TOKENS); ids = window[0 .. T), targets = window[1 .. T]. Needs count >= T + 1
 * (BMOJO_EINVAL naming the file otherwise). */
int bm_tokens_window(const bm_tokens *t, uint64_t seed, uint64_t index, int T, int32_t *ids, int32_t *targets);

/* Evaluation windows: window w covers tokens [w T, w T + T] (targets are tokens w T + 1 .. w T + T),
 * so the windows together score every token after the first exactly once. The last one may be
 * short: its missing positions get id 0 and target -1. */
uint64_t bm_tokens_eval_windows(const bm_tokens *t, int T);
int bm_tokens_eval_window(const bm_tokens *t, uint64_t w, int T, int32_t *ids, int32_t *targets);

/* Writes a token file atomically (src/file_write.c): dtype BM_TOKENS_U16 or BM_TOKENS_U32, n ids
 * (each must fit the dtype: BMOJO_ERANGE naming the first that does not). */
int bm_tokens_write(const char *path, int dtype, const uint32_t *ids, uint64_t n);

/* Checks a 24-byte header against a file of file_size bytes; sets *dtype and *count. The messages
 * start with `path`. Exposed for the fuzz target and the tests. */
int bm_tokens_parse_header(const char *path, const uint8_t *h, uint64_t file_size, int *dtype, uint64_t *count);

#endif
