/* ops_backward.h — host launchers of the backward (gradient) kernels, one per op of the training
 * pass (docs/training.md). Same conventions as ops.h: enqueued on rt->queue, never blocking,
 * row-major matrices with leading dimensions and column offsets, fp32, bmojo status returned.
 * Gradients of activations are written (overwritten) unless the launcher says `beta`;
 * gradients of weights are always accumulated (dW += ...), so a caller zeroes them once per
 * step and may run several micro-batches. Training always starts each sequence from an empty
 * state (pos0 = 0, zero conv and SSM states, empty caches). The plain-C reference of every
 * launcher, with the same arguments on host arrays, is in ref/ref_backward.h. */
#ifndef BM_OPS_BACKWARD_H
#define BM_OPS_BACKWARD_H

#include "runtime.h"

/* ---- GEMM with transposed operands (cl/gemm_tt.cl) ----
 * C[M,N] = op(A) op(B) + beta C, op(X) = X^T when trans_x. Row-major storage: A is [M, K]
 * (trans_a = 0) or [K, M] (trans_a = 1) with leading dimension lda from element a_off; B is
 * [K, N] (trans_b = 0) or [N, K] (trans_b = 1). beta == 0 never reads C. Training uses NT for
 * Y = X W^T, NN for dX = dY W and TN for dW += dY^T X. */
/* K == 0 gives C = beta C. NT goes to bm_gemm (the forward's path); NN, TN and TT follow bm_gemm's
 * BMOJO_GEMM rule: our own kernels on GPUs (own-big/own-thin, BMOJO_GEMM_SPLITK as for bm_gemm),
 * CLBlast on CPUs in auto mode and with BMOJO_GEMM=clblast. Split-K
 * partial sums go to the scratch stack (as bm_gemm's do).
 * BMOJO_EINVAL for bad sizes/ld/flags/NULL, BMOJO_EGEMM when a buffer is too small for its view or
 * the compiled tiles exceed the device's limits. */
int bm_gemm_ex(bm_rt *rt, int trans_a, int trans_b, size_t M, size_t N, size_t K, cl_mem A, size_t a_off,
               size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta, cl_mem C, size_t c_off, size_t ldc);
/* bm_gemm_ex with the kernel choices explicit (tests, benchmarks): tiles BM_GEMM_NT_TILES_* of
 * ops.h (auto, big, thin), split_k 0 = automatic, else the number of K splits (1..64; fewer when K
 * has fewer BK steps). NT goes to bm_op_gemm_nt with the same choices. */
int bm_op_gemm_tt(bm_rt *rt, int tiles, int split_k, int trans_a, int trans_b, size_t M, size_t N, size_t K, cl_mem A,
                  size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta, cl_mem C, size_t c_off,
                  size_t ldc);

/* ---- embedding (cl/embed_backward.cl) ----
 * dtable[v, :] += sum of dy[r, :] over rows r with ids[r] == v, without atomics: the host
 * sorts the rows by id once per batch (bm_embed_rows_by_id) and the kernel gathers.
 * order: int32 [n] row indices sorted by id; start: int32 [V + 1], rows of id v are
 * order[start[v] .. start[v+1]). dy [n, d], dtable [V, d]. */
int bm_op_embed_backward(bm_rt *rt, cl_mem order, cl_mem start, cl_mem dy, cl_mem dtable, int n, int d, int V);
/* Host side: fills order [n] and start [V + 1] from ids [n] (all in [0, V)); counting sort,
 * stable (rows of one id in increasing order). */
void bm_embed_rows_by_id(const int32_t *ids, int n, int V, int32_t *order, int32_t *start);

/* ---- RMSNorm (cl/rmsnorm_backward.cl) ----
 * Forward y = x * r * w, r = rsqrt(mean(x^2) + eps) over the d columns of each row.
 * dx = beta_dx * dx + r * (w*dy) - x * r^3 / d * sum_j (w*dy*x); dw[j] += sum_rows dy[j] x[j] r.
 * dx may alias dy (same ld/col: the dt/B/C norms run in place). */
int bm_op_rmsnorm_backward(bm_rt *rt, cl_mem x, size_t x_ld, size_t x_col, cl_mem w, cl_mem dy, size_t dy_ld,
                           size_t dy_col, float beta_dx, cl_mem dx, size_t dx_ld, size_t dx_col, cl_mem dw, int rows,
                           int d, float eps);

/* ---- elementwise (cl/elementwise_backward.cl) ---- */
/* SwiGLU out = silu(g) * u (g, u: columns g_col / u_col of gu [rows, ld]); from dout [rows, cols]
 * dense writes dg, du into dgu [rows, ld] at the same columns. */
int bm_op_swiglu_backward(bm_rt *rt, cl_mem gu, size_t ld, size_t g_col, size_t u_col, cl_mem dout, cl_mem dgu,
                          int rows, int cols);
/* dbias[j] += sum_rows dy[r * ld + col + j] (bias gradients), deterministic. */
int bm_op_colsum(bm_rt *rt, cl_mem dy, size_t ld, size_t col, int rows, int cols, cl_mem dbias);
/* A = -exp(A_log) elementwise (n values): the derived form the scan reads. */
int bm_op_neg_exp(bm_rt *rt, cl_mem a_log, cl_mem a, size_t n);
/* dA_log[i] += dA[i] * A[i] (the chain rule through A = -exp(A_log)). */
int bm_op_neg_exp_backward(bm_rt *rt, cl_mem a, cl_mem d_a, cl_mem d_a_log, size_t n);

