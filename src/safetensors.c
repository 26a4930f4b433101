/* safetensors.c — reading (mmap, every rule of the format checked), converting (F32/F16/BF16 to
 * f32), sharded sets (model.safetensors.index.json) and atomic writing of safetensors files.
 *
 * Format: u64 little-endian header length N, N bytes of JSON header
 *   {"__metadata__": {str: str}?, NAME: {"dtype": D, "shape": [..], "data_offsets": [b, e]}, ...}
 * then the data section; offsets are relative to the data section start.
 *
 * Rules enforced on read (each failure is BMOJO_EFORMAT naming the file, the rule and the tensor):
 * file >= 8 bytes; N <= 100,000,000 and 8 + N <= file size; the header is strict JSON (see
 * json.c: duplicate keys are rejected, hence duplicate tensor names too) and an object; each
 * tensor entry has exactly the keys dtype/shape/data_offsets (unknown keys are rejected: a
 * strict reader should not silently ignore what it does not understand); dtype is a known name;
 * shape has <= 8 non-negative integer dims; data_offsets = two non-negative integers with
 * begin <= end; nelem * dtype size == end - begin computed with overflow checks; end within the
 * data section; byte ranges sorted by begin are contiguous and cover the whole data section
 * ("overlapping" / "gap" / "out of bounds" are reported distinctly); names are unique and contain
 * no NUL. __metadata__ must be an object of strings.
 *
 * Byte order: the host is assumed little-endian (x86, ARM), like the format; tensor data is
 * handed out as raw bytes, only the header length is decoded byte by byte.
 * Tensor data inside the file need not be aligned, so conversions go through memcpy.
 */
#include "half.h"
#include "safetensors.h"

#include "error.h"
#include "file_read.h"
#include "json.h"
#include "safetensors_index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BM_ST_MAX_HEADER 100000000ull

static const char *const dtype_names[BM_DT_COUNT] = {"F32", "F16", "BF16", "F64", "I64",
                                                     "I32", "I16", "I8",   "U8",  "BOOL"};
static const size_t dtype_sizes[BM_DT_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

size_t bm_dtype_size(bm_dtype t)
{
    return (unsigned)t < BM_DT_COUNT ? dtype_sizes[t] : 0;
}

const char *bm_dtype_name(bm_dtype t)
{
    return (unsigned)t < BM_DT_COUNT ? dtype_names[t] : "invalid";
}

/* ---- small growable string, for header JSON ---- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v)
{
    char t[32];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    sb_str(b, t);
}

/* Writes s[0..n) as a JSON string literal: quotes, backslashes and control bytes escaped,
 * everything else (UTF-8) as is. */
static void sb_json_string(sbuf *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char t[8];
        if (c == '"' || c == '\\') {
            t[0] = '\\';
            t[1] = (char)c;
            sb_put(b, t, 2);
        } else if (c < 0x20) {
            const char *short_esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
                                  : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (short_esc) {
                sb_str(b, short_esc);
            } else {
                snprintf(t, sizeof t, "\\u%04x", c);
                sb_str(b, t);
            }
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* 1 if s is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF). The reader's
 * JSON parser rejects anything else, so the writer must not produce it. */
static int valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned char c = *s;
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            s++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (size_t i = 1; i < n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0; /* also stops at the NUL terminator */
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n;
    }
    return 1;
}

/* a * b into *out; 0 on uint64 overflow. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

/* ---- reading ---- */

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const bm_st_tensor *)a)->name, ((const bm_st_tensor *)b)->name);
}

