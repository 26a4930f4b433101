/* test_rmsnorm.c — bm_op_rmsnorm against bm_ref_rmsnorm: awkward rows and d (below, above and not
 * a multiple of the work-group size), dense, strided with column offsets, and in place. The
 * whole output buffer is compared, so writes outside the op's columns are caught. Every case runs
 * with the GPU kernel and with the CPU one (bm_rmsnorm_rows_cpu), forced on every device. */
#include <stdio.h>
#include <stdlib.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

enum { RMS_DENSE, RMS_STRIDED, RMS_INPLACE };

static void rmsnorm_case(bm_test_ctx *t, int rows, int d, int mode, const char *form)
{
    size_t x_ld = (size_t)d, x_col = 0, o_ld = (size_t)d, o_col = 0;
    if (mode == RMS_STRIDED) { x_ld = (size_t)d + 5; x_col = 3; o_ld = (size_t)d + 2; o_col = 1; }
    if (mode == RMS_INPLACE) { x_ld = o_ld = (size_t)d + 4; x_col = o_col = 2; }
    float eps = 1e-5f;
    size_t xn = (size_t)rows * x_ld, on = (size_t)rows * o_ld;
    float *x = bm_test_alloc(xn * sizeof(float));
    float *w = bm_test_alloc((size_t)d * sizeof(float));
    float *want = bm_test_alloc((mode == RMS_INPLACE ? xn : on) * sizeof(float));
    float *got = bm_test_alloc((mode == RMS_INPLACE ? xn : on) * sizeof(float));
    bm_test_fill(t, x, xn, -2.0f, 2.0f);
    bm_test_fill(t, w, (size_t)d, 0.5f, 1.5f);
    /* One row of tiny values, where eps matters. */
    if (rows > 2)
        for (int j = 0; j < d; j++) x[x_ld + x_col + (size_t)j] *= 1e-3f;

    cl_mem dx = bm_test_buffer(t, x, xn * sizeof(float));
    cl_mem dw = bm_test_buffer(t, w, (size_t)d * sizeof(float));
    cl_mem dout = NULL;
    char what[128];
    snprintf(what, sizeof what, "rmsnorm %s rows=%d d=%d, %s",
             mode == RMS_DENSE ? "dense" : mode == RMS_STRIDED ? "strided" : "in-place", rows, d, form);
    int st;
    if (mode == RMS_INPLACE) {
        for (size_t i = 0; i < xn; i++) want[i] = x[i];
        bm_ref_rmsnorm(want, x_ld, x_col, w, want, o_ld, o_col, rows, d, eps);
        st = bm_op_rmsnorm(t->rt, dx, x_ld, x_col, dw, dx, o_ld, o_col, rows, d, eps);
        if (bm_test_status(t, st, what)) {
            bm_test_read(t, dx, got, xn * sizeof(float));
            bm_test_close(t, what, got, want, xn, 1e-6);
        }
    } else {
        bm_test_fill(t, want, on, -9.0f, 9.0f); /* the columns outside the op must survive */
        for (size_t i = 0; i < on; i++) got[i] = want[i];
        dout = bm_test_buffer(t, got, on * sizeof(float));
        bm_ref_rmsnorm(x, x_ld, x_col, w, want, o_ld, o_col, rows, d, eps);
        st = bm_op_rmsnorm(t->rt, dx, x_ld, x_col, dw, dout, o_ld, o_col, rows, d, eps);
        if (bm_test_status(t, st, what)) {
            bm_test_read(t, dout, got, on * sizeof(float));
            bm_test_close(t, what, got, want, on, 1e-6);
        }
    }
    bm_release(dx);
    bm_release(dw);
    bm_release(dout);
    free(x);
    free(w);
    free(want);
    free(got);
}

void test_op_rmsnorm(bm_test_ctx *t)
{
    static const int rows[] = {1, 3, 37, 130};
    static const int ds[] = {1, 7, 64, 100, 257, 1536};
    static const struct {
        int form;
        const char *name;
    } forms[] = {{BM_FORM_GPU, "GPU kernel"}, {BM_FORM_CPU, "CPU kernel"}};
    const int saved = t->rt->rmsnorm_form;
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        t->rt->rmsnorm_form = forms[f].form;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            for (size_t j = 0; j < sizeof ds / sizeof ds[0]; j++)
                for (int mode = RMS_DENSE; mode <= RMS_INPLACE; mode++)
                    rmsnorm_case(t, rows[i], ds[j], mode, forms[f].name);
    }
    t->rt->rmsnorm_form = saved;
    bm_test_true(t, bm_op_rmsnorm(t->rt, NULL, 8, 0, NULL, NULL, 8, 0, 2, -1, 1e-5f) == BMOJO_EINVAL,
                 "rmsnorm d<0 refused");
    bm_test_true(t, bm_op_rmsnorm(t->rt, NULL, 8, 0, NULL, NULL, 8, 0, 0, 8, 1e-5f) == 0, "rmsnorm rows=0 no-op");
}
