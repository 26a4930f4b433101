/* test_attention_backward.c — bm_op_attention_backward (causal GQA attention backward from
 * position 0) against bm_ref_attention_backward, and the reference against central finite
 * differences of a double-precision forward.
 *  - kernel vs reference: windows 0 / 1 / 5 / >= T, T 1 / 2 / 37 / 130, (H, Hkv) (1,1) (4,2)
 *    (6,3) (4,1), dh 1 / 5 / 16 / 64, B 1 / 3 (every window x T pair, the other sizes cycled so
 *    that each value meets each other list), q, k, v as column views of one fused
 *    [B*T, (H+2Hkv)*dh (+ gaps)] buffer and dq, dk, dv as views of one fused gradient buffer
 *    with a different layout and gaps; the forward output o from bm_op_attention. The gradient
 *    buffer starts random: everything outside the views must come back bit-identical, each view
 *    must match the reference within 1e-5 relative.
 *  - reference vs finite differences: L = sum(o * R) with o from a double forward of the fused
 *    buffer, dL/dx ~ (L(x+h) - L(x-h)) / 2h for every element of q, k and v (h = 1e-4), relative
 *    error of the whole gradient vector <= 1e-5.
 *  - bad arguments are refused (BMOJO_EINVAL), empty shapes are no-ops. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ops_backward.h"
#include "ref/ref_backward.h"

typedef struct {
    int B, T, H, Hkv, dh, window;
    size_t pad; /* gaps between and after the views of the fused buffers */
} attb_case;

/* ||got - want|| <= tol * max(||want||, floor) over n elements, all finite. */
static int attb_close(bm_test_ctx *t, const char *what, const float *got, const float *want, size_t n, double floor,
                      double tol)
{
    double d2 = 0, w2 = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) finite = 0;
        const double d = (double)got[i] - want[i];
        d2 += d * d;
        w2 += (double)want[i] * want[i];
    }
    const double rel = sqrt(d2) / fmax(fmax(sqrt(w2), floor), 1e-30);
    const int ok = finite && rel <= tol;
    if (!ok || t->verbose)
        printf("%s  %-28.28s %s  rel=%.2e n=%zu%s\n", ok ? "ok  " : "FAIL", t->rt->desc.name, what, rel, n,
               finite ? "" : " (non-finite values)");
    ok ? t->passed++ : t->failed++;
    return ok;
}

/* The view columns [col, col + w) of rows of ld, gathered into out (n = rows * w). */
static void attb_gather(const float *x, size_t rows, size_t ld, size_t col, size_t w, float *out)
{
    for (size_t r = 0; r < rows; r++) memcpy(out + r * w, x + r * ld + col, w * sizeof(float));
}

