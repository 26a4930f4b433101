/* test_optim.c — the optimizer ops (ops_optim.h) against their references (ref/ref_optim.h):
 * the sum of squares vs a double sum (sizes 1, 7, 255, 256k+1, a few million; offsets; large
 * values just outside the range, which a bound off by one would add; two runs bit-identical),
 * the clip factor (clipping active, inactive, disabled, a zero norm), and AdamW over several steps
 * with fresh random gradients each step (sizes 1, odd, large; offsets; with and without decay;
 * clip scale 1 and < 1; beta1 on both sides of lerp's 0.5 switch), comparing param, m and v over
 * the whole buffers and checking every element outside the range is untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops_optim.h"
#include "ref/ref_optim.h"

/* Elements outside [off, off + n) of got equal those of before, bit for bit. */
static void untouched(bm_test_ctx *t, const char *what, const float *got, const float *before, size_t total, size_t off,
                      size_t n)
{
    int ok = memcmp(got, before, off * sizeof(float)) == 0 &&
             memcmp(got + off + n, before + off + n, (total - off - n) * sizeof(float)) == 0;
    char msg[256];
    snprintf(msg, sizeof msg, "%s: outside the range untouched", what);
    bm_test_true(t, ok, msg);
}

static void sumsq_case(bm_test_ctx *t, size_t n, size_t off, float scale)
{
    size_t total = off + n + 3;
    float *x = bm_test_alloc(total * sizeof(float));
    bm_test_fill(t, x, total, -scale, scale);
    /* a few much larger values inside, and huge ones right outside the range */
    for (size_t i = 0; i < n; i += 9973) x[off + i] *= 100.0f;
    if (off) x[off - 1] = 1e4f;
    x[off + n] = 1e4f;
    double want = bm_ref_sumsq(x, off, n);
    cl_mem mx = bm_test_buffer(t, x, total * sizeof(float));
    float out0[3] = {-1.0f, -1.0f, -1.0f}, got[3], again[3];
    cl_mem mo = bm_test_buffer(t, out0, sizeof out0);
    char what[128];
    snprintf(what, sizeof what, "sumsq n=%zu off=%zu", n, off);
    if (bm_test_status(t, bm_op_sumsq(t->rt, mx, off, n, mo, 1), what)) {
        bm_test_read(t, mo, got, sizeof got);
        double rel = fabs(got[1] - want) / fmax(want, 1e-30);
        char msg[200];
        snprintf(msg, sizeof msg, "%s: %.9g vs %.9g (double), rel=%.2e", what, got[1], want, rel);
        bm_test_true(t, rel <= 1e-6, msg);
        snprintf(msg, sizeof msg, "%s: out[0], out[2] untouched", what);
        bm_test_true(t, got[0] == -1.0f && got[2] == -1.0f, msg);
        bm_test_status(t, bm_op_sumsq(t->rt, mx, off, n, mo, 1), what);
        bm_test_read(t, mo, again, sizeof again);
        snprintf(msg, sizeof msg, "%s: rerun bit-identical", what);
        bm_test_true(t, memcmp(&again[1], &got[1], sizeof(float)) == 0, msg);
    }
    bm_release(mx);
    bm_release(mo);
    free(x);
}

static void clip_case(bm_test_ctx *t, float sumsq, float max_norm)
{
    float buf[5] = {7.0f, sumsq, 7.0f, 7.0f, 7.0f}, want[5], got[5];
    memcpy(want, buf, sizeof buf);
    bm_ref_clip_scale(want, 1, 2, max_norm);
    cl_mem m = bm_test_buffer(t, buf, sizeof buf);
    char what[128];
    snprintf(what, sizeof what, "clip_scale sumsq=%g max_norm=%g", sumsq, max_norm);
    if (bm_test_status(t, bm_op_clip_scale(t->rt, m, 1, 2, max_norm), what)) {
        bm_test_read(t, m, got, sizeof got);
        double norm = sqrt((double)sumsq);
        double scale = max_norm > 0 ? fmin(1.0, max_norm / (norm + 1e-6)) : 1.0;
        char msg[320];
        snprintf(msg, sizeof msg, "%s: norm %.9g scale %.9g (want %.9g %.9g)", what, got[2], got[3], norm, scale);
        bm_test_true(t, fabs(got[2] - norm) <= 1e-6 * fmax(norm, 1e-30) && fabs(got[3] - scale) <= 1e-6 * scale &&
                            got[3] <= 1.0f && (scale < 1.0 || got[3] == 1.0f),
                     msg);
        snprintf(msg, sizeof msg, "%s: as the reference, the rest untouched", what);
        bm_test_true(t, fabsf(got[2] - want[2]) <= 1e-6f * fmaxf(want[2], 1e-30f) &&
                            fabsf(got[3] - want[3]) <= 1e-6f * want[3] && got[0] == 7.0f && got[1] == sumsq &&
                            got[4] == 7.0f,
                     msg);
    }
    bm_release(m);
}

