/* op_bmojo_backward.c — host launchers of the B'MOJO attention's backward (ops_backward.h):
 * bm_op_bmojo_sets (the eidetic sets of whole sequences, selected by the forward's own kernels
 * so that they are bit-identical to what bm_bmojo_mix attends over) and
 * bm_op_bmojo_attention_backward (cl/bmojo_backward.cl: dq, then the per-chunk memory-slot
 * gradients, then the per-position gathers; 3 launches, no atomics, deterministic). */
#include "ops.h"
#include "ops_backward.h"
#include "ops_bmojo.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Work-group size of the backward kernels (a power of two, at most BM_WG): items share a batch
 * of keys (dq) or of (query, head) uses (key gradients), then own columns of dh. 64 keeps a
 * batch about as long as a typical window on CPUs and leaves GPUs many groups; not tuned. */
#ifndef BM_BMOJO_BWD_WG
#define BM_BMOJO_BWD_WG 64
#endif

/* The tiled kernels' -D tunables (cl/bmojo_backward.cl's defaults, read back from the build
 * options so that kernel and launcher agree) and the launcher's own cap on NY (rows of items):
 * BM_BBT_NX items per row of a group, BM_BBT_TR x BM_BBT_TC score entries per item,
 * BM_BBT_DCMAX columns per item (head_dim <= NX * DCMAX), BM_BBT_NYMAX rows of items. */
#define BBT_NX_DEFAULT 16
#define BBT_TR_DEFAULT 4
#define BBT_TC_DEFAULT 2
#define BBT_DCMAX_DEFAULT 8
#define BBT_NYMAX_DEFAULT 16

static size_t bwd_round(size_t n) { return (n + 63) & ~(size_t)63; } /* 256-byte aligned regions */

static int bwd_nchunks(const bm_bmojo_bwd_args *a) { return (a->T + a->window - 1) / a->window; }

/* Checks what both launchers read: sizes, the y / sets buffers. */
static int bwd_check_common(const char *fn, const bm_bmojo_bwd_args *a)
{
    if (!a) return bm_fail(BMOJO_EINVAL, "%s: NULL arguments", fn);
    if (a->B < 1 || a->T < 0)
        return bm_fail(BMOJO_EINVAL, "%s: bad sizes B=%d T=%d", fn, a->B, a->T);
    if (a->window < 1) return bm_fail(BMOJO_EINVAL, "%s: window must be >= 1 (got %d)", fn, a->window);
    if (a->m_f < 0 || a->m_e < 0)
        return bm_fail(BMOJO_EINVAL, "%s: m_f=%d / m_e=%d must be >= 0", fn, a->m_f, a->m_e);
    /* positions are ints in the kernels, and key codes 2*p+1 */
    if ((int64_t)a->B * a->T >= INT_MAX / 2)
        return bm_fail(BMOJO_ERANGE, "%s: B*T = %lld rows out of range", fn, (long long)a->B * a->T);
    if (!a->sets) return bm_fail(BMOJO_EINVAL, "%s: sets is NULL", fn);
    return 0;
}

/* The forward's selection path (op_bmojo.c, bm_bmojo_mix with pos0 = 0): bm_bmojo_innovation
 * (the same work-group size, so the same eps bits), bm_bmojo_chunk_top, bm_bmojo_merge, with a
 * zero y history and no candidates; then bm_bmojo_bwd_sets_fill copies E(s_c) into sets with
 * the -1 pads. The merge's final candidate list goes to scratch (unused). */
