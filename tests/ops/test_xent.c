/* test_xent.c — bm_op_xent_backward against bm_ref_xent_backward: V from 1 to 50257 (odd, around
 * the work-group size, not a multiple of it), strided rows whose columns past V must survive,
 * targets -1 mixed in (zero row, zero loss), targets at column 0 and V - 1, logits up to +-80;
 * both kernel forms (cl/xent.cl, cl/xent_cpu.cl) forced on every device; then the reference
 * against central finite differences of the summed loss in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops_backward.h"
#include "ref/ref_backward.h"

static void xent_case(bm_test_ctx *t, int rows, int V, float range, float scale, const char *form)
{
    size_t ld = (size_t)V + 3, n = (size_t)rows * ld;
    float *lg = bm_test_alloc(n * sizeof(float)), *want = bm_test_alloc(n * sizeof(float));
    float *got = bm_test_alloc(n * sizeof(float));
    float *loss_want = bm_test_alloc((size_t)rows * sizeof(float)), *loss_got = bm_test_alloc((size_t)rows * sizeof(float));
    int32_t *tg = bm_test_alloc((size_t)rows * sizeof(int32_t));
    bm_test_fill(t, lg, n, -range, range);
    for (int r = 0; r < rows; r++) {
        uint32_t k = bm_test_randint(t, 5);
        tg[r] = k == 0 ? -1 : k == 1 ? 0 : k == 2 ? V - 1 : (int32_t)bm_test_randint(t, (uint32_t)V);
    }
    if (rows > 1) tg[1] = -1;
    if (rows > 2) { /* a row whose target holds the row's max */
        tg[2] = V / 2;
        lg[2 * ld + (size_t)(V / 2)] = range + 1.0f;
    }
    bm_test_fill(t, loss_got, (size_t)rows, 5.0f, 6.0f); /* loss must be written for every row */
    memcpy(want, lg, n * sizeof(float));
    int32_t *hit_want = bm_test_alloc((size_t)rows * sizeof(int32_t)), *hit_got = bm_test_alloc((size_t)rows * sizeof(int32_t));
    for (int r = 0; r < rows; r++) hit_got[r] = 7; /* must be written for every row */
    bm_ref_xent_backward(want, ld, V, tg, scale, loss_want, hit_want, rows);
    cl_mem m_lg = bm_test_buffer(t, lg, n * sizeof(float));
    cl_mem m_tg = bm_test_buffer(t, tg, (size_t)rows * sizeof(int32_t));
    cl_mem m_loss = bm_test_buffer(t, loss_got, (size_t)rows * sizeof(float));
    cl_mem m_hit = bm_test_buffer(t, hit_got, (size_t)rows * sizeof(int32_t));
    char what[96];
    snprintf(what, sizeof what, "xent %s rows=%d V=%d range=%g", form, rows, V, range);
    if (bm_test_status(t, bm_op_xent_backward(t->rt, m_lg, ld, V, m_tg, scale, m_loss, m_hit, rows), what)) {
        bm_test_read(t, m_lg, got, n * sizeof(float));
        bm_test_read(t, m_loss, loss_got, (size_t)rows * sizeof(float));
        char w2[192];
        snprintf(w2, sizeof w2, "%s grad", what);
        bm_test_close(t, w2, got, want, n, 1e-5);
        snprintf(w2, sizeof w2, "%s loss", what);
        bm_test_close(t, w2, loss_got, loss_want, (size_t)rows, 1e-5);
        bm_test_read(t, m_hit, hit_got, (size_t)rows * sizeof(int32_t));
        int same = 1, hits = 0;
        for (int r = 0; r < rows; r++) same &= hit_got[r] == hit_want[r], hits += hit_want[r];
        snprintf(w2, sizeof w2, "%s hits (%d of %d rows) as the reference's", what, hits, rows);
        bm_test_true(t, same, w2);
        if (rows > 2) bm_test_true(t, hit_want[2] == 1 && hit_want[1] == 0, "xent: the row whose target holds the max is a hit, an unscored row is not");
    }
    bm_release(m_lg);
    bm_release(m_tg);
    bm_release(m_loss);
    bm_release(m_hit);
    free(hit_want), free(hit_got);
    free(lg), free(want), free(got), free(loss_want), free(loss_got), free(tg);
}

/* L = scale * sum_r loss_r in double (rows with target < 0 add nothing). */
static double xent_loss(const double *l, int rows, int V, const int32_t *tg, double scale)
{
    double L = 0.0;
    for (int r = 0; r < rows; r++) {
        if (tg[r] < 0) continue;
        const double *x = l + (size_t)r * V;
        double m = x[0], s = 0.0;
        for (int j = 1; j < V; j++) m = fmax(m, x[j]);
        for (int j = 0; j < V; j++) s += exp(x[j] - m);
        L += m + log(s) - x[tg[r]];
    }
    return scale * L;
}

