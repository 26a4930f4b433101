/* op_gemm_nt_cpu.c — launcher of the CPU SGEMM (cl/gemm_nt_cpu.cl): one work-item per macro tile
 * of rt->config's BM_CFG_GEMMC_MB x BM_CFG_GEMMC_NB outputs, as many groups as tiles (POCL hands
 * them to its threads); bm_gemm_nt_cpu_w16 for an f16 W. */
#include <limits.h>

#include "error.h"
#include "ops.h"

int bm_op_gemm_nt_cpu(bm_rt *rt, size_t M, size_t N, size_t K, cl_mem A, size_t a_off, size_t lda, bm_wmat W,
                      size_t w_off, size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    if (M == 0 || N == 0 || K == 0) return 0;
    if (!rt || !A || !W.buf || !C) return bm_fail(BMOJO_EINVAL, "bm_op_gemm_nt_cpu M=%zu N=%zu K=%zu: NULL argument", M, N, K);
    if (lda < K || ldw < K || ldc < N || M > INT_MAX / 2 || N > INT_MAX / 2 || K > INT_MAX / 2)
        return bm_fail(BMOJO_EINVAL, "bm_op_gemm_nt_cpu M=%zu N=%zu K=%zu: bad sizes (lda %zu ldw %zu ldc %zu)", M, N,
                       K, lda, ldw, ldc);
    const char *name = W.store == BM_STORE_F16 ? "bm_gemm_nt_cpu_w16" : "bm_gemm_nt_cpu";
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "gemm_nt_cpu");
    const size_t mb = (size_t)rt->config[BM_CFG_GEMMC_MB], nb = (size_t)rt->config[BM_CFG_GEMMC_NB];
    cl_int m = (cl_int)M, n = (cl_int)N, kk = (cl_int)K;
    cl_ulong ao = a_off, la = lda, wo = w_off, lw = ldw, co = c_off, lc = ldc;
    cl_int err = BM_ARG(k, 0, m) | BM_ARG(k, 1, n) | BM_ARG(k, 2, kk) | BM_ARG(k, 3, A) | BM_ARG(k, 4, ao) |
                 BM_ARG(k, 5, la) | BM_ARG(k, 6, W.buf) | BM_ARG(k, 7, wo) | BM_ARG(k, 8, lw) | BM_ARG(k, 9, beta) |
                 BM_ARG(k, 10, C) | BM_ARG(k, 11, co) | BM_ARG(k, 12, lc);
    int st = bm_args_check(err, name);
    size_t global[2] = {(N + nb - 1) / nb, (M + mb - 1) / mb}, local[2] = {1, 1};
    if (!st) st = bm_launch(rt, k, name, 2, global, local);
    return st;
}
