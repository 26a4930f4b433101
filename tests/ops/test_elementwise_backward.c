/* test_elementwise_backward.c — the elementwise gradients against their references, and the
 * references against central finite differences in double: SwiGLU (gate and up at column
 * offsets of one strided matrix, either order, the whole dgu buffer compared so other columns
 * must survive), colsum (pre-filled dbias, rows around the block size so both the single-block
 * and the partials + reduce paths run, bitwise reproducible), A = -exp(A_log) and dA_log += dA A. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops_backward.h"
#include "ref/ref.h"
#include "ref/ref_backward.h"

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

static void swiglu_bwd_case(bm_test_ctx *t, int rows, int cols, int up_first)
{
    size_t ld = 2 * (size_t)cols + 3, g_col = up_first ? (size_t)cols + 2 : 1, u_col = up_first ? 0 : (size_t)cols + 2;
    size_t n = (size_t)rows * ld, on = (size_t)rows * cols;
    float *gu = bm_test_alloc(n * sizeof(float)), *dout = bm_test_alloc(on * sizeof(float));
    float *want = bm_test_alloc(n * sizeof(float)), *got = bm_test_alloc(n * sizeof(float));
    bm_test_fill(t, gu, n, -6.0f, 6.0f);
    bm_test_fill(t, dout, on, -1.0f, 1.0f);
    bm_test_fill(t, want, n, -9.0f, 9.0f); /* columns outside g and u must survive */
    memcpy(got, want, n * sizeof(float));
    bm_ref_swiglu_backward(gu, ld, g_col, u_col, dout, want, rows, cols);
    cl_mem m_gu = bm_test_buffer(t, gu, n * sizeof(float));
    cl_mem m_do = bm_test_buffer(t, dout, on * sizeof(float));
    cl_mem m_dgu = bm_test_buffer(t, got, n * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "swiglu_bwd rows=%d cols=%d%s", rows, cols, up_first ? " up-first" : "");
    if (bm_test_status(t, bm_op_swiglu_backward(t->rt, m_gu, ld, g_col, u_col, m_do, m_dgu, rows, cols), what)) {
        bm_test_read(t, m_dgu, got, n * sizeof(float));
        bm_test_close(t, what, got, want, n, 1e-5);
    }
    bm_release(m_gu);
    bm_release(m_do);
    bm_release(m_dgu);
    free(gu), free(dout), free(want), free(got);
}

/* L = sum silu(g) u R in double; FD over every g and u against the reference. */
static void swiglu_bwd_fd(bm_test_ctx *t, int rows, int cols)
{
    size_t ld = 2 * (size_t)cols, n = (size_t)rows * ld, on = (size_t)rows * cols;
    float *gu = bm_test_alloc(n * sizeof(float)), *R = bm_test_alloc(on * sizeof(float));
    float *an = bm_test_alloc(n * sizeof(float));
    double *x = bm_test_alloc(n * sizeof(double)), *fd = bm_test_alloc(n * sizeof(double));
    bm_test_fill(t, gu, n, -5.0f, 5.0f);
    bm_test_fill(t, R, on, -1.0f, 1.0f);
    bm_ref_swiglu_backward(gu, ld, 0, (size_t)cols, R, an, rows, cols);
    for (size_t i = 0; i < n; i++) x[i] = gu[i];
    const double h = 1e-4;
    for (size_t i = 0; i < n; i++) {
        double L[2];
        for (int s = 0; s < 2; s++) {
            double v = x[i];
            x[i] = v + (s ? -h : h);
            double acc = 0.0;
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) {
                    double g = x[r * ld + j], u = x[r * ld + cols + j];
                    acc += g / (1.0 + exp(-g)) * u * R[r * cols + j];
                }
            L[s] = acc;
            x[i] = v;
        }
        fd[i] = (L[0] - L[1]) / (2 * h);
    }
    char what[96];
    snprintf(what, sizeof what, "swiglu_bwd ref vs FD rows=%d cols=%d", rows, cols);
    fd_check(t, what, an, fd, n, 1e-6);
    free(gu), free(R), free(an), free(x), free(fd);
}

static void colsum_case(bm_test_ctx *t, int rows, int cols)
{
    size_t ld = (size_t)cols + 5, col = 2, n = (size_t)rows * ld;
    float *dy = bm_test_alloc(n * sizeof(float)), *b0 = bm_test_alloc((size_t)cols * sizeof(float));
    float *want = bm_test_alloc((size_t)cols * sizeof(float)), *got = bm_test_alloc((size_t)cols * sizeof(float));
    float *again = bm_test_alloc((size_t)cols * sizeof(float));
    bm_test_fill(t, dy, n, -1.0f, 1.0f);
    bm_test_fill(t, b0, (size_t)cols, -3.0f, 3.0f);
    memcpy(want, b0, (size_t)cols * sizeof(float));
    bm_ref_colsum(dy, ld, col, rows, cols, want);
    cl_mem m_dy = bm_test_buffer(t, dy, n * sizeof(float));
    cl_mem m_b = bm_test_buffer(t, b0, (size_t)cols * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "colsum rows=%d cols=%d", rows, cols);
    if (bm_test_status(t, bm_op_colsum(t->rt, m_dy, ld, col, rows, cols, m_b), what)) {
        bm_test_read(t, m_b, got, (size_t)cols * sizeof(float));
        bm_test_close(t, what, got, want, (size_t)cols, 1e-6);
        /* Run again from the same start: the fixed summation order gives the same bits. */
        int st = bm_upload(t->rt, m_b, 0, b0, (size_t)cols * sizeof(float));
        st = st ? st : bm_op_colsum(t->rt, m_dy, ld, col, rows, cols, m_b);
        if (bm_test_status(t, st, what)) {
            bm_test_read(t, m_b, again, (size_t)cols * sizeof(float));
            char w2[128];
            snprintf(w2, sizeof w2, "%s reproducible", what);
            bm_test_true(t, memcmp(got, again, (size_t)cols * sizeof(float)) == 0, w2);
        }
    }
    bm_release(m_dy);
    bm_release(m_b);
    free(dy), free(b0), free(want), free(got), free(again);
}

