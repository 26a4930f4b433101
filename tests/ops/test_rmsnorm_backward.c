/* test_rmsnorm_backward.c — bm_op_rmsnorm_backward against bm_ref_rmsnorm_backward (dense, strided
 * with column offsets, in place dx == dy; beta_dx 0 and 1; rows 1..130 so dw takes both the
 * single-block and the partials + reduce path; d 1, 7, 64, 257), comparing the whole dx buffer
 * (columns outside the view must survive) and a pre-filled dw (accumulation; each column's error
 * against the size of its terms: rms_dw_close), both forms of the statistics kernel; then the
 * reference against central finite differences of a double-precision forward, for x and w. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "op_test.h"
#include "ops_backward.h"
#include "ref/ref_backward.h"

enum { RB_DENSE, RB_STRIDED, RB_INPLACE };
static const char *const rb_mode_name[] = {"dense", "strided", "in-place"};

/* For d = 1 the exact dx is w dy eps / (x^2 + eps)^(3/2): with eps 1e-5 it is the difference of
 * two nearly equal terms, which fp32 cannot resolve (a few % relative error, in any formula that
 * works for every d), so d = 1 runs with an eps that keeps the gradient well conditioned. */
static float rms_eps(int d) { return d == 1 ? 0.25f : 1e-5f; }

/* dw against the reference, each column's error measured against the size of what it sums,
 * |dw0[j]| + sum_i |dy[i, j] x[i, j] r_i| (the bound of an fp32 sum), not against the sum: at d 1
 * the 64 terms dy x r ~ +-dy cancel to a few % of their size (one such case: 8.3e-7 off a sum of
 * 0.037, 2.3e-5 of it, with the GPU and the CPU statistics kernels alike). */
static void rms_dw_close(bm_test_ctx *t, const char *what, const float *got, const float *want, const float *dw0,
                         const float *x, size_t x_ld, size_t x_col, const float *dy, size_t g_ld, size_t g_col, int rows,
                         int d, float eps, double tol)
{
    double err = 0.0, mag = 0.0;
    double *col = calloc((size_t)d, sizeof *col);
    if (!col) {
        bm_test_true(t, 0, "rmsnorm_bwd dw: out of host memory");
        return;
    }
    for (int j = 0; j < d; j++) col[j] = fabs(dw0[j]);
    for (int i = 0; i < rows; i++) {
        const float *xr = x + (size_t)i * x_ld + x_col, *gr = dy + (size_t)i * g_ld + g_col;
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)xr[j] * xr[j];
        const double r = 1.0 / sqrt(ss / d + eps);
        for (int j = 0; j < d; j++) col[j] += fabs((double)gr[j] * xr[j] * r);
    }
    for (int j = 0; j < d; j++) {
        const double e = fabs((double)got[j] - want[j]) / fmax(col[j], 1e-30);
        if (!(e <= err)) err = e; /* NaN sticks */
        mag = fmax(mag, col[j]);
    }
    free(col);
    char msg[192];
    snprintf(msg, sizeof msg, "%s: max |got - want| / sum|terms| = %.2e (sum|terms| up to %.3g)", what, err, mag);
    bm_test_true(t, err <= tol, msg);
}

