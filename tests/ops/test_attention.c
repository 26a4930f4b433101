/* test_attention.c — causal GQA attention and the K/V cache append against the references.
 *  - attention: random cases over B {1,2}, (H,Hkv) {(1,1),(4,2),(6,3),(12,4)}, dh {16,64,80,128},
 *    T {1,2,17,100,300}, window {0,1,5,16,512}, pos0 {0,3,40}, random caches (cap = window,
 *    window-1 or more; full: cap >= pos0+T), q/k/v as column views of one fused buffer (tight or
 *    padded), out_ld > H*dh (padding must stay untouched); relative tolerance 1e-5.
 *  - both kernels forced (the register-tiled prefill kernel and the generic one) on shapes the
 *    launcher would give to the other one: decoding with splits, prefill, every dh variant.
 *  - kv_append: cache contents equal the reference's exactly (including T > cap, ring wrap).
 *  - chained: 50 tokens in one call equal chunks of 7, 1, 1, 41 with kv_append in between, for
 *    window 5 (ring wrap-around; cap 5 and cap 4) and full attention; caches start as NaN so that
 *    reading a never-written slot fails the test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ops/attention_split.h"
#include "ref/ref.h"

#define ATT_SENTINEL 7.25f

typedef struct {
    int B, H, Hkv, dh, T, window, cap;
    int64_t pos0;
    size_t pad; /* 0: tight fused [q|k|v]; else gaps of this size between and after */
    int nsplit; /* key splits (0: the launcher's choice) */
    int variant; /* kernel (BM_ATTN_AUTO: the launcher's choice, or forced TILED / GENERIC) */
} att_case;

static void att_run_case(bm_test_ctx *t, const att_case *c)
{
    const int B = c->B, H = c->H, Hkv = c->Hkv, dh = c->dh, T = c->T, cap = c->cap;
    const size_t q_col = c->pad, k_col = q_col + (size_t)H * dh + c->pad, v_col = k_col + (size_t)Hkv * dh + c->pad;
    const size_t ld = v_col + (size_t)Hkv * dh + c->pad, out_ld = (size_t)H * dh + 3;
    const size_t nx = (size_t)B * T * ld, nc = (size_t)B * Hkv * cap * dh, no = (size_t)B * T * out_ld;
    float *x = bm_test_alloc(nx * sizeof(float)), *kc = bm_test_alloc((nc ? nc : 1) * sizeof(float));
    float *vc = bm_test_alloc((nc ? nc : 1) * sizeof(float));
    float *want = bm_test_alloc(no * sizeof(float)), *got = bm_test_alloc(no * sizeof(float));
    bm_test_fill(t, x, nx, -2.0f, 2.0f);
    bm_test_fill(t, kc, nc, -2.0f, 2.0f);
    bm_test_fill(t, vc, nc, -2.0f, 2.0f);
    for (size_t i = 0; i < no; i++) want[i] = ATT_SENTINEL;
    cl_mem ob = bm_test_buffer(t, want, no * sizeof(float)); /* sentinel-filled, before the reference runs */
    const float scale = 1.0f / sqrtf((float)dh);
    bm_ref_attention(B, T, H, Hkv, dh, x, ld, q_col, x, x, ld, k_col, v_col, kc, vc, cap, c->pos0, c->window, scale,
                     want, out_ld);
    cl_mem xb = bm_test_buffer(t, x, nx * sizeof(float));
    cl_mem kcb = nc ? bm_test_buffer(t, kc, nc * sizeof(float)) : NULL;
    cl_mem vcb = nc ? bm_test_buffer(t, vc, nc * sizeof(float)) : NULL;
    bm_attn_args a = {.B = B, .T = T, .H = H, .Hkv = Hkv, .dh = dh, .q = xb, .q_ld = ld, .q_col = q_col,
                      .k = xb, .v = xb, .kv_ld = ld, .k_col = k_col, .v_col = v_col, .k_cache = kcb,
                      .v_cache = vcb, .cap = cap, .pos0 = c->pos0, .window = c->window, .scale = scale,
                      .out = ob, .out_ld = out_ld};
    char what[160];
    snprintf(what, sizeof what, "attn B=%d H=%d/%d dh=%d T=%d w=%d pos0=%lld cap=%d pad=%zu split=%d kernel=%d", B, H,
             Hkv, dh, T, c->window, (long long)c->pos0, cap, c->pad, c->nsplit, c->variant);
    const int st = c->variant  ? bm_op_attention_variant(t->rt, &a, c->nsplit, c->variant)
                   : c->nsplit ? bm_op_attention_nsplit(t->rt, &a, c->nsplit)
                               : bm_op_attention(t->rt, &a);
    if (st == BMOJO_EUNSUPPORTED && c->variant == BM_ATTN_TILED) {
        /* a device whose local memory is too small for this head dim's tiles: the automatic
         * choice never picks the tiled kernel there */
        printf("skip  %s: tiled kernel does not fit this device\n", what);
    } else if (bm_test_status(t, st, what)) {
        bm_test_read(t, ob, got, no * sizeof(float));
        const size_t nh = (size_t)B * T * H * dh;
        float *g = bm_test_alloc(nh * sizeof(float)), *w = bm_test_alloc(nh * sizeof(float));
        int pad_ok = 1;
        size_t m = 0;
        for (size_t r = 0; r < (size_t)B * T; r++)
            for (size_t j = 0; j < out_ld; j++) {
                if (j < (size_t)H * dh) {
                    g[m] = got[r * out_ld + j];
                    w[m++] = want[r * out_ld + j];
                } else if (got[r * out_ld + j] != ATT_SENTINEL) {
                    pad_ok = 0;
                }
            }
        if (bm_test_close(t, what, g, w, nh, 1e-5)) bm_test_true(t, pad_ok, "attention leaves out's padding untouched");
        free(g);
        free(w);
    }
    bm_release(xb);
    bm_release(kcb);
    bm_release(vcb);
    bm_release(ob);
    free(x);
    free(kc);
    free(vc);
    free(want);
    free(got);
}

