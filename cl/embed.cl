/* embed.cl — embedding gather: out[r, j] = table[ids[r], j].
 * Layout: ids int32 [n]; table [V, d] row-major, fp32 (bm_embed_gather) or half
 * (bm_embed_gather_w16, `--weights f16`: widened by vload_half); out fp32 [n, d] dense.
 * Variants considered: one work-group per row (wastes lanes when d is small and needs a loop
 * when d > BM_WG) and a flat 1-D index with a division per element (fine, but a row split over
 * two groups). Chosen: a 2-D range (column, row) — dim 0 runs along a row so neighbouring
 * work-items read and write neighbouring floats (coalesced), dim 1 picks the row; the id is
 * loaded once per work-item from a broadcast address. The gather is pure bandwidth, so nothing
 * else matters. Ids are validated by the caller (ops.h). */

static inline void bm_embed_gather_body(const int w16, __global const int *ids, __global const uchar *table,
                                        __global float *out, int n, int d)
{
    int j = (int)get_global_id(0);
    int r = (int)get_global_id(1);
    if (j >= d || r >= n) return;
    ulong src = (ulong)ids[r] * (ulong)d + (ulong)j;
    out[(ulong)r * (ulong)d + (ulong)j] = bm_w_load(table, src, w16);
}

__kernel void bm_embed_gather(__global const int *ids, __global const uchar *table, __global float *out, int n, int d)
{
    bm_embed_gather_body(0, ids, table, out, n, d);
}

__kernel void bm_embed_gather_w16(__global const int *ids, __global const uchar *table, __global float *out, int n,
                                  int d)
{
    bm_embed_gather_body(1, ids, table, out, n, d);
}