static void rms_bwd_case(bm_test_ctx *t, int rows, int d, int mode, float beta)
{
    size_t x_ld = (size_t)d, x_col = 0, g_ld = (size_t)d, g_col = 0, o_ld = (size_t)d, o_col = 0;
    if (mode == RB_STRIDED) {
        x_ld = (size_t)d + 5; x_col = 3; g_ld = (size_t)d + 2; g_col = 1; o_ld = (size_t)d + 7; o_col = 4;
    }
    if (mode == RB_INPLACE) { x_ld = (size_t)d + 3; x_col = 1; g_ld = o_ld = (size_t)d + 4; g_col = o_col = 2; }
    float eps = rms_eps(d);
    size_t xn = (size_t)rows * x_ld, gn = (size_t)rows * g_ld, on = (size_t)rows * o_ld;
    float *x = bm_test_alloc(xn * sizeof(float));
    float *w = bm_test_alloc((size_t)d * sizeof(float));
    float *dy = bm_test_alloc(gn * sizeof(float));
    float *dx0 = bm_test_alloc(on * sizeof(float));
    float *dw0 = bm_test_alloc((size_t)d * sizeof(float));
    float *want = bm_test_alloc(on * sizeof(float));
    float *got = bm_test_alloc(on * sizeof(float));
    float *dw_want = bm_test_alloc((size_t)d * sizeof(float));
    float *dw_got = bm_test_alloc((size_t)d * sizeof(float));
    bm_test_fill(t, x, xn, -2.0f, 2.0f);
    bm_test_fill(t, w, (size_t)d, 0.5f, 1.5f);
    bm_test_fill(t, dy, gn, -1.0f, 1.0f);
    bm_test_fill(t, dx0, on, -9.0f, 9.0f);
    bm_test_fill(t, dw0, (size_t)d, -2.0f, 2.0f);
    if (rows > 2) /* one row of tiny values, where eps matters */
        for (int j = 0; j < d; j++) x[x_ld + x_col + (size_t)j] *= 1e-3f;
    /* beta 0 must not read dx: NaN there would poison the result. */
    if (beta == 0.0f && mode != RB_INPLACE)
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < d; j++) dx0[(size_t)r * o_ld + o_col + (size_t)j] = NAN;
    if (mode == RB_INPLACE)
        for (size_t i = 0; i < on; i++) dx0[i] = dy[i];
    for (size_t i = 0; i < on; i++) want[i] = dx0[i];
    for (int j = 0; j < d; j++) dw_want[j] = dw0[j];
    bm_ref_rmsnorm_backward(x, x_ld, x_col, w, mode == RB_INPLACE ? want : dy, g_ld, g_col, beta, want, o_ld, o_col,
                            dw_want, rows, d, eps);

    cl_mem m_x = bm_test_buffer(t, x, xn * sizeof(float));
    cl_mem m_w = bm_test_buffer(t, w, (size_t)d * sizeof(float));
    cl_mem m_dx = bm_test_buffer(t, dx0, on * sizeof(float));
    cl_mem m_dy = mode == RB_INPLACE ? m_dx : bm_test_buffer(t, dy, gn * sizeof(float));
    cl_mem m_dw = bm_test_buffer(t, dw0, (size_t)d * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "rmsnorm_bwd %s %s rows=%d d=%d beta=%g",
             t->rt->rmsnorm_form == BM_FORM_CPU ? "CPU stats kernel" : "GPU stats kernel", rb_mode_name[mode], rows, d,
             beta);
    int st = bm_op_rmsnorm_backward(t->rt, m_x, x_ld, x_col, m_w, m_dy, g_ld, g_col, beta, m_dx, o_ld, o_col, m_dw,
                                    rows, d, eps);
    if (bm_test_status(t, st, what)) {
        bm_test_read(t, m_dx, got, on * sizeof(float));
        bm_test_read(t, m_dw, dw_got, (size_t)d * sizeof(float));
        char w2[128];
        snprintf(w2, sizeof w2, "%s dx", what);
        bm_test_close(t, w2, got, want, on, 1e-5);
        snprintf(w2, sizeof w2, "%s dw", what);
        /* in place, dy is the buffer dx0 started as */
        rms_dw_close(t, w2, dw_got, dw_want, dw0, x, x_ld, x_col, mode == RB_INPLACE ? dx0 : dy,
                     mode == RB_INPLACE ? o_ld : g_ld, mode == RB_INPLACE ? o_col : g_col, rows, d, eps, 1e-5);
    }
    bm_release(m_x);
    bm_release(m_w);
    bm_release(m_dx);
    if (mode != RB_INPLACE) bm_release(m_dy);
    bm_release(m_dw);
    free(x);
    free(w);
    free(dy);
    free(dx0);
    free(dw0);
    free(want);
    free(got);
    free(dw_want);
    free(dw_got);
}

/* L = sum_{r,j} y[r,j] R[r,j] with y the RMSNorm forward in double (dense rows). */
static double rms_loss(const double *x, const double *w, const double *R, int rows, int d, double eps)
{
    double L = 0.0;
    for (int r = 0; r < rows; r++) {
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += x[r * d + j] * x[r * d + j];
        double rs = 1.0 / sqrt(ss / d + eps);
        for (int j = 0; j < d; j++) L += x[r * d + j] * rs * w[j] * R[r * d + j];
    }
    return L;
}

/* rel = ||an - fd|| / ||fd|| over a whole gradient vector. */
static void fd_check(bm_test_ctx *t, const char *what, const float *an, const double *fd, size_t n, double tol)
{
    double diff2 = 0.0, ref2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        diff2 += (an[i] - fd[i]) * (an[i] - fd[i]);
        ref2 += fd[i] * fd[i];
    }
    double rel = sqrt(diff2) / fmax(sqrt(ref2), 1e-30);
    char msg[160];
    snprintf(msg, sizeof msg, "%s rel=%.2e", what, rel);
    bm_test_true(t, rel <= tol, msg);
}