/* ---- cross-entropy over the head's logits (cl/xent.cl) ----
 * For rows r < rows of logits [rows, ld] (V columns): loss[r] = -log softmax(logits[r])[t_r]
 * with t_r = targets[r] (int32; < 0: no loss, loss[r] = 0); logits[r] is overwritten by its
 * gradient scale * (softmax - onehot(t_r)) (a zero row when t_r < 0). Targets >= V are the
 * caller's to refuse. hit (int32 [rows], may be NULL): 1 where t_r >= 0 is the row's argmax
 * (its logit equals the row's max), else 0. */
int bm_op_xent_backward(bm_rt *rt, cl_mem logits, size_t ld, int V, cl_mem targets, float scale, cl_mem loss,
                        cl_mem hit, int rows);

/* ---- causal depthwise conv1d + SiLU (cl/conv1d_backward.cl) ----
 * The forward of bm_op_conv1d from a zero state: u = silu(bias + sum_i w[c, i] x[t-(k-1)+i]).
 * From du [B*T, di] writes dx at columns 0..di-1 of dx [B*T, dx_ld] and accumulates dw [di, k],
 * dbias [di] (dbias may be NULL). The pre-activation is recomputed from x; dx is written last,
 * so it may alias x or du. Deterministic (per-time-block partials, reduced in order). */
typedef struct {
    int B, T, di, k;
    cl_mem x; size_t x_ld;
    cl_mem w, bias;
    cl_mem du;
    cl_mem dx; size_t dx_ld;
    cl_mem dw, dbias;
} bm_conv_bwd_args;
int bm_op_conv1d_backward(bm_rt *rt, const bm_conv_bwd_args *a);

/* ---- RoPE (cl/rope.cl) ----
 * The transpose of bm_op_rope (the same arguments, pos0 = 0 in training): rotates by -angle in
 * place, turning d(rotated) into d(unrotated). */
int bm_op_rope_backward(bm_rt *rt, cl_mem x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0,
                        float theta);

/* ---- selective scan (cl/scan_backward.cl) ----
 * The forward of bm_op_scan from a zero state with an explicit dt view (dt_proj unused):
 * delta = softplus(dt + dt_bias), h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,
 * y_t = (C_t . h_t + D u_t) * silu(z_t). From dy [B*T, di] it writes du [B*T, di], ddt [B*T, di]
 * (the gradient of the raw dt, before bias and softplus), dB and dC into columns b_col / c_col of
 * dbc [B*T, bc_ld] (the other columns untouched), dz into column z_col.. of dz [B*T, dz_ld], and
 * accumulates dA [di, n] (of A, not A_log), dD [di], d_dt_bias [di]. States are recomputed in
 * chunks over T, never stored as [T, di, n]. */
typedef struct {
    int B, T, di, n;
    cl_mem u;
    cl_mem dt; size_t dt_ld;
    cl_mem dt_bias, A;
    cl_mem bc; size_t bc_ld, b_col, c_col;
    cl_mem D;
    cl_mem z; size_t z_ld, z_col;
    cl_mem dy;
    cl_mem du, ddt;
    cl_mem dbc; size_t dbc_ld;
    cl_mem dz; size_t dz_ld;
    cl_mem dA, dD, d_dt_bias;
} bm_scan_bwd_args;
int bm_op_scan_backward(bm_rt *rt, const bm_scan_bwd_args *a);

/* ---- causal GQA attention, sliding window or full (cl/attention_backward.cl) ----
 * The forward of bm_op_attention from position 0 with no cache. Inputs q, k, v (views as in
 * bm_attn_args), the forward's output o and its gradient dout ([B*T, o_ld], head h at h*dh);
 * writes dq, dk, dv (views with the same column layout as q / k / v in dq / dkv buffers).
 * The softmax is recomputed; no atomics. */
typedef struct {
    int B, T, H, Hkv, dh;
    int window;
    float scale;
    cl_mem q; size_t q_ld, q_col;
    cl_mem k, v; size_t kv_ld, k_col, v_col;
    cl_mem o, dout; size_t o_ld;
    cl_mem dq; size_t dq_ld, dq_col;
    cl_mem dk, dv; size_t dkv_ld, dk_col, dv_col;
} bm_attn_bwd_args;
int bm_op_attention_backward(bm_rt *rt, const bm_attn_bwd_args *a);

/* ---- B'MOJO attention over [fading | eidetic | window] (cl/bmojo_backward.cl) ----
 * sets: the eidetic sets of whole sequences from position 0 (model.md section 2, step 4), int32
 * [B, ceil(T / window), max(m_e, 1)]: for chunk c (start s = c * window) the min(m_e, s)
 * positions j < s with the largest eps_j (ties: the smaller j), best first, then -1 pads; a
 * training forward's bm_bmojo_mix writes them (ops_bmojo.h, train_sets). */
typedef struct {
    int B, T, H, Hkv, dh;
    int window, m_f, m_e;
    float scale;
    cl_mem sets;
    cl_mem q; size_t q_ld, q_col;
    cl_mem kx, vx; size_t x_ld, kx_col, vx_col;
    cl_mem kf, vf; size_t f_ld, kf_col, vf_col;
    cl_mem o, dout; size_t o_ld;
    cl_mem dq; size_t dq_ld, dq_col;                 /* written */
    cl_mem dkx, dvx; size_t dx_ld, dkx_col, dvx_col; /* written */
    cl_mem dkf, dvf; size_t df_ld, dkf_col, dvf_col; /* written */
    cl_mem lse; /* optional: the forward's softmax statistics, float [B*T, H] (a training mix's
                 * train_lse, ops_bmojo.h); NULL: recomputed, one more pass over the keys */
} bm_bmojo_bwd_args;
/* The gradients of o = attention(Q; F, E, W) with the sets held constant; eps carries no
 * gradient. */
int bm_op_bmojo_attention_backward(bm_rt *rt, const bm_bmojo_bwd_args *a);

#endif
