/* test_elementwise.c — add, bias_add, SwiGLU and copy against the references: odd sizes (not
 * multiples of 4 or of the work-group), strided rows with column offsets, guard elements after
 * the end that must stay untouched. add, bias_add and copy must be bit-exact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

#define EW_GUARD 9 /* floats after the op's range, filled with sentinels */

static void add_case(bm_test_ctx *t, size_t n)
{
    size_t m = n + EW_GUARD;
    float *x = bm_test_alloc(m * sizeof(float)), *y = bm_test_alloc(m * sizeof(float));
    float *got = bm_test_alloc(m * sizeof(float));
    bm_test_fill(t, x, m, -4.0f, 4.0f);
    bm_test_fill(t, y, m, -4.0f, 4.0f);
    cl_mem dx = bm_test_buffer(t, x, m * sizeof(float)), dy = bm_test_buffer(t, y, m * sizeof(float));
    char what[64];
    snprintf(what, sizeof what, "add n=%zu", n);
    if (bm_test_status(t, bm_op_add(t->rt, dx, dy, n), what)) {
        bm_test_read(t, dx, got, m * sizeof(float));
        bm_ref_add(x, y, n); /* the guard stays as uploaded */
        bm_test_close(t, what, got, x, m, 0.0);
    }
    bm_release(dx);
    bm_release(dy);
    free(x);
    free(y);
    free(got);
}

static void copy_case(bm_test_ctx *t, size_t n, int blocks)
{
    size_t m = n + EW_GUARD;
    float *src = bm_test_alloc(m * sizeof(float)), *dst = bm_test_alloc(m * sizeof(float));
    float *got = bm_test_alloc(m * sizeof(float));
    bm_test_fill(t, src, m, -4.0f, 4.0f);
    bm_test_fill(t, dst, m, 10.0f, 20.0f);
    cl_mem ds = bm_test_buffer(t, src, m * sizeof(float)), dd = bm_test_buffer(t, dst, m * sizeof(float));
    char what[64];
    snprintf(what, sizeof what, "copy%s n=%zu", blocks ? " (blocks)" : "", n);
    if (bm_test_status(t, blocks ? bm_op_copy_blocks(t->rt, ds, dd, n) : bm_op_copy(t->rt, ds, dd, n), what)) {
        bm_test_read(t, dd, got, m * sizeof(float));
        memcpy(dst, src, n * sizeof(float)); /* want: src for i < n, the old dst after */
        bm_test_true(t, memcmp(got, dst, m * sizeof(float)) == 0, what);
    }
    bm_release(ds);
    bm_release(dd);
    free(src);
    free(dst);
    free(got);
}

static void bias_add_case(bm_test_ctx *t, int rows, int cols, size_t ld)
{
    size_t m = (size_t)rows * ld;
    float *x = bm_test_alloc(m * sizeof(float)), *b = bm_test_alloc((size_t)cols * sizeof(float));
    float *got = bm_test_alloc(m * sizeof(float));
    bm_test_fill(t, x, m, -4.0f, 4.0f);
    bm_test_fill(t, b, (size_t)cols, -1.0f, 1.0f);
    cl_mem dx = bm_test_buffer(t, x, m * sizeof(float)), db = bm_test_buffer(t, b, (size_t)cols * sizeof(float));
    char what[80];
    snprintf(what, sizeof what, "bias_add rows=%d cols=%d ld=%zu", rows, cols, ld);
    if (bm_test_status(t, bm_op_bias_add(t->rt, dx, ld, db, rows, cols), what)) {
        bm_test_read(t, dx, got, m * sizeof(float));
        bm_ref_bias_add(x, ld, b, rows, cols);
        bm_test_close(t, what, got, x, m, 0.0);
    }
    bm_release(dx);
    bm_release(db);
    free(x);
    free(b);
    free(got);
}

static void swiglu_case(bm_test_ctx *t, int rows, int cols, size_t ld_in, size_t g_col, size_t u_col)
{
    size_t m = (size_t)rows * ld_in, on = (size_t)rows * (size_t)cols;
    float *g = bm_test_alloc(m * sizeof(float));
    float *want = bm_test_alloc(on * sizeof(float)), *got = bm_test_alloc(on * sizeof(float));
    bm_test_fill(t, g, m, -6.0f, 6.0f);
    bm_test_fill(t, got, on, 50.0f, 60.0f);
    cl_mem dg = bm_test_buffer(t, g, m * sizeof(float)), dout = bm_test_buffer(t, got, on * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "swiglu rows=%d cols=%d ld=%zu g=%zu u=%zu", rows, cols, ld_in, g_col, u_col);
    if (bm_test_status(t, bm_op_swiglu(t->rt, dg, ld_in, g_col, u_col, dout, rows, cols), what)) {
        bm_test_read(t, dout, got, on * sizeof(float));
        bm_ref_swiglu(g, ld_in, g_col, u_col, want, rows, cols);
        bm_test_close(t, what, got, want, on, 1e-6);
    }
    bm_release(dg);
    bm_release(dout);
    free(g);
    free(want);
    free(got);
}

void test_op_elementwise(bm_test_ctx *t)
{
    static const size_t ns[] = {1, 3, 4, 37, 1001, 1u << 20};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        add_case(t, ns[i]);
        copy_case(t, ns[i], 0);
        copy_case(t, ns[i], 1);
    }
    add_case(t, (1u << 20) + 3);
    copy_case(t, (1u << 20) + 1, 0);
    copy_case(t, (1u << 20) + 1, 1);
    copy_case(t, 16384 * 3 + 17, 1); /* blocks of 16384: a partial last block with a scalar tail */

    static const int rows[] = {1, 3, 37, 130};
    static const int cols[] = {1, 7, 64, 100, 257, 1536};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof cols / sizeof cols[0]; j++) {
            int r = rows[i], c = cols[j];
            bias_add_case(t, r, c, (size_t)c);
            bias_add_case(t, r, c, (size_t)c + 3);
            /* Gate then up, as in a fused [gate | up] projection, with padding. */
            swiglu_case(t, r, c, 2 * (size_t)c + 3, 1, (size_t)c + 2);
            /* Up before gate, dense. */
            swiglu_case(t, r, c, 2 * (size_t)c, (size_t)c, 0);
        }
}