static int bmojo_sets_launch(bm_rt *rt, const bm_bmojo_bwd_args *a)
{
    static const char fn[] = "bm_op_bmojo_sets";
    int st = bwd_check_common(fn, a);
    if (st) return st;
    if (a->d < 1) return bm_fail(BMOJO_EINVAL, "%s: d must be >= 1 (got %d)", fn, a->d);
    if (a->n_taps < 1 || a->n_taps > BM_BMOJO_MAX_TAPS || !a->taps)
        return bm_fail(BMOJO_EINVAL, "%s: predictor needs 1..%d taps (got %d)", fn, BM_BMOJO_MAX_TAPS, a->n_taps);
    if (a->T == 0) return 0;
    if (!a->y && a->m_e > 0) return bm_fail(BMOJO_EINVAL, "%s: y is NULL", fn);
    const int T = a->T, w = a->window, me = a->m_e, NC = bwd_nchunks(a);
    const size_t B = (size_t)a->B, wg = rt->lim.wg;
    cl_int err = 0, cB = a->B, cT = T, cd = a->d, ck = a->n_taps, cw = w, cme = me, cpos0 = 0, cNC = NC;
    size_t at = 0;
    const cl_ulong o_eps = at;
    at += bwd_round(B * T);
    const cl_ulong o_te = at;
    at += bwd_round(B * NC * me);
    const cl_ulong o_tp = at;
    at += bwd_round(B * NC * me);
    const cl_ulong o_sel = at;
    at += bwd_round(B * NC * me);
    const cl_ulong o_we = at;
    at += bwd_round(B * 2 * me);
    const cl_ulong o_wp = at;
    at += bwd_round(B * 2 * me);
    const cl_ulong o_ws = at;
    at += bwd_round(B * 2 * me);
    cl_mem scr = NULL, cand_eps = NULL, cand_pos = NULL, y_hist = NULL;
    cl_kernel kn;
    int i;
    if (me > 0) {
        if ((st = bm_scratch_take(rt, at * sizeof(float), &scr)) ||
            (st = bm_scratch_take(rt, B * me * sizeof(float), &cand_eps)) ||
            (st = bm_scratch_take(rt, B * me * sizeof(int32_t), &cand_pos)) ||
            (st = bm_scratch_take(rt, B * a->n_taps * a->d * sizeof(float), &y_hist)))
            return bm_fail_context(st, "%s", fn);
        if ((st = bm_fill_zero(rt, y_hist, 0, B * a->n_taps * a->d * sizeof(float)))) return st;

        cl_float16 taps;
        for (int j = 0; j < 16; j++) taps.s[j] = j < a->n_taps ? a->taps[j] : 0.0f;
        if (!(kn = bm_kernel(rt, "bm_bmojo_innovation"))) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
        i = 0;
        err |= BM_ARG(kn, i++, a->y);
        err |= BM_ARG(kn, i++, y_hist);
        err |= BM_ARG(kn, i++, scr);
        err |= BM_ARG(kn, i++, o_eps);
        err |= BM_ARG(kn, i++, cT);
        err |= BM_ARG(kn, i++, cd);
        err |= BM_ARG(kn, i++, ck);
        err |= BM_ARG(kn, i++, taps);
        if ((st = bm_args_check(err, "bm_bmojo_innovation"))) return st;
        size_t g[2] = {wg, B * T}, l[3] = {wg, 1, 1};
        if ((st = bm_launch(rt, kn, "bm_bmojo_innovation", 2, g, l))) return st;

        if (!(kn = bm_kernel(rt, "bm_bmojo_chunk_top"))) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
        i = 0;
        err |= BM_ARG(kn, i++, scr);
        err |= BM_ARG(kn, i++, o_eps);
        err |= BM_ARG(kn, i++, o_te);
        err |= BM_ARG(kn, i++, o_tp);
        err |= BM_ARG(kn, i++, cT);
        err |= BM_ARG(kn, i++, cw);
        err |= BM_ARG(kn, i++, cme);
        err |= BM_ARG(kn, i++, cpos0);
        err |= BM_ARG(kn, i++, cNC);
        const size_t seg = (size_t)(T < w ? T : w);
        cl_int nparts = 1; /* as op_bmojo.c: ~BM_BMOJO_RANK_KEYS (32) compares per item */
        while ((size_t)nparts < wg && (size_t)nparts * 32 < seg) nparts *= 2;
        err |= BM_ARG(kn, i++, nparts);
        if ((st = bm_args_check(err, "bm_bmojo_chunk_top"))) return st;
        const size_t per_group = wg / (size_t)nparts;
        size_t g3[3] = {(seg + per_group - 1) / per_group * wg, (size_t)NC, B};
        if ((st = bm_launch(rt, kn, "bm_bmojo_chunk_top", 3, g3, l))) return st;

        if (!(kn = bm_kernel(rt, "bm_bmojo_merge"))) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
        i = 0;
        err |= BM_ARG(kn, i++, scr);
        err |= BM_ARG(kn, i++, o_te);
        err |= BM_ARG(kn, i++, o_tp);
        err |= BM_ARG(kn, i++, cand_eps);
        err |= BM_ARG(kn, i++, cand_pos);
        err |= BM_ARG(kn, i++, o_sel);
        err |= BM_ARG(kn, i++, o_we);
        err |= BM_ARG(kn, i++, o_wp);
        err |= BM_ARG(kn, i++, o_ws);
        err |= BM_ARG(kn, i++, cT);
        err |= BM_ARG(kn, i++, cw);
        err |= BM_ARG(kn, i++, cme);
        err |= BM_ARG(kn, i++, cpos0);
        err |= BM_ARG(kn, i++, cNC);
        if ((st = bm_args_check(err, "bm_bmojo_merge"))) return st;
        size_t g2[2] = {wg, B};
        if ((st = bm_launch(rt, kn, "bm_bmojo_merge", 2, g2, l))) return st;
    }

    if (!(kn = bm_kernel(rt, "bm_bmojo_bwd_sets_fill"))) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    cl_mem src = scr ? scr : a->sets; /* not read when m_e == 0 */
    i = 0;
    err |= BM_ARG(kn, i++, src);
    err |= BM_ARG(kn, i++, o_sel);
    err |= BM_ARG(kn, i++, a->sets);
    err |= BM_ARG(kn, i++, cB);
    err |= BM_ARG(kn, i++, cNC);
    err |= BM_ARG(kn, i++, cw);
    err |= BM_ARG(kn, i++, cme);
    if ((st = bm_args_check(err, "bm_bmojo_bwd_sets_fill"))) return st;
    const size_t n = B * NC * (size_t)(me > 0 ? me : 1), l1 = wg;
    size_t g1 = (n + l1 - 1) / l1 * l1;
    return bm_launch(rt, kn, "bm_bmojo_bwd_sets_fill", 1, &g1, &l1);
}

