/* ops.h — host launchers of the OpenCL kernels in cl/, one per op. Each enqueues its kernels
 * on rt->queue and returns a bmojo status without waiting; buffers are fp32 unless noted.
 * Matrices are row-major [rows, ld] with the op's columns starting at a column offset (`*_col`),
 * so views into a fused projection's output need no copy. The plain-C reference of every op,
 * with the same argument meaning on host arrays, is in ref/ref.h. */
#ifndef BM_OPS_H
#define BM_OPS_H

#include "runtime.h"

/* out[r, :] = table[ids[r], :] for r < n. ids: int32 [n], all in [0, V) (checked by the
 * caller). table [V, d], out [n, d]. */
int bm_op_embed(bm_rt *rt, cl_mem ids, bm_wmat table, cl_mem out, int n, int d);

/* RMSNorm of `rows` rows of d values: out = x * rsqrt(mean(x^2) + eps) * w.
 * x at x[r * x_ld + x_col + j], out at out[r * out_ld + out_col + j]; in place allowed. */
int bm_op_rmsnorm(bm_rt *rt, cl_mem x, size_t x_ld, size_t x_col, cl_mem w,
                  cl_mem out, size_t out_ld, size_t out_col, int rows, int d, float eps);

/* x[i] += y[i] for i < n. */
int bm_op_add(bm_rt *rt, cl_mem x, cl_mem y, size_t n);

/* x[r, j] += bias[j] for r < rows, j < cols (x has leading dimension ld). */
int bm_op_bias_add(bm_rt *rt, cl_mem x, size_t ld, cl_mem bias, int rows, int cols);

/* SwiGLU gate: out[r, j] = silu(g[r*ld_in + g_col + j]) * g[r*ld_in + u_col + j],
 * out [rows, cols] dense. (Gate and up come from one fused GEMM.) */
int bm_op_swiglu(bm_rt *rt, cl_mem g, size_t ld_in, size_t g_col, size_t u_col, cl_mem out, int rows, int cols);

/* Causal depthwise conv1d + SiLU over time, continuing from a state, for B sequences of T steps.
 *   x     : [B*T, x_ld], channel c at column c (c < di)   (in_proj output)
 *   w     : [di, k], bias: [di] or NULL
 *   state : [B, di, k-1], the previous k-1 inputs of each channel, oldest first (zeros at start);
 *           updated to the last k-1 inputs (of the state followed by the T new ones)
 *   out   : [B*T, di] = silu(bias + sum_i w[c, i] * xin[t - (k-1) + i]) */
typedef struct {
    int B, T, di, k;
    cl_mem x; size_t x_ld;
    cl_mem w, bias;
    cl_mem state;
    cl_mem out;
} bm_conv_args;
int bm_op_conv1d(bm_rt *rt, const bm_conv_args *a);
/* bm_op_conv1d with the prefill kernel chosen: BM_CONV_AUTO (as bm_op_conv1d: time-tiled on GPUs,
 * the CPU kernel on CPUs), BM_CONV_ROWS (a work-item per output), BM_CONV_TILED (8 steps per
 * work-item; k <= 8, else rows) or BM_CONV_CPU (cl/conv1d_cpu.cl: 16 channels x 32 steps per
 * work-item; k <= 8, else rows). For tests, which run each on every device. */
enum { BM_CONV_AUTO = 0, BM_CONV_ROWS = 1, BM_CONV_TILED = 2, BM_CONV_CPU = 3 };
int bm_op_conv1d_variant(bm_rt *rt, const bm_conv_args *a, int variant);

/* Mamba-1 selective scan with D skip and SiLU(z) gate, continuing from a state.
 *   u     : [B*T, di] (conv output)
 *   dt    : [B*T, dt_ld] raw dt_proj output, channel c at column c; delta = softplus(dt + dt_bias)
 *   A     : [di, n], already -exp(A_log)
 *   bc    : [B*T, bc_ld]; B_t at columns b_col..b_col+n-1, C_t at c_col..c_col+n-1 (x_proj output)
 *   D     : [di]
 *   z     : [B*T, z_ld], gate at columns z_col..z_col+di-1 (in_proj output)
 *   state : [B, di, n] SSM state, read as h_{-1} and updated to h_{T-1}
 *   y     : [B*T, di] out: (sum_j C_t[j] h_t[c, j] + D[c] u_t[c]) * silu(z_t[c]),
 *           h_t[c, j] = exp(delta_t[c] A[c, j]) h_{t-1}[c, j] + delta_t[c] B_t[j] u_t[c]
 * Parallel over B x di x n, chunked over time (chunk length from a -D tunable) so that long
 * sequences use the whole device. */
