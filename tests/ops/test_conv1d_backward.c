/* test_conv1d_backward.c — bm_op_conv1d_backward against bm_ref_conv1d_backward, and the
 * reference against central finite differences of a double-precision forward.
 * Kernel vs reference, both forms (rt->conv_bwd_form) on every device: k in {1, 2, 4, 5} (and 8, 9:
 * the CPU form's widest and one past it), T in {1, 3, 37, 200}, B in {1, 3}, di in {1, 7, 17, 64};
 * x and dx strided (x_ld, dx_ld > di), the whole dx buffer compared (the view at tolerance,
 * columns >= di bit for bit: they must keep their values), dw / dbias pre-filled (accumulation),
 * bias and dbias NULL or not; long batches that take the launcher's longer time blocks; two runs
 * bit-identical (no atomics); dx written over x in place; bad arguments refused.
 * Reference vs central finite differences of L = sum(u * R) in double: dx, dw and dbias. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops_backward.h"
#include "ref/ref_backward.h"

/* Relative error of got (float) against want (double) over the whole vector, counted as a check. */
static int conv_bwd_close_d(bm_test_ctx *t, const char *what, const float *got, const double *want, size_t n,
                            double tol)
{
    double d2 = 0, r2 = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) finite = 0;
        d2 += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        r2 += want[i] * want[i];
    }
    const double rel = sqrt(d2) / fmax(sqrt(r2), 1e-30);
    char line[200];
    snprintf(line, sizeof line, "%s rel=%.2e", what, rel);
    return bm_test_true(t, finite && rel <= tol, line);
}

/* Which form bm_op_conv1d_backward runs under the test's rt->conv_bwd_form (the CPU form takes k <= 8). */
static const char *conv_bwd_form(bm_test_ctx *t, int k)
{
    return t->rt->conv_bwd_form == BM_FORM_CPU && k <= 8 ? "CPU kernel" : "GPU kernel";
}

/* Weight gradients sum B*T products of both signs, so a single entry can cancel far below its
 * terms, and fp32 rounding of each term (about 1e-7 of it, from the recomputed pre-activation
 * and silu') then dominates any relative error taken against the result alone (B=3 T=200 di=1
 * k=1: 7.7e-6 with a compensated sum). The scale of that rounding is sqrt(sum of squared
 * terms) per entry; these are computed here in double: sw [di, k], sb [di]. */
static void conv_bwd_term_scale(int B, int T, int di, int k, const float *x, size_t x_ld, const float *w,
                                const float *bias, const float *du, double *sw, double *sb)
{
    for (size_t i = 0; i < (size_t)di * (size_t)k; i++) sw[i] = 0.0;
    for (int c = 0; c < di; c++) sb[c] = 0.0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < di; c++) {
                const size_t r0 = (size_t)b * (size_t)T;
                double pre = bias ? bias[c] : 0.0;
                for (int i = 0; i < k; i++)
                    if (t - (k - 1) + i >= 0)
                        pre += (double)w[c * k + i] * x[(r0 + (size_t)(t - (k - 1) + i)) * x_ld + (size_t)c];
                const double s = 1.0 / (1.0 + exp(-pre));
                const double dp = du[(r0 + (size_t)t) * (size_t)di + (size_t)c] * s * (1.0 + pre * (1.0 - s));
                sb[c] += dp * dp;
                for (int i = 0; i < k; i++)
                    if (t - (k - 1) + i >= 0) {
                        const double v = dp * x[(r0 + (size_t)(t - (k - 1) + i)) * x_ld + (size_t)c];
                        sw[c * k + i] += v * v;
                    }
            }
}

/* ||got - want|| <= tol * max(||want||, ||scale||) over n entries (scale holds sums of squared
 * terms, see conv_bwd_term_scale), counted as one check. */
static int conv_bwd_close_scaled(bm_test_ctx *t, const char *what, const float *got, const float *want,
                                 const double *scale2, size_t n, double tol)
{
    double d2 = 0, r2 = 0, s2 = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) finite = 0;
        d2 += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        r2 += (double)want[i] * want[i];
        s2 += scale2[i];
    }
    const double rel = sqrt(d2) / fmax(fmax(sqrt(r2), sqrt(s2)), 1e-30);
    char line[240];
    snprintf(line, sizeof line, "%s rel=%.2e (|want|=%.2e, term scale=%.2e)", what, rel, sqrt(r2), sqrt(s2));
    return bm_test_true(t, finite && rel <= tol, line);
}