int bm_op_bmojo_sets(bm_rt *rt, const bm_bmojo_bwd_args *a)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = bmojo_sets_launch(rt, a);
    bm_scratch_release(rt, mark);
    return st;
}

/* Sets the BM_BMOJO_BWD_VIEWS arguments (cl/bmojo_backward.cl) from index *ip on. */
static cl_int bwd_view_args(cl_kernel k, cl_uint *ip, const bm_bmojo_bwd_args *a)
{
    cl_ulong q_ld = a->q_ld, q_col = a->q_col, x_ld = a->x_ld, kx_col = a->kx_col, vx_col = a->vx_col;
    cl_ulong f_ld = a->f_ld, kf_col = a->kf_col, vf_col = a->vf_col, o_ld = a->o_ld;
    cl_int cT = a->T, cH = a->H, cHkv = a->Hkv, cdh = a->dh, cw = a->window, cmf = a->m_f, cme = a->m_e;
    cl_int cNC = bwd_nchunks(a), err = 0;
    cl_float scale = a->scale;
    cl_uint i = *ip;
    err |= BM_ARG(k, i++, a->q);
    err |= BM_ARG(k, i++, q_ld);
    err |= BM_ARG(k, i++, q_col);
    err |= BM_ARG(k, i++, a->kx);
    err |= BM_ARG(k, i++, a->vx);
    err |= BM_ARG(k, i++, x_ld);
    err |= BM_ARG(k, i++, kx_col);
    err |= BM_ARG(k, i++, vx_col);
    err |= BM_ARG(k, i++, a->kf);
    err |= BM_ARG(k, i++, a->vf);
    err |= BM_ARG(k, i++, f_ld);
    err |= BM_ARG(k, i++, kf_col);
    err |= BM_ARG(k, i++, vf_col);
    err |= BM_ARG(k, i++, a->o);
    err |= BM_ARG(k, i++, a->dout);
    err |= BM_ARG(k, i++, o_ld);
    err |= BM_ARG(k, i++, a->sets);
    err |= BM_ARG(k, i++, cT);
    err |= BM_ARG(k, i++, cH);
    err |= BM_ARG(k, i++, cHkv);
    err |= BM_ARG(k, i++, cdh);
    err |= BM_ARG(k, i++, cw);
    err |= BM_ARG(k, i++, cmf);
    err |= BM_ARG(k, i++, cme);
    err |= BM_ARG(k, i++, cNC);
    err |= BM_ARG(k, i++, scale);
    *ip = i;
    return err;
}

