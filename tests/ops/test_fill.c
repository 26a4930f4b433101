/* test_fill.c — bm_fill_zero and the zero fill of bm_alloc (runtime.c): awkward offsets and sizes
 * (1 byte, odd, each pattern width) of a buffer preset to a non-zero byte, every byte checked
 * inside and outside the range; then one large buffer filled whole, across the pieces the fill is
 * split into (BM_FILL_PIECE_BYTES): on GPUs as large as the device allows up to 9 GiB (one NVIDIA
 * driver 580 fill of 8 GiB or more broke the queue), elsewhere 1 GiB + 6 bytes; windows at its
 * ends and at every piece boundary are preset, filled and read back, and the queue must finish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"

#define PRESET 0xAB

static void small_case(bm_test_ctx *t, size_t total, size_t off, size_t n)
{
    unsigned char *h = bm_test_alloc(total), *got = bm_test_alloc(total);
    memset(h, PRESET, total);
    cl_mem m = bm_test_buffer(t, h, total);
    char what[128];
    snprintf(what, sizeof what, "fill_zero total=%zu off=%zu n=%zu", total, off, n);
    if (bm_test_status(t, bm_fill_zero(t->rt, m, off, n), what)) {
        bm_test_read(t, m, got, total);
        size_t bad = 0;
        for (size_t i = 0; i < total; i++) bad += got[i] != (i >= off && i < off + n ? 0 : PRESET);
        char msg[256];
        snprintf(msg, sizeof msg, "%s: zeros inside, the rest untouched (%zu bytes wrong)", what, bad);
        bm_test_true(t, bad == 0, msg);
    }
    bm_release(m);
    free(h);
    free(got);
}

/* Presets a window of `len` bytes at `at`, the caller fills, check_window reads it back. */
static int preset_window(bm_test_ctx *t, cl_mem m, size_t at, size_t len, unsigned char *buf)
{
    memset(buf, PRESET, len);
    return bm_test_status(t, bm_upload(t->rt, m, at, buf, len), "large fill: preset a window");
}

static size_t window_nonzero(bm_test_ctx *t, cl_mem m, size_t at, size_t len, unsigned char *buf)
{
    if (!bm_test_status(t, bm_download(t->rt, m, at, buf, len), "large fill: read a window")) return len;
    size_t bad = 0;
    for (size_t i = 0; i < len; i++) bad += buf[i] != 0;
    return bad;
}

static void large_case(bm_test_ctx *t)
{
    const bm_device_limits *lim = &t->rt->lim;
    size_t bytes = ((size_t)1 << 30) + 6;
    if (lim->is_gpu) {
        bytes = (size_t)9 << 30;
        if (lim->max_alloc && bytes > lim->max_alloc) bytes = (size_t)lim->max_alloc;
        if (lim->global_mem && bytes > lim->global_mem / 2) bytes = (size_t)(lim->global_mem / 2) & ~(size_t)3;
    }
    cl_mem m = NULL;
    char what[128];
    snprintf(what, sizeof what, "large fill: bm_alloc of %zu bytes (%.2f GiB)", bytes, (double)bytes / 1073741824.0);
    if (!bm_test_status(t, bm_alloc(t->rt, bytes, &m), what)) return;
    enum { W = 4096 };
    unsigned char *buf = bm_test_alloc(W);
    /* windows: both ends and around every piece boundary */
    size_t starts[64], nw = 0;
    starts[nw++] = 0;
    for (size_t b = BM_FILL_PIECE_BYTES; b < bytes && nw < 62; b += BM_FILL_PIECE_BYTES)
        starts[nw++] = b + W / 2 <= bytes ? b - W / 2 + 1 : bytes - W; /* odd: not aligned to the pattern */
    starts[nw++] = bytes - W;
    int ok = 1;
    for (size_t i = 0; i < nw && ok; i++) ok = preset_window(t, m, starts[i], W, buf);
    if (ok) {
        snprintf(what, sizeof what, "large fill: bm_fill_zero of all %zu bytes", bytes);
        ok = bm_test_status(t, bm_fill_zero(t->rt, m, 0, bytes), what);
    }
    if (ok) ok = bm_test_status(t, bm_finish(t->rt), "large fill: the queue finishes after the fill");
    if (ok) {
        size_t bad = 0;
        for (size_t i = 0; i < nw; i++) bad += window_nonzero(t, m, starts[i], W, buf);
        snprintf(what, sizeof what, "large fill: %zu windows of %d bytes read back zero (%zu bytes wrong)", nw, W, bad);
        bm_test_true(t, bad == 0, what);
    }
    free(buf);
    bm_release(m);
}

void test_op_fill(bm_test_ctx *t)
{
    static const size_t cases[][3] = {{1, 0, 1},  {7, 3, 1},   {8, 1, 6},      {8, 2, 6},     {16, 4, 8},
                                      {1000, 0, 1000}, {1001, 5, 990}, {4099, 2, 4094}, {4099, 3, 4093}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) small_case(t, cases[i][0], cases[i][1], cases[i][2]);
    large_case(t);
}
