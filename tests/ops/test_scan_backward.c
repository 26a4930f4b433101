/* test_scan_backward.c — the selective-scan backward (bm_op_scan_backward, cl/scan_backward.cl)
 * (a) against bm_ref_scan_backward: awkward sizes (T around and across the kernel's chunk
 * length, channel counts not a multiple of the work-group's channels, n = 1 .. 33), strided views
 * with column offsets (dt, bc, z, dbc, dz), whole output buffers compared (columns outside the
 * dB / dC / dz views must stay untouched, every du / ddt element written), accumulation into
 * pre-filled dA, dD, d_dt_bias, softplus past its threshold and negative dt, forced work-group
 * shapes (padded channel blocks), bit-identical reruns; each with both forms (rt->scan_bwd_form:
 * the GPU form's bm_scan_bwd_main, the CPU form's bm_scan_bwd_cpu with its own chunk length and
 * 16-channel items, partial last items included) on every device; (b) the reference against
 * central finite differences of a double-precision forward of L = sum(y * dy) for every input it differentiates
 * (u, dt, dt_bias, A, B, C, D, z). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops/op_scan_backward.h"
#include "ref/ref_backward.h"

#define SCANB_TOL 2e-5   /* kernel (fp32) vs reference (double sums) */
#define SCANB_FD_TOL 1e-5

typedef struct {
    int B, T, di, n;
    size_t dt_ld, bc_ld, b_col, c_col, z_ld, z_col, dbc_ld, dz_ld;
    float *u, *dt, *dt_bias, *A, *bc, *D, *z, *dy;
} scanb_host;

static void scanb_make(bm_test_ctx *t, scanb_host *h, int B, int T, int di, int n, float dt_lo, float dt_hi)
{
    memset(h, 0, sizeof *h);
    h->B = B, h->T = T, h->di = di, h->n = n;
    h->dt_ld = (size_t)di + 2;
    h->bc_ld = 3 + 2 * (size_t)n + 1;   /* [dt_in | B | C | pad] */
    h->b_col = 3;
    h->c_col = 3 + (size_t)n;
    h->z_ld = 2 * (size_t)di;           /* [x | z] */
    h->z_col = (size_t)di;
    h->dbc_ld = h->bc_ld + 2;           /* differs from bc_ld: the kernel must use its own */
    h->dz_ld = 2 * (size_t)di + 3;
    size_t rows = (size_t)B * T;
    h->u = bm_test_alloc(rows * di * sizeof(float) + 4);
    h->dt = bm_test_alloc(rows * h->dt_ld * sizeof(float) + 4);
    h->dt_bias = bm_test_alloc((size_t)di * sizeof(float));
    h->A = bm_test_alloc((size_t)di * n * sizeof(float));
    h->bc = bm_test_alloc(rows * h->bc_ld * sizeof(float) + 4);
    h->D = bm_test_alloc((size_t)di * sizeof(float));
    h->z = bm_test_alloc(rows * h->z_ld * sizeof(float) + 4);
    h->dy = bm_test_alloc(rows * di * sizeof(float) + 4);
    bm_test_fill(t, h->u, rows * di, -2.0f, 2.0f);
    bm_test_fill(t, h->dt, rows * h->dt_ld, dt_lo, dt_hi);
    bm_test_fill(t, h->dt_bias, di, -1.0f, 0.5f);
    bm_test_fill(t, h->A, (size_t)di * n, -4.0f, -0.1f);
    bm_test_fill(t, h->bc, rows * h->bc_ld, -1.5f, 1.5f);
    bm_test_fill(t, h->D, di, -1.0f, 1.0f);
    bm_test_fill(t, h->z, rows * h->z_ld, -3.0f, 3.0f);
    bm_test_fill(t, h->dy, rows * di, -1.0f, 1.0f);
}

static void scanb_free(scanb_host *h)
{
    free(h->u), free(h->dt), free(h->dt_bias), free(h->A), free(h->bc), free(h->D), free(h->z), free(h->dy);
}

