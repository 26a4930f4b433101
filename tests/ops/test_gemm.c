/* test_gemm.c — bm_gemm (CLBlast) and our own bm_op_gemm_nt (cl/gemm_nt.cl: both tile
 * configurations, float4 and scalar loads, split-K) against bm_ref_gemm on awkward shapes (M=1,
 * odd sizes, K=1, sizes just above a tile, padded leading dimensions, element offsets, beta 0
 * with NaN in C and beta 1), each also with W stored as f16 (the _w16 kernels of --weights f16,
 * against the reference on the rounded W), BMOJO_GEMM's selection (clblast with an f16 W takes our
 * kernel), error paths, plus the runtime
 * plumbing every op relies on: zero-filled allocation, fill/copy at odd offsets, kernel lookup
 * and the on-disk program cache (reuse, BMOJO_CACHE=0, a corrupted entry is rebuilt). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

enum { OWN_CPU = 4 };

typedef struct {
    size_t M, N, K;
    size_t pad_a, pad_w, pad_c; /* leading dimension minus the row length */
    size_t a_off, w_off, c_off; /* element offsets of the matrices in their buffers */
    float beta;
    int nan_c; /* with beta 0: C starts as NaN, which BLAS semantics must ignore (reused scratch) */
    int own;   /* 0: bm_gemm; 1-3: bm_op_gemm_nt with tiles = own - 1 + BM_GEMM_NT_TILES_AUTO;
                  OWN_CPU: bm_op_gemm_nt_cpu */
    int split; /* own: split_k argument (0 = automatic) */
} gemm_case;

/* store: how W is stored (f16: the _w16 kernels) */
static void run_case(bm_test_ctx *t, const gemm_case *c, bm_store store)
{
    size_t lda = c->K + c->pad_a, ldw = c->K + c->pad_w, ldc = c->N + c->pad_c;
    size_t na = c->a_off + c->M * lda, nw = c->w_off + c->N * ldw, nc = c->c_off + c->M * ldc;
    float *A = bm_test_alloc(na * sizeof *A), *W = bm_test_alloc(nw * sizeof *W);
    float *C = bm_test_alloc(nc * sizeof *C), *want = bm_test_alloc(nc * sizeof *C);
    bm_test_fill(t, A, na, -1.0f, 1.0f);
    bm_test_fill(t, W, nw, -1.0f, 1.0f);
    bm_test_fill(t, C, nc, -1.0f, 1.0f);
    if (c->nan_c)
        for (size_t m = 0; m < c->M; m++)
            for (size_t n = 0; n < c->N; n++) C[c->c_off + m * ldc + n] = NAN;
    memcpy(want, C, nc * sizeof *C);
    bm_wmat dW = {bm_test_weights(t, W, nw, store), store}; /* W rounded to what is stored */
    bm_ref_gemm(c->M, c->N, c->K, A + c->a_off, lda, W + c->w_off, ldw, c->beta, want + c->c_off, ldc);
    cl_mem dA = bm_test_buffer(t, A, na * sizeof *A);
    cl_mem dC = bm_test_buffer(t, C, nc * sizeof *C);
    char what[200];
    static const char *const tiles[] = {"auto", "big", "thin"};
    char kind[48] = "gemm";
    if (c->own == OWN_CPU) snprintf(kind, sizeof kind, "gemm_nt_cpu");
    else if (c->own) snprintf(kind, sizeof kind, "gemm_nt %s split %d", tiles[c->own - 1], c->split);
    snprintf(what, sizeof what, "%s%s M=%zu N=%zu K=%zu ld+%zu/%zu/%zu off=%zu/%zu/%zu beta=%g%s", kind,
             store == BM_STORE_F16 ? " f16-W" : "", c->M, c->N, c->K, c->pad_a, c->pad_w, c->pad_c, c->a_off,
             c->w_off, c->c_off, (double)c->beta, c->nan_c ? " C=NaN" : "");
    int st = c->own == OWN_CPU ? bm_op_gemm_nt_cpu(t->rt, c->M, c->N, c->K, dA, c->a_off, lda, dW, c->w_off, ldw,
                                                   c->beta, dC, c->c_off, ldc)
             : c->own          ? bm_op_gemm_nt(t->rt, c->own - 1 + BM_GEMM_NT_TILES_AUTO, c->split, c->M, c->N, c->K, dA, c->a_off,
                                    lda, dW, c->w_off, ldw, c->beta, dC, c->c_off, ldc)
                    : bm_gemm(t->rt, c->M, c->N, c->K, dA, c->a_off, lda, dW, c->w_off, ldw, c->beta, dC, c->c_off, ldc);
    if (bm_test_status(t, st, what) && bm_test_status(t, bm_finish(t->rt), what)) {
        bm_test_read(t, dC, C, nc * sizeof *C);
        /* The whole buffer: padding columns and the offset prefix must be untouched too. */
        bm_test_close(t, what, C, want, nc, 1e-5);
    }
    bm_release(dA);
    bm_release(dW.buf);
    bm_release(dC);
    free(A);
    free(W);
    free(C);
    free(want);
}

