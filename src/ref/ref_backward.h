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
/* dtable[v, :] += sum of dy[order[i], :] for i in [start[v], start[v+1]) (double sums). */
void bm_ref_embed_backward(const int32_t *order, const int32_t *start, const float *dy, float *dtable, int n, int d,
                           int V);

/* ---- RMSNorm ---- */
/* bm_op_rmsnorm_backward on host arrays; dx may alias dy (same ld/col). */
void bm_ref_rmsnorm_backward(const float *x, size_t x_ld, size_t x_col, const float *w, const float *dy, size_t dy_ld,
                             size_t dy_col, float beta_dx, float *dx, size_t dx_ld, size_t dx_col, float *dw, int rows,
                             int d, float eps);

/* ---- elementwise ---- */
void bm_ref_swiglu_backward(const float *gu, size_t ld, size_t g_col, size_t u_col, const float *dout, float *dgu,
                            int rows, int cols);
void bm_ref_colsum(const float *dy, size_t ld, size_t col, int rows, int cols, float *dbias);
void bm_ref_neg_exp(const float *a_log, float *a, size_t n);
void bm_ref_neg_exp_backward(const float *a, const float *d_a, float *d_a_log, size_t n);

/* ---- cross-entropy ---- */
/* bm_op_xent_backward on host arrays: loss[r] written, logits rows overwritten by the gradient,
 * hit[r] (may be NULL) 1 where the target holds the row's max. */
void bm_ref_xent_backward(float *logits, size_t ld, int V, const int32_t *targets, float scale, float *loss,
                          int32_t *hit, int rows);

/* ---- conv1d ---- */
/* bm_op_conv1d_backward on host arrays (twin of bm_conv_bwd_args): from a zero state, writes dx
 * columns 0..di-1 of [B*T, dx_ld], accumulates dw [di, k] and dbias [di] (dbias may be NULL;
 * bias may be NULL for a forward without bias). */
typedef struct {
    int B, T, di, k;
    const float *x; size_t x_ld;
    const float *w, *bias;
    const float *du;
    float *dx; size_t dx_ld;
    float *dw, *dbias;
} bm_ref_conv_bwd_args;
void bm_ref_conv1d_backward(const bm_ref_conv_bwd_args *a);

/* ---- RoPE ---- */
/* bm_op_rope_backward: the transpose of bm_ref_rope (rotation by -angle, the same float32
 * angle), in place on the same view. */
void bm_ref_rope_backward(float *x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, float theta);

/* ---- selective scan ---- */
/* bm_op_scan_backward on host arrays (fields as in bm_scan_bwd_args). The forward is rerun in
 * double storing every h, then the reverse recursion; dB/dC sums over channels in double. */
typedef struct {
    int B, T, di, n;
    const float *u;
    const float *dt; size_t dt_ld;
    const float *dt_bias, *A;
    const float *bc; size_t bc_ld, b_col, c_col;
    const float *D;
    const float *z; size_t z_ld, z_col;
    const float *dy;
    float *du, *ddt;
    float *dbc; size_t dbc_ld;
    float *dz; size_t dz_ld;
    float *dA, *dD, *d_dt_bias;
} bm_ref_scan_bwd_args;
void bm_ref_scan_backward(const bm_ref_scan_bwd_args *a);

/* ---- attention ---- */
/* Host twin of bm_attn_bwd_args (bm_op_attention_backward): the same views on host arrays. */
typedef struct {
    int B, T, H, Hkv, dh;
    int window;
    float scale;
    const float *q; size_t q_ld, q_col;
    const float *k, *v; size_t kv_ld, k_col, v_col;
    const float *o, *dout; size_t o_ld;
    float *dq; size_t dq_ld, dq_col;
    float *dk, *dv; size_t dkv_ld, dk_col, dv_col;
} bm_ref_attn_bwd_args;
/* Writes dq, dk, dv (only the views' columns); the softmax recomputed in double. */
void bm_ref_attention_backward(const bm_ref_attn_bwd_args *a);

/* ---- B'MOJO attention ---- */
/* The host twin of bm_bmojo_bwd_args (same meaning, same layouts; sets: written by
 * bm_ref_bmojo_sets, read by bm_ref_bmojo_attention_backward). */
typedef struct {
    int B, T, d, H, Hkv, dh;
    int window, m_f, m_e;
    int n_taps; const float *taps;
    float scale;
    const float *y;
    int32_t *sets;
    const float *q; size_t q_ld, q_col;
    const float *kx, *vx; size_t x_ld, kx_col, vx_col;
    const float *kf, *vf; size_t f_ld, kf_col, vf_col;
    const float *o, *dout; size_t o_ld;
    float *dq; size_t dq_ld, dq_col;
    float *dkx, *dvx; size_t dx_ld, dkx_col, dvx_col;
    float *dkf, *dvf; size_t df_ld, dkf_col, dvf_col;
} bm_ref_bmojo_bwd_args;
/* E(s) of every chunk by a plain top-m_e scan over eps (bm_ref_bmojo_eps), as bm_ref_bmojo_direct. */
void bm_ref_bmojo_sets(const bm_ref_bmojo_bwd_args *a);
/* dq, dkx, dvx, dkf, dvf (written, view columns only) with the sets held constant. */
void bm_ref_bmojo_attention_backward(const bm_ref_bmojo_bwd_args *a);

#endif