static void att_random_cases(bm_test_ctx *t)
{
    static const int Bs[] = {1, 2}, HH[][2] = {{1, 1}, {4, 2}, {6, 3}, {12, 4}}, dhs[] = {16, 64, 80, 128};
    static const int Ts[] = {1, 2, 17, 100, 300}, windows[] = {0, 1, 5, 16, 512};
    static const int64_t pos0s[] = {0, 3, 40};
    for (int i = 0; i < 40; i++) {
        att_case c;
        c.variant = BM_ATTN_AUTO;
        c.B = Bs[bm_test_randint(t, 2)];
        const int hh = (int)bm_test_randint(t, 4);
        c.H = HH[hh][0];
        c.Hkv = HH[hh][1];
        c.dh = dhs[bm_test_randint(t, 4)];
        /* every value of each list is covered by the first 20 cases (i mod list size), the rest
         * is random; big T with the largest heads is kept to a few cases for time */
        c.T = i < 20 ? Ts[i % 5] : Ts[bm_test_randint(t, 5)];
        c.window = i < 20 ? windows[(i / 5 + i) % 5] : windows[bm_test_randint(t, 5)];
        c.pos0 = pos0s[i < 20 ? i % 3 : (int)bm_test_randint(t, 3)];
        if (c.window > 0) {
            const int pick = (int)bm_test_randint(t, 3);
            c.cap = pick == 0 ? c.window : pick == 1 && c.window > 1 ? c.window - 1 : c.window + 3;
        } else {
            c.cap = (int)(c.pos0 + c.T) + (int)bm_test_randint(t, 4);
        }
        c.pad = bm_test_randint(t, 2) ? 1 + bm_test_randint(t, 5) : 0;
        c.nsplit = 0;
        att_run_case(t, &c);
    }
    /* explicit extremes */
    const att_case fixed[] = {
        {2, 12, 4, 128, 300, 0, 340, 40, 3, 0, 0},  /* largest prefill, full attention over a cache */
        {2, 12, 4, 80, 300, 512, 512, 40, 0, 0, 0}, /* window wider than the sequence */
        {1, 1, 1, 16, 1, 1, 1, 3, 0, 0, 0},         /* window 1: only itself */
        {2, 6, 3, 64, 17, 5, 4, 40, 2, 0, 0},       /* cap = window - 1, ring wrap */
        {2, 4, 2, 128, 1, 0, 41, 40, 0, 0, 0},      /* decoding over a full cache */
        {1, 12, 4, 16, 1, 16, 16, 40, 1, 0, 0},     /* decoding with a window */
        {2, 4, 2, 64, 100, 16, 16, 0, 0, 0, 0},     /* prefill from scratch, windowed */
        {1, 8, 1, 64, 5, 0, 5, 0, 0, 0, 0},         /* multi-query attention (Hkv = 1) */
        /* split over keys (the decoding path on GPUs), forced: uneven and empty splits */
        {2, 4, 2, 128, 1, 0, 700, 600, 0, 7, 0},
        {1, 12, 4, 64, 1, 16, 16, 40, 1, 3, 0},
        {2, 6, 3, 80, 17, 0, 60, 40, 2, 64, 0},
        {1, 4, 2, 16, 100, 5, 5, 3, 0, 2, 0},
        {2, 12, 4, 128, 300, 0, 340, 40, 0, 5, 0},
        {1, 1, 1, 16, 1, 0, 3000, 2999, 0, 0, 0},  /* automatic choice, long decode */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) att_run_case(t, &fixed[i]);
}

