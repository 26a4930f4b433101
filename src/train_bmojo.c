/* train_bmojo.c — the bmojo kind in the training pass (model contract sections 2 and 6), forward
 * and backward side by side: y = the Mamba mixer of h (train_mamba.c, its tensors and saved
 * activations first in this kind's tables); Q, Kx, Vx = h Wq, Wk, Wv; Kf, Vf = y Wk, Wv; o = the
 * attention over [fading | eidetic | window] (the inference op bm_bmojo_mix from an empty state,
 * as a training mix: it writes the eidetic sets and no state); out += o Wo^T. The eidetic sets
 * are computed once in the forward and held constant by the backward (eps carries no gradient).
 * Saved per sublayer beyond the mixer's: y, q|kx|vx, kf|vf, o, the sets and each row's softmax
 * log-sum-exp (B*T*H floats, which spares the backward a pass over the keys); recomputed: the
 * attention's probabilities. With rope_theta (an extension beyond the contract) q, kx and kf are
 * rotated by their positions after their GEMMs and saved rotated; the backward rotates their
 * gradients back (bm_op_rope_backward) before the GEMMs' backward. */
#include <math.h>

#include "error.h"
#include "ops.h"
#include "ops_backward.h"
#include "ops_bmojo.h"
#include "train_mamba.h"

enum { P_Q = BM_TM_PARAMS, P_K, P_V, P_O };
enum {
    S_Y = BM_TM_SAVED, S_QKV, S_KVF, S_O, S_SETS, S_LSE,
    /* the mix's state buffers (every sequence starts empty); a training mix (train_sets) writes no
     * state and reads only a zero y history, so the rings and memory exist for T = 1 alone,
     * where the mix runs the decoding step (ops_bmojo.h) */
    S_Y_HIST, S_WIN_K, S_WIN_V, S_FADE_K, S_FADE_V, S_CAND_EPS, S_CAND_POS, S_MEM
};

/* Whether the training mix of sequences of T tokens uses state buffer k (S_Y_HIST + k). */
static int state_used(int T, int k)
{
    const int s = S_Y_HIST + k;
    return T == 1 || s == S_Y_HIST || s == S_CAND_EPS || s == S_CAND_POS;
}
enum { T_DO = BM_TM_TEMPS, T_DQKV, T_DKVF, T_DY, T_MIX_SCRATCH };

typedef struct {
    size_t d, H, G, dh, ld, kv;
} dims;

static dims dims_of(const bm_trainer *tr, int i)
{
    const bm_attn_cfg *c = &tr->cfg.layers[i].attn;
    dims x = {(size_t)tr->cfg.d_model, (size_t)c->heads, (size_t)c->kv_heads, (size_t)c->head_dim, 0, 0};
    x.ld = (x.H + 2 * x.G) * x.dh;
    x.kv = 2 * x.G * x.dh;
    return x;
}

/* The mix's arguments for the whole batch from position 0. */
static void mix_args(const bm_trainer *tr, int i, const bm_train_layer *l, bm_bmojo_args *a)
{
    const bm_layer_cfg *c = &tr->cfg.layers[i];
    dims m = dims_of(tr, i);
    bm_bmojo_args x = {
        .B = tr->B, .T = tr->T, .d = (int)m.d, .H = (int)m.H, .Hkv = (int)m.G, .dh = (int)m.dh,
        .window = c->attn.window, .m_f = c->fading_tokens, .m_e = c->eidetic_tokens, .n_taps = c->n_taps,
        .taps = c->taps, .pos0 = 0, .scale = 1.0f / sqrtf((float)m.dh), .y = l->saved[S_Y],
        .q = l->saved[S_QKV], .q_ld = m.ld, .q_col = 0, .kx = l->saved[S_QKV], .vx = l->saved[S_QKV], .x_ld = m.ld,
        .kx_col = m.H * m.dh, .vx_col = (m.H + m.G) * m.dh, .kf = l->saved[S_KVF], .vf = l->saved[S_KVF],
        .f_ld = m.kv, .kf_col = 0, .vf_col = m.G * m.dh, .y_hist = l->saved[S_Y_HIST], .win_k = l->saved[S_WIN_K],
        .win_v = l->saved[S_WIN_V], .fade_k = l->saved[S_FADE_K], .fade_v = l->saved[S_FADE_V],
        .cand_eps = l->saved[S_CAND_EPS], .cand_pos = l->saved[S_CAND_POS], .mem = l->saved[S_MEM],
        .out = l->saved[S_O], .out_ld = m.H * m.dh, .train_sets = l->saved[S_SETS], .train_lse = l->saved[S_LSE]};
    *a = x;
}

