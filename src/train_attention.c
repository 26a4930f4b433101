/* train_attention.c — the attention kind in the training pass: causal GQA attention (sliding
 * window or full, RoPE or none), forward and backward side by side. Saved per sublayer: q|k|v
 * after RoPE and the attention output before o_proj. Recomputed: the softmax (the backward
 * kernel rebuilds it from q, k and the output, flash-attention style). */
#include <math.h>

#include "error.h"
#include "ops.h"
#include "ops_backward.h"
#include "train.h"

enum { P_Q, P_K, P_V, P_O };
enum { S_QKV, S_ATT };
/* temporaries: after the mamba mixer's slots, which this kind never uses at the same time */
enum { T_DATT = 8, T_DQKV = 9 };

typedef struct {
    size_t d, H, G, dh, ld;
} dims;

static dims dims_of(const bm_trainer *tr, int i)
{
    const bm_attn_cfg *c = &tr->cfg.layers[i].attn;
    dims x = {(size_t)tr->cfg.d_model, (size_t)c->heads, (size_t)c->kv_heads, (size_t)c->head_dim, 0};
    x.ld = (x.H + 2 * x.G) * x.dh;
    return x;
}

static int attn_params(bm_trainer *tr, int i, bm_train_layer *l)
{
    dims m = dims_of(tr, i);
    int64_t d = (int64_t)m.d, qd = (int64_t)(m.H * m.dh), kvd = (int64_t)(m.G * m.dh);
    bm_param_table *t = &tr->params;
    int st = bm_params_add(t, &tr->cfg, i, "attn.q_proj.weight", 2, qd, d, 0, BM_INIT_FANIN, m.d, &l->p[P_Q]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "attn.k_proj.weight", 2, kvd, d, 0, BM_INIT_FANIN, m.d, &l->p[P_K]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "attn.v_proj.weight", 2, kvd, d, 0, BM_INIT_FANIN, m.d, &l->p[P_V]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "attn.o_proj.weight", 2, d, qd, 0, BM_INIT_FANIN, (size_t)qd, &l->p[P_O]);
    return st;
}

static int attn_reserve(bm_trainer *tr, int i, bm_train_layer *l)
{
    dims m = dims_of(tr, i);
    int st = bm_arena_floats(&tr->arena, tr->N * m.ld, &l->saved[S_QKV]);
    if (!st) st = bm_arena_floats(&tr->arena, tr->N * m.H * m.dh, &l->saved[S_ATT]);
    bm_train_temp_need(tr, T_DATT, tr->N * m.H * m.dh);
    bm_train_temp_need(tr, T_DQKV, tr->N * m.ld);
    return st;
}

static int attn_forward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem out)
{
    bm_rt *rt = tr->rt;
    const bm_attn_cfg *c = &tr->cfg.layers[i].attn;
    dims m = dims_of(tr, i);
    cl_mem qkv = l->saved[S_QKV], att = l->saved[S_ATT];
    size_t qd = m.H * m.dh, kvd = m.G * m.dh;
    int st = bm_train_linear_stack(tr, l, P_Q, 3, h, 0, m.d, m.d, qkv, 0, m.ld, 0.0f); /* q | k | v */
    if (!st && c->rope_theta > 0) /* q | k, adjacent: one launch */
        st = bm_op_rope(rt, qkv, m.ld, 0, tr->B, tr->T, (int)(m.H + m.G), (int)m.dh, 0, c->rope_theta);
    bm_attn_args a = {.B = tr->B, .T = tr->T, .H = (int)m.H, .Hkv = (int)m.G, .dh = (int)m.dh, .q = qkv, .q_ld = m.ld,
                      .q_col = 0, .k = qkv, .v = qkv, .kv_ld = m.ld, .k_col = qd, .v_col = qd + kvd, .pos0 = 0,
                      .window = c->window, .scale = 1.0f / sqrtf((float)m.dh), .out = att, .out_ld = qd};
    if (!st) st = bm_op_attention(rt, &a);
    if (!st) st = bm_train_linear(tr, att, 0, qd, qd, bm_train_value(tr, l, P_O), m.d, out, 0, m.d, 1.0f);
    return st;
}

static int attn_backward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem dout, cl_mem dh)
{
    bm_rt *rt = tr->rt;
    const bm_attn_cfg *c = &tr->cfg.layers[i].attn;
    dims m = dims_of(tr, i);
    cl_mem qkv = l->saved[S_QKV], att = l->saved[S_ATT], datt = tr->temp[T_DATT], dqkv = tr->temp[T_DQKV];
    size_t qd = m.H * m.dh, kvd = m.G * m.dh;
    int st = bm_train_linear_backward(tr, att, 0, qd, qd, bm_train_value(tr, l, P_O), bm_train_grad(tr, l, P_O), m.d,
                                      dout, 0, m.d, datt, 0, qd, 0.0f);
    bm_attn_bwd_args b = {.B = tr->B, .T = tr->T, .H = (int)m.H, .Hkv = (int)m.G, .dh = (int)m.dh, .window = c->window,
                          .scale = 1.0f / sqrtf((float)m.dh), .q = qkv, .q_ld = m.ld, .q_col = 0, .k = qkv, .v = qkv,
                          .kv_ld = m.ld, .k_col = qd, .v_col = qd + kvd, .o = att, .dout = datt, .o_ld = qd,
                          .dq = dqkv, .dq_ld = m.ld, .dq_col = 0, .dk = dqkv, .dv = dqkv, .dkv_ld = m.ld,
                          .dk_col = qd, .dv_col = qd + kvd};
    if (!st) st = bm_op_attention_backward(rt, &b);
    if (!st && c->rope_theta > 0) /* dq | dk, adjacent: one launch */
        st = bm_op_rope_backward(rt, dqkv, m.ld, 0, tr->B, tr->T, (int)(m.H + m.G), (int)m.dh, 0, c->rope_theta);
    if (!st) st = bm_train_linear_stack_backward(tr, l, P_Q, 3, h, 0, m.d, m.d, dqkv, 0, m.ld, dh, 0, m.d, 0.0f);
    return st;
}

const bm_train_kind bm_train_attention = {
    .params = attn_params,
    .reserve = attn_reserve,
    .derive = NULL,
    .forward = attn_forward,
    .backward = attn_backward,
};
