/* op_gemv.c — launcher of the skinny GEMM (cl/gemv.cl) that bm_gemm uses for M <= 8 rows; an f16
 * W (bm_wmat) takes each kernel's _w16 form, with the same work sizes. */
#include "error.h"
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEMV_NB 4     /* mirrors BM_GEMV_NB in cl/gemv.cl */
#define GEMV_MAX_M 8  /* mirrors BM_GEMV_MAX_M */

/* The float4 kernel when every offset and stride allows 16-byte loads and the runtime's choice
 * (rt->gemv_variant: BMOJO_GEMV=scalar|vec4 at start-up, default vec4) permits it. Measured: on the
 * H200 it streams the head 1.8x faster; on POCL (CPU) the decoding GEMVs 6.5x faster (4.5 ->
 * 29 GB/s, SIMD dot products in each work-item's K loop). */
static int use_vec4(const bm_rt *rt, const bm_gemv_input *in, size_t K, size_t w_off, size_t ldw)
{
    int want = rt->gemv_variant != BM_GEMV_VARIANT_SCALAR;
    return want && K % 4 == 0 && in->a_off % 4 == 0 && in->lda % 4 == 0 && w_off % 4 == 0 && ldw % 4 == 0 &&
           in->u_col % 4 == 0;
}

int bm_op_gemv(bm_rt *rt, size_t M, size_t N, size_t K, cl_mem A, size_t a_off, size_t lda, bm_wmat W, size_t w_off,
               size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    bm_gemv_input in = {BM_GEMV_PLAIN, A, a_off, lda, NULL, 0.0f, 0};
    return bm_op_gemv_in(rt, &in, M, N, K, W, w_off, ldw, beta, C, c_off, ldc);
}

/* A second output for the columns from n_split on (bm_gemv4_split). */
typedef struct {
    size_t n_split;
    cl_mem C2;
    size_t c2_off, ldc2;
} gemv_split;

/* Every entry point: conv and split NULL for the plain skinny GEMM, else the float4 kernel with
 * the conv epilogue (bm_gemv4_conv) or the split output (bm_gemv4_split). */
