/* train_mamba.c — the mamba kind in the training pass: the Mamba-1 mixer's forward, saving what
 * its backward reads, and the backward, side by side (derivations: docs/training.md).
 * Saved per sublayer: xz (in_proj output), u (conv + SiLU), x_proj's output (before and after
 * the dt/B/C norms when they exist), dt (dt_proj output), ys (gated scan output). Recomputed:
 * the SSM states (the scan backward reruns the recurrence from checkpoints inside its launch)
 * and the conv pre-activation. */
#include "error.h"
#include "ops.h"
#include "ops_backward.h"
#include "train_mamba.h"

typedef struct {
    size_t d, di, n, R, xd, k;
} dims;

static dims dims_of(const bm_trainer *tr, int i)
{
    const bm_mamba_cfg *c = &tr->cfg.layers[i].mamba;
    dims x = {(size_t)tr->cfg.d_model, (size_t)c->d_inner, (size_t)c->d_state, (size_t)c->dt_rank, 0, (size_t)c->d_conv};
    x.xd = x.R + 2 * x.n;
    return x;
}

int bm_train_mamba_mixer_params(bm_trainer *tr, int i, bm_train_layer *l)
{
    const bm_mamba_cfg *c = &tr->cfg.layers[i].mamba;
    dims m = dims_of(tr, i);
    int64_t d = (int64_t)m.d, di = (int64_t)m.di, n = (int64_t)m.n, R = (int64_t)m.R, k = (int64_t)m.k;
    bm_param_table *t = &tr->params;
    const bm_config *cf = &tr->cfg;
    int *p = l->p;
    int st = bm_params_add(t, cf, i, "mamba.in_proj.weight", 2, 2 * di, d, 0, BM_INIT_FANIN, m.d, &p[BM_TM_IN_PROJ]);
    if (!st && c->proj_bias)
        st = bm_params_add(t, cf, i, "mamba.in_proj.bias", 1, 2 * di, 0, 0, BM_INIT_ZEROS, 0, &p[BM_TM_IN_PROJ_B]);
    if (!st) st = bm_params_add(t, cf, i, "mamba.conv1d.weight", 3, di, 1, k, BM_INIT_CONV, m.k, &p[BM_TM_CONV_W]);
    if (!st && c->conv_bias)
        st = bm_params_add(t, cf, i, "mamba.conv1d.bias", 1, di, 0, 0, BM_INIT_CONV, m.k, &p[BM_TM_CONV_B]);
    if (!st) st = bm_params_add(t, cf, i, "mamba.x_proj.weight", 2, R + 2 * n, di, 0, BM_INIT_FANIN, m.di, &p[BM_TM_X_PROJ]);
    if (!st) st = bm_params_add(t, cf, i, "mamba.dt_proj.weight", 2, di, R, 0, BM_INIT_FANIN, m.R, &p[BM_TM_DT_PROJ]);
    if (!st) st = bm_params_add(t, cf, i, "mamba.dt_proj.bias", 1, di, 0, 0, BM_INIT_DT_BIAS, 0, &p[BM_TM_DT_BIAS]);
    if (!st) st = bm_params_add(t, cf, i, "mamba.A_log", 2, di, n, 0, BM_INIT_A_LOG, 0, &p[BM_TM_A_LOG]);
    if (!st) t->p[p[BM_TM_A_LOG]].decay = 0; /* Mamba's reference keeps A_log (and D) out of weight decay */
    if (!st) st = bm_params_add(t, cf, i, "mamba.D", 1, di, 0, 0, BM_INIT_ONES, 0, &p[BM_TM_D]);
    if (!st) st = bm_params_add(t, cf, i, "mamba.out_proj.weight", 2, d, di, 0, BM_INIT_FANIN, m.di, &p[BM_TM_OUT_PROJ]);
    if (!st && c->proj_bias)
        st = bm_params_add(t, cf, i, "mamba.out_proj.bias", 1, d, 0, 0, BM_INIT_ZEROS, 0, &p[BM_TM_OUT_PROJ_B]);
    if (!st && c->dt_bc_norm) {
        st = bm_params_add(t, cf, i, "mamba.dt_norm.weight", 1, R, 0, 0, BM_INIT_ONES, 0, &p[BM_TM_DT_NORM]);
        if (!st) st = bm_params_add(t, cf, i, "mamba.b_norm.weight", 1, n, 0, 0, BM_INIT_ONES, 0, &p[BM_TM_B_NORM]);
        if (!st) st = bm_params_add(t, cf, i, "mamba.c_norm.weight", 1, n, 0, 0, BM_INIT_ONES, 0, &p[BM_TM_C_NORM]);
    }
    /* A = -exp(A_log), re-derived before every pass */
    if (!st && !l->derived[0]) st = bm_alloc(tr->rt, m.di * m.n * sizeof(float), &l->derived[0]);
    return st;
}