/* Our own kernel, explicitly: each shape with the big and the thin tiles. Sizes from {1, 3, 8, 17,
 * 63, 64, 65, 129, 200}: K % 4 == 0 with aligned offsets and leading dimensions takes the float4
 * loads, anything else the scalar ones; 129 and 65 are just above the big and thin tiles; K = 200
 * ends in a partial BK step. */
static void test_gemm_nt(bm_test_ctx *t)
{
    enum { BIG = 2, THIN = 3, AUTO = 1 };
    static const gemm_case shapes[] = {
        /* M, N, K, pad a/w/c, off a/w/c, beta, nan_c */
        {1, 1, 1, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},
        {1, 200, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},      /* M = 1, float4 */
        {65, 1, 17, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},       /* N = 1, odd K */
        {17, 63, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},       /* K = 1 */
        {3, 8, 8, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},
        {129, 65, 63, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},     /* odd K: scalar loads */
        {200, 129, 64, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},    /* float4, just above the tiles */
        {64, 64, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},      /* thin-tile aligned */
        {129, 200, 200, 0, 0, 0, 0, 0, 0, 0.0f, 1, 0, 0},   /* beta 0 ignores NaN; partial BK step */
        {63, 65, 128, 4, 8, 3, 4, 8, 1, 1.0f, 0, 0, 0},     /* padded ld, float4 loads, scalar C stores */
        {63, 65, 128, 4, 8, 3, 4, 8, 1, 0.0f, 1, 0, 0},     /* the same with beta 0 and NaN */
        {65, 129, 128, 1, 0, 4, 1, 0, 4, 1.0f, 0, 0, 0},    /* K % 4 == 0 but lda/a_off odd: scalar */
        {8, 17, 200, 0, 3, 0, 0, 4, 0, 0.0f, 0, 0, 0},      /* ldw odd: scalar */
        {200, 63, 17, 5, 2, 7, 3, 1, 2, 1.0f, 0, 0, 0},
    };
    for (int half = 0; half < 2; half++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int tiles = BIG; tiles <= THIN; tiles++) {
                gemm_case c = shapes[i];
                c.own = tiles;
                c.split = 1;
                run_case(t, &c, half ? BM_STORE_F16 : BM_STORE_F32);
            }
    /* Split-K: partial sums in scratch, then the reduction with beta; K not a multiple of the
     * splits' K range; more splits asked for than BK steps exist (fewer are used). */
    static const gemm_case splits[] = {
        {33, 80, 200, 0, 0, 0, 0, 0, 0, 0.0f, 1, THIN, 3},
        {129, 65, 129, 2, 1, 3, 1, 2, 3, 1.0f, 0, BIG, 4},   /* scalar loads */
        {65, 63, 256, 0, 0, 5, 0, 0, 1, 1.0f, 0, THIN, 2},   /* float4 loads, odd ldc */
        {17, 200, 17, 0, 0, 0, 0, 0, 0, 0.0f, 1, BIG, 64},   /* K = 17: at most 2 splits of BK */
        {64, 129, 512, 0, 0, 0, 0, 0, 0, 1.0f, 0, THIN, 5},
        {200, 80, 300, 0, 0, 0, 0, 0, 0, 0.0f, 0, AUTO, 0},  /* automatic choices */
        {9, 3072, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, AUTO, 0},
    };
    for (int half = 0; half < 2; half++)
        for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
            gemm_case c = splits[i];
            run_case(t, &c, half ? BM_STORE_F16 : BM_STORE_F32);
        }

    /* bm_gemm's selection: with BMOJO_GEMM=own, own-cpu or clblast (rt->gemm_mode) rows > 8 go to
     * that kernel, and its results match the reference just the same; <= 8 rows still go to the
     * GEMV. */
    const int mode = t->rt->gemm_mode;
    static const gemm_case via_gemm[] = {
        {9, 65, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},
        {100, 31, 257, 0, 0, 1, 0, 0, 2, 0.0f, 1, 0, 0},
        {8, 17, 63, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},
    };
    const int modes[] = {BM_GEMM_MODE_OWN, BM_GEMM_MODE_OWN_BIG, BM_GEMM_MODE_OWN_THIN, BM_GEMM_MODE_OWN_CPU,
                         BM_GEMM_MODE_CLBLAST};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        t->rt->gemm_mode = modes[m];
        for (int half = 0; half < 2; half++)
            for (size_t i = 0; i < sizeof via_gemm / sizeof via_gemm[0]; i++) {
                gemm_case c = via_gemm[i];
                run_case(t, &c, half ? BM_STORE_F16 : BM_STORE_F32);
            }
    }
    t->rt->gemm_mode = mode;

    /* Bad arguments. */
    float host[16] = {0};
    cl_mem buf = bm_test_buffer(t, host, sizeof host);
    int st = bm_op_gemm_nt(t->rt, 7, 0, 2, 2, 2, buf, 0, 2, bm_wf32(buf), 0, 2, 0.0f, buf, 0, 2);
    bm_test_true(t, st == BMOJO_EINVAL, "gemm_nt with an unknown tile choice -> BMOJO_EINVAL");
    st = bm_op_gemm_nt(t->rt, BM_GEMM_NT_TILES_AUTO, 0, 2, 2, 3, buf, 0, 2, bm_wf32(buf), 0, 3, 0.0f, buf, 0, 2);
    bm_test_true(t, st == BMOJO_EINVAL, "gemm_nt lda < K -> BMOJO_EINVAL");
    bm_finish(t->rt);
    bm_release(buf);
}

