/* test_util.h — small helpers for the model-level tests: counting checks, comparing logits,
 * reading reference tensors, opening every device. Header-only (each test is one program). */
#ifndef BM_TEST_UTIL_H
#define BM_TEST_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmojo.h"
#include "runtime.h"
#include "safetensors.h"

static int tu_passed, tu_failed;

static int tu_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tu_check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s  ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    ok ? tu_passed++ : tu_failed++;
    fflush(stdout);
    return ok;
}

static int tu_status(int st, const char *what)
{
    if (st == 0) return 1;
    tu_check(0, "%s: %s (%s)", what, bmojo_strerror(st), bmojo_last_error());
    return 0;
}

/* ||a - b|| / ||b|| */
static double tu_rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d) / fmax(sqrt(r), 1e-30);
}

/* Copies a tensor (F32 or I32) out of a safetensors file; NULL on failure. */
__attribute__((unused)) static void *tu_read_tensor(const char *path, const char *name, int64_t *shape, int *ndim)
{
    bm_st_file f;
    if (bm_st_open(path, &f) != 0) {
        printf("cannot open %s: %s\n", path, bmojo_last_error());
        return NULL;
    }
    const bm_st_tensor *t = bm_st_find(&f, name);
    void *out = NULL;
    if (t) {
        size_t bytes = t->end - t->begin;
        out = malloc(bytes ? bytes : 1);
        if (out) memcpy(out, bm_st_data(&f, t), bytes);
        if (ndim) *ndim = t->ndim;
        for (int i = 0; shape && i < t->ndim; i++) shape[i] = t->shape[i];
    } else
        printf("%s has no tensor %s\n", path, name);
    bm_st_close(&f);
    return out;
}

static const char *tu_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Every device buffer made through bm_alloc has been released (call after freeing everything). */
__attribute__((unused)) static void tu_check_no_leaked_buffers(void)
{
    long n = bm_live_buffers();
    tu_check(n == 0, "every device buffer was released (%ld still live)", n);
}

static int tu_finish(void)
{
    printf("%d passed, %d failed\n", tu_passed, tu_failed);
    return tu_failed == 0 && tu_passed > 0 ? 0 : 1;
}

#endif
