/* ref_embed.c — plain-C reference of bm_op_embed: a row gather from the embedding table. */
#include "ref/ref.h"

#include <string.h>

void bm_ref_embed(const int32_t *ids, const float *table, float *out, int n, int d)
{
    for (int r = 0; r < n; r++)
        memcpy(out + (size_t)r * (size_t)d, table + (size_t)ids[r] * (size_t)d, (size_t)d * sizeof(float));
}
