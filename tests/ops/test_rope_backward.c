/* test_rope_backward.c — bm_op_rope_backward (the transpose of RoPE's rotation) against
 * bm_ref_rope_backward at relative tolerance 1e-5, over pos0 0, 3 and 30000, head_dim 2, 6 and
 * 64, 1 or 3 heads, B 1 or 2 with odd T, strided views (column offset, padded rows); columns
 * outside the heads must be left untouched. The reference against central finite differences:
 * for L = sum(rope(x) * R) with a double-precision forward (HF's float32 angle), dL/dx must be
 * rope_backward(R). And the kernels' round trip rope_backward(rope(x)) == x (orthogonality). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ops_backward.h"
#include "ref/ref_backward.h"

/* Copies the head columns of a [rows, ld] buffer (col .. col + nh*dh) densely; returns 1 when
 * every other column of got equals the same column of orig. */
static int rope_bwd_heads(const float *got, const float *orig, size_t rows, size_t ld, size_t col, size_t w, float *dense)
{
    int untouched = 1;
    size_t m = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < ld; j++) {
            const size_t e = r * ld + j;
            if (j >= col && j < col + w) dense[m++] = got[e];
            else if (memcmp(&got[e], &orig[e], sizeof(float)) != 0) untouched = 0;
        }
    return untouched;
}

static void rope_bwd_case(bm_test_ctx *t, int B, int T, int nh, int dh, int64_t pos0, float theta, size_t col, size_t pad)
{
    const size_t ld = col + (size_t)nh * dh + pad, rows = (size_t)B * T, n = rows * ld, nr = rows * nh * dh;
    float *x0 = bm_test_alloc(n * sizeof(float)), *want = bm_test_alloc(n * sizeof(float));
    float *got = bm_test_alloc(n * sizeof(float));
    float *g_heads = bm_test_alloc(nr * sizeof(float)), *w_heads = bm_test_alloc(nr * sizeof(float));
    bm_test_fill(t, x0, n, -1.0f, 1.0f);
    memcpy(want, x0, n * sizeof(float));
    bm_ref_rope_backward(want, ld, col, B, T, nh, dh, pos0, theta);
    cl_mem xb = bm_test_buffer(t, x0, n * sizeof(float));
    char what[160];
    snprintf(what, sizeof what, "rope_bwd B=%d T=%d nh=%d dh=%d pos0=%lld theta=%g col=%zu ld=%zu", B, T, nh, dh,
             (long long)pos0, (double)theta, col, ld);
    if (bm_test_status(t, bm_op_rope_backward(t->rt, xb, ld, col, B, T, nh, dh, pos0, theta), what)) {
        bm_test_read(t, xb, got, n * sizeof(float));
        int untouched = rope_bwd_heads(got, x0, rows, ld, col, (size_t)nh * dh, g_heads);
        rope_bwd_heads(want, x0, rows, ld, col, (size_t)nh * dh, w_heads);
        bm_test_close(t, what, g_heads, w_heads, nr, 1e-5);
        bm_test_true(t, untouched, "rope_bwd leaves columns outside the heads untouched");
        /* round trip: the forward kernel on the backward's output gives x back */
        if (bm_test_status(t, bm_op_rope(t->rt, xb, ld, col, B, T, nh, dh, pos0, theta), "rope after rope_bwd")) {
            bm_test_read(t, xb, got, n * sizeof(float));
            char w2[200];
            snprintf(w2, sizeof w2, "%s rope(rope_bwd(x)) == x", what);
            bm_test_close(t, w2, got, x0, n, 1e-5);
        }
    }
    bm_release(xb);
    free(x0);
    free(want);
    free(got);
    free(g_heads);
    free(w_heads);
}

/* L = sum over the heads of rope(x) * R in double, with HF's float32 angle (as bm_ref_rope). */
static double rope_loss_d(const double *x, const double *R, size_t ld, size_t col, int B, int T, int nh, int dh,
                          int64_t pos0, float theta)
{
    const int nhalf = dh / 2;
    double L = 0.0;
    for (int i = 0; i < nhalf; i++) {
        const float inv = 1.0f / (float)pow((double)theta, (double)((float)(2 * i) / (float)dh));
        for (int r = 0; r < B * T; r++) {
            const float a = (float)(pos0 + r % T) * inv;
            const double c = cos((double)a), s = sin((double)a);
            for (int h = 0; h < nh; h++) {
                const size_t e = (size_t)r * ld + col + (size_t)h * dh + (size_t)i;
                const double x1 = x[e], x2 = x[e + (size_t)nhalf];
                L += (x1 * c - x2 * s) * R[e] + (x2 * c + x1 * s) * R[e + (size_t)nhalf];
            }
        }
    }
    return L;
}

/* The reference rope_backward(R) against central differences of rope_loss_d over every head
 * element (h = 1e-3: L is linear in x, so the difference is exact up to rounding). */