static int gemv_launch(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                       size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc, const bm_gemv_conv *conv,
                       const gemv_split *split, const bm_gemv_fused *fused)
{
    cl_mem A = in ? in->A : NULL;
    size_t a_off = in ? in->a_off : 0, lda = in ? in->lda : 0;
    if (M == 0 || N == 0 || K == 0) return 0;
    if (!rt || !A || !W.buf || !C) return bm_fail(BMOJO_EINVAL, "bm_op_gemv: NULL argument");
    if (in->mode < BM_GEMV_PLAIN || in->mode > BM_GEMV_PARTS || (in->mode == BM_GEMV_RMSNORM && !in->norm_w) ||
        (in->mode == BM_GEMV_SWIGLU && lda < in->u_col + K) ||
        (in->mode == BM_GEMV_PARTS && (!fused || !fused->reads_parts || M > GEMV_MAX_M || lda != K)))
        return bm_fail(BMOJO_EINVAL, "bm_op_gemv: bad input transform (mode %d)", in->mode);
    const size_t c_cols = split ? split->n_split : fused && fused->split_at ? fused->split_at : N;
    if (lda < K || ldw < K || ldc < c_cols || N > (size_t)1 << 30 || K > (size_t)1 << 30)
        return bm_fail(BMOJO_EINVAL, "bm_op_gemv M=%zu N=%zu K=%zu: bad sizes (lda %zu ldw %zu ldc %zu)", M, N, K, lda,
                       ldw, ldc);
    const int vec4 = use_vec4(rt, in, K, w_off, ldw);
    if (conv && (!vec4 || M > GEMV_MAX_M || conv->di < 1 || (size_t)conv->di > N || conv->k < 1 || !conv->w ||
                 !conv->u || (conv->k > 1 && !conv->state)))
        return bm_fail(BMOJO_EINVAL, "bm_op_gemv_in_conv M=%zu N=%zu K=%zu di=%d k=%d: not supported here (check "
                       "bm_op_gemv_conv_ok) or a NULL conv buffer", M, N, K, conv->di, conv->k);
    if (split && (!vec4 || M > GEMV_MAX_M || !split->C2 || split->n_split < 1 || split->n_split >= N ||
                  split->ldc2 < N - split->n_split))
        return bm_fail(BMOJO_EINVAL, "bm_op_gemv_split M=%zu N=%zu K=%zu at column %zu: not supported here (check "
                       "bm_op_gemv_fused_ok) or a bad second output", M, N, K, split ? split->n_split : 0);
    if (split && ldc < split->n_split)
        return bm_fail(BMOJO_EINVAL, "bm_op_gemv_split: ldc %zu < split column %zu", ldc, split->n_split);
    if (fused && (!vec4 || M > GEMV_MAX_M || !fused->kernel || !fused->set_args))
        return bm_fail(BMOJO_EINVAL, "bm_op_gemv_fused M=%zu N=%zu K=%zu: not supported here (check "
                       "bm_op_gemv_fused_ok) or no kernel", M, N, K);
    const char *base = fused  ? fused->kernel
                       : conv ? "bm_gemv4_conv"
                       : split ? "bm_gemv4_split"
                       : vec4  ? "bm_gemv4"
                               : "bm_gemv";
    char name[64];
    snprintf(name, sizeof name, "%s%s", base, W.store == BM_STORE_F16 ? "_w16" : "");
    const size_t NB = vec4 ? (size_t)rt->config[BM_CFG_GEMV4_NB] : GEMV_NB; /* as compiled (-D) */
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "gemv");
    /* GPUs: L items share the K loop (coalesced loads): 128 for the scalar kernel, 64 for the
     * float4 one (K = 768 is 192 float4s). CPUs (POCL): one item per group runs the K loop of NB
     * rows sequentially, which streams each row from cache lines and avoids the barrier-separated
     * reduction, 3-4x faster there. */
    /* Tried: wider groups (128-256 items) where the row blocks are few (x_proj, out_proj). Until
     * 533808d a local-memory rule sized for 8 rows cut every float4 group back to 64 items on
     * 48 KiB devices, so that rule never ran on the H200; once it did, mamba-130m decoded at
     * 924 / 864 tokens/s against 1002 / 873 with 64 (two rounds, same run), so it is gone. */
    size_t L = !rt->lim.is_gpu ? 1 : vec4 ? 64 : 128;
    if (rt->gemv_wg > 0) L = (size_t)rt->gemv_wg; /* BMOJO_GEMV_WG, for measurements */
    if (fused && fused->L) L = fused->L;
    if (L > rt->lim.wg) L = rt->lim.wg;
    /* the reduction array (rows of one launch x NB x L floats) in at most half the local memory */
    const size_t rows = M < GEMV_MAX_M ? M : GEMV_MAX_M;
    while (L > 1 && rows * NB * L * sizeof(float) > rt->lim.local_mem / 2) L /= 2;
    if (fused && fused->L && L != fused->L) /* its other groups need that size (check bm_op_gemv_fused_ok) */
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: %zu rows need %zu floats of local memory per group of %zu items",
                       name, rows, rows * NB * fused->L, fused->L);
    for (size_t m0 = 0; m0 < M; m0 += GEMV_MAX_M) {
        cl_int mb = (cl_int)(M - m0 < GEMV_MAX_M ? M - m0 : GEMV_MAX_M), n = (cl_int)N, kk = (cl_int)K;
        cl_ulong ao = a_off + m0 * lda, la = lda, wo = w_off, lw = ldw, co = c_off + m0 * ldc, lc = ldc;
        cl_int mode = in->mode;
        cl_mem nw = in->norm_w ? in->norm_w : W.buf; /* any valid buffer when unused */
        cl_float eps = in->eps;
        cl_ulong ucol = in->u_col;
        cl_int err = BM_ARG(k, 0, mb) | BM_ARG(k, 1, n) | BM_ARG(k, 2, kk) | BM_ARG(k, 3, A) | BM_ARG(k, 4, ao) |
                     BM_ARG(k, 5, la) | BM_ARG(k, 6, W.buf) | BM_ARG(k, 7, wo) | BM_ARG(k, 8, lw) | BM_ARG(k, 9, beta) |
                     BM_ARG(k, 10, C) | BM_ARG(k, 11, co) | BM_ARG(k, 12, lc) | BM_ARG(k, 13, mode) |
                     BM_ARG(k, 14, nw) | BM_ARG(k, 15, eps) | BM_ARG(k, 16, ucol) |
                     BM_ARG_LOCAL(k, 17, (size_t)mb * NB * L * sizeof(float));
        if (conv) {
            cl_int cdi = conv->di, ck = conv->k, has_bias = conv->bias != NULL;
            cl_mem cb = conv->bias ? conv->bias : conv->w, cs = conv->state ? conv->state : conv->u;
            err |= BM_ARG(k, 18, cdi) | BM_ARG(k, 19, ck) | BM_ARG(k, 20, conv->w) | BM_ARG(k, 21, cb) |
                   BM_ARG(k, 22, has_bias) | BM_ARG(k, 23, cs) | BM_ARG(k, 24, conv->u);
        }
        if (split) {
            cl_int ns = (cl_int)split->n_split;
            cl_ulong o2 = split->c2_off + m0 * split->ldc2, l2 = split->ldc2;
            err |= BM_ARG(k, 18, ns) | BM_ARG(k, 19, split->C2) | BM_ARG(k, 20, o2) | BM_ARG(k, 21, l2);
        }
        if (fused && fused->set_args(k, 18, fused->ctx)) return bm_fail_context(BMOJO_EOPENCL, "%s", name);
        int st = bm_args_check(err, name);
        size_t global = ((N + NB - 1) / NB + (fused ? fused->extra_groups : 0)) * L;
        if (!st) st = bm_launch(rt, k, name, 1, &global, &L);
        if (st) return st;
    }
    return 0;
}

