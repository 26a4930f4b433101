/* ops_bmojo.h — the host launcher of the B'MOJO mixer's attention part (model.md section 2,
 * steps 2, 4 and 5): innovation eps, eidetic selection, chunk memory, attention over
 * [fading | eidetic | window], continuing from a per-sequence state. The layer code runs the
 * Mamba mixer (y) and the projection GEMMs (Q, Kx, Vx from h; Kf, Vf from y) and then calls
 * bm_bmojo_mix, which produces o (before Wo) and updates the state. Kernels: cl/bmojo_*.cl;
 * plain-C reference: src/ref/ref_bmojo.h.
 *
 * State (per layer, B sequences; all buffers zero-filled at position 0; sizes from
 * bm_bmojo_state_layout, constant in the sequence length):
 *   y_hist   [B, k, d]          y of positions pos0-k .. pos0-1, oldest first (zeros before 0)
 *   win_k/v  [B, Hkv, w, dh]    Kx/Vx ring, position p in slot p % w
 *   fade_k/v [B, Hkv, max(m_f,1), dh]  Kf/Vf ring, position p in slot p % m_f
 *   cand_eps [B, max(m_e,1)] float, cand_pos [B, max(m_e,1)] int32: the top-m_e positions
 *            < pos0, best first (eps descending, ties: smaller position first); the number of
 *            valid entries is min(m_e, pos0), so a zero-filled state means "empty"
 *   mem      [2, B, Hkv, max(m_f+m_e,1), dh]  K rows, then V rows: the memory of the chunk
 *            containing position pos0-1, which starts at R = floor((pos0-1)/w)*w (R = 0 at
 *            pos0 = 0). Slot j < m_f: fading position R-m_f+j (zero row when < 0); slot m_f+e:
 *            the e-th best eidetic candidate of positions < R (zero row when e >= min(m_e, R)).
 *            A candidate's Kx/Vx row is not stored apart: the candidates at positions < R are
 *            a prefix of the memory's eidetic list (the i-th of them is slot m_f+i), the
 *            others (positions R .. pos0-1) are in the window ring.
 * Decoding (T = 1) is 2 launches with no copies and no scratch use, whatever pos0; 3 where the
 * attention is split over keys (GPUs with few kv heads * sequences: partial results in the
 * runtime's scratch stack, then a combine). Prefill splits the same way on GPUs when its query
 * tiles are too few to fill the device (short prompts). */
#ifndef BM_OPS_BMOJO_H
#define BM_OPS_BMOJO_H

#include "runtime.h"

#define BM_BMOJO_MAX_TAPS 16

typedef struct {
    int B, T, d;                 /* batch, new tokens this call, model width (channels of y) */
    int H, Hkv, dh;
    int window;                  /* w >= 1: window length and chunk length */
    int m_f, m_e;                /* fading and eidetic memory tokens (either may be 0) */
    int n_taps; const float *taps; /* host array c_1..c_k, 1 <= k <= 16 */
    int64_t pos0;                /* tokens already processed by each sequence */
    float scale;                 /* 1/sqrt(dh) */
    cl_mem y;                    /* [B*T, d] fading-stream output */
    cl_mem q; size_t q_ld, q_col;                 /* Q view, head h at q_col + h*dh */
    cl_mem kx, vx; size_t x_ld, kx_col, vx_col;   /* Kx, Vx views (from h), kv head g at col + g*dh */
    cl_mem kf, vf; size_t f_ld, kf_col, vf_col;   /* Kf, Vf views (from y) */
    cl_mem y_hist;               /* state, see the top of this file */
    cl_mem win_k, win_v;
    cl_mem fade_k, fade_v;
    cl_mem cand_eps, cand_pos;
    cl_mem mem;
    cl_mem out; size_t out_ld;   /* [B*T, out_ld], head h at columns h*dh */
    /* Training's forward (NULL elsewhere): whole sequences from an empty state (pos0 = 0). The
     * eidetic sets the backward holds constant (int32 [B, ceil(T / window), max(m_e, 1)]: chunk
     * c's E(c*w), best first, then -1 pads; ops_backward.h) are written here, and the state is
     * left unwritten: for T > 1 only y_hist (zero-filled) and cand_eps / cand_pos (the
     * selection's working list) are used, and win_*, fade_* and mem may be NULL; T = 1 runs the
     * decoding step, which needs the whole zero-filled state. */
    cl_mem train_sets;
    /* With train_sets, optionally: each row's log-sum-exp of its scaled scores, float [B*T, H]
     * (row b*T + t, head h), the softmax statistics the backward would otherwise recompute
     * (ops_backward.h, bm_bmojo_bwd_args.lse). A mix that writes it is never split over keys. */
    cl_mem train_lse;
} bm_bmojo_args;