/* Gradient buffers: the pre-filled contents (junk in du/ddt, random elsewhere) on input, the
 * results on output. */
typedef struct {
    float *du, *ddt, *dbc, *dz, *dA, *dD, *dbias;
} scanb_grads;

static void scanb_grads_make(bm_test_ctx *t, const scanb_host *h, scanb_grads *g, int zero_weights)
{
    size_t rows = (size_t)h->B * h->T;
    g->du = bm_test_alloc(rows * h->di * sizeof(float) + 4);
    g->ddt = bm_test_alloc(rows * h->di * sizeof(float) + 4);
    g->dbc = bm_test_alloc(rows * h->dbc_ld * sizeof(float) + 4);
    g->dz = bm_test_alloc(rows * h->dz_ld * sizeof(float) + 4);
    g->dA = bm_test_alloc((size_t)h->di * h->n * sizeof(float));
    g->dD = bm_test_alloc((size_t)h->di * sizeof(float));
    g->dbias = bm_test_alloc((size_t)h->di * sizeof(float));
    for (size_t i = 0; i < rows * h->di; i++) g->du[i] = g->ddt[i] = 1e3f + (float)(i % 7);
    bm_test_fill(t, g->dbc, rows * h->dbc_ld, -1.0f, 1.0f);
    bm_test_fill(t, g->dz, rows * h->dz_ld, -1.0f, 1.0f);
    bm_test_fill(t, g->dA, (size_t)h->di * h->n, -0.5f, 0.5f);
    bm_test_fill(t, g->dD, (size_t)h->di, -0.5f, 0.5f);
    bm_test_fill(t, g->dbias, (size_t)h->di, -0.5f, 0.5f);
    if (zero_weights) {
        memset(g->dA, 0, (size_t)h->di * h->n * sizeof(float));
        memset(g->dD, 0, (size_t)h->di * sizeof(float));
        memset(g->dbias, 0, (size_t)h->di * sizeof(float));
    }
}

static void scanb_grads_copy(const scanb_host *h, const scanb_grads *s, scanb_grads *d)
{
    size_t rows = (size_t)h->B * h->T;
    size_t sz[7] = {rows * h->di, rows * h->di, rows * h->dbc_ld, rows * h->dz_ld, (size_t)h->di * h->n,
                    (size_t)h->di, (size_t)h->di};
    float *const *src = &s->du;
    float **dst = &d->du;
    for (int i = 0; i < 7; i++) {
        dst[i] = bm_test_alloc(sz[i] * sizeof(float) + 4);
        memcpy(dst[i], src[i], sz[i] * sizeof(float));
    }
}

static void scanb_grads_free(scanb_grads *g)
{
    free(g->du), free(g->ddt), free(g->dbc), free(g->dz), free(g->dA), free(g->dD), free(g->dbias);
}

static void scanb_ref(const scanb_host *h, scanb_grads *g)
{
    bm_ref_scan_bwd_args r = {
        .B = h->B, .T = h->T, .di = h->di, .n = h->n, .u = h->u, .dt = h->dt, .dt_ld = h->dt_ld,
        .dt_bias = h->dt_bias, .A = h->A, .bc = h->bc, .bc_ld = h->bc_ld, .b_col = h->b_col, .c_col = h->c_col,
        .D = h->D, .z = h->z, .z_ld = h->z_ld, .z_col = h->z_col, .dy = h->dy, .du = g->du, .ddt = g->ddt,
        .dbc = g->dbc, .dbc_ld = h->dbc_ld, .dz = g->dz, .dz_ld = h->dz_ld, .dA = g->dA, .dD = g->dD,
        .d_dt_bias = g->dbias,
    };
    bm_ref_scan_backward(&r);
}