static void attb_run_case(bm_test_ctx *t, const attb_case *c)
{
    const int B = c->B, T = c->T, H = c->H, Hkv = c->Hkv, dh = c->dh;
    const size_t rows = (size_t)B * T, qw = (size_t)H * dh, kw = (size_t)Hkv * dh, p = c->pad;
    /* inputs [q | k | v] with gaps; gradients [dk | dq | dv] (another order) with other gaps */
    const size_t q_col = p, k_col = q_col + qw + p, v_col = k_col + kw + p, ld = v_col + kw + p;
    const size_t dk_col = 2 * p, dq_col = dk_col + kw + p, dv_col = dq_col + qw, gld = dv_col + kw + 2 * p + 1;
    const size_t o_ld = qw + 3;
    const size_t nx = rows * ld, ng = rows * gld, no = rows * o_ld;
    float *x = bm_test_alloc(nx * sizeof(float)), *o = bm_test_alloc(no * sizeof(float));
    float *dout = bm_test_alloc(no * sizeof(float)), *want = bm_test_alloc(ng * sizeof(float));
    float *got = bm_test_alloc(ng * sizeof(float));
    bm_test_fill(t, x, nx, -2.0f, 2.0f);
    bm_test_fill(t, dout, no, -1.0f, 1.0f);
    bm_test_fill(t, want, ng, -5.0f, 5.0f);
    bm_test_fill(t, o, no, -3.0f, 3.0f); /* o's padding columns: never read */
    const float scale = 1.0f / sqrtf((float)dh);
    char what[160];
    snprintf(what, sizeof what, "attn_bwd %s B=%d T=%d H=%d/%d dh=%d w=%d pad=%zu",
             t->rt->attn_bwd_form == BM_FORM_CPU && dh % 16 == 0 ? "CPU kernel" : "GPU kernel", B, T, H, Hkv, dh,
             c->window, p);

    cl_mem xb = bm_test_buffer(t, x, nx * sizeof(float)), ob = bm_test_buffer(t, o, no * sizeof(float));
    cl_mem dob = bm_test_buffer(t, dout, no * sizeof(float)), gb = bm_test_buffer(t, want, ng * sizeof(float));
    bm_attn_args fa = {.B = B, .T = T, .H = H, .Hkv = Hkv, .dh = dh, .q = xb, .q_ld = ld, .q_col = q_col, .k = xb,
                       .v = xb, .kv_ld = ld, .k_col = k_col, .v_col = v_col, .pos0 = 0, .window = c->window,
                       .scale = scale, .out = ob, .out_ld = o_ld};
    int ok = bm_test_status(t, bm_op_attention(t->rt, &fa), what);
    if (ok) bm_test_read(t, ob, o, no * sizeof(float));
    bm_attn_bwd_args a = {.B = B, .T = T, .H = H, .Hkv = Hkv, .dh = dh, .window = c->window, .scale = scale,
                          .q = xb, .q_ld = ld, .q_col = q_col, .k = xb, .v = xb, .kv_ld = ld, .k_col = k_col,
                          .v_col = v_col, .o = ob, .dout = dob, .o_ld = o_ld, .dq = gb, .dq_ld = gld,
                          .dq_col = dq_col, .dk = gb, .dv = gb, .dkv_ld = gld, .dk_col = dk_col, .dv_col = dv_col};
    if (ok) ok = bm_test_status(t, bm_op_attention_backward(t->rt, &a), what);
    if (ok) {
        bm_test_read(t, gb, got, ng * sizeof(float));
        const float *prefill = want;
        float *outside_got = bm_test_alloc(ng * sizeof(float)), *outside_want = bm_test_alloc(ng * sizeof(float));
        memcpy(outside_got, got, ng * sizeof(float));
        memcpy(outside_want, prefill, ng * sizeof(float));
        bm_ref_attn_bwd_args r = {.B = B, .T = T, .H = H, .Hkv = Hkv, .dh = dh, .window = c->window, .scale = scale,
                                  .q = x, .q_ld = ld, .q_col = q_col, .k = x, .v = x, .kv_ld = ld, .k_col = k_col,
                                  .v_col = v_col, .o = o, .dout = dout, .o_ld = o_ld, .dq = want, .dq_ld = gld,
                                  .dq_col = dq_col, .dk = want, .dv = want, .dkv_ld = gld, .dk_col = dk_col,
                                  .dv_col = dv_col};
        bm_ref_attention_backward(&r);
        /* outside the views: untouched (blank the views in both copies, compare exactly) */
        for (size_t i = 0; i < rows; i++) {
            memset(outside_got + i * gld + dk_col, 0, kw * sizeof(float));
            memset(outside_got + i * gld + dq_col, 0, (qw + kw) * sizeof(float));
            memset(outside_want + i * gld + dk_col, 0, kw * sizeof(float));
            memset(outside_want + i * gld + dq_col, 0, (qw + kw) * sizeof(float));
        }
        bm_test_true(t, !memcmp(outside_got, outside_want, ng * sizeof(float)),
                     "attention_backward leaves the gradient buffer outside dq/dk/dv untouched");
        /* each view vs the reference; views whose gradient is (near) zero, as dq and dk with
         * window 1 or T = 1, are measured against the size of all three gradients */
        float *vg = bm_test_alloc(rows * qw * sizeof(float)), *vw = bm_test_alloc(rows * qw * sizeof(float));
        double all2 = 0;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < qw + 2 * kw; j++) {
                const double w = want[i * gld + dk_col + (j < kw ? j : j + p)];
                all2 += w * w;
            }
        const double floor = 1e-3 * sqrt(all2);
        static const char *names[3] = {"dq", "dk", "dv"};
        const size_t cols[3] = {dq_col, dk_col, dv_col}, ws[3] = {qw, kw, kw};
        for (int v = 0; v < 3; v++) {
            char w2[200];
            snprintf(w2, sizeof w2, "%s %s", what, names[v]);
            attb_gather(got, rows, gld, cols[v], ws[v], vg);
            attb_gather(want, rows, gld, cols[v], ws[v], vw);
            attb_close(t, w2, vg, vw, rows * ws[v], floor, 1e-5);
        }
        free(vg);
        free(vw);
        free(outside_got);
        free(outside_want);
    }
    bm_release(xb);
    bm_release(ob);
    bm_release(dob);
    bm_release(gb);
    free(x);
    free(o);
    free(dout);
    free(want);
    free(got);
}

