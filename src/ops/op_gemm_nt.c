/* op_gemm_nt.c — launcher of our own SGEMM for the NT layout (cl/gemm_nt.cl): picks the tile
 * configuration (big or thin), the load width (float4 when aligned) and split-K, and checks them
 * against the device's work-group and local-memory limits. */
#include <stdio.h>

#include "error.h"
#include "ops.h"
#include "ops/gemm_tiles.h"

#include <limits.h>

/* Offsets of BM, BN, BK, TM, TN within a tile configuration of rt->config (BM_CFG_GEMM_BIG /
 * BM_CFG_GEMM_THIN: the sizes the program was compiled with, read at start-up). */
enum { CFG_BM, CFG_BN, CFG_BK, CFG_TM, CFG_TN };

bm_gemm_tiles bm_gemm_tiles_of(const bm_rt *rt, int thin)
{
    const int *c = rt->config + (thin ? BM_CFG_GEMM_THIN : BM_CFG_GEMM_BIG);
    bm_gemm_tiles t = {c[CFG_BM], c[CFG_BN], c[CFG_BK], c[CFG_TM], c[CFG_TN], 0, 0, 0, NULL, NULL};
    t.items_x = (size_t)(t.bn / t.tn);
    t.items_y = (size_t)(t.bm / t.tm);
    t.local_bytes = 2 * (size_t)t.bk * ((size_t)t.bm + 4 + (size_t)t.bn + 4) * sizeof(float);
    t.name_v4 = thin ? "bm_gemm_nt_thin_v4" : "bm_gemm_nt_v4";
    t.name_s = thin ? "bm_gemm_nt_thin_s" : "bm_gemm_nt_s";
    return t;
}

int bm_gemm_tiles_fit(const bm_rt *rt, const bm_gemm_tiles *t)
{
    return t->items_x * t->items_y <= rt->lim.max_wg && t->items_x <= rt->lim.max_wi[0] &&
           t->items_y <= rt->lim.max_wi[1] && t->local_bytes <= rt->lim.local_mem;
}

static size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

/* ---- The automatic choices (the rules to revisit after measuring on a GPU) ---- */

/* Thin tiles for thin shapes, and whenever the big tiles would leave compute units without a
 * work-group (e.g. M = 512, N = 768: 24 big groups on 132 SMs, 96 thin ones). */
int bm_gemm_auto_thin(const bm_rt *rt, const bm_gemm_tiles *big, size_t M, size_t N)
{
    if (N <= 128 || M <= 64) return 1;
    size_t groups = div_up(M, (size_t)big->bm) * div_up(N, (size_t)big->bn);
    /* H200, T 2048: big tiles won at 2.9 groups per compute unit (in_proj 273 vs 337 us) and 3.9
     * (gate|up), lost at 1.2 (q|k|v 178 vs 152 us) */
    return rt->lim.is_gpu && groups < 2 * (size_t)rt->lim.compute_units;
}

/* Split-K when the output tiles give fewer work-groups than compute units and K is long: enough
 * splits to reach ~2 groups per compute unit, each split keeping at least 256 of K, so
 * that the partial sums' extra traffic (splits x M x N floats written and read back) stays
 * small next to the operand reads. CPUs (POCL) run one group per core: no split. */
int bm_gemm_auto_split(const bm_rt *rt, size_t groups, size_t K)
{
    if (!rt->lim.is_gpu || groups >= rt->lim.compute_units) return 1;
    size_t want = div_up(2 * (size_t)rt->lim.compute_units, groups), most = K / 256;
    if (want > most) want = most;
    if (want > 16) want = 16;
    return want < 1 ? 1 : (int)want;
}

