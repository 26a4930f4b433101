/* layer_bmojo.c — the B'MOJO mixer (model contract section 2): the fading stream y is a full
 * Mamba-1 mixer on h; Q, Kx, Vx come from h and Kf, Vf from y through the same Wq/Wk/Wv. One
 * GEMM on h computes the Mamba in_proj and q|k|v together (their weights are stored as one), one
 * GEMM on y the k|v rows of the same weight; bm_bmojo_mix does the innovation test, the eidetic
 * selection, the chunk memory and the attention over [fading | eidetic | window]; Wo projects the
 * heads back into the residual stream. With rope_theta (beyond the contract, whose B'MOJO attention
 * has no positional encoding) Q, Kx and Kf are rotated by their positions. Also the kind's table (layer_kind.h), built on the Mamba
 * kind's helpers for the fading stream: its weights (and the decoding fold of Wk|Wv into
 * out_proj), its state, workspace sizes and description. */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "layer_kind.h"
#include "layers.h"
#include "train.h"
#include "ops_bmojo.h"
#include "weights_loader.h"

/* The launcher arguments of sublayer i for T tokens, pointing at the workspace and the state:
 * q, Kx, Vx are column views of the fused in_proj output (ws->xz: x | z | q | k | v). */
static void mix_args(bm_model *m, bm_state *s, int i, int T, bm_bmojo_args *a)
{
    const bm_layer_cfg *l = &m->cfg.layers[i];
    bm_layer_state *ls = &s->layers[i];
    bm_workspace *ws = &s->ws;
    size_t H = (size_t)l->attn.heads, G = (size_t)l->attn.kv_heads, dh = (size_t)l->attn.head_dim;
    bm_bmojo_args x = {
        .B = s->B, .T = T, .d = m->cfg.d_model, .H = (int)H, .Hkv = (int)G, .dh = (int)dh,
        .window = l->attn.window, .m_f = l->fading_tokens, .m_e = l->eidetic_tokens,
        .n_taps = l->n_taps, .taps = l->taps, .pos0 = s->pos, .scale = 1.0f / sqrtf((float)dh),
        .y = ws->y,
        .q = ws->xz, .q_ld = m->layers[i].wqkv_row + (H + 2 * G) * dh, .q_col = m->layers[i].wqkv_row,
        .kx = ws->xz, .vx = ws->xz, .x_ld = m->layers[i].wqkv_row + (H + 2 * G) * dh,
        .kx_col = m->layers[i].wqkv_row + H * dh, .vx_col = m->layers[i].wqkv_row + (H + G) * dh,
        .kf = ws->kvf, .vf = ws->kvf, .f_ld = 2 * G * dh, .kf_col = 0, .vf_col = G * dh,
        .y_hist = ls->y_hist, .win_k = ls->win_k, .win_v = ls->win_v, .fade_k = ls->fade_k, .fade_v = ls->fade_v,
        .cand_eps = ls->cand_eps, .cand_pos = ls->cand_pos, .mem = ls->mem,
        .out = ws->att, .out_ld = H * dh};
    *a = x;
}

static int ensure_scratch(bm_state *s, size_t bytes)
{
    bm_workspace *ws = &s->ws;
    if (ws->mix_scratch && ws->mix_scratch_bytes >= bytes) return 0;
    bm_release(ws->mix_scratch);
    ws->mix_scratch = NULL;
    ws->mix_scratch_bytes = 0;
    int st = bm_alloc(s->m->rt, bytes, &ws->mix_scratch);
    if (!st) ws->mix_scratch_bytes = bytes;
    return st;
}