/* The CPU kernel (cl/gemm_nt_cpu.cl), on every device: the shapes of test_gemm_nt plus K around
 * its 16-wide vectors (15, 16, 17, 33) and M, N around its 4 x 4 micro tiles and 64 x 64 macro
 * tiles (1-5, 63-65, 127-129); padded leading dimensions and odd offsets (vload16 at any float);
 * beta 0 over NaN. */
static void test_gemm_nt_cpu(bm_test_ctx *t)
{
    static const gemm_case shapes[] = {
        /* M, N, K, pad a/w/c, off a/w/c, beta, nan_c */
        {1, 1, 1, 0, 0, 0, 0, 0, 0, 0.0f, 0, OWN_CPU, 0},
        {1, 200, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, OWN_CPU, 0},
        {65, 1, 17, 0, 0, 0, 0, 0, 0, 0.0f, 0, OWN_CPU, 0},
        {17, 63, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0, OWN_CPU, 0},
        {2, 3, 15, 0, 0, 0, 0, 0, 0, 1.0f, 0, OWN_CPU, 0},
        {5, 5, 16, 0, 0, 0, 0, 0, 0, 0.0f, 1, OWN_CPU, 0},
        {3, 4, 33, 0, 0, 0, 0, 0, 0, 1.0f, 0, OWN_CPU, 0},
        {129, 65, 63, 0, 0, 0, 0, 0, 0, 1.0f, 0, OWN_CPU, 0},
        {200, 129, 64, 0, 0, 0, 0, 0, 0, 0.0f, 0, OWN_CPU, 0},
        {64, 64, 64, 0, 0, 0, 0, 0, 0, 1.0f, 0, OWN_CPU, 0},
        {127, 128, 200, 0, 0, 0, 0, 0, 0, 0.0f, 1, OWN_CPU, 0},
        {63, 65, 128, 4, 8, 3, 4, 8, 1, 1.0f, 0, OWN_CPU, 0},
        {65, 129, 128, 1, 0, 4, 1, 0, 4, 0.0f, 1, OWN_CPU, 0},
        {200, 63, 17, 5, 2, 7, 3, 1, 2, 1.0f, 0, OWN_CPU, 0},
        {9, 80, 300, 0, 3, 0, 5, 7, 0, 1.0f, 0, OWN_CPU, 0},
    };
    for (int half = 0; half < 2; half++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            gemm_case c = shapes[i];
            run_case(t, &c, half ? BM_STORE_F16 : BM_STORE_F32);
        }
    float host[16] = {0};
    cl_mem buf = bm_test_buffer(t, host, sizeof host);
    int st = bm_op_gemm_nt_cpu(t->rt, 2, 2, 3, buf, 0, 2, bm_wf32(buf), 0, 3, 0.0f, buf, 0, 2);
    bm_test_true(t, st == BMOJO_EINVAL, "gemm_nt_cpu lda < K -> BMOJO_EINVAL");
    bm_finish(t->rt);
    bm_release(buf);
}

