/* pretokenize.c — GPT-2's pre-token split and byte-level map (pretokenize.h). */
#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

/* the code point at s[i] and its length (the input is valid UTF-8) */
static uint32_t at(const char *s, size_t n, size_t i, size_t *len)
{
    size_t k = i;
    const int32_t c = bm_utf8_next((const unsigned char *)s, n, &k);
    *len = k - i;
    return c < 0 ? 0xFFFD : (uint32_t)c;
}

static int is_other(uint32_t c) { return !bm_uni_is_space(c) && !bm_uni_is_letter(c) && !bm_uni_is_number(c); }

/* the end of the run of characters satisfying cls from i */
static size_t run(const char *s, size_t n, size_t i, int (*cls)(uint32_t))
{
    while (i < n) {
        size_t len;
        if (!cls(at(s, n, i, &len))) break;
        i += len;
    }
    return i;
}

size_t bm_gpt2_piece(const char *s, size_t n, size_t i)
{
    /* contractions, case-sensitive: 's 't 'm 'd 're 've 'll */
    if (s[i] == '\'' && i + 1 < n) {
        const char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    size_t len;
    const uint32_t c = at(s, n, i, &len);
    /* " ?X+" for X = letters, numbers, others: an optional space, then a non-empty run (without
     * the space the run would start at the space itself, which is in none of the three classes) */
    int (*classes[3])(uint32_t) = {bm_uni_is_letter, bm_uni_is_number, is_other};
    const size_t j = c == ' ' && i + 1 < n ? i + 1 : i;
    for (int k = 0; k < 3; k++) {
        size_t l2;
        if (j < n && classes[k](at(s, n, j, &l2))) return run(s, n, j, classes[k]) - i;
    }
    /* whitespace: \s+(?!\S) then \s+ */
    const size_t end = run(s, n, i, bm_uni_is_space);
    if (end == n) return end - i;
    /* followed by a non-space: back off one character if the run has more than one */
    size_t last = i, p = i;
    while (p < end) {
        last = p;
        size_t l3;
        at(s, n, p, &l3);
        p += l3;
    }
    return last > i ? last - i : end - i;
}

int bm_byte_char(unsigned char b, char out[2])
{
    uint32_t c;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) c = b;
    else {
        /* the unprintable bytes in order: 0..32, 127..160, 173 */
        int k = b <= 32 ? b : b <= 160 ? 33 + (b - 127) : 33 + 34;
        c = 256 + (uint32_t)k;
    }
    if (c < 0x80) return out[0] = (char)c, 1;
    out[0] = (char)(0xC0 | (c >> 6)), out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

int bm_char_byte(uint32_t c)
{
    if ((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) return (int)c;
    if (c < 256 || c > 256 + 67) return -1;
    const int k = (int)(c - 256);
    return k <= 32 ? k : k <= 66 ? 127 + (k - 33) : 173;
}