static int bmojo_layer_forward(bm_model *m, bm_state *s, int i, int T, bm_pass pass, const bm_gemv_input *in)
{
    bm_rt *rt = m->rt;
    const bm_attn_cfg *c = &m->cfg.layers[i].attn;
    const bm_layer_weights *w = &m->layers[i];
    bm_workspace *ws = &s->ws;
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model;
    size_t H = (size_t)c->heads, G = (size_t)c->kv_heads, dh = (size_t)c->head_dim, ld = (H + 2 * G) * dh;

    /* one GEMM: x | z | q | k | v = h [in_proj | Wq | Wk | Wv]^T */
    const size_t di2 = w->wqkv_row, hld = di2 + ld;
    int conv_done = 0;
    int st = bm_layer_mamba_in_proj(m, s, i, T, pass, in, hld, &conv_done);
    /* RoPE (rope_theta > 0, an extension beyond the contract): Q and Kx rotated by their absolute
     * positions here, Kf below, so that every key the attention reads, window, eidetic or fading,
     * is kept rotated by its own position in the state and a score depends on t - p only */
    const float theta = c->rope_theta;
    /* (q and Kx are adjacent columns: H + G heads in one launch) */
    if (!st && theta > 0) st = bm_op_rope(rt, ws->xz, hld, di2, s->B, T, (int)(H + G), (int)dh, s->pos, theta);
    const size_t di = (size_t)m->cfg.layers[i].mamba.d_inner, kv = 2 * G * dh;
    bm_gemv_input ys = {.mode = BM_GEMV_PLAIN, .A = ws->ys, .a_off = 0, .lda = di};
    bm_bmojo_args a;
    mix_args(m, s, i, T, &a);
    bm_scan_args step = {.B = s->B, .T = T, .dt_proj = w->dt_proj};
    if (pass == BM_PASS_DECODE && T == 1 && w->out_kv_rows == kv && bm_op_gemv_fused_ok(rt, &ys, N, di, 0, di)) {
        /* decoding: y and Kf | Vf from one GEMV over out_proj's folded rows (fold_out_kv); and,
         * when it applies, the B'MOJO state update rides on the scan step's and o_proj's launches
         * (bm_bmojo_decode_*): 5 launches for the sublayer instead of 8 */
        /* (with RoPE, Kf is rotated between its GEMV and the attention: no shared launch) */
        const int fused = theta == 0 && bm_bmojo_decode_fused_ok(rt, &a, &step);
        if (!st) st = bm_layer_mamba_mixer(m, s, i, T, hld, conv_done, NULL, 0.0f, fused ? &a : NULL);
        if (fused) { /* the attention shares the y | Kf | Vf GEMV's launch */
            int mark = bm_scratch_mark(rt);
            cl_mem parts = NULL;
            if (!st) st = bm_bmojo_decode_kv_attention(rt, &a, &ys, di, w->out_proj, ws->y, d, ws->kvf, kv, &parts);
            if (!st) st = bm_bmojo_decode_out_post(rt, &a, parts, w->wo, ws->x, d);
            bm_scratch_release(rt, mark);
            return st;
        }
        if (!st) st = bm_op_gemv_split(rt, &ys, N, d + kv, di, w->out_proj, 0, di, ws->y, 0, d, d, ws->kvf, 0, kv);
    } else {
        if (!st) st = bm_layer_mamba_mixer(m, s, i, T, hld, conv_done, ws->y, 0.0f, NULL);
        /* Kf | Vf = y [Wk | Wv]^T: the k and v rows start at row 2*di + H*dh of the fused weight */
        if (!st) st = bm_gemm(rt, N, kv, d, ws->y, 0, d, w->in_proj, (di2 + H * dh) * d, d, 0.0f, ws->kvf, 0, kv);
    }
    if (!st && theta > 0) st = bm_op_rope(rt, ws->kvf, kv, 0, s->B, T, (int)G, (int)dh, s->pos, theta);
    if (!st) st = ensure_scratch(s, bm_bmojo_scratch_bytes(&a));
    if (!st) st = bm_bmojo_mix(rt, &a, ws->mix_scratch);
    if (!st) st = bm_gemm(rt, N, d, H * dh, ws->att, 0, H * dh, w->wo, 0, H * dh, 1.0f, ws->x, 0, d);
    return st;
}

/* ---- the kind's table ---- */

/* Byte sizes of sublayer i's state buffers for B sequences. */
static void state_sizes(const bm_model *m, int i, int B, bm_bmojo_state_sizes *out)
{
    const bm_layer_cfg *l = &m->cfg.layers[i];
    bm_bmojo_args a = {.B = B, .T = 1, .d = m->cfg.d_model, .H = l->attn.heads, .Hkv = l->attn.kv_heads,
                       .dh = l->attn.head_dim, .window = l->attn.window, .m_f = l->fading_tokens,
                       .m_e = l->eidetic_tokens, .n_taps = l->n_taps, .taps = l->taps};
    bm_bmojo_state_layout(&a, out);
}