/* BMOJO_GEMM / BMOJO_GEMM_SPLITK with a bad value: the runtime refuses to start, naming the value. */
static void test_gemm_env(bm_test_ctx *t)
{
    char spec[32];
    snprintf(spec, sizeof spec, "%d:%d", t->rt->desc.platform_index, t->rt->desc.device_index);
    static const char *const vars[][2] = {{"BMOJO_GEMM", "cublas"}, {"BMOJO_GEMM_SPLITK", "0"}};
    for (int i = 0; i < 2; i++) {
        const char *old = getenv(vars[i][0]);
        char *save = old ? strdup(old) : NULL;
        setenv(vars[i][0], vars[i][1], 1);
        bmojo_runtime *rt = NULL;
        int st = bmojo_runtime_create(spec, &rt);
        char what[96];
        snprintf(what, sizeof what, "%s=%s -> BMOJO_EINVAL naming the value", vars[i][0], vars[i][1]);
        bm_test_true(t, st == BMOJO_EINVAL && rt == NULL && strstr(bmojo_last_error(), vars[i][1]), what);
        bmojo_runtime_free(rt);
        if (save) setenv(vars[i][0], save, 1);
        else unsetenv(vars[i][0]);
        free(save);
    }
}

static void test_gemm_errors(bm_test_ctx *t)
{
    float host[64];
    bm_test_fill(t, host, 64, -1.0f, 1.0f);
    cl_mem small = bm_test_buffer(t, host, sizeof host); /* 64 floats */
    cl_mem big = bm_test_buffer(t, NULL, 4096 * sizeof(float));
    /* Empty products are no-ops that leave C alone. */
    int st0 = bm_gemm(t->rt, 0, 8, 8, big, 0, 8, bm_wf32(big), 0, 8, 0.0f, small, 0, 8);
    int st1 = bm_gemm(t->rt, 8, 8, 0, big, 0, 8, bm_wf32(big), 0, 8, 0.0f, small, 0, 8);
    float back[64];
    bm_test_read(t, small, back, sizeof back);
    bm_test_true(t, st0 == 0 && st1 == 0 && !memcmp(back, host, sizeof host), "gemm M=0 / K=0 is a no-op");
    /* Leading dimension shorter than a row. */
    int st = bm_gemm(t->rt, 4, 4, 4, big, 0, 4, bm_wf32(big), 0, 4, 0.0f, big, 0, 3);
    bm_test_true(t, st == BMOJO_EINVAL, "gemm ldc < N -> BMOJO_EINVAL");
    /* A, W or C too small for its view: refused before any kernel runs (whichever kernel bm_gemm
     * would pick: none of them checks bounds on the buffer), naming the buffer. */
    st = bm_gemm(t->rt, 32, 32, 32, small, 0, 32, bm_wf32(big), 0, 32, 0.0f, big, 0, 32);
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "buffer A too small"),
                 "gemm with a too-small A buffer -> BMOJO_EGEMM naming A");
    st = bm_gemm(t->rt, 2, 32, 32, big, 0, 32, bm_wf32(small), 0, 32, 0.0f, big, 0, 32);
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "buffer W too small"),
                 "gemv (2 rows) with a too-small W buffer -> BMOJO_EGEMM naming W");
    /* an f16 W counts 2-byte elements: 64 floats hold 128 halves, i.e. 4 rows of 32 but not 5 */
    bm_wmat small16 = {small, BM_STORE_F16};
    st = bm_gemm(t->rt, 2, 4, 32, big, 0, 32, small16, 0, 32, 0.0f, big, 0, 32);
    bm_test_true(t, st == 0, "gemv with an f16 W of exactly the buffer's 128 halves runs");
    st = bm_gemm(t->rt, 2, 5, 32, big, 0, 32, small16, 0, 32, 0.0f, big, 0, 32);
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "buffer W too small"),
                 "gemv with an f16 W one row past the buffer -> BMOJO_EGEMM naming W");
    st = bm_gemm(t->rt, 32, 32, 32, big, 0, 32, bm_wf32(big), 0, 32, 0.0f, big, 4096 - 32 * 32 + 1, 32);
    bm_test_true(t, st == BMOJO_EGEMM && strstr(bmojo_last_error(), "buffer C too small"),
                 "gemm whose C view runs past the buffer's end -> BMOJO_EGEMM naming C");
    bm_finish(t->rt);
    bm_release(small);
    bm_release(big);
}