static void attb_kernel_cases(bm_test_ctx *t)
{
    static const int Ts[] = {1, 2, 37, 130}, HH[][2] = {{1, 1}, {4, 2}, {6, 3}, {4, 1}}, dhs[] = {1, 5, 16, 64};
    int n = 0;
    for (int ti = 0; ti < 4; ti++)
        for (int wi = 0; wi < 4; wi++) {
            /* window 0 (full), 1 (only itself), 5, and >= T (full through the window path) */
            const int T = Ts[ti], windows[4] = {0, 1, 5, T + (ti % 2)};
            for (int rep = 0; rep < 2; rep++, n++) {
                attb_case c;
                c.T = T;
                c.window = windows[wi];
                c.B = rep ? 3 : 1;
                c.H = HH[(n + ti) % 4][0];
                c.Hkv = HH[(n + ti) % 4][1];
                c.dh = dhs[(n / 4 + n) % 4];
                c.pad = (size_t)(n % 3);
                /* the largest shapes (T 130, 6 heads, dh 64, B 3) once or twice, for time */
                if (T == 130 && c.B == 3 && c.dh == 64) c.B = 2;
                attb_run_case(t, &c);
            }
        }
    /* explicit extremes: big head dims (tiles shrink to fit the accumulators), multi-query */
    const attb_case fixed[] = {
        {1, 37, 4, 1, 256, 0, 1},  {2, 37, 6, 3, 128, 5, 0}, {1, 130, 4, 2, 64, 0, 2},
        {3, 130, 4, 1, 16, 37, 1}, {1, 2, 6, 3, 300, 0, 0},  {2, 64, 1, 1, 33, 7, 3},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) attb_run_case(t, &fixed[i]);
}

/* ---- reference vs central finite differences of a double forward ---- */

/* o = attention(x) in double, x the tight fused [B*T, (H+2Hkv)*dh] buffer (q | k | v). */
static void attb_forward_double(const double *x, int B, int T, int H, int Hkv, int dh, int window, double scale,
                                double *o)
{
    const int G = H / Hkv;
    const size_t ld = (size_t)(H + 2 * Hkv) * dh, k_col = (size_t)H * dh, v_col = k_col + (size_t)Hkv * dh;
    double *s = malloc(sizeof(double) * (size_t)T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const int g = h / G, lo = window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
                const double *qr = x + ((size_t)b * T + t) * ld + (size_t)h * dh;
                double m = -INFINITY, sum = 0;
                for (int p = lo; p <= t; p++) {
                    const double *kr = x + ((size_t)b * T + p) * ld + k_col + (size_t)g * dh;
                    double dot = 0;
                    for (int d = 0; d < dh; d++) dot += qr[d] * kr[d];
                    s[p - lo] = scale * dot;
                    if (s[p - lo] > m) m = s[p - lo];
                }
                double *orow = o + ((size_t)b * T + t) * H * dh + (size_t)h * dh;
                for (int d = 0; d < dh; d++) orow[d] = 0;
                for (int p = lo; p <= t; p++) {
                    const double w = exp(s[p - lo] - m);
                    const double *vr = x + ((size_t)b * T + p) * ld + v_col + (size_t)g * dh;
                    sum += w;
                    for (int d = 0; d < dh; d++) orow[d] += w * vr[d];
                }
                for (int d = 0; d < dh; d++) orow[d] /= sum;
            }
    free(s);
}

static double attb_loss(const double *x, const float *R, int B, int T, int H, int Hkv, int dh, int window, double scale,
                        double *o)
{
    attb_forward_double(x, B, T, H, Hkv, dh, window, scale, o);
    double L = 0;
    for (size_t i = 0; i < (size_t)B * T * H * dh; i++) L += o[i] * R[i];
    return L;
}

