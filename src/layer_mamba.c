/* layer_mamba.c — the Mamba-1 (S6) mixer as HF MambaMixer: in_proj -> causal depthwise conv1d ->
 * SiLU -> x_proj -> (RMSNorm of dt, B, C for Jamba) -> dt_proj -> softplus -> selective scan with D
 * skip -> SiLU(z) gate -> out_proj. Views into the fused projection outputs avoid copies: x and z
 * are the two column halves of in_proj's output, dt/B/C the column ranges of x_proj's output.
 * A decoding step (T = 1, at most 8 sequences) takes four launches instead of five: the conv step
 * rides on the in_proj GEMV (bm_op_gemv_in_conv); decoding is bound by fixed costs per launch. */
#include "error.h"
#include "layers.h"
#include "ops.h"

int bm_layer_mamba(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in, cl_mem out, float beta)
{
    size_t di2 = 2 * (size_t)m->cfg.layers[i].mamba.d_inner;
    int conv_done = 0;
    int st = bm_layer_mamba_in_proj(m, s, i, T, in, di2, &conv_done);
    return st ? st : bm_layer_mamba_mixer(m, s, i, T, di2, conv_done, out, beta, NULL);
}

int bm_layer_mamba_in_proj(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in, size_t ncols, int *conv_done)
{
    const bm_mamba_cfg *c = &m->cfg.layers[i].mamba;
    const bm_layer_weights *w = &m->layers[i];
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model;
    *conv_done = 0;
    /* Decoding: the conv step rides on the GEMV's x columns (one launch fewer per layer; on the
     * H200 decoding is bound by the host's cost per launch). An in_proj bias would have to come
     * before the conv, so that case keeps the separate launches. */
    if (T == 1 && N <= BM_GEMV_MAX_ROWS && !w->in_proj_b && bm_op_gemv_fused_ok(m->rt, in, N, d, 0, d)) {
        bm_gemv_conv conv = {c->d_inner, c->d_conv, w->conv_w, w->conv_b, s->layers[i].conv, s->ws.u};
        *conv_done = 1;
        return bm_op_gemv_in_conv(m->rt, in, N, ncols, d, w->in_proj, 0, d, s->ws.xz, 0, ncols, &conv);
    }
    return bm_gemm_in(m->rt, in, N, ncols, d, w->in_proj, 0, d, 0.0f, s->ws.xz, 0, ncols);
}

int bm_layer_mamba_mixer(bm_model *m, bm_state *s, int i, int T, size_t xz_ld, int conv_done, cl_mem out, float beta,
                         const bm_bmojo_args *bmojo_pre)
{
    bm_rt *rt = m->rt;
    const bm_mamba_cfg *c = &m->cfg.layers[i].mamba;
    const bm_layer_weights *w = &m->layers[i];
    bm_layer_state *ls = &s->layers[i];
    bm_workspace *ws = &s->ws;
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model, di = (size_t)c->d_inner;
    size_t n = (size_t)c->d_state, R = (size_t)c->dt_rank, xd = R + 2 * n;

    int st = 0;
    if (!conv_done) {
        if (w->in_proj_b) st = bm_op_bias_add(rt, ws->xz, xz_ld, w->in_proj_b, (int)N, (int)(2 * di));
        bm_conv_args ca = {s->B, T, (int)di, c->d_conv, ws->xz, xz_ld, w->conv_w, w->conv_b, ls->conv, ws->u};
        if (!st) st = bm_op_conv1d(rt, &ca);
    }
    if (!st) st = bm_gemm(rt, N, xd, di, ws->u, 0, di, w->x_proj, 0, di, 0.0f, ws->xdbl, 0, xd);
    if (!st && c->dt_bc_norm) {
        float eps = m->cfg.norm_eps;
        st = bm_op_rmsnorm(rt, ws->xdbl, xd, 0, w->dt_norm, ws->xdbl, xd, 0, (int)N, (int)R, eps);
        if (!st) st = bm_op_rmsnorm(rt, ws->xdbl, xd, R, w->b_norm, ws->xdbl, xd, R, (int)N, (int)n, eps);
        if (!st) st = bm_op_rmsnorm(rt, ws->xdbl, xd, R + n, w->c_norm, ws->xdbl, xd, R + n, (int)N, (int)n, eps);
    }
    /* the scan op applies dt_proj itself */
    bm_scan_args sa = {.B = s->B, .T = T, .di = (int)di, .n = (int)n, .u = ws->u, .dt = NULL, .dt_ld = di,
                       .dt_bias = w->dt_bias, .A = w->A, .bc = ws->xdbl, .bc_ld = xd, .b_col = R, .c_col = R + n,
                       .D = w->D, .z = ws->xz, .z_ld = xz_ld, .z_col = di, .state = ls->ssm, .y = ws->ys,
                       .dt_proj = w->dt_proj, .dt_rank = (int)R};
    if (!st) st = bmojo_pre ? bm_bmojo_decode_scan_pre(rt, &sa, bmojo_pre) : bm_op_scan(rt, &sa);
    if (!st && out) st = bm_gemm(rt, N, d, di, ws->ys, 0, di, w->out_proj, 0, di, beta, out, 0, d);
    if (!st && out && w->out_proj_b) st = bm_op_bias_add(rt, out, d, w->out_proj_b, (int)N, (int)d);
    return st;
}
