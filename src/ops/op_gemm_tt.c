/* op_gemm_tt.c — bm_gemm_ex, the training pass's GEMM with transposed operands (cl/gemm_tt.cl):
 * validates the views, sends NT to bm_gemm (the forward's tuned path) and NN / TN / TT to our own
 * register-tiled kernels on GPUs (on CPUs: bm_gemm's CPU kernel on transposed copies, gemm_ex_cpu;
 * CLBlast where BMOJO_GEMM=clblast), picking the tile configuration (big or thin, gemm_nt.cl's tunables), the
 * load width (float4 when aligned) and split-K, checked against the device's work-group and
 * local-memory limits. */
#include "error.h"
#include "ops.h"
#include "ops_backward.h"
#include "ops/gemm_tiles.h"

#include <limits.h>
#include <stdint.h>

/* After runtime.h (through ops.h), which fixes CL_TARGET_OPENCL_VERSION before any CL header. */
#include <clblast_c.h>

static size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

/* Tiles, their device check and the automatic thin / split-K choices: gemm_nt's (gemm_tiles.h). */

/* Whether buf holds the rows x cols view at element offset off with leading dimension ld: the
 * kernels read and write without bounds on the buffer, so a short buffer is refused here. */
static int gemm_tt_extent(cl_mem buf, const char *name, size_t off, size_t rows, size_t ld, size_t cols, size_t M,
                          size_t N, size_t K)
{
    if (rows == 0 || cols == 0) return 0;
    size_t bytes = 0;
    cl_int err = clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err != CL_SUCCESS) return bm_cl_check(err, "clGetMemObjectInfo(CL_MEM_SIZE)");
    const size_t have = bytes / sizeof(float);
    /* off + (rows - 1) * ld + cols without overflow */
    if (off > have || (rows - 1 > 0 && ld > (have - off) / (rows - 1)) || (rows - 1) * ld + cols > have - off)
        return bm_fail(BMOJO_EGEMM,
                       "bm_gemm_ex M=%zu N=%zu K=%zu: buffer %s too small (%zu floats; the view is %zu x %zu, ld %zu, "
                       "from element %zu)",
                       M, N, K, name, have, rows, cols, ld, off);
    return 0;
}

/* The argument checks of bm_gemm_ex (0 when the call is valid; M, N > 0). */
static int gemm_tt_check(bm_rt *rt, int trans_a, int trans_b, size_t M, size_t N, size_t K, cl_mem A, size_t a_off,
                         size_t lda, cl_mem B, size_t b_off, size_t ldb, cl_mem C, size_t c_off, size_t ldc)
{
    if (!rt || !A || !B || !C)
        return bm_fail(BMOJO_EINVAL, "bm_gemm_ex M=%zu N=%zu K=%zu: NULL argument (%s)", M, N, K,
                       !rt ? "rt" : !A ? "A" : !B ? "B" : "C");
    if ((trans_a != 0 && trans_a != 1) || (trans_b != 0 && trans_b != 1))
        return bm_fail(BMOJO_EINVAL, "bm_gemm_ex: trans_a %d / trans_b %d must be 0 or 1", trans_a, trans_b);
    if (M > INT_MAX / 2 || N > INT_MAX / 2 || K > INT_MAX / 2)
        return bm_fail(BMOJO_EINVAL, "bm_gemm_ex M=%zu N=%zu K=%zu: sizes above %d", M, N, K, INT_MAX / 2);
    /* The stored shapes: A [M, K] or [K, M], B [K, N] or [N, K]. */
    const size_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
    const size_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
    if (lda < a_cols)
        return bm_fail(BMOJO_EINVAL, "bm_gemm_ex M=%zu N=%zu K=%zu trans_a %d: lda %zu < %zu", M, N, K, trans_a, lda,
                       a_cols);
    if (ldb < b_cols)
        return bm_fail(BMOJO_EINVAL, "bm_gemm_ex M=%zu N=%zu K=%zu trans_b %d: ldb %zu < %zu", M, N, K, trans_b, ldb,
                       b_cols);
    if (ldc < N) return bm_fail(BMOJO_EINVAL, "bm_gemm_ex M=%zu N=%zu K=%zu: ldc %zu < N", M, N, K, ldc);
    int st = gemm_tt_extent(A, "A", a_off, a_rows, lda, a_cols, M, N, K);
    if (!st) st = gemm_tt_extent(B, "B", b_off, b_rows, ldb, b_cols, M, N, K);
    if (!st) st = gemm_tt_extent(C, "C", c_off, M, ldc, N, M, N, K);
    return st;
}