static int cmp_by_range(const void *a, const void *b)
{
    const bm_st_tensor *x = *(const bm_st_tensor *const *)a, *y = *(const bm_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Reads the whole file into memory: mmap (read-only), else read() into a buffer (e.g. file
 * systems without mmap). */
static int load_file(const char *path, bm_st_file *f)
{
    int fd;
    int rc = bm_open_regular(path, "safetensors file", &fd);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bm_fail(BMOJO_EIO, "cannot stat safetensors file %s: %s", path, strerror(e));
    }
    if (st.st_size < 8) {
        close(fd);
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: file is %lld bytes, shorter than the 8-byte header length",
                       path, (long long)st.st_size);
    }
    if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
        close(fd);
        return bm_fail(BMOJO_EIO, "safetensors file %s is too large for this address space", path);
    }
    size_t size = (size_t)st.st_size;
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
        f->file = m;
        f->file_size = size;
        f->mapped = 1;
        close(fd);
        return 0;
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        close(fd);
        return bm_fail(BMOJO_ENOMEM, "safetensors file %s: cannot allocate %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(buf);
            close(fd);
            return bm_fail(BMOJO_EIO, "cannot read safetensors file %s: %s", path,
                           e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    f->file = buf;
    f->file_size = size;
    f->mapped = 0;
    return 0;
}

/* Serializes a validated __metadata__ object (string values) compactly. */
static int metadata_to_json(const bm_json *m, char **out)
{
    sbuf b = {0};
    sb_put(&b, "{", 1);
    for (size_t i = 0; i < m->count; i++) {
        if (i)
            sb_put(&b, ",", 1);
        sb_json_string(&b, m->keys[i], strlen(m->keys[i]));
        sb_put(&b, ":", 1);
        sb_json_string(&b, m->items[i].string, m->items[i].string_len);
    }
    sb_put(&b, "}", 1);
    if (b.oom) {
        free(b.s);
        return BMOJO_ENOMEM;
    }
    *out = b.s;
    return 0;
}

static int parse_u64_array_item(const bm_json *v, uint64_t *out)
{
    if (v->type != BM_JSON_NUMBER || !v->is_integer || v->integer < 0)
        return 0;
    *out = (uint64_t)v->integer;
    return 1;
}

/* Validates one tensor entry into t (t->name already set). */
static int parse_entry(const char *path, const bm_json *e, bm_st_tensor *t, uint64_t data_len)
{
    const char *nm = t->name;
    if (e->type != BM_JSON_OBJECT)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': entry is not a JSON object", path, nm);
    const bm_json *dt = NULL, *shape = NULL, *offs = NULL;
    for (size_t i = 0; i < e->count; i++) {
        const char *k = e->keys[i];
        if (strcmp(k, "dtype") == 0)
            dt = &e->items[i];
        else if (strcmp(k, "shape") == 0)
            shape = &e->items[i];
        else if (strcmp(k, "data_offsets") == 0)
            offs = &e->items[i];
        else
            return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': unknown key '%.100s' in entry", path, nm, k);
    }
    if (!dt || !shape || !offs)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': missing key '%s'", path, nm,
                       !dt ? "dtype" : !shape ? "shape" : "data_offsets");

    if (dt->type != BM_JSON_STRING)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': dtype is not a string", path, nm);
    int found = -1;
    for (int i = 0; i < BM_DT_COUNT; i++)
        if (strcmp(dt->string, dtype_names[i]) == 0 && dt->string_len == strlen(dtype_names[i]))
            found = i;
    if (found < 0)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': unknown dtype '%.32s'", path, nm, dt->string);
    t->dtype = (bm_dtype)found;

    if (shape->type != BM_JSON_ARRAY)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': shape is not an array", path, nm);
    if (shape->count > BM_ST_MAX_DIMS)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': shape has %zu dims, more than %d",
                       path, nm, shape->count, BM_ST_MAX_DIMS);
    t->ndim = (int)shape->count;
    uint64_t nelem = 1;
    int overflow = 0;
    for (size_t i = 0; i < shape->count; i++) {
        const bm_json *d = &shape->items[i];
        if (d->type != BM_JSON_NUMBER || !d->is_integer)
            return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': shape[%zu] is not an integer", path, nm, i);
        if (d->integer < 0)
            return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': shape[%zu] = %lld is negative",
                           path, nm, i, (long long)d->integer);
        t->shape[i] = d->integer;
        /* Keep multiplying after an overflow only to notice a later zero dim (then nelem = 0). */
        if (!mul_u64(nelem, (uint64_t)d->integer, &nelem))
            overflow = 1;
    }
    for (size_t i = 0; i < shape->count; i++)
        if (t->shape[i] == 0)
            overflow = 0, nelem = 0;
    if (overflow)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': shape element count overflows uint64", path, nm);
    t->nelem = nelem;
    uint64_t bytes;
    if (!mul_u64(nelem, dtype_sizes[t->dtype], &bytes))
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': byte size (%llu elements of %s) overflows uint64",
                       path, nm, (unsigned long long)nelem, dtype_names[t->dtype]);

    if (offs->type != BM_JSON_ARRAY || offs->count != 2)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': data_offsets is not an array of two integers", path, nm);
    if (!parse_u64_array_item(&offs->items[0], &t->begin) || !parse_u64_array_item(&offs->items[1], &t->end))
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': data_offsets are not non-negative integers", path, nm);
    if (t->begin > t->end)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s': data_offsets begin > end (%llu > %llu)", path, nm,
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    if (bytes != t->end - t->begin)
        return bm_fail(BMOJO_EFORMAT,
                       "safetensors file %s: tensor '%s': size mismatch: shape holds %llu bytes of %s but data_offsets [%llu, %llu] span %llu",
                       path, nm, (unsigned long long)bytes, dtype_names[t->dtype], (unsigned long long)t->begin,
                       (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
    if (t->end > data_len)
        return bm_fail(BMOJO_EFORMAT,
                       "safetensors file %s: tensor '%s': data_offsets [%llu, %llu] out of bounds of the %llu-byte data section (file truncated?)",
                       path, nm, (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_len);
    return 0;
}

/* Checks the tensors' byte ranges: sorted by begin they must tile [0, data_len) exactly. */
static int check_layout(const char *path, bm_st_file *f, uint64_t data_len)
{
    if (f->n == 0) {
        if (data_len)
            return bm_fail(BMOJO_EFORMAT, "safetensors file %s: gap: %llu data bytes but no tensors", path,
                           (unsigned long long)data_len);
        return 0;
    }
    bm_st_tensor **order = malloc((size_t)f->n * sizeof *order);
    if (!order)
        return bm_fail(BMOJO_ENOMEM, "safetensors file %s: out of memory", path);
    for (int i = 0; i < f->n; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n, sizeof *order, cmp_by_range);
    int rc = 0;
    uint64_t pos = 0;
    const bm_st_tensor *prev = NULL;
    for (int i = 0; i < f->n && !rc; i++) {
        const bm_st_tensor *t = order[i];
        if (t->begin < pos)
            rc = bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] are overlapping",
                         path, prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end, t->name,
                         (unsigned long long)t->begin, (unsigned long long)t->end);
        else if (t->begin > pos)
            rc = bm_fail(BMOJO_EFORMAT, "safetensors file %s: gap of %llu bytes in the data section before tensor '%s' (bytes %llu to %llu are not covered)",
                         path, (unsigned long long)(t->begin - pos), t->name, (unsigned long long)pos,
                         (unsigned long long)t->begin);
        pos = t->end;
        prev = t;
    }
    if (!rc && pos != data_len)
        rc = bm_fail(BMOJO_EFORMAT, "safetensors file %s: gap: %llu trailing bytes of the data section after tensor '%s' are not covered",
                     path, (unsigned long long)(data_len - pos), prev->name);
    free(order);
    return rc;
}