int bm_op_gemv_in(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                  size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    return gemv_launch(rt, in, M, N, K, W, w_off, ldw, beta, C, c_off, ldc, NULL, NULL, NULL);
}

int bm_op_gemv_fused_ok(const bm_rt *rt, const bm_gemv_input *in, size_t M, size_t K, size_t w_off, size_t ldw)
{
    return rt && in && M >= 1 && M <= GEMV_MAX_M && use_vec4(rt, in, K, w_off, ldw);
}

size_t bm_op_gemv_fused_local(const bm_rt *rt, size_t M, size_t L)
{
    const size_t rows = M < GEMV_MAX_M ? M : GEMV_MAX_M;
    return rows * (size_t)rt->config[BM_CFG_GEMV4_NB] * L * sizeof(float);
}

int bm_op_gemv_in_conv(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                       size_t ldw, cl_mem C, size_t c_off, size_t ldc, const bm_gemv_conv *conv)
{
    if (!conv) return bm_fail(BMOJO_EINVAL, "bm_op_gemv_in_conv: NULL conv arguments");
    return gemv_launch(rt, in, M, N, K, W, w_off, ldw, 0.0f, C, c_off, ldc, conv, NULL, NULL);
}

int bm_op_gemv_split(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                     size_t ldw, cl_mem C, size_t c_off, size_t ldc, size_t n_split, cl_mem C2, size_t c2_off, size_t ldc2)
{
    gemv_split sp = {n_split, C2, c2_off, ldc2};
    return gemv_launch(rt, in, M, N, K, W, w_off, ldw, 0.0f, C, c_off, ldc, NULL, &sp, NULL);
}

int bm_op_gemv_fused(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                     size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc, const bm_gemv_fused *fused)
{
    if (!fused) return bm_fail(BMOJO_EINVAL, "bm_op_gemv_fused: NULL fused launch");
    return gemv_launch(rt, in, M, N, K, W, w_off, ldw, beta, C, c_off, ldc, NULL, NULL, fused);
}