int bm_train_mamba_mixer_reserve(bm_trainer *tr, int i, bm_train_layer *l)
{
    dims m = dims_of(tr, i);
    size_t N = tr->N, B = (size_t)tr->B;
    bm_arena *a = &tr->arena;
    int st = bm_arena_floats(a, N * 2 * m.di, &l->saved[BM_TM_S_XZ]);
    if (!st) st = bm_arena_floats(a, N * m.di, &l->saved[BM_TM_S_U]);
    if (!st && tr->cfg.layers[i].mamba.dt_bc_norm) st = bm_arena_floats(a, N * m.xd, &l->saved[BM_TM_S_XDBL_RAW]);
    if (!st) st = bm_arena_floats(a, N * m.xd, &l->saved[BM_TM_S_XDBL]);
    if (!st) st = bm_arena_floats(a, N * m.di, &l->saved[BM_TM_S_DT]);
    if (!st) st = bm_arena_floats(a, N * m.di, &l->saved[BM_TM_S_YS]);
    bm_train_temp_need(tr, BM_TM_T_CONV_STATE, B * m.di * (m.k > 1 ? m.k - 1 : 1));
    bm_train_temp_need(tr, BM_TM_T_SSM_STATE, B * m.di * m.n);
    bm_train_temp_need(tr, BM_TM_T_DYS, N * m.di);
    bm_train_temp_need(tr, BM_TM_T_DXZ, N * 2 * m.di);
    bm_train_temp_need(tr, BM_TM_T_DU, N * m.di);
    bm_train_temp_need(tr, BM_TM_T_DDT, N * m.di);
    bm_train_temp_need(tr, BM_TM_T_DXDBL, N * m.xd);
    bm_train_temp_need(tr, BM_TM_T_DA, m.di * m.n);
    return st;
}

int bm_train_mamba_mixer_derive(bm_trainer *tr, int i, bm_train_layer *l)
{
    dims m = dims_of(tr, i);
    return bm_op_neg_exp(tr->rt, bm_train_value(tr, l, BM_TM_A_LOG), l->derived[0], m.di * m.n);
}

