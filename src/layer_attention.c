/* layer_attention.c — causal GQA attention (sliding window or full, RoPE or none): one fused GEMM
 * for q|k|v, RoPE in place, attention over the cache and the new rows, cache append, o_proj. */
#include <math.h>

#include "error.h"
#include "layers.h"
#include "ops.h"

int bm_layer_attention(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in)
{
    bm_rt *rt = m->rt;
    const bm_attn_cfg *c = &m->cfg.layers[i].attn;
    const bm_layer_weights *w = &m->layers[i];
    bm_layer_state *ls = &s->layers[i];
    bm_workspace *ws = &s->ws;
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model;
    size_t H = (size_t)c->heads, G = (size_t)c->kv_heads, dh = (size_t)c->head_dim;
    size_t ld = (H + 2 * G) * dh;

    int st = bm_gemm_in(rt, in, N, ld, d, w->wqkv, 0, d, 0.0f, ws->qkv, 0, ld);
    if (!st && c->rope_theta > 0) {
        st = bm_op_rope(rt, ws->qkv, ld, 0, s->B, T, (int)H, (int)dh, s->pos, c->rope_theta);
        if (!st) st = bm_op_rope(rt, ws->qkv, ld, H * dh, s->B, T, (int)G, (int)dh, s->pos, c->rope_theta);
    }
    bm_attn_args a = {.B = s->B, .T = T, .H = (int)H, .Hkv = (int)G, .dh = (int)dh,
                      .q = ws->qkv, .q_ld = ld, .q_col = 0,
                      .k = ws->qkv, .v = ws->qkv, .kv_ld = ld, .k_col = H * dh, .v_col = (H + G) * dh,
                      .k_cache = ls->k_cache, .v_cache = ls->v_cache, .cap = ls->cap, .pos0 = s->pos,
                      .window = c->window, .scale = 1.0f / sqrtf((float)dh), .out = ws->att, .out_ld = H * dh};
    if (!st) st = bm_op_attention(rt, &a);
    if (!st) st = bm_op_kv_append(rt, &a);
    if (!st) st = bm_gemm(rt, N, d, H * dh, ws->att, 0, H * dh, w->wo, 0, H * dh, 1.0f, ws->x, 0, d);
    return st;
}