/* The backward op's arguments: the same views, with gradients into the temporaries. */
static void bwd_args(const bm_trainer *tr, int i, const bm_train_layer *l, bm_bmojo_bwd_args *b)
{
    const bm_layer_cfg *c = &tr->cfg.layers[i];
    dims m = dims_of(tr, i);
    size_t kx = m.H * m.dh, vx = (m.H + m.G) * m.dh, vf = m.G * m.dh;
    bm_bmojo_bwd_args x = {
        .B = tr->B, .T = tr->T, .H = (int)m.H, .Hkv = (int)m.G, .dh = (int)m.dh, .window = c->attn.window,
        .m_f = c->fading_tokens, .m_e = c->eidetic_tokens, .scale = 1.0f / sqrtf((float)m.dh), .sets = l->saved[S_SETS],
        .q = l->saved[S_QKV], .q_ld = m.ld, .q_col = 0, .kx = l->saved[S_QKV], .vx = l->saved[S_QKV], .x_ld = m.ld,
        .kx_col = kx, .vx_col = vx, .kf = l->saved[S_KVF], .vf = l->saved[S_KVF], .f_ld = m.kv, .kf_col = 0,
        .vf_col = vf, .o = l->saved[S_O], .dout = tr->temp[T_DO], .o_ld = m.H * m.dh, .dq = tr->temp[T_DQKV],
        .dq_ld = m.ld, .dq_col = 0, .dkx = tr->temp[T_DQKV], .dvx = tr->temp[T_DQKV], .dx_ld = m.ld, .dkx_col = kx,
        .dvx_col = vx, .dkf = tr->temp[T_DKVF], .dvf = tr->temp[T_DKVF], .df_ld = m.kv, .dkf_col = 0, .dvf_col = vf,
        .lse = l->saved[S_LSE]};
    *b = x;
}

static int bmojo_kind_params(bm_trainer *tr, int i, bm_train_layer *l)
{
    dims m = dims_of(tr, i);
    int64_t d = (int64_t)m.d, qd = (int64_t)(m.H * m.dh), kvd = (int64_t)(m.G * m.dh);
    bm_param_table *t = &tr->params;
    int st = bm_train_mamba_mixer_params(tr, i, l);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "attn.q_proj.weight", 2, qd, d, 0, BM_INIT_FANIN, m.d, &l->p[P_Q]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "attn.k_proj.weight", 2, kvd, d, 0, BM_INIT_FANIN, m.d, &l->p[P_K]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "attn.v_proj.weight", 2, kvd, d, 0, BM_INIT_FANIN, m.d, &l->p[P_V]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "attn.o_proj.weight", 2, d, qd, 0, BM_INIT_FANIN, (size_t)qd, &l->p[P_O]);
    return st;
}

static int bmojo_kind_reserve(bm_trainer *tr, int i, bm_train_layer *l)
{
    const bm_layer_cfg *c = &tr->cfg.layers[i];
    dims m = dims_of(tr, i);
    size_t N = tr->N, w = (size_t)c->attn.window, chunks = ((size_t)tr->T + w - 1) / w;
    size_t me = c->eidetic_tokens > 0 ? (size_t)c->eidetic_tokens : 1;
    bm_arena *a = &tr->arena;
    int st = bm_train_mamba_mixer_reserve(tr, i, l);
    if (!st) st = bm_arena_floats(a, N * m.d, &l->saved[S_Y]);
    if (!st) st = bm_arena_floats(a, N * m.ld, &l->saved[S_QKV]);
    if (!st) st = bm_arena_floats(a, N * m.kv, &l->saved[S_KVF]);
    if (!st) st = bm_arena_floats(a, N * m.H * m.dh, &l->saved[S_O]);
    if (!st) st = bm_arena_take(a, (size_t)tr->B * chunks * me * 4, &l->saved[S_SETS]);
    if (!st) st = bm_arena_floats(a, N * m.H, &l->saved[S_LSE]);
    bm_bmojo_args ma;
    mix_args(tr, i, l, &ma);
    bm_bmojo_state_sizes ss;
    bm_bmojo_state_layout(&ma, &ss);
    const size_t sizes[8] = {ss.y_hist, ss.win_k, ss.win_v, ss.fade_k, ss.fade_v, ss.cand_eps, ss.cand_pos, ss.mem};
    for (int k = 0; st == 0 && k < 8; k++)
        if (state_used(tr->T, k)) st = bm_arena_take(a, sizes[k], &l->saved[S_Y_HIST + k]);
    bm_train_temp_need(tr, T_DO, N * m.H * m.dh);
    bm_train_temp_need(tr, T_DQKV, N * m.ld);
    bm_train_temp_need(tr, T_DKVF, N * m.kv);
    bm_train_temp_need(tr, T_DY, N * m.d);
    bm_train_temp_need(tr, T_MIX_SCRATCH, (bm_bmojo_scratch_bytes(&ma) + 3) / 4);
    return st;
}