static void attb_fd_case(bm_test_ctx *t, int B, int T, int H, int Hkv, int dh, int window)
{
    const size_t ld = (size_t)(H + 2 * Hkv) * dh, nx = (size_t)B * T * ld, no = (size_t)B * T * H * dh;
    const float scale = 1.0f / sqrtf((float)dh);
    float *xf = bm_test_alloc(nx * sizeof(float)), *R = bm_test_alloc(no * sizeof(float));
    float *of = bm_test_alloc(no * sizeof(float)), *grad = bm_test_alloc(nx * sizeof(float));
    double *x = bm_test_alloc(nx * sizeof(double)), *o = bm_test_alloc(no * sizeof(double));
    bm_test_fill(t, xf, nx, -1.5f, 1.5f);
    bm_test_fill(t, R, no, -1.0f, 1.0f);
    for (size_t i = 0; i < nx; i++) x[i] = xf[i];
    attb_forward_double(x, B, T, H, Hkv, dh, window, scale, o);
    for (size_t i = 0; i < no; i++) of[i] = (float)o[i];
    const size_t qw = (size_t)H * dh, kw = (size_t)Hkv * dh;
    bm_ref_attn_bwd_args r = {.B = B, .T = T, .H = H, .Hkv = Hkv, .dh = dh, .window = window, .scale = scale,
                              .q = xf, .q_ld = ld, .q_col = 0, .k = xf, .v = xf, .kv_ld = ld, .k_col = qw,
                              .v_col = qw + kw, .o = of, .dout = R, .o_ld = qw, .dq = grad, .dq_ld = ld, .dq_col = 0,
                              .dk = grad, .dv = grad, .dkv_ld = ld, .dk_col = qw, .dv_col = qw + kw};
    bm_ref_attention_backward(&r);
    const double h = 1e-4;
    double d2 = 0, f2 = 0;
    for (size_t i = 0; i < nx; i++) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double lp = attb_loss(x, R, B, T, H, Hkv, dh, window, scale, o);
        x[i] = x0 - h;
        const double lm = attb_loss(x, R, B, T, H, Hkv, dh, window, scale, o);
        x[i] = x0;
        const double fd = (lp - lm) / (2 * h), diff = grad[i] - fd;
        d2 += diff * diff;
        f2 += fd * fd;
    }
    const double rel = sqrt(d2) / fmax(sqrt(f2), 1e-30);
    char what[160];
    snprintf(what, sizeof what, "attn_bwd ref vs finite differences B=%d T=%d H=%d/%d dh=%d w=%d: rel=%.2e", B, T, H,
             Hkv, dh, window, rel);
    bm_test_true(t, rel <= 1e-5 && isfinite(rel), what);
    free(xf);
    free(R);
    free(of);
    free(grad);
    free(x);
    free(o);
}

static void attb_bad_args(bm_test_ctx *t)
{
    cl_mem m = bm_test_buffer(t, NULL, 1024 * sizeof(float));
    const bm_attn_bwd_args good = {.B = 1, .T = 3, .H = 4, .Hkv = 2, .dh = 4, .window = 0, .scale = 0.5f,
                                   .q = m, .q_ld = 32, .q_col = 0, .k = m, .v = m, .kv_ld = 32, .k_col = 16,
                                   .v_col = 24, .o = m, .dout = m, .o_ld = 16, .dq = m, .dq_ld = 32, .dq_col = 0,
                                   .dk = m, .dv = m, .dkv_ld = 32, .dk_col = 16, .dv_col = 24};
    bm_attn_bwd_args a = good;
    bm_test_true(t, bm_op_attention_backward(t->rt, NULL) == BMOJO_EINVAL, "attention_backward refuses NULL args");
    a.H = 3;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL,
                 "attention_backward refuses H not a multiple of Hkv");
    a = good;
    a.T = -1;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses T < 0");
    a = good;
    a.window = -2;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses window < 0");
    a = good;
    a.dh = 0;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses dh 0");
    a = good;
    a.dout = NULL;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses NULL dout");
    a = good;
    a.dv = NULL;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses NULL dv");
    a = good;
    a.q_col = 17;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses q_ld too small");
    a = good;
    a.v_col = 25;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses kv_ld too small");
    a = good;
    a.o_ld = 15;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses o_ld too small");
    a = good;
    a.dq_ld = 15;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL, "attention_backward refuses dq_ld too small");
    a = good;
    a.dk_col = 29;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == BMOJO_EINVAL,
                 "attention_backward refuses dkv_ld too small");
    a = good;
    a.B = 0;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == 0, "attention_backward B=0 is a no-op");
    a = good;
    a.T = 0;
    bm_test_true(t, bm_op_attention_backward(t->rt, &a) == 0, "attention_backward T=0 is a no-op");
    bm_test_true(t, bm_op_attention_backward(t->rt, &good) == 0, "attention_backward accepts the valid shape");
    bm_finish(t->rt);
    bm_release(m);
}

void test_op_attention_backward(bm_test_ctx *t)
{
    /* both forms (cl/attention_backward.cl, cl/attention_backward_cpu.cl: head dims of a multiple
     * of 16; others run the GPU form under either setting) on every device */
    const int saved = t->rt->attn_bwd_form;
    t->rt->attn_bwd_form = BM_FORM_GPU;
    attb_kernel_cases(t);
    t->rt->attn_bwd_form = BM_FORM_CPU;
    attb_kernel_cases(t);
    t->rt->attn_bwd_form = saved;
    attb_fd_case(t, 2, 5, 4, 2, 3, 0);
    attb_fd_case(t, 1, 7, 3, 1, 4, 3);
    attb_fd_case(t, 2, 4, 2, 2, 1, 1);
    attb_fd_case(t, 1, 6, 6, 3, 2, 10);
    attb_fd_case(t, 3, 9, 4, 4, 5, 2);
    attb_bad_args(t);
}
