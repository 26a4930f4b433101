/* train_mlp.c — the mlp kind in the training pass: SwiGLU, down(silu(gate(h)) * up(h)), forward
 * and backward side by side. Saved per sublayer: gate|up outputs and the SwiGLU product (the
 * down projection's input). */
#include "error.h"
#include "ops.h"
#include "ops_backward.h"
#include "train.h"

enum { P_GATE, P_UP, P_DOWN };
enum { S_GU, S_ACT };
enum { T_DACT = 8, T_DGU = 9 };

static int mlp_params(bm_trainer *tr, int i, bm_train_layer *l)
{
    int64_t d = tr->cfg.d_model, f = tr->cfg.layers[i].intermediate;
    bm_param_table *t = &tr->params;
    int st = bm_params_add(t, &tr->cfg, i, "mlp.gate_proj.weight", 2, f, d, 0, BM_INIT_FANIN, (size_t)d, &l->p[P_GATE]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "mlp.up_proj.weight", 2, f, d, 0, BM_INIT_FANIN, (size_t)d, &l->p[P_UP]);
    if (!st) st = bm_params_add(t, &tr->cfg, i, "mlp.down_proj.weight", 2, d, f, 0, BM_INIT_FANIN, (size_t)f, &l->p[P_DOWN]);
    return st;
}

static int mlp_reserve(bm_trainer *tr, int i, bm_train_layer *l)
{
    size_t f = (size_t)tr->cfg.layers[i].intermediate;
    int st = bm_arena_floats(&tr->arena, tr->N * 2 * f, &l->saved[S_GU]);
    if (!st) st = bm_arena_floats(&tr->arena, tr->N * f, &l->saved[S_ACT]);
    bm_train_temp_need(tr, T_DACT, tr->N * f);
    bm_train_temp_need(tr, T_DGU, tr->N * 2 * f);
    return st;
}

static int mlp_forward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem out)
{
    size_t d = (size_t)tr->cfg.d_model, f = (size_t)tr->cfg.layers[i].intermediate;
    cl_mem gu = l->saved[S_GU], act = l->saved[S_ACT];
    int st = bm_train_linear_stack(tr, l, P_GATE, 2, h, 0, d, d, gu, 0, 2 * f, 0.0f); /* gate | up */
    if (!st) st = bm_op_swiglu(tr->rt, gu, 2 * f, 0, f, act, (int)tr->N, (int)f);
    if (!st) st = bm_train_linear(tr, act, 0, f, f, bm_train_value(tr, l, P_DOWN), d, out, 0, d, 1.0f);
    return st;
}

static int mlp_backward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem dout, cl_mem dh)
{
    size_t d = (size_t)tr->cfg.d_model, f = (size_t)tr->cfg.layers[i].intermediate;
    cl_mem gu = l->saved[S_GU], act = l->saved[S_ACT], dact = tr->temp[T_DACT], dgu = tr->temp[T_DGU];
    int st = bm_train_linear_backward(tr, act, 0, f, f, bm_train_value(tr, l, P_DOWN), bm_train_grad(tr, l, P_DOWN), d,
                                      dout, 0, d, dact, 0, f, 0.0f);
    if (!st) st = bm_op_swiglu_backward(tr->rt, gu, 2 * f, 0, f, dact, dgu, (int)tr->N, (int)f);
    if (!st) st = bm_train_linear_stack_backward(tr, l, P_GATE, 2, h, 0, d, d, dgu, 0, 2 * f, dh, 0, d, 0.0f);
    return st;
}

const bm_train_kind bm_train_mlp = {
    .params = mlp_params,
    .reserve = mlp_reserve,
    .derive = NULL,
    .forward = mlp_forward,
    .backward = mlp_backward,
};
