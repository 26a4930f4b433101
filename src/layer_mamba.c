/* layer_mamba.c — the Mamba-1 (S6) mixer as HF MambaMixer: in_proj -> causal depthwise conv1d ->
 * SiLU -> x_proj -> (RMSNorm of dt, B, C for Jamba) -> dt_proj -> softplus -> selective scan with D
 * skip -> SiLU(z) gate -> out_proj. Views into the fused projection outputs avoid copies: x and z
 * are the two column halves of in_proj's output, dt/B/C the column ranges of x_proj's output.
 * A decoding step (T = 1, at most 8 sequences) takes four launches instead of five: the conv step
 * rides on the in_proj GEMV (bm_op_gemv_in_conv); decoding is bound by fixed costs per launch.
 * Also the kind's table (layer_kind.h): its weights, state, workspace sizes and description,
 * whose helpers the B'MOJO kind (layer_bmojo.c) reuses for its fading stream. */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "layer_kind.h"
#include "layers.h"
#include "train.h"
#include "ops.h"
#include "weights_loader.h"

static int mamba_forward(bm_model *m, bm_state *s, int i, int T, bm_pass pass, const bm_gemv_input *in)
{
    size_t di2 = 2 * (size_t)m->cfg.layers[i].mamba.d_inner;
    int conv_done = 0;
    int st = bm_layer_mamba_in_proj(m, s, i, T, pass, in, di2, &conv_done);
    return st ? st : bm_layer_mamba_mixer(m, s, i, T, di2, conv_done, s->ws.x, 1.0f, NULL);
}

