/* test_rope.c — RoPE kernel against the reference (double-precision evaluation of HF's float32
 * angle) at relative tolerance 1e-5: positions from 0, 5 and 30000, head_dim 2..256, theta 1e4
 * and 1e6, strided views (column offset, padded rows), B = 2 with T odd. Columns outside the
 * rotated heads must be left untouched. With -v it also reports how far both are from the
 * exact-real-angle result (the float32-angle limit, ~pos * 2^-24 rad, which HF shares). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

/* RoPE with the angle in exact (double) arithmetic: what an infinitely precise model would do. */
static void rope_exact(float *x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, double theta)
{
    const int nhalf = dh / 2;
    for (int r = 0; r < B * T; r++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < nhalf; i++) {
                const double a = (double)(pos0 + r % T) * pow(theta, -2.0 * i / dh);
                float *xp = x + (size_t)r * ld + col + (size_t)h * dh + i;
                const double x1 = xp[0], x2 = xp[nhalf];
                xp[0] = (float)(x1 * cos(a) - x2 * sin(a));
                xp[nhalf] = (float)(x2 * cos(a) + x1 * sin(a));
            }
}

static void rope_case(bm_test_ctx *t, int B, int T, int nh, int dh, int64_t pos0, float theta, size_t col, size_t pad)
{
    const size_t ld = col + (size_t)nh * dh + pad, n = (size_t)B * T * ld;
    float *x0 = bm_test_alloc(n * sizeof(float)), *want = bm_test_alloc(n * sizeof(float));
    float *got = bm_test_alloc(n * sizeof(float)), *exact = bm_test_alloc(n * sizeof(float));
    const size_t nr = (size_t)B * T * nh * dh;
    float *g_heads = bm_test_alloc(nr * sizeof(float)), *w_heads = bm_test_alloc(nr * sizeof(float));
    float *e_heads = bm_test_alloc(nr * sizeof(float));
    bm_test_fill(t, x0, n, -1.0f, 1.0f);
    memcpy(want, x0, n * sizeof(float));
    memcpy(exact, x0, n * sizeof(float));
    bm_ref_rope(want, ld, col, B, T, nh, dh, pos0, theta);
    rope_exact(exact, ld, col, B, T, nh, dh, pos0, theta);
    cl_mem xb = bm_test_buffer(t, x0, n * sizeof(float));
    char what[160];
    snprintf(what, sizeof what, "rope%s B=%d T=%d nh=%d dh=%d pos0=%lld theta=%g col=%zu ld=%zu",
             t->rt->rope_form == BM_ROPE_FORM_POSITIONS ? " (positions)" : t->rt->rope_form == BM_ROPE_FORM_PAIRS ? " (pairs)" : "", B, T, nh, dh,
             (long long)pos0, (double)theta, col, ld);
    if (bm_test_status(t, bm_op_rope(t->rt, xb, ld, col, B, T, nh, dh, pos0, theta), what)) {
        bm_test_read(t, xb, got, n * sizeof(float));
        int untouched = 1;
        size_t m = 0;
        for (size_t r = 0; r < (size_t)B * T; r++)
            for (size_t j = 0; j < ld; j++) {
                const size_t e = r * ld + j;
                if (j >= col && j < col + (size_t)nh * dh) {
                    g_heads[m] = got[e];
                    w_heads[m] = want[e];
                    e_heads[m++] = exact[e];
                } else if (memcmp(&got[e], &x0[e], sizeof(float)) != 0) {
                    untouched = 0;
                }
            }
        bm_test_close(t, what, g_heads, w_heads, nr, 1e-5);
        bm_test_true(t, untouched, "rope leaves columns outside the heads untouched");
        if (t->verbose) {
            double d2 = 0, r2 = 0, dk2 = 0;
            for (size_t e = 0; e < nr; e++) {
                d2 += ((double)w_heads[e] - e_heads[e]) * ((double)w_heads[e] - e_heads[e]);
                dk2 += ((double)g_heads[e] - e_heads[e]) * ((double)g_heads[e] - e_heads[e]);
                r2 += (double)e_heads[e] * e_heads[e];
            }
            printf("      fp32-angle vs exact-angle: reference rel=%.2e, kernel rel=%.2e (pos0=%lld)\n",
                   sqrt(d2 / r2), sqrt(dk2 / r2), (long long)pos0);
        }
    }
    bm_release(xb);
    free(x0);
    free(want);
    free(got);
    free(exact);
    free(g_heads);
    free(w_heads);
    free(e_heads);
}

void test_op_rope(bm_test_ctx *t)
{
    static const int64_t pos0s[] = {0, 5, 30000};
    static const int dhs[] = {2, 16, 64, 128};
    static const float thetas[] = {10000.0f, 1e6f};
    /* both kernels on every device: a work-item per (row, head, pair) and per position (CPUs' choice) */
    const int saved = t->rt->rope_form;
    for (int form = BM_ROPE_FORM_PAIRS; form <= BM_ROPE_FORM_POSITIONS; form++) {
        t->rt->rope_form = form;
        for (size_t p = 0; p < 3; p++)
            for (size_t d = 0; d < 4; d++)
                for (size_t th = 0; th < 2; th++) {
                    const int B = 1 + (int)((p + d + th) % 2);
                    rope_case(t, B, 7 + 10 * (int)th, 3, dhs[d], pos0s[p], thetas[th], d % 2 ? 5 : 0, th ? 3 : 0);
                }
        /* the largest head_dim, a single token, and q+k heads rotated in one call of a fused buffer */
        rope_case(t, 2, 1, 4, 256, 30000, 500000.0f, 0, 0);
        rope_case(t, 2, 33, 12 + 4, 64, 40, 10000.0f, 0, 4 * 64);
    }
    t->rt->rope_form = saved;
    /* bad arguments are refused */
    cl_mem xb = bm_test_buffer(t, NULL, 64 * sizeof(float));
    bm_test_true(t, bm_op_rope(t->rt, xb, 16, 0, 1, 2, 1, 15, 0, 10000.0f) == BMOJO_EINVAL, "rope refuses odd head_dim");
    bm_test_true(t, bm_op_rope(t->rt, xb, 16, 4, 1, 2, 1, 16, 0, 10000.0f) == BMOJO_EINVAL, "rope refuses ld < col + heads");
    bm_release(xb);
}
