/* test_gemm_tt.c — bm_gemm_ex / bm_op_gemm_tt (cl/gemm_tt.cl) against bm_ref_gemm_ex (double
 * accumulation) for every (trans_a, trans_b): awkward sizes (1, 3, 17, 63, 65, 129, 130, 200),
 * K = 1, a K that ends in a partial float4 and a partial BK step, long K (dW-shaped TN: M, N small,
 * K = 1000 and 16384) with and without split-K, padded leading dimensions and element offsets (both
 * float4-aligned with extents that are multiples of 4, which takes the *_v4 kernels, and odd, or
 * aligned with odd extents, which take the *_s kernels), both tile configurations, beta 0 over a NaN-filled C and beta 1 (accumulate),
 * K = 0 (C = beta C), a bitwise-deterministic split-K, and the error paths. The whole C buffer is
 * compared, so a write outside the view fails. A GEMM is linear: no finite differences needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ops_backward.h"
#include "ref/ref_backward.h"

typedef struct {
    size_t M, N, K;
    size_t pad_a, pad_b, pad_c; /* leading dimension minus the stored row length (x4 with align4) */
    size_t a_off, b_off, c_off; /* element offsets of the matrices in their buffers */
    float beta;
    int nan_c;  /* C's view starts as NaN (with beta 0 it must not leak through) */
    int align4; /* leading dimensions rounded up to a multiple of 4 (float4 loads, with aligned offsets) */
} tt_shape;

/* How a case is launched: bm_gemm_ex (what training calls: on a CPU in auto mode, the CPU path,
 * transposed copies and the NT CPU kernel; with BMOJO_GEMM=own, as in the ops_tunables_gemm test,
 * our kernels), or bm_op_gemm_tt (always our kernels, NT: gemm_nt) with tiles/split; cpu > 0
 * forces bm_gemm_ex's CPU path (BM_GEMM_MODE_OWN_CPU) on any device, with passes of cpu - 1 rows
 * of K (0: automatic). */
typedef struct {
    int explicit_;
    int tiles, split;
    int cpu;
} tt_how;

static size_t ld_of(size_t cols, size_t pad, int align4)
{
    return align4 ? (cols + 3) / 4 * 4 + 4 * pad : cols + pad;
}

/* Runs one case; when out is non-NULL, the device result C (whole buffer) is copied there. */
static void run_case(bm_test_ctx *t, int ta, int tb, const tt_shape *s, tt_how how, float *out)
{
    const size_t a_rows = ta ? s->K : s->M, a_cols = ta ? s->M : s->K;
    const size_t b_rows = tb ? s->N : s->K, b_cols = tb ? s->K : s->N;
    const size_t lda = ld_of(a_cols, s->pad_a, s->align4), ldb = ld_of(b_cols, s->pad_b, s->align4);
    const size_t ldc = ld_of(s->N, s->pad_c, s->align4);
    const size_t na = s->a_off + a_rows * lda + 1, nb = s->b_off + b_rows * ldb + 1, nc = s->c_off + s->M * ldc + 3;
    float *A = bm_test_alloc(na * sizeof *A), *B = bm_test_alloc(nb * sizeof *B);
    float *C = bm_test_alloc(nc * sizeof *C), *want = bm_test_alloc(nc * sizeof *C);
    bm_test_fill(t, A, na, -1.0f, 1.0f);
    bm_test_fill(t, B, nb, -1.0f, 1.0f);
    bm_test_fill(t, C, nc, -1.0f, 1.0f);
    if (s->nan_c)
        for (size_t m = 0; m < s->M; m++)
            for (size_t n = 0; n < s->N; n++) C[s->c_off + m * ldc + n] = NAN;
    memcpy(want, C, nc * sizeof *C);
    bm_ref_gemm_ex(ta, tb, s->M, s->N, s->K, A + s->a_off, lda, B + s->b_off, ldb, s->beta, want + s->c_off, ldc);
    cl_mem dA = bm_test_buffer(t, A, na * sizeof *A), dB = bm_test_buffer(t, B, nb * sizeof *B);
    cl_mem dC = bm_test_buffer(t, C, nc * sizeof *C);
    static const char *const tiles[] = {"auto", "big", "thin"};
    char kind[48] = "gemm_ex", what[240];
    if (how.explicit_) snprintf(kind, sizeof kind, "gemm_tt %s split %d", tiles[how.tiles], how.split);
    if (how.cpu) snprintf(kind, sizeof kind, "gemm_ex CPU path, K passes of %d", how.cpu - 1);
    const int saved_mode = t->rt->gemm_mode, saved_kc = t->rt->gemm_ex_cpu_kchunk;
    if (how.cpu) t->rt->gemm_mode = BM_GEMM_MODE_OWN_CPU, t->rt->gemm_ex_cpu_kchunk = how.cpu - 1;
    snprintf(what, sizeof what, "%s %c%c M=%zu N=%zu K=%zu ld %zu/%zu/%zu off=%zu/%zu/%zu beta=%g%s", kind,
             ta ? 'T' : 'N', tb ? 'T' : 'N', s->M, s->N, s->K, lda, ldb, ldc, s->a_off, s->b_off, s->c_off,
             (double)s->beta, s->nan_c ? " C=NaN" : "");
    int st = how.explicit_ ? bm_op_gemm_tt(t->rt, how.tiles, how.split, ta, tb, s->M, s->N, s->K, dA, s->a_off, lda,
                                           dB, s->b_off, ldb, s->beta, dC, s->c_off, ldc)
                           : bm_gemm_ex(t->rt, ta, tb, s->M, s->N, s->K, dA, s->a_off, lda, dB, s->b_off, ldb,
                                        s->beta, dC, s->c_off, ldc);
    t->rt->gemm_mode = saved_mode, t->rt->gemm_ex_cpu_kchunk = saved_kc;
    if (bm_test_status(t, st, what) && bm_test_status(t, bm_finish(t->rt), what)) {
        bm_test_read(t, dC, C, nc * sizeof *C);
        /* The whole buffer: padding columns, the offset prefix and the tail must be untouched. */
        bm_test_close(t, what, C, want, nc, 1e-5);
        if (out) memcpy(out, C, nc * sizeof *C);
    }
    bm_release(dA);
    bm_release(dB);
    bm_release(dC);
    free(A);
    free(B);
    free(C);
    free(want);
}