static int open_checked(const char *path, bm_st_file *f)
{
    int rc = load_file(path, f);
    if (rc)
        return rc;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | f->file[i];
    if (n > BM_ST_MAX_HEADER)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: header length %llu exceeds the limit of %llu bytes", path,
                       (unsigned long long)n, BM_ST_MAX_HEADER);
    if (n > f->file_size - 8)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: header length %llu runs past the end of the %zu-byte file",
                       path, (unsigned long long)n, f->file_size);
    uint64_t data_len = f->file_size - 8 - n;
    f->data = f->file + 8 + n;

    /* Tensor names are C strings: an escaped NUL (\u0000) would silently truncate a name, so
     * the header may not contain one anywhere. A backslash starts an escape when an even
     * number of backslashes precede it. */
    const char *hdr = (const char *)f->file + 8;
    for (uint64_t i = 0, run = 0; i < n; i++) {
        if (hdr[i] != '\\') {
            run = 0;
            continue;
        }
        if (run % 2 == 0 && n - i >= 6 && memcmp(hdr + i, "\\u0000", 6) == 0)
            return bm_fail(BMOJO_EFORMAT, "safetensors file %s: header contains an escaped NUL character (\\u0000) at byte %llu",
                           path, (unsigned long long)i);
        run++;
    }

    char jerr[256];
    bm_json *h = NULL;
    rc = bm_json_parse((const char *)f->file + 8, (size_t)n, &h, jerr, sizeof jerr);
    if (rc == BMOJO_ENOMEM)
        return bm_fail(rc, "safetensors file %s: out of memory parsing the header", path);
    if (rc)
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: header is not valid JSON: %s", path, jerr);
    if (h->type != BM_JSON_OBJECT) {
        bm_json_free(h);
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: header is not a JSON object", path);
    }

    f->tensors = calloc(h->count ? h->count : 1, sizeof *f->tensors);
    if (!f->tensors) {
        bm_json_free(h);
        return bm_fail(BMOJO_ENOMEM, "safetensors file %s: out of memory", path);
    }
    for (size_t i = 0; i < h->count && !rc; i++) {
        const char *key = h->keys[i];
        const bm_json *v = &h->items[i];
        if (strcmp(key, "__metadata__") == 0) {
            if (v->type != BM_JSON_OBJECT) {
                rc = bm_fail(BMOJO_EFORMAT, "safetensors file %s: __metadata__ is not a JSON object", path);
                break;
            }
            for (size_t k = 0; k < v->count && !rc; k++)
                if (v->items[k].type != BM_JSON_STRING)
                    rc = bm_fail(BMOJO_EFORMAT, "safetensors file %s: __metadata__ value of '%.100s' is not a string",
                                 path, v->keys[k]);
            if (!rc && metadata_to_json(v, &f->metadata_json))
                rc = bm_fail(BMOJO_ENOMEM, "safetensors file %s: out of memory", path);
            continue;
        }
        bm_st_tensor *t = &f->tensors[f->n];
        t->name = strdup(key);
        if (!t->name) {
            rc = bm_fail(BMOJO_ENOMEM, "safetensors file %s: out of memory", path);
            break;
        }
        f->n++;
        rc = parse_entry(path, v, t, data_len);
    }
    bm_json_free(h);
    if (rc)
        return rc;

    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_by_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->tensors[i].name, f->tensors[i - 1].name) == 0)
            return bm_fail(BMOJO_EFORMAT, "safetensors file %s: duplicate tensor name '%s'", path, f->tensors[i].name);
    return check_layout(path, f, data_len);
}