/* Decoding fusion: Kf | Vf = y [Wk | Wv]^T with y = ys out_proj^T, i.e. Kf | Vf =
 * ys ((Wk|Wv) out_proj)^T. out_proj [d, di] is replaced by [d + 2*Hkv*dh, di]: its rows, then the
 * product (computed here on the device, in fp32), so that a decoding step gets y and Kf | Vf
 * from one GEMV (bm_op_gemv_split) instead of two dependent launches; prefill keeps using the
 * first d rows. Costs 2*Hkv*dh*di floats per layer (3 MiB at the 130M scale). With f16 storage
 * the product is taken of the stored (rounded) weights widened to fp32, and the folded out_proj
 * stays fp32 (its d rows widened exactly): a second rounding of the product would make decoding
 * differ from prefill by more than fp32 round-off, where f16 storage promises fp32 arithmetic on
 * the stored weights (tests/test_fixtures.c checks it). Costs d*di*2 bytes more per layer than
 * an f16 out_proj, only where the fusion is on (GPUs by default). */
static int fold_out_kv(bm_model *m, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    bm_rt *rt = m->rt;
    const size_t d = (size_t)m->cfg.d_model, di = (size_t)lc->mamba.d_inner;
    const size_t kv = 2 * (size_t)lc->attn.kv_heads * (size_t)lc->attn.head_dim;
    const size_t krow = w->wqkv_row + (size_t)lc->attn.heads * (size_t)lc->attn.head_dim;
    const int half = w->out_proj.store == BM_STORE_F16;
    cl_mem both = NULL, wkv = w->in_proj.buf, outp = w->out_proj.buf;
    size_t wkv_off = krow * d;
    int st = 0;
    if (half) { /* fp32 copies of the operands: the Wk|Wv rows of in_proj and out_proj */
        wkv = outp = NULL;
        wkv_off = 0;
        st = bm_alloc(rt, kv * d * sizeof(float), &wkv);
        if (!st) st = bm_op_f16_widen(rt, w->in_proj.buf, krow * d, wkv, kv * d);
        if (!st) st = bm_alloc(rt, d * di * sizeof(float), &outp);
        if (!st) st = bm_op_f16_widen(rt, w->out_proj.buf, 0, outp, d * di);
    }
    if (!st) st = bm_alloc(rt, (d + kv) * di * sizeof(float), &both);
    if (!st) st = bm_op_copy(rt, outp, both, d * di);
    if (!st) st = bm_gemm_nn(rt, kv, di, d, wkv, wkv_off, d, outp, 0, di, both, d * di, di);
    if (!st) st = bm_finish(rt);
    if (half) {
        bm_release(wkv);
        bm_release(outp);
    }
    if (st) {
        bm_release(both);
        return bm_fail_context(st, "folding Wk|Wv into out_proj");
    }
    bm_release(w->out_proj.buf);
    w->out_proj = (bm_wmat){both, BM_STORE_F32};
    w->out_kv_rows = kv;
    return 0;
}

/* The budget of fold_out_kv: the extra rows (fp32), and under f16 storage the out_proj rows
 * that it widens back to fp32. */
static void plan_fold_out_kv(bm_loader *L, const bm_layer_cfg *lc)
{
    const uint64_t di = (uint64_t)lc->mamba.d_inner;
    L->plan_bytes += 2 * (uint64_t)lc->attn.kv_heads * (uint64_t)lc->attn.head_dim * di * sizeof(float);
    L->plan_bytes_if_f16 += (uint64_t)L->m->cfg.d_model * di * 2;
}

/* The Mamba weights with q|k|v stacked under in_proj (one GEMM on h), then o_proj, then (when
 * decoding fusions are on) the fold. */
