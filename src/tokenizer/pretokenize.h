/* pretokenize.h — the pre-tokenizers of the supported tokenizer.json files: the GPT-2 split that
 * Hugging Face's ByteLevel pre-tokenizer applies (use_regex) and its byte <-> character map. */
#ifndef BM_TOKENIZER_PRETOKENIZE_H
#define BM_TOKENIZER_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* The length in bytes of the GPT-2 pre-token that starts at s[i] (valid UTF-8 s[0..n), i < n):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * matched as a regex engine does (leftmost alternative first, greedy, the lookahead backing
 * \s+ off by one character before a non-space). */
size_t bm_gpt2_piece(const char *s, size_t n, size_t i);

/* GPT-2's byte -> character map: printable Latin-1 bytes map to themselves, the other 68 bytes
 * to U+0100 upwards, in byte order. bm_byte_char gives the character's UTF-8 (1 or 2 bytes) and
 * its length; bm_char_byte the byte of a code point, or -1 when it is none of the 256. */
int bm_byte_char(unsigned char b, char out[2]);
int bm_char_byte(uint32_t c);

#endif