static int bmojo_kind_forward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem out)
{
    bm_rt *rt = tr->rt;
    dims m = dims_of(tr, i);
    size_t qd = m.H * m.dh;
    cl_mem y = l->saved[S_Y], qkv = l->saved[S_QKV], kvf = l->saved[S_KVF];
    int st = bm_train_mamba_mixer_forward(tr, i, l, h, y, 0.0f);
    if (!st) st = bm_train_linear_stack(tr, l, P_Q, 3, h, 0, m.d, m.d, qkv, 0, m.ld, 0.0f); /* q | kx | vx */
    if (!st) st = bm_train_linear_stack(tr, l, P_K, 2, y, 0, m.d, m.d, kvf, 0, m.kv, 0.0f); /* kf | vf */
    const float theta = tr->cfg.layers[i].attn.rope_theta; /* RoPE (beyond the contract): saved rotated */
    if (!st && theta > 0) st = bm_op_rope(rt, qkv, m.ld, 0, tr->B, tr->T, (int)(m.H + m.G), (int)m.dh, 0, theta); /* q | kx */
    if (!st && theta > 0) st = bm_op_rope(rt, kvf, m.kv, 0, tr->B, tr->T, (int)m.G, (int)m.dh, 0, theta);
    bm_bmojo_args ma;
    mix_args(tr, i, l, &ma);
    bm_bmojo_state_sizes ss;
    bm_bmojo_state_layout(&ma, &ss);
    const size_t sizes[8] = {ss.y_hist, ss.win_k, ss.win_v, ss.fade_k, ss.fade_v, ss.cand_eps, ss.cand_pos, ss.mem};
    for (int k = 0; st == 0 && k < 8; k++) /* the y history must be zeros; T = 1 reads the rest too */
        if (k == 0 || tr->T == 1) st = bm_fill_zero(rt, l->saved[S_Y_HIST + k], 0, sizes[k]);
    if (!st) st = bm_bmojo_mix(rt, &ma, tr->temp[T_MIX_SCRATCH]); /* o; the sets, lse into S_SETS, S_LSE */
    if (!st) st = bm_train_linear(tr, l->saved[S_O], 0, qd, qd, bm_train_value(tr, l, P_O), m.d, out, 0, m.d, 1.0f);
    return st;
}

static int bmojo_kind_backward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem dout, cl_mem dh)
{
    dims m = dims_of(tr, i);
    size_t qd = m.H * m.dh;
    cl_mem y = l->saved[S_Y], dqkv = tr->temp[T_DQKV], dkvf = tr->temp[T_DKVF], dy = tr->temp[T_DY];
    int st = bm_train_linear_backward(tr, l->saved[S_O], 0, qd, qd, bm_train_value(tr, l, P_O), bm_train_grad(tr, l, P_O),
                                      m.d, dout, 0, m.d, tr->temp[T_DO], 0, qd, 0.0f);
    bm_bmojo_bwd_args b;
    bwd_args(tr, i, l, &b);
    if (!st) st = bm_op_bmojo_attention_backward(tr->rt, &b);
    /* RoPE's transpose: the gradients of the rotated q, kx, kf become those of the projections */
    const float theta = tr->cfg.layers[i].attn.rope_theta;
    bm_rt *rt = tr->rt;
    if (!st && theta > 0)
        st = bm_op_rope_backward(rt, dqkv, m.ld, 0, tr->B, tr->T, (int)(m.H + m.G), (int)m.dh, 0, theta); /* q | kx */
    if (!st && theta > 0) st = bm_op_rope_backward(rt, dkvf, m.kv, 0, tr->B, tr->T, (int)m.G, (int)m.dh, 0, theta);
    /* Q, Kx, Vx from h; Kf, Vf from y through the same Wk, Wv */
    if (!st) st = bm_train_linear_stack_backward(tr, l, P_Q, 3, h, 0, m.d, m.d, dqkv, 0, m.ld, dh, 0, m.d, 0.0f);
    if (!st) st = bm_train_linear_stack_backward(tr, l, P_K, 2, y, 0, m.d, m.d, dkvf, 0, m.kv, dy, 0, m.d, 0.0f);
    /* the fading stream: y = mixer(h) */
    if (!st) st = bm_train_mamba_mixer_backward(tr, i, l, h, dy, dh, 1.0f);
    return st;
}

/* The sets saved by the forward (the mix's train_sets: [B, NC, max(m_e, 1)], best first, -1 pads). */
static int bmojo_kind_eidetic_sets(bm_trainer *tr, int i, bm_train_layer *l, int32_t *sets, int *chunks,
                                   int *per_chunk, int *chunk_len)
{
    const bm_layer_cfg *c = &tr->cfg.layers[i];
    const int w = c->attn.window, me = c->eidetic_tokens > 0 ? c->eidetic_tokens : 1;
    *chunks = (tr->T + w - 1) / w;
    *per_chunk = me;
    *chunk_len = w;
    if (!sets) return 0;
    return bm_download(tr->rt, l->saved[S_SETS], 0, sets, (size_t)tr->B * (size_t)*chunks * (size_t)me * sizeof(int32_t));
}

const bm_train_kind bm_train_bmojo = {
    .params = bmojo_kind_params,
    .reserve = bmojo_kind_reserve,
    .derive = bm_train_mamba_mixer_derive,
    .forward = bmojo_kind_forward,
    .backward = bmojo_kind_backward,
    .eidetic_sets = bmojo_kind_eidetic_sets,
};
