/* op_bmojo_backward.c — host launcher of the B'MOJO attention's backward (ops_backward.h):
 * bm_op_bmojo_attention_backward (cl/bmojo_backward.cl: dq, then the per-chunk memory-slot
 * gradients, then the per-position gathers; 3 launches, 4 when the slot sums come in parts,
 * no atomics, deterministic; with BMOJO_BBWD=store: the statistics, the slot gradients and dS
 * of the memory slots, the per-position gathers and dS of the window keys, then dq from the
 * stored dS). On CPUs (rt->bmojo_bwd_form) the recompute path runs the CPU form's dq and key
 * kernels (cl/bmojo_backward_cpu.cl) around the per-row slot sums, where the head dim allows. */
#include "ops.h"
#include "ops_backward.h"
#include "ops_bmojo.h"

#include <limits.h>
#include <stdint.h>
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

/* The CPU form's queries per dq item and positions per dk/dv item (BM_BBC_TQ / _TK of
 * cl/bmojo_backward_cpu.cl), and its float16 chunks of a head (BM_ATTC_MAXC, cl/attention_cpu.cl). */
#define BBC_TQ_DEFAULT 8
#define BBC_TK_DEFAULT 8
#define BBC_MAXC_DEFAULT 16

static int bwd_nchunks(const bm_bmojo_bwd_args *a) { return (a->T + a->window - 1) / a->window; }

/* Checks the sizes and the sets buffer. */
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

/* Checks the attention backward's sizes, buffers and views. */
static int bwd_check_attention(const char *fn, const bm_bmojo_bwd_args *a)
{
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
    return 0;
}

/* The tiled kernels' -D tunables, as the program was built. */
typedef struct {
    long NX, TR, TC, DCMAX, NYMAX;
} bbt_tunables;

/* A tiled kernel's local floats for R = NY*TR rows of its score tile (query rows of the query
 * kernels, keys of the key kernel), BK = NX*TC columns and rows of dh+1 floats:
 * r_ld*R*(dh+1) + bk_ld*BK*(dh+1) + score*R*(BK+1) + bk1*BK + r1*R. */
typedef struct {
    int r_ld, bk_ld, score, bk1, r1;
} bbt_locals;
static const bbt_locals BBT_LOCALS_Q = {2, 2, 1, 0, 3};     /* qs, dos; ks, vs; ss; st */
static const bbt_locals BBT_LOCALS_STATS = {1, 1, 1, 0, 3}; /* qs; ks; ss; st */
static const bbt_locals BBT_LOCALS_DQ = {0, 1, 1, 0, 1};    /* ks; ss; rowt */
static const bbt_locals BBT_LOCALS_KEYS = {2, 2, 2, 3, 1};  /* ks, vs; qs, dos; ps, dss; st */

/* The most rows of items (NY) kernel k can run: its work-group limits, BM_BBT_NYMAX and the
 * local memory; 0 when not even one fits. */
static long bbt_rows(bm_rt *rt, cl_kernel k, const bbt_tunables *tn, bbt_locals sh, int dh)
{
    size_t wg = rt->lim.wg, kwg = 0;
    if (rt->lim.max_wi[0] && rt->lim.max_wi[0] < wg) wg = rt->lim.max_wi[0];
    if (clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && kwg < wg)
        wg = kwg;
    long ny = (long)(wg / (size_t)tn->NX);
    if (ny > tn->NYMAX) ny = tn->NYMAX;
    const long BK = tn->NX * tn->TC, ld = dh + 1;
    for (; ny >= 1; ny--) {
        const long R = ny * tn->TR;
        const size_t fl = (size_t)(sh.r_ld * R * ld + sh.bk_ld * BK * ld + sh.score * R * (BK + 1) + sh.bk1 * BK + sh.r1 * R);
        if (fl * sizeof(float) <= rt->lim.local_mem) break;
    }
    return ny;
}

/* The launch of a query-tile kernel (bm_bbt_qtile in cl/bmojo_backward.cl): `items` = NX*NY per
 * group, BR = NY*TR rows = QT tokens x rep heads, tpc groups per chunk. */
typedef struct {
    cl_kernel k;
    size_t items, BR;
    cl_int QT, tpc;
} bbt_qplan;