static int gemm_tt_launch(bm_rt *rt, int tiles, int split_k, int trans_a, int trans_b, size_t M, size_t N, size_t K, cl_mem A,
                          size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta, cl_mem C, size_t c_off,
                          size_t ldc)
{
    if (M == 0 || N == 0) return 0;
    if (tiles < BM_GEMM_NT_TILES_AUTO || tiles > BM_GEMM_NT_TILES_THIN || split_k < 0 || split_k > 64)
        return bm_fail(BMOJO_EINVAL, "bm_gemm_ex: bad tile choice %d or split count %d", tiles, split_k);
    int st = gemm_tt_check(rt, trans_a, trans_b, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc);
    if (st) return st;
    /* An empty inner dimension: C = beta C (BLAS semantics; beta 0 writes zeros). The kernel below
     * does exactly that with no K tiles; beta 1 leaves C as it is. */
    if (K == 0 && beta == 1.0f) return 0;
    if (K == 0) trans_a = 0, trans_b = 0; /* nothing is read: any variant will do */

    /* NT is the forward's layout: its own tuned kernel, with the same tile/split choice. */
    if (!trans_a && trans_b)
        return bm_op_gemm_nt(rt, tiles, split_k, M, N, K, A, a_off, lda, bm_wf32(B), b_off, ldb, beta, C, c_off, ldc);

    bm_gemm_tiles big = bm_gemm_tiles_of(rt, 0), thin = bm_gemm_tiles_of(rt, 1);
    int use_thin = tiles == BM_GEMM_NT_TILES_THIN ||
                   (tiles == BM_GEMM_NT_TILES_AUTO && (bm_gemm_auto_thin(rt, &big, M, N) || !bm_gemm_tiles_fit(rt, &big)));
    const bm_gemm_tiles *t = use_thin ? &thin : &big;
    if (!bm_gemm_tiles_fit(rt, t))
        return bm_fail(BMOJO_EGEMM,
                       "bm_gemm_ex: %s tiles %dx%dx%d (%dx%d per item) need %zu items and %zu bytes of local memory; "
                       "the device allows %zu items and %llu bytes",
                       use_thin ? "thin" : "big", t->bm, t->bn, t->bk, t->tm, t->tn, t->items_x * t->items_y,
                       t->local_bytes, rt->lim.max_wg, (unsigned long long)rt->lim.local_mem);

    const size_t tiles_n = div_up(N, (size_t)t->bn), tiles_m = div_up(M, (size_t)t->bm);
    size_t splits = split_k ? (size_t)split_k : (size_t)bm_gemm_auto_split(rt, tiles_n * tiles_m, K);
    if (K == 0) splits = 1;
    /* Each split covers a whole number of BK steps; recount so that no split is empty. */
    size_t k_len = K ? div_up(div_up(K, splits), (size_t)t->bk) * (size_t)t->bk : (size_t)t->bk;
    if (K) splits = div_up(K, k_len);

    /* float4 loads need every float4 16-byte aligned and none straddling an edge: offsets,
     * leading dimensions and each operand's contiguous extent (K-contiguous: K; else M or N)
     * multiples of 4. */
    const size_t a_run = trans_a ? M : K, b_run = trans_b ? K : N;
    const int vec4 = a_off % 4 == 0 && lda % 4 == 0 && a_run % 4 == 0 && b_off % 4 == 0 && ldb % 4 == 0 &&
                     b_run % 4 == 0;
    static const char *const names[3][2][2] = {
        {{"bm_gemm_tt_nn_s", "bm_gemm_tt_nn_v4"}, {"bm_gemm_tt_nn_thin_s", "bm_gemm_tt_nn_thin_v4"}},
        {{"bm_gemm_tt_tn_s", "bm_gemm_tt_tn_v4"}, {"bm_gemm_tt_tn_thin_s", "bm_gemm_tt_tn_thin_v4"}},
        {{"bm_gemm_tt_tt_s", "bm_gemm_tt_tt_v4"}, {"bm_gemm_tt_tt_thin_s", "bm_gemm_tt_tt_thin_v4"}},
    };
    const int variant = !trans_a ? 0 : !trans_b ? 1 : 2; /* NN, TN, TT (NT returned above) */
    const char *name = names[variant][use_thin][vec4];
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "gemm_tt");

    /* With split-K the kernel writes splits x [M, N] partial sums (beta 0) to scratch and
     * bm_gemm_nt_reduce adds them into C in split order. */
    cl_mem out = C;
    cl_ulong o_off = c_off, o_ld = ldc, o_split = 0;
    cl_float o_beta = beta;
    if (splits > 1) {
        st = bm_scratch_take(rt, splits * M * N * sizeof(float), &out);
        if (st) return st;
        o_off = 0, o_ld = N, o_split = (cl_ulong)M * N, o_beta = 0.0f;
    }
    cl_int c_vec4 = o_off % 4 == 0 && o_ld % 4 == 0 && o_split % 4 == 0;
    cl_int m = (cl_int)M, n = (cl_int)N, kk = (cl_int)K, kl = (cl_int)k_len;
    cl_ulong ao = a_off, la = lda, bo = b_off, lb = ldb;
    cl_int err = BM_ARG(k, 0, m) | BM_ARG(k, 1, n) | BM_ARG(k, 2, kk) | BM_ARG(k, 3, kl) | BM_ARG(k, 4, A) |
                 BM_ARG(k, 5, ao) | BM_ARG(k, 6, la) | BM_ARG(k, 7, B) | BM_ARG(k, 8, bo) | BM_ARG(k, 9, lb) |
                 BM_ARG(k, 10, o_beta) | BM_ARG(k, 11, out) | BM_ARG(k, 12, o_off) | BM_ARG(k, 13, o_ld) |
                 BM_ARG(k, 14, o_split) | BM_ARG(k, 15, c_vec4);
    st = bm_args_check(err, name);
    size_t global[3] = {tiles_n * t->items_x, tiles_m * t->items_y, splits}, local[3] = {t->items_x, t->items_y, 1};
    if (!st) st = bm_launch(rt, k, name, 3, global, local);
    if (st || splits == 1) return st;

    cl_kernel r = bm_kernel(rt, "bm_gemm_nt_reduce");
    if (!r) return bm_fail_context(BMOJO_EBUILD, "gemm_tt");
    cl_int ns = (cl_int)splits;
    cl_ulong co = c_off, lc = ldc;
    err = BM_ARG(r, 0, m) | BM_ARG(r, 1, n) | BM_ARG(r, 2, ns) | BM_ARG(r, 3, out) | BM_ARG(r, 4, o_split) |
          BM_ARG(r, 5, beta) | BM_ARG(r, 6, C) | BM_ARG(r, 7, co) | BM_ARG(r, 8, lc);
    st = bm_args_check(err, "bm_gemm_nt_reduce");
    /* 64 x 4 items: rows of 64 outputs are coalesced; shrunk to the device's limits. */
    size_t rl[2] = {64, 4};
    while (rl[0] * rl[1] > rt->lim.max_wg || rl[0] > rt->lim.max_wi[0]) {
        if (rl[0] > 1) rl[0] /= 2;
        else rl[1] /= 2;
    }
    while (rl[1] > rt->lim.max_wi[1]) rl[1] /= 2;
    size_t rg[2] = {N, M};
    if (!st) st = bm_launch(rt, r, "bm_gemm_nt_reduce", 2, rg, rl);
    return st;
}

