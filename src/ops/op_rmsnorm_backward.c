/* op_rmsnorm_backward.c — launcher of the RMSNorm gradient (cl/rmsnorm_backward.cl): per-row
 * statistics, dw by row-block partials reduced in fixed order (ops/colsum.h), then dx
 * elementwise. dx may alias dy with the same ld/col (the norms run in place). */
#include "ops_backward.h"

#include "error.h"
#include "ops/colsum.h"

/* Two views of one buffer are safe when they are the same view (every element read and written
 * by one work-item of the dx kernel) or, with one leading dimension, disjoint column ranges. */
static int views_ok(cl_mem a, size_t a_ld, size_t a_col, cl_mem b, size_t b_ld, size_t b_col, int rows, int d)
{
    if (a != b) return 1;
    if (a_ld == b_ld && a_col == b_col) return 1;
    if (rows == 1 || a_ld == b_ld) return a_col + (size_t)d <= b_col || b_col + (size_t)d <= a_col;
    return 0;
}

static int rmsnorm_backward_launch(bm_rt *rt, cl_mem x, size_t x_ld, size_t x_col, cl_mem w, cl_mem dy, size_t dy_ld,
                                   size_t dy_col, float beta_dx, cl_mem dx, size_t dx_ld, size_t dx_col, cl_mem dw, int rows,
                                   int d, float eps)
{
    const char *fn = "bm_op_rmsnorm_backward";
    if (rows < 0 || d < 0) return bm_fail(BMOJO_EINVAL, "%s: negative size (rows=%d, d=%d)", fn, rows, d);
    if (rows == 0 || d == 0) return 0;
    if (!x) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer x", fn);
    if (!w) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer w", fn);
    if (!dy) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer dy", fn);
    if (!dx) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer dx", fn);
    if (!dw) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer dw", fn);
    if (rows > 1 && x_ld < x_col + (size_t)d)
        return bm_fail(BMOJO_EINVAL, "%s: row of %d at x_col %zu exceeds x_ld %zu", fn, d, x_col, x_ld);
    if (rows > 1 && dy_ld < dy_col + (size_t)d)
        return bm_fail(BMOJO_EINVAL, "%s: row of %d at dy_col %zu exceeds dy_ld %zu", fn, d, dy_col, dy_ld);
    if (rows > 1 && dx_ld < dx_col + (size_t)d)
        return bm_fail(BMOJO_EINVAL, "%s: row of %d at dx_col %zu exceeds dx_ld %zu", fn, d, dx_col, dx_ld);
    if (!views_ok(dx, dx_ld, dx_col, dy, dy_ld, dy_col, rows, d))
        return bm_fail(BMOJO_EINVAL, "%s: dx overlaps dy with a different ld/col (in place needs the same view)", fn);
    if (!views_ok(dx, dx_ld, dx_col, x, x_ld, x_col, rows, d))
        return bm_fail(BMOJO_EINVAL, "%s: dx overlaps x with a different ld/col (in place needs the same view)", fn);
    /* The statistics kernel's GPU form is compiled for exactly BM_WG = rt->lim.wg work-items with
     * two local arrays of as many floats; refuse rather than launch a shape the device cannot run.
     * CPUs run its CPU form (rt->rmsnorm_form, as the forward's). */
    const int cpu = bm_form_cpu(rt, rt->rmsnorm_form);
    size_t wg = rt->lim.wg;
    if (!cpu && (wg == 0 || wg > rt->lim.max_wg || (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) ||
        (uint64_t)wg * 2 * sizeof(float) > rt->lim.local_mem))
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: work-group size %zu does not fit the device (max %zu, local memory %llu bytes)",
                       fn, wg, rt->lim.max_wg, (unsigned long long)rt->lim.local_mem);

    int rpb, blocks = bm_colsum_blocks(rows, &rpb);
    cl_mem stats = NULL, part = dw;
    int st = bm_scratch_take(rt, (size_t)rows * 2 * sizeof(float), &stats);
    if (!st && blocks > 1) st = bm_scratch_take(rt, (size_t)blocks * (size_t)d * sizeof(float), &part);
    if (st) return st;

    cl_ulong xl = x_ld, xc = x_col, gl = dy_ld, gc = dy_col, ol = dx_ld, oc = dx_col;
    cl_int cd = d, cr = rows, crpb = rpb, acc = blocks == 1, err = 0;
    cl_float ce = eps, cb = beta_dx;

    /* 1. (r, r^3/d sum w*dy*x) per row. */
    const char *stats_name = cpu ? "bm_rmsnorm_bwd_stats_cpu" : "bm_rmsnorm_bwd_stats";
    cl_kernel k = bm_kernel(rt, stats_name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    err |= BM_ARG(k, 0, x);
    err |= BM_ARG(k, 1, xl);
    err |= BM_ARG(k, 2, xc);
    err |= BM_ARG(k, 3, w);
    err |= BM_ARG(k, 4, dy);
    err |= BM_ARG(k, 5, gl);
    err |= BM_ARG(k, 6, gc);
    err |= BM_ARG(k, 7, stats);
    err |= BM_ARG(k, 8, cd);
    err |= BM_ARG(k, 9, ce);
    if (cpu) err |= BM_ARG(k, 10, cr);
    if ((st = bm_args_check(err, stats_name))) return st;
    const size_t cpu_rows = (size_t)bm_build_tunable(rt, "BM_RMS_CPU_ROWS", 8); /* cl/rmsnorm.cl's default */
    size_t global = cpu ? ((size_t)rows + cpu_rows - 1) / cpu_rows : (size_t)rows * wg, local = cpu ? 1 : wg;
    if ((st = bm_launch(rt, k, stats_name, 1, &global, &local))) return st;

    /* Local size of the 2-D (column, row) ranges: dim 0 along the row, the rest over rows. */
    size_t lw = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (rt->lim.max_wi[0] && lw > rt->lim.max_wi[0]) lw = rt->lim.max_wi[0];
    if (lw == 0) lw = 1;
    size_t l0 = 1;
    while (l0 * 2 <= lw && l0 < (size_t)d) l0 *= 2;

    /* 2. dw partials per block of rows (reads dy before step 4 may overwrite it). */
    k = bm_kernel(rt, "bm_rmsnorm_bwd_dw_part");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    err = 0;
    err |= BM_ARG(k, 0, x);
    err |= BM_ARG(k, 1, xl);
    err |= BM_ARG(k, 2, xc);
    err |= BM_ARG(k, 3, dy);
    err |= BM_ARG(k, 4, gl);
    err |= BM_ARG(k, 5, gc);
    err |= BM_ARG(k, 6, stats);
    err |= BM_ARG(k, 7, part);
    err |= BM_ARG(k, 8, cr);
    err |= BM_ARG(k, 9, cd);
    err |= BM_ARG(k, 10, crpb);
    err |= BM_ARG(k, 11, acc);
    if ((st = bm_args_check(err, "bm_rmsnorm_bwd_dw_part"))) return st;
    size_t g2[2] = {(size_t)d, (size_t)blocks}, l2[2] = {l0, 1};
    while (l2[0] * l2[1] * 2 <= lw && l2[1] < (size_t)blocks &&
           (rt->lim.max_wi[1] == 0 || l2[1] * 2 <= rt->lim.max_wi[1]))
        l2[1] *= 2;
    if ((st = bm_launch(rt, k, "bm_rmsnorm_bwd_dw_part", 2, g2, l2))) return st;

    /* 3. dw += the partials in block order. */
    if (blocks > 1 && (st = bm_colsum_reduce_launch(rt, part, dw, blocks, d))) return st;

    /* 4. dx. */
    k = bm_kernel(rt, "bm_rmsnorm_bwd_dx");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    err = 0;
    err |= BM_ARG(k, 0, x);
    err |= BM_ARG(k, 1, xl);
    err |= BM_ARG(k, 2, xc);
    err |= BM_ARG(k, 3, w);
    err |= BM_ARG(k, 4, dy);
    err |= BM_ARG(k, 5, gl);
    err |= BM_ARG(k, 6, gc);
    err |= BM_ARG(k, 7, stats);
    err |= BM_ARG(k, 8, cb);
    err |= BM_ARG(k, 9, dx);
    err |= BM_ARG(k, 10, ol);
    err |= BM_ARG(k, 11, oc);
    err |= BM_ARG(k, 12, cr);
    err |= BM_ARG(k, 13, cd);
    if ((st = bm_args_check(err, "bm_rmsnorm_bwd_dx"))) return st;
    size_t g4[2] = {(size_t)d, (size_t)rows}, l4[2] = {l0, 1};
    while (l4[0] * l4[1] * 2 <= lw && l4[1] < (size_t)rows && (rt->lim.max_wi[1] == 0 || l4[1] * 2 <= rt->lim.max_wi[1]))
        l4[1] *= 2;
    return bm_launch(rt, k, "bm_rmsnorm_bwd_dx", 2, g4, l4);
}

int bm_op_rmsnorm_backward(bm_rt *rt, cl_mem x, size_t x_ld, size_t x_col, cl_mem w, cl_mem dy, size_t dy_ld,
                           size_t dy_col, float beta_dx, cl_mem dx, size_t dx_ld, size_t dx_col, cl_mem dw, int rows,
                           int d, float eps)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = rmsnorm_backward_launch(rt, x, x_ld, x_col, w, dy, dy_ld, dy_col, beta_dx, dx, dx_ld, dx_col, dw, rows, d, eps);
    bm_scratch_release(rt, mark);
    return st;
}