/* The launch of k with NY = ny; 0 when its rows cannot hold the rep heads of one token. */
static int bbt_qplan_of(const bm_bmojo_bwd_args *a, const bbt_tunables *tn, cl_kernel k, long ny, bbt_qplan *p)
{
    const long rep = a->H / a->Hkv, span = a->window < a->T ? a->window : a->T;
    if (ny < 1 || ny * tn->TR < rep) return 0;
    const long QT = ny * tn->TR / rep;
    p->k = k;
    p->items = (size_t)(tn->NX * ny);
    p->BR = (size_t)(ny * tn->TR);
    p->QT = (cl_int)QT;
    p->tpc = (cl_int)((span + QT - 1) / QT);
    return 1;
}

/* The kernels a backward runs (bwd_plan.path): the per-row ones (bm_bmojo_bwd_q, _mem, _keys),
 * the tiled ones recomputing S and dP for dq (q_tiled, mem, keys_tiled) or storing dS for it
 * (stats_tiled, mem, keys_tiled, dq_tiled), the CPU form of the recompute path (dq_cpu, the
 * per-row mem, keys_cpu). */
enum { BWD_PER_ROW = 0, BWD_TILED = 1, BWD_STORE = 2, BWD_CPU = 3 };

typedef struct {
    int path;            /* BWD_* */
    cl_kernel kq, km, kk; /* the per-row kernels; unused on the tiled paths */
    size_t L;            /* work-group size of the per-row kernels */
    size_t BK;           /* NX*TC: keys per tile of the query kernels, query rows per tile of the key kernels */
    bbt_qplan q;         /* BWD_TILED: q_tiled; BWD_STORE: stats_tiled */
    bbt_qplan dq;        /* BWD_STORE: dq_tiled */
    cl_kernel kt;        /* keys_tiled */
    size_t lk, BKk;      /* its items per group, positions per group */
    int mem_rows;        /* the slot sums by the per-row bm_bmojo_bwd_mem (the CPU form; BWD_CPU) */
    cl_kernel kqc, kkc, kmc; /* BWD_CPU: dq_cpu, keys_cpu, mem_cpu */
    cl_int tpc_cpu;      /* BWD_CPU: dq_cpu's query blocks per chunk */
    cl_kernel kmt, kms;  /* mem_tiled and mem_sum (the tiled paths' slot sums, the GPU form) */
    size_t lm, BKm;      /* mem_tiled's items per group, slots per group */
    cl_int nst, NZ;      /* its slot tiles per chunk, parts per chunk (mem_sum adds them when > 1) */
} bwd_plan;

/* mem_tiled's launch: no more rows of items than the slots need (bmojo-130m's 36 slots: 9 rows
 * of 4), slot tiles covering M, and the chunk's query rows in NZ parts so that there are about
 * BBT_MEM_GROUPS_PER_CU groups per compute unit (an H200 at batch 1, T 2048: 16 (chunk, kv head)
 * pairs for 132 units), at most one part per row tile. */
#define BBT_MEM_GROUPS_PER_CU 4
static void bwd_mem_plan(bm_rt *rt, const bm_bmojo_bwd_args *a, const bbt_tunables *tn, long nym, bwd_plan *pl)
{
    const long M = a->m_f + a->m_e, need = (M + tn->TR - 1) / tn->TR;
    if (need >= 1 && need < nym) nym = need;
    pl->lm = (size_t)(tn->NX * nym);
    pl->BKm = (size_t)(nym * tn->TR);
    pl->nst = (cl_int)((M + (long)pl->BKm - 1) / (long)pl->BKm);
    const long span = a->window < a->T ? a->window : a->T, rows = span * (a->H / a->Hkv);
    const long tiles = (rows + (long)pl->BK - 1) / (long)pl->BK;
    const long base = (long)a->B * bwd_nchunks(a) * a->Hkv * (pl->nst > 0 ? pl->nst : 1);
    const long want = (long)(rt->lim.compute_units ? rt->lim.compute_units : 1) * BBT_MEM_GROUPS_PER_CU;
    long nz = (want + base - 1) / base;
    if (nz > tiles) nz = tiles;
    pl->NZ = (cl_int)(nz < 1 ? 1 : nz);
}

/* The tiled paths when their tiles fit: NY rows of NX items, as many as the work-group limits,
 * BM_BBT_NYMAX and the local memory allow (each kernel its own; at dh 64 on a 48 KiB GPU: 12
 * rows = 192 items, QT 16 tokens at rep 3, for q_tiled; 10 rows = 160 items, 40 positions, for
 * the keys); the store path where rt->bmojo_bwd_mode asks for it and its kernels fit too. Else
 * the per-row kernels. The CPU form's recompute path (BWD_CPU) comes first where it applies. */
