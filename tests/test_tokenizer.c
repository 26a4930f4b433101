/* test_tokenizer.c — the tokenizer against Hugging Face `tokenizers` (goldens made by
 * tools/make_tokenizers.py, committed under tests/tokenizer/): for the byte-level BPE, the
 * SentencePiece-style BPE in its normalizer form and in its Metaspace form, every corpus file's ids (without and with the special
 * tokens) and the decoded text must be identical; then the pieces: UTF-8 decoding of invalid input,
 * NFC, the GPT-2 split, BPE of a long word, and bad tokenizer files refused by name. No device. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bmojo.h"
#include "file_read.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

static int pass, fail;

static int check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf(ok ? "ok    " : "FAIL  ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    ok ? pass++ : fail++;
    return ok;
}

static char *slurp(const char *path, size_t *n)
{
    char *s = NULL;
    if (bm_read_file(path, 64u << 20, &s, n)) return NULL;
    return s;
}

/* "1 2 3\n" -> ids */
static int32_t *parse_ids(const char *s, size_t *n)
{
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    for (const char *p = s; v && *p;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p) break;
        if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        if (v) v[k++] = (int32_t)x;
        p = end;
    }
    *n = k;
    return v;
}

static const char *const corpus[] = {"prose.txt", "code.c", "numbers.txt", "whitespace.txt", "emoji.txt", "cjk.txt",
                                     "arabic.txt", "combining.txt", "longword.txt", "invalid.bin"};

static void golden(const char *root, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/tokenizer.json", root, name);
    bmojo_tokenizer *t = NULL;
    if (!check(bmojo_tokenizer_load(path, &t) == 0, "%s: load (%s)", name, bmojo_last_error())) return;
    for (size_t f = 0; f < sizeof corpus / sizeof corpus[0]; f++) {
        size_t tn = 0, gn = 0, sn = 0, dn = 0, ln = 0;
        snprintf(path, sizeof path, "%s/corpus/%s", root, corpus[f]);
        char *raw = slurp(path, &tn), *text = NULL;
        snprintf(path, sizeof path, "%s/%s/%s.ids", root, name, corpus[f]);
        char *gs = slurp(path, &gn);
        snprintf(path, sizeof path, "%s/%s/%s.special.ids", root, name, corpus[f]);
        char *ss = slurp(path, &sn);
        snprintf(path, sizeof path, "%s/%s/%s.decoded", root, name, corpus[f]);
        char *want_text = slurp(path, &dn);
        if (!check(raw && gs && ss && want_text && bm_utf8_lossy(raw, tn, &text, &ln) == 0, "%s %s: goldens readable", name,
                   corpus[f]))
            goto next;
        size_t wn = 0, wsn = 0, n = 0, n2 = 0, outn = 0;
        int32_t *want = parse_ids(gs, &wn), *want_s = parse_ids(ss, &wsn), *ids = NULL, *ids_s = NULL;
        char *out = NULL;
        int st = bmojo_tokenizer_encode(t, text, ln, 0, &ids, &n);
        size_t first_diff = 0;
        while (st == 0 && first_diff < n && first_diff < wn && ids[first_diff] == want[first_diff]) first_diff++;
        check(st == 0 && n == wn && first_diff == n, "%s %s: %zu ids as Hugging Face's (got %zu; first difference at %zu: %d vs %d)",
              name, corpus[f], wn, n, first_diff, st == 0 && first_diff < n ? ids[first_diff] : -1,
              first_diff < wn ? want[first_diff] : -1);
        st = bmojo_tokenizer_encode(t, text, ln, 1, &ids_s, &n2);
        check(st == 0 && n2 == wsn && !memcmp(ids_s, want_s, n2 * sizeof *ids_s), "%s %s: with special tokens, %zu ids", name,
              corpus[f], wsn);
        st = bmojo_tokenizer_decode(t, want, wn, &out, &outn);
        check(st == 0 && outn == dn && !memcmp(out, want_text, dn), "%s %s: decode gives Hugging Face's text (%zu bytes)", name,
              corpus[f], dn);
        free(want), free(want_s), free(ids), free(ids_s), free(out);
    next:
        free(raw), free(gs), free(ss), free(want_text), free(text);
    }
    bmojo_tokenizer_free(t);
}

