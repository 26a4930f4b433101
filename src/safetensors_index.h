/* safetensors_index.h — parsing model.safetensors.index.json (the weight_map of a sharded
 * checkpoint) from memory, without opening any shard: the shard files it names and which shard
 * each tensor is in. */
#ifndef BM_SAFETENSORS_INDEX_H
#define BM_SAFETENSORS_INDEX_H

#include <stddef.h>

#include "json.h"

/* Index files larger than this are refused (a real index is well under 1 MiB per 10k tensors). */
#define BM_ST_INDEX_MAX_BYTES ((size_t)100 << 20)

typedef struct {
    bm_json *json;          /* the parsed file; the strings below point into it */
    int n_shards;
    const char **shards;    /* distinct shard file names, in order of first mention */
    size_t n;               /* weight_map entries */
    char *const *names;     /* tensor name of each entry (the weight_map keys) */
    int *shard_of;          /* shard (index into shards) of each entry */
} bm_st_index;

/* Parses the index text[0..len); index_path is only for messages. Every shard name must be a
 * plain, non-empty file name (no '/', no ".."). O(n log n) in the number of entries. Errors are
 * BMOJO_EFORMAT (or BMOJO_ENOMEM) naming index_path and the entry. */
int bm_st_index_parse(const char *text, size_t len, const char *index_path, bm_st_index *out);
void bm_st_index_free(bm_st_index *ix);

#endif
