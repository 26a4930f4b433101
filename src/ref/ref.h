/* ref.h — plain-C fp32 references of every op in ops.h, with the same arguments on host arrays
 * (no cl_mem). They define what the kernels must compute; tests/test_ops.c checks every kernel
 * against them. Written for clarity, not speed. */
#ifndef BM_REF_H
#define BM_REF_H

#include <stddef.h>
#include <stdint.h>

void bm_ref_embed(const int32_t *ids, const float *table, float *out, int n, int d);
void bm_ref_rmsnorm(const float *x, size_t x_ld, size_t x_col, const float *w,
                    float *out, size_t out_ld, size_t out_col, int rows, int d, float eps);
void bm_ref_add(float *x, const float *y, size_t n);
void bm_ref_bias_add(float *x, size_t ld, const float *bias, int rows, int cols);
void bm_ref_swiglu(const float *g, size_t ld_in, size_t g_col, size_t u_col, float *out, int rows, int cols);

void bm_ref_conv1d(int B, int T, int di, int k, const float *x, size_t x_ld, const float *w,
                   const float *bias, float *state, float *out);

void bm_ref_scan(int B, int T, int di, int n, const float *u, const float *dt, size_t dt_ld,
                 const float *dt_bias, const float *A, const float *bc, size_t bc_ld, size_t b_col,
                 size_t c_col, const float *D, const float *z, size_t z_ld, size_t z_col,
                 float *state, float *y);

void bm_ref_rope(float *x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, float theta);

void bm_ref_attention(int B, int T, int H, int Hkv, int dh,
                      const float *q, size_t q_ld, size_t q_col,
                      const float *k, const float *v, size_t kv_ld, size_t k_col, size_t v_col,
                      const float *k_cache, const float *v_cache, int cap, int64_t pos0,
                      int window, float scale, float *out, size_t out_ld);
void bm_ref_kv_append(int B, int T, int Hkv, int dh, const float *k, const float *v, size_t kv_ld,
                      size_t k_col, size_t v_col, float *k_cache, float *v_cache, int cap, int64_t pos0);

/* Row-major C[M,N] = A[M,K] W[N,K]^T + beta C (the reference of bm_gemm). */
void bm_ref_gemm(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *W, size_t ldw,
                 float beta, float *C, size_t ldc);

#endif
