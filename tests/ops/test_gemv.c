/* test_gemv.c — the skinny GEMM (bm_op_gemv) against bm_ref_gemm: M from 1 to 19 (block splits
 * at 8), N not a multiple of the 4 rows per work-group, K of 1 and odd sizes, padded leading
 * dimensions, element offsets, beta 0 (C holds NaN and must not be read) and beta 1; and its
 * fused input transforms (bm_op_gemv_in) against bm_ref_rmsnorm / bm_ref_swiglu + bm_ref_gemm.
 * Every case twice: W fp32, and W stored as f16 (the _w16 kernels of --weights f16; the reference
 * multiplies the rounded W in fp32, so the tolerance is the fp32 one). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

typedef struct {
    size_t M, N, K, pad, off;
    float beta;
} gemv_case;

static void test_transforms(bm_test_ctx *t, bm_store store)
{
    const size_t shapes[][3] = {{1, 1, 1}, {1, 37, 768}, {3, 130, 257}, {8, 64, 64}, {11, 9, 100}, {1, 1280, 64},
                                {2, 17, 4108}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        size_t M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
        for (int mode = BM_GEMV_RMSNORM; mode <= BM_GEMV_SWIGLU; mode++)
        for (int aligned = 0; aligned < 2; aligned++) { /* aligned: the float4 kernel can take it */
            size_t lda = mode == BM_GEMV_SWIGLU ? 2 * K + (aligned ? 0 : 3) : K + (aligned ? 0 : 1);
            size_t off = aligned ? 4 : 2, na = off + M * lda;
            float *A = bm_test_alloc(na * 4), *nw = bm_test_alloc(K * 4), *W = bm_test_alloc(N * K * 4);
            float *Ain = bm_test_alloc(M * K * 4), *want = bm_test_alloc(M * N * 4), *got = bm_test_alloc(M * N * 4);
            bm_test_fill(t, A, na, -2, 2);
            bm_test_fill(t, nw, K, 0.5f, 1.5f);
            bm_test_fill(t, W, N * K, -1, 1);
            bm_wmat dW = {bm_test_weights(t, W, N * K, store), store};
            if (mode == BM_GEMV_RMSNORM) bm_ref_rmsnorm(A + off, lda, 0, nw, Ain, K, 0, (int)M, (int)K, 1e-5f);
            else bm_ref_swiglu(A + off, lda, 0, K, Ain, (int)M, (int)K);
            bm_ref_gemm(M, N, K, Ain, K, W, K, 0.0f, want, N);
            cl_mem dA = bm_test_buffer(t, A, na * 4), dn = bm_test_buffer(t, nw, K * 4);
            cl_mem dC = bm_test_buffer(t, NULL, M * N * 4);
            bm_gemv_input in = {mode, dA, off, lda, dn, 1e-5f, K};
            char what[128];
            snprintf(what, sizeof what, "gemv%s%s %s M=%zu N=%zu K=%zu%s", t->rt->gemv_variant == BM_GEMV_VARIANT_VEC4 ? "4" : "",
                     store == BM_STORE_F16 ? " f16-W" : "", mode == BM_GEMV_RMSNORM ? "rmsnorm(A)" : "swiglu(A)", M, N, K,
                     aligned ? " aligned" : "");
            if (bm_test_status(t, bm_op_gemv_in(t->rt, &in, M, N, K, dW, 0, K, 0.0f, dC, 0, N), what)) {
                bm_test_read(t, dC, got, M * N * 4);
                bm_test_close(t, what, got, want, M * N, 1e-5);
            }
            bm_release(dA), bm_release(dn), bm_release(dW.buf), bm_release(dC);
            free(A), free(nw), free(W), free(Ain), free(want), free(got);
        }
    }
    /* a bad transform is refused */
    bm_gemv_input bad = {BM_GEMV_RMSNORM, NULL, 0, 4, NULL, 1e-5f, 0};
    cl_mem x = bm_test_buffer(t, NULL, 64);
    bad.A = x;
    bm_test_true(t, bm_op_gemv_in(t->rt, &bad, 1, 4, 4, bm_wf32(x), 0, 4, 0.0f, x, 0, 4) == BMOJO_EINVAL,
                 "gemv: rmsnorm transform without a weight is refused");
    bm_release(x);
}

