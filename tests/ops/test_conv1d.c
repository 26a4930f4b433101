/* test_conv1d.c — bm_op_conv1d against bm_ref_conv1d: B in {1, 3}, T in {1, 2, 5, 33}, k in
 * {1, 2, 4, 8}, awkward di, x dense or strided (in_proj output layout), bias NULL or not, a
 * nonzero starting state; both the outputs and the updated state are checked, and chunked calls
 * (T = 1 steps and T < k-1) must continue exactly where the previous call stopped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

/* the prefill kernel the cases run with (bm_op_conv1d_variant) */
static int conv_variant = BM_CONV_AUTO;

/* Runs the op and the reference over the same B x T_total inputs in chunks of the given
 * lengths (summing to T_total), comparing outputs and state after every chunk. */
static void conv_case(bm_test_ctx *t, int B, int di, int k, size_t x_ld, int with_bias, const int *chunks, int nchunks)
{
    int T_total = 0;
    for (int i = 0; i < nchunks; i++) T_total += chunks[i];
    size_t sn = (size_t)B * (size_t)di * (size_t)(k - 1);
    float *x_all = bm_test_alloc((size_t)B * (size_t)T_total * x_ld * sizeof(float));
    float *w = bm_test_alloc((size_t)di * (size_t)k * sizeof(float));
    float *bias = bm_test_alloc((size_t)di * sizeof(float));
    float *state = bm_test_alloc(sn * sizeof(float) + sizeof(float));
    float *got_state = bm_test_alloc(sn * sizeof(float) + sizeof(float));
    bm_test_fill(t, x_all, (size_t)B * (size_t)T_total * x_ld, -2.0f, 2.0f);
    bm_test_fill(t, w, (size_t)di * (size_t)k, -1.0f, 1.0f);
    bm_test_fill(t, bias, (size_t)di, -0.5f, 0.5f);
    bm_test_fill(t, state, sn, -2.0f, 2.0f);

    cl_mem dw = bm_test_buffer(t, w, (size_t)di * (size_t)k * sizeof(float));
    cl_mem db = with_bias ? bm_test_buffer(t, bias, (size_t)di * sizeof(float)) : NULL;
    cl_mem dst = sn ? bm_test_buffer(t, state, sn * sizeof(float)) : NULL;
    int t0 = 0;
    for (int ci = 0; ci < nchunks; ci++) {
        int T = chunks[ci];
        size_t xn = (size_t)B * (size_t)T * x_ld, on = (size_t)B * (size_t)T * (size_t)di;
        /* This chunk's inputs, [B*T, x_ld]: rows t0 .. t0+T-1 of every sequence. */
        float *x = bm_test_alloc(xn * sizeof(float));
        for (int b = 0; b < B; b++)
            memcpy(x + (size_t)b * (size_t)T * x_ld, x_all + ((size_t)b * (size_t)T_total + (size_t)t0) * x_ld,
                   (size_t)T * x_ld * sizeof(float));
        float *want = bm_test_alloc(on * sizeof(float)), *got = bm_test_alloc(on * sizeof(float));
        bm_test_fill(t, got, on, 70.0f, 80.0f);
        cl_mem dx = bm_test_buffer(t, x, xn * sizeof(float)), dout = bm_test_buffer(t, got, on * sizeof(float));
        bm_conv_args a = {.B = B, .T = T, .di = di, .k = k, .x = dx, .x_ld = x_ld, .w = dw, .bias = db,
                          .state = dst, .out = dout};
        char what[128];
        snprintf(what, sizeof what, "conv1d B=%d T=%d(+%d) di=%d k=%d ld=%zu%s", B, T, t0, di, k, x_ld,
                 with_bias ? " bias" : "");
        if (bm_test_status(t, bm_op_conv1d_variant(t->rt, &a, conv_variant), what)) {
            bm_ref_conv1d(B, T, di, k, x, x_ld, w, with_bias ? bias : NULL, state, want);
            bm_test_read(t, dout, got, on * sizeof(float));
            bm_test_close(t, what, got, want, on, 1e-6);
            if (sn) {
                bm_test_read(t, dst, got_state, sn * sizeof(float));
                char ws[140];
                snprintf(ws, sizeof ws, "%s state", what);
                bm_test_true(t, memcmp(got_state, state, sn * sizeof(float)) == 0, ws);
            }
        }
        bm_release(dx);
        bm_release(dout);
        free(x);
        free(want);
        free(got);
        t0 += T;
    }
    bm_release(dw);
    bm_release(db);
    bm_release(dst);
    free(x_all);
    free(w);
    free(bias);
    free(state);
    free(got_state);
}

/* The reference itself: running it in chunks must equal one call over the whole sequence
 * (checks the state hand-over, T < k-1 included, independently of the kernel). */