int bm_st_open(const char *path, bm_st_file *out)
{
    memset(out, 0, sizeof *out);
    if (!path)
        return bm_fail(BMOJO_EINVAL, "bm_st_open: path is NULL");
    int rc = open_checked(path, out);
    if (!rc) {
        out->path = strdup(path);
        if (!out->path)
            rc = bm_fail(BMOJO_ENOMEM, "safetensors file %s: out of memory", path);
    }
    if (rc)
        bm_st_close(out);
    return rc;
}

void bm_st_close(bm_st_file *f)
{
    if (!f)
        return;
    if (f->file) {
        if (f->mapped)
            munmap(f->file, f->file_size);
        else
            free(f->file);
    }
    for (int i = 0; i < f->n; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    free(f->metadata_json);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const bm_st_tensor *bm_st_find(const bm_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0)
            return &f->tensors[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const void *bm_st_data(const bm_st_file *f, const bm_st_tensor *t)
{
    return f->data + t->begin;
}

int bm_st_to_f32(const bm_st_file *f, const bm_st_tensor *t, float *dst)
{
    const uint8_t *src = bm_st_data(f, t);
    uint64_t n = t->nelem;
    switch (t->dtype) {
    case BM_DT_F32:
        if (n)
            memcpy(dst, src, (size_t)n * 4);
        return 0;
    case BM_DT_F16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bm_half_to_float(h);
        }
        return 0;
    case BM_DT_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return 0;
    default:
        return bm_fail(BMOJO_EFORMAT, "safetensors file %s: tensor '%s' has dtype %s, which cannot be converted to f32",
                       f->path ? f->path : "?", t->name, bm_dtype_name(t->dtype));
    }
}

/* ---- sharded sets ---- */

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/')
        p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

static int cmp_set_entry(const void *a, const void *b)
{
    return strcmp(((const bm_st_set_entry *)a)->name, ((const bm_st_set_entry *)b)->name);
}

static int open_index(const char *dir, const char *index_path, bm_st_set *s)
{
    char *text = NULL;
    size_t len = 0;
    int rc = bm_read_file(index_path, BM_ST_INDEX_MAX_BYTES, &text, &len);
    if (rc == BMOJO_EFORMAT)
        return bm_fail(rc, "%s is larger than %zu bytes (the limit for a shard index)", index_path,
                       BM_ST_INDEX_MAX_BYTES);
    if (rc)
        return rc;
    bm_st_index ix;
    rc = bm_st_index_parse(text, len, index_path, &ix);
    free(text);
    if (rc)
        return rc;
    s->files = calloc((size_t)ix.n_shards, sizeof *s->files);
    if (!s->files) {
        rc = bm_fail(BMOJO_ENOMEM, "%s: out of memory", index_path);
        goto done;
    }
    for (int k = 0; k < ix.n_shards; k++) {
        char *p = join_path(dir, ix.shards[k]);
        if (!p) {
            rc = bm_fail(BMOJO_ENOMEM, "%s: out of memory", index_path);
            goto done;
        }
        rc = bm_st_open(p, &s->files[k]);
        free(p);
        if (rc) {
            rc = bm_fail_context(rc, "shard '%s' listed in %s", ix.shards[k], index_path);
            goto done;
        }
        s->n_files = k + 1;
    }
    /* Each weight_map tensor must be in the shard it names. */
    for (size_t i = 0; i < ix.n; i++) {
        int k = ix.shard_of[i];
        if (!bm_st_find(&s->files[k], ix.names[i])) {
            rc = bm_fail(BMOJO_EFORMAT, "%s: tensor '%s' is mapped to shard '%s' but that shard has no such tensor",
                         index_path, ix.names[i], ix.shards[k]);
            goto done;
        }
    }
    /* The lookup table of the set; a name in two shards would make lookups ambiguous. */
    size_t total = 0;
    for (int k = 0; k < s->n_files; k++)
        total += (size_t)s->files[k].n;
    s->by_name = malloc((total ? total : 1) * sizeof *s->by_name);
    if (!s->by_name) {
        rc = bm_fail(BMOJO_ENOMEM, "%s: out of memory", index_path);
        goto done;
    }
    total = 0;
    for (int k = 0; k < s->n_files; k++)
        for (int t = 0; t < s->files[k].n; t++)
            s->by_name[total++] = (bm_st_set_entry){s->files[k].tensors[t].name, k, &s->files[k].tensors[t]};
    s->n_names = total;
    qsort(s->by_name, total, sizeof *s->by_name, cmp_set_entry);
    for (size_t i = 1; i < total; i++)
        if (strcmp(s->by_name[i].name, s->by_name[i - 1].name) == 0) {
            int a = s->by_name[i - 1].file, b = s->by_name[i].file;
            rc = bm_fail(BMOJO_EFORMAT, "%s: tensor '%s' appears in two shards ('%s' and '%s')", index_path,
                         s->by_name[i].name, ix.shards[a < b ? a : b], ix.shards[a < b ? b : a]);
            goto done;
        }
done:
    bm_st_index_free(&ix);
    return rc;
}

int bm_st_set_open(const char *dir, bm_st_set *out)
{
    memset(out, 0, sizeof *out);
    if (!dir)
        return bm_fail(BMOJO_EINVAL, "bm_st_set_open: dir is NULL");
    char *single = join_path(dir, "model.safetensors");
    char *index = join_path(dir, "model.safetensors.index.json");
    int rc = 0;
    if (!single || !index) {
        rc = bm_fail(BMOJO_ENOMEM, "bm_st_set_open %s: out of memory", dir);
    } else if (file_exists(single)) {
        out->files = calloc(1, sizeof *out->files);
        if (!out->files) {
            rc = bm_fail(BMOJO_ENOMEM, "bm_st_set_open %s: out of memory", dir);
        } else {
            rc = bm_st_open(single, &out->files[0]);
            if (!rc)
                out->n_files = 1;
        }
    } else if (file_exists(index)) {
        rc = open_index(dir, index, out);
    } else {
        rc = bm_fail(BMOJO_EIO, "no model.safetensors or model.safetensors.index.json in %s", dir);
    }
    free(single);
    free(index);
    if (rc)
        bm_st_set_close(out);
    return rc;
}

void bm_st_set_close(bm_st_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++)
        bm_st_close(&s->files[i]);
    free(s->files);
    free(s->by_name);
    memset(s, 0, sizeof *s);
}

const bm_st_tensor *bm_st_set_find(const bm_st_set *s, const char *name, const bm_st_file **file)
{
    if (file)
        *file = NULL;
    if (!s || !name)
        return NULL;
    if (s->by_name) {
        size_t lo = 0, hi = s->n_names;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(name, s->by_name[mid].name);
            if (c == 0) {
                if (file)
                    *file = &s->files[s->by_name[mid].file];
                return s->by_name[mid].tensor;
            }
            if (c < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        return NULL;
    }
    for (int i = 0; i < s->n_files; i++) {
        const bm_st_tensor *t = bm_st_find(&s->files[i], name);
        if (t) {
            if (file)
                *file = &s->files[i];
            return t;
        }
    }
    return NULL;
}

/* ---- writing ---- */

typedef struct {
    const bm_st_out *t;
    int index; /* position in the caller's array */
    uint64_t bytes;
} out_ref;

static int cmp_out_ref(const void *a, const void *b)
{
    return strcmp(((const out_ref *)a)->t->name, ((const out_ref *)b)->t->name);
}

/* Checks the tensors and metadata and builds the header (padded so the data section starts
 * 8-byte aligned); w->begin / w->bytes get each tensor's place in the data section, in the
 * caller's order. need_data: every non-empty tensor must come with its data. */
static int build_header(const char *path, const bm_st_out *tensors, int n, const char *const *metadata, int need_data,
                        sbuf *h, bm_st_writer *w)
{
    if (!path || n < 0 || (n > 0 && !tensors))
        return bm_fail(BMOJO_EINVAL, "writing %s: invalid arguments", path ? path : "(null)");
    out_ref *refs = calloc(n ? (size_t)n : 1, sizeof *refs);
    w->begin = calloc(n ? (size_t)n : 1, sizeof *w->begin);
    w->bytes = calloc(n ? (size_t)n : 1, sizeof *w->bytes);
    w->n = n;
    if (!refs || !w->begin || !w->bytes) {
        free(refs);
        return bm_fail(BMOJO_ENOMEM, "writing %s: out of memory", path);
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const bm_st_out *t = &tensors[i];
        refs[i].t = t;
        refs[i].index = i;
        if (!t->name || !valid_utf8(t->name) || strcmp(t->name, "__metadata__") == 0) {
            rc = bm_fail(BMOJO_EINVAL, "writing %s: tensor %d has an invalid name (NULL, not UTF-8 or __metadata__)", path, i);
            break;
        }
        if ((unsigned)t->dtype >= BM_DT_COUNT || t->ndim < 0 || t->ndim > BM_ST_MAX_DIMS) {
            rc = bm_fail(BMOJO_EINVAL, "writing %s: tensor '%s': invalid dtype or ndim", path, t->name);
            break;
        }
        uint64_t ne = 1;
        int ovf = 0, zero = 0;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) {
                rc = bm_fail(BMOJO_EINVAL, "writing %s: tensor '%s': negative dimension", path, t->name);
                break;
            }
            if (t->shape[d] == 0)
                zero = 1;
            if (!mul_u64(ne, (uint64_t)t->shape[d], &ne))
                ovf = 1;
        }
        if (rc)
            break;
        if (zero)
            ne = 0, ovf = 0;
        if (ovf || !mul_u64(ne, dtype_sizes[t->dtype], &refs[i].bytes) || refs[i].bytes > SIZE_MAX) {
            rc = bm_fail(BMOJO_EINVAL, "writing %s: tensor '%s': size overflows", path, t->name);
            break;
        }
        if (need_data && refs[i].bytes && !t->data)
            rc = bm_fail(BMOJO_EINVAL, "writing %s: tensor '%s': data is NULL", path, t->name);
    }
    if (!rc)
        qsort(refs, (size_t)n, sizeof *refs, cmp_out_ref);
    for (int i = 1; i < n && !rc; i++)
        if (strcmp(refs[i].t->name, refs[i - 1].t->name) == 0)
            rc = bm_fail(BMOJO_EINVAL, "writing %s: duplicate tensor name '%s'", path, refs[i].t->name);
    if (rc) {
        free(refs);
        return rc;
    }

    sb_put(h, "{", 1);
    int first = 1;
    if (metadata && metadata[0]) {
        sb_str(h, "\"__metadata__\":{");
        for (int k = 0; metadata[k]; k += 2) {
            if (!metadata[k + 1] || !valid_utf8(metadata[k]) || !valid_utf8(metadata[k + 1])) {
                rc = bm_fail(BMOJO_EINVAL, "writing %s: metadata entry %d is missing its value or is not UTF-8", path, k / 2);
                break;
            }
            for (int q = 0; q < k; q += 2)
                if (strcmp(metadata[q], metadata[k]) == 0)
                    rc = bm_fail(BMOJO_EINVAL, "writing %s: duplicate metadata key '%s'", path, metadata[k]);
            if (rc)
                break;
            if (k)
                sb_put(h, ",", 1);
            sb_json_string(h, metadata[k], strlen(metadata[k]));
            sb_put(h, ":", 1);
            sb_json_string(h, metadata[k + 1], strlen(metadata[k + 1]));
        }
        sb_put(h, "}", 1);
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < n && !rc; i++) {
        const bm_st_out *t = refs[i].t;
        if (!first)
            sb_put(h, ",", 1);
        first = 0;
        sb_json_string(h, t->name, strlen(t->name));
        sb_str(h, ":{\"dtype\":\"");
        sb_str(h, dtype_names[t->dtype]);
        sb_str(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d)
                sb_put(h, ",", 1);
            sb_u64(h, (uint64_t)t->shape[d]);
        }
        sb_str(h, "],\"data_offsets\":[");
        sb_u64(h, off);
        sb_put(h, ",", 1);
        w->begin[refs[i].index] = off;
        w->bytes[refs[i].index] = refs[i].bytes;
        off += refs[i].bytes;
        sb_u64(h, off);
        sb_str(h, "]}");
    }
    sb_put(h, "}", 1);
    while (!h->oom && h->len % 8)
        sb_put(h, " ", 1);
    free(refs);
    if (!rc && h->oom)
        rc = bm_fail(BMOJO_ENOMEM, "writing %s: out of memory", path);
    if (!rc && h->len > BM_ST_MAX_HEADER)
        rc = bm_fail(BMOJO_EINVAL, "writing %s: header of %zu bytes exceeds the format's limit", path, h->len);
    w->data_size = off;
    return rc;
}