int bm_op_gemm_tt(bm_rt *rt, int tiles, int split_k, int trans_a, int trans_b, size_t M, size_t N, size_t K, cl_mem A,
                  size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta, cl_mem C, size_t c_off,
                  size_t ldc)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = gemm_tt_launch(rt, tiles, split_k, trans_a, trans_b, M, N, K, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc);
    bm_scratch_release(rt, mark);
    return st;
}

/* dst [cols, ldd] = src^T of src's rows x cols view (cl/transpose_cpu.cl). */
static int transpose_cpu(bm_rt *rt, cl_mem src, size_t s_off, size_t lds, size_t rows, size_t cols, cl_mem dst,
                         size_t ldd)
{
    cl_kernel k = bm_kernel(rt, "bm_transpose_cpu");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_gemm_ex (CPU path)");
    cl_ulong so = s_off, sl = lds, d0 = 0, dl = ldd;
    cl_int r = (cl_int)rows, c = (cl_int)cols;
    cl_int err = BM_ARG(k, 0, src) | BM_ARG(k, 1, so) | BM_ARG(k, 2, sl) | BM_ARG(k, 3, dst) | BM_ARG(k, 4, d0) |
                 BM_ARG(k, 5, dl) | BM_ARG(k, 6, r) | BM_ARG(k, 7, c);
    int st = bm_args_check(err, "bm_transpose_cpu");
    if (st) return st;
    size_t g[2] = {div_up(cols, 16), div_up(rows, 16)}, l[2] = {1, 1};
    return bm_launch(rt, k, "bm_transpose_cpu", 2, g, l);
}

