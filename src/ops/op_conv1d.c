/* op_conv1d.c — launcher of the causal depthwise conv1d + SiLU with state (cl/conv1d.cl): the
 * output kernel, then the state update, in that order on the in-order queue. */
#include "ops.h"

#include <limits.h>

#include "error.h"

/* Local size of a 2-D (channel, row) range: dim 0 as wide as di allows (a power of two within
 * the device limits), the rest of the group over rows. */
static void conv_local2(const bm_rt *rt, size_t cols, size_t rows, size_t local[2])
{
    size_t wg = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) wg = rt->lim.max_wi[0];
    if (wg == 0) wg = 1;
    size_t l0 = 1, l1 = 1;
    while (l0 * 2 <= wg && l0 < cols) l0 *= 2;
    while (l0 * l1 * 2 <= wg && l1 < rows && (rt->lim.max_wi[1] == 0 || l1 * 2 <= rt->lim.max_wi[1])) l1 *= 2;
    local[0] = l0;
    local[1] = l1;
}

#define CONV_TT 8   /* mirrors BM_CONV_TT in cl/conv1d.cl: steps per work-item of the tiled kernel */
#define CONV_KMAX 8 /* mirrors BM_CONV_KMAX: the tiled kernel's largest kernel width */

/* The arguments of the prefill kernels bm_conv1d_out_tiled and bm_conv1d_cpu (the same list). */
static int conv_prefill_args(cl_kernel k, const char *name, const bm_conv_args *a)
{
    cl_ulong xld = a->x_ld;
    cl_int has_bias = a->bias != NULL, T = a->T, di = a->di, kk = a->k, B = a->B, err = 0;
    cl_mem bias = a->bias ? a->bias : a->w;
    cl_mem state = a->state ? a->state : a->w;
    err |= BM_ARG(k, 0, a->x);
    err |= BM_ARG(k, 1, xld);
    err |= BM_ARG(k, 2, a->w);
    err |= BM_ARG(k, 3, bias);
    err |= BM_ARG(k, 4, has_bias);
    err |= BM_ARG(k, 5, state);
    err |= BM_ARG(k, 6, a->out);
    err |= BM_ARG(k, 7, T);
    err |= BM_ARG(k, 8, di);
    err |= BM_ARG(k, 9, kk);
    err |= BM_ARG(k, 10, B);
    return bm_args_check(err, name);
}

/* The prefill outputs through bm_conv1d_out_tiled (T > 1, k <= CONV_KMAX); 0 or an error. */
static int conv_out_tiled(bm_rt *rt, const bm_conv_args *a)
{
    cl_kernel k = bm_kernel(rt, "bm_conv1d_out_tiled");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d");
    int st = conv_prefill_args(k, "bm_conv1d_out_tiled", a);
    if (st) return st;
    size_t global[2] = {(size_t)a->di, (size_t)a->B * (((size_t)a->T + CONV_TT - 1) / CONV_TT)}, local[2];
    conv_local2(rt, global[0], global[1], local);
    return bm_launch(rt, k, "bm_conv1d_out_tiled", 2, global, local);
}

/* The prefill outputs through bm_conv1d_cpu (CPUs; T > 1, k <= CONV_KMAX); 0 or an error. */
#define CONV_CPU_TB 32 /* mirrors BM_CONVC_TB in cl/conv1d_cpu.cl: steps per work-item */
static int conv_out_cpu(bm_rt *rt, const bm_conv_args *a)
{
    cl_kernel k = bm_kernel(rt, "bm_conv1d_cpu");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d");
    int st = conv_prefill_args(k, "bm_conv1d_cpu", a);
    if (st) return st;
    const size_t global[2] = {((size_t)a->di + 15) / 16, (size_t)a->B * (((size_t)a->T + CONV_CPU_TB - 1) / CONV_CPU_TB)};
    const size_t local[2] = {1, 1};
    return bm_launch(rt, k, "bm_conv1d_cpu", 2, global, local);
}

/* The new state (the last k-1 inputs) after a prefill's outputs; the in-order queue runs it after
 * every read of the old state. */
