/* fuzz_tokenizer.c — libFuzzer target: the tokenizer must never crash or leak. An input whose
 * first byte is even is a tokenizer.json to load (and, when it loads, to encode a fixed text
 * with); an odd one is text (made valid UTF-8 first, as `bmojo tokenize -f` does) for a small
 * fixed byte-level tokenizer to encode and decode, with and without special tokens. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bmojo.h"
#include "tokenizer/parse.h"
#include "tokenizer/unicode.h"

/* a byte-level BPE over a few tokens: enough merges and added tokens to exercise every path */
static const char fixed[] =
    "{\"added_tokens\": [{\"id\": 0, \"content\": \"<|e|>\", \"special\": true}],"
    " \"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false},"
    " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|e|>\"}},"
    " {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {}},"
    " \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": %s,"
    " \"merges\": [\"a b\", \"ab c\", \"\\u0120 a\", \"\\u0120a b\"]}}";

static bmojo_tokenizer *fixed_tokenizer(void)
{
    static bmojo_tokenizer *t;
    if (t) return t;
    /* the 256 byte characters (ids 1..256), then the merged tokens */
    char *vocab = malloc(256 * 16 + 256), *json = malloc(256 * 16 + 1024);
    size_t k = 0;
    k += (size_t)sprintf(vocab + k, "{");
    for (int b = 0; b < 256; b++) {
        char c[2];
        int n = bm_byte_char((unsigned char)b, c);
        unsigned cp = n == 1 ? (unsigned char)c[0] : ((unsigned)(c[0] & 0x1F) << 6) | (c[1] & 0x3F);
        k += (size_t)sprintf(vocab + k, "%s\"\\u%04x\": %d", b ? ", " : "", cp, b + 1);
    }
    sprintf(vocab + k, ", \"ab\": 257, \"abc\": 258, \"\\u0120a\": 259, \"\\u0120ab\": 260}");
    sprintf(json, fixed, vocab);
    if (bm_tokenizer_parse(json, strlen(json), &t)) abort(); /* the fixed tokenizer must load */
    free(vocab);
    free(json);
    return t;
}

static void roundtrip(const bmojo_tokenizer *t, const char *s, size_t n)
{
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        size_t k = 0;
        if (bmojo_tokenizer_encode(t, s, n, special, &ids, &k) == 0) {
            char *out = NULL;
            size_t on = 0;
            if (bmojo_tokenizer_decode(t, ids, k, &out, &on) == 0) free(out);
            free(ids);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    if ((data[0] & 1) == 0) {
        bmojo_tokenizer *t = NULL;
        if (bm_tokenizer_parse((const char *)data + 1, size - 1, &t) == 0) {
            roundtrip(t, "Hello, w\xc3\xb6rld! 123 <s>", 27);
            bmojo_tokenizer_free(t);
        }
        return 0;
    }
    char *text = NULL;
    size_t n = 0;
    if (bm_utf8_lossy((const char *)data + 1, size - 1, &text, &n) == 0) {
        roundtrip(fixed_tokenizer(), text, n);
        free(text);
    }
    return 0;
}