static int bwd_plan_of(bm_rt *rt, const bm_bmojo_bwd_args *a, bwd_plan *pl)
{
    static const char fn[] = "bm_op_bmojo_attention_backward";
    memset(pl, 0, sizeof *pl);
    pl->kq = bm_kernel(rt, "bm_bmojo_bwd_q");
    pl->km = bm_kernel(rt, "bm_bmojo_bwd_mem");
    pl->kk = bm_kernel(rt, "bm_bmojo_bwd_keys");
    pl->kt = bm_kernel(rt, "bm_bmojo_bwd_keys_tiled");
    pl->kmt = bm_kernel(rt, "bm_bmojo_bwd_mem_tiled");
    pl->kms = bm_kernel(rt, "bm_bmojo_bwd_mem_sum");
    cl_kernel tq = bm_kernel(rt, "bm_bmojo_bwd_q_tiled"), ts = bm_kernel(rt, "bm_bmojo_bwd_stats_tiled");
    cl_kernel td = bm_kernel(rt, "bm_bmojo_bwd_dq_tiled");
    if (!pl->kq || !pl->km || !pl->kk || !pl->kt || !pl->kmt || !pl->kms || !tq || !ts || !td) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    const cl_kernel per_row[3] = {pl->kq, pl->km, pl->kk};
    pl->L = bwd_wg(rt, per_row, 3, a->dh, 4);
    if (!pl->L)
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: head_dim %d does not fit the device's %llu bytes of local memory", fn,
                       a->dh, (unsigned long long)rt->lim.local_mem);
    pl->path = BWD_PER_ROW;
    /* The CPU form: on the recompute path, dq_cpu, mem_cpu, keys_cpu (cl/bmojo_backward_cpu.cl)
     * where the head is whole float16 chunks; the store path keeps its kernels (stats_tiled,
     * keys_tiled, dq_tiled) and takes the per-row mem (mem_rows) under this form too. */
    const int cpu_form = bm_form_cpu(rt, rt->bmojo_bwd_form);
    if (cpu_form && rt->bmojo_bwd_mode == BM_BBWD_RECOMPUTE && a->dh % 16 == 0 &&
        a->dh <= 16 * bm_build_tunable(rt, "BM_ATTC_MAXC", BBC_MAXC_DEFAULT)) {
        pl->kqc = bm_kernel(rt, "bm_bmojo_bwd_dq_cpu");
        pl->kkc = bm_kernel(rt, "bm_bmojo_bwd_keys_cpu");
        pl->kmc = bm_kernel(rt, "bm_bmojo_bwd_mem_cpu");
        if (!pl->kqc || !pl->kkc || !pl->kmc) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
        const long tq = bm_build_tunable(rt, "BM_BBC_TQ", BBC_TQ_DEFAULT);
        const long span = a->window < a->T ? a->window : a->T;
        pl->tpc_cpu = (cl_int)((span + tq - 1) / tq);
        pl->path = BWD_CPU;
        pl->mem_rows = 1;
        return 0;
    }
    const bbt_tunables tn = {bm_build_tunable(rt, "BM_BBT_NX", BBT_NX_DEFAULT), bm_build_tunable(rt, "BM_BBT_TR", BBT_TR_DEFAULT),
                             bm_build_tunable(rt, "BM_BBT_TC", BBT_TC_DEFAULT), bm_build_tunable(rt, "BM_BBT_DCMAX", BBT_DCMAX_DEFAULT),
                             bm_build_tunable(rt, "BM_BBT_NYMAX", BBT_NYMAX_DEFAULT)};
    if (a->dh > tn.NX * tn.DCMAX) return 0;
    const long nyk = bbt_rows(rt, pl->kt, &tn, BBT_LOCALS_KEYS, a->dh);
    if (nyk < 1) return 0;
    long nym = bbt_rows(rt, pl->kmt, &tn, BBT_LOCALS_KEYS, a->dh);
    if (nym < 1) return 0;
    pl->BK = (size_t)(tn.NX * tn.TC);
    pl->lk = (size_t)(tn.NX * nyk);
    pl->BKk = (size_t)(nyk * tn.TR);
    bwd_mem_plan(rt, a, &tn, nym, pl);
    pl->mem_rows = cpu_form;
    if (rt->bmojo_bwd_mode == BM_BBWD_STORE && bbt_qplan_of(a, &tn, ts, bbt_rows(rt, ts, &tn, BBT_LOCALS_STATS, a->dh), &pl->q) &&
        bbt_qplan_of(a, &tn, td, bbt_rows(rt, td, &tn, BBT_LOCALS_DQ, a->dh), &pl->dq))
        pl->path = BWD_STORE;
    else if (bbt_qplan_of(a, &tn, tq, bbt_rows(rt, tq, &tn, BBT_LOCALS_Q, a->dh), &pl->q))
        pl->path = BWD_TILED;
    return 0;
}