/* The op on the device (cb: forced channels per group, 0 = automatic); g is updated in place. */
static int scanb_device(bm_test_ctx *t, const scanb_host *h, scanb_grads *g, int cb)
{
    size_t rows = (size_t)h->B * h->T, di = (size_t)h->di, n = (size_t)h->n;
    bm_scan_bwd_args a = {
        .B = h->B, .T = h->T, .di = h->di, .n = h->n,
        .u = bm_test_buffer(t, h->u, rows * di * sizeof(float) + 4),
        .dt = bm_test_buffer(t, h->dt, rows * h->dt_ld * sizeof(float) + 4), .dt_ld = h->dt_ld,
        .dt_bias = bm_test_buffer(t, h->dt_bias, di * sizeof(float)),
        .A = bm_test_buffer(t, h->A, di * n * sizeof(float)),
        .bc = bm_test_buffer(t, h->bc, rows * h->bc_ld * sizeof(float) + 4),
        .bc_ld = h->bc_ld, .b_col = h->b_col, .c_col = h->c_col,
        .D = bm_test_buffer(t, h->D, di * sizeof(float)),
        .z = bm_test_buffer(t, h->z, rows * h->z_ld * sizeof(float) + 4), .z_ld = h->z_ld, .z_col = h->z_col,
        .dy = bm_test_buffer(t, h->dy, rows * di * sizeof(float) + 4),
        .du = bm_test_buffer(t, g->du, rows * di * sizeof(float) + 4),
        .ddt = bm_test_buffer(t, g->ddt, rows * di * sizeof(float) + 4),
        .dbc = bm_test_buffer(t, g->dbc, rows * h->dbc_ld * sizeof(float) + 4), .dbc_ld = h->dbc_ld,
        .dz = bm_test_buffer(t, g->dz, rows * h->dz_ld * sizeof(float) + 4), .dz_ld = h->dz_ld,
        .dA = bm_test_buffer(t, g->dA, di * n * sizeof(float)),
        .dD = bm_test_buffer(t, g->dD, di * sizeof(float)),
        .d_dt_bias = bm_test_buffer(t, g->dbias, di * sizeof(float)),
    };
    int st = bm_op_scan_backward_ex(t->rt, &a, cb);
    if (st == 0) st = bm_finish(t->rt);
    if (st == 0) {
        bm_test_read(t, a.du, g->du, rows * di * sizeof(float));
        bm_test_read(t, a.ddt, g->ddt, rows * di * sizeof(float));
        bm_test_read(t, a.dbc, g->dbc, rows * h->dbc_ld * sizeof(float));
        bm_test_read(t, a.dz, g->dz, rows * h->dz_ld * sizeof(float));
        bm_test_read(t, a.dA, g->dA, di * n * sizeof(float));
        bm_test_read(t, a.dD, g->dD, di * sizeof(float));
        bm_test_read(t, a.d_dt_bias, g->dbias, di * sizeof(float));
    }
    cl_mem all[] = {a.u, a.dt, a.dt_bias, a.A, a.bc, a.D, a.z, a.dy, a.du, a.ddt, a.dbc, a.dz, a.dA, a.dD, a.d_dt_bias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bm_release(all[i]);
    return st;
}

/* got - base vs want - base: the increment of an accumulated gradient. */
static void scanb_close_incr(bm_test_ctx *t, const char *what, const float *got, const float *want, const float *base,
                             size_t n)
{
    float *g = bm_test_alloc(n * sizeof(float)), *w = bm_test_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) g[i] = got[i] - base[i], w[i] = want[i] - base[i];
    bm_test_close(t, what, g, w, n, SCANB_TOL);
    free(g), free(w);
}