static void test_plain(bm_test_ctx *t, bm_store store);

/* bm_op_gemv_split: columns before the split into C, the rest into C2, both with padded leading
 * dimensions and offsets, against one bm_ref_gemm; the split at 1, mid-block and at N-1. */
static void test_split(bm_test_ctx *t, bm_store store)
{
    const size_t cases[][4] = {{1, 2, 4, 1}, {1, 1280, 1536, 768}, {3, 37, 8, 20}, {8, 100, 64, 99}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t M = cases[c][0], N = cases[c][1], K = cases[c][2], ns = cases[c][3];
        const size_t ldc = ns + 3, ldc2 = N - ns + 5, off = 4, off2 = 8;
        float *A = bm_test_alloc(M * K * 4), *W = bm_test_alloc(N * K * 4), *want = bm_test_alloc(M * N * 4);
        float *got = bm_test_alloc((off + M * ldc + off2 + M * ldc2) * 4), *wa = bm_test_alloc(M * ns * 4);
        float *wb = bm_test_alloc(M * (N - ns) * 4), *ga = bm_test_alloc(M * ns * 4), *gb = bm_test_alloc(M * (N - ns) * 4);
        bm_test_fill(t, A, M * K, -1, 1);
        bm_test_fill(t, W, N * K, -1, 1);
        bm_wmat dW = {bm_test_weights(t, W, N * K, store), store};
        bm_ref_gemm(M, N, K, A, K, W, K, 0.0f, want, N);
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < N; n++) {
                if (n < ns) wa[m * ns + n] = want[m * N + n];
                else wb[m * (N - ns) + n - ns] = want[m * N + n];
            }
        cl_mem dA = bm_test_buffer(t, A, M * K * 4);
        cl_mem dC = bm_test_buffer(t, NULL, (off + M * ldc) * 4), dC2 = bm_test_buffer(t, NULL, (off2 + M * ldc2) * 4);
        bm_gemv_input in = {BM_GEMV_PLAIN, dA, 0, K, NULL, 0.0f, 0};
        char what[96];
        snprintf(what, sizeof what, "gemv split%s M=%zu N=%zu K=%zu at %zu", store == BM_STORE_F16 ? " f16-W" : "", M,
                 N, K, ns);
        if (!bm_op_gemv_fused_ok(t->rt, &in, M, K, 0, K))
            bm_test_true(t, t->rt->gemv_variant == BM_GEMV_VARIANT_SCALAR, "gemv split: refused only for the scalar kernel");
        else if (bm_test_status(t, bm_op_gemv_split(t->rt, &in, M, N, K, dW, 0, K, dC, off, ldc, ns, dC2, off2, ldc2), what)) {
            bm_test_read(t, dC, got, (off + M * ldc) * 4);
            for (size_t m = 0; m < M; m++) memcpy(ga + m * ns, got + off + m * ldc, ns * 4);
            bm_test_read(t, dC2, got, (off2 + M * ldc2) * 4);
            for (size_t m = 0; m < M; m++) memcpy(gb + m * (N - ns), got + off2 + m * ldc2, (N - ns) * 4);
            bm_test_close(t, what, ga, wa, M * ns, 1e-5);
            bm_test_close(t, "  second output", gb, wb, M * (N - ns), 1e-5);
        }
        bm_release(dA), bm_release(dW.buf), bm_release(dC), bm_release(dC2);
        free(A), free(W), free(want), free(got), free(wa), free(wb), free(ga), free(gb);
    }
}

/* bm_op_gemv_in_conv: the RMSNorm-input GEMV whose first di output columns also go through the
 * conv1d step (bm_ref_conv1d with T = 1): C, u and the advanced state, two steps in a row; conv
 * widths 1 (no state), 2 and 4, with and without bias, di not a multiple of the 8 rows per group,
 * di == N, B up to 8. */
