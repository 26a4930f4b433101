/* op_embed_backward.c — launcher of the embedding gradient (cl/embed_backward.cl) and the host
 * counting sort that turns a batch's ids into the per-id row lists the kernel gathers from. */
#include "ops_backward.h"

#include "error.h"

void bm_embed_rows_by_id(const int32_t *ids, int n, int V, int32_t *order, int32_t *start)
{
    if (V < 0) return;
    for (int v = 0; v <= V; v++) start[v] = 0;
    if (n <= 0) return;
    /* Counting sort: start[v + 1] counts id v, the prefix sum turns start[v] into the first slot
     * of id v, placing rows in increasing order keeps each id's rows in order (stable), and the
     * placement leaves start[v] at the end of id v, undone by a shift. Ids outside [0, V) are
     * the caller's to refuse; if any slip through they land in no list (after start[V]) instead
     * of writing out of bounds. */
    for (int r = 0; r < n; r++)
        if (ids[r] >= 0 && ids[r] < V) start[ids[r] + 1]++;
    for (int v = 0; v < V; v++) start[v + 1] += start[v];
    int tail = start[V];
    for (int r = 0; r < n; r++) {
        int32_t id = ids[r];
        if (id >= 0 && id < V) order[start[id]++] = r;
        else order[tail++] = r;
    }
    for (int v = V; v > 0; v--) start[v] = start[v - 1];
    start[0] = 0;
}

int bm_op_embed_backward(bm_rt *rt, cl_mem order, cl_mem start, cl_mem dy, cl_mem dtable, int n, int d, int V)
{
    if (n < 0 || d < 0 || V < 0)
        return bm_fail(BMOJO_EINVAL, "bm_op_embed_backward: negative size (n=%d, d=%d, V=%d)", n, d, V);
    if (n == 0 || d == 0 || V == 0) return 0;
    if (!order) return bm_fail(BMOJO_EINVAL, "bm_op_embed_backward: NULL buffer order");
    if (!start) return bm_fail(BMOJO_EINVAL, "bm_op_embed_backward: NULL buffer start");
    if (!dy) return bm_fail(BMOJO_EINVAL, "bm_op_embed_backward: NULL buffer dy");
    if (!dtable) return bm_fail(BMOJO_EINVAL, "bm_op_embed_backward: NULL buffer dtable");
    cl_kernel k = bm_kernel(rt, "bm_embed_bwd_gather");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_embed_backward");
    cl_int cd = d, cv = V, err = 0;
    err |= BM_ARG(k, 0, order);
    err |= BM_ARG(k, 1, start);
    err |= BM_ARG(k, 2, dy);
    err |= BM_ARG(k, 3, dtable);
    err |= BM_ARG(k, 4, cd);
    err |= BM_ARG(k, 5, cv);
    int st = bm_args_check(err, "bm_embed_bwd_gather");
    if (st) return st;
    /* Dim 0 along the row (a power of two up to the row's width), the rest of the work-group over
     * ids, within the device's limits: the forward gather's shape. */
    size_t wg = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (wg == 0) wg = 1;
    size_t l0 = 1, l1 = 1;
    while (l0 * 2 <= wg && l0 < (size_t)d && (rt->lim.max_wi[0] == 0 || l0 * 2 <= rt->lim.max_wi[0])) l0 *= 2;
    while (l0 * l1 * 2 <= wg && l1 < (size_t)V && (rt->lim.max_wi[1] == 0 || l1 * 2 <= rt->lim.max_wi[1])) l1 *= 2;
    size_t global[2] = {(size_t)d, (size_t)V}, local[2] = {l0, l1};
    return bm_launch(rt, k, "bm_embed_bwd_gather", 2, global, local);
}