/* Every kernel on every device whatever the launcher would pick: the generic one for prefill
 * shapes and the register-tiled one for decoding shapes (rows far fewer than its tile, key
 * splits, every dh variant: 16 and 64 -> 4x2 tiles, 80 and 128 -> 2x4 tiles), and the CPU one
 * (one case in three; dh 80 takes its scalar form; T around its 8 queries per item). */
static void att_variant_cases(bm_test_ctx *t)
{
    static const int dhs[] = {16, 64, 80, 128}, Ts[] = {1, 3, 17, 100, 300}, windows[] = {0, 5, 16, 512};
    for (int i = 0; i < 24; i++) {
        att_case c = {0};
        c.variant = i % 3 == 0 ? BM_ATTN_CPU : i % 2 ? BM_ATTN_TILED : BM_ATTN_GENERIC;
        c.B = 1 + (int)bm_test_randint(t, 2);
        c.H = i % 3 == 0 ? 12 : i % 3 == 1 ? 6 : 1;
        c.Hkv = i % 3 == 0 ? 4 : i % 3 == 1 ? 3 : 1;
        c.dh = dhs[(i / 2) % 4];
        c.T = Ts[(i / 2 + i / 8) % 5];
        c.window = windows[(i / 3) % 4];
        c.pos0 = (int)bm_test_randint(t, 3) * 20;
        c.cap = c.window > 0 ? c.window + (int)bm_test_randint(t, 2) : (int)c.pos0 + c.T;
        c.pad = bm_test_randint(t, 2);
        c.nsplit = i % 4 == 3 ? 1 + (int)bm_test_randint(t, 5) : 0;
        att_run_case(t, &c);
    }
}