/* Exactly the pre-filled values in every column of dbc / dz outside the op's views. */
static void scanb_check_untouched(bm_test_ctx *t, const char *what, const scanb_host *h, const scanb_grads *got,
                                  const scanb_grads *before)
{
    size_t rows = (size_t)h->B * h->T, bad = 0;
    for (size_t r = 0; r < rows; r++) {
        for (size_t k = 0; k < h->dbc_ld; k++) {
            int in = (k >= h->b_col && k < h->b_col + h->n) || (k >= h->c_col && k < h->c_col + h->n);
            if (!in && got->dbc[r * h->dbc_ld + k] != before->dbc[r * h->dbc_ld + k]) bad++;
        }
        for (size_t k = 0; k < h->dz_ld; k++) {
            int in = k >= h->z_col && k < h->z_col + (size_t)h->di;
            if (!in && got->dz[r * h->dz_ld + k] != before->dz[r * h->dz_ld + k]) bad++;
        }
    }
    char w[300];
    snprintf(w, sizeof w, "%s: columns outside the dB/dC/dz views untouched (%zu changed)", what, bad);
    bm_test_true(t, bad == 0, w);
}

/* Which kernel bm_op_scan_backward_ex runs for these arguments under the test's form. */
static const char *scanb_form(bm_test_ctx *t, int n, int cb)
{
    return t->rt->scan_bwd_form == BM_FORM_CPU && cb <= 0 && n <= 16 ? "CPU kernel" : "GPU kernel";
}

