/* op_test.c — helpers for the op tests: xorshift random inputs, buffers, and comparisons that
 * print one line per check. */
#include "op_test.h"

#include "half.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t next_u64(bm_test_ctx *t)
{
    uint64_t x = t->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t->rng = x;
    return x;
}

void bm_test_fill(bm_test_ctx *t, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)((next_u64(t) >> 40) * (1.0 / 16777216.0));
}

uint32_t bm_test_randint(bm_test_ctx *t, uint32_t n) { return (uint32_t)(next_u64(t) % n); }

void *bm_test_alloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test: out of host memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

cl_mem bm_test_buffer(bm_test_ctx *t, const void *host, size_t bytes)
{
    cl_mem m = NULL;
    int st = bm_alloc(t->rt, bytes ? bytes : 4, &m);
    if (st == 0 && host && bytes) st = bm_upload(t->rt, m, 0, host, bytes);
    if (st != 0) {
        fprintf(stderr, "test: buffer of %zu bytes: %s (%s)\n", bytes, bmojo_strerror(st), bmojo_last_error());
        exit(2);
    }
    return m;
}

cl_mem bm_test_weights(bm_test_ctx *t, float *x, size_t n, bm_store store)
{
    if (store == BM_STORE_F32) return bm_test_buffer(t, x, n * sizeof(float));
    uint16_t *h = bm_test_alloc((n ? n : 1) * sizeof *h);
    for (size_t i = 0; i < n; i++) {
        h[i] = bm_half_from_float(x[i], NULL);
        x[i] = bm_half_to_float(h[i]); /* the reference multiplies the stored values */
    }
    cl_mem m = bm_test_buffer(t, h, n * sizeof *h);
    free(h);
    return m;
}

void bm_test_read(bm_test_ctx *t, cl_mem m, void *host, size_t bytes)
{
    int st = bm_download(t->rt, m, 0, host, bytes);
    if (st != 0) {
        fprintf(stderr, "test: read of %zu bytes: %s (%s)\n", bytes, bmojo_strerror(st), bmojo_last_error());
        exit(2);
    }
}

static void count(bm_test_ctx *t, int ok) { ok ? t->passed++ : t->failed++; }

/* ||got - want|| against ||want|| (scale NULL) or ||scale||; one line when failing or verbose. */
static int close_check(bm_test_ctx *t, const char *what, const float *got, const float *want, const float *scale,
                       size_t n, double tol)
{
    double diff2 = 0, ref2 = 0, max_abs = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        const float r = scale ? scale[i] : want[i];
        if (!isfinite(got[i]) || !isfinite(want[i]) || !isfinite(r)) finite = 0;
        double d = (double)got[i] - (double)want[i];
        diff2 += d * d;
        ref2 += (double)r * r;
        if (fabs(d) > max_abs) max_abs = fabs(d);
    }
    double rel = sqrt(diff2) / fmax(sqrt(ref2), 1e-30);
    int ok = finite && rel <= tol;
    if (!ok || t->verbose)
        printf("%s  %-28.28s %s  %s=%.2e max_abs=%.2e n=%zu%s\n", ok ? "ok  " : "FAIL", t->rt->desc.name, what,
               scale ? "rel(scale)" : "rel", rel, max_abs, n, finite ? "" : " (non-finite values)");
    count(t, ok);
    return ok;
}

int bm_test_close(bm_test_ctx *t, const char *what, const float *got, const float *want, size_t n, double tol)
{
    return close_check(t, what, got, want, NULL, n, tol);
}

int bm_test_close_scaled(bm_test_ctx *t, const char *what, const float *got, const float *want, const float *scale,
                         size_t n, double tol)
{
    return close_check(t, what, got, want, scale, n, tol);
}

int bm_test_true(bm_test_ctx *t, int cond, const char *what)
{
    if (!cond || t->verbose) printf("%s  %-28.28s %s\n", cond ? "ok  " : "FAIL", t->rt->desc.name, what);
    count(t, cond != 0);
    return cond != 0;
}

int bm_test_status(bm_test_ctx *t, int status, const char *what)
{
    if (status != 0) {
        printf("FAIL  %-28.28s %s: %s (%s)\n", t->rt->desc.name, what, bmojo_strerror(status), bmojo_last_error());
        t->failed++;
        return 0;
    }
    return 1;
}
