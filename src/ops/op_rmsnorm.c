/* op_rmsnorm.c — launcher of the row-wise RMSNorm (cl/rmsnorm.cl): on GPUs one work-group of
 * BM_WG work-items per row (bm_rmsnorm_rows), on CPUs a work-item per 8 rows (bm_rmsnorm_rows_cpu);
 * rt->rmsnorm_form forces either (tests). */
#include "ops.h"

#include "error.h"

#define RMSNORM_CPU_ROWS 8 /* mirrors BM_RMS_CPU_ROWS in cl/rmsnorm.cl: rows per work-item */

/* The arguments both kernels start with (bm_rmsnorm_rows_cpu adds the row count after them). */
static cl_int rmsnorm_args(cl_kernel k, cl_mem x, size_t x_ld, size_t x_col, cl_mem w, cl_mem out, size_t out_ld,
                           size_t out_col, int d, float eps)
{
    cl_ulong xl = x_ld, xc = x_col, ol = out_ld, oc = out_col;
    cl_int cd = d, err = 0;
    cl_float ce = eps;
    err |= BM_ARG(k, 0, x);
    err |= BM_ARG(k, 1, xl);
    err |= BM_ARG(k, 2, xc);
    err |= BM_ARG(k, 3, w);
    err |= BM_ARG(k, 4, out);
    err |= BM_ARG(k, 5, ol);
    err |= BM_ARG(k, 6, oc);
    err |= BM_ARG(k, 7, cd);
    err |= BM_ARG(k, 8, ce);
    return err;
}

int bm_op_rmsnorm(bm_rt *rt, cl_mem x, size_t x_ld, size_t x_col, cl_mem w,
                  cl_mem out, size_t out_ld, size_t out_col, int rows, int d, float eps)
{
    if (rows < 0 || d < 0) return bm_fail(BMOJO_EINVAL, "bm_op_rmsnorm: negative size (rows=%d, d=%d)", rows, d);
    if (rows == 0 || d == 0) return 0;
    if (!x || !w || !out) return bm_fail(BMOJO_EINVAL, "bm_op_rmsnorm: NULL buffer");
    if (rows > 1 && (x_ld < x_col + (size_t)d || out_ld < out_col + (size_t)d))
        return bm_fail(BMOJO_EINVAL, "bm_op_rmsnorm: row of %d at column %zu/%zu exceeds leading dimension %zu/%zu",
                       d, x_col, out_col, x_ld, out_ld);
    if (bm_form_cpu(rt, rt->rmsnorm_form)) {
        cl_kernel kc = bm_kernel(rt, "bm_rmsnorm_rows_cpu");
        if (!kc) return bm_fail_context(BMOJO_EBUILD, "bm_op_rmsnorm");
        cl_int crows = rows;
        cl_int err = rmsnorm_args(kc, x, x_ld, x_col, w, out, out_ld, out_col, d, eps);
        err |= BM_ARG(kc, 9, crows);
        int st = bm_args_check(err, "bm_rmsnorm_rows_cpu");
        if (st) return st;
        /* as built: BMOJO_CL_DEFINES may set BM_RMS_CPU_ROWS */
        const size_t per = (size_t)bm_build_tunable(rt, "BM_RMS_CPU_ROWS", RMSNORM_CPU_ROWS);
        size_t global = ((size_t)rows + per - 1) / per, local = 1;
        return bm_launch(rt, kc, "bm_rmsnorm_rows_cpu", 1, &global, &local);
    }
    /* The kernel is compiled for exactly BM_WG = rt->lim.wg work-items and a local array of as
     * many floats; refuse rather than launch a shape the device cannot run. */
    size_t wg = rt->lim.wg;
    if (wg == 0 || wg > rt->lim.max_wg || (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) ||
        (uint64_t)wg * sizeof(float) > rt->lim.local_mem)
        return bm_fail(BMOJO_EUNSUPPORTED, "bm_op_rmsnorm: work-group size %zu does not fit the device (max %zu, local memory %llu bytes)",
                       wg, rt->lim.max_wg, (unsigned long long)rt->lim.local_mem);
    cl_kernel k = bm_kernel(rt, "bm_rmsnorm_rows");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_rmsnorm");
    int st = bm_args_check(rmsnorm_args(k, x, x_ld, x_col, w, out, out_ld, out_col, d, eps), "bm_rmsnorm_rows");
    if (st) return st;
    size_t global = (size_t)rows * wg, local = wg;
    return bm_launch(rt, k, "bm_rmsnorm_rows", 1, &global, &local);
}
