/* embed_backward.cl — gradient of the embedding gather: dtable[v, :] += sum of dy[r, :] over the
 * rows r with ids[r] == v, without atomics.
 * Layout: order int32 [n] (row indices sorted by id, stable), start int32 [V + 1] (rows of id v
 * are order[start[v] .. start[v+1])), both from the host's counting sort (bm_embed_rows_by_id);
 * dy fp32 [n, d] dense; dtable fp32 [V, d] dense.
 * Algorithm: a gather, not a scatter: work-item (j, v) owns dtable[v, j] and sums dy[order[i], j]
 * for its id's rows in increasing row order, so the result is deterministic and race-free.
 * Ids no row uses exit at once without touching dtable.
 * Variants considered: float atomics (not in OpenCL 1.2, nondeterministic), a scatter by rows
 * with a conflict-free colouring (needs more host work than the sort), one work-group per id
 * (fine for d >= BM_WG, wastes lanes for small d). Chosen: the 2-D range of the forward gather
 * (dim 0 along the row, coalesced; dim 1 over ids), so the launch shape copes with any d. */

__kernel void bm_embed_bwd_gather(__global const int *order, __global const int *start,
                                  __global const float *dy, __global float *dtable, int d, int V)
{
    int j = (int)get_global_id(0);
    int v = (int)get_global_id(1);
    if (j >= d || v >= V) return;
    int b = start[v], e = start[v + 1];
    if (b >= e) return;
    float acc = 0.0f;
    for (int i = b; i < e; i++) acc += dy[(ulong)order[i] * (ulong)d + (ulong)j];
    dtable[(ulong)v * (ulong)d + (ulong)j] += acc;
}