static void test_conv_epilogue(bm_test_ctx *t, bm_store store)
{
    const int cases[][5] = {{1, 1, 4, 4, 1}, {1, 37, 100, 8, 4}, {3, 130, 300, 64, 2}, {8, 24, 24, 12, 1}, {2, 1536, 3072, 768, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        const size_t M = (size_t)cases[c][0], di = (size_t)cases[c][1], N = (size_t)cases[c][2], K = (size_t)cases[c][3];
        const int k = cases[c][4];
        const size_t km1 = (size_t)k - 1, ns = M * di * (km1 ? km1 : 1);
        float *A = bm_test_alloc(M * K * 4), *nw = bm_test_alloc(K * 4), *W = bm_test_alloc(N * K * 4);
        float *cw = bm_test_alloc(di * k * 4), *cb = bm_test_alloc(di * 4), *cs = bm_test_alloc(ns * 4);
        float *Ain = bm_test_alloc(M * K * 4), *want = bm_test_alloc(M * N * 4), *u = bm_test_alloc(M * di * 4);
        float *got = bm_test_alloc((M * N + ns) * 4);
        bm_test_fill(t, nw, K, 0.5f, 1.5f);
        bm_test_fill(t, W, N * K, -1, 1);
        bm_test_fill(t, cw, di * k, -1, 1);
        bm_test_fill(t, cb, di, -1, 1);
        bm_test_fill(t, cs, ns, -2, 2);
        cl_mem dA = bm_test_buffer(t, NULL, M * K * 4), dn = bm_test_buffer(t, nw, K * 4);
        bm_wmat dW = {bm_test_weights(t, W, N * K, store), store};
        cl_mem dC = bm_test_buffer(t, NULL, M * N * 4), dcw = bm_test_buffer(t, cw, di * k * 4);
        cl_mem dcb = bm_test_buffer(t, cb, di * 4), dcs = bm_test_buffer(t, cs, ns * 4), du = bm_test_buffer(t, NULL, M * di * 4);
        bm_gemv_input in = {BM_GEMV_RMSNORM, dA, 0, K, dn, 1e-5f, 0};
        bm_gemv_conv conv = {(int)di, k, dcw, with_bias ? dcb : NULL, km1 ? dcs : NULL, du};
        if (!bm_op_gemv_fused_ok(t->rt, &in, M, K, 0, K)) {
            bm_test_true(t, t->rt->gemv_variant == BM_GEMV_VARIANT_SCALAR || K % 4 != 0,
                         "gemv conv: refused only for the scalar kernel or unaligned K");
        } else
            for (int step = 0; step < 2; step++) {
                bm_test_fill(t, A, M * K, -2, 2);
                int st = bm_upload(t->rt, dA, 0, A, M * K * 4);
                bm_ref_rmsnorm(A, K, 0, nw, Ain, K, 0, (int)M, (int)K, 1e-5f);
                bm_ref_gemm(M, N, K, Ain, K, W, K, 0.0f, want, N);
                bm_ref_conv1d((int)M, 1, (int)di, k, want, N, cw, with_bias ? cb : NULL, km1 ? cs : NULL, u);
                char what[128];
                snprintf(what, sizeof what, "gemv conv%s M=%zu di=%zu N=%zu K=%zu k=%d%s step %d",
                         store == BM_STORE_F16 ? " f16-W" : "", M, di, N, K, k, with_bias ? " bias" : "", step);
                if (!bm_test_status(t, st ? st : bm_op_gemv_in_conv(t->rt, &in, M, N, K, dW, 0, K, dC, 0, N, &conv), what))
                    break;
                bm_test_read(t, dC, got, M * N * 4);
                bm_test_close(t, what, got, want, M * N, 1e-5);
                bm_test_read(t, du, got, M * di * 4);
                bm_test_close(t, "  u", got, u, M * di, 1e-5);
                if (km1) {
                    bm_test_read(t, dcs, got, ns * 4);
                    bm_test_close(t, "  conv state", got, cs, ns, 1e-5);
                }
            }
        cl_mem bufs[] = {dA, dn, dW.buf, dC, dcw, dcb, dcs, du};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) bm_release(bufs[i]);
        free(A), free(nw), free(W), free(cw), free(cb), free(cs), free(Ain), free(want), free(u), free(got);
    }
}