static const int combos[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}}; /* NN, TN, TT, NT */

/* Every shape x every (trans_a, trans_b) through bm_gemm_ex, and the three own variants with the
 * big and the thin tiles explicitly (on a CPU the automatic choice is mostly the big tiles). */
static void test_shapes(bm_test_ctx *t)
{
    static const tt_shape shapes[] = {
        /* M, N, K, pad a/b/c, off a/b/c, beta, nan_c, align4 */
        {1, 1, 1, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0},
        {1, 130, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, 1},      /* M = 1, float4 loads */
        {65, 1, 17, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0},       /* N = 1, odd K */
        {17, 63, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0},       /* K = 1 */
        {3, 8, 8, 0, 0, 0, 0, 0, 0, 0.0f, 0, 1},
        {129, 65, 63, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0},     /* just above both tiles, scalar loads */
        {130, 129, 64, 0, 0, 0, 0, 0, 0, 0.0f, 0, 1},    /* float4, just above the tiles */
        {64, 64, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, 1},      /* tile-aligned */
        {129, 200, 200, 0, 0, 0, 0, 0, 0, 0.0f, 1, 0},   /* beta 0 ignores NaN; partial BK step */
        {132, 68, 20, 1, 2, 1, 4, 8, 4, 1.0f, 0, 1},     /* float4: above both tiles, partial BK, padded, offsets */
        {68, 132, 36, 0, 1, 2, 8, 4, 0, 0.0f, 1, 1},     /* the same, beta 0 over NaN */
        {4, 4, 4, 0, 0, 0, 0, 0, 0, 1.0f, 0, 1},         /* the smallest float4 shape */
        {63, 65, 17, 1, 2, 1, 4, 8, 4, 1.0f, 0, 1},      /* aligned ld/offsets, odd extents: scalar loads */
        {65, 129, 128, 1, 0, 4, 1, 0, 4, 1.0f, 0, 0},    /* odd lda / a_off: scalar loads */
        {33, 17, 130, 3, 5, 2, 7, 3, 1, 1.0f, 0, 0},     /* padded, offsets, accumulate */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int c = 0; c < 4; c++) {
            const int ta = combos[c][0], tb = combos[c][1];
            run_case(t, ta, tb, &shapes[i], (tt_how){0, 0, 0, 0}, NULL);
            if (!ta && tb) continue; /* NT: bm_op_gemm_nt, tested in the gemm group */
            run_case(t, ta, tb, &shapes[i], (tt_how){0, 0, 0, 1}, NULL);
            run_case(t, ta, tb, &shapes[i], (tt_how){0, 0, 0, 1 + 7}, NULL); /* K in passes of 7 */
            run_case(t, ta, tb, &shapes[i], (tt_how){1, BM_GEMM_NT_TILES_BIG, 1, 0}, NULL);
            run_case(t, ta, tb, &shapes[i], (tt_how){1, BM_GEMM_NT_TILES_THIN, 1, 0}, NULL);
        }
}