int bm_layer_mamba_in_proj(bm_model *m, bm_state *s, int i, int T, bm_pass pass, const bm_gemv_input *in,
                           size_t ncols, int *conv_done)
{
    const bm_mamba_cfg *c = &m->cfg.layers[i].mamba;
    const bm_layer_weights *w = &m->layers[i];
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model;
    *conv_done = 0;
    /* Decoding: the conv step rides on the GEMV's x columns (one launch fewer per layer; on the
     * H200 decoding is bound by the host's cost per launch). An in_proj bias would have to come
     * before the conv, so that case keeps the separate launches. */
    if (pass == BM_PASS_DECODE && T == 1 && !w->in_proj_b && bm_op_gemv_fused_ok(m->rt, in, N, d, 0, d)) {
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

/* ---- the kind's table ---- */

/* A_log is stored; the scan wants A = -exp(A_log). */
static void neg_exp(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = -expf(x[i]);
}

static int upload_A(bm_loader *L, const char *name, int64_t di, int64_t n, cl_mem *out)
{
    bm_load_part p = {name, 2, {di, n, 0}, BM_INIT_A_LOG, 0};
    return bm_load_parts_tf(L, &p, 1, neg_exp, out);
}

int bm_layer_mamba_load(bm_loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w, const char *const *extra,
                        const int64_t *extra_rows, int n_extra)
{
    const bm_config *c = &L->m->cfg;
    const bm_mamba_cfg *mc = &lc->mamba;
    int64_t d = c->d_model, di = mc->d_inner, n = mc->d_state, R = mc->dt_rank, k = mc->d_conv;
    char nm[BM_LOAD_MAX_PARTS][256];
    int st = 0;
    if (n_extra < 0 || n_extra > BM_LOAD_MAX_PARTS - 1)
        return bm_fail(BMOJO_EINVAL, "bm_layer_mamba_load: %d extra in_proj parts", n_extra);
#define NAME(j, suffix) BM_LOAD_NAME(st, c, i, suffix, nm[j])
    if (n_extra > 0) {
        /* in_proj and the extra rows (bmojo: q|k|v) both read h: one weight [2*di + rows, d], so one GEMM */
        NAME(0, "mamba.in_proj.weight");
        for (int j = 0; j < n_extra; j++) NAME(1 + j, extra[j]);
        if (st) return st;
        bm_load_part parts[BM_LOAD_MAX_PARTS] = {{nm[0], 2, {2 * di, d, 0}, BM_INIT_FANIN, (size_t)d}};
        for (int j = 0; j < n_extra; j++)
            parts[1 + j] = (bm_load_part){nm[1 + j], 2, {extra_rows[j], d, 0}, BM_INIT_FANIN, (size_t)d};
        st = bm_load_matrix_parts(L, parts, 1 + n_extra, &w->in_proj);
        w->wqkv_row = (size_t)(2 * di);
    } else
        st = bm_load_matrix1(L, NAME(0, "mamba.in_proj.weight"), 2 * di, d, BM_INIT_FANIN, (size_t)d, &w->in_proj);
    if (!st && mc->proj_bias) st = bm_load1(L, NAME(0, "mamba.in_proj.bias"), 1, 2 * di, 0, 0, BM_INIT_ZEROS, 0, &w->in_proj_b);
    if (!st) st = bm_load1(L, NAME(0, "mamba.conv1d.weight"), 3, di, 1, k, BM_INIT_CONV, (size_t)k, &w->conv_w);
    if (!st && mc->conv_bias) st = bm_load1(L, NAME(0, "mamba.conv1d.bias"), 1, di, 0, 0, BM_INIT_CONV, (size_t)k, &w->conv_b);
    if (!st) st = bm_load_matrix1(L, NAME(0, "mamba.x_proj.weight"), R + 2 * n, di, BM_INIT_FANIN, (size_t)di, &w->x_proj);
    /* dt_proj stays fp32 whatever the storage: the scan kernels apply it (cl/scan*.cl) */
    if (!st) st = bm_load1(L, NAME(0, "mamba.dt_proj.weight"), 2, di, R, 0, BM_INIT_FANIN, (size_t)R, &w->dt_proj);
    if (!st) st = bm_load1(L, NAME(0, "mamba.dt_proj.bias"), 1, di, 0, 0, BM_INIT_DT_BIAS, 0, &w->dt_bias);
    if (!st) st = upload_A(L, NAME(0, "mamba.A_log"), di, n, &w->A);
    if (!st) st = bm_load1(L, NAME(0, "mamba.D"), 1, di, 0, 0, BM_INIT_ONES, 0, &w->D);
    if (!st) st = bm_load_matrix1(L, NAME(0, "mamba.out_proj.weight"), d, di, BM_INIT_FANIN, (size_t)di, &w->out_proj);
    if (!st && mc->proj_bias) st = bm_load1(L, NAME(0, "mamba.out_proj.bias"), 1, d, 0, 0, BM_INIT_ZEROS, 0, &w->out_proj_b);
    if (!st && mc->dt_bc_norm) {
        st = bm_load1(L, NAME(0, "mamba.dt_norm.weight"), 1, R, 0, 0, BM_INIT_ONES, 0, &w->dt_norm);
        if (!st) st = bm_load1(L, NAME(0, "mamba.b_norm.weight"), 1, n, 0, 0, BM_INIT_ONES, 0, &w->b_norm);
        if (!st) st = bm_load1(L, NAME(0, "mamba.c_norm.weight"), 1, n, 0, 0, BM_INIT_ONES, 0, &w->c_norm);
    }
#undef NAME
    return st;
}

static int mamba_load(bm_loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    return bm_layer_mamba_load(L, i, lc, w, NULL, NULL, 0);
}

void bm_layer_mamba_dims(const bm_layer_cfg *l, size_t extra_cols, bm_model_dims *o)
{
    size_t v;
    if ((v = (size_t)l->mamba.d_inner) > o->di) o->di = v;
    if ((v = (size_t)(l->mamba.dt_rank + 2 * l->mamba.d_state)) > o->xdbl) o->xdbl = v;
    v = 2 * (size_t)l->mamba.d_inner + extra_cols;
    if (v > o->hproj) o->hproj = v;
}

static void mamba_dims(const bm_layer_cfg *l, bm_model_dims *o) { bm_layer_mamba_dims(l, 0, o); }

size_t bm_layer_mamba_describe(const bm_layer_cfg *l, char *buf, size_t n)
{
    return (size_t)snprintf(buf, n, " d_inner %d d_state %d d_conv %d dt_rank %d%s", l->mamba.d_inner,
                            l->mamba.d_state, l->mamba.d_conv, l->mamba.dt_rank, l->mamba.dt_bc_norm ? " dt_bc_norm" : "");
}

static void mamba_count(bmojo_model_info *info) { info->n_mamba++; }

void bm_layer_mamba_recurrent_memory(const bm_layer_cfg *l, int64_t context, bmojo_recurrent_memory *o)
{
    (void)context;
    const uint64_t di = (uint64_t)l->mamba.d_inner;
    o->ssm += di * (uint64_t)l->mamba.d_state;
    o->conv += di * (uint64_t)(l->mamba.d_conv > 1 ? l->mamba.d_conv - 1 : 0);
}

static size_t at_least1(int v) { return v > 0 ? (size_t)v : 1; }

int bm_layer_mamba_state_alloc(const bm_model *m, int i, int B, bm_layer_state *ls, bm_sizer *z)
{
    const bm_layer_cfg *l = &m->cfg.layers[i];
    size_t di = (size_t)l->mamba.d_inner, Bs = (size_t)B;
    int st = bm_sizer_take(z, Bs * di * at_least1(l->mamba.d_conv - 1) * 4, &ls->conv);
    if (!st) st = bm_sizer_take(z, Bs * di * (size_t)l->mamba.d_state * 4, &ls->ssm);
    return st;
}

const bm_layer_kind bm_layer_kind_mamba = {
    .type = BM_LAYER_MAMBA,
    .name = "mamba",
    .load = mamba_load,
    .dims = mamba_dims,
    .describe = bm_layer_mamba_describe,
    .count = mamba_count,
    .recurrent_memory = bm_layer_mamba_recurrent_memory,
    .state_alloc = bm_layer_mamba_state_alloc,
    .state_grows = NULL, /* conv and SSM states: constant in the sequence length */
    .forward = mamba_forward,
    .train = &bm_train_mamba,
};