typedef struct {
    int B, T, di, n;
    cl_mem u;
    cl_mem dt; size_t dt_ld;
    cl_mem dt_bias;
    cl_mem A;
    cl_mem bc; size_t bc_ld, b_col, c_col;
    cl_mem D;
    cl_mem z; size_t z_ld, z_col;
    cl_mem state;
    cl_mem y;
    /* Optional: dt_proj [di, dt_rank]. When set, the op computes dt = bc[:, 0:dt_rank] dt_proj^T
     * itself (the `dt` view is then unused): fused into the step for T = 1, a GEMM otherwise. */
    cl_mem dt_proj; int dt_rank;
} bm_scan_args;
int bm_op_scan(bm_rt *rt, const bm_scan_args *a);

/* RoPE, HF rotate-half convention, in place on x [B*T, ld] with nh heads of dh (even) at
 * columns col + h*dh; token t of each sequence has absolute position pos0 + t.
 * inv_freq_i = theta^(-2i/dh); x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin (x1 = first half). */
int bm_op_rope(bm_rt *rt, cl_mem x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, float theta);

/* Causal GQA attention of T new queries per sequence continuing from a K/V cache.
 *   q        : [B*T, q_ld], head h at columns q_col + h*dh (H heads)
 *   k, v     : [B*T, kv_ld], kv head g at columns k_col + g*dh / v_col + g*dh (Hkv heads)
 *   k_cache, v_cache : [B, Hkv, cap, dh]; absolute position p < pos0 lives in slot p % cap
 *              (unused, may be NULL, when pos0 == 0)
 *   window   : 0 = full causal; else query at position p sees keys p-window+1 .. p
 *              (the cache must then hold at least window-1 past rows: cap >= window - 1)
 *   out      : [B*T, out_ld], head h at columns h*dh
 * Query head h uses kv head h / (H / Hkv). Online softmax over key tiles (never T x T). */
typedef struct {
    int B, T, H, Hkv, dh;
    cl_mem q; size_t q_ld, q_col;
    cl_mem k; cl_mem v; size_t kv_ld, k_col, v_col;
    cl_mem k_cache, v_cache; int cap;
    int64_t pos0;
    int window;
    float scale;
    cl_mem out; size_t out_ld;
} bm_attn_args;
int bm_op_attention(bm_rt *rt, const bm_attn_args *a);

/* Appends the new K/V rows of a->k / a->v (positions pos0 .. pos0+T-1) to the caches: row of
 * position p goes to slot p % cap; only the last min(T, cap) rows are written. */
int bm_op_kv_append(bm_rt *rt, const bm_attn_args *a);

/* Skinny GEMM for few rows (decoding): the same contract as bm_gemm in runtime.h,
 * C[M,N] = A[M,K] W[N,K]^T + beta C; fastest for M <= 8 (larger M runs in blocks of 8).
 * beta == 0 never reads C. */
int bm_op_gemv(bm_rt *rt, size_t M, size_t N, size_t K, cl_mem A, size_t a_off, size_t lda, bm_wmat W, size_t w_off,
               size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc);

/* The A operand of bm_op_gemv_in, optionally transformed while it is read (decoding steps fuse
 * the op that would produce it): BM_GEMV_RMSNORM reads RMSNorm(A) with weight norm_w and eps;
 * BM_GEMV_SWIGLU reads silu(A[m, k]) * A[m, u_col + k]; BM_GEMV_PARTS (fused launches that say
 * so, bm_gemv_fused.reads_parts) reads the merge of a decoding attention's key splits. */
enum { BM_GEMV_PLAIN = 0, BM_GEMV_RMSNORM = 1, BM_GEMV_SWIGLU = 2, BM_GEMV_PARTS = 3 };
typedef struct {
    int mode;
    cl_mem A; size_t a_off, lda;
    cl_mem norm_w; float eps;   /* BM_GEMV_RMSNORM */
    size_t u_col;               /* BM_GEMV_SWIGLU */
} bm_gemv_input;
int bm_op_gemv_in(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                  size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc);
/* The conv1d step that a decoding in_proj GEMV runs on its x columns (bm_op_gemv_in_conv):
 * weights w [di, k], optional bias [di], state [M, di, k-1] (oldest first), output u [M, di]. */
typedef struct {
    int di, k;
    cl_mem w, bias, state, u;
} bm_gemv_conv;
/* Whether bm_op_gemv_in_conv / bm_op_gemv_split can take these operands (M <= 8 rows,
 * float4-aligned input and weight). */
int bm_op_gemv_fused_ok(const bm_rt *rt, const bm_gemv_input *in, size_t M, size_t K, size_t w_off, size_t ldw);
/* Local bytes of a fused launch's GEMV reduction array with M rows and L items per group (the
 * launch refuses a fixed L whose array exceeds half the device's local memory). */