static void adamw_case(bm_test_ctx *t, size_t n, size_t off, double wd, float scale, double beta1, int steps)
{
    size_t total = off + n + 5;
    float *p = bm_test_alloc(total * sizeof(float)), *g = bm_test_alloc(total * sizeof(float));
    float *m = bm_test_alloc(total * sizeof(float)), *v = bm_test_alloc(total * sizeof(float));
    float *p0 = bm_test_alloc(total * sizeof(float)), *m0 = bm_test_alloc(total * sizeof(float));
    float *v0 = bm_test_alloc(total * sizeof(float)), *got = bm_test_alloc(total * sizeof(float));
    bm_test_fill(t, p, total, -1.0f, 1.0f);
    /* outside the range: values the step must not touch, in every buffer */
    bm_test_fill(t, m, total, -0.5f, 0.5f);
    bm_test_fill(t, v, total, 0.0f, 0.5f);
    for (size_t i = 0; i < n; i++) m[off + i] = v[off + i] = 0.0f; /* Adam starts from zero state */
    memcpy(p0, p, total * sizeof(float));
    memcpy(m0, m, total * sizeof(float));
    memcpy(v0, v, total * sizeof(float));
    float clip[4] = {9.0f, 9.0f, 9.0f, scale};
    cl_mem mp = bm_test_buffer(t, p, total * sizeof(float)), mg = bm_test_buffer(t, NULL, total * sizeof(float));
    cl_mem mm = bm_test_buffer(t, m, total * sizeof(float)), mv = bm_test_buffer(t, v, total * sizeof(float));
    cl_mem mc = bm_test_buffer(t, clip, sizeof clip);
    char what[160];
    snprintf(what, sizeof what, "adamw n=%zu off=%zu wd=%g scale=%g beta1=%g", n, off, wd, scale, beta1);
    int ok = 1;
    for (int s = 1; ok && s <= steps; s++) {
        bm_test_fill(t, g, total, -1.0f, 1.0f);
        if (s == 2) /* a step with tiny gradients: v shrinks, eps and the bias corrections matter */
            for (size_t i = 0; i < total; i++) g[i] *= 1e-6f;
        bm_upload(t->rt, mg, 0, g, total * sizeof(float));
        /* a learning rate large enough that the update dominates the comparison of p */
        bm_adamw_args a = {.lr = 0.05 * s, .beta1 = beta1, .beta2 = 0.999, .eps = 1e-8, .weight_decay = wd, .t = s};
        ok = bm_test_status(t, bm_op_adamw(t->rt, &a, mp, mg, mm, mv, mc, 3, off, n), what);
        bm_ref_adamw(&a, p, g, m, v, clip, 3, off, n);
    }
    if (ok) {
        char w2[200];
        bm_test_read(t, mp, got, total * sizeof(float));
        snprintf(w2, sizeof w2, "%s param", what);
        bm_test_close(t, w2, got, p, total, 1e-6);
        untouched(t, w2, got, p0, total, off, n);
        bm_test_read(t, mm, got, total * sizeof(float));
        snprintf(w2, sizeof w2, "%s exp_avg", what);
        bm_test_close(t, w2, got, m, total, 1e-6);
        untouched(t, w2, got, m0, total, off, n);
        bm_test_read(t, mv, got, total * sizeof(float));
        snprintf(w2, sizeof w2, "%s exp_avg_sq", what);
        bm_test_close(t, w2, got, v, total, 1e-6);
        untouched(t, w2, got, v0, total, off, n);
    }
    bm_release(mp), bm_release(mg), bm_release(mm), bm_release(mv), bm_release(mc);
    free(p), free(g), free(m), free(v), free(p0), free(m0), free(v0), free(got);
}