/* A view of `cols` columns from `col` in rows of `ld` (one row needs no ld). */
static int bwd_view_ok(int rows, size_t ld, size_t col, size_t cols) { return rows <= 1 || ld >= col + cols; }

/* The work-group size: BM_BMOJO_BWD_WG, at most BM_WG and what each kernel and the device take,
 * a power of two, halved until the local arrays (nf floats per column of dh, 3 per item) fit. */
static size_t bwd_wg(bm_rt *rt, cl_kernel const *ks, int nk, int dh, int nf)
{
    size_t L = BM_BMOJO_BWD_WG < rt->lim.wg ? BM_BMOJO_BWD_WG : rt->lim.wg;
    if (rt->lim.max_wi[0] && rt->lim.max_wi[0] < L) L = rt->lim.max_wi[0];
    for (int j = 0; j < nk; j++) {
        size_t kwg = 0;
        if (clGetKernelWorkGroupInfo(ks[j], rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) ==
                CL_SUCCESS && kwg > 0 && kwg < L)
            L = kwg;
    }
    size_t p = 1;
    while (p * 2 <= L) p *= 2;
    for (L = p; L >= 1; L /= 2)
        if (sizeof(float) * ((size_t)nf * dh + 3 * L) <= rt->lim.local_mem) return L;
    return 0;
}