/* The scratch (element offsets, 256-byte aligned regions): lse, D [B*T, H]; dmk, dmv [B, NC,
 * Hkv, M, dh]; the parts of mem_tiled's sums (NZ > 1: dmk's, then dmv's [B, NC, Hkv, NZ, M, dh]);
 * on the store path dSm [B*T, H, M] and dSw [B*T, H, wv], wv = min(window, T). */
typedef struct {
    cl_ulong lse, dd, mk, mv, parts, dsm, dsw;
    cl_int wv;
    uint64_t floats;
} bwd_scratch;

/* The scratch arguments that follow the views in the backward kernels: scr, the lse and D
 * offsets, and (sums != 0) the memory slots' dmk and dmv offsets. */
static cl_int bwd_scratch_args(cl_kernel k, cl_uint *ip, cl_mem scr, const bwd_scratch *z, int sums)
{
    cl_uint i = *ip;
    cl_int err = BM_ARG(k, i++, scr);
    err |= BM_ARG(k, i++, z->lse);
    err |= BM_ARG(k, i++, z->dd);
    if (sums) {
        err |= BM_ARG(k, i++, z->mk);
        err |= BM_ARG(k, i++, z->mv);
    }
    *ip = i;
    return err;
}

/* a * b into *out; 0 when it overflows. */
static int bwd_mul(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b && a > UINT64_MAX / b) return 0;
    *out = a * b;
    return 1;
}

/* Appends a region of n floats to the layout at *at: its offset into *off; 0 when the scratch's
 * bytes would pass what size_t holds (products in uint64, so 32-bit size_t is caught too). */
static int bwd_region(uint64_t *at, uint64_t n, cl_ulong *off)
{
    const uint64_t limit = (uint64_t)(SIZE_MAX / sizeof(float)) - 64;
    if (n > limit || *at > limit - n) return 0;
    *off = *at;
    *at += (n + 63) & ~(uint64_t)63;
    return 1;
}

static int bwd_scratch_layout(const bm_bmojo_bwd_args *a, int store, int nz, bwd_scratch *z)
{
    const uint64_t rows_h = (uint64_t)a->B * a->T * a->H, M = (uint64_t)a->m_f + a->m_e;
    uint64_t nmem = 0, nparts = 0, ndsm = 0, ndsw = 0, at = 0;
    z->wv = a->window < a->T ? a->window : a->T;
    const int ok = bwd_mul((uint64_t)a->B * bwd_nchunks(a), (uint64_t)a->Hkv * a->dh, &nmem) &&
                   bwd_mul(nmem, M, &nmem) && bwd_mul(nmem, nz > 1 ? 2 * (uint64_t)nz : 0, &nparts) &&
                   bwd_mul(rows_h, M, &ndsm) && bwd_mul(rows_h, (uint64_t)z->wv, &ndsw);
    if (!ok || !bwd_region(&at, rows_h, &z->lse) || !bwd_region(&at, rows_h, &z->dd) ||
        !bwd_region(&at, nmem, &z->mk) || !bwd_region(&at, nmem, &z->mv) || !bwd_region(&at, nparts, &z->parts) ||
        !bwd_region(&at, store ? ndsm : 0, &z->dsm) || !bwd_region(&at, store ? ndsw : 0, &z->dsw))
        return 0;
    z->floats = at;
    return 1;
}

/* Sets a query-tile kernel's launch (global: its groups over every chunk, Hkv, B). */
static int bbt_qlaunch(bm_rt *rt, const bm_bmojo_bwd_args *a, const bbt_qplan *p, const char *name)
{
    size_t g[3] = {p->items * (size_t)bwd_nchunks(a) * (size_t)p->tpc, (size_t)a->Hkv, (size_t)a->B};
    size_t l[3] = {p->items, 1, 1};
    return bm_launch(rt, p->k, name, 3, g, l);
}

/* Recompute path, 1: dq, lse (or a->lse's) and D (bm_bmojo_bwd_q_tiled, the CPU form's bm_bmojo_bwd_dq_cpu, or
 * the per-row bm_bmojo_bwd_q). */
