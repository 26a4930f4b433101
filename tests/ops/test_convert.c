/* test_convert.c — bm_op_f16_narrow / bm_op_f16_widen (cl/convert.cl) against the host's
 * bm_half_from_float / bm_half_to_float, bit for bit: values across f16's range (normals,
 * subnormals, values that round to the largest finite half, exact ties), awkward counts (1, odd,
 * not a multiple of the work-group), a source offset; a value that rounds to infinity is refused
 * naming the buffer. Also the host conversions themselves at their edges. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "op_test.h"
#include "ops.h"

static void host_edges(bm_test_ctx *t)
{
    int ov = 0;
    bm_test_true(t, bm_half_from_float(65504.0f, &ov) == 0x7BFF && !ov, "host f16: 65504 is the largest finite half");
    bm_test_true(t, bm_half_from_float(65519.0f, &ov) == 0x7BFF && !ov, "host f16: 65519 rounds down to 65504");
    bm_test_true(t, bm_half_from_float(65520.0f, &ov) == 0x7C00 && ov, "host f16: 65520 overflows to infinity");
    ov = 0;
    bm_test_true(t, bm_half_from_float(-1e30f, &ov) == 0xFC00 && ov, "host f16: -1e30 overflows to -infinity");
    bm_test_true(t, bm_half_from_float(1.0f + 1.0f / 2048, NULL) == 0x3C00, "host f16: a tie rounds to even (down)");
    bm_test_true(t, bm_half_from_float(1.0f + 3.0f / 2048, NULL) == 0x3C02, "host f16: a tie rounds to even (up)");
    bm_test_true(t, bm_half_from_float(ldexpf(1.0f, -24), NULL) == 0x0001, "host f16: 2^-24 is the smallest subnormal");
    bm_test_true(t, bm_half_from_float(ldexpf(1.0f, -26), NULL) == 0x0000, "host f16: 2^-26 rounds to zero");
    bm_test_true(t, bm_half_from_float(ldexpf(1023.5f, -24), NULL) == 0x0400,
                 "host f16: the largest subnormal's tie rounds up to the smallest normal");
    int exact = 1;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue; /* NaN payloads */
        if (bm_half_from_float(bm_half_to_float((uint16_t)h), NULL) != h) exact = 0;
    }
    bm_test_true(t, exact, "host f16: every finite half and infinity round-trips through fp32");
}

static void device_case(bm_test_ctx *t, size_t n, size_t off)
{
    float *x = bm_test_alloc((off + n) * sizeof(float)), *back = bm_test_alloc(n * sizeof(float));
    float *want = bm_test_alloc(n * sizeof(float));
    uint16_t *h = bm_test_alloc(n * 2), *hw = bm_test_alloc(n * 2);
    bm_test_fill(t, x, off + n, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) { /* spread over the range: big, subnormal, ties, the edge */
        float *v = &x[off + i];
        switch (i % 6) {
        case 1: *v *= 60000.0f; break;
        case 2: *v = ldexpf(*v, -20); break;
        case 3: *v = 1.0f + (float)(2 * (i % 7) + 1) / 2048; break;
        case 4: *v = (i & 8) ? 65519.0f : -65504.0f; break;
        default: break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        hw[i] = bm_half_from_float(x[off + i], NULL);
        want[i] = bm_half_to_float(hw[i]);
    }
    cl_mem dx = bm_test_buffer(t, x, (off + n) * sizeof(float)), dh = bm_test_buffer(t, NULL, n * 2);
    cl_mem dy = bm_test_buffer(t, NULL, (off + n) * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "f16 narrow n=%zu off=%zu", n, off);
    if (bm_test_status(t, bm_op_f16_narrow(t->rt, dx, off, dh, n, "test values"), what)) {
        bm_test_read(t, dh, h, n * 2);
        bm_test_true(t, !memcmp(h, hw, n * 2), what);
        /* widen from an offset: the halves uploaded after `off` of them */
        uint16_t *pad = bm_test_alloc((off + n) * 2);
        memset(pad, 0xFF, off * 2);
        memcpy(pad + off, hw, n * 2);
        cl_mem dp = bm_test_buffer(t, pad, (off + n) * 2);
        snprintf(what, sizeof what, "f16 widen n=%zu off=%zu", n, off);
        if (bm_test_status(t, bm_op_f16_widen(t->rt, dp, off, dy, n), what)) {
            bm_test_read(t, dy, back, n * sizeof(float));
            bm_test_true(t, !memcmp(back, want, n * sizeof(float)), what);
        }
        bm_release(dp);
        free(pad);
    }
    bm_release(dx), bm_release(dh), bm_release(dy);
    free(x), free(back), free(want), free(h), free(hw);
}

void test_op_convert(bm_test_ctx *t)
{
    host_edges(t);
    static const size_t ns[] = {1, 7, 255, 1000, 4099};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) device_case(t, ns[i], i % 2 ? 3 : 0);
    /* a value that does not fit: refused, naming what was narrowed */
    float bad[5] = {1.0f, 2.0f, 70000.0f, -3.0f, 0.5f};
    cl_mem dx = bm_test_buffer(t, bad, sizeof bad), dh = bm_test_buffer(t, NULL, 10);
    int st = bm_op_f16_narrow(t->rt, dx, 0, dh, 5, "the test's weights");
    bm_test_true(t, st == BMOJO_ETENSOR && strstr(bmojo_last_error(), "the test's weights") &&
                        strstr(bmojo_last_error(), "65504"),
                 "f16 narrow of 70000 -> BMOJO_ETENSOR naming the buffer and the limit");
    bm_release(dx), bm_release(dh);
}