static int bmojo_attention_backward_launch(bm_rt *rt, const bm_bmojo_bwd_args *a)
{
    static const char fn[] = "bm_op_bmojo_attention_backward";
    int st = bwd_check_common(fn, a);
    if (st) return st;
    if (a->H < 1 || a->Hkv < 1 || a->H % a->Hkv || a->dh < 1)
        return bm_fail(BMOJO_EINVAL, "%s: bad heads H=%d Hkv=%d dh=%d", fn, a->H, a->Hkv, a->dh);
    if ((int64_t)a->B * a->T * a->H >= INT_MAX)
        return bm_fail(BMOJO_ERANGE, "%s: B*T*H out of range", fn);
    if (a->T == 0) return 0;
    if (!a->q || !a->kx || !a->vx || !a->kf || !a->vf || !a->o || !a->dout)
        return bm_fail(BMOJO_EINVAL, "%s: an input buffer (q, kx, vx, kf, vf, o, dout) is NULL", fn);
    if (!a->dq || !a->dkx || !a->dvx || !a->dkf || !a->dvf)
        return bm_fail(BMOJO_EINVAL, "%s: a gradient buffer (dq, dkx, dvx, dkf, dvf) is NULL", fn);
    const int rows = a->B * a->T;
    const size_t HD = (size_t)a->H * a->dh, KV = (size_t)a->Hkv * a->dh;
    if (!bwd_view_ok(rows, a->q_ld, a->q_col, HD)) return bm_fail(BMOJO_EINVAL, "%s: q_ld %zu too small", fn, a->q_ld);
    if (!bwd_view_ok(rows, a->x_ld, a->kx_col, KV) || !bwd_view_ok(rows, a->x_ld, a->vx_col, KV))
        return bm_fail(BMOJO_EINVAL, "%s: x_ld %zu too small for kx/vx", fn, a->x_ld);
    if (!bwd_view_ok(rows, a->f_ld, a->kf_col, KV) || !bwd_view_ok(rows, a->f_ld, a->vf_col, KV))
        return bm_fail(BMOJO_EINVAL, "%s: f_ld %zu too small for kf/vf", fn, a->f_ld);
    if (!bwd_view_ok(rows, a->o_ld, 0, HD)) return bm_fail(BMOJO_EINVAL, "%s: o_ld %zu too small", fn, a->o_ld);
    if (!bwd_view_ok(rows, a->dq_ld, a->dq_col, HD))
        return bm_fail(BMOJO_EINVAL, "%s: dq_ld %zu too small", fn, a->dq_ld);
    if (!bwd_view_ok(rows, a->dx_ld, a->dkx_col, KV) || !bwd_view_ok(rows, a->dx_ld, a->dvx_col, KV))
        return bm_fail(BMOJO_EINVAL, "%s: dx_ld %zu too small for dkx/dvx", fn, a->dx_ld);
    if (!bwd_view_ok(rows, a->df_ld, a->dkf_col, KV) || !bwd_view_ok(rows, a->df_ld, a->dvf_col, KV))
        return bm_fail(BMOJO_EINVAL, "%s: df_ld %zu too small for dkf/dvf", fn, a->df_ld);

    const int NC = bwd_nchunks(a), M = a->m_f + a->m_e;
    const size_t B = (size_t)a->B, T = (size_t)a->T, dh = (size_t)a->dh;
    cl_kernel kq = bm_kernel(rt, "bm_bmojo_bwd_q"), km = bm_kernel(rt, "bm_bmojo_bwd_mem");
    cl_kernel kk = bm_kernel(rt, "bm_bmojo_bwd_keys");
    if (!kq || !km || !kk) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    const cl_kernel all[3] = {kq, km, kk};
    const size_t L = bwd_wg(rt, all, 3, a->dh, 4);
    if (!L)
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: head_dim %d does not fit the device's %llu bytes of local memory", fn,
                       a->dh, (unsigned long long)rt->lim.local_mem);

    /* scratch: lse, D [B*T, H]; dmk, dmv [B, NC, Hkv, M, dh] */
    size_t at = 0;
    const cl_ulong o_lse = at;
    at += bwd_round(B * T * a->H);
    const cl_ulong o_dd = at;
    at += bwd_round(B * T * a->H);
    const size_t nmem = B * NC * a->Hkv * (size_t)M * dh;
    const cl_ulong o_mk = at;
    at += bwd_round(nmem);
    const cl_ulong o_mv = at;
    at += bwd_round(nmem);
    cl_mem scr = NULL;
    if ((st = bm_scratch_take(rt, at * sizeof(float), &scr))) return bm_fail_context(st, "%s", fn);
    const size_t fl = sizeof(float), il = sizeof(cl_int);


    int tiled = 0;
    cl_int tq_qt = 0, tq_tpc = 0;
    size_t lq_t = 0, lk_t = 0, BRq = 0, BKk = 0, BKq = 0;
    /* The tiled path (cl/bmojo_backward.cl, bm_bmojo_bwd_q_tiled / _keys_tiled) when its tiles
     * fit: NY rows of NX items, as many as the work-group limits, BM_BBT_NYMAX and the local
     * memory allow (each kernel its own; at dh 64 on a 48 KiB GPU: 12 rows = 192 items, QT 16
     * tokens at rep 3, for dq; 10 rows = 160 items, 40 positions, for the keys). Else the per-row
     * kernels below. Correct on POCL (tests/ops/test_bmojo_backward.c); not yet timed on a GPU. */
    {
        const long NX = bm_build_tunable(rt, "BM_BBT_NX", BBT_NX_DEFAULT), TR = bm_build_tunable(rt, "BM_BBT_TR", BBT_TR_DEFAULT);
        const long TC = bm_build_tunable(rt, "BM_BBT_TC", BBT_TC_DEFAULT);
        const long DCMAX = bm_build_tunable(rt, "BM_BBT_DCMAX", BBT_DCMAX_DEFAULT);
        const long NYMAX = bm_build_tunable(rt, "BM_BBT_NYMAX", BBT_NYMAX_DEFAULT);
        cl_kernel tq = bm_kernel(rt, "bm_bmojo_bwd_q_tiled"), tk = bm_kernel(rt, "bm_bmojo_bwd_keys_tiled");
        if (!tq || !tk) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
        const long rep = a->H / a->Hkv, ld = a->dh + 1, BK = NX * TC;
        long nyq = 0, nyk = 0;
        if (a->dh <= NX * DCMAX) {
            for (int j = 0; j < 2; j++) {
                size_t wg = rt->lim.wg, kwg = 0;
                if (rt->lim.max_wi[0] && rt->lim.max_wi[0] < wg) wg = rt->lim.max_wi[0];
                if (clGetKernelWorkGroupInfo(j ? tk : tq, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg,
                                             NULL) == CL_SUCCESS && kwg > 0 && kwg < wg)
                    wg = kwg;
                long ny = (long)(wg / (size_t)NX);
                if (ny > NYMAX) ny = NYMAX;
                for (; ny >= 1; ny--) {
                    const long R = ny * TR;
                    const size_t fl = j ? (size_t)(2 * R * ld + 2 * BK * ld + 2 * R * (BK + 1) + 3 * BK + R)
                                        : (size_t)(2 * R * ld + 2 * BK * ld + R * (BK + 1) + 3 * R);
                    if (fl * sizeof(float) <= rt->lim.local_mem) break;
                }
                if (j) nyk = ny;
                else nyq = ny;
            }
        }
        if (nyq >= 1 && nyk >= 1 && nyq * TR >= rep) {
            tiled = 1;
            kq = tq;
            kk = tk;
            const long QT = nyq * TR / rep, span = a->window < a->T ? a->window : a->T;
            tq_qt = (cl_int)QT;
            tq_tpc = (cl_int)((span + QT - 1) / QT);
            lq_t = (size_t)(NX * nyq);
            lk_t = (size_t)(NX * nyk);
            BRq = (size_t)(nyq * TR);
            BKk = (size_t)(nyk * TR);
            BKq = (size_t)BK;
        }
    }
    /* 1. dq, lse, D */
    cl_ulong dq_ld = a->dq_ld, dq_col = a->dq_col;
    cl_uint i = 0;
    cl_int err = bwd_view_args(kq, &i, a);
    err |= BM_ARG(kq, i++, a->dq);
    err |= BM_ARG(kq, i++, dq_ld);
    err |= BM_ARG(kq, i++, dq_col);
    err |= BM_ARG(kq, i++, scr);
    err |= BM_ARG(kq, i++, o_lse);
    err |= BM_ARG(kq, i++, o_dd);
    size_t lq[3] = {L, 1, 1};
    if (tiled) {
        const size_t ldp = dh + 1;
        err |= BM_ARG(kq, i++, tq_qt);
        err |= BM_ARG(kq, i++, tq_tpc);
        err |= BM_ARG_LOCAL(kq, i++, fl * BRq * ldp);
        err |= BM_ARG_LOCAL(kq, i++, fl * BRq * ldp);
        err |= BM_ARG_LOCAL(kq, i++, fl * BKq * ldp);
        err |= BM_ARG_LOCAL(kq, i++, fl * BKq * ldp);
        err |= BM_ARG_LOCAL(kq, i++, fl * BRq * (BKq + 1));
        err |= BM_ARG_LOCAL(kq, i++, fl * 3 * BRq);
        if ((st = bm_args_check(err, "bm_bmojo_bwd_q_tiled"))) return st;
        size_t gt[3] = {lq_t * (size_t)NC * (size_t)tq_tpc, (size_t)a->Hkv, B}, lt[3] = {lq_t, 1, 1};
        if ((st = bm_launch(rt, kq, "bm_bmojo_bwd_q_tiled", 3, gt, lt))) return st;
    } else {
        err |= BM_ARG_LOCAL(kq, i++, fl * dh);
        err |= BM_ARG_LOCAL(kq, i++, fl * dh);
        err |= BM_ARG_LOCAL(kq, i++, fl * dh);
        err |= BM_ARG_LOCAL(kq, i++, fl * L);
        err |= BM_ARG_LOCAL(kq, i++, fl * L);
        err |= BM_ARG_LOCAL(kq, i++, il * L);
        if ((st = bm_args_check(err, "bm_bmojo_bwd_q"))) return st;
        size_t gq[2] = {L * (size_t)rows, (size_t)a->H};
        if ((st = bm_launch(rt, kq, "bm_bmojo_bwd_q", 2, gq, lq))) return st;
    }

    /* 2. memory-slot gradients of every chunk */
    if (M > 0) {
        i = 0;
        err = bwd_view_args(km, &i, a);
        err |= BM_ARG(km, i++, scr);
        err |= BM_ARG(km, i++, o_lse);
        err |= BM_ARG(km, i++, o_dd);
        err |= BM_ARG(km, i++, o_mk);
        err |= BM_ARG(km, i++, o_mv);
        for (int j = 0; j < 4; j++) err |= BM_ARG_LOCAL(km, i++, fl * dh);
        err |= BM_ARG_LOCAL(km, i++, fl * L);
        err |= BM_ARG_LOCAL(km, i++, fl * L);
        err |= BM_ARG_LOCAL(km, i++, il * L);
        if ((st = bm_args_check(err, "bm_bmojo_bwd_mem"))) return st;
        size_t gm[2] = {L * (size_t)NC * a->Hkv * (size_t)M, B};
        if ((st = bm_launch(rt, km, "bm_bmojo_bwd_mem", 2, gm, lq))) return st;
    }

    /* 3. per-position gradients: window sums plus the memory slots' */
    cl_ulong dx_ld = a->dx_ld, dkx_col = a->dkx_col, dvx_col = a->dvx_col;
    cl_ulong df_ld = a->df_ld, dkf_col = a->dkf_col, dvf_col = a->dvf_col;
    i = 0;
    err = bwd_view_args(kk, &i, a);
    err |= BM_ARG(kk, i++, scr);
    err |= BM_ARG(kk, i++, o_lse);
    err |= BM_ARG(kk, i++, o_dd);
    err |= BM_ARG(kk, i++, o_mk);
    err |= BM_ARG(kk, i++, o_mv);
    err |= BM_ARG(kk, i++, a->dkx);
    err |= BM_ARG(kk, i++, a->dvx);
    err |= BM_ARG(kk, i++, dx_ld);
    err |= BM_ARG(kk, i++, dkx_col);
    err |= BM_ARG(kk, i++, dvx_col);
    err |= BM_ARG(kk, i++, a->dkf);
    err |= BM_ARG(kk, i++, a->dvf);
    err |= BM_ARG(kk, i++, df_ld);
    err |= BM_ARG(kk, i++, dkf_col);
    err |= BM_ARG(kk, i++, dvf_col);
    if (tiled) {
        const size_t ldp = dh + 1;
        err |= BM_ARG_LOCAL(kk, i++, fl * BKk * ldp);
        err |= BM_ARG_LOCAL(kk, i++, fl * BKk * ldp);
        err |= BM_ARG_LOCAL(kk, i++, fl * BKq * ldp);
        err |= BM_ARG_LOCAL(kk, i++, fl * BKq * ldp);
        err |= BM_ARG_LOCAL(kk, i++, fl * BKk * (BKq + 1));
        err |= BM_ARG_LOCAL(kk, i++, fl * BKk * (BKq + 1));
        err |= BM_ARG_LOCAL(kk, i++, fl * (3 * BKq + BKk));
        if ((st = bm_args_check(err, "bm_bmojo_bwd_keys_tiled"))) return st;
        size_t gt[3] = {lk_t * ((T + BKk - 1) / BKk), (size_t)a->Hkv, B}, lt[3] = {lk_t, 1, 1};
        return bm_launch(rt, kk, "bm_bmojo_bwd_keys_tiled", 3, gt, lt);
    }
    for (int j = 0; j < 4; j++) err |= BM_ARG_LOCAL(kk, i++, fl * dh);
    err |= BM_ARG_LOCAL(kk, i++, fl * L);
    err |= BM_ARG_LOCAL(kk, i++, fl * L);
    err |= BM_ARG_LOCAL(kk, i++, il * L);
    if ((st = bm_args_check(err, "bm_bmojo_bwd_keys"))) return st;
    size_t gk[3] = {L * T, (size_t)a->Hkv, B};
    return bm_launch(rt, kk, "bm_bmojo_bwd_keys", 3, gk, lq);
}

int bm_op_bmojo_attention_backward(bm_rt *rt, const bm_bmojo_bwd_args *a)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = bmojo_attention_backward_launch(rt, a);
    bm_scratch_release(rt, mark);
    return st;
}