static int bwd_launch_q(bm_rt *rt, const bm_bmojo_bwd_args *a, const bwd_plan *pl, const bwd_scratch *z, cl_mem scr)
{
    const size_t fl = sizeof(float), dh = (size_t)a->dh, ldp = dh + 1;
    cl_ulong dq_ld = a->dq_ld, dq_col = a->dq_col;
    const int tiled = pl->path == BWD_TILED, cpu = pl->path == BWD_CPU;
    cl_kernel k = tiled ? pl->q.k : cpu ? pl->kqc : pl->kq;
    cl_uint i = 0;
    cl_int err = bwd_view_args(k, &i, a);
    err |= BM_ARG(k, i++, a->dq);
    err |= BM_ARG(k, i++, dq_ld);
    err |= BM_ARG(k, i++, dq_col);
    err |= bwd_scratch_args(k, &i, scr, z, 0);
    err |= BM_ARG(k, i++, a->lse); /* NULL: recomputed */
    if (cpu) {
        err |= BM_ARG(k, i++, pl->tpc_cpu);
        int st = bm_args_check(err, "bm_bmojo_bwd_dq_cpu");
        if (st) return st;
        size_t g[3] = {(size_t)bwd_nchunks(a) * (size_t)pl->tpc_cpu, (size_t)a->H, (size_t)a->B}, l[3] = {1, 1, 1};
        return bm_launch(rt, k, "bm_bmojo_bwd_dq_cpu", 3, g, l);
    }
    if (tiled) {
        const size_t BR = pl->q.BR, BK = pl->BK;
        err |= BM_ARG(k, i++, pl->q.QT);
        err |= BM_ARG(k, i++, pl->q.tpc);
        err |= BM_ARG_LOCAL(k, i++, fl * BR * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BR * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BR * (BK + 1));
        err |= BM_ARG_LOCAL(k, i++, fl * 3 * BR);
        int st = bm_args_check(err, "bm_bmojo_bwd_q_tiled");
        return st ? st : bbt_qlaunch(rt, a, &pl->q, "bm_bmojo_bwd_q_tiled");
    }
    const size_t L = pl->L;
    err |= BM_ARG_LOCAL(k, i++, fl * dh);
    err |= BM_ARG_LOCAL(k, i++, fl * dh);
    err |= BM_ARG_LOCAL(k, i++, fl * dh);
    err |= BM_ARG_LOCAL(k, i++, fl * L);
    err |= BM_ARG_LOCAL(k, i++, fl * L);
    err |= BM_ARG_LOCAL(k, i++, sizeof(cl_int) * L);
    int st = bm_args_check(err, "bm_bmojo_bwd_q");
    if (st) return st;
    size_t g[2] = {L * (size_t)a->B * (size_t)a->T, (size_t)a->H}, l[2] = {L, 1};
    return bm_launch(rt, k, "bm_bmojo_bwd_q", 2, g, l);
}

/* Store path, 1: lse (or a->lse's) and D alone (bm_bmojo_bwd_stats_tiled). */
static int bwd_launch_stats(bm_rt *rt, const bm_bmojo_bwd_args *a, const bwd_plan *pl, const bwd_scratch *z,
                            cl_mem scr)
{
    const size_t fl = sizeof(float), ldp = (size_t)a->dh + 1, BR = pl->q.BR, BK = pl->BK;
    cl_kernel k = pl->q.k;
    cl_uint i = 0;
    cl_int err = bwd_view_args(k, &i, a);
    err |= bwd_scratch_args(k, &i, scr, z, 0);
    err |= BM_ARG(k, i++, a->lse); /* NULL: recomputed */
    err |= BM_ARG(k, i++, pl->q.QT);
    err |= BM_ARG(k, i++, pl->q.tpc);
    err |= BM_ARG_LOCAL(k, i++, fl * BR * ldp);
    err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
    err |= BM_ARG_LOCAL(k, i++, fl * BR * (BK + 1));
    err |= BM_ARG_LOCAL(k, i++, fl * 3 * BR);
    int st = bm_args_check(err, "bm_bmojo_bwd_stats_tiled");
    return st ? st : bbt_qlaunch(rt, a, &pl->q, "bm_bmojo_bwd_stats_tiled");
}

/* 2, the tiled paths: the slot sums of every chunk (bm_bmojo_bwd_mem_tiled, on the store path
 * also dSm), their parts added by bm_bmojo_bwd_mem_sum when NZ > 1. */
