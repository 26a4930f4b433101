/* ref_gemm.c — plain-C reference of bm_gemm: row-major C[M,N] = A[M,K] W[N,K]^T + beta C,
 * accumulated in double so the reference is at least as exact as any fp32 kernel. */
#include "ref/ref.h"

void bm_ref_gemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *W, size_t ldw, float beta,
                 float *C, size_t ldc)
{
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            double acc = 0.0;
            for (size_t k = 0; k < K; k++) acc += (double)A[m * lda + k] * (double)W[n * ldw + k];
            /* beta == 0 ignores C entirely (like BLAS), so an uninitialized C cannot leak NaN. */
            float c = beta == 0.0f ? 0.0f : beta * C[m * ldc + n];
            C[m * ldc + n] = (float)(acc + (double)c);
        }
}