/* (a) one case, kernel vs reference, every output buffer whole. */
static void scanb_case(bm_test_ctx *t, int B, int T, int di, int n, int cb, float dt_lo, float dt_hi)
{
    scanb_host h;
    scanb_make(t, &h, B, T, di, n, dt_lo, dt_hi);
    scanb_grads before, want, got;
    scanb_grads_make(t, &h, &before, 0);
    scanb_grads_copy(&h, &before, &want);
    scanb_grads_copy(&h, &before, &got);
    scanb_ref(&h, &want);
    char what[180];
    snprintf(what, sizeof what, "scan_bwd (%s) B=%d T=%d di=%d n=%d cb=%d dt=[%g,%g]", scanb_form(t, n, cb), B, T, di,
             n, cb, dt_lo, dt_hi);
    if (bm_test_status(t, scanb_device(t, &h, &got, cb), what)) {
        size_t rows = (size_t)B * T;
        char w[220];
#define SCANB_CMP(field, count)                                                     \
        snprintf(w, sizeof w, "%s " #field, what);                                 \
        bm_test_close(t, w, got.field, want.field, (count), SCANB_TOL)
        SCANB_CMP(du, rows * di);
        SCANB_CMP(ddt, rows * di);
        SCANB_CMP(dbc, rows * h.dbc_ld);
        SCANB_CMP(dz, rows * h.dz_ld);
        SCANB_CMP(dA, (size_t)di * n);
        SCANB_CMP(dD, (size_t)di);
        SCANB_CMP(dbias, (size_t)di);
#undef SCANB_CMP
        snprintf(w, sizeof w, "%s dA increment", what);
        scanb_close_incr(t, w, got.dA, want.dA, before.dA, (size_t)di * n);
        snprintf(w, sizeof w, "%s dD increment", what);
        scanb_close_incr(t, w, got.dD, want.dD, before.dD, (size_t)di);
        snprintf(w, sizeof w, "%s d_dt_bias increment", what);
        scanb_close_incr(t, w, got.dbias, want.dbias, before.dbias, (size_t)di);
        scanb_check_untouched(t, what, &h, &got, &before);
    }
    scanb_grads_free(&before), scanb_grads_free(&want), scanb_grads_free(&got);
    scanb_free(&h);
}

/* Two runs give bit-identical results (no atomics, fixed reduction orders). */
static void scanb_deterministic(bm_test_ctx *t, int B, int T, int di, int n)
{
    scanb_host h;
    scanb_make(t, &h, B, T, di, n, -4.0f, 1.0f);
    scanb_grads before, g1, g2;
    scanb_grads_make(t, &h, &before, 0);
    scanb_grads_copy(&h, &before, &g1);
    scanb_grads_copy(&h, &before, &g2);
    int ok = scanb_device(t, &h, &g1, 0) == 0 && scanb_device(t, &h, &g2, 0) == 0;
    size_t rows = (size_t)B * T;
    ok = ok && !memcmp(g1.du, g2.du, rows * di * 4) && !memcmp(g1.ddt, g2.ddt, rows * di * 4) &&
         !memcmp(g1.dbc, g2.dbc, rows * h.dbc_ld * 4) && !memcmp(g1.dz, g2.dz, rows * h.dz_ld * 4) &&
         !memcmp(g1.dA, g2.dA, (size_t)di * n * 4) && !memcmp(g1.dD, g2.dD, (size_t)di * 4) &&
         !memcmp(g1.dbias, g2.dbias, (size_t)di * 4);
    char w[160];
    snprintf(w, sizeof w, "scan_bwd (%s) B=%d T=%d di=%d n=%d: two runs bit-identical", scanb_form(t, n, 0), B, T,
             di, n);
    bm_test_true(t, ok, w);
    scanb_grads_free(&before), scanb_grads_free(&g1), scanb_grads_free(&g2);
    scanb_free(&h);
}

/* ---- (b) finite differences ---- */

/* Double copies of every input, same layouts as scanb_host. */
typedef struct {
    double *u, *dt, *dt_bias, *A, *bc, *D, *z;
} scanb_dbl;

static double *scanb_to_double(const float *x, size_t n)
{
    double *d = bm_test_alloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static double scanb_dsoftplus_fwd(double x) { return x > 20.0 ? x : log1p(exp(x)); }

/* L = sum_{r, c} y[r, c] * dy[r, c] of the forward from a zero state, in double. */
static double scanb_loss(const scanb_host *h, const scanb_dbl *p)
{
    const int B = h->B, T = h->T, di = h->di, n = h->n;
    double *st = bm_test_alloc((size_t)n * sizeof(double));
    double loss = 0.0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < di; c++) {
            for (int j = 0; j < n; j++) st[j] = 0.0;
            for (int t = 0; t < T; t++) {
                size_t r = (size_t)b * T + t;
                double ut = p->u[r * di + c];
                double dlt = scanb_dsoftplus_fwd(p->dt[r * h->dt_ld + c] + p->dt_bias[c]);
                double s = p->D[c] * ut;
                for (int j = 0; j < n; j++) {
                    st[j] = exp(dlt * p->A[(size_t)c * n + j]) * st[j] + dlt * p->bc[r * h->bc_ld + h->b_col + j] * ut;
                    s += p->bc[r * h->bc_ld + h->c_col + j] * st[j];
                }
                double zt = p->z[r * h->z_ld + h->z_col + c];
                loss += s * zt / (1.0 + exp(-zt)) * h->dy[r * di + c];
            }
        }
    free(st);
    return loss;
}

/* Central differences of scanb_loss for the elements idx[0..cnt) of x (a field of p) against
 * the reference's gradient g at the same indices. The error is relative to max(the tensor's
 * norm, floor): floor is 1e-6 of the whole gradient's norm, as in the golden fixtures' per-tensor
 * criterion, because a central difference of an O(|loss|) function cannot resolve a gradient
 * far below |loss| * 1e-12 / step (past the softplus threshold dA is ~1e-7 while the loss is ~100:
 * the difference quotient itself is then off by ~1e-3 relative, whatever the gradient). */
static void scanb_fd_check(bm_test_ctx *t, const char *what, const scanb_host *h, scanb_dbl *p, double *x,
                           const size_t *idx, size_t cnt, const float *g, double floor)
{
    float *fd = bm_test_alloc(cnt * sizeof(float) + 4), *an = bm_test_alloc(cnt * sizeof(float) + 4);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < cnt; i++) {
        double x0 = x[idx[i]], eps = 1e-4 * fmax(1.0, fabs(x0));
        x[idx[i]] = x0 + eps;
        double lp = scanb_loss(h, p);
        x[idx[i]] = x0 - eps;
        double lm = scanb_loss(h, p);
        x[idx[i]] = x0;
        double d = (lp - lm) / (2.0 * eps);
        fd[i] = (float)d;
        an[i] = g[idx[i]];
        num += (d - an[i]) * (d - an[i]);
        den += d * d;
    }
    double rel = sqrt(num) / fmax(sqrt(den), fmax(floor, 1e-30));
    char w[200];
    snprintf(w, sizeof w, "%s rel=%.2e norm=%.2e", what, rel, sqrt(den));
    bm_test_true(t, rel <= SCANB_FD_TOL && isfinite(rel), w);
    free(fd), free(an);
}