static void test_buffers(bm_test_ctx *t)
{
    bm_rt *rt = t->rt;
    enum { N = 1003 };
    unsigned char *h = bm_test_alloc(N), *z = bm_test_alloc(N), *back = bm_test_alloc(N);
    for (int i = 0; i < N; i++) h[i] = (unsigned char)(1 + bm_test_randint(t, 255));
    cl_mem a = NULL, b = NULL, e = NULL;
    int st = bm_alloc(rt, N, &a);
    if (bm_test_status(t, st, "bm_alloc 1003 bytes")) {
        bm_test_read(t, a, back, N);
        bm_test_true(t, !memcmp(back, z, N), "bm_alloc zero-fills (odd size)");
    }
    bm_test_status(t, bm_alloc(rt, 0, &e), "bm_alloc 0 bytes");
    bm_test_true(t, e != NULL, "bm_alloc 0 bytes gives a buffer");
    bm_test_status(t, bm_alloc(rt, N, &b), "bm_alloc second buffer");
    if (a && b) {
        bm_test_status(t, bm_upload(rt, a, 0, h, N), "bm_upload");
        /* Copy 500 bytes from offset 3 to offset 7, zero 11 bytes at offset 101 of the copy. */
        bm_test_status(t, bm_copy(rt, a, 3, b, 7, 500), "bm_copy odd offsets");
        bm_test_status(t, bm_fill_zero(rt, b, 101, 11), "bm_fill_zero odd offset");
        bm_test_status(t, bm_fill_zero(rt, b, 0, 0), "bm_fill_zero empty");
        bm_test_read(t, b, back, N);
        unsigned char *want = bm_test_alloc(N);
        memcpy(want + 7, h + 3, 500);
        memset(want + 101, 0, 11);
        bm_test_true(t, !memcmp(back, want, N), "bm_copy + bm_fill_zero at odd offsets");
        /* Partial download at an offset. */
        unsigned char part[13];
        bm_test_status(t, bm_download(rt, a, 990, part, 13), "bm_download offset");
        bm_test_true(t, !memcmp(part, h + 990, 13), "bm_download at an offset");
        free(want);
    }
    cl_mem huge = NULL;
    st = bm_alloc(rt, (size_t)rt->lim.max_alloc + 4096, &huge);
    bm_test_true(t, st == BMOJO_ENOMEM && huge == NULL && strstr(bmojo_last_error(), "bytes"),
                 "bm_alloc above the device maximum -> BMOJO_ENOMEM naming the size");
    bm_test_true(t, bm_kernel(rt, "bm_no_such_kernel") == NULL && strstr(bmojo_last_error(), "bm_no_such_kernel"),
                 "bm_kernel of an unknown name -> NULL with detail");
    int sorted = 1;
    for (int i = 1; i < rt->n_kernels; i++) sorted &= strcmp(rt->kernels[i - 1].name, rt->kernels[i].name) < 0;
    for (int i = 0; i < rt->n_kernels; i++) sorted &= bm_kernel(rt, rt->kernels[i].name) == rt->kernels[i].kernel;
    bm_test_true(t, sorted, "kernels sorted by name and all found by bm_kernel");
    const char *opts = bmojo_runtime_build_options(rt);
    char wg[32];
    snprintf(wg, sizeof wg, "-DBM_WG=%zu ", rt->lim.wg);
    bm_test_true(t, strstr(opts, "-cl-std=CL1.2") && strstr(opts, wg) && rt->lim.wg >= 1 &&
                    (rt->lim.wg & (rt->lim.wg - 1)) == 0 && rt->lim.wg <= rt->lim.max_wg && rt->lim.wg <= 256,
                 "build options carry a power-of-two BM_WG within the device limits");
    bm_release(a);
    bm_release(b);
    bm_release(e);
    free(h);
    free(z);
    free(back);
}

