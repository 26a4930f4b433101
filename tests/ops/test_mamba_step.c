/* test_mamba_step.c — the fused Mamba-1 decoding step (bm_op_mamba_step, cl/mamba_step.cl)
 * against bm_ref_mamba_step (x_proj, dt/B/C norms, dt_proj, scan of one step): y, the advanced
 * state and xdbl, for awkward sizes (di 1, odd, not a multiple of the work-group; d_state 1 and
 * 17; dt_rank 1 and 48; B up to 3), with and without the Jamba norms, over three consecutive
 * steps so that a wrongly written state shows up in the next step's y. */
#include <stdio.h>
#include <stdlib.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

#define MSTEP_TOL 1e-5

static void one_case(bm_test_ctx *t, int B, int di, int n, int R, int norm)
{
    const size_t xd = (size_t)R + 2 * (size_t)n, z_ld = 2 * (size_t)di + 3, z_col = (size_t)di + 1;
    float *u = bm_test_alloc((size_t)B * di * 4), *Wx = bm_test_alloc(xd * di * 4), *Wdt = bm_test_alloc((size_t)di * R * 4);
    float *nw = bm_test_alloc(xd * 4), *bias = bm_test_alloc((size_t)di * 4), *A = bm_test_alloc((size_t)di * n * 4);
    float *D = bm_test_alloc((size_t)di * 4), *z = bm_test_alloc((size_t)B * z_ld * 4);
    float *state = bm_test_alloc((size_t)B * di * n * 4), *y = bm_test_alloc((size_t)B * di * 4);
    float *xdbl = bm_test_alloc((size_t)B * xd * 4), *dts = bm_test_alloc((size_t)B * di * 4);
    float *got = bm_test_alloc(((size_t)B * di * n + (size_t)B * xd) * 4);
    bm_test_fill(t, Wx, xd * di, -0.3f, 0.3f);
    bm_test_fill(t, Wdt, (size_t)di * R, -0.5f, 0.5f);
    bm_test_fill(t, nw, xd, 0.5f, 1.5f);
    bm_test_fill(t, bias, di, -1.0f, 0.5f);
    bm_test_fill(t, A, (size_t)di * n, -8.0f, -0.1f);
    bm_test_fill(t, D, di, -1.0f, 1.0f);
    bm_test_fill(t, state, (size_t)B * di * n, -1.0f, 1.0f);
    cl_mem du = bm_test_buffer(t, NULL, (size_t)B * di * 4), dWx = bm_test_buffer(t, Wx, xd * di * 4);
    cl_mem dWdt = bm_test_buffer(t, Wdt, (size_t)di * R * 4), dnw = bm_test_buffer(t, nw, xd * 4);
    cl_mem dbias = bm_test_buffer(t, bias, (size_t)di * 4), dA = bm_test_buffer(t, A, (size_t)di * n * 4);
    cl_mem dD = bm_test_buffer(t, D, (size_t)di * 4), dz = bm_test_buffer(t, NULL, (size_t)B * z_ld * 4);
    cl_mem dstate = bm_test_buffer(t, state, (size_t)B * di * n * 4), dy = bm_test_buffer(t, NULL, (size_t)B * di * 4);
    cl_mem dxdbl = bm_test_buffer(t, NULL, (size_t)B * xd * 4);
    /* the norm weights are views of one buffer in the reference; the op takes three buffers */
    cl_mem dnd = bm_test_buffer(t, nw, (size_t)R * 4), dnb = bm_test_buffer(t, nw + R, (size_t)n * 4);
    cl_mem dnc = bm_test_buffer(t, nw + R + n, (size_t)n * 4);
    (void)dnw;
    bm_mamba_step_args a = {.B = B, .di = di, .n = n, .R = R, .u = du, .x_proj = dWx,
                            .dt_norm = norm ? dnd : NULL, .b_norm = norm ? dnb : NULL, .c_norm = norm ? dnc : NULL,
                            .eps = 1e-5f, .xdbl = dxdbl, .dt_proj = dWdt, .dt_bias = dbias, .A = dA, .D = dD, .z = dz,
                            .z_ld = z_ld, .z_col = z_col, .state = dstate, .y = dy};
    for (int step = 0; step < 3; step++) {
        bm_test_fill(t, u, (size_t)B * di, -2.0f, 2.0f);
        bm_test_fill(t, z, (size_t)B * z_ld, -3.0f, 3.0f);
        int st = bm_upload(t->rt, du, 0, u, (size_t)B * di * 4);
        if (!st) st = bm_upload(t->rt, dz, 0, z, (size_t)B * z_ld * 4);
        bm_ref_mamba_step(B, di, n, R, u, Wx, norm ? nw : NULL, nw + R, nw + R + n, 1e-5f, xdbl, Wdt, bias, A, D, z, z_ld,
                          z_col, state, y, dts);
        char what[128];
        snprintf(what, sizeof what, "mamba_step B=%d di=%d n=%d R=%d%s step %d", B, di, n, R, norm ? " norms" : "", step);
        if (!bm_test_status(t, st ? st : bm_op_mamba_step(t->rt, &a), what)) break;
        bm_test_read(t, dy, got, (size_t)B * di * 4);
        bm_test_close(t, what, got, y, (size_t)B * di, MSTEP_TOL);
        bm_test_read(t, dstate, got, (size_t)B * di * n * 4);
        bm_test_close(t, "  state", got, state, (size_t)B * di * n, MSTEP_TOL);
        bm_test_read(t, dxdbl, got, (size_t)B * xd * 4);
        bm_test_close(t, "  xdbl", got, xdbl, (size_t)B * xd, MSTEP_TOL);
    }
    cl_mem bufs[] = {du, dWx, dWdt, dnw, dbias, dA, dD, dz, dstate, dy, dxdbl, dnd, dnb, dnc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) bm_release(bufs[i]);
    free(u), free(Wx), free(Wdt), free(nw), free(bias), free(A), free(D), free(z), free(state), free(y), free(xdbl);
    free(dts), free(got);
}

void test_op_mamba_step(bm_test_ctx *t)
{
    if (!bm_op_mamba_step_ok(t->rt, 1536, 17, 48)) {
        bm_test_true(t, 0, "mamba_step: the fused step fits this device (d_inner 1536, d_state 17, dt_rank 48)");
        return;
    }
    const int cases[][5] = {{1, 1, 1, 1, 0},  {1, 37, 16, 3, 0}, {3, 130, 17, 5, 1}, {2, 300, 4, 48, 0},
                            {1, 257, 16, 48, 1}, {1, 1536, 16, 48, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        one_case(t, cases[c][0], cases[c][1], cases[c][2], cases[c][3], cases[c][4]);
    /* bad arguments are refused */
    bm_mamba_step_args bad = {.B = 1, .di = 4, .n = 0, .R = 1};
    bm_test_true(t, bm_op_mamba_step(t->rt, &bad) == BMOJO_EINVAL, "mamba_step: d_state 0 is refused");
}