/* (b) the reference against finite differences, every differentiated input. */
static void scanb_fd_case(bm_test_ctx *t, int B, int T, int di, int n, float dt_lo, float dt_hi)
{
    scanb_host h;
    scanb_make(t, &h, B, T, di, n, dt_lo, dt_hi);
    scanb_grads g;
    scanb_grads_make(t, &h, &g, 1);
    scanb_ref(&h, &g);
    size_t rows = (size_t)B * T;
    scanb_dbl p = {
        .u = scanb_to_double(h.u, rows * di), .dt = scanb_to_double(h.dt, rows * h.dt_ld),
        .dt_bias = scanb_to_double(h.dt_bias, di), .A = scanb_to_double(h.A, (size_t)di * n),
        .bc = scanb_to_double(h.bc, rows * h.bc_ld), .D = scanb_to_double(h.D, di),
        .z = scanb_to_double(h.z, rows * h.z_ld),
    };
    size_t maxc = rows * (h.dbc_ld + h.dz_ld + h.dt_ld) + (size_t)di * n + 8;
    size_t *idx = bm_test_alloc(maxc * sizeof(size_t)), *idx2 = bm_test_alloc(maxc * sizeof(size_t));
    size_t cnt;
    char w[160];
    const char *tag = "scan_bwd fd";
    /* the whole gradient's norm, for the per-tensor floor (see scanb_fd_check) */
    double whole = 0;
    const struct { const float *x; size_t n; } parts[] = {
        {g.du, rows * di}, {g.ddt, rows * di}, {g.dbc, rows * h.dbc_ld}, {g.dz, rows * h.dz_ld},
        {g.dA, (size_t)di * n}, {g.dD, (size_t)di}, {g.dbias, (size_t)di}};
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++)
        for (size_t i = 0; i < parts[k].n; i++) whole += (double)parts[k].x[i] * parts[k].x[i];
    const double floor = 1e-6 * sqrt(whole);
    /* u, dt (view), z (view): gradients are dense [rows, di] / dz at z_col of dz_ld */
    for (cnt = 0; cnt < rows * di; cnt++) idx[cnt] = cnt;
    snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d du", tag, B, T, di, n);
    scanb_fd_check(t, w, &h, &p, p.u, idx, cnt, g.du, floor);
    cnt = 0;
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < di; c++) idx[cnt] = r * h.dt_ld + c, idx2[cnt++] = r * di + c;
    {
        /* ddt is dense: gather it in dt's layout */
        float *gd = bm_test_alloc(rows * h.dt_ld * sizeof(float) + 4);
        for (size_t i = 0; i < cnt; i++) gd[idx[i]] = g.ddt[idx2[i]];
        snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d ddt", tag, B, T, di, n);
        scanb_fd_check(t, w, &h, &p, p.dt, idx, cnt, gd, floor);
        free(gd);
    }
    cnt = 0;
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < di; c++) idx[cnt] = r * h.z_ld + h.z_col + c, idx2[cnt++] = r * h.dz_ld + h.z_col + c;
    {
        float *gz = bm_test_alloc(rows * h.z_ld * sizeof(float) + 4);
        for (size_t i = 0; i < cnt; i++) gz[idx[i]] = g.dz[idx2[i]];
        snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d dz", tag, B, T, di, n);
        scanb_fd_check(t, w, &h, &p, p.z, idx, cnt, gz, floor);
        free(gz);
    }
    /* B and C views of bc: gradients in dbc (dbc_ld) */
    {
        float *gb = bm_test_alloc(rows * h.bc_ld * sizeof(float) + 4);
        cnt = 0;
        for (size_t r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) {
                idx[cnt++] = r * h.bc_ld + h.b_col + j;
                gb[r * h.bc_ld + h.b_col + j] = g.dbc[r * h.dbc_ld + h.b_col + j];
            }
        snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d dB", tag, B, T, di, n);
        scanb_fd_check(t, w, &h, &p, p.bc, idx, cnt, gb, floor);
        cnt = 0;
        for (size_t r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) {
                idx[cnt++] = r * h.bc_ld + h.c_col + j;
                gb[r * h.bc_ld + h.c_col + j] = g.dbc[r * h.dbc_ld + h.c_col + j];
            }
        snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d dC", tag, B, T, di, n);
        scanb_fd_check(t, w, &h, &p, p.bc, idx, cnt, gb, floor);
        free(gb);
    }
    for (cnt = 0; cnt < (size_t)di * n; cnt++) idx[cnt] = cnt;
    snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d dA", tag, B, T, di, n);
    scanb_fd_check(t, w, &h, &p, p.A, idx, cnt, g.dA, floor);
    for (cnt = 0; cnt < (size_t)di; cnt++) idx[cnt] = cnt;
    snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d dD", tag, B, T, di, n);
    scanb_fd_check(t, w, &h, &p, p.D, idx, cnt, g.dD, floor);
    snprintf(w, sizeof w, "%s B=%d T=%d di=%d n=%d d_dt_bias", tag, B, T, di, n);
    scanb_fd_check(t, w, &h, &p, p.dt_bias, idx, cnt, g.dbias, floor);
    free(idx), free(idx2);
    free(p.u), free(p.dt), free(p.dt_bias), free(p.A), free(p.bc), free(p.D), free(p.z);
    scanb_grads_free(&g);
    scanb_free(&h);
}