static void neg_exp_case(bm_test_ctx *t, size_t n)
{
    float *al = bm_test_alloc(n * sizeof(float)), *a = bm_test_alloc(n * sizeof(float));
    float *da = bm_test_alloc(n * sizeof(float)), *dal0 = bm_test_alloc(n * sizeof(float));
    float *want = bm_test_alloc(n * sizeof(float)), *got = bm_test_alloc(n * sizeof(float));
    bm_test_fill(t, al, n, -4.0f, 3.0f);
    bm_test_fill(t, da, n, -1.0f, 1.0f);
    bm_test_fill(t, dal0, n, -2.0f, 2.0f);
    bm_ref_neg_exp(al, want, n);
    cl_mem m_al = bm_test_buffer(t, al, n * sizeof(float)), m_a = bm_test_buffer(t, NULL, n * sizeof(float));
    cl_mem m_da = bm_test_buffer(t, da, n * sizeof(float)), m_dal = bm_test_buffer(t, dal0, n * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "neg_exp n=%zu", n);
    if (bm_test_status(t, bm_op_neg_exp(t->rt, m_al, m_a, n), what)) {
        bm_test_read(t, m_a, got, n * sizeof(float));
        bm_test_close(t, what, got, want, n, 1e-6);
    }
    memcpy(a, want, n * sizeof(float));
    memcpy(want, dal0, n * sizeof(float));
    bm_ref_neg_exp_backward(a, da, want, n);
    snprintf(what, sizeof what, "neg_exp_bwd n=%zu", n);
    if (bm_test_status(t, bm_op_neg_exp_backward(t->rt, m_a, m_da, m_dal, n), what)) {
        bm_test_read(t, m_dal, got, n * sizeof(float));
        bm_test_close(t, what, got, want, n, 1e-6);
    }
    /* The reference against FD of L = sum dA * (-exp(A_log)) (dA_log starting from zero). */
    double *fd = bm_test_alloc(n * sizeof(double));
    float *an = bm_test_alloc(n * sizeof(float));
    bm_ref_neg_exp_backward(a, da, an, n);
    const double h = 1e-4;
    for (size_t i = 0; i < n; i++) {
        double x = al[i];
        fd[i] = (da[i] * -exp(x + h) - da[i] * -exp(x - h)) / (2 * h);
    }
    snprintf(what, sizeof what, "neg_exp_bwd ref vs FD n=%zu", n);
    fd_check(t, what, an, fd, n, 1e-6);
    bm_release(m_al);
    bm_release(m_a);
    bm_release(m_da);
    bm_release(m_dal);
    free(al), free(a), free(da), free(dal0), free(want), free(got), free(fd), free(an);
}

void test_op_elementwise_backward(bm_test_ctx *t)
{
    static const int rows[] = {1, 5, 37};
    static const int cols[] = {1, 7, 64, 100};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++)
            for (int up_first = 0; up_first < 2; up_first++) swiglu_bwd_case(t, rows[i], cols[j], up_first);
    swiglu_bwd_fd(t, 1, 1);
    swiglu_bwd_fd(t, 3, 5);

    static const int crows[] = {1, 3, 64, 65, 130, 200};
    static const int ccols[] = {1, 7, 257};
    for (size_t i = 0; i < sizeof crows / sizeof crows[0]; i++)
        for (size_t j = 0; j < sizeof ccols / sizeof ccols[0]; j++) colsum_case(t, crows[i], ccols[j]);

    neg_exp_case(t, 1);
    neg_exp_case(t, 7);
    neg_exp_case(t, 1000);

    cl_mem m = bm_test_buffer(t, NULL, 4096);
    bm_test_true(t, bm_op_swiglu_backward(t->rt, m, 8, 0, 4, m, m, 2, -1) == BMOJO_EINVAL, "swiglu_bwd cols<0 refused");
    bm_test_true(t, bm_op_swiglu_backward(t->rt, m, 7, 0, 4, m, m, 2, 4) == BMOJO_EINVAL, "swiglu_bwd ld too small refused");
    bm_test_true(t, bm_op_swiglu_backward(t->rt, m, 8, 0, 2, m, m, 2, 4) == BMOJO_EINVAL, "swiglu_bwd overlapping g/u refused");
    bm_test_true(t, bm_op_swiglu_backward(t->rt, m, 8, 0, 4, NULL, m, 2, 4) == BMOJO_EINVAL, "swiglu_bwd NULL dout refused");
    bm_test_true(t, bm_op_colsum(t->rt, m, 3, 1, 2, 3, m) == BMOJO_EINVAL, "colsum ld too small refused");
    bm_test_true(t, bm_op_colsum(t->rt, m, 8, 0, 2, 3, NULL) == BMOJO_EINVAL, "colsum NULL dbias refused");
    bm_test_true(t, bm_op_colsum(t->rt, m, 8, 0, 0, 3, m) == 0, "colsum rows=0 no-op");
    bm_test_true(t, bm_op_neg_exp(t->rt, NULL, m, 4) == BMOJO_EINVAL, "neg_exp NULL refused");
    bm_test_true(t, bm_op_neg_exp_backward(t->rt, m, NULL, m, 4) == BMOJO_EINVAL, "neg_exp_bwd NULL refused");
    bm_release(m);
}
