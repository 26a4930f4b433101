/* ref_gemm_tt.c — plain-C reference of bm_gemm_ex: row-major C[M,N] = op(A) op(B) + beta C with
 * op(X) = X^T when trans_x, accumulated in double so the reference is at least as exact as any
 * fp32 kernel. */
#include "ref/ref_backward.h"

void bm_ref_gemm_ex(int trans_a, int trans_b, size_t M, size_t N, size_t K, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            double acc = 0.0;
            for (size_t k = 0; k < K; k++) {
                const double a = trans_a ? A[k * lda + m] : A[m * lda + k];
                const double b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
                acc += a * b;
            }
            /* beta == 0 ignores C entirely (like BLAS), so an uninitialized C cannot leak NaN. */
            const double c = beta == 0.0f ? 0.0 : (double)beta * (double)C[m * ldc + n];
            C[m * ldc + n] = (float)(acc + c);
        }
}