static void xent_fd(bm_test_ctx *t, int rows, int V, float range)
{
    size_t n = (size_t)rows * V;
    float *lg = bm_test_alloc(n * sizeof(float)), *loss = bm_test_alloc((size_t)rows * sizeof(float));
    int32_t *tg = bm_test_alloc((size_t)rows * sizeof(int32_t));
    double *x = bm_test_alloc(n * sizeof(double)), *fd = bm_test_alloc(n * sizeof(double));
    bm_test_fill(t, lg, n, -range, range);
    for (int r = 0; r < rows; r++) tg[r] = (int32_t)bm_test_randint(t, (uint32_t)V);
    if (rows > 1) tg[1] = -1;
    for (size_t i = 0; i < n; i++) x[i] = lg[i];
    const float scale = 0.37f;
    bm_ref_xent_backward(lg, (size_t)V, V, tg, scale, loss, NULL, rows);
    const double h = 1e-4;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = v + h;
        double lp = xent_loss(x, rows, V, tg, scale);
        x[i] = v - h;
        double lm = xent_loss(x, rows, V, tg, scale);
        x[i] = v;
        fd[i] = (lp - lm) / (2 * h);
    }
    double diff2 = 0.0, ref2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        diff2 += (lg[i] - fd[i]) * (lg[i] - fd[i]);
        ref2 += fd[i] * fd[i];
    }
    double rel = sqrt(diff2) / fmax(sqrt(ref2), 1e-30);
    char msg[128];
    snprintf(msg, sizeof msg, "xent ref vs FD rows=%d V=%d range=%g rel=%.2e", rows, V, range, rel);
    bm_test_true(t, rel <= 1e-5, msg);
    /* The reference's loss against the double forward, row by row. */
    double lsum = 0.0;
    for (int r = 0; r < rows; r++) lsum += loss[r];
    double L = xent_loss(x, rows, V, tg, 1.0);
    snprintf(msg, sizeof msg, "xent ref loss vs double forward rows=%d V=%d", rows, V);
    bm_test_true(t, fabs(lsum - L) <= 1e-6 * fmax(fabs(L), 1.0), msg);
    free(lg), free(loss), free(tg), free(x), free(fd);
}

void test_op_xent(bm_test_ctx *t)
{
    static const int Vs[] = {1, 2, 7, 15, 16, 17, 63, 64, 65, 257, 1000, 50257};
    static const int rows[] = {1, 3, 37};
    /* both forms (cl/xent.cl, cl/xent_cpu.cl) on every device */
    static const struct {
        int form;
        const char *name;
    } forms[] = {{BM_FORM_GPU, "GPU kernel"}, {BM_FORM_CPU, "CPU kernel"}};
    const int saved = t->rt->xent_form;
    for (size_t f = 0; f < 2; f++) {
        t->rt->xent_form = forms[f].form;
        for (size_t i = 0; i < sizeof Vs / sizeof Vs[0]; i++)
            for (size_t j = 0; j < sizeof rows / sizeof rows[0]; j++) {
                if (Vs[i] > 1000 && rows[j] > 3) continue; /* keep POCL's run short */
                xent_case(t, rows[j], Vs[i], 4.0f, 1.0f / 3.0f, forms[f].name);
                xent_case(t, rows[j], Vs[i], 80.0f, 1.0f, forms[f].name);
            }
    }
    t->rt->xent_form = saved;
    xent_fd(t, 3, 7, 3.0f);
    xent_fd(t, 2, 65, 3.0f);
    xent_fd(t, 3, 5, 80.0f);

    cl_mem m = bm_test_buffer(t, NULL, 4096);
    bm_test_true(t, bm_op_xent_backward(t->rt, m, 8, 0, m, 1.0f, m, NULL, 2) == BMOJO_EINVAL, "xent V=0 refused");
    bm_test_true(t, bm_op_xent_backward(t->rt, m, 8, 4, m, 1.0f, m, NULL, -1) == BMOJO_EINVAL, "xent rows<0 refused");
    bm_test_true(t, bm_op_xent_backward(t->rt, m, 8, 4, m, 1.0f, m, NULL, 0) == 0, "xent rows=0 no-op");
    bm_test_true(t, bm_op_xent_backward(t->rt, m, 3, 4, m, 1.0f, m, NULL, 2) == BMOJO_EINVAL, "xent ld too small refused");
    bm_test_true(t, bm_op_xent_backward(t->rt, m, 8, 4, NULL, 1.0f, m, NULL, 2) == BMOJO_EINVAL, "xent NULL targets refused");
    bm_release(m);
}