static void rms_bwd_fd(bm_test_ctx *t, int rows, int d)
{
    float eps = 1e-5f;
    size_t n = (size_t)rows * d;
    float *x = bm_test_alloc(n * sizeof(float)), *w = bm_test_alloc((size_t)d * sizeof(float));
    float *R = bm_test_alloc(n * sizeof(float)), *dx = bm_test_alloc(n * sizeof(float));
    float *dw = bm_test_alloc((size_t)d * sizeof(float));
    bm_test_fill(t, x, n, -2.0f, 2.0f);
    bm_test_fill(t, w, (size_t)d, 0.5f, 1.5f);
    bm_test_fill(t, R, n, -1.0f, 1.0f);
    bm_ref_rmsnorm_backward(x, (size_t)d, 0, w, R, (size_t)d, 0, 0.0f, dx, (size_t)d, 0, dw, rows, d, eps);
    double *xd = bm_test_alloc(n * sizeof(double)), *wd = bm_test_alloc((size_t)d * sizeof(double));
    double *Rd = bm_test_alloc(n * sizeof(double)), *fx = bm_test_alloc(n * sizeof(double));
    double *fw = bm_test_alloc((size_t)d * sizeof(double));
    for (size_t i = 0; i < n; i++) xd[i] = x[i], Rd[i] = R[i];
    for (int j = 0; j < d; j++) wd[j] = w[j];
    const double h = 1e-4;
    for (size_t i = 0; i < n; i++) {
        double v = xd[i];
        xd[i] = v + h;
        double lp = rms_loss(xd, wd, Rd, rows, d, eps);
        xd[i] = v - h;
        double lm = rms_loss(xd, wd, Rd, rows, d, eps);
        xd[i] = v;
        fx[i] = (lp - lm) / (2 * h);
    }
    for (int j = 0; j < d; j++) {
        double v = wd[j];
        wd[j] = v + h;
        double lp = rms_loss(xd, wd, Rd, rows, d, eps);
        wd[j] = v - h;
        double lm = rms_loss(xd, wd, Rd, rows, d, eps);
        wd[j] = v;
        fw[j] = (lp - lm) / (2 * h);
    }
    char what[96];
    snprintf(what, sizeof what, "rmsnorm_bwd ref vs FD dx rows=%d d=%d", rows, d);
    fd_check(t, what, dx, fx, n, 1e-5);
    snprintf(what, sizeof what, "rmsnorm_bwd ref vs FD dw rows=%d d=%d", rows, d);
    fd_check(t, what, dw, fw, (size_t)d, 1e-5);
    free(x), free(w), free(R), free(dx), free(dw), free(xd), free(wd), free(Rd), free(fx), free(fw);
}

void test_op_rmsnorm_backward(bm_test_ctx *t)
{
    static const int rows[] = {1, 3, 64, 65, 130};
    static const int ds[] = {1, 7, 64, 257};
    /* both forms of the statistics kernel (the GPU one, bm_rmsnorm_bwd_stats_cpu) on every device */
    const int saved = t->rt->rmsnorm_form;
    for (int f = 0; f < 2; f++) {
        t->rt->rmsnorm_form = f ? BM_FORM_CPU : BM_FORM_GPU;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            for (size_t j = 0; j < sizeof ds / sizeof ds[0]; j++)
                for (int mode = RB_DENSE; mode <= RB_INPLACE; mode++) {
                    rms_bwd_case(t, rows[i], ds[j], mode, 0.0f);
                    rms_bwd_case(t, rows[i], ds[j], mode, 1.0f);
                }
    }
    t->rt->rmsnorm_form = saved;
    rms_bwd_fd(t, 1, 1);
    rms_bwd_fd(t, 3, 7);
    rms_bwd_fd(t, 2, 33);

    cl_mem m = bm_test_buffer(t, NULL, 4096);
    bm_test_true(t, bm_op_rmsnorm_backward(t->rt, m, 8, 0, m, m, 8, 0, 0, m, 8, 0, m, 2, -1, 1e-5f) == BMOJO_EINVAL,
                 "rmsnorm_bwd d<0 refused");
    bm_test_true(t, bm_op_rmsnorm_backward(t->rt, m, 8, 0, m, m, 8, 0, 0, m, 8, 0, m, 0, 8, 1e-5f) == 0,
                 "rmsnorm_bwd rows=0 no-op");
    bm_test_true(t, bm_op_rmsnorm_backward(t->rt, m, 8, 0, NULL, m, 8, 0, 0, m, 8, 0, m, 2, 8, 1e-5f) == BMOJO_EINVAL,
                 "rmsnorm_bwd NULL w refused");
    bm_test_true(t, bm_op_rmsnorm_backward(t->rt, m, 8, 1, m, m, 8, 0, 0, m, 8, 0, m, 2, 8, 1e-5f) == BMOJO_EINVAL,
                 "rmsnorm_bwd x_ld too small refused");
    bm_test_true(t, bm_op_rmsnorm_backward(t->rt, m, 8, 0, m, m, 16, 0, 0, m, 16, 1, m, 2, 8, 1e-5f) == BMOJO_EINVAL,
                 "rmsnorm_bwd dx overlapping dy in another view refused");
    bm_release(m);
}
