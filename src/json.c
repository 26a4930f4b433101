/* json.c — a strict RFC 8259 JSON parser into a tree (bm_json), used for safetensors headers,
 * model.safetensors.index.json and Hugging Face config.json.
 *
 * Decisions (why):
 * - Strict: the input must be valid UTF-8 (overlong forms, encoded surrogates and code points
 *   above U+10FFFF are rejected), control characters must be escaped inside strings, numbers
 *   follow the RFC grammar exactly (no leading zeros, no '+', no bare '.', no NaN/Infinity),
 *   and anything but whitespace after the top-level value is an error. Loose parsing of model
 *   files hides corruption.
 * - Duplicate keys inside one object are an ERROR. RFC 8259 leaves their meaning open; in a
 *   safetensors header a duplicate tensor name is an ambiguity we must not resolve silently,
 *   and no well-formed config.json has them. Checked by sorting the keys (n log n), so a huge
 *   header with many tensors stays fast.
 * - Numbers: `number` always holds the double value (strtod, so correctly rounded); a literal
 *   without fraction and exponent that fits int64 also sets is_integer and the exact `integer`
 *   (so offsets above 2^53 stay exact). A number whose double value overflows to infinity is
 *   an error ("number out of range") rather than a silent inf.
 * - Nesting deeper than 64 arrays/objects is an error; recursion depth is bounded by that same
 *   limit (the parser and bm_json_free recurse at most 64 levels).
 * - Every error message names the byte offset where the problem was found.
 */
#include "json.h"

#include "bmojo.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BM_JSON_MAX_DEPTH 64

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    char *err;
    size_t err_len;
    int failed;
} jparser;

static int jfail(jparser *p, size_t at, const char *fmt, ...)
{
    /* Only the first error matters: later ones are consequences. */
    if (!p->failed && p->err && p->err_len) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(p->err, p->err_len, "JSON: %s at byte offset %zu", msg, at);
    }
    p->failed = 1;
    return BMOJO_EFORMAT;
}

static void skip_ws(jparser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static void free_node(bm_json *j)
{
    switch (j->type) {
    case BM_JSON_STRING:
        free(j->string);
        break;
    case BM_JSON_ARRAY:
    case BM_JSON_OBJECT:
        for (size_t i = 0; i < j->count; i++)
            free_node(&j->items[i]);
        if (j->keys)
            for (size_t i = 0; i < j->count; i++)
                free(j->keys[i]);
        free(j->items);
        free(j->keys);
        break;
    default:
        break;
    }
    memset(j, 0, sizeof *j);
}

/* ---- strings ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} jbuf;

static int jbuf_put(jbuf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb)
            return -1;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = 0;
    return 0;
}

static int put_utf8(jbuf *b, uint32_t cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return jbuf_put(b, u, n);
}

/* Length of the valid UTF-8 sequence at s[0..avail), 0 if invalid (overlong, surrogate,
 * > U+10FFFF, truncated or bad continuation byte). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t min, cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int hex4(jparser *p, size_t at, uint32_t *out)
{
    if (p->len - at < 4)
        return jfail(p, at, "truncated \\u escape");
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = p->s[at + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return jfail(p, at + i, "invalid hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

/* Parses a string starting at the opening quote; returns the unescaped bytes in *out
 * (malloc'ed, NUL-terminated) and their length. */
static int parse_string(jparser *p, char **out, size_t *out_len)
{
    size_t start = p->pos;
    jbuf b = {0};
    p->pos++; /* opening quote */
    for (;;) {
        if (p->pos >= p->len) {
            free(b.buf);
            return jfail(p, start, "unterminated string");
        }
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(b.buf);
            return jfail(p, p->pos, "unescaped control character 0x%02x in string", c);
        }
        if (c == '\\') {
            size_t esc = p->pos;
            if (p->pos + 1 >= p->len) {
                free(b.buf);
                return jfail(p, esc, "truncated escape in string");
            }
            unsigned char e = p->s[p->pos + 1];
            char ch = 0;
            switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': break;
            default:
                free(b.buf);
                return jfail(p, esc, "invalid escape '\\%c' in string", e >= 0x20 && e < 0x7F ? e : '?');
            }
            if (e != 'u') {
                if (jbuf_put(&b, &ch, 1)) {
                    free(b.buf);
                    return BMOJO_ENOMEM;
                }
                p->pos += 2;
                continue;
            }
            uint32_t cp;
            if (hex4(p, esc + 2, &cp)) {
                free(b.buf);
                return BMOJO_EFORMAT;
            }
            p->pos = esc + 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(b.buf);
                return jfail(p, esc, "lone low surrogate \\u%04X in string", (unsigned)cp);
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate must be followed at once by an escaped low surrogate. */
                uint32_t lo;
                if (p->pos + 1 >= p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    free(b.buf);
                    return jfail(p, esc, "lone high surrogate \\u%04X in string", (unsigned)cp);
                }
                if (hex4(p, p->pos + 2, &lo)) {
                    free(b.buf);
                    return BMOJO_EFORMAT;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    free(b.buf);
                    return jfail(p, esc, "high surrogate \\u%04X not followed by a low surrogate", (unsigned)cp);
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p->pos += 6;
            }
            if (put_utf8(&b, cp)) {
                free(b.buf);
                return BMOJO_ENOMEM;
            }
            continue;
        }
        size_t n = utf8_seq(p->s + p->pos, p->len - p->pos);
        if (!n) {
            free(b.buf);
            return jfail(p, p->pos, "invalid UTF-8 in string");
        }
        if (jbuf_put(&b, p->s + p->pos, n)) {
            free(b.buf);
            return BMOJO_ENOMEM;
        }
        p->pos += n;
    }
    if (!b.buf) {
        b.buf = malloc(1);
        if (!b.buf)
            return BMOJO_ENOMEM;
        b.buf[0] = 0;
    }
    *out = b.buf;
    *out_len = b.len;
    return 0;
}

