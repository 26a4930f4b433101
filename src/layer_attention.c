/* layer_attention.c — causal GQA attention (sliding window or full, RoPE or none): one fused GEMM
 * for q|k|v, RoPE in place, attention over the cache and the new rows, cache append, o_proj.
 * Also the kind's table (layer_kind.h): its weights, its K/V cache (a ring of `window` rows, or
 * for full attention a cache that doubles when it fills), workspace sizes and description. */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "layer_kind.h"
#include "layers.h"
#include "train.h"
#include "ops.h"
#include "weights_loader.h"

/* Neither form of the pass changes the attention: its GEMMs pick the skinny kernel by row count. */
static int attention_forward(bm_model *m, bm_state *s, int i, int T, bm_pass pass, const bm_gemv_input *in)
{
    (void)pass;
    bm_rt *rt = m->rt;
    const bm_attn_cfg *c = &m->cfg.layers[i].attn;
    const bm_layer_weights *w = &m->layers[i];
    bm_layer_state *ls = &s->layers[i];
    bm_workspace *ws = &s->ws;
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model;
    size_t H = (size_t)c->heads, G = (size_t)c->kv_heads, dh = (size_t)c->head_dim;
    size_t ld = (H + 2 * G) * dh;

    int st = bm_gemm_in(rt, in, N, ld, d, w->wqkv, 0, d, 0.0f, ws->qkv, 0, ld);
    /* q and k are adjacent columns: their H + G heads rotate in one launch */
    if (!st && c->rope_theta > 0) st = bm_op_rope(rt, ws->qkv, ld, 0, s->B, T, (int)(H + G), (int)dh, s->pos, c->rope_theta);
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

/* ---- the kind's table ---- */

static int attention_load(bm_loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    const bm_config *c = &L->m->cfg;
    const bm_attn_cfg *ac = &lc->attn;
    int64_t d = c->d_model, qd = (int64_t)ac->heads * ac->head_dim, kvd = (int64_t)ac->kv_heads * ac->head_dim;
    char nm[4][256];
    int st = 0;
    BM_LOAD_NAME(st, c, i, "attn.q_proj.weight", nm[0]);
    BM_LOAD_NAME(st, c, i, "attn.k_proj.weight", nm[1]);
    BM_LOAD_NAME(st, c, i, "attn.v_proj.weight", nm[2]);
    BM_LOAD_NAME(st, c, i, "attn.o_proj.weight", nm[3]);
    if (st) return st;
    bm_load_part qkv[3] = {{nm[0], 2, {qd, d, 0}, BM_INIT_FANIN, (size_t)d},
                           {nm[1], 2, {kvd, d, 0}, BM_INIT_FANIN, (size_t)d},
                           {nm[2], 2, {kvd, d, 0}, BM_INIT_FANIN, (size_t)d}};
    st = bm_load_matrix_parts(L, qkv, 3, &w->wqkv);
    if (!st) st = bm_load_matrix1(L, nm[3], d, qd, BM_INIT_FANIN, (size_t)qd, &w->wo);
    return st;
}

static void attention_dims(const bm_layer_cfg *l, bm_model_dims *o)
{
    size_t H = (size_t)l->attn.heads, G = (size_t)l->attn.kv_heads, dh = (size_t)l->attn.head_dim, v;
    if ((v = (H + 2 * G) * dh) > o->qkv) o->qkv = v;
    if ((v = H * dh) > o->att) o->att = v;
}

size_t bm_layer_attention_describe(const bm_layer_cfg *l, char *buf, size_t n)
{
    size_t off = 0;
#define PUT(...)                                                                                                       \
    do {                                                                                                               \
        if (off < n) off += (size_t)snprintf(buf + off, n - off, __VA_ARGS__);                                         \
    } while (0)
    PUT(" heads %d/%d x %d", l->attn.heads, l->attn.kv_heads, l->attn.head_dim);
    if (l->attn.window) PUT(" window %d", l->attn.window);
    else PUT(" full");
    if (l->attn.rope_theta > 0) PUT(" rope %g", (double)l->attn.rope_theta);
#undef PUT
    return off;
}

static void attention_count(bmojo_model_info *info) { info->n_attention++; }

/* K and V rows per kv head: the window (a query sees itself and the w - 1 tokens before it), or
 * the whole context under full attention. */
void bm_layer_attention_recurrent_memory(const bm_layer_cfg *l, int64_t context, bmojo_recurrent_memory *o)
{
    const uint64_t kv = 2 * (uint64_t)l->attn.kv_heads * (uint64_t)l->attn.head_dim;
    if (l->attn.window > 0) o->window_kv += kv * (uint64_t)l->attn.window;
    else o->context_kv += kv * (uint64_t)context;
}

/* Full attention starts with 64 rows per (sequence, head) and grows on demand. */
static int attention_state_alloc(const bm_model *m, int i, int B, bm_layer_state *ls, bm_sizer *z)
{
    const bm_layer_cfg *l = &m->cfg.layers[i];
    size_t G = (size_t)l->attn.kv_heads, dh = (size_t)l->attn.head_dim, Bs = (size_t)B;
    ls->cap = l->attn.window > 0 ? l->attn.window : 64;
    int st = bm_sizer_take(z, Bs * G * (size_t)ls->cap * dh * 4, &ls->k_cache);
    if (!st) st = bm_sizer_take(z, Bs * G * (size_t)ls->cap * dh * 4, &ls->v_cache);
    return st;
}

/* A sliding window's ring has a fixed size; full attention's cache grows with the context. */
static int attention_state_grows(const bm_layer_cfg *l) { return !(l->attn.window > 0); }

static uint64_t attention_state_cap_bytes(const bm_layer_cfg *l, int B, int64_t cap)
{
    return 2 * (uint64_t)B * (uint64_t)l->attn.kv_heads * (uint64_t)cap * (uint64_t)l->attn.head_dim * 4;
}

/* New K and V caches [B, Hkv, cap, dh]; keep: the rows of each (b, g) move from stride old cap to
 * stride new cap (slot p == p while cap >= positions). */
static int attention_state_recap(bm_state *s, int i, int64_t cap, int keep)
{
    bm_layer_state *ls = &s->layers[i];
    const bm_layer_cfg *l = &s->m->cfg.layers[i];
    size_t G = (size_t)l->attn.kv_heads, dh = (size_t)l->attn.head_dim, B = (size_t)s->B;
    cl_mem nk = NULL, nv = NULL;
    int st = bm_alloc(s->m->rt, B * G * (size_t)cap * dh * 4, &nk);
    if (!st) st = bm_alloc(s->m->rt, B * G * (size_t)cap * dh * 4, &nv);
    size_t old_row = (size_t)ls->cap * dh * 4, new_row = (size_t)cap * dh * 4;
    for (size_t bg = 0; keep && st == 0 && bg < B * G; bg++) {
        st = bm_copy(s->m->rt, ls->k_cache, bg * old_row, nk, bg * new_row, old_row);
        if (!st) st = bm_copy(s->m->rt, ls->v_cache, bg * old_row, nv, bg * new_row, old_row);
    }
    if (st) {
        bm_release(nk);
        bm_release(nv);
        return st;
    }
    bm_release(ls->k_cache);
    bm_release(ls->v_cache);
    ls->k_cache = nk;
    ls->v_cache = nv;
    ls->cap = (int)cap;
    return 0;
}

const bm_layer_kind bm_layer_kind_attention = {
    .type = BM_LAYER_ATTENTION,
    .name = "attention",
    .load = attention_load,
    .dims = attention_dims,
    .describe = bm_layer_attention_describe,
    .count = attention_count,
    .recurrent_memory = bm_layer_attention_recurrent_memory,
    .state_alloc = attention_state_alloc,
    .state_grows = attention_state_grows,
    .state_cap_bytes = attention_state_cap_bytes,
    .state_recap = attention_state_recap,
    .forward = attention_forward,
    .train = &bm_train_attention,
};
