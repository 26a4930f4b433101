/* layer_mlp.c — SwiGLU MLP: down(SiLU(gate(h)) * up(h)), gate and up as one fused GEMM; in a
 * decoding step the SwiGLU is applied inside the down projection's skinny GEMM. Also the kind's
 * table (layer_kind.h): no state, its weights, workspace sizes and description. */
#include <stdio.h>

#include "error.h"
#include "layer_kind.h"
#include "layers.h"
#include "train.h"
#include "ops.h"
#include "weights_loader.h"

static int mlp_forward(bm_model *m, bm_state *s, int i, int T, bm_pass pass, const bm_gemv_input *in)
{
    bm_rt *rt = m->rt;
    const bm_layer_weights *w = &m->layers[i];
    bm_workspace *ws = &s->ws;
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model, f = (size_t)m->cfg.layers[i].intermediate;

    int st = bm_gemm_in(rt, in, N, 2 * f, d, w->w_gate_up, 0, d, 0.0f, ws->gu, 0, 2 * f);
    if (st) return st;
    if (pass == BM_PASS_DECODE) {
        bm_gemv_input act = {.mode = BM_GEMV_SWIGLU, .A = ws->gu, .a_off = 0, .lda = 2 * f, .u_col = f};
        return bm_op_gemv_in(rt, &act, N, d, f, w->w_down, 0, f, 1.0f, ws->x, 0, d);
    }
    st = bm_op_swiglu(rt, ws->gu, 2 * f, 0, f, ws->act, (int)N, (int)f);
    if (!st) st = bm_gemm(rt, N, d, f, ws->act, 0, f, w->w_down, 0, f, 1.0f, ws->x, 0, d);
    return st;
}

/* ---- the kind's table ---- */

static int mlp_load(bm_loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    const bm_config *c = &L->m->cfg;
    int64_t d = c->d_model, f = lc->intermediate;
    char nm[3][256];
    int st = 0;
    BM_LOAD_NAME(st, c, i, "mlp.gate_proj.weight", nm[0]);
    BM_LOAD_NAME(st, c, i, "mlp.up_proj.weight", nm[1]);
    BM_LOAD_NAME(st, c, i, "mlp.down_proj.weight", nm[2]);
    if (st) return st;
    bm_load_part gu[2] = {{nm[0], 2, {f, d, 0}, BM_INIT_FANIN, (size_t)d}, {nm[1], 2, {f, d, 0}, BM_INIT_FANIN, (size_t)d}};
    st = bm_load_matrix_parts(L, gu, 2, &w->w_gate_up);
    if (!st) st = bm_load_matrix1(L, nm[2], d, f, BM_INIT_FANIN, (size_t)f, &w->w_down);
    return st;
}

static void mlp_dims(const bm_layer_cfg *l, bm_model_dims *o)
{
    size_t v;
    if ((v = (size_t)l->intermediate) > o->f) o->f = v;
}

static size_t mlp_describe(const bm_layer_cfg *l, char *buf, size_t n)
{
    return (size_t)snprintf(buf, n, " intermediate %d", l->intermediate);
}

static void mlp_count(bmojo_model_info *info) { info->n_mlp++; }

static int mlp_state_alloc(const bm_model *m, int i, int B, bm_layer_state *ls, bm_sizer *z)
{
    (void)m, (void)i, (void)B, (void)ls, (void)z;
    return 0; /* stateless */
}

const bm_layer_kind bm_layer_kind_mlp = {
    .type = BM_LAYER_MLP,
    .name = "mlp",
    .load = mlp_load,
    .dims = mlp_dims,
    .describe = mlp_describe,
    .count = mlp_count,
    .state_alloc = mlp_state_alloc,
    .state_grows = NULL,
    .forward = mlp_forward,
    .train = &bm_train_mlp,
};