/* ---- numbers ---- */

static int parse_number(jparser *p, bm_json *j)
{
    size_t start = p->pos, i = p->pos;
    const unsigned char *s = p->s;
    int neg = 0, frac = 0;
    if (i < p->len && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= p->len || s[i] < '0' || s[i] > '9')
        return jfail(p, i, "invalid number (digit expected)");
    size_t int_start = i;
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9')
            return jfail(p, int_start, "invalid number (leading zero)");
    } else {
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    size_t int_end = i;
    if (i < p->len && s[i] == '.') {
        frac = 1;
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return jfail(p, i, "invalid number (digit expected after '.')");
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        frac = 1;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return jfail(p, i, "invalid number (digit expected in exponent)");
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }

    j->type = BM_JSON_NUMBER;
    if (!frac) {
        /* Exact int64 accumulation, negative side so INT64_MIN fits. */
        int64_t v = 0;
        int fits = 1;
        for (size_t k = int_start; k < int_end; k++) {
            int d = s[k] - '0';
            if (v < (INT64_MIN + d) / 10) {
                fits = 0;
                break;
            }
            v = v * 10 - d;
        }
        if (fits && !neg) {
            if (v == INT64_MIN)
                fits = 0;
            else
                v = -v;
        }
        if (fits) {
            j->is_integer = 1;
            j->integer = v;
        }
    }

    /* strtod needs a NUL-terminated copy, and the locale's decimal point (the host program may
     * have called setlocale). */
    size_t n = i - start;
    char small[72];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return BMOJO_ENOMEM;
    memcpy(buf, s + start, n);
    buf[n] = 0;
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
        char *dot = strchr(buf, '.');
        if (dot)
            *dot = dp[0];
    }
    errno = 0;
    double d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    if (isinf(d)) {
        j->type = BM_JSON_NULL;
        j->is_integer = 0;
        return jfail(p, start, "number out of range");
    }
    j->number = d;
    p->pos = i;
    return 0;
}

/* ---- values ---- */

static int parse_value(jparser *p, bm_json *j, int depth);

static int match_word(jparser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return 0;
    p->pos += n;
    return 1;
}

/* Grows an items (and keys) array to hold one more element. */
static int grow(bm_json *j, size_t *cap, size_t **key_lens, int with_keys)
{
    if (j->count < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    bm_json *ni = realloc(j->items, nc * sizeof *ni);
    if (!ni)
        return BMOJO_ENOMEM;
    j->items = ni;
    if (with_keys) {
        char **nk = realloc(j->keys, nc * sizeof *nk);
        if (!nk)
            return BMOJO_ENOMEM;
        j->keys = nk;
        size_t *nl = realloc(*key_lens, nc * sizeof *nl);
        if (!nl)
            return BMOJO_ENOMEM;
        *key_lens = nl;
    }
    *cap = nc;
    return 0;
}

typedef struct {
    const char *key;
    size_t len;
    size_t index;
} keyref;

static int keyref_cmp(const void *a, const void *b)
{
    const keyref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Rejects duplicate keys (compared as byte strings, so embedded NULs count). */
static int check_duplicates(jparser *p, const bm_json *j, const size_t *key_lens, size_t at)
{
    if (j->count < 2)
        return 0;
    keyref *r = malloc(j->count * sizeof *r);
    if (!r)
        return BMOJO_ENOMEM;
    for (size_t i = 0; i < j->count; i++) {
        r[i].key = j->keys[i];
        r[i].len = key_lens[i];
        r[i].index = i;
    }
    qsort(r, j->count, sizeof *r, keyref_cmp);
    int rc = 0;
    for (size_t i = 1; i < j->count; i++) {
        if (r[i].len == r[i - 1].len && memcmp(r[i].key, r[i - 1].key, r[i].len) == 0) {
            rc = jfail(p, at, "duplicate key \"%.100s\" in object", r[i].key);
            break;
        }
    }
    free(r);
    return rc;
}

static int parse_array(jparser *p, bm_json *j, int depth)
{
    size_t cap = 0;
    j->type = BM_JSON_ARRAY;
    p->pos++; /* '[' */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        int rc = grow(j, &cap, NULL, 0);
        if (rc)
            return rc;
        bm_json *item = &j->items[j->count];
        memset(item, 0, sizeof *item);
        rc = parse_value(p, item, depth + 1);
        if (rc) {
            free_node(item);
            return rc;
        }
        j->count++;
        skip_ws(p);
        if (p->pos >= p->len)
            return jfail(p, p->pos, "unterminated array (expected ',' or ']')");
        unsigned char c = p->s[p->pos];
        if (c == ']') {
            p->pos++;
            return 0;
        }
        if (c != ',')
            return jfail(p, p->pos, "expected ',' or ']' in array");
        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ']')
            return jfail(p, p->pos, "trailing comma in array");
    }
}