static void writer_free(bm_st_writer *w)
{
    free(w->begin);
    free(w->bytes);
    w->begin = w->bytes = NULL;
    w->n = 0;
}

int bm_st_writer_open(bm_st_writer *w, const char *path, const bm_st_out *tensors, int n,
                      const char *const *metadata)
{
    memset(w, 0, sizeof *w);
    w->af.fd = -1;
    sbuf h = {0};
    int rc = build_header(path, tensors, n, metadata, 0, &h, w);
    if (!rc)
        rc = bm_atomic_open(&w->af, path, 0644);
    if (!rc) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        w->data_start = 8 + (uint64_t)h.len;
        rc = bm_atomic_write(&w->af, len8, 8);
        if (!rc)
            rc = bm_atomic_write(&w->af, h.s, h.len);
        /* The file has its full size from the start: parts may come in any order, and a tensor
         * nobody wrote reads as zeros rather than cutting the file short. */
        if (!rc && w->data_size && ftruncate(w->af.fd, (off_t)(w->data_start + w->data_size)) != 0)
            rc = bm_fail(BMOJO_EIO, "cannot size %s to %llu bytes: %s", w->af.tmp,
                         (unsigned long long)(w->data_start + w->data_size), strerror(errno));
        if (rc)
            bm_atomic_abort(&w->af);
    }
    free(h.s);
    if (rc)
        writer_free(w);
    return rc;
}