/* Bad arguments are refused with BMOJO_EINVAL, never launched; empty sizes are no-ops. */
static void scanb_bad_args(bm_test_ctx *t)
{
    cl_mem m = bm_test_buffer(t, NULL, 4096);
    bm_scan_bwd_args a = {.B = 1, .T = 4, .di = 8, .n = 4, .u = m, .dt = m, .dt_ld = 8, .dt_bias = m, .A = m,
                          .bc = m, .bc_ld = 8, .b_col = 0, .c_col = 4, .D = m, .z = m, .z_ld = 16, .z_col = 8,
                          .dy = m, .du = m, .ddt = m, .dbc = m, .dbc_ld = 8, .dz = m, .dz_ld = 16, .dA = m, .dD = m,
                          .d_dt_bias = m};
    bm_scan_bwd_args b = a;
    b.n = 0;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == BMOJO_EINVAL, "scan_bwd: n = 0 refused");
    b = a;
    b.T = -1;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == BMOJO_EINVAL, "scan_bwd: T < 0 refused");
    b = a;
    b.dbc_ld = 7;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == BMOJO_EINVAL, "scan_bwd: dbc_ld too small refused");
    b = a;
    b.dz_ld = 15;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == BMOJO_EINVAL, "scan_bwd: dz_ld too small refused");
    b = a;
    b.dt_ld = 7;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == BMOJO_EINVAL, "scan_bwd: dt_ld too small refused");
    b = a;
    b.d_dt_bias = NULL;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == BMOJO_EINVAL, "scan_bwd: NULL d_dt_bias refused");
    b = a;
    b.dy = NULL;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == BMOJO_EINVAL, "scan_bwd: NULL dy refused");
    b = a;
    b.T = 0;
    bm_test_true(t, bm_op_scan_backward(t->rt, &b) == 0, "scan_bwd: T = 0 is a no-op");
    bm_release(m);
}