int bm_train_mamba_mixer_forward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem out, float beta)
{
    bm_rt *rt = tr->rt;
    const bm_mamba_cfg *c = &tr->cfg.layers[i].mamba;
    dims m = dims_of(tr, i);
    size_t N = tr->N, B = (size_t)tr->B;
    cl_mem xz = l->saved[BM_TM_S_XZ], u = l->saved[BM_TM_S_U], xdbl = l->saved[BM_TM_S_XDBL];
    cl_mem raw = c->dt_bc_norm ? l->saved[BM_TM_S_XDBL_RAW] : xdbl, dt = l->saved[BM_TM_S_DT], ys = l->saved[BM_TM_S_YS];
    cl_mem conv_state = tr->temp[BM_TM_T_CONV_STATE], ssm_state = tr->temp[BM_TM_T_SSM_STATE];
#define V(k) bm_train_value(tr, l, k)
    int st = bm_train_linear(tr, h, 0, m.d, m.d, V(BM_TM_IN_PROJ), 2 * m.di, xz, 0, 2 * m.di, 0.0f);
    if (!st && V(BM_TM_IN_PROJ_B)) st = bm_op_bias_add(rt, xz, 2 * m.di, V(BM_TM_IN_PROJ_B), (int)N, (int)(2 * m.di));
    /* every sequence starts from an empty state */
    if (!st) st = bm_fill_zero(rt, conv_state, 0, B * m.di * (m.k > 1 ? m.k - 1 : 1) * 4);
    if (!st) st = bm_fill_zero(rt, ssm_state, 0, B * m.di * m.n * 4);
    bm_conv_args ca = {tr->B, tr->T, (int)m.di, (int)m.k, xz, 2 * m.di, V(BM_TM_CONV_W), V(BM_TM_CONV_B), conv_state, u};
    if (!st) st = bm_op_conv1d(rt, &ca);
    if (!st) st = bm_train_linear(tr, u, 0, m.di, m.di, V(BM_TM_X_PROJ), m.xd, raw, 0, m.xd, 0.0f);
    if (!st && c->dt_bc_norm) {
        float eps = tr->cfg.norm_eps;
        st = bm_op_rmsnorm(rt, raw, m.xd, 0, V(BM_TM_DT_NORM), xdbl, m.xd, 0, (int)N, (int)m.R, eps);
        if (!st) st = bm_op_rmsnorm(rt, raw, m.xd, m.R, V(BM_TM_B_NORM), xdbl, m.xd, m.R, (int)N, (int)m.n, eps);
        if (!st)
            st = bm_op_rmsnorm(rt, raw, m.xd, m.R + m.n, V(BM_TM_C_NORM), xdbl, m.xd, m.R + m.n, (int)N, (int)m.n, eps);
    }
    if (!st) st = bm_train_linear(tr, xdbl, 0, m.xd, m.R, V(BM_TM_DT_PROJ), m.di, dt, 0, m.di, 0.0f);
    bm_scan_args sa = {.B = tr->B, .T = tr->T, .di = (int)m.di, .n = (int)m.n, .u = u, .dt = dt, .dt_ld = m.di,
                       .dt_bias = V(BM_TM_DT_BIAS), .A = l->derived[0], .bc = xdbl, .bc_ld = m.xd, .b_col = m.R,
                       .c_col = m.R + m.n, .D = V(BM_TM_D), .z = xz, .z_ld = 2 * m.di, .z_col = m.di,
                       .state = ssm_state, .y = ys};
    if (!st) st = bm_op_scan(rt, &sa);
    if (!st) st = bm_train_linear(tr, ys, 0, m.di, m.di, V(BM_TM_OUT_PROJ), m.d, out, 0, m.d, beta);
    if (!st && V(BM_TM_OUT_PROJ_B)) st = bm_op_bias_add(rt, out, m.d, V(BM_TM_OUT_PROJ_B), (int)N, (int)m.d);
    return st;
}