static void pieces(void)
{
    /* lossy UTF-8: each maximal subpart of an invalid sequence is one U+FFFD */
    const char bad[] = "a\x80" "b\xe2\x82" "c\xf0\x9f\x98" "d\xed\xa0\x80" "e\xc0\xaf";
    char *o;
    size_t on;
    bm_utf8_lossy(bad, sizeof bad - 1, &o, &on);
    const char *want = "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd" "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                       "e\xef\xbf\xbd\xef\xbf\xbd";
    check(on == strlen(want) && !memcmp(o, want, on), "UTF-8: invalid sequences replaced as Python's errors=\"replace\"");
    free(o);
    /* NFC: composition, canonical order, blocking, Hangul, singletons, exclusions */
    struct {
        const char *in, *out, *what;
    } nfc[] = {
        {"e\xcc\x81", "\xc3\xa9", "e + acute -> e-acute"},
        {"A\xcc\x8a", "\xc3\x85", "A + ring -> A-ring"},
        {"\xe2\x84\xab", "\xc3\x85", "the Angstrom sign (a singleton) -> A-ring"},
        {"\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", "\xed\x95\x9c", "Hangul jamo L V T -> one syllable"},
        {"a\xcc\x9b\xcc\x81", "\xc3\xa1\xcc\x9b", "a + horn(216) + acute(230) -> a-acute + horn"},
        {"a\xcc\x81\xcc\x9b", "\xc3\xa1\xcc\x9b", "a + acute + horn: reordered, then composed"},
        {"\xe0\xa5\x98", "\xe0\xa4\x95\xe0\xa4\xbc", "Devanagari QA (a composition exclusion) stays decomposed"},
        {"\xe1\xba\x9b\xcc\xa3", "\xe1\xba\x9b\xcc\xa3", "long s with dot above + dot below (UAX #15's example)"},
    };
    for (size_t k = 0; k < sizeof nfc / sizeof nfc[0]; k++) {
        bm_uni_nfc(nfc[k].in, strlen(nfc[k].in), &o, &on);
        check(on == strlen(nfc[k].out) && !memcmp(o, nfc[k].out, on), "NFC: %s", nfc[k].what);
        free(o);
    }
    /* the GPT-2 split */
    const char *s = "Hello, world! It's  3 o'clock\t\n  x   ";
    /* as tokenizers 0.23.3's ByteLevel(add_prefix_space=False).pre_tokenize_str gives it */
    const char *parts[] = {"Hello", ",", " world", "!", " It", "'s", " ", " 3", " o", "'", "clock", "\t\n ", " x", "   "};
    size_t i = 0, k = 0, n = strlen(s);
    int ok = 1;
    while (i < n && k < sizeof parts / sizeof parts[0]) {
        size_t len = bm_gpt2_piece(s, n, i);
        ok &= len == strlen(parts[k]) && !memcmp(s + i, parts[k], len);
        i += len, k++;
    }
    check(ok && i == n && k == sizeof parts / sizeof parts[0], "GPT-2 split: contractions, spaces before words, the lookahead");
    /* the byte map round-trips all 256 bytes */
    ok = 1;
    for (int b = 0; b < 256; b++) {
        char c[2];
        int len = bm_byte_char((unsigned char)b, c);
        size_t at = 0;
        int32_t cp = bm_utf8_next((const unsigned char *)c, (size_t)len, &at);
        ok &= cp >= 0 && bm_char_byte((uint32_t)cp) == b;
    }
    check(ok, "byte-level map: 256 bytes <-> 256 characters");
    /* BPE of a 200,000-symbol word: "a" * n with a -> aa -> aaaa merges */
    bm_bpe b = {0};
    bm_bpe_add_token(&b, "a", 1, 0), bm_bpe_add_token(&b, "aa", 2, 1), bm_bpe_add_token(&b, "aaaa", 4, 2);
    bm_bpe_add_merge(&b, "a", 1, "a", 1), bm_bpe_add_merge(&b, "aa", 2, "aa", 2);
    size_t m = 200001;
    int32_t *w = malloc(m * sizeof *w);
    for (size_t j = 0; j < m; j++) w[j] = 0;
    bm_bpe_merge_word(&b, w, &m);
    ok = m == 50001 && w[m - 1] == 0;
    for (size_t j = 0; j + 1 < m; j++) ok &= w[j] == 2;
    check(ok, "BPE: 200,001 x 'a' -> 50,000 'aaaa' and one 'a' (leftmost first)");
    free(w);
    bm_bpe_free(&b);
}