static int bwd_launch_mem_tiled(bm_rt *rt, const bm_bmojo_bwd_args *a, const bwd_plan *pl, const bwd_scratch *z,
                                cl_mem scr)
{
    const size_t fl = sizeof(float), ldp = (size_t)a->dh + 1, BKm = pl->BKm, BK = pl->BK;
    const cl_int store = pl->path == BWD_STORE;
    cl_kernel k = pl->kmt;
    cl_uint i = 0;
    cl_int err = bwd_view_args(k, &i, a);
    err |= bwd_scratch_args(k, &i, scr, z, 1);
    err |= BM_ARG(k, i++, pl->NZ);
    err |= BM_ARG(k, i++, z->parts);
    err |= BM_ARG(k, i++, store);
    err |= BM_ARG(k, i++, z->dsm);
    err |= BM_ARG_LOCAL(k, i++, fl * BKm * ldp);
    err |= BM_ARG_LOCAL(k, i++, fl * BKm * ldp);
    err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
    err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
    err |= BM_ARG_LOCAL(k, i++, fl * BKm * (BK + 1));
    err |= BM_ARG_LOCAL(k, i++, fl * BKm * (BK + 1));
    err |= BM_ARG_LOCAL(k, i++, fl * (3 * BK + BKm));
    int st = bm_args_check(err, "bm_bmojo_bwd_mem_tiled");
    if (st) return st;
    size_t g[3] = {pl->lm * (size_t)pl->NZ * (size_t)pl->nst, (size_t)bwd_nchunks(a) * (size_t)a->Hkv, (size_t)a->B};
    size_t l[3] = {pl->lm, 1, 1};
    if ((st = bm_launch(rt, k, "bm_bmojo_bwd_mem_tiled", 3, g, l)) || pl->NZ == 1) return st;
    k = pl->kms;
    const cl_int Mdh = (a->m_f + a->m_e) * a->dh;
    const cl_ulong n = (cl_ulong)a->B * (cl_ulong)bwd_nchunks(a) * (cl_ulong)a->Hkv * (cl_ulong)Mdh;
    i = 0;
    err = BM_ARG(k, i++, scr);
    err |= BM_ARG(k, i++, z->mk);
    err |= BM_ARG(k, i++, z->mv);
    err |= BM_ARG(k, i++, z->parts);
    err |= BM_ARG(k, i++, n);
    err |= BM_ARG(k, i++, pl->NZ);
    err |= BM_ARG(k, i++, Mdh);
    if ((st = bm_args_check(err, "bm_bmojo_bwd_mem_sum"))) return st;
    const size_t ls = 64 < rt->lim.wg ? 64 : rt->lim.wg;
    size_t gs = ((size_t)n + ls - 1) / ls * ls;
    return bm_launch(rt, k, "bm_bmojo_bwd_mem_sum", 1, &gs, &ls);
}

/* 2, the per-row path and the CPU form: every chunk's memory-slot gradients, a group per slot
 * (bm_bmojo_bwd_mem; on the store path also dSm). POCL runs it faster than mem_tiled (a 2-layer
 * MQAR B'MOJO, d_model 64: 3.3 against 5.4 us/token); the CPU form's recompute path runs
 * bm_bmojo_bwd_mem_cpu instead (16 slots per work-item as vector lanes). */
static int bwd_launch_mem(bm_rt *rt, const bm_bmojo_bwd_args *a, const bwd_plan *pl, const bwd_scratch *z,
                          cl_mem scr)
{
    if (pl->path != BWD_PER_ROW && !pl->mem_rows) return bwd_launch_mem_tiled(rt, a, pl, z, scr);
    if (pl->path == BWD_CPU) { /* bm_bmojo_bwd_mem_cpu: a work-item per 16 slots of a (chunk, kv head) */
        cl_kernel k = pl->kmc;
        cl_uint i = 0;
        cl_int err = bwd_view_args(k, &i, a);
        err |= bwd_scratch_args(k, &i, scr, z, 1);
        int st = bm_args_check(err, "bm_bmojo_bwd_mem_cpu");
        if (st) return st;
        const size_t nsb = ((size_t)(a->m_f + a->m_e) + 15) / 16;
        size_t g[2] = {(size_t)bwd_nchunks(a) * (size_t)a->Hkv * nsb, (size_t)a->B}, l[2] = {1, 1};
        return bm_launch(rt, k, "bm_bmojo_bwd_mem_cpu", 2, g, l);
    }
    const size_t fl = sizeof(float), dh = (size_t)a->dh, L = pl->L;
    const cl_int store = pl->path == BWD_STORE;
    cl_kernel k = pl->km;
    cl_uint i = 0;
    cl_int err = bwd_view_args(k, &i, a);
    err |= bwd_scratch_args(k, &i, scr, z, 1);
    err |= BM_ARG(k, i++, store);
    err |= BM_ARG(k, i++, z->dsm);
    for (int j = 0; j < 4; j++) err |= BM_ARG_LOCAL(k, i++, fl * dh);
    err |= BM_ARG_LOCAL(k, i++, fl * L);
    err |= BM_ARG_LOCAL(k, i++, fl * L);
    err |= BM_ARG_LOCAL(k, i++, sizeof(cl_int) * L);
    int st = bm_args_check(err, "bm_bmojo_bwd_mem");
    if (st) return st;
    size_t g[2] = {L * (size_t)bwd_nchunks(a) * (size_t)a->Hkv * (size_t)(a->m_f + a->m_e), (size_t)a->B};
    size_t l[2] = {L, 1};
    return bm_launch(rt, k, "bm_bmojo_bwd_mem", 2, g, l);
}

