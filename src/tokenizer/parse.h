/* parse.h — a tokenizer.json already in memory (bmojo_tokenizer_load reads the file; the fuzz
 * target tests/fuzz/fuzz_tokenizer.c calls this directly). */
#ifndef BM_TOKENIZER_PARSE_H
#define BM_TOKENIZER_PARSE_H

#include <stddef.h>

#include "bmojo.h"

/* Parses text[0..len) as a tokenizer.json; errors as bmojo_tokenizer_load's, without the path. */
int bm_tokenizer_parse(const char *text, size_t len, bmojo_tokenizer **out);

#endif