/* Floats of scratch the CPU path's transposed copies may take per pass over K. */
#define GEMM_EX_CPU_SCRATCH (16u << 20)

/* The CPU path of bm_gemm_ex (checked views, M, N, K > 0): C = op(A) op(B) as bm_gemm's NT CPU
 * kernel computes A' W'^T, with A' = op(A) [M, K] and W' = op(B)^T [N, K]: an operand already in
 * that layout (A not transposed, B transposed) is read in place, the other is transposed into
 * scratch first. K runs in passes of kc rows (the first with beta, the rest accumulating), so the
 * copies stay within GEMM_EX_CPU_SCRATCH floats whatever the batch (a dW's K is B*T). */
static int gemm_ex_cpu(bm_rt *rt, int trans_a, int trans_b, size_t M, size_t N, size_t K, cl_mem A, size_t a_off,
                       size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    const size_t copy_rows = (trans_a ? M : 0) + (trans_b ? 0 : N);
    size_t kc = rt->gemm_ex_cpu_kchunk > 0 ? (size_t)rt->gemm_ex_cpu_kchunk
                : copy_rows ? GEMM_EX_CPU_SCRATCH / copy_rows : K;
    if (kc < 64 && rt->gemm_ex_cpu_kchunk <= 0) kc = 64;
    if (kc > K) kc = K;
    cl_mem at = NULL, wt = NULL;
    int st = 0;
    if (trans_a) st = bm_scratch_take(rt, M * kc * sizeof(float), &at);
    if (!st && !trans_b) st = bm_scratch_take(rt, N * kc * sizeof(float), &wt);
    for (size_t k0 = 0; !st && k0 < K; k0 += kc) {
        const size_t kn = K - k0 < kc ? K - k0 : kc;
        cl_mem a1 = A, w1 = B;
        size_t a1_off = a_off + k0, a1_ld = lda, w1_off = b_off + k0, w1_ld = ldb;
        /* op(A)[:, k0:k0+kn]: A stored [K, M] -> rows k0.. transposed to [M, kn] */
        if (trans_a) {
            st = transpose_cpu(rt, A, a_off + k0 * lda, lda, kn, M, at, kn);
            a1 = at, a1_off = 0, a1_ld = kn;
        }
        /* op(B)^T[:, k0:k0+kn]: B stored [K, N] -> rows k0.. transposed to [N, kn] */
        if (!st && !trans_b) {
            st = transpose_cpu(rt, B, b_off + k0 * ldb, ldb, kn, N, wt, kn);
            w1 = wt, w1_off = 0, w1_ld = kn;
        }
        if (!st)
            st = bm_gemm(rt, M, N, kn, a1, a1_off, a1_ld, bm_wf32(w1), w1_off, w1_ld, k0 == 0 ? beta : 1.0f, C, c_off,
                         ldc);
    }
    return st;
}