/* The Metaspace decoder alone and after ByteFallback + Fuse, against what tokenizers 0.23.3 gives
 * for the tokens [▁The, ▁B, ▁x] ("The B x" and "TheBx": after Fuse all is the first token, whose
 * every ▁ Hugging Face drops). */
static void metaspace_decoders(void)
{
    static const char *const dec[2] = {
        "{\"type\": \"Metaspace\", \"replacement\": \"\u2581\", \"prepend_scheme\": \"first\", \"split\": false}",
        "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Metaspace\","
        " \"replacement\": \"\u2581\", \"prepend_scheme\": \"first\", \"split\": false}]}"};
    static const char *const want[2] = {"The B x", "TheBx"};
    for (int k = 0; k < 2; k++) {
        char json[1024], path[] = "/tmp/bmojo-meta.XXXXXX";
        snprintf(json, sizeof json,
                 "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\u2581The\": 0, \"\u2581B\": 1, \"\u2581x\": 2}, \"merges\": []},"
                 " \"decoder\": %s}", dec[k]);
        int fd = mkstemp(path);
        if (fd < 0) continue;
        if (write(fd, json, strlen(json)) < 0) perror("write");
        close(fd);
        bmojo_tokenizer *t = NULL;
        char *out = NULL;
        size_t on = 0;
        const int32_t ids[3] = {0, 1, 2};
        int st = bmojo_tokenizer_load(path, &t);
        if (!st) st = bmojo_tokenizer_decode(t, ids, 3, &out, &on);
        check(st == 0 && on == strlen(want[k]) && !memcmp(out, want[k], on), "Metaspace decoder %s: '%s' (%s)",
              k ? "after Fuse" : "alone", out ? out : "", st ? bmojo_last_error() : "ok");
        free(out);
        bmojo_tokenizer_free(t);
        unlink(path);
    }
}

static void bad_files(void)
{
    char dir[] = "/tmp/bmojo-tok.XXXXXX";
    if (!mkdtemp(dir)) return;
    struct {
        const char *json, *word;
    } bad[] = {
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "WordPiece"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", "not in the vocabulary"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", "repeats"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"ab\"]}}", "merge 0"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"NFKC\"}}", "NFKC"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Whitespace\"}}", "Whitespace"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []", "JSON: unterminated object"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"byte_fallback\": true}}", "<0x00>"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s/t%zu.json", dir, k);
        FILE *f = fopen(path, "w");
        fputs(bad[k].json, f);
        fclose(f);
        bmojo_tokenizer *t = NULL;
        int st = bmojo_tokenizer_load(path, &t);
        check(st != 0 && !t && strstr(bmojo_last_error(), bad[k].word), "bad tokenizer.json %zu refused, naming '%s': %s", k,
              bad[k].word, bmojo_last_error());
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    const char *root = getenv("BMOJO_SOURCE_ROOT") ? getenv("BMOJO_SOURCE_ROOT") : ".";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/tokenizer", root);
    golden(dir, "bytelevel");
    golden(dir, "sentencepiece");
    golden(dir, "metaspace");
    pieces();
    metaspace_decoders();
    bad_files();
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
