/* unicode.c — UTF-8, character classes and NFC for the tokenizer (unicode.h). NFC follows UAX #15:
 * full canonical decomposition (Hangul by arithmetic), canonical ordering of combining marks by
 * class (stable), then canonical composition of unblocked pairs with the last starter. */
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

static int in_ranges(const bm_uni_range *r, int n, uint32_t c)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        if (c < r[mid].first) hi = mid - 1;
        else if (c > r[mid].last) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int bm_uni_is_letter(uint32_t c) { return in_ranges(bm_uni_letters, bm_uni_letters_count, c); }
int bm_uni_is_number(uint32_t c) { return in_ranges(bm_uni_numbers, bm_uni_numbers_count, c); }
int bm_uni_is_space(uint32_t c) { return in_ranges(bm_uni_white_space, bm_uni_white_space_count, c); }

int bm_uni_ccc_of(uint32_t c)
{
    if (c < 0x300) return 0;
    int lo = 0, hi = bm_uni_ccc_count - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        if (c < bm_uni_ccc[mid].first) hi = mid - 1;
        else if (c > bm_uni_ccc[mid].last) lo = mid + 1;
        else return bm_uni_ccc[mid].ccc;
    }
    return 0;
}

int32_t bm_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    const size_t p = *i;
    const unsigned char b = s[p];
    if (b < 0x80) {
        *i = p + 1;
        return b;
    }
    /* the lead byte's length and the allowed range of its first continuation byte (Unicode
     * Table 3-7: no overlongs, no surrogates, nothing past U+10FFFF) */
    int len;
    unsigned char lo = 0x80, hi = 0xBF;
    uint32_t c;
    if (b >= 0xC2 && b <= 0xDF) len = 2, c = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *i = p + 1; /* a continuation byte or C0, C1, F5..FF: one byte, one U+FFFD */
        return -1;
    }
    size_t k = p + 1;
    for (int j = 1; j < len; j++, k++) {
        const unsigned char lo_j = j == 1 ? lo : 0x80, hi_j = j == 1 ? hi : 0xBF;
        if (k >= n || s[k] < lo_j || s[k] > hi_j) {
            *i = k; /* the maximal subpart: the lead and the valid continuation bytes so far */
            return -1;
        }
        c = (c << 6) | (s[k] & 0x3F);
    }
    *i = k;
    return (int32_t)c;
}

int bm_utf8_put(uint32_t c, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (c < 0x80) return o[0] = (unsigned char)c, 1;
    if (c < 0x800) return o[0] = (unsigned char)(0xC0 | (c >> 6)), o[1] = (unsigned char)(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12)), o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (c >> 18)), o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

int bm_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len)
{
    char *o = malloc(n * 3 + 1); /* one byte can become U+FFFD, 3 bytes */
    if (!o) return -1;
    size_t i = 0, k = 0;
    while (i < n) {
        const size_t p = i;
        const int32_t c = bm_utf8_next((const unsigned char *)s, n, &i);
        if (c < 0) k += (size_t)bm_utf8_put(0xFFFD, o + k);
        else memcpy(o + k, s + p, i - p), k += i - p;
    }
    o[k] = 0;
    *out = o;
    *out_len = k;
    return 0;
}

/* ---- NFC ---- */

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28 };
enum { NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static const bm_uni_triple *find_decomp(uint32_t c)
{
    int lo = 0, hi = bm_uni_decomp_count - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        if (c < bm_uni_decomp[mid].a) hi = mid - 1;
        else if (c > bm_uni_decomp[mid].a) lo = mid + 1;
        else return &bm_uni_decomp[mid];
    }
    return NULL;
}

/* Appends the full canonical decomposition of c to buf (grown as needed). */
static int decompose(uint32_t c, uint32_t **buf, size_t *n, size_t *cap)
{
    if (*n + 4 > *cap) {
        size_t nc = *cap * 2 + 16;
        uint32_t *g = realloc(*buf, nc * sizeof *g);
        if (!g) return -1;
        *buf = g, *cap = nc;
    }
    if (c >= SBASE && c < SBASE + SCOUNT) {
        const uint32_t s = c - SBASE;
        (*buf)[(*n)++] = LBASE + s / NCOUNT;
        (*buf)[(*n)++] = VBASE + (s % NCOUNT) / TCOUNT;
        if (s % TCOUNT) (*buf)[(*n)++] = TBASE + s % TCOUNT;
        return 0;
    }
    const bm_uni_triple *d = find_decomp(c);
    if (!d) {
        (*buf)[(*n)++] = c;
        return 0;
    }
    if (decompose(d->b, buf, n, cap)) return -1;
    return d->c ? decompose(d->c, buf, n, cap) : 0;
}

static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    int lo = 0, hi = bm_uni_compose_count - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        const bm_uni_triple *t = &bm_uni_compose[mid];
        if (a < t->a || (a == t->a && b < t->b)) hi = mid - 1;
        else if (a > t->a || b > t->b) lo = mid + 1;
        else return t->c;
    }
    return 0;
}

int bm_uni_nfc(const char *s, size_t n, char **out, size_t *out_len)
{
    uint32_t *cp = NULL;
    size_t m = 0, cap = 0;
    for (size_t i = 0; i < n;) {
        int32_t c = bm_utf8_next((const unsigned char *)s, n, &i);
        if (decompose(c < 0 ? 0xFFFD : (uint32_t)c, &cp, &m, &cap)) {
            free(cp);
            return -1;
        }
    }
    /* canonical ordering: a stable insertion sort of each run of non-starters by class */
    for (size_t i = 1; i < m; i++) {
        const int ci = bm_uni_ccc_of(cp[i]);
        if (ci == 0) continue;
        size_t j = i;
        while (j > 0 && bm_uni_ccc_of(cp[j - 1]) > ci) {
            const uint32_t t = cp[j];
            cp[j] = cp[j - 1], cp[j - 1] = t;
            j--;
        }
    }
    /* composition: a character joins the last starter unless blocked, i.e. unless a character
     * between them (the last one kept, of class last_cc) is a starter or of a class >= its own */
    size_t w = 0, starter = (size_t)-1;
    int last_cc = 0;
    for (size_t i = 0; i < m; i++) {
        const uint32_t c = cp[i];
        const int cc = bm_uni_ccc_of(c);
        if (starter != (size_t)-1) {
            const int adjacent = w == starter + 1, blocked = !adjacent && (last_cc == 0 || last_cc >= cc);
            const uint32_t comp = blocked ? 0 : compose_pair(cp[starter], c);
            if (comp) {
                cp[starter] = comp;
                continue;
            }
        }
        if (cc == 0) starter = w;
        last_cc = cc;
        cp[w++] = c;
    }
    char *o = malloc(w * 4 + 1);
    if (!o) {
        free(cp);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < w; i++) k += (size_t)bm_utf8_put(cp[i], o + k);
    o[k] = 0;
    free(cp);
    *out = o;
    *out_len = k;
    return 0;
}
