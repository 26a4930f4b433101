/* op_embed.c — launcher of the embedding gather (cl/embed.cl; bm_embed_gather_w16 for an f16 table). */
#include "ops.h"

#include "error.h"

int bm_op_embed(bm_rt *rt, cl_mem ids, bm_wmat table, cl_mem out, int n, int d)
{
    if (n < 0 || d < 0) return bm_fail(BMOJO_EINVAL, "bm_op_embed: negative size (n=%d, d=%d)", n, d);
    if (n == 0 || d == 0) return 0;
    if (!ids || !table.buf || !out) return bm_fail(BMOJO_EINVAL, "bm_op_embed: NULL buffer");
    const char *name = table.store == BM_STORE_F16 ? "bm_embed_gather_w16" : "bm_embed_gather";
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_embed");
    cl_int cn = n, cd = d, err = 0;
    err |= BM_ARG(k, 0, ids);
    err |= BM_ARG(k, 1, table.buf);
    err |= BM_ARG(k, 2, out);
    err |= BM_ARG(k, 3, cn);
    err |= BM_ARG(k, 4, cd);
    int st = bm_args_check(err, name);
    if (st) return st;
    /* Dim 0 along the row: as wide as the row allows (power of two, within the device limits);
     * the rest of the work-group covers further rows so short rows still fill a group. */
    size_t wg = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (wg == 0) wg = 1;
    size_t l0 = 1, l1 = 1;
    while (l0 * 2 <= wg && l0 < (size_t)d && (rt->lim.max_wi[0] == 0 || l0 * 2 <= rt->lim.max_wi[0])) l0 *= 2;
    while (l0 * l1 * 2 <= wg && l1 < (size_t)n && (rt->lim.max_wi[1] == 0 || l1 * 2 <= rt->lim.max_wi[1])) l1 *= 2;
    size_t global[2] = {(size_t)d, (size_t)n}, local[2] = {l0, l1};
    return bm_launch(rt, k, name, 2, global, local);
}