static void conv_bwd_case(bm_test_ctx *t, int B, int T, int di, int k, int with_bias, int with_dbias, size_t x_ld,
                          size_t dx_ld)
{
    const size_t rows = (size_t)B * (size_t)T, xn = rows * x_ld, dxn = rows * dx_ld, un = rows * (size_t)di;
    const size_t wn = (size_t)di * (size_t)k;
    float *x = bm_test_alloc(xn * sizeof(float)), *w = bm_test_alloc(wn * sizeof(float));
    float *bias = bm_test_alloc((size_t)di * sizeof(float)), *du = bm_test_alloc(un * sizeof(float));
    float *dx0 = bm_test_alloc(dxn * sizeof(float)), *dx_want = bm_test_alloc(dxn * sizeof(float));
    float *dx_got = bm_test_alloc(dxn * sizeof(float));
    float *dw_want = bm_test_alloc(wn * sizeof(float)), *dw_got = bm_test_alloc(wn * sizeof(float));
    float *db_want = bm_test_alloc((size_t)di * sizeof(float)), *db_got = bm_test_alloc((size_t)di * sizeof(float));
    bm_test_fill(t, x, xn, -2.0f, 2.0f);
    bm_test_fill(t, w, wn, -1.0f, 1.0f);
    bm_test_fill(t, bias, (size_t)di, -0.5f, 0.5f);
    bm_test_fill(t, du, un, -1.0f, 1.0f);
    bm_test_fill(t, dx0, dxn, 50.0f, 60.0f); /* sentinels: columns >= di must survive */
    bm_test_fill(t, dw_want, wn, -1.0f, 1.0f);
    bm_test_fill(t, db_want, (size_t)di, -1.0f, 1.0f);
    memcpy(dx_want, dx0, dxn * sizeof(float));

    cl_mem bx = bm_test_buffer(t, x, xn * sizeof(float)), bw = bm_test_buffer(t, w, wn * sizeof(float));
    cl_mem bb = with_bias ? bm_test_buffer(t, bias, (size_t)di * sizeof(float)) : NULL;
    cl_mem bdu = bm_test_buffer(t, du, un * sizeof(float)), bdx = bm_test_buffer(t, dx0, dxn * sizeof(float));
    cl_mem bdw = bm_test_buffer(t, dw_want, wn * sizeof(float));
    cl_mem bdb = with_dbias ? bm_test_buffer(t, db_want, (size_t)di * sizeof(float)) : NULL;
    bm_conv_bwd_args a = {.B = B, .T = T, .di = di, .k = k, .x = bx, .x_ld = x_ld, .w = bw, .bias = bb,
                          .du = bdu, .dx = bdx, .dx_ld = dx_ld, .dw = bdw, .dbias = bdb};
    char what[160];
    snprintf(what, sizeof what, "conv1d_bwd (%s) B=%d T=%d di=%d k=%d x_ld=%zu dx_ld=%zu%s%s", conv_bwd_form(t, k), B,
             T, di, k, x_ld, dx_ld,
             with_bias ? " bias" : "", with_dbias ? " dbias" : "");
    if (bm_test_status(t, bm_op_conv1d_backward(t->rt, &a), what)) {
        bm_ref_conv_bwd_args r = {.B = B, .T = T, .di = di, .k = k, .x = x, .x_ld = x_ld, .w = w,
                                  .bias = with_bias ? bias : NULL, .du = du, .dx = dx_want, .dx_ld = dx_ld,
                                  .dw = dw_want, .dbias = with_dbias ? db_want : NULL};
        bm_ref_conv1d_backward(&r);
        bm_test_read(t, bdx, dx_got, dxn * sizeof(float));
        bm_test_read(t, bdw, dw_got, wn * sizeof(float));
        char w2[200];
        /* the view at tolerance (the sentinels would dominate a whole-buffer norm), the rest of
         * the buffer exactly */
        float *g_view = bm_test_alloc(un * sizeof(float)), *w_view = bm_test_alloc(un * sizeof(float));
        int kept = 1;
        for (size_t r0 = 0; r0 < rows; r0++)
            for (size_t j = 0; j < dx_ld; j++) {
                const size_t e = r0 * dx_ld + j;
                if (j < (size_t)di) {
                    g_view[r0 * (size_t)di + j] = dx_got[e];
                    w_view[r0 * (size_t)di + j] = dx_want[e];
                } else {
                    kept &= memcmp(&dx_got[e], &dx0[e], sizeof(float)) == 0;
                }
            }
        snprintf(w2, sizeof w2, "%s dx", what);
        bm_test_close(t, w2, g_view, w_view, un, 1e-5);
        snprintf(w2, sizeof w2, "%s dx columns >= di untouched", what);
        bm_test_true(t, kept, w2);
        free(g_view);
        free(w_view);
        double *sw = bm_test_alloc(wn * sizeof(double)), *sb = bm_test_alloc((size_t)di * sizeof(double));
        conv_bwd_term_scale(B, T, di, k, x, x_ld, w, with_bias ? bias : NULL, du, sw, sb);
        snprintf(w2, sizeof w2, "%s dw +=", what);
        conv_bwd_close_scaled(t, w2, dw_got, dw_want, sw, wn, 1e-5);
        if (with_dbias) {
            bm_test_read(t, bdb, db_got, (size_t)di * sizeof(float));
            snprintf(w2, sizeof w2, "%s dbias +=", what);
            conv_bwd_close_scaled(t, w2, db_got, db_want, sb, (size_t)di, 1e-5);
        }
        free(sw);
        free(sb);
    }
    bm_release(bx);
    bm_release(bw);
    bm_release(bb);
    bm_release(bdu);
    bm_release(bdx);
    bm_release(bdw);
    bm_release(bdb);
    free(x);
    free(w);
    free(bias);
    free(du);
    free(dx0);
    free(dx_want);
    free(dx_got);
    free(dw_want);
    free(dw_got);
    free(db_want);
    free(db_got);
}