static void rope_bwd_fd(bm_test_ctx *t, int B, int T, int nh, int dh, int64_t pos0, float theta, size_t col, size_t pad)
{
    const size_t ld = col + (size_t)nh * dh + pad, rows = (size_t)B * T, n = rows * ld, nr = rows * nh * dh;
    float *xf = bm_test_alloc(n * sizeof(float)), *Rf = bm_test_alloc(n * sizeof(float));
    double *x = bm_test_alloc(n * sizeof(double)), *R = bm_test_alloc(n * sizeof(double));
    double *g = bm_test_alloc(nr * sizeof(double));
    float *dx = bm_test_alloc(nr * sizeof(float));
    bm_test_fill(t, xf, n, -1.0f, 1.0f);
    bm_test_fill(t, Rf, n, -1.0f, 1.0f);
    for (size_t e = 0; e < n; e++) {
        x[e] = xf[e];
        R[e] = Rf[e];
    }
    float *gr = bm_test_alloc(n * sizeof(float));
    memcpy(gr, Rf, n * sizeof(float));
    bm_ref_rope_backward(gr, ld, col, B, T, nh, dh, pos0, theta);
    rope_bwd_heads(gr, Rf, rows, ld, col, (size_t)nh * dh, dx);
    const double h = 1e-3;
    size_t m = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = col; j < col + (size_t)nh * dh; j++) {
            double *v = &x[r * ld + j];
            const double v0 = *v;
            *v = v0 + h;
            const double lp = rope_loss_d(x, R, ld, col, B, T, nh, dh, pos0, theta);
            *v = v0 - h;
            const double lm = rope_loss_d(x, R, ld, col, B, T, nh, dh, pos0, theta);
            *v = v0;
            g[m++] = (lp - lm) / (2.0 * h);
        }
    double d2 = 0, r2 = 0;
    for (size_t e = 0; e < nr; e++) {
        d2 += ((double)dx[e] - g[e]) * ((double)dx[e] - g[e]);
        r2 += g[e] * g[e];
    }
    const double rel = sqrt(d2) / fmax(sqrt(r2), 1e-30);
    char what[200];
    snprintf(what, sizeof what, "rope_bwd ref vs FD B=%d T=%d nh=%d dh=%d pos0=%lld col=%zu ld=%zu rel=%.2e", B, T, nh,
             dh, (long long)pos0, col, ld, rel);
    bm_test_true(t, rel <= 1e-6, what);
    free(xf);
    free(Rf);
    free(x);
    free(R);
    free(g);
    free(dx);
    free(gr);
}

static void rope_bwd_all(bm_test_ctx *t)
{
    static const int64_t pos0s[] = {0, 3, 30000};
    static const int dhs[] = {2, 6, 64};
    int n = 0;
    for (size_t p = 0; p < 3; p++)
        for (size_t d = 0; d < 3; d++)
            for (int nh = 1; nh <= 3; nh += 2, n++) {
                const int B = 1 + n % 2;
                rope_bwd_case(t, B, 7 + 2 * (n % 3), nh, dhs[d], pos0s[p], n % 3 == 2 ? 1e6f : 10000.0f,
                              n % 2 ? 5 : 0, n % 3 ? 3 : 0);
            }
    rope_bwd_case(t, 2, 1, 4, 256, 0, 500000.0f, 7, 1); /* the largest head_dim, one token */
    for (size_t d = 0; d < 3; d++) {
        rope_bwd_fd(t, 2, 3, 2, dhs[d], 0, 10000.0f, 3, 2);
        rope_bwd_fd(t, 1, 5, 1, dhs[d], 17, 10000.0f, 0, 0);
    }
    cl_mem xb = bm_test_buffer(t, NULL, 64 * sizeof(float));
    bm_test_true(t, bm_op_rope_backward(t->rt, xb, 16, 0, 1, 2, 1, 15, 0, 10000.0f) == BMOJO_EINVAL,
                 "rope_bwd refuses odd head_dim");
    bm_test_true(t, bm_op_rope_backward(t->rt, xb, 16, 4, 1, 2, 1, 16, 0, 10000.0f) == BMOJO_EINVAL,
                 "rope_bwd refuses ld < col + heads");
    bm_test_true(t, bm_op_rope_backward(t->rt, NULL, 16, 0, 1, 2, 1, 16, 0, 10000.0f) == BMOJO_EINVAL,
                 "rope_bwd refuses a NULL buffer");
    bm_release(xb);
}

void test_op_rope_backward(bm_test_ctx *t)
{
    /* both kernels on every device (see test_op_rope) */
    const int saved = t->rt->rope_form;
    for (int form = BM_ROPE_FORM_PAIRS; form <= BM_ROPE_FORM_POSITIONS; form++) {
        t->rt->rope_form = form;
        rope_bwd_all(t);
    }
    t->rt->rope_form = saved;
}