/* Counts *.bin files in dir and returns the path of the last one seen. */
static int cache_files(const char *dir, char *path, size_t n)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int count = 0;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        size_t len = strlen(line);
        if (len > 4 && !strcmp(line + len - 4, ".bin")) {
            count++;
            snprintf(path, n, "%s/%s", dir, line);
        }
    }
    pclose(p);
    return count;
}

/* A cache entry whose header (magic, then the binary length) matches the file size, and that
 * no longer holds the garbage written at `at`. (Binary sizes may vary between builds.) */
static int cache_entry_sane(const char *path, long at)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char head[16], mid[23];
    struct stat sb;
    int ok = fstat(fileno(f), &sb) == 0 && fread(head, 1, 16, f) == 16 && !memcmp(head, "BMOJOCL1", 8);
    if (ok) {
        uint64_t len;
        memcpy(&len, head + 8, 8);
        ok = len > 0 && len + 24 == (uint64_t)sb.st_size;
    }
    if (ok && at + 23 <= (long)sb.st_size && fseek(f, at, SEEK_SET) == 0 && fread(mid, 1, 23, f) == 23)
        ok = memcmp(mid, "garbage garbage garbage", 23) != 0;
    fclose(f);
    return ok;
}

static void test_program_cache(bm_test_ctx *t)
{
    char dir[] = "/tmp/bmojo-cache-test-XXXXXX";
    if (!mkdtemp(dir)) {
        bm_test_true(t, 0, "program cache: mkdtemp");
        return;
    }
    char sub[128], spec[32], path[600] = "";
    snprintf(sub, sizeof sub, "%s/a/b", dir); /* nested: the cache creates its folders */
    snprintf(spec, sizeof spec, "%d:%d", t->rt->desc.platform_index, t->rt->desc.device_index);
    const char *old_dir = getenv("BMOJO_CACHE_DIR"), *old_on = getenv("BMOJO_CACHE");
    char *save_dir = old_dir ? strdup(old_dir) : NULL, *save_on = old_on ? strdup(old_on) : NULL;
    setenv("BMOJO_CACHE_DIR", sub, 1);

    bmojo_runtime *rt = NULL;
    setenv("BMOJO_CACHE", "0", 1);
    int st = bmojo_runtime_create(spec, &rt);
    bm_test_status(t, st, "runtime with BMOJO_CACHE=0");
    bmojo_runtime_free(rt);
    bm_test_true(t, cache_files(sub, path, sizeof path) <= 0, "BMOJO_CACHE=0 writes no cache file");

    unsetenv("BMOJO_CACHE");
    rt = NULL;
    st = bmojo_runtime_create(spec, &rt);
    bm_test_status(t, st, "runtime filling the cache");
    int nk = rt ? rt->n_kernels : -1;
    bmojo_runtime_free(rt);
    bm_test_true(t, cache_files(sub, path, sizeof path) == 1, "first start writes one cache file");

    struct stat sb0, sb1;
    int have0 = stat(path, &sb0) == 0;
    rt = NULL;
    st = bmojo_runtime_create(spec, &rt);
    bm_test_true(t, st == 0 && rt && rt->n_kernels == nk, "second start loads the cached program");
    bmojo_runtime_free(rt);
    bm_test_true(t, have0 && stat(path, &sb1) == 0 && sb1.st_ino == sb0.st_ino,
                 "second start reuses the cache file (not rewritten)");

    /* Corrupt the entry: flip bytes in the middle and truncate. It must be dropped and rebuilt. */
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, (long)(sb0.st_size / 2), SEEK_SET);
        fputs("garbage garbage garbage", f);
        fclose(f);
    }
    rt = NULL;
    st = bmojo_runtime_create(spec, &rt);
    bm_test_true(t, st == 0 && rt && rt->n_kernels == nk, "corrupted cache file -> rebuilt from source");
    bmojo_runtime_free(rt);
    bm_test_true(t, cache_entry_sane(path, (long)(sb0.st_size / 2)), "corrupted cache file replaced by a sane one");
    if (truncate(path, 20) == 0) {
        rt = NULL;
        st = bmojo_runtime_create(spec, &rt);
        bm_test_true(t, st == 0 && rt, "truncated cache file -> rebuilt from source");
        bmojo_runtime_free(rt);
    }

    /* Unknown device spec. */
    rt = NULL;
    st = bmojo_runtime_create("no-such-device-xyz", &rt);
    bm_test_true(t, st == BMOJO_ENODEV && rt == NULL && strstr(bmojo_last_error(), t->rt->desc.name),
                 "unknown device spec -> BMOJO_ENODEV listing the devices");

    if (save_dir) setenv("BMOJO_CACHE_DIR", save_dir, 1);
    else unsetenv("BMOJO_CACHE_DIR");
    if (save_on) setenv("BMOJO_CACHE", save_on, 1);
    free(save_dir);
    free(save_on);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) bm_test_true(t, 0, "program cache: removing the temp folder");
}

