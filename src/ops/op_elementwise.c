/* op_elementwise.c — launchers of the elementwise kernels (cl/elementwise.cl): add, bias_add,
 * SwiGLU and the streaming copy. */
#include "ops.h"

#include "error.h"

/* The work-group size a launcher may ask for: BM_WG, never above the device maximum. */
static size_t ew_wg(const bm_rt *rt)
{
    size_t wg = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) wg = rt->lim.max_wi[0];
    return wg ? wg : 1;
}

/* Local size of a 2-D (column, row) range: dim 0 as wide as the row (a power of two), the rest
 * of the group over rows, so narrow rows still fill a work-group. */
static void ew_local2(const bm_rt *rt, size_t cols, size_t rows, size_t local[2])
{
    size_t wg = ew_wg(rt), l0 = 1, l1 = 1;
    while (l0 * 2 <= wg && l0 < cols) l0 *= 2;
    while (l0 * l1 * 2 <= wg && l1 < rows && (rt->lim.max_wi[1] == 0 || l1 * 2 <= rt->lim.max_wi[1])) l1 *= 2;
    local[0] = l0;
    local[1] = l1;
}

/* Launches a dense grid-stride kernel (args: a, b, ulong n) over n floats. The grid gives each
 * work-item about BM_EW_PER_ITEM float4 elements; the leftover n % 4 floats need n % 4 items. */
#define BM_EW_PER_ITEM 4
static int ew_dense(bm_rt *rt, const char *name, cl_mem a, cl_mem b, size_t n)
{
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", name);
    cl_ulong cn = n;
    cl_int err = 0;
    err |= BM_ARG(k, 0, a);
    err |= BM_ARG(k, 1, b);
    err |= BM_ARG(k, 2, cn);
    int st = bm_args_check(err, name);
    if (st) return st;
    size_t n4 = n / 4;
    size_t items = (n4 + BM_EW_PER_ITEM - 1) / BM_EW_PER_ITEM;
    if (items < n % 4) items = n % 4;
    size_t local = ew_wg(rt);
    size_t global = (items + local - 1) / local * local;
    return bm_launch(rt, k, name, 1, &global, &local);
}

int bm_op_add(bm_rt *rt, cl_mem x, cl_mem y, size_t n)
{
    if (n == 0) return 0;
    if (!x || !y) return bm_fail(BMOJO_EINVAL, "bm_op_add: NULL buffer");
    return ew_dense(rt, "bm_add_f32", x, y, n);
}

#define COPY_CPU_BLOCK 16384 /* floats per work-item of bm_copy_f32_blocks (64 KiB) */

int bm_op_copy_blocks(bm_rt *rt, cl_mem src, cl_mem dst, size_t n)
{
    if (n == 0) return 0;
    if (!src || !dst) return bm_fail(BMOJO_EINVAL, "bm_op_copy: NULL buffer");
    const char *name = "bm_copy_f32_blocks";
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", name);
    cl_ulong cn = n, block = COPY_CPU_BLOCK;
    cl_int err = BM_ARG(k, 0, src) | BM_ARG(k, 1, dst) | BM_ARG(k, 2, cn) | BM_ARG(k, 3, block);
    int st = bm_args_check(err, name);
    size_t global = (n + COPY_CPU_BLOCK - 1) / COPY_CPU_BLOCK, local = 1;
    if (!st) st = bm_launch(rt, k, name, 1, &global, &local);
    return st;
}

int bm_op_copy(bm_rt *rt, cl_mem src, cl_mem dst, size_t n)
{
    if (n == 0) return 0;
    if (!src || !dst) return bm_fail(BMOJO_EINVAL, "bm_op_copy: NULL buffer");
    if (!rt->lim.is_gpu) return bm_op_copy_blocks(rt, src, dst, n);
    return ew_dense(rt, "bm_copy_f32", src, dst, n);
}

int bm_op_bias_add(bm_rt *rt, cl_mem x, size_t ld, cl_mem bias, int rows, int cols)
{
    if (rows < 0 || cols < 0) return bm_fail(BMOJO_EINVAL, "bm_op_bias_add: negative size (rows=%d, cols=%d)", rows, cols);
    if (rows == 0 || cols == 0) return 0;
    if (!x || !bias) return bm_fail(BMOJO_EINVAL, "bm_op_bias_add: NULL buffer");
    if (rows > 1 && ld < (size_t)cols)
        return bm_fail(BMOJO_EINVAL, "bm_op_bias_add: %d columns exceed leading dimension %zu", cols, ld);
    cl_kernel k = bm_kernel(rt, "bm_bias_add_f32");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_bias_add");
    cl_ulong cld = ld;
    cl_int cr = rows, cc = cols, err = 0;
    err |= BM_ARG(k, 0, x);
    err |= BM_ARG(k, 1, cld);
    err |= BM_ARG(k, 2, bias);
    err |= BM_ARG(k, 3, cr);
    err |= BM_ARG(k, 4, cc);
    int st = bm_args_check(err, "bm_bias_add_f32");
    if (st) return st;
    size_t global[2] = {(size_t)cols, (size_t)rows}, local[2];
    ew_local2(rt, global[0], global[1], local);
    return bm_launch(rt, k, "bm_bias_add_f32", 2, global, local);
}

int bm_op_swiglu(bm_rt *rt, cl_mem g, size_t ld_in, size_t g_col, size_t u_col, cl_mem out, int rows, int cols)
{
    if (rows < 0 || cols < 0) return bm_fail(BMOJO_EINVAL, "bm_op_swiglu: negative size (rows=%d, cols=%d)", rows, cols);
    if (rows == 0 || cols == 0) return 0;
    if (!g || !out) return bm_fail(BMOJO_EINVAL, "bm_op_swiglu: NULL buffer");
    if (rows > 1 && (ld_in < g_col + (size_t)cols || ld_in < u_col + (size_t)cols))
        return bm_fail(BMOJO_EINVAL, "bm_op_swiglu: %d columns at gate column %zu / up column %zu exceed leading dimension %zu",
                       cols, g_col, u_col, ld_in);
    cl_kernel k = bm_kernel(rt, "bm_swiglu_f32");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_swiglu");
    cl_ulong cld = ld_in, cg = g_col, cu = u_col;
    cl_int cr = rows, cc = cols, err = 0;
    err |= BM_ARG(k, 0, g);
    err |= BM_ARG(k, 1, cld);
    err |= BM_ARG(k, 2, cg);
    err |= BM_ARG(k, 3, cu);
    err |= BM_ARG(k, 4, out);
    err |= BM_ARG(k, 5, cr);
    err |= BM_ARG(k, 6, cc);
    int st = bm_args_check(err, "bm_swiglu_f32");
    if (st) return st;
    size_t global[2] = {(size_t)cols, (size_t)rows}, local[2];
    ew_local2(rt, global[0], global[1], local);
    return bm_launch(rt, k, "bm_swiglu_f32", 2, global, local);
}