static int bmojo_layer_load(bm_loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    const bm_config *c = &L->m->cfg;
    const bm_attn_cfg *ac = &lc->attn;
    int64_t d = c->d_model, qd = (int64_t)ac->heads * ac->head_dim, kvd = (int64_t)ac->kv_heads * ac->head_dim;
    static const char *const qkv[3] = {"attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight"};
    const int64_t rows[3] = {qd, kvd, kvd};
    char nm[256];
    int st = bm_layer_mamba_load(L, i, lc, w, qkv, rows, 3);
    if (!st) st = bm_config_tensor_name(c, i, "attn.o_proj.weight", nm, sizeof nm);
    if (!st) st = bm_load_matrix1(L, nm, d, qd, BM_INIT_FANIN, (size_t)qd, &w->wo);
    if (!st && L->m->rt->fuse_decode) {
        if (L->plan_only) plan_fold_out_kv(L, lc);
        else st = fold_out_kv(L->m, lc, w);
    }
    return st;
}

static void bmojo_layer_dims(const bm_layer_cfg *l, bm_model_dims *o)
{
    size_t H = (size_t)l->attn.heads, G = (size_t)l->attn.kv_heads, dh = (size_t)l->attn.head_dim, v;
    /* q|k|v are columns of the fused in_proj output (no separate qkv buffer) */
    bm_layer_mamba_dims(l, (H + 2 * G) * dh, o);
    if ((v = H * dh) > o->att) o->att = v;
    if ((v = 2 * G * dh) > o->kvf) o->kvf = v;
}

static size_t bmojo_layer_describe(const bm_layer_cfg *l, char *buf, size_t n)
{
    size_t off = bm_layer_mamba_describe(l, buf, n);
    if (off < n) off += bm_layer_attention_describe(l, buf + off, n - off);
    if (off < n)
        off += (size_t)snprintf(buf + off, n - off, " fading %d eidetic %d taps %d", l->fading_tokens,
                                l->eidetic_tokens, l->n_taps);
    return off;
}

static void bmojo_layer_count(bmojo_model_info *info) { info->n_bmojo++; }

/* The Mamba state and the window's K/V, plus the K/V rows of the fading and eidetic tokens. The
 * implementation also holds the eidetic candidates, the predictor's last outputs and the chunk's
 * frozen copy of its memory (bmojo_state_memory): bookkeeping, not memory the model reads. */
static void bmojo_layer_recurrent_memory(const bm_layer_cfg *l, int64_t context, bmojo_recurrent_memory *o)
{
    const uint64_t kv = 2 * (uint64_t)l->attn.kv_heads * (uint64_t)l->attn.head_dim;
    bm_layer_mamba_recurrent_memory(l, context, o);
    bm_layer_attention_recurrent_memory(l, context, o);
    o->fading_kv += kv * (uint64_t)l->fading_tokens;
    o->eidetic_kv += kv * (uint64_t)l->eidetic_tokens;
}

/* The Mamba conv and SSM states, then the B'MOJO memories (layout in ops_bmojo.h). */
static int bmojo_layer_state_alloc(const bm_model *m, int i, int B, bm_layer_state *ls, bm_sizer *z)
{
    int st = bm_layer_mamba_state_alloc(m, i, B, ls, z);
    if (st) return st;
    bm_bmojo_state_sizes q;
    state_sizes(m, i, B, &q);
    ls->cap = m->cfg.layers[i].attn.window;
    st = bm_sizer_take(z, q.y_hist, &ls->y_hist);
    if (!st) st = bm_sizer_take(z, q.win_k, &ls->win_k);
    if (!st) st = bm_sizer_take(z, q.win_v, &ls->win_v);
    if (!st) st = bm_sizer_take(z, q.fade_k, &ls->fade_k);
    if (!st) st = bm_sizer_take(z, q.fade_v, &ls->fade_v);
    if (!st) st = bm_sizer_take(z, q.cand_eps, &ls->cand_eps);
    if (!st) st = bm_sizer_take(z, q.cand_pos, &ls->cand_pos);
    if (!st) st = bm_sizer_take(z, q.mem, &ls->mem);
    return st;
}

const bm_layer_kind bm_layer_kind_bmojo = {
    .type = BM_LAYER_BMOJO,
    .name = "bmojo",
    .load = bmojo_layer_load,
    .dims = bmojo_layer_dims,
    .describe = bmojo_layer_describe,
    .count = bmojo_layer_count,
    .recurrent_memory = bmojo_layer_recurrent_memory,
    .state_alloc = bmojo_layer_state_alloc,
    .state_grows = NULL, /* window ring, fading rows, candidates, chunk memory: constant in length */
    .forward = bmojo_layer_forward,
    .train = &bm_train_bmojo,
};