/* Two runs from the same inputs give bit-identical dx, dw and dbias (fixed reduction order). */
static void conv_bwd_deterministic(bm_test_ctx *t, int B, int T, int di, int k)
{
    const size_t rows = (size_t)B * (size_t)T, n = rows * (size_t)di, wn = (size_t)di * (size_t)k;
    float *x = bm_test_alloc(n * sizeof(float)), *w = bm_test_alloc(wn * sizeof(float));
    float *du = bm_test_alloc(n * sizeof(float));
    float *out[2][3];
    bm_test_fill(t, x, n, -2.0f, 2.0f);
    bm_test_fill(t, w, wn, -1.0f, 1.0f);
    bm_test_fill(t, du, n, -1.0f, 1.0f);
    cl_mem bx = bm_test_buffer(t, x, n * sizeof(float)), bw = bm_test_buffer(t, w, wn * sizeof(float));
    cl_mem bdu = bm_test_buffer(t, du, n * sizeof(float));
    int ok = 1;
    for (int run = 0; run < 2; run++) {
        cl_mem bdx = bm_test_buffer(t, NULL, n * sizeof(float)), bdw = bm_test_buffer(t, NULL, wn * sizeof(float));
        cl_mem bdb = bm_test_buffer(t, NULL, (size_t)di * sizeof(float));
        bm_conv_bwd_args a = {.B = B, .T = T, .di = di, .k = k, .x = bx, .x_ld = (size_t)di, .w = bw, .bias = bw,
                              .du = bdu, .dx = bdx, .dx_ld = (size_t)di, .dw = bdw, .dbias = bdb};
        ok &= bm_op_conv1d_backward(t->rt, &a) == 0;
        out[run][0] = bm_test_alloc(n * sizeof(float));
        out[run][1] = bm_test_alloc(wn * sizeof(float));
        out[run][2] = bm_test_alloc((size_t)di * sizeof(float));
        bm_test_read(t, bdx, out[run][0], n * sizeof(float));
        bm_test_read(t, bdw, out[run][1], wn * sizeof(float));
        bm_test_read(t, bdb, out[run][2], (size_t)di * sizeof(float));
        bm_release(bdx);
        bm_release(bdw);
        bm_release(bdb);
    }
    ok &= memcmp(out[0][0], out[1][0], n * sizeof(float)) == 0 && memcmp(out[0][1], out[1][1], wn * sizeof(float)) == 0 &&
          memcmp(out[0][2], out[1][2], (size_t)di * sizeof(float)) == 0;
    char what[128];
    snprintf(what, sizeof what, "conv1d_bwd (%s) B=%d T=%d di=%d k=%d: two runs bit-identical", conv_bwd_form(t, k), B,
             T, di, k);
    bm_test_true(t, ok, what);
    for (int run = 0; run < 2; run++)
        for (int j = 0; j < 3; j++) free(out[run][j]);
    bm_release(bx);
    bm_release(bw);
    bm_release(bdu);
    free(x);
    free(w);
    free(du);
}