static int gemm_nt_launch(bm_rt *rt, int tiles, int split_k, size_t M, size_t N, size_t K, cl_mem A, size_t a_off,
                          size_t lda, bm_wmat W, size_t w_off, size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    if (M == 0 || N == 0 || K == 0) return 0;
    if (!rt || !A || !W.buf || !C) return bm_fail(BMOJO_EINVAL, "bm_op_gemm_nt M=%zu N=%zu K=%zu: NULL argument", M, N, K);
    if (lda < K || ldw < K || ldc < N || M > INT_MAX / 2 || N > INT_MAX / 2 || K > INT_MAX / 2)
        return bm_fail(BMOJO_EINVAL, "bm_op_gemm_nt M=%zu N=%zu K=%zu: bad sizes (lda %zu ldw %zu ldc %zu)", M, N, K,
                       lda, ldw, ldc);
    if (tiles < BM_GEMM_NT_TILES_AUTO || tiles > BM_GEMM_NT_TILES_THIN || split_k < 0 || split_k > 64)
        return bm_fail(BMOJO_EINVAL, "bm_op_gemm_nt: bad tile choice %d or split count %d", tiles, split_k);
    bm_gemm_tiles big = bm_gemm_tiles_of(rt, 0), thin = bm_gemm_tiles_of(rt, 1);
    int use_thin = tiles == BM_GEMM_NT_TILES_THIN ||
                   (tiles == BM_GEMM_NT_TILES_AUTO && (bm_gemm_auto_thin(rt, &big, M, N) || !bm_gemm_tiles_fit(rt, &big)));
    const bm_gemm_tiles *t = use_thin ? &thin : &big;
    if (!bm_gemm_tiles_fit(rt, t))
        return bm_fail(BMOJO_EGEMM,
                       "bm_op_gemm_nt: %s tiles %dx%dx%d (%dx%d per item) need %zu items and %zu bytes of local "
                       "memory; the device allows %zu items and %llu bytes",
                       use_thin ? "thin" : "big", t->bm, t->bn, t->bk, t->tm, t->tn, t->items_x * t->items_y,
                       t->local_bytes, rt->lim.max_wg, (unsigned long long)rt->lim.local_mem);

    const size_t tiles_n = div_up(N, (size_t)t->bn), tiles_m = div_up(M, (size_t)t->bm);
    size_t splits = split_k ? (size_t)split_k : (size_t)bm_gemm_auto_split(rt, tiles_n * tiles_m, K);
    /* Each split covers a whole number of BK steps; recount so that no split is empty. */
    size_t k_len = div_up(div_up(K, splits), (size_t)t->bk) * (size_t)t->bk;
    splits = div_up(K, k_len);

    const int vec4 = K % 4 == 0 && lda % 4 == 0 && ldw % 4 == 0 && a_off % 4 == 0 && w_off % 4 == 0;
    char name[64]; /* the f16-W forms are the same kernels with W read through vload_half */
    snprintf(name, sizeof name, "%s%s", vec4 ? t->name_v4 : t->name_s, W.store == BM_STORE_F16 ? "_w16" : "");
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "gemm_nt");

    /* With split-K the kernel writes splits x [M, N] partial sums (beta 0) to scratch and
     * bm_gemm_nt_reduce adds them into C. */
    cl_mem out = C;
    cl_ulong o_off = c_off, o_ld = ldc, o_split = 0;
    cl_float o_beta = beta;
    int st = 0;
    if (splits > 1) {
        st = bm_scratch_take(rt, splits * M * N * sizeof(float), &out);
        if (st) return st;
        o_off = 0, o_ld = N, o_split = (cl_ulong)M * N, o_beta = 0.0f;
    }
    cl_int c_vec4 = o_off % 4 == 0 && o_ld % 4 == 0 && o_split % 4 == 0;
    cl_int m = (cl_int)M, n = (cl_int)N, kk = (cl_int)K, kl = (cl_int)k_len;
    cl_ulong ao = a_off, la = lda, wo = w_off, lw = ldw;
    cl_int err = BM_ARG(k, 0, m) | BM_ARG(k, 1, n) | BM_ARG(k, 2, kk) | BM_ARG(k, 3, kl) | BM_ARG(k, 4, A) |
                 BM_ARG(k, 5, ao) | BM_ARG(k, 6, la) | BM_ARG(k, 7, W.buf) | BM_ARG(k, 8, wo) | BM_ARG(k, 9, lw) |
                 BM_ARG(k, 10, o_beta) | BM_ARG(k, 11, out) | BM_ARG(k, 12, o_off) | BM_ARG(k, 13, o_ld) |
                 BM_ARG(k, 14, o_split) | BM_ARG(k, 15, c_vec4);
    st = bm_args_check(err, name);
    size_t global[3] = {tiles_n * t->items_x, tiles_m * t->items_y, splits}, local[3] = {t->items_x, t->items_y, 1};
    if (!st) st = bm_launch(rt, k, name, 3, global, local);
    if (st || splits == 1) return st;

    cl_kernel r = bm_kernel(rt, "bm_gemm_nt_reduce");
    if (!r) return bm_fail_context(BMOJO_EBUILD, "gemm_nt");
    cl_int ns = (cl_int)splits;
    cl_ulong co = c_off, lc = ldc;
    err = BM_ARG(r, 0, m) | BM_ARG(r, 1, n) | BM_ARG(r, 2, ns) | BM_ARG(r, 3, out) | BM_ARG(r, 4, o_split) |
          BM_ARG(r, 5, beta) | BM_ARG(r, 6, C) | BM_ARG(r, 7, co) | BM_ARG(r, 8, lc);
    st = bm_args_check(err, "bm_gemm_nt_reduce");
    /* 64 x 4 items: rows of 64 outputs are coalesced; within any device's limit of >= 1 x 1. */
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

int bm_op_gemm_nt(bm_rt *rt, int tiles, int split_k, size_t M, size_t N, size_t K, cl_mem A, size_t a_off,
                  size_t lda, bm_wmat W, size_t w_off, size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = gemm_nt_launch(rt, tiles, split_k, M, N, K, A, a_off, lda, W, w_off, ldw, beta, C, c_off, ldc);
    bm_scratch_release(rt, mark);
    return st;
}
