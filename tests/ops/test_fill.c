/* test_fill.c — bm_fill_zero and the zero fill of bm_alloc (runtime.c): awkward offsets and sizes
 * (1 byte, odd, each pattern width) of a buffer preset to a non-zero byte, every byte checked
 * inside and outside the range; then one large buffer filled whole, across the pieces the fill is
 * split into (BM_FILL_PIECE_BYTES): on GPUs as large as the device allows up to 9 GiB (one NVIDIA
 * driver 580 fill ending past 8 GiB broke the queue), elsewhere 1 GiB + 1 MiB + 6 bytes: filled
 * whole, then through a sub-buffer at the base alignment (the training arena's case); windows at
 * the ends and at every piece boundary are preset, filled and read back, and the queue must finish. */
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

enum { W = 4096 };

/* Presets windows of W bytes of m at starts[], fills [off, off + n) of target (m itself or a
 * sub-buffer of m at origin `origin`), waits, and checks every window byte: zero inside the
 * filled range, the preset outside. */
static void fill_windows(bm_test_ctx *t, const char *what, cl_mem m, cl_mem target, size_t origin, size_t off, size_t n,
                         const size_t *starts, size_t nw)
{
    unsigned char *buf = bm_test_alloc(W);
    char msg[256];
    int ok = 1;
    for (size_t i = 0; i < nw && ok; i++) {
        memset(buf, PRESET, W);
        ok = bm_test_status(t, bm_upload(t->rt, m, starts[i], buf, W), "large fill: preset a window");
    }
    snprintf(msg, sizeof msg, "%s: bm_fill_zero of %zu bytes at %zu", what, n, off);
    if (ok) ok = bm_test_status(t, bm_fill_zero(t->rt, target, off, n), msg);
    if (ok) ok = bm_test_status(t, bm_finish(t->rt), "large fill: the queue finishes after the fill");
    size_t bad = 0;
    for (size_t i = 0; i < nw && ok; i++) {
        ok = bm_test_status(t, bm_download(t->rt, m, starts[i], buf, W), "large fill: read a window");
        for (size_t j = 0; j < W && ok; j++) {
            size_t at = starts[i] + j;
            bad += buf[j] != (at >= origin + off && at < origin + off + n ? 0 : PRESET);
        }
    }
    if (ok) {
        snprintf(msg, sizeof msg, "%s: %zu windows of %d bytes zero inside the range, untouched outside (%zu wrong)",
                 what, nw, W, bad);
        bm_test_true(t, bad == 0, msg);
    }
    free(buf);
}

static void large_case(bm_test_ctx *t)
{
    const bm_device_limits *lim = &t->rt->lim;
    size_t bytes = ((size_t)1 << 30) + ((size_t)1 << 20) + 6; /* the sub-buffer's range too ends past a piece */
    if (lim->is_gpu) {
        bytes = (size_t)9 << 30;
        if (lim->max_alloc && bytes > lim->max_alloc) bytes = (size_t)lim->max_alloc;
        if (lim->global_mem && bytes > lim->global_mem / 2) bytes = (size_t)(lim->global_mem / 2) & ~(size_t)3;
    }
    cl_mem m = NULL;
    char what[128];
    snprintf(what, sizeof what, "large fill: bm_alloc of %zu bytes (%.2f GiB)", bytes, (double)bytes / 1073741824.0);
    if (!bm_test_status(t, bm_alloc(t->rt, bytes, &m), what)) return;
    /* windows: both ends and around every piece boundary (odd: not aligned to the pattern) */
    size_t starts[64], nw = 0;
    starts[nw++] = 0;
    for (size_t b = BM_FILL_PIECE_BYTES; b < bytes && nw < 62; b += BM_FILL_PIECE_BYTES)
        starts[nw++] = b + W / 2 <= bytes ? b - W / 2 + 1 : bytes - W;
    starts[nw++] = bytes - W;
    fill_windows(t, "large fill, whole buffer", m, m, 0, 0, bytes, starts, nw);
    /* a sub-buffer (the arena's case): its range starts 3 bytes in and ends 5 bytes short of its
     * end; the parent's bytes around it stay */
    size_t align = lim->base_align ? lim->base_align : 256, sub_bytes = bytes - 2 * align;
    cl_mem sub = NULL;
    if (bm_test_status(t, bm_sub_buffer(t->rt, m, align, sub_bytes, &sub), "large fill: a sub-buffer")) {
        starts[0] = align > W / 2 ? align - W / 2 : 0; /* the sub-buffer's start */
        fill_windows(t, "large fill, sub-buffer", m, sub, align, 3, sub_bytes - 8, starts, nw);
    }
    bm_release(sub);
    bm_release(m);
}

void test_op_fill(bm_test_ctx *t)
{
    static const size_t cases[][3] = {{1, 0, 1},  {7, 3, 1},   {8, 1, 6},      {8, 2, 6},     {16, 4, 8},
                                      {1000, 0, 1000}, {1001, 5, 990}, {4099, 2, 4094}, {4099, 3, 4093}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) small_case(t, cases[i][0], cases[i][1], cases[i][2]);
    large_case(t);
}