/* dx written into x's own buffer (the contract allows dx to alias x): every read of x must be
 * done before dx is written, so the result equals the out-of-place reference. */
static void conv_bwd_alias_x(bm_test_ctx *t, int B, int T, int di, int k)
{
    const size_t ld = (size_t)di + 2, rows = (size_t)B * T, xn = rows * ld, un = rows * (size_t)di;
    const size_t wn = (size_t)di * (size_t)k;
    float *x = bm_test_alloc(xn * sizeof(float)), *w = bm_test_alloc(wn * sizeof(float));
    float *du = bm_test_alloc(un * sizeof(float)), *want = bm_test_alloc(xn * sizeof(float));
    float *got = bm_test_alloc((xn + wn) * sizeof(float)), *dw = bm_test_alloc(wn * sizeof(float));
    bm_test_fill(t, x, xn, -2.0f, 2.0f);
    bm_test_fill(t, w, wn, -1.0f, 1.0f);
    bm_test_fill(t, du, un, -1.0f, 1.0f);
    memcpy(want, x, xn * sizeof(float));
    bm_ref_conv_bwd_args r = {.B = B, .T = T, .di = di, .k = k, .x = x, .x_ld = ld, .w = w, .du = du,
                              .dx = want, .dx_ld = ld, .dw = dw};
    bm_ref_conv1d_backward(&r);
    cl_mem bx = bm_test_buffer(t, x, xn * sizeof(float)), bw = bm_test_buffer(t, w, wn * sizeof(float));
    cl_mem bdu = bm_test_buffer(t, du, un * sizeof(float)), bdw = bm_test_buffer(t, NULL, wn * sizeof(float));
    bm_conv_bwd_args a = {.B = B, .T = T, .di = di, .k = k, .x = bx, .x_ld = ld, .w = bw, .du = bdu,
                          .dx = bx, .dx_ld = ld, .dw = bdw};
    char what[128];
    snprintf(what, sizeof what, "conv1d_bwd (%s) B=%d T=%d di=%d k=%d dx in x's buffer", conv_bwd_form(t, k), B, T, di,
             k);
    if (bm_test_status(t, bm_op_conv1d_backward(t->rt, &a), what)) {
        bm_test_read(t, bx, got, xn * sizeof(float));
        bm_test_close(t, what, got, want, xn, 1e-5);
        /* dw reads x too: it must have seen x, not dx */
        bm_test_read(t, bdw, got, wn * sizeof(float));
        char w2[160];
        snprintf(w2, sizeof w2, "%s: dw", what);
        bm_test_close(t, w2, got, dw, wn, 1e-5);
    }
    bm_release(bx);
    bm_release(bw);
    bm_release(bdu);
    bm_release(bdw);
    free(x);
    free(w);
    free(du);
    free(want);
    free(got);
    free(dw);
}

/* L = sum_{rows, c < di} silu(pre) * R in double, pre from a zero state (the forward, written
 * independently of the library's references). */
static double conv_loss_d(int B, int T, int di, int k, const double *x, size_t x_ld, const double *w,
                          const double *bias, const double *R)
{
    double L = 0.0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < di; c++) {
                double pre = bias ? bias[c] : 0.0;
                for (int i = 0; i < k; i++) {
                    const int tt = t - (k - 1) + i;
                    if (tt >= 0) pre += w[c * k + i] * x[((size_t)b * T + (size_t)tt) * x_ld + (size_t)c];
                }
                L += pre / (1.0 + exp(-pre)) * R[((size_t)b * T + (size_t)t) * (size_t)di + (size_t)c];
            }
    return L;
}