/* One AdamW step by hand at a point where every term is visible: the reference itself is
 * PyTorch's formula (decay before the update, bias corrections, eps outside the sqrt). */
static void adamw_ref_by_hand(bm_test_ctx *t)
{
    float p = 2.0f, g = 0.5f, m = 0.0f, v = 0.0f, clip = 0.5f;
    bm_adamw_args a = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-3, .weight_decay = 0.5, .t = 1};
    bm_ref_adamw(&a, &p, &g, &m, &v, &clip, 0, 0, 1);
    double gc = 0.25, pd = 2.0 * (1 - 0.1 * 0.5), md = 0.1 * gc, vd = 0.01 * gc * gc;
    double want = pd - 0.1 * (md / 0.1) / (sqrt(vd / 0.01) + 1e-3);
    char msg[160];
    snprintf(msg, sizeof msg, "adamw reference by hand: p %.9g (want %.9g), m %.9g, v %.9g", p, want, m, v);
    bm_test_true(t, fabs(p - want) < 1e-6 && fabs(m - md) < 1e-8 && fabs(v - vd) < 1e-9, msg);
}

void test_op_optim(bm_test_ctx *t)
{
    static const size_t sizes[] = {1, 7, 255, 256, 257, 256 * 3 + 1, 256 * 41 + 1, 1048579, 3000017};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sumsq_case(t, sizes[i], 0, 1.0f);
        sumsq_case(t, sizes[i], 5, 1.0f);
    }
    sumsq_case(t, 2000003, 64, 1e-3f);
    clip_case(t, 16.0f, 1.0f);   /* norm 4 > 1: clipped */
    clip_case(t, 16.0f, 10.0f);  /* inactive */
    clip_case(t, 16.0f, 0.0f);   /* disabled */
    clip_case(t, 16.0f, -1.0f);
    clip_case(t, 0.0f, 1.0f);    /* zero gradient */
    clip_case(t, 1e-12f, 1.0f);
    adamw_ref_by_hand(t);
    static const size_t an[] = {1, 7, 1001, 300007};
    for (size_t i = 0; i < sizeof an / sizeof an[0]; i++) {
        adamw_case(t, an[i], 0, 0.0, 1.0f, 0.9, 4);
        adamw_case(t, an[i], 3, 0.1, 1.0f, 0.9, 4);
        adamw_case(t, an[i], 65, 0.1, 0.25f, 0.9, 4);
    }
    adamw_case(t, 999, 17, 0.0, 0.3f, 0.3, 5); /* 1 - beta1 >= 0.5: lerp's other form */

    cl_mem b = bm_test_buffer(t, NULL, 64 * sizeof(float));
    bm_adamw_args a = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0, .t = 0};
    bm_test_true(t, bm_op_adamw(t->rt, &a, b, b, b, b, b, 0, 0, 8) == BMOJO_EINVAL, "adamw t=0 refused");
    a.t = 1;
    bm_test_true(t, bm_op_adamw(t->rt, &a, b, b, b, b, b, 0, 60, 8) == BMOJO_EINVAL, "adamw range past the buffer refused");
    bm_test_true(t, bm_op_adamw(t->rt, &a, b, b, b, b, b, 0, 64, 0) == 0, "adamw n=0 no-op");
    bm_test_true(t, bm_op_sumsq(t->rt, b, 0, 65, b, 0) == BMOJO_EINVAL, "sumsq range past the buffer refused");
    bm_test_true(t, bm_op_sumsq(t->rt, b, 0, 8, b, 3) == BMOJO_EINVAL, "sumsq out inside the range refused");
    bm_test_true(t, bm_op_clip_scale(t->rt, b, 0, 63, 1.0f) == BMOJO_EINVAL, "clip_scale out past the buffer refused");
    bm_release(b);
}