static void att_kv_append_cases(bm_test_ctx *t)
{
    static const int Ts[] = {1, 5, 17, 40}, caps[] = {5, 16, 64};
    static const int64_t pos0s[] = {0, 3, 40};
    for (int i = 0; i < 12; i++) {
        const int B = 1 + i % 2, Hkv = 1 + i % 3, dh = i % 2 ? 80 : 16, T = Ts[i % 4], cap = caps[i % 3];
        const int64_t pos0 = pos0s[(i / 3) % 3];
        const size_t k_col = (size_t)(i % 4), v_col = k_col + (size_t)Hkv * dh + 1, ld = v_col + (size_t)Hkv * dh + 2;
        const size_t nx = (size_t)B * T * ld, nc = (size_t)B * Hkv * cap * dh;
        float *x = bm_test_alloc(nx * sizeof(float)), *kc = bm_test_alloc(nc * sizeof(float));
        float *vc = bm_test_alloc(nc * sizeof(float)), *got = bm_test_alloc(nc * sizeof(float));
        bm_test_fill(t, x, nx, -1.0f, 1.0f);
        bm_test_fill(t, kc, nc, -1.0f, 1.0f);
        bm_test_fill(t, vc, nc, -1.0f, 1.0f);
        cl_mem xb = bm_test_buffer(t, x, nx * sizeof(float));
        cl_mem kcb = bm_test_buffer(t, kc, nc * sizeof(float)), vcb = bm_test_buffer(t, vc, nc * sizeof(float));
        bm_ref_kv_append(B, T, Hkv, dh, x, x, ld, k_col, v_col, kc, vc, cap, pos0);
        bm_attn_args a = {.B = B, .T = T, .H = Hkv, .Hkv = Hkv, .dh = dh, .q = xb, .q_ld = ld, .k = xb, .v = xb,
                          .kv_ld = ld, .k_col = k_col, .v_col = v_col, .k_cache = kcb, .v_cache = vcb, .cap = cap,
                          .pos0 = pos0, .out = xb, .out_ld = ld};
        char what[128];
        snprintf(what, sizeof what, "kv_append B=%d Hkv=%d dh=%d T=%d cap=%d pos0=%lld", B, Hkv, dh, T, cap,
                 (long long)pos0);
        if (bm_test_status(t, bm_op_kv_append(t->rt, &a), what)) {
            bm_test_read(t, kcb, got, nc * sizeof(float));
            bm_test_close(t, what, got, kc, nc, 0.0);
            bm_test_read(t, vcb, got, nc * sizeof(float));
            bm_test_close(t, what, got, vc, nc, 0.0);
        }
        bm_release(xb);
        bm_release(kcb);
        bm_release(vcb);
        free(x);
        free(kc);
        free(vc);
        free(got);
    }
}