int bm_train_mamba_mixer_backward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem dout, cl_mem dh,
                                  float beta_dh)
{
    bm_rt *rt = tr->rt;
    const bm_mamba_cfg *c = &tr->cfg.layers[i].mamba;
    dims m = dims_of(tr, i);
    size_t N = tr->N;
    cl_mem xz = l->saved[BM_TM_S_XZ], u = l->saved[BM_TM_S_U], xdbl = l->saved[BM_TM_S_XDBL];
    cl_mem raw = l->saved[BM_TM_S_XDBL_RAW], dt = l->saved[BM_TM_S_DT], ys = l->saved[BM_TM_S_YS];
    cl_mem dys = tr->temp[BM_TM_T_DYS], dxz = tr->temp[BM_TM_T_DXZ], du = tr->temp[BM_TM_T_DU];
    cl_mem ddt = tr->temp[BM_TM_T_DDT], dxdbl = tr->temp[BM_TM_T_DXDBL], dA = tr->temp[BM_TM_T_DA];
#define G(k) bm_train_grad(tr, l, k)
    /* out = ys out_proj^T (+ b) */
    int st = bm_train_linear_backward(tr, ys, 0, m.di, m.di, V(BM_TM_OUT_PROJ), G(BM_TM_OUT_PROJ), m.d, dout, 0, m.d, dys,
                                      0, m.di, 0.0f);
    if (!st && G(BM_TM_OUT_PROJ_B)) st = bm_op_colsum(rt, dout, m.d, 0, (int)N, (int)m.d, G(BM_TM_OUT_PROJ_B));
    /* the scan: du, d(raw dt), dB, dC, dz; dA is summed apart and chained into A_log */
    if (!st) st = bm_fill_zero(rt, dA, 0, m.di * m.n * 4);
    bm_scan_bwd_args sb = {.B = tr->B, .T = tr->T, .di = (int)m.di, .n = (int)m.n, .u = u, .dt = dt, .dt_ld = m.di,
                           .dt_bias = V(BM_TM_DT_BIAS), .A = l->derived[0], .bc = xdbl, .bc_ld = m.xd, .b_col = m.R,
                           .c_col = m.R + m.n, .D = V(BM_TM_D), .z = xz, .z_ld = 2 * m.di, .z_col = m.di, .dy = dys,
                           .du = du, .ddt = ddt, .dbc = dxdbl, .dbc_ld = m.xd, .dz = dxz, .dz_ld = 2 * m.di, .dA = dA,
                           .dD = G(BM_TM_D), .d_dt_bias = G(BM_TM_DT_BIAS)};
    if (!st) st = bm_op_scan_backward(rt, &sb);
    if (!st) st = bm_op_neg_exp_backward(rt, l->derived[0], dA, G(BM_TM_A_LOG), m.di * m.n);
    /* dt = xdbl[:, :R] dt_proj^T */
    if (!st)
        st = bm_train_linear_backward(tr, xdbl, 0, m.xd, m.R, V(BM_TM_DT_PROJ), G(BM_TM_DT_PROJ), m.di, ddt, 0, m.di,
                                      dxdbl, 0, m.xd, 0.0f);
    if (!st && c->dt_bc_norm) { /* in place on the three column ranges of dxdbl */
        float eps = tr->cfg.norm_eps;
        st = bm_op_rmsnorm_backward(rt, raw, m.xd, 0, V(BM_TM_DT_NORM), dxdbl, m.xd, 0, 0.0f, dxdbl, m.xd, 0,
                                    G(BM_TM_DT_NORM), (int)N, (int)m.R, eps);
        if (!st)
            st = bm_op_rmsnorm_backward(rt, raw, m.xd, m.R, V(BM_TM_B_NORM), dxdbl, m.xd, m.R, 0.0f, dxdbl, m.xd, m.R,
                                        G(BM_TM_B_NORM), (int)N, (int)m.n, eps);
        if (!st)
            st = bm_op_rmsnorm_backward(rt, raw, m.xd, m.R + m.n, V(BM_TM_C_NORM), dxdbl, m.xd, m.R + m.n, 0.0f, dxdbl,
                                        m.xd, m.R + m.n, G(BM_TM_C_NORM), (int)N, (int)m.n, eps);
    }
    /* x_proj: its input u also feeds the scan (du already holds that part) */
    if (!st)
        st = bm_train_linear_backward(tr, u, 0, m.di, m.di, V(BM_TM_X_PROJ), G(BM_TM_X_PROJ), m.xd, dxdbl, 0, m.xd, du,
                                      0, m.di, 1.0f);
    /* conv + SiLU: dx into the x half of dxz (the scan wrote the z half) */
    bm_conv_bwd_args cb = {.B = tr->B, .T = tr->T, .di = (int)m.di, .k = (int)m.k, .x = xz, .x_ld = 2 * m.di,
                           .w = V(BM_TM_CONV_W), .bias = V(BM_TM_CONV_B), .du = du, .dx = dxz, .dx_ld = 2 * m.di,
                           .dw = G(BM_TM_CONV_W), .dbias = G(BM_TM_CONV_B)};
    if (!st) st = bm_op_conv1d_backward(rt, &cb);
    if (!st && G(BM_TM_IN_PROJ_B)) st = bm_op_colsum(rt, dxz, 2 * m.di, 0, (int)N, (int)(2 * m.di), G(BM_TM_IN_PROJ_B));
    if (!st)
        st = bm_train_linear_backward(tr, h, 0, m.d, m.d, V(BM_TM_IN_PROJ), G(BM_TM_IN_PROJ), 2 * m.di, dxz, 0, 2 * m.di,
                                      dh, 0, m.d, beta_dh);
    return st;
#undef G
#undef V
}

static int mamba_params(bm_trainer *tr, int i, bm_train_layer *l)
{
    return bm_train_mamba_mixer_params(tr, i, l);
}

static int mamba_forward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem out)
{
    return bm_train_mamba_mixer_forward(tr, i, l, h, out, 1.0f);
}

static int mamba_backward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem dout, cl_mem dh)
{
    return bm_train_mamba_mixer_backward(tr, i, l, h, dout, dh, 0.0f);
}

const bm_train_kind bm_train_mamba = {
    .params = mamba_params,
    .reserve = bm_train_mamba_mixer_reserve,
    .derive = bm_train_mamba_mixer_derive,
    .forward = mamba_forward,
    .backward = mamba_backward,
};