/* (a) every case with the form the test context holds */
static void scanb_cases(bm_test_ctx *t)
{
    const int L = bm_scan_backward_chunk_len(t->rt), Lc = bm_scan_backward_cpu_chunk_len(t->rt);
    bm_test_true(t, L >= 1 && Lc >= 1, "scan_bwd: chunk lengths readable");
    if (L < 1 || Lc < 1) return;
    scanb_case(t, 1, 1, 1, 1, 0, -4.0f, 1.0f);
    scanb_case(t, 2, 2, 3, 4, 0, -4.0f, 1.0f);
    scanb_case(t, 1, 37, 65, 16, 0, -4.0f, 1.0f);
    scanb_case(t, 2, 37, 3, 1, 0, -4.0f, 1.0f);
    scanb_case(t, 2, 300, 65, 16, 0, -4.0f, 1.0f);
    scanb_case(t, 1, 300, 1, 4, 0, -4.0f, 1.0f);
    scanb_case(t, 2, L, 5, 4, 0, -4.0f, 1.0f);       /* exactly one chunk */
    scanb_case(t, 2, L + 1, 5, 4, 0, -4.0f, 1.0f);   /* one step into a second */
    scanb_case(t, 1, 2 * L - 1, 7, 3, 0, -4.0f, 1.0f);
    /* the CPU form's chunks and 16-channel items: whole, partial and several items */
    scanb_case(t, 2, Lc, 16, 16, 0, -4.0f, 1.0f);
    scanb_case(t, 1, Lc + 1, 17, 5, 0, -4.0f, 1.0f);
    scanb_case(t, 3, 3 * Lc - 1, 33, 15, 0, -4.0f, 1.0f);
    scanb_case(t, 1, 2 * Lc + 3, 48, 2, 0, -4.0f, 1.0f);
    /* softplus past its threshold, and mixed */
    scanb_case(t, 2, 41, 17, 4, 0, 19.0f, 30.0f);
    scanb_case(t, 2, 41, 17, 16, 0, -6.0f, 30.0f);
    /* forced shapes (the GPU form's): 3 channels per group (a padded last block), one channel per
     * group, more channels per group than there are; d_state beyond one warp (and the CPU
     * form's 16 states: the GPU form runs) */
    scanb_case(t, 2, 37, 65, 4, 3, -4.0f, 1.0f);
    scanb_case(t, 2, 23, 6, 1, 1, -4.0f, 1.0f);
    scanb_case(t, 1, 45, 10, 16, 16, -4.0f, 1.0f);
    scanb_case(t, 1, 23, 5, 33, 1, -4.0f, 1.0f);
    scanb_case(t, 2, 19, 9, 33, 0, -4.0f, 1.0f);
    scanb_case(t, 1, 19, 9, 17, 0, -4.0f, 1.0f);
    scanb_deterministic(t, 2, 53, 65, 16);
}

void test_op_scan_backward(bm_test_ctx *t)
{
    /* (a) kernel vs reference, both forms on every device */
    const int saved = t->rt->scan_bwd_form;
    t->rt->scan_bwd_form = BM_FORM_GPU;
    scanb_cases(t);
    t->rt->scan_bwd_form = BM_FORM_CPU;
    scanb_cases(t);
    t->rt->scan_bwd_form = saved;
    /* (b) reference vs finite differences of the double forward */
    scanb_fd_case(t, 2, 5, 3, 4, -4.0f, 1.0f);
    scanb_fd_case(t, 1, 37, 2, 3, -4.0f, 1.0f);
    scanb_fd_case(t, 2, 9, 2, 2, 19.0f, 30.0f);   /* past the softplus threshold */
    scanb_fd_case(t, 1, 11, 3, 1, -6.0f, 30.0f);
    scanb_bad_args(t);
}