static int conv_state_update(bm_rt *rt, const bm_conv_args *a)
{
    cl_ulong xld = a->x_ld;
    cl_int T = a->T, di = a->di, k = a->k, B = a->B, err = 0;
    cl_kernel ks = bm_kernel(rt, "bm_conv1d_state");
    if (!ks) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d");
    err |= BM_ARG(ks, 0, a->x);
    err |= BM_ARG(ks, 1, xld);
    err |= BM_ARG(ks, 2, a->state);
    err |= BM_ARG(ks, 3, B);
    err |= BM_ARG(ks, 4, T);
    err |= BM_ARG(ks, 5, di);
    err |= BM_ARG(ks, 6, k);
    int st = bm_args_check(err, "bm_conv1d_state");
    if (st) return st;
    size_t gs[2] = {(size_t)a->di, (size_t)a->B}, ls[2];
    conv_local2(rt, gs[0], gs[1], ls);
    return bm_launch(rt, ks, "bm_conv1d_state", 2, gs, ls);
}

/* One work-item per output (decoding, or kernel widths above CONV_KMAX); at T = 1 the kernel
 * also shifts the state. */
static int conv_out_rows(bm_rt *rt, const bm_conv_args *a)
{
    cl_int step = a->T == 1 && a->k > 1; /* the output kernel also shifts the state */
    cl_kernel ko = bm_kernel(rt, "bm_conv1d_out");
    if (!ko) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d");
    cl_ulong xld = a->x_ld;
    cl_int has_bias = a->bias != NULL, T = a->T, di = a->di, k = a->k, rows = a->B * a->T, err = 0;
    cl_mem bias = a->bias ? a->bias : a->w; /* any valid buffer; has_bias = 0 keeps it unread */
    cl_mem state = a->state ? a->state : a->w; /* k = 1: no state, never read */
    err |= BM_ARG(ko, 0, a->x);
    err |= BM_ARG(ko, 1, xld);
    err |= BM_ARG(ko, 2, a->w);
    err |= BM_ARG(ko, 3, bias);
    err |= BM_ARG(ko, 4, has_bias);
    err |= BM_ARG(ko, 5, state);
    err |= BM_ARG(ko, 6, a->out);
    err |= BM_ARG(ko, 7, T);
    err |= BM_ARG(ko, 8, di);
    err |= BM_ARG(ko, 9, k);
    err |= BM_ARG(ko, 10, rows);
    err |= BM_ARG(ko, 11, step);
    int st = bm_args_check(err, "bm_conv1d_out");
    if (st) return st;
    size_t global[2] = {(size_t)a->di, (size_t)rows}, local[2];
    conv_local2(rt, global[0], global[1], local);
    return bm_launch(rt, ko, "bm_conv1d_out", 2, global, local);
}

int bm_op_conv1d(bm_rt *rt, const bm_conv_args *a) { return bm_op_conv1d_variant(rt, a, BM_CONV_AUTO); }

int bm_op_conv1d_variant(bm_rt *rt, const bm_conv_args *a, int variant)
{
    if (!a) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d: NULL arguments");
    if (a->B < 0 || a->T < 0 || a->di < 0 || a->k < 1)
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d: bad shape (B=%d, T=%d, di=%d, k=%d)", a->B, a->T, a->di, a->k);
    if (a->B == 0 || a->T == 0 || a->di == 0) return 0;
    if ((long long)a->B * a->T > INT_MAX)
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d: B*T = %lld rows is too many", (long long)a->B * a->T);
    if (!a->x || !a->w || !a->out || (a->k > 1 && !a->state))
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d: NULL buffer (x, w, out, or state with k=%d)", a->k);
    if (a->x_ld < (size_t)a->di && (size_t)a->B * (size_t)a->T > 1)
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d: x leading dimension %zu < di %d", a->x_ld, a->di);

    /* GPUs: the time-tiled kernel (H200, T 2048, d_inner 1536: 42 -> see docs/performance.md).
     * CPUs: the CPU kernel (16 channels as one vector, 32 steps per work-item; the GPU forms run
     * as scalar code there: numbers in cl/conv1d_cpu.cl). Decoding (T = 1): a work-item per output. */
    const int fits = a->T > 1 && a->k <= CONV_KMAX;
    const int tiled = fits && (variant == BM_CONV_TILED || (variant == BM_CONV_AUTO && rt->lim.is_gpu));
    const int cpu = fits && (variant == BM_CONV_CPU || (variant == BM_CONV_AUTO && !rt->lim.is_gpu));
    int st = tiled ? conv_out_tiled(rt, a) : cpu ? conv_out_cpu(rt, a) : conv_out_rows(rt, a);
    /* the decoding step (T = 1) shifted the state inside the output kernel */
    if (st || a->k == 1 || a->T == 1) return st;
    return conv_state_update(rt, a);
}
