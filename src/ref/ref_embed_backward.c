/* ref_embed_backward.c — plain-C reference of bm_op_embed_backward: each id's gradient row is the
 * sum of the dy rows listed for it by bm_embed_rows_by_id, added to dtable. */
#include "ref/ref_backward.h"

void bm_ref_embed_backward(const int32_t *order, const int32_t *start, const float *dy, float *dtable, int n, int d,
                           int V)
{
    (void)n;
    for (int v = 0; v < V; v++)
        for (int j = 0; j < d; j++) {
            if (start[v] >= start[v + 1]) continue;
            double acc = 0.0;
            for (int i = start[v]; i < start[v + 1]; i++) acc += (double)dy[(size_t)order[i] * (size_t)d + (size_t)j];
            dtable[(size_t)v * (size_t)d + (size_t)j] += (float)acc;
        }
}