static int parse_object(jparser *p, bm_json *j, int depth)
{
    size_t cap = 0, open_at = p->pos;
    size_t *key_lens = NULL;
    int rc = 0;
    j->type = BM_JSON_OBJECT;
    p->pos++; /* '{' */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len) {
            rc = jfail(p, p->pos, "unterminated object (expected a key)");
            break;
        }
        if (p->s[p->pos] != '"') {
            rc = jfail(p, p->pos, p->s[p->pos] == '}' ? "trailing comma in object" : "expected a string key in object");
            break;
        }
        if ((rc = grow(j, &cap, &key_lens, 1)))
            break;
        char *key;
        size_t klen;
        if ((rc = parse_string(p, &key, &klen)))
            break;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            free(key);
            rc = jfail(p, p->pos, "expected ':' after key in object");
            break;
        }
        p->pos++;
        bm_json *item = &j->items[j->count];
        memset(item, 0, sizeof *item);
        rc = parse_value(p, item, depth + 1);
        if (rc) {
            free_node(item);
            free(key);
            break;
        }
        j->keys[j->count] = key;
        key_lens[j->count] = klen;
        j->count++;
        skip_ws(p);
        if (p->pos >= p->len) {
            rc = jfail(p, p->pos, "unterminated object (expected ',' or '}')");
            break;
        }
        unsigned char c = p->s[p->pos];
        if (c == '}') {
            p->pos++;
            rc = check_duplicates(p, j, key_lens, open_at);
            break;
        }
        if (c != ',') {
            rc = jfail(p, p->pos, "expected ',' or '}' in object");
            break;
        }
        p->pos++;
    }
    free(key_lens);
    return rc;
}

static int parse_value(jparser *p, bm_json *j, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return jfail(p, p->pos, "unexpected end of input (value expected)");
    unsigned char c = p->s[p->pos];
    if ((c == '[' || c == '{') && depth >= BM_JSON_MAX_DEPTH)
        return jfail(p, p->pos, "nesting deeper than %d", BM_JSON_MAX_DEPTH);
    switch (c) {
    case '{':
        return parse_object(p, j, depth);
    case '[':
        return parse_array(p, j, depth);
    case '"': {
        j->type = BM_JSON_STRING;
        int rc = parse_string(p, &j->string, &j->string_len);
        if (rc)
            j->type = BM_JSON_NULL;
        return rc;
    }
    case 't':
        if (match_word(p, "true")) {
            j->type = BM_JSON_BOOL;
            j->boolean = 1;
            return 0;
        }
        break;
    case 'f':
        if (match_word(p, "false")) {
            j->type = BM_JSON_BOOL;
            return 0;
        }
        break;
    case 'n':
        if (match_word(p, "null")) {
            j->type = BM_JSON_NULL;
            return 0;
        }
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, j);
        break;
    }
    return jfail(p, p->pos, "unexpected character '%c'", c >= 0x20 && c < 0x7F ? c : '?');
}

int bm_json_parse(const char *text, size_t len, bm_json **out, char *err, size_t err_len)
{
    *out = NULL;
    if (err && err_len)
        err[0] = 0;
    if (!text && len)
        return BMOJO_EINVAL;
    jparser p = {(const unsigned char *)(text ? text : ""), len, 0, err, err_len, 0};
    bm_json *root = calloc(1, sizeof *root);
    if (!root)
        return BMOJO_ENOMEM;
    int rc = parse_value(&p, root, 0);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != p.len)
            rc = jfail(&p, p.pos, "trailing garbage after the JSON value");
    }
    if (rc) {
        if (rc == BMOJO_ENOMEM && err && err_len)
            snprintf(err, err_len, "JSON: out of memory at byte offset %zu", p.pos);
        bm_json_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

void bm_json_free(bm_json *j)
{
    if (!j)
        return;
    free_node(j);
    free(j);
}

const bm_json *bm_json_get(const bm_json *j, const char *key)
{
    if (!j || j->type != BM_JSON_OBJECT || !key)
        return NULL;
    for (size_t i = 0; i < j->count; i++)
        if (strcmp(j->keys[i], key) == 0)
            return &j->items[i];
    return NULL;
}