int bm_gemm_ex(bm_rt *rt, int trans_a, int trans_b, size_t M, size_t N, size_t K, cl_mem A, size_t a_off,
               size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    /* NT with rows to multiply: bm_gemm exactly as the forward runs it (its kernel choice: the GEMV
     * for few rows, CLBlast or our gemm_nt per BMOJO_GEMM), so Y = X W^T is the same in training
     * and inference. Everything else (and K = 0, where bm_gemm would leave C alone) below. */
    if (trans_a == 0 && trans_b == 1 && K > 0) {
        if (!rt) return bm_fail(BMOJO_EINVAL, "bm_gemm_ex: NULL rt");
        return bm_gemm(rt, M, N, K, A, a_off, lda, bm_wf32(B), b_off, ldb, beta, C, c_off, ldc);
    }
    /* bm_gemm's rule (gemm.c gemm_kernel_for) for the other layouts too: on CPUs (auto, or
     * BMOJO_GEMM=own-cpu) the NT CPU kernel on transposed copies (gemm_ex_cpu); CLBlast where
     * BMOJO_GEMM says so (on POCL it ran these layouts at 10-14 GFLOP/s, bench --ops at 1024^3,
     * against our gemm_tt's 4.5-9); our kernels on GPUs, where CLBlast was 1.3-3x slower than ours
     * for the forward (gemm.c). The views are checked here first (CLBlast would read past a short
     * buffer's end as our kernels would). */
    const int layouts_ok = rt && (trans_a == 0 || trans_a == 1) && (trans_b == 0 || trans_b == 1) && M && N && K;
    if (layouts_ok && (rt->gemm_mode == BM_GEMM_MODE_OWN_CPU || (rt->gemm_mode == BM_GEMM_MODE_AUTO && !rt->lim.is_gpu))) {
        int st = gemm_tt_check(rt, trans_a, trans_b, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc);
        if (st) return st;
        int mark = bm_scratch_mark(rt);
        st = gemm_ex_cpu(rt, trans_a, trans_b, M, N, K, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc);
        bm_scratch_release(rt, mark);
        return st;
    }
    if (layouts_ok && rt->gemm_mode == BM_GEMM_MODE_CLBLAST) {
        int st = gemm_tt_check(rt, trans_a, trans_b, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc);
        if (st) return st;
        CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                           trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, M, N, K, 1.0f, A, a_off,
                                           lda, B, b_off, ldb, beta, C, c_off, ldc, &rt->queue, NULL);
        if (s == CLBlastSuccess) return 0;
        return bm_fail(BMOJO_EGEMM, "CLBlastSgemm (%c%c) M=%zu N=%zu K=%zu failed: CLBlast status %d",
                       trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, (int)s);
    }
    int tiles = !rt                                          ? BM_GEMM_NT_TILES_AUTO
                : rt->gemm_mode == BM_GEMM_MODE_OWN_BIG    ? BM_GEMM_NT_TILES_BIG
                : rt->gemm_mode == BM_GEMM_MODE_OWN_THIN ? BM_GEMM_NT_TILES_THIN
                                                         : BM_GEMM_NT_TILES_AUTO;
    return bm_op_gemm_tt(rt, tiles, rt ? rt->gemm_split_k : 0, trans_a, trans_b, M, N, K, A, a_off, lda, B, b_off,
                         ldb, beta, C, c_off, ldc);
}