/* The reference's dx, dw, dbias against central differences of conv_loss_d (h = 1e-5 in double). */
static void conv_bwd_fd(bm_test_ctx *t, int B, int T, int di, int k, int with_bias)
{
    const size_t x_ld = (size_t)di + 2, rows = (size_t)B * T, xn = rows * x_ld, un = rows * (size_t)di;
    const size_t wn = (size_t)di * (size_t)k;
    float *xf = bm_test_alloc(xn * sizeof(float)), *wf = bm_test_alloc(wn * sizeof(float));
    float *bf = bm_test_alloc((size_t)di * sizeof(float)), *Rf = bm_test_alloc(un * sizeof(float));
    float *dx = bm_test_alloc(xn * sizeof(float)), *dw = bm_test_alloc(wn * sizeof(float));
    float *db = bm_test_alloc((size_t)di * sizeof(float));
    double *x = bm_test_alloc(xn * sizeof(double)), *w = bm_test_alloc(wn * sizeof(double));
    double *bias = bm_test_alloc((size_t)di * sizeof(double)), *R = bm_test_alloc(un * sizeof(double));
    double *gx = bm_test_alloc(un * sizeof(double)), *gw = bm_test_alloc(wn * sizeof(double));
    double *gb = bm_test_alloc((size_t)di * sizeof(double));
    float *dx_view = bm_test_alloc(un * sizeof(float));
    bm_test_fill(t, xf, xn, -2.0f, 2.0f);
    bm_test_fill(t, wf, wn, -1.0f, 1.0f);
    bm_test_fill(t, bf, (size_t)di, -0.5f, 0.5f);
    bm_test_fill(t, Rf, un, -1.0f, 1.0f);
    for (size_t i = 0; i < xn; i++) x[i] = xf[i];
    for (size_t i = 0; i < wn; i++) w[i] = wf[i];
    for (int i = 0; i < di; i++) bias[i] = bf[i];
    for (size_t i = 0; i < un; i++) R[i] = Rf[i];
    const double *bp = with_bias ? bias : NULL;

    bm_ref_conv_bwd_args r = {.B = B, .T = T, .di = di, .k = k, .x = xf, .x_ld = x_ld, .w = wf,
                              .bias = with_bias ? bf : NULL, .du = Rf, .dx = dx, .dx_ld = x_ld, .dw = dw, .dbias = db};
    bm_ref_conv1d_backward(&r);

    const double h = 1e-5;
#define CENTRAL(v, g)                                                                       \
    do {                                                                                    \
        const double v0 = (v);                                                              \
        (v) = v0 + h;                                                                       \
        const double lp = conv_loss_d(B, T, di, k, x, x_ld, w, bp, R);                      \
        (v) = v0 - h;                                                                       \
        const double lm = conv_loss_d(B, T, di, k, x, x_ld, w, bp, R);                      \
        (v) = v0;                                                                           \
        (g) = (lp - lm) / (2.0 * h);                                                        \
    } while (0)
    for (size_t row = 0; row < rows; row++)
        for (int c = 0; c < di; c++) {
            CENTRAL(x[row * x_ld + (size_t)c], gx[row * (size_t)di + (size_t)c]);
            dx_view[row * (size_t)di + (size_t)c] = dx[row * x_ld + (size_t)c];
        }
    for (size_t i = 0; i < wn; i++) CENTRAL(w[i], gw[i]);
    if (with_bias) /* without a bias L does not depend on it */
        for (int c = 0; c < di; c++) CENTRAL(bias[c], gb[c]);
#undef CENTRAL
    char what[160];
    snprintf(what, sizeof what, "conv1d_bwd ref vs FD B=%d T=%d di=%d k=%d%s dx", B, T, di, k, with_bias ? " bias" : "");
    conv_bwd_close_d(t, what, dx_view, gx, un, 2e-6);
    snprintf(what, sizeof what, "conv1d_bwd ref vs FD B=%d T=%d di=%d k=%d%s dw", B, T, di, k, with_bias ? " bias" : "");
    conv_bwd_close_d(t, what, dw, gw, wn, 2e-6);
    if (with_bias) {
        snprintf(what, sizeof what, "conv1d_bwd ref vs FD B=%d T=%d di=%d k=%d bias dbias", B, T, di, k);
        conv_bwd_close_d(t, what, db, gb, (size_t)di, 2e-6);
    }
    free(xf);
    free(wf);
    free(bf);
    free(Rf);
    free(dx);
    free(dw);
    free(db);
    free(x);
    free(w);
    free(bias);
    free(R);
    free(gx);
    free(gw);
    free(gb);
    free(dx_view);
}