int bm_st_writer_put(bm_st_writer *w, int index, uint64_t offset, const void *data, size_t n)
{
    if (!w || w->af.fd < 0 || index < 0 || index >= w->n || (n && !data))
        return bm_fail(BMOJO_EINVAL, "bm_st_writer_put: invalid arguments");
    if (offset > w->bytes[index] || n > w->bytes[index] - offset)
        return bm_fail(BMOJO_EINVAL, "bm_st_writer_put %s: bytes [%llu, %llu) are outside tensor %d's %llu bytes",
                       w->af.path, (unsigned long long)offset, (unsigned long long)(offset + n), index,
                       (unsigned long long)w->bytes[index]);
    return bm_atomic_pwrite(&w->af, data, n, w->data_start + w->begin[index] + offset);
}

int bm_st_writer_commit(bm_st_writer *w)
{
    int rc = bm_atomic_commit(&w->af);
    writer_free(w);
    return rc;
}

void bm_st_writer_abort(bm_st_writer *w)
{
    if (!w)
        return;
    bm_atomic_abort(&w->af);
    writer_free(w);
}

int bm_st_write(const char *path, const bm_st_out *tensors, int n, const char *const *metadata)
{
    bm_st_writer w;
    sbuf h = {0};
    memset(&w, 0, sizeof w);
    w.af.fd = -1; /* closed: an abort below must not close descriptor 0 */
    /* checked with need_data first, so a NULL data pointer is refused before any file exists */
    int rc = build_header(path, tensors, n, metadata, 1, &h, &w);
    free(h.s);
    writer_free(&w);
    if (!rc)
        rc = bm_st_writer_open(&w, path, tensors, n, metadata);
    for (int i = 0; i < n && !rc; i++)
        rc = bm_st_writer_put(&w, i, 0, tensors[i].data, (size_t)w.bytes[i]);
    if (rc) {
        bm_st_writer_abort(&w);
        return rc;
    }
    return bm_st_writer_commit(&w);
}