size_t bm_op_gemv_fused_local(const bm_rt *rt, size_t M, size_t L);
/* bm_op_gemv_in with beta 0 whose output columns [0, conv->di) are a Mamba mixer's x (row m =
 * sequence m, T = 1): also writes u = bm_op_conv1d's output for that one step and advances the
 * conv state as bm_op_conv1d would, in the same launch. */
int bm_op_gemv_in_conv(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                       size_t ldw, cl_mem C, size_t c_off, size_t ldc, const bm_gemv_conv *conv);
/* bm_op_gemv_in with beta 0 and two outputs: columns n < n_split to C (c_off, ldc), the rest to
 * C2 at column n - n_split (c2_off, ldc2): one launch for two activations. */
int bm_op_gemv_split(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                     size_t ldw, cl_mem C, size_t c_off, size_t ldc, size_t n_split, cl_mem C2, size_t c2_off, size_t ldc2);
/* A launch that runs the float4 GEMV and another job in extra work-groups: `kernel` starts with
 * bm_gemv4's 18 parameters; set_args sets the rest from index `first`; extra_groups groups follow
 * the GEMV's; L (0: the GEMV's own choice) fixes the items per group; split_at > 0: the kernel
 * writes only columns < split_at to C (a split output, as bm_op_gemv_split); reads_parts: the
 * kernel takes a BM_GEMV_PARTS input (its set_args sets the split count). M <= 8, float4-aligned. */
typedef struct {
    const char *kernel;
    size_t extra_groups, L, split_at;
    int reads_parts;
    int (*set_args)(cl_kernel k, cl_uint first, void *ctx);
    void *ctx;
} bm_gemv_fused;
int bm_op_gemv_fused(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off,
                     size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc, const bm_gemv_fused *fused);
/* bm_gemm with a bm_gemv_input: a plain input goes through bm_gemm (CLBlast or the skinny kernel);
 * a transformed one needs M <= 8 rows (the skinny kernel), else BMOJO_EINVAL. */
int bm_gemm_in(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off, size_t ldw,
               float beta, cl_mem C, size_t c_off, size_t ldc);
#define BM_GEMV_MAX_ROWS 8 /* bm_gemm uses the skinny kernel up to this many rows */

/* Our own register-tiled SGEMM (cl/gemm_nt.cl), the same contract as bm_gemm for any M, N, K:
 * C[M,N] = A[M,K] W[N,K]^T + beta C, beta == 0 never reads C. tiles: BM_GEMM_NT_TILES_* (auto:
 * thin tiles for thin shapes or when big ones would leave compute units idle). split_k: 0 =
 * automatic (GPUs only, when the tiles leave compute units idle and K is long), else the number
 * of K ranges reduced by a second kernel through the scratch stack (fewer when K is short).
 * BMOJO_EGEMM when the chosen tiles exceed the device's work-group or local-memory limits. */
enum { BM_GEMM_NT_TILES_AUTO = 0, BM_GEMM_NT_TILES_BIG = 1, BM_GEMM_NT_TILES_THIN = 2 };
int bm_op_gemm_nt(bm_rt *rt, int tiles, int split_k, size_t M, size_t N, size_t K, cl_mem A, size_t a_off,
                  size_t lda, bm_wmat W, size_t w_off, size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc);

/* The CPU SGEMM (cl/gemm_nt_cpu.cl), the same contract as bm_gemm for any M, N, K: one work-item
 * per macro tile, float16 dot products; what bm_gemm uses on CPU devices. */
int bm_op_gemm_nt_cpu(bm_rt *rt, size_t M, size_t N, size_t K, cl_mem A, size_t a_off, size_t lda, bm_wmat W,
                      size_t w_off, size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc);

/* Half (f16) <-> fp32 of n elements (cl/convert.cl): widen reads half src from element src_off
 * into fp32 dst; narrow reads fp32 src from src_off into half dst with round-to-nearest-even,
 * waits for the device, and fails (BMOJO_ETENSOR, naming `what`) when a finite value does not fit
 * f16 (|v| >= 65520 rounds to infinity). For weights computed on the device under f16 storage. */
int bm_op_f16_widen(bm_rt *rt, cl_mem src, size_t src_off, cl_mem dst, size_t n);
int bm_op_f16_narrow(bm_rt *rt, cl_mem src, size_t src_off, cl_mem dst, size_t n, const char *what);

/* Streams n floats from src to dst (the bandwidth probe of `bmojo bench --ops`). */
int bm_op_copy(bm_rt *rt, cl_mem src, cl_mem dst, size_t n);
/* The same with contiguous 64 KiB blocks per work-item (what bm_op_copy runs on CPUs). */
int bm_op_copy_blocks(bm_rt *rt, cl_mem src, cl_mem dst, size_t n);

#endif