/* One call over N tokens vs chunked calls with kv_append in between (and vs the reference). */
static void att_chained(bm_test_ctx *t, int window, int cap)
{
    enum { N = 50 };
    static const int chunks[] = {7, 1, 1, 41};
    const int B = 2, H = 6, Hkv = 3, dh = 64;
    const size_t ld = (size_t)(H + 2 * Hkv) * dh, k_col = (size_t)H * dh, v_col = k_col + (size_t)Hkv * dh;
    const size_t out_ld = (size_t)H * dh + 1, nx = (size_t)B * N * ld, no = (size_t)B * N * out_ld;
    const size_t nc = (size_t)B * Hkv * cap * dh;
    const float scale = 1.0f / sqrtf((float)dh);
    float *x = bm_test_alloc(nx * sizeof(float)), *want = bm_test_alloc(no * sizeof(float));
    float *one = bm_test_alloc(no * sizeof(float)), *chained = bm_test_alloc(no * sizeof(float));
    float *nan = bm_test_alloc(nc * sizeof(float));
    float *cx = bm_test_alloc(nx * sizeof(float)), *co = bm_test_alloc(no * sizeof(float));
    bm_test_fill(t, x, nx, -2.0f, 2.0f);
    for (size_t i = 0; i < nc; i++) nan[i] = NAN;
    bm_ref_attention(B, N, H, Hkv, dh, x, ld, 0, x, x, ld, k_col, v_col, NULL, NULL, 0, 0, window, scale, want, out_ld);

    char what[128];
    int ok = 1;
    cl_mem xb = bm_test_buffer(t, x, nx * sizeof(float)), ob = bm_test_buffer(t, NULL, no * sizeof(float));
    bm_attn_args a = {.B = B, .T = N, .H = H, .Hkv = Hkv, .dh = dh, .q = xb, .q_ld = ld, .q_col = 0, .k = xb,
                      .v = xb, .kv_ld = ld, .k_col = k_col, .v_col = v_col, .cap = 0, .pos0 = 0,
                      .window = window, .scale = scale, .out = ob, .out_ld = out_ld};
    snprintf(what, sizeof what, "attn one call of %d tokens, window %d", N, window);
    ok &= bm_test_status(t, bm_op_attention(t->rt, &a), what);
    if (ok) bm_test_read(t, ob, one, no * sizeof(float));

    cl_mem kcb = bm_test_buffer(t, nan, nc * sizeof(float)), vcb = bm_test_buffer(t, nan, nc * sizeof(float));
    int start = 0;
    for (size_t ci = 0; ok && ci < sizeof chunks / sizeof chunks[0]; ci++) {
        const int Tc = chunks[ci];
        /* the chunk's rows of both sequences, as a [B*Tc, ld] fused buffer */
        for (int b = 0; b < B; b++)
            memcpy(cx + (size_t)b * Tc * ld, x + ((size_t)b * N + start) * ld, (size_t)Tc * ld * sizeof(float));
        cl_mem cxb = bm_test_buffer(t, cx, (size_t)B * Tc * ld * sizeof(float));
        cl_mem cob = bm_test_buffer(t, NULL, (size_t)B * Tc * out_ld * sizeof(float));
        bm_attn_args c = a;
        c.T = Tc;
        c.q = c.k = c.v = cxb;
        c.k_cache = kcb;
        c.v_cache = vcb;
        c.cap = cap;
        c.pos0 = start;
        c.out = cob;
        snprintf(what, sizeof what, "attn chunk %d at pos0 %d, window %d cap %d", Tc, start, window, cap);
        ok &= bm_test_status(t, bm_op_attention(t->rt, &c), what);
        if (ok) ok &= bm_test_status(t, bm_op_kv_append(t->rt, &c), what);
        if (ok) {
            bm_test_read(t, cob, co, (size_t)B * Tc * out_ld * sizeof(float));
            for (int b = 0; b < B; b++)
                memcpy(chained + ((size_t)b * N + start) * out_ld, co + (size_t)b * Tc * out_ld,
                       (size_t)Tc * out_ld * sizeof(float));
        }
        bm_release(cxb);
        bm_release(cob);
        start += Tc;
    }
    if (ok) {
        /* compare the head columns only (the padding column is never written) */
        for (size_t r = 0; r < (size_t)B * N; r++) {
            want[r * out_ld + out_ld - 1] = 0;
            one[r * out_ld + out_ld - 1] = 0;
            chained[r * out_ld + out_ld - 1] = 0;
        }
        snprintf(what, sizeof what, "attn one call vs reference, window %d", window);
        bm_test_close(t, what, one, want, no, 1e-5);
        snprintf(what, sizeof what, "attn chunks 7+1+1+41 vs one call, window %d cap %d", window, cap);
        bm_test_close(t, what, chained, one, no, 1e-5);
    }
    bm_release(xb);
    bm_release(ob);
    bm_release(kcb);
    bm_release(vcb);
    free(x);
    free(want);
    free(one);
    free(chained);
    free(nan);
    free(cx);
    free(co);
}

static void att_bad_args(bm_test_ctx *t)
{
    cl_mem m = bm_test_buffer(t, NULL, 1024 * sizeof(float));
    bm_attn_args a = {.B = 1, .T = 2, .H = 3, .Hkv = 2, .dh = 4, .q = m, .q_ld = 64, .k = m, .v = m, .kv_ld = 64,
                      .k_col = 12, .v_col = 20, .pos0 = 0, .scale = 0.5f, .out = m, .out_ld = 64};
    bm_test_true(t, bm_op_attention(t->rt, &a) == BMOJO_EINVAL, "attention refuses H not a multiple of Hkv");
    a.H = 4;
    a.pos0 = 10;
    a.window = 0;
    a.k_cache = a.v_cache = m;
    a.cap = 9;
    bm_test_true(t, bm_op_attention(t->rt, &a) == BMOJO_EINVAL, "attention refuses a cache smaller than pos0");
    a.window = 5;
    a.cap = 3;
    bm_test_true(t, bm_op_attention(t->rt, &a) == BMOJO_EINVAL, "attention refuses a cache smaller than window-1");
    a.cap = 4;
    bm_test_true(t, bm_op_attention(t->rt, &a) == 0, "attention accepts cap = window - 1");
    bm_finish(t->rt);
    bm_release(m);
}

void test_op_attention(bm_test_ctx *t)
{
    att_random_cases(t);
    att_variant_cases(t);
    att_kv_append_cases(t);
    att_chained(t, 5, 5);
    att_chained(t, 5, 4);
    att_chained(t, 0, 50);
    att_bad_args(t);
}