static void conv_ref_chunking(bm_test_ctx *t, int k)
{
    enum { B = 2, DI = 3, TT = 9 };
    static const int chunks[] = {1, 1, 2, 5};
    float x[B * TT * DI], w[DI * 8], bias[DI], s1[B * DI * 7], s2[B * DI * 7], o1[B * TT * DI], o2[B * TT * DI];
    int km1 = k - 1;
    bm_test_fill(t, x, sizeof x / sizeof x[0], -1.0f, 1.0f);
    bm_test_fill(t, w, sizeof w / sizeof w[0], -1.0f, 1.0f);
    bm_test_fill(t, bias, DI, -1.0f, 1.0f);
    bm_test_fill(t, s1, sizeof s1 / sizeof s1[0], -1.0f, 1.0f);
    memcpy(s2, s1, sizeof s1);
    bm_ref_conv1d(B, TT, DI, k, x, DI, w, bias, s1, o1);
    int t0 = 0;
    for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
        int T = chunks[ci];
        float xc[B * TT * DI], oc[B * TT * DI];
        for (int b = 0; b < B; b++) {
            memcpy(xc + b * T * DI, x + (b * TT + t0) * DI, (size_t)T * DI * sizeof(float));
        }
        bm_ref_conv1d(B, T, DI, k, xc, DI, w, bias, s2, oc);
        for (int b = 0; b < B; b++) memcpy(o2 + (b * TT + t0) * DI, oc + b * T * DI, (size_t)T * DI * sizeof(float));
        t0 += T;
    }
    char what[64];
    snprintf(what, sizeof what, "conv1d reference chunked == whole, k=%d", k);
    bm_test_true(t, memcmp(o1, o2, sizeof o1) == 0 && memcmp(s1, s2, (size_t)B * DI * (size_t)km1 * sizeof(float)) == 0,
                 what);
    /* The state is the last k-1 inputs of each channel (here T >= k-1). */
    int ok = 1;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < DI; c++)
            for (int i = 0; i < km1; i++)
                ok &= s1[(b * DI + c) * km1 + i] == x[(b * TT + TT - km1 + i) * DI + c];
    snprintf(what, sizeof what, "conv1d reference state = last k-1 inputs, k=%d", k);
    bm_test_true(t, ok, what);
}

static void conv_cases(bm_test_ctx *t)
{
    static const int Bs[] = {1, 3};
    static const int Ts[] = {1, 2, 5, 33};
    static const int ks[] = {1, 2, 4};
    static const int dis[] = {1, 7, 100};
    int n = 0;
    for (size_t ib = 0; ib < 2; ib++)
        for (size_t it = 0; it < 4; it++)
            for (size_t ik = 0; ik < 3; ik++)
                for (size_t id = 0; id < 3; id++, n++) {
                    int di = dis[id];
                    /* Alternate dense x and the in_proj layout [x | z] with padding. */
                    size_t x_ld = n % 2 ? (size_t)di : 2 * (size_t)di + 3;
                    conv_case(t, Bs[ib], di, ks[ik], x_ld, (n / 2) % 2, &Ts[it], 1);
                }
    /* Decoding-like continuation: T = 1 steps, T < k-1 chunks, then a longer chunk. */
    static const int steps[] = {1, 1, 2, 1, 5, 33};
    for (size_t ik = 0; ik < 3; ik++) {
        conv_case(t, 3, 257, ks[ik], 2 * 257, 1, steps, 6);
        conv_case(t, 1, 64, ks[ik], 64, 0, steps, 6);
    }
    conv_case(t, 2, 37, 8, 40, 1, steps, 6); /* k = 8: several steps fit in one state */
    conv_case(t, 2, 37, 9, 40, 1, steps, 6); /* k = 9: wider than the time-tiled kernel takes */
    for (int k = 1; k <= 8; k *= 2) conv_ref_chunking(t, k);
    /* Bad shapes are refused with BMOJO_EINVAL, never launched. */
    bm_conv_args bad = {.B = 1, .T = 1, .di = 4, .k = 0, .x_ld = 4};
    bm_test_true(t, bm_op_conv1d(t->rt, &bad) == BMOJO_EINVAL, "conv1d k=0 refused");
    bad.k = 4;
    bm_test_true(t, bm_op_conv1d(t->rt, &bad) == BMOJO_EINVAL, "conv1d NULL buffers refused");
}

void test_op_conv1d(bm_test_ctx *t)
{
    /* every case with each prefill kernel: the automatic one, then each forced */
    for (conv_variant = BM_CONV_AUTO; conv_variant <= BM_CONV_CPU; conv_variant++) conv_cases(t);
    conv_variant = BM_CONV_AUTO;
}
