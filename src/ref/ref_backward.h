/* ref_backward.h — plain-C references of the backward launchers in ops_backward.h, with the same
 * arguments on host arrays (no cl_mem; the *_args structs have host-array twins here). fp32 in
 * and out, double accumulation; written for clarity, not speed. tests/ops/test_*_backward.c check
 * every kernel against them and them against central finite differences of the forward in
 * double. */
#ifndef BM_REF_BACKWARD_H
#define BM_REF_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

/* ---- GEMM with transposed operands ---- */
/* bm_gemm_ex: C[M,N] = op(A) op(B) + beta C (op(X) = X^T when trans_x; A stored [M, K] or
 * [K, M] with leading dimension lda, B [K, N] or [N, K]); beta == 0 never reads C. */
void bm_ref_gemm_ex(int trans_a, int trans_b, size_t M, size_t N, size_t K, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* ---- embedding ---- */

/* ---- RMSNorm ---- */

/* ---- elementwise ---- */

/* ---- cross-entropy ---- */

/* ---- conv1d ---- */

/* ---- RoPE ---- */

/* ---- selective scan ---- */

/* ---- attention ---- */

/* ---- B'MOJO attention ---- */

#endif
