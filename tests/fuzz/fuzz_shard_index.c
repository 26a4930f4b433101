/* fuzz_shard_index.c — libFuzzer target: any text handed to bm_st_index_parse (the
 * model.safetensors.index.json reader, from memory, no shard opened) is either refused with a
 * status or gives a consistent mapping: every entry's shard in range, shards distinct, plain,
 * non-empty file names, in order of first mention. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bm_st_index ix;
    if (bm_st_index_parse((const char *)data, size, "fuzz.json", &ix) != 0)
        return 0;
    if (ix.n == 0 || ix.n_shards < 1 || (size_t)ix.n_shards > ix.n)
        abort();
    int next = 0; /* shards appear in order of first mention */
    for (size_t i = 0; i < ix.n; i++) {
        int k = ix.shard_of[i];
        if (k < 0 || k > next || k >= ix.n_shards || !ix.names[i])
            abort();
        if (k == next)
            next++;
        const char *s = ix.shards[k];
        if (!s[0] || strchr(s, '/') || strstr(s, ".."))
            abort();
    }
    if (next != ix.n_shards)
        abort();
    for (int a = 1; a < ix.n_shards && ix.n_shards < 64; a++)
        for (int b = 0; b < a; b++)
            if (!strcmp(ix.shards[a], ix.shards[b]))
                abort();
    bm_st_index_free(&ix);
    return 0;
}