/* Long K: the dW shape (TN, M and N small, K = rows = B*T), with split-K forced (partial sums in
 * scratch, then the in-order reduction with beta), K not a multiple of the splits' range, more
 * splits asked for than BK steps exist; the result of a split-K run is bitwise reproducible. */
static void test_long_k(bm_test_ctx *t)
{
    static const struct {
        int ta, tb;
        tt_shape s;
        tt_how how;
    } cases[] = {
        {1, 0, {17, 3, 1000, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0}, {0, 0, 0, 0}},
        {1, 0, {17, 3, 1000, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0}, {0, 0, 0, 1 + 300}}, /* CPU path, 4 passes */
        {1, 0, {65, 80, 1000, 0, 1, 1, 4, 0, 4, 0.0f, 1, 1}, {0, 0, 0, 1 + 999}}, /* a pass of 1 row */
        {0, 0, {70, 33, 1000, 1, 2, 0, 3, 5, 1, 1.0f, 0, 0}, {0, 0, 0, 1 + 256}},
        {1, 1, {9, 66, 777, 0, 0, 3, 0, 0, 1, 0.0f, 1, 0}, {0, 0, 0, 1}},
        {1, 0, {17, 3, 1000, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0}, {1, BM_GEMM_NT_TILES_THIN, 4, 0}},
        {1, 0, {65, 80, 1000, 0, 0, 0, 0, 0, 0, 0.0f, 1, 1}, {1, BM_GEMM_NT_TILES_THIN, 7, 0}},
        {1, 0, {64, 80, 1000, 0, 1, 1, 4, 0, 4, 1.0f, 0, 1}, {1, BM_GEMM_NT_TILES_THIN, 7, 0}}, /* float4 */
        {1, 0, {136, 132, 1000, 0, 0, 0, 0, 0, 0, 1.0f, 0, 1}, {1, BM_GEMM_NT_TILES_BIG, 3, 0}}, /* float4 */
        {1, 0, {130, 48, 999, 1, 3, 2, 1, 2, 3, 1.0f, 0, 0}, {1, BM_GEMM_NT_TILES_BIG, 3, 0}},
        {1, 0, {9, 5, 17, 0, 0, 0, 0, 0, 0, 0.0f, 1, 0}, {1, BM_GEMM_NT_TILES_THIN, 64, 0}}, /* at most 1 split */
        {0, 0, {5, 70, 1000, 0, 0, 0, 0, 0, 0, 1.0f, 0, 1}, {1, BM_GEMM_NT_TILES_THIN, 5, 0}},
        {1, 1, {66, 7, 1000, 0, 0, 3, 0, 0, 1, 0.0f, 1, 0}, {1, BM_GEMM_NT_TILES_THIN, 2, 0}},
        {0, 1, {33, 80, 700, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0}, {1, BM_GEMM_NT_TILES_THIN, 3, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(t, cases[i].ta, cases[i].tb, &cases[i].s, cases[i].how, NULL);

    /* K = 16384 (training's rows of 8 x 2048) accumulated into dW, split 16 ways: twice, bitwise
     * equal (fixed-order reduction, no atomics). */
    const tt_shape big = {24, 40, 16384, 0, 0, 0, 0, 0, 0, 1.0f, 0, 1};
    const size_t nc = 24 * 40 + 3;
    float *r1 = bm_test_alloc(nc * sizeof *r1), *r2 = bm_test_alloc(nc * sizeof *r2);
    memset(r1, 0, nc * sizeof *r1);
    memset(r2, 0xff, nc * sizeof *r2);
    const uint64_t seed = t->rng;
    run_case(t, 1, 0, &big, (tt_how){1, BM_GEMM_NT_TILES_THIN, 16, 0}, r1);
    t->rng = seed; /* the same inputs again */
    run_case(t, 1, 0, &big, (tt_how){1, BM_GEMM_NT_TILES_THIN, 16, 0}, r2);
    bm_test_true(t, !memcmp(r1, r2, nc * sizeof *r1), "gemm_tt TN K=16384 split 16: bitwise reproducible");
    free(r1);
    free(r2);
}

/* K = 0: C = beta C for every variant (bm_gemm alone would leave C as it is); M or N = 0 is a no-op. */
static void test_empty(bm_test_ctx *t)
{
    const float betas[3] = {0.0f, 0.5f, 1.0f};
    for (int c = 0; c < 4; c++)
        for (int b = 0; b < 3; b++) {
            tt_shape s = {5, 7, 0, 0, 0, 1, 0, 0, 2, betas[b], b == 0, 0};
            run_case(t, combos[c][0], combos[c][1], &s, (tt_how){0, 0, 0, 0}, NULL);
        }
    float host[16];
    bm_test_fill(t, host, 16, -1.0f, 1.0f);
    cl_mem buf = bm_test_buffer(t, host, sizeof host);
    int st = bm_gemm_ex(t->rt, 1, 0, 0, 4, 4, buf, 0, 0, buf, 0, 4, 0.0f, buf, 0, 4);
    st |= bm_gemm_ex(t->rt, 0, 0, 4, 0, 4, buf, 0, 4, buf, 0, 0, 0.0f, buf, 0, 0);
    float back[16];
    bm_test_read(t, buf, back, sizeof back);
    bm_test_true(t, st == 0 && !memcmp(back, host, sizeof host), "gemm_ex M=0 / N=0 is a no-op");
    bm_release(buf);
}

static void test_errors(bm_test_ctx *t)
{
    cl_mem small = bm_test_buffer(t, NULL, 64 * sizeof(float));
    cl_mem big = bm_test_buffer(t, NULL, 4096 * sizeof(float));
    /* Leading dimensions checked against the stored row length, which depends on the transposes. */
    int st = bm_gemm_ex(t->rt, 1, 0, 8, 4, 4, big, 0, 4, big, 0, 4, 0.0f, big, 0, 4); /* A^T is [4, 8] */
    bm_test_true(t, st == BMOJO_EINVAL && strstr(bmojo_last_error(), "lda"), "gemm_ex TN lda < M -> EINVAL naming lda");
    st = bm_gemm_ex(t->rt, 0, 0, 4, 8, 2, big, 0, 2, big, 0, 4, 0.0f, big, 0, 8); /* B is [2, 8] */
    bm_test_true(t, st == BMOJO_EINVAL && strstr(bmojo_last_error(), "ldb"), "gemm_ex NN ldb < N -> EINVAL naming ldb");
    st = bm_gemm_ex(t->rt, 0, 0, 4, 8, 2, big, 0, 2, big, 0, 8, 0.0f, big, 0, 7);
    bm_test_true(t, st == BMOJO_EINVAL && strstr(bmojo_last_error(), "ldc"), "gemm_ex ldc < N -> EINVAL naming ldc");
    st = bm_gemm_ex(t->rt, 2, 0, 4, 4, 4, big, 0, 4, big, 0, 4, 0.0f, big, 0, 4);
    bm_test_true(t, st == BMOJO_EINVAL, "gemm_ex trans_a = 2 -> EINVAL");
    st = bm_gemm_ex(t->rt, 0, 0, 4, 4, 4, big, 0, 4, NULL, 0, 4, 0.0f, big, 0, 4);
    bm_test_true(t, st == BMOJO_EINVAL && strstr(bmojo_last_error(), "B"), "gemm_ex NULL B -> EINVAL naming B");
    /* A view past its buffer's end (A^T [32, 32] in 64 floats), naming the buffer. */
    st = bm_gemm_ex(t->rt, 1, 0, 32, 32, 32, small, 0, 32, big, 0, 32, 0.0f, big, 0, 32);
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "buffer A too small"),
                 "gemm_ex TN with a too-small A -> EGEMM naming A");
    st = bm_gemm_ex(t->rt, 0, 0, 2, 32, 32, big, 0, 32, small, 0, 32, 0.0f, big, 0, 32);
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "buffer B too small"),
                 "gemm_ex NN with a too-small B -> EGEMM naming B");
    st = bm_gemm_ex(t->rt, 1, 1, 32, 32, 32, big, 0, 32, big, 0, 32, 1.0f, big, 4096 - 32 * 32 + 1, 32);
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "buffer C too small"),
                 "gemm_ex TT whose C view runs past the buffer's end -> EGEMM naming C");
    st = bm_op_gemm_tt(t->rt, 9, 0, 0, 0, 4, 4, 4, big, 0, 4, big, 0, 4, 0.0f, big, 0, 4);
    bm_test_true(t, st == BMOJO_EINVAL, "gemm_tt with an unknown tile choice -> EINVAL");
    /* Tiles beyond the device's local memory: refused, not launched. */
    const cl_ulong local = t->rt->lim.local_mem;
    t->rt->lim.local_mem = 1024;
    st = bm_op_gemm_tt(t->rt, BM_GEMM_NT_TILES_BIG, 1, 1, 0, 4, 4, 4, big, 0, 4, big, 0, 4, 0.0f, big, 0, 4);
    t->rt->lim.local_mem = local;
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "local memory"),
                 "gemm_tt tiles above the device's local memory -> EGEMM");
    bm_finish(t->rt);
    bm_release(small);
    bm_release(big);
}

void test_op_gemm_tt(bm_test_ctx *t)
{
    test_shapes(t);
    test_long_k(t);
    test_empty(t);
    test_errors(t);
}