/* Kernel vs reference with the form the test context holds. */
static void conv_bwd_cases(bm_test_ctx *t)
{
    static const int ks[] = {1, 2, 4, 5};
    static const int Ts[] = {1, 3, 37, 200};
    static const int Bs[] = {1, 3};
    static const int dis[] = {1, 7, 17, 64};
    int n = 0;
    for (size_t ik = 0; ik < 4; ik++)
        for (size_t it = 0; it < 4; it++)
            for (size_t ib = 0; ib < 2; ib++)
                for (size_t id = 0; id < 4; id++, n++) {
                    const int di = dis[id];
                    /* x as the in_proj output [x | z] with padding; dx with a different pad */
                    conv_bwd_case(t, Bs[ib], Ts[it], di, ks[ik], n % 2, (n / 2) % 2 == 0, 2 * (size_t)di + 3,
                                  (size_t)di + 1 + (size_t)(n % 5));
                }
    /* the widest kernel of the CPU form, and one past it (the GPU form runs) */
    conv_bwd_case(t, 2, 41, 33, 8, 1, 1, 70, 35);
    conv_bwd_case(t, 2, 41, 33, 9, 0, 1, 70, 35);
    /* Long batches: more than 1024 time blocks of 64 rows, so the launcher lengthens the blocks. */
    conv_bwd_case(t, 3, 30001, 2, 4, 1, 1, 5, 3);
    conv_bwd_case(t, 1, 70000, 1, 5, 0, 1, 2, 2);
    conv_bwd_deterministic(t, 3, 517, 33, 4);
    conv_bwd_alias_x(t, 2, 37, 7, 4);
    conv_bwd_alias_x(t, 2, 37, 20, 4);
}

void test_op_conv1d_backward(bm_test_ctx *t)
{
    static const int ks[] = {1, 2, 4, 5};
    const int saved = t->rt->conv_bwd_form;
    t->rt->conv_bwd_form = BM_FORM_GPU;
    conv_bwd_cases(t);
    t->rt->conv_bwd_form = BM_FORM_CPU;
    conv_bwd_cases(t);
    t->rt->conv_bwd_form = saved;
    /* The reference against finite differences; T < k-1 and T = 1 included. */
    for (size_t ik = 0; ik < 4; ik++) {
        conv_bwd_fd(t, 2, 7, 3, ks[ik], 1);
        conv_bwd_fd(t, 1, 2, 2, ks[ik], ik % 2);
        conv_bwd_fd(t, 3, 1, 2, ks[ik], 1);
    }
    /* Bad arguments are refused with BMOJO_EINVAL, never launched; empty shapes do nothing. */
    cl_mem m = bm_test_buffer(t, NULL, 64 * sizeof(float));
    bm_conv_bwd_args ok = {.B = 1, .T = 2, .di = 4, .k = 2, .x = m, .x_ld = 4, .w = m, .du = m,
                           .dx = m, .dx_ld = 4, .dw = m};
    bm_conv_bwd_args bad = ok;
    bad.k = 0;
    bm_test_true(t, bm_op_conv1d_backward(t->rt, &bad) == BMOJO_EINVAL, "conv1d_bwd k=0 refused");
    bad = ok;
    bad.T = -1;
    bm_test_true(t, bm_op_conv1d_backward(t->rt, &bad) == BMOJO_EINVAL, "conv1d_bwd T<0 refused");
    bad = ok;
    bad.x = NULL;
    bm_test_true(t, bm_op_conv1d_backward(t->rt, &bad) == BMOJO_EINVAL, "conv1d_bwd x NULL refused");
    bad = ok;
    bad.dw = NULL;
    bm_test_true(t, bm_op_conv1d_backward(t->rt, &bad) == BMOJO_EINVAL, "conv1d_bwd dw NULL refused");
    bad = ok;
    bad.x_ld = 3;
    bm_test_true(t, bm_op_conv1d_backward(t->rt, &bad) == BMOJO_EINVAL, "conv1d_bwd x_ld < di refused");
    bad = ok;
    bad.dx_ld = 3;
    bm_test_true(t, bm_op_conv1d_backward(t->rt, &bad) == BMOJO_EINVAL, "conv1d_bwd dx_ld < di refused");
    bm_test_true(t, bm_op_conv1d_backward(t->rt, NULL) == BMOJO_EINVAL, "conv1d_bwd NULL arguments refused");
    bad = ok;
    bad.T = 0;
    bm_test_true(t, bm_op_conv1d_backward(t->rt, &bad) == 0, "conv1d_bwd T=0 is a no-op");
    bm_release(m);
}
