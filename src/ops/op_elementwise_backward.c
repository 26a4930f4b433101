/* op_elementwise_backward.c — launchers of the elementwise gradients (cl/elementwise_backward.cl):
 * SwiGLU, column sums (bias gradients), A = -exp(A_log) and its chain rule. */
#include "ops_backward.h"

#include "error.h"
#include "ops/colsum.h"

/* Rows one work-item of bm_colsum_part sums (also used by bm_op_rmsnorm_backward's dw): enough
 * rows that the serial reduce over blocks stays short, few enough that B*T rows give a GPU many
 * work-items (16384 rows x 768 columns: 196,608). */
#define BM_COLSUM_ROWS_PER_BLOCK 64

/* The work-group size a launcher may ask for: BM_WG, never above the device maximum. */
static size_t ewb_wg(const bm_rt *rt)
{
    size_t wg = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) wg = rt->lim.max_wi[0];
    return wg ? wg : 1;
}

/* Local size of a 2-D (column, row) range: dim 0 as wide as the row (a power of two), the rest
 * of the group over rows, so narrow rows still fill a work-group. */
static void ewb_local2(const bm_rt *rt, size_t cols, size_t rows, size_t local[2])
{
    size_t wg = ewb_wg(rt), l0 = 1, l1 = 1;
    while (l0 * 2 <= wg && l0 < cols) l0 *= 2;
    while (l0 * l1 * 2 <= wg && l1 < rows && (rt->lim.max_wi[1] == 0 || l1 * 2 <= rt->lim.max_wi[1])) l1 *= 2;
    local[0] = l0;
    local[1] = l1;
}

int bm_op_swiglu_backward(bm_rt *rt, cl_mem gu, size_t ld, size_t g_col, size_t u_col, cl_mem dout, cl_mem dgu,
                          int rows, int cols)
{
    if (rows < 0 || cols < 0)
        return bm_fail(BMOJO_EINVAL, "bm_op_swiglu_backward: negative size (rows=%d, cols=%d)", rows, cols);
    if (rows == 0 || cols == 0) return 0;
    if (!gu) return bm_fail(BMOJO_EINVAL, "bm_op_swiglu_backward: NULL buffer gu");
    if (!dout) return bm_fail(BMOJO_EINVAL, "bm_op_swiglu_backward: NULL buffer dout");
    if (!dgu) return bm_fail(BMOJO_EINVAL, "bm_op_swiglu_backward: NULL buffer dgu");
    if (rows > 1 && (ld < g_col + (size_t)cols || ld < u_col + (size_t)cols))
        return bm_fail(BMOJO_EINVAL,
                       "bm_op_swiglu_backward: %d columns at g_col %zu / u_col %zu exceed leading dimension ld %zu",
                       cols, g_col, u_col, ld);
    /* Overlapping gate and up columns would make dg and du race for the same elements. */
    if (g_col < u_col + (size_t)cols && u_col < g_col + (size_t)cols)
        return bm_fail(BMOJO_EINVAL, "bm_op_swiglu_backward: g_col %zu and u_col %zu overlap (%d columns)", g_col,
                       u_col, cols);
    cl_kernel k = bm_kernel(rt, "bm_swiglu_bwd");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_swiglu_backward");
    cl_ulong cld = ld, cg = g_col, cu = u_col;
    cl_int cr = rows, cc = cols, err = 0;
    err |= BM_ARG(k, 0, gu);
    err |= BM_ARG(k, 1, cld);
    err |= BM_ARG(k, 2, cg);
    err |= BM_ARG(k, 3, cu);
    err |= BM_ARG(k, 4, dout);
    err |= BM_ARG(k, 5, dgu);
    err |= BM_ARG(k, 6, cr);
    err |= BM_ARG(k, 7, cc);
    int st = bm_args_check(err, "bm_swiglu_bwd");
    if (st) return st;
    size_t global[2] = {(size_t)cols, (size_t)rows}, local[2];
    ewb_local2(rt, global[0], global[1], local);
    return bm_launch(rt, k, "bm_swiglu_bwd", 2, global, local);
}

int bm_colsum_reduce_launch(bm_rt *rt, cl_mem part, cl_mem out, int blocks, int cols)
{
    cl_kernel k = bm_kernel(rt, "bm_colsum_reduce");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_colsum_reduce");
    cl_int cb = blocks, cc = cols, err = 0;
    err |= BM_ARG(k, 0, part);
    err |= BM_ARG(k, 1, out);
    err |= BM_ARG(k, 2, cb);
    err |= BM_ARG(k, 3, cc);
    int st = bm_args_check(err, "bm_colsum_reduce");
    if (st) return st;
    size_t local = ewb_wg(rt), global = (size_t)cols;
    return bm_launch(rt, k, "bm_colsum_reduce", 1, &global, &local);
}