/* Byte sizes of each state buffer for B sequences (all > 0, independent of T and pos0). */
typedef struct {
    size_t y_hist;
    size_t win_k, win_v;
    size_t fade_k, fade_v;
    size_t cand_eps, cand_pos;
    size_t mem;
    size_t attention_kv;   /* win_k + win_v (bmojo_state_memory.attention_kv) */
    size_t eidetic;        /* everything else (bmojo_state_memory.eidetic) */
    size_t total;
} bm_bmojo_state_sizes;

/* Fills the state sizes from a's B, d, Hkv, dh, window, m_f, m_e, n_taps (other fields unused). */
void bm_bmojo_state_layout(const bm_bmojo_args *a, bm_bmojo_state_sizes *out);

/* Device scratch the launcher needs for these sizes (bytes, > 0; grows with B*T). */
size_t bm_bmojo_scratch_bytes(const bm_bmojo_args *a);

/* Enqueues everything on rt->queue; never blocks; returns a bmojo status (BMOJO_EINVAL with a
 * detail naming the field for bad sizes). scratch: at least bm_bmojo_scratch_bytes(a) bytes
 * (its contents need not be initialised). T == 0 is a no-op. */
int bm_bmojo_mix(bm_rt *rt, const bm_bmojo_args *a, cl_mem scratch);

/* Most key splits of the attention. */
#define BM_BMOJO_MAX_SPLIT 64

/* As bm_bmojo_mix, with the attention split over nsplit ranges of each query tile's key list
 * (0: the launcher's choice, what bm_bmojo_mix does — on GPUs, decoding steps and prefills with
 * too few work-groups to fill the device are split; 1: no split; at most BM_BMOJO_MAX_SPLIT),
 * for decoding (T = 1) and prefill alike — tests force the split path with it on any device.
 * A split attention keeps its partial results on the runtime's scratch stack (scratch.h).
 * The environment variable BMOJO_BMOJO_SPLIT=N replaces the prefill's automatic choice. */
int bm_bmojo_mix_nsplit(bm_rt *rt, const bm_bmojo_args *a, cl_mem scratch, int nsplit);

/* A decoding step (T = 1) of a B'MOJO sublayer fused with the launches around it (GPUs:
 * rt->fuse_decode), 3 launches instead of 4 + the step + the combine:
 *   bm_bmojo_decode_scan_pre  the Mamba scan step (sa, dt_proj fused) and the state update the
 *                             attention needs (chunk-start memory, window append) in one launch;
 *   bm_bmojo_decode_attention the attention over [memory | window] (+ the combine of its key
 *                             splits), writing a->out;
 *   bm_bmojo_decode_kv_attention  the same attention in the launch of the GEMV that gives y
 *                             (columns < d, into y [B, d]) and Kf|Vf (the kv columns after, into
 *                             kvf [B, kv]) from ys (K columns) and out_proj's folded rows W; key
 *                             splits are left unmerged when bm_bmojo_decode_out_post merges them
 *                             (head_dim a multiple of 4), else merged by a combine launch; their
 *                             partial results (*parts, NULL without a split) stay on the scratch
 *                             stack: mark it before, release it after bm_bmojo_decode_out_post;
 *   bm_bmojo_decode_out_post  x += a->out Wo^T (wo [d, H*dh], x [B, x_ld]), reading the merge of
 *                             the key splits (and writing it to a->out) where they were left, and
 *                             the rest of the state update (innovation, fade append, candidate
 *                             list; needs a->y and Kf|Vf) in one launch. Call it right after
 *                             bm_bmojo_decode_kv_attention with the same a.
 * Together they do what bm_bmojo_mix does for T = 1 plus the o_proj GEMM. */
int bm_bmojo_decode_fused_ok(bm_rt *rt, const bm_bmojo_args *a, const bm_scan_args *sa);
int bm_bmojo_decode_scan_pre(bm_rt *rt, const bm_scan_args *sa, const bm_bmojo_args *a);
int bm_bmojo_decode_attention(bm_rt *rt, const bm_bmojo_args *a);
int bm_bmojo_decode_kv_attention(bm_rt *rt, const bm_bmojo_args *a, const bm_gemv_input *ys, size_t K, bm_wmat W,
                                 cl_mem y, size_t d, cl_mem kvf, size_t kv, cl_mem *parts);
int bm_bmojo_decode_out_post(bm_rt *rt, const bm_bmojo_args *a, cl_mem parts, bm_wmat wo, cl_mem x, size_t x_ld);

/* The innovation eps of B*T rows (prefill, and the backward's selection): y [B*T, d], y_hist
 * [B, k, d], eps into scr at element eps_off; taps c_1..c_k (the rest 0). bm_bmojo_innovation, or
 * on CPU devices (rt->bmojo_innov_form) bm_bmojo_innovation_cpu: the same bits either way
 * (src/ops/op_bmojo_innovation.c). */
int bm_bmojo_innovation_launch(bm_rt *rt, cl_mem y, cl_mem y_hist, cl_mem scr, cl_ulong eps_off, int B, int T, int d,
                               int k, const cl_float16 *taps);

#endif