/* Both kernels (scalar and float4) on every case, whatever the device would pick by default. */
void test_op_gemv(bm_test_ctx *t)
{
    const int saved = t->rt->gemv_variant;
    for (int v = BM_GEMV_VARIANT_SCALAR; v <= BM_GEMV_VARIANT_VEC4; v++) {
        t->rt->gemv_variant = v;
        for (int half = 0; half < 2; half++) {
            const bm_store store = half ? BM_STORE_F16 : BM_STORE_F32;
            test_transforms(t, store);
            test_plain(t, store);
            test_conv_epilogue(t, store);
            test_split(t, store);
        }
    }
    t->rt->gemv_variant = saved;
}

static void test_plain(bm_test_ctx *t, bm_store store)
{
    const gemv_case cases[] = {
        {1, 1, 1, 0, 0, 0.0f},    {1, 3072, 768, 0, 0, 0.0f}, {1, 768, 3072, 0, 0, 1.0f}, {2, 37, 19, 3, 5, 0.0f},
        {3, 5, 1, 0, 7, 1.0f},    {7, 130, 257, 1, 0, 0.0f},  {8, 64, 64, 0, 0, 1.0f},    {9, 41, 100, 2, 3, 0.0f},
        {19, 7, 33, 0, 0, 1.0f},  {4, 320, 64, 0, 0, 0.0f},   {1, 36, 1536, 0, 0, 0.0f},  {1, 1536, 4, 4, 0, 0.0f},
        /* K past the CPU body's panel of A (BM_GEMV_CPU_KP 4096): two panels, the second 4 or 20 wide */
        {2, 19, 4100, 0, 0, 1.0f}, {1, 33, 4116, 4, 0, 0.0f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const gemv_case *g = &cases[c];
        size_t lda = g->K + g->pad, ldw = g->K + 2 * g->pad, ldc = g->N + g->pad, off = g->off;
        size_t na = off + g->M * lda, nw = off + g->N * ldw, nc = off + g->M * ldc;
        float *A = bm_test_alloc(na * 4), *W = bm_test_alloc(nw * 4), *C = bm_test_alloc(nc * 4);
        float *want = bm_test_alloc(nc * 4), *got = bm_test_alloc(nc * 4);
        bm_test_fill(t, A, na, -1, 1);
        bm_test_fill(t, W, nw, -1, 1);
        bm_test_fill(t, C, nc, -1, 1);
        if (g->beta == 0.0f)
            for (size_t r = 0; r < g->M; r++)
                for (size_t j = 0; j < g->N; j++) C[off + r * ldc + j] = NAN;
        memcpy(want, C, nc * 4);
        bm_wmat dW = {bm_test_weights(t, W, nw, store), store};
        bm_ref_gemm(g->M, g->N, g->K, A + off, lda, W + off, ldw, g->beta, want + off, ldc);
        cl_mem dA = bm_test_buffer(t, A, na * 4), dC = bm_test_buffer(t, C, nc * 4);
        char what[128];
        snprintf(what, sizeof what, "gemv%s M=%zu N=%zu K=%zu pad=%zu off=%zu beta=%g", store == BM_STORE_F16 ? " f16-W" : "",
                 g->M, g->N, g->K, g->pad, off, (double)g->beta);
        if (bm_test_status(t, bm_op_gemv(t->rt, g->M, g->N, g->K, dA, off, lda, dW, off, ldw, g->beta, dC, off, ldc), what)) {
            bm_test_read(t, dC, got, nc * 4);
            /* padding and offset regions must be untouched: compare the whole buffer */
            int untouched = 1;
            for (size_t i = 0; i < nc; i++) {
                size_t r = i < off ? (size_t)-1 : (i - off) / ldc, j = i < off ? 0 : (i - off) % ldc;
                if ((r == (size_t)-1 || j >= g->N) && memcmp(&got[i], &C[i], 4) != 0) untouched = 0;
            }
            bm_test_true(t, untouched, "gemv leaves padding and offsets untouched");
            bm_test_close(t, what, got, want, nc, 1e-5);
        }
        bm_release(dA);
        bm_release(dW.buf);
        bm_release(dC);
        free(A), free(W), free(C), free(want), free(got);
    }
}