int bm_colsum_blocks(int rows, int *rows_per_block)
{
    *rows_per_block = BM_COLSUM_ROWS_PER_BLOCK;
    return (rows + BM_COLSUM_ROWS_PER_BLOCK - 1) / BM_COLSUM_ROWS_PER_BLOCK;
}

static int colsum_launch(bm_rt *rt, cl_mem dy, size_t ld, size_t col, int rows, int cols, cl_mem dbias)
{
    if (rows < 0 || cols < 0) return bm_fail(BMOJO_EINVAL, "bm_op_colsum: negative size (rows=%d, cols=%d)", rows, cols);
    if (rows == 0 || cols == 0) return 0;
    if (!dy) return bm_fail(BMOJO_EINVAL, "bm_op_colsum: NULL buffer dy");
    if (!dbias) return bm_fail(BMOJO_EINVAL, "bm_op_colsum: NULL buffer dbias");
    if (rows > 1 && ld < col + (size_t)cols)
        return bm_fail(BMOJO_EINVAL, "bm_op_colsum: %d columns at col %zu exceed leading dimension ld %zu", cols, col, ld);
    int rpb, blocks = bm_colsum_blocks(rows, &rpb);
    cl_mem part = dbias;
    if (blocks > 1) {
        int st = bm_scratch_take(rt, (size_t)blocks * (size_t)cols * sizeof(float), &part);
        if (st) return st;
    }
    cl_kernel k = bm_kernel(rt, "bm_colsum_part");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_colsum");
    cl_ulong cld = ld, ccol = col;
    cl_int cr = rows, cc = cols, crpb = rpb, acc = blocks == 1, err = 0;
    err |= BM_ARG(k, 0, dy);
    err |= BM_ARG(k, 1, cld);
    err |= BM_ARG(k, 2, ccol);
    err |= BM_ARG(k, 3, part);
    err |= BM_ARG(k, 4, cr);
    err |= BM_ARG(k, 5, cc);
    err |= BM_ARG(k, 6, crpb);
    err |= BM_ARG(k, 7, acc);
    int st = bm_args_check(err, "bm_colsum_part");
    if (st) return st;
    size_t global[2] = {(size_t)cols, (size_t)blocks}, local[2];
    ewb_local2(rt, global[0], global[1], local);
    st = bm_launch(rt, k, "bm_colsum_part", 2, global, local);
    if (st || blocks == 1) return st;
    return bm_colsum_reduce_launch(rt, part, dbias, blocks, cols);
}

int bm_op_colsum(bm_rt *rt, cl_mem dy, size_t ld, size_t col, int rows, int cols, cl_mem dbias)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = colsum_launch(rt, dy, ld, col, rows, cols, dbias);
    bm_scratch_release(rt, mark);
    return st;
}

static int ewb_vec(bm_rt *rt, const char *name, cl_mem a, cl_mem b, cl_mem c, size_t n)
{
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", name);
    cl_ulong cn = n;
    cl_int err = 0;
    int i = 0;
    err |= BM_ARG(k, i, a), i++;
    err |= BM_ARG(k, i, b), i++;
    if (c) err |= BM_ARG(k, i, c), i++;
    err |= BM_ARG(k, i, cn);
    int st = bm_args_check(err, name);
    if (st) return st;
    size_t local = ewb_wg(rt), global = n;
    return bm_launch(rt, k, name, 1, &global, &local);
}

int bm_op_neg_exp(bm_rt *rt, cl_mem a_log, cl_mem a, size_t n)
{
    if (n == 0) return 0;
    if (!a_log) return bm_fail(BMOJO_EINVAL, "bm_op_neg_exp: NULL buffer a_log");
    if (!a) return bm_fail(BMOJO_EINVAL, "bm_op_neg_exp: NULL buffer a");
    return ewb_vec(rt, "bm_neg_exp_f32", a_log, a, NULL, n);
}

int bm_op_neg_exp_backward(bm_rt *rt, cl_mem a, cl_mem d_a, cl_mem d_a_log, size_t n)
{
    if (n == 0) return 0;
    if (!a) return bm_fail(BMOJO_EINVAL, "bm_op_neg_exp_backward: NULL buffer a");
    if (!d_a) return bm_fail(BMOJO_EINVAL, "bm_op_neg_exp_backward: NULL buffer d_a");
    if (!d_a_log) return bm_fail(BMOJO_EINVAL, "bm_op_neg_exp_backward: NULL buffer d_a_log");
    return ewb_vec(rt, "bm_neg_exp_bwd", a, d_a, d_a_log, n);
}