void test_op_gemm(bm_test_ctx *t)
{
    static const gemm_case cases[] = {
        {1, 1, 1, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},
        {1, 37, 19, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},     /* M=1: a decoding step */
        {5, 3, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},       /* K=1 */
        {7, 13, 29, 3, 5, 2, 0, 0, 0, 0.0f, 0, 0, 0},     /* padded leading dimensions */
        {7, 13, 29, 3, 5, 2, 11, 17, 5, 1.0f, 0, 0, 0},   /* and element offsets, accumulating */
        {33, 65, 127, 0, 1, 0, 1, 0, 3, 1.0f, 0, 0, 0},
        {64, 64, 64, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},    /* tile-aligned */
        {3, 129, 300, 4, 0, 7, 2, 9, 0, 1.0f, 0, 0, 0},
        {100, 31, 257, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0},
        {17, 1, 65, 1, 1, 1, 1, 1, 1, 1.0f, 0, 0, 0},     /* N=1 */
        {9, 11, 5, 0, 0, 2, 0, 0, 3, 0.0f, 1, 0, 0},   /* beta 0 ignores a NaN C, small (direct) path */
        {130, 140, 150, 0, 0, 1, 0, 0, 1, 0.0f, 1, 0, 0}, /* and a larger (indirect) path */
    };
    for (int half = 0; half < 2; half++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            gemm_case c = cases[i];
            run_case(t, &c, half ? BM_STORE_F16 : BM_STORE_F32);
        }
    test_gemm_nt(t);
    test_gemm_nt_cpu(t);
    test_gemm_errors(t);
    test_gemm_env(t);
    test_buffers(t);
    test_program_cache(t);
}