/* 3: every position's gradients, window sums plus the memory slots' (bm_bmojo_bwd_keys_tiled,
 * on the store path also dSw; the CPU form's bm_bmojo_bwd_keys_cpu; or the per-row
 * bm_bmojo_bwd_keys). */
static int bwd_launch_keys(bm_rt *rt, const bm_bmojo_bwd_args *a, const bwd_plan *pl, const bwd_scratch *z,
                           cl_mem scr)
{
    const size_t fl = sizeof(float), dh = (size_t)a->dh, ldp = dh + 1;
    cl_ulong dx_ld = a->dx_ld, dkx_col = a->dkx_col, dvx_col = a->dvx_col;
    cl_ulong df_ld = a->df_ld, dkf_col = a->dkf_col, dvf_col = a->dvf_col;
    const int cpu = pl->path == BWD_CPU, tiled = pl->path == BWD_TILED || pl->path == BWD_STORE;
    cl_kernel k = cpu ? pl->kkc : tiled ? pl->kt : pl->kk;
    cl_uint i = 0;
    cl_int err = bwd_view_args(k, &i, a);
    err |= bwd_scratch_args(k, &i, scr, z, 1);
    err |= BM_ARG(k, i++, a->dkx);
    err |= BM_ARG(k, i++, a->dvx);
    err |= BM_ARG(k, i++, dx_ld);
    err |= BM_ARG(k, i++, dkx_col);
    err |= BM_ARG(k, i++, dvx_col);
    err |= BM_ARG(k, i++, a->dkf);
    err |= BM_ARG(k, i++, a->dvf);
    err |= BM_ARG(k, i++, df_ld);
    err |= BM_ARG(k, i++, dkf_col);
    err |= BM_ARG(k, i++, dvf_col);
    if (cpu) {
        int st = bm_args_check(err, "bm_bmojo_bwd_keys_cpu");
        if (st) return st;
        const size_t tk = (size_t)bm_build_tunable(rt, "BM_BBC_TK", BBC_TK_DEFAULT);
        size_t g[3] = {((size_t)a->T + tk - 1) / tk, (size_t)a->Hkv, (size_t)a->B}, l[3] = {1, 1, 1};
        return bm_launch(rt, k, "bm_bmojo_bwd_keys_cpu", 3, g, l);
    }
    if (tiled) {
        const cl_int store = pl->path == BWD_STORE;
        const size_t BKk = pl->BKk, BK = pl->BK;
        err |= BM_ARG(k, i++, store);
        err |= BM_ARG(k, i++, z->dsw);
        err |= BM_ARG(k, i++, z->wv);
        err |= BM_ARG_LOCAL(k, i++, fl * BKk * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BKk * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
        err |= BM_ARG_LOCAL(k, i++, fl * BKk * (BK + 1));
        err |= BM_ARG_LOCAL(k, i++, fl * BKk * (BK + 1));
        err |= BM_ARG_LOCAL(k, i++, fl * (3 * BK + BKk));
        int st = bm_args_check(err, "bm_bmojo_bwd_keys_tiled");
        if (st) return st;
        size_t g[3] = {pl->lk * (((size_t)a->T + BKk - 1) / BKk), (size_t)a->Hkv, (size_t)a->B}, l[3] = {pl->lk, 1, 1};
        return bm_launch(rt, k, "bm_bmojo_bwd_keys_tiled", 3, g, l);
    }
    const size_t L = pl->L;
    for (int j = 0; j < 4; j++) err |= BM_ARG_LOCAL(k, i++, fl * dh);
    err |= BM_ARG_LOCAL(k, i++, fl * L);
    err |= BM_ARG_LOCAL(k, i++, fl * L);
    err |= BM_ARG_LOCAL(k, i++, sizeof(cl_int) * L);
    int st = bm_args_check(err, "bm_bmojo_bwd_keys");
    if (st) return st;
    size_t g[3] = {L * (size_t)a->T, (size_t)a->Hkv, (size_t)a->B}, l[3] = {L, 1, 1};
    return bm_launch(rt, k, "bm_bmojo_bwd_keys", 3, g, l);
}

/* Store path, 4: dq from the stored dSm and dSw (bm_bmojo_bwd_dq_tiled). */
static int bwd_launch_dq(bm_rt *rt, const bm_bmojo_bwd_args *a, const bwd_plan *pl, const bwd_scratch *z, cl_mem scr)
{
    const size_t fl = sizeof(float), ldp = (size_t)a->dh + 1, BR = pl->dq.BR, BK = pl->BK;
    cl_ulong dq_ld = a->dq_ld, dq_col = a->dq_col;
    cl_kernel k = pl->dq.k;
    cl_uint i = 0;
    cl_int err = bwd_view_args(k, &i, a);
    err |= BM_ARG(k, i++, a->dq);
    err |= BM_ARG(k, i++, dq_ld);
    err |= BM_ARG(k, i++, dq_col);
    err |= BM_ARG(k, i++, scr);
    err |= BM_ARG(k, i++, z->dsm);
    err |= BM_ARG(k, i++, z->dsw);
    err |= BM_ARG(k, i++, z->wv);
    err |= BM_ARG(k, i++, pl->dq.QT);
    err |= BM_ARG(k, i++, pl->dq.tpc);
    err |= BM_ARG_LOCAL(k, i++, fl * BK * ldp);
    err |= BM_ARG_LOCAL(k, i++, fl * BR * (BK + 1));
    err |= BM_ARG_LOCAL(k, i++, sizeof(cl_int) * BR);
    int st = bm_args_check(err, "bm_bmojo_bwd_dq_tiled");
    return st ? st : bbt_qlaunch(rt, a, &pl->dq, "bm_bmojo_bwd_dq_tiled");
}

/* The order of launches (each needs what the ones before wrote):
 *   recompute (BMOJO_BBWD=recompute, the default; and the per-row kernels): 1. dq, lse, D
 *     (q_tiled / dq_cpu / q) -> 2. the memory slots' sums (mem_tiled / mem, needs lse, D) -> 3.
 *     the key gradients (keys_tiled / keys_cpu / keys, need lse, D and the slot sums);
 *   store (BMOJO_BBWD=store, where the tiles fit): 1. lse, D (stats_tiled) -> 2. the slot sums
 *     and dSm (mem) -> 3. the key gradients and dSw (keys_tiled) -> 4. dq from dSm, dSw (dq_tiled).
 * mem runs only when there are memory slots (m_f + m_e > 0). */
static int bmojo_attention_backward_launch(bm_rt *rt, const bm_bmojo_bwd_args *a)
{
    static const char fn[] = "bm_op_bmojo_attention_backward";
    int st = bwd_check_attention(fn, a);
    if (st || a->T == 0) return st;
    bwd_plan pl;
    if ((st = bwd_plan_of(rt, a, &pl))) return st;
    const int store = pl.path == BWD_STORE;
    bwd_scratch z;
    if (!bwd_scratch_layout(a, store, pl.path == BWD_PER_ROW || pl.mem_rows ? 1 : pl.NZ, &z))
        return bm_fail(BMOJO_ERANGE, "%s: the scratch (B=%d T=%d H=%d window=%d, %d memory slots%s) is too large", fn,
                       a->B, a->T, a->H, a->window, a->m_f + a->m_e, store ? ", BMOJO_BBWD=store" : "");
    cl_mem scr = NULL;
    if ((st = bm_scratch_take(rt, (size_t)z.floats * sizeof(float), &scr))) return bm_fail_context(st, "%s", fn);

    st = store ? bwd_launch_stats(rt, a, &pl, &z, scr) : bwd_launch_q(rt, a, &pl, &z, scr);
    if (!st && a->m_f + a->m_e > 0) st = bwd_launch_mem(rt, a, &pl, &z, scr);
    if (!st) st = bwd_launch_keys(rt, a, &pl, &z, scr);
    if (!st && store) st = bwd_launch_dq(rt, a, &pl, &z, scr);
    return st;
}

int bm_op_bmojo_attention_backward(bm_rt *rt, const bm_bmojo_bwd_args *a)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = bmojo_attention_backward_launch(rt, a);
    bm_scratch_release(rt, mark);
    return st;
}
