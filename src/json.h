/* json.h — a small strict JSON parser (RFC 8259) into a tree, for safetensors headers
 * and Hugging Face config.json files. */
#ifndef BM_JSON_H
#define BM_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { BM_JSON_NULL, BM_JSON_BOOL, BM_JSON_NUMBER, BM_JSON_STRING, BM_JSON_ARRAY, BM_JSON_OBJECT } bm_json_type;

typedef struct bm_json {
    bm_json_type type;
    int boolean;
    double number;          /* every number */
    int is_integer;         /* the literal had no fraction or exponent and fits int64 */
    int64_t integer;        /* exact value when is_integer */
    char *string;           /* NUL-terminated, unescaped (STRING) */
    size_t string_len;      /* may contain NULs from \u0000 */
    size_t count;           /* ARRAY items or OBJECT members */
    struct bm_json *items;  /* ARRAY items or OBJECT values */
    char **keys;            /* OBJECT keys, parallel to items */
} bm_json;

/* Parses text[0..len). On error returns BMOJO_EFORMAT and writes a message with the byte
 * offset into err. Nesting deeper than 64 is an error. */
int bm_json_parse(const char *text, size_t len, bm_json **out, char *err, size_t err_len);
void bm_json_free(bm_json *j);
/* Member of an object by key (first match), NULL if absent or j is not an object. */
const bm_json *bm_json_get(const bm_json *j, const char *key);

#endif
