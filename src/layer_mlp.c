/* layer_mlp.c — SwiGLU MLP: down(SiLU(gate(h)) * up(h)), gate and up as one fused GEMM; in a
 * decoding step the SwiGLU is applied inside the down projection's skinny GEMM. */
#include "error.h"
#include "layers.h"
#include "ops.h"

int bm_layer_mlp(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in)
{
    bm_rt *rt = m->rt;
    const bm_layer_weights *w = &m->layers[i];
    bm_workspace *ws = &s->ws;
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model, f = (size_t)m->cfg.layers[i].intermediate;

    int st = bm_gemm_in(rt, in, N, 2 * f, d, w->w_gate_up, 0, d, 0.0f, ws->gu, 0, 2 * f);
    if (st) return st;
    if (N <= BM_GEMV_MAX_ROWS) {
        bm_gemv_input act = {.mode = BM_GEMV_SWIGLU, .A = ws->gu, .a_off = 0, .lda = 2 * f, .u_col = f};
        return bm_op_gemv_in(rt, &act, N, d, f, w->w_down, 0, f, 1.0f, ws->x, 0, d);
    }
    st = bm_op_swiglu(rt, ws->gu, 2 * f, 0, f, ws->act, (int)N, (int)f);
    if (!st) st = bm_gemm(rt, N, d, f, ws->act, 0, f, w->w_down, 0, f, 1.0f, ws->x, 0, d);
    return st;
}
