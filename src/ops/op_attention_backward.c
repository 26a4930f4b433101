/* op_attention_backward.c — launcher of the causal GQA attention backward
 * (cl/attention_backward.cl): bm_attn_bwd_dq (row statistics L and D into scratch memory, and
 * dq), then bm_attn_bwd_dkv (dk, dv); on CPUs their CPU forms (cl/attention_backward_cpu.cl)
 * where the head dim allows (rt->attn_bwd_form forces either, tests). The GPU forms run one
 * work-group per (sequence, kv head, tile); both pairs run on the in-order queue, so the second
 * kernel sees the first's statistics.
 *
 * Tiling, per kernel: work-group size Lw = min(the kernel's and device's limits, rt->lim.wg,
 * BM_ATTB_MAXL); the output tile (BR rows x dh for dq, BC keys x dh for dk/dv) must fit
 * BM_ATTB_ACC private accumulators per work-item, so BR (resp. BC) <= ACC*Lw/dh, at most
 * BM_ATTB_BR / BM_ATTB_BC; the other tile side starts at its maximum; both are halved until the
 * local arrays fit rt->lim.local_mem. All of these -D tunables are read back from the build
 * options (BMOJO_CL_DEFINES), so that kernel and launcher agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops_backward.h"

/* Defaults of the tunables (BM_ATTB_ACC mirrors the kernel's #define). */
#define ATTB_ACC_DEFAULT 16
#define ATTB_MAXL_DEFAULT 128
#define ATTB_BR_DEFAULT 32
#define ATTB_BC_DEFAULT 32
/* The CPU form's queries per dq item and keys per dk/dv item (BM_ATTBC_TQ / _TK of
 * cl/attention_backward_cpu.cl). */
#define ATTBC_TQ_DEFAULT 8
#define ATTBC_TK_DEFAULT 8

static size_t attb_kernel_wg(bm_rt *rt, cl_kernel k)
{
    size_t wg = rt->lim.max_wg;
    size_t kwg = 0;
    if (clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && kwg < wg)
        wg = kwg;
    if (rt->lim.max_wi[0] && rt->lim.max_wi[0] < wg) wg = rt->lim.max_wi[0];
    if (rt->lim.wg > 0 && rt->lim.wg < wg) wg = rt->lim.wg;
    const size_t maxl = (size_t)bm_build_tunable(rt, "BM_ATTB_MAXL", ATTB_MAXL_DEFAULT);
    return wg < maxl ? wg : maxl;
}

/* Local bytes: two row tiles (Q, dO) of BR x (dh+1), two key tiles (K, V) of BC x (dh+1),
 * nscores BR x BC score arrays and nstat floats per row. */
static size_t attb_local_bytes(int BR, int BC, int dh, int nscores, int nstat)
{
    return sizeof(float) * (2u * (size_t)(BR + BC) * (size_t)(dh + 1) + (size_t)nscores * BR * BC +
                            (size_t)nstat * BR);
}

/* Picks the accumulated side `acc_side` (<= ACC*Lw/dh, <= its max, <= its count) and the other
 * side, shrinking until the local arrays fit. Returns 0 or EUNSUPPORTED. */
static int attb_plan(const bm_rt *rt, size_t Lw, int dh, long acc_max, long other_max, long acc_count,
                     long other_count, int nscores, int nstat, int acc_is_rows, int *BR, int *BC)
{
    const long acc = bm_build_tunable(rt, "BM_ATTB_ACC", ATTB_ACC_DEFAULT);
    long a = acc * (long)Lw / dh, o = other_max;
    if (a > acc_max) a = acc_max;
    if (a > acc_count) a = acc_count;
    if (o > other_count) o = other_count;
    if (a < 1)
        return bm_fail(BMOJO_EUNSUPPORTED, "attention_backward: head_dim %d exceeds %ld accumulators x %zu work-items",
                       dh, acc, Lw);
    for (;;) {
        const int br = (int)(acc_is_rows ? a : o), bc = (int)(acc_is_rows ? o : a);
        if (attb_local_bytes(br, bc, dh, nscores, nstat) <= rt->lim.local_mem) {
            *BR = br;
            *BC = bc;
            return 0;
        }
        if (o >= a && o > 1) o = (o + 1) / 2;
        else if (a > 1) a = (a + 1) / 2;
        else
            return bm_fail(BMOJO_EUNSUPPORTED,
                           "attention_backward: head_dim %d needs %zu bytes of local memory, device has %llu", dh,
                           attb_local_bytes(1, 1, dh, nscores, nstat), (unsigned long long)rt->lim.local_mem);
    }
}

static int attb_check(const bm_attn_bwd_args *a)
{
    if (!a) return bm_fail(BMOJO_EINVAL, "attention_backward: NULL arguments");
    if (a->B < 0 || a->T < 0 || a->H < 1 || a->Hkv < 1 || a->dh < 1 || a->H % a->Hkv != 0)
        return bm_fail(BMOJO_EINVAL,
                       "attention_backward: bad shape B=%d T=%d H=%d Hkv=%d dh=%d (H must be a multiple of Hkv)", a->B,
                       a->T, a->H, a->Hkv, a->dh);
    if (a->window < 0) return bm_fail(BMOJO_EINVAL, "attention_backward: negative window %d", a->window);
    if (!a->q || !a->k || !a->v || !a->o || !a->dout || !a->dq || !a->dk || !a->dv)
        return bm_fail(BMOJO_EINVAL, "attention_backward: NULL %s buffer",
                       !a->q ? "q" : !a->k ? "k" : !a->v ? "v" : !a->o ? "o" : !a->dout ? "dout" : !a->dq ? "dq"
                                                                                          : !a->dk ? "dk" : "dv");
    const size_t qw = (size_t)a->H * a->dh, kw = (size_t)a->Hkv * a->dh;
    if (a->q_ld < a->q_col + qw)
        return bm_fail(BMOJO_EINVAL, "attention_backward: q_ld %zu too small for q_col %zu + %zu", a->q_ld, a->q_col, qw);
    if (a->kv_ld < a->k_col + kw || a->kv_ld < a->v_col + kw)
        return bm_fail(BMOJO_EINVAL, "attention_backward: kv_ld %zu too small for k_col %zu / v_col %zu + %zu",
                       a->kv_ld, a->k_col, a->v_col, kw);
    if (a->o_ld < qw) return bm_fail(BMOJO_EINVAL, "attention_backward: o_ld %zu too small for %zu", a->o_ld, qw);
    if (a->dq_ld < a->dq_col + qw)
        return bm_fail(BMOJO_EINVAL, "attention_backward: dq_ld %zu too small for dq_col %zu + %zu", a->dq_ld,
                       a->dq_col, qw);
    if (a->dkv_ld < a->dk_col + kw || a->dkv_ld < a->dv_col + kw)
        return bm_fail(BMOJO_EINVAL, "attention_backward: dkv_ld %zu too small for dk_col %zu / dv_col %zu + %zu",
                       a->dkv_ld, a->dk_col, a->dv_col, kw);
    return 0;
}

/* Arguments 0 .. 11 shared by both kernels. */
static cl_int attb_common_args(cl_kernel k, const bm_attn_bwd_args *a)
{
    const cl_int T = a->T, H = a->H, Hkv = a->Hkv, dh = a->dh;
    const cl_long q_ld = (cl_long)a->q_ld, q_col = (cl_long)a->q_col, kv_ld = (cl_long)a->kv_ld,
                  k_col = (cl_long)a->k_col, v_col = (cl_long)a->v_col;
    cl_int err = 0;
    int i = 0;
    err |= BM_ARG(k, i++, T);
    err |= BM_ARG(k, i++, H);
    err |= BM_ARG(k, i++, Hkv);
    err |= BM_ARG(k, i++, dh);
    err |= BM_ARG(k, i++, a->q);
    err |= BM_ARG(k, i++, q_ld);
    err |= BM_ARG(k, i++, q_col);
    err |= BM_ARG(k, i++, a->k);
    err |= BM_ARG(k, i++, a->v);
    err |= BM_ARG(k, i++, kv_ld);
    err |= BM_ARG(k, i++, k_col);
    err |= BM_ARG(k, i++, v_col);
    return err;
}

/* Arguments 0 .. 21 of both dq kernels (bm_attn_bwd_dq, bm_attn_bwd_dq_cpu): the common ones, the
 * forward's output and its gradient, dq, the statistics; *next is the first argument after them. */
static cl_int attb_dq_args(cl_kernel k, const bm_attn_bwd_args *a, cl_mem stats, cl_long nstat, int *next)
{
    const cl_long o_ld = (cl_long)a->o_ld, dq_ld = (cl_long)a->dq_ld, dq_col = (cl_long)a->dq_col;
    const cl_int window = a->window;
    const cl_float scale = a->scale;
    cl_int err = attb_common_args(k, a);
    int i = 12;
    err |= BM_ARG(k, i++, a->o);
    err |= BM_ARG(k, i++, a->dout);
    err |= BM_ARG(k, i++, o_ld);
    err |= BM_ARG(k, i++, window);
    err |= BM_ARG(k, i++, scale);
    err |= BM_ARG(k, i++, a->dq);
    err |= BM_ARG(k, i++, dq_ld);
    err |= BM_ARG(k, i++, dq_col);
    err |= BM_ARG(k, i++, stats);
    err |= BM_ARG(k, i++, nstat);
    *next = i;
    return err;
}

/* Arguments 0 .. 22 of both dk/dv kernels (bm_attn_bwd_dkv, bm_attn_bwd_dkv_cpu). */
static cl_int attb_dkv_args(cl_kernel k, const bm_attn_bwd_args *a, cl_mem stats, cl_long nstat, int *next)
{
    const cl_long o_ld = (cl_long)a->o_ld, dkv_ld = (cl_long)a->dkv_ld, dk_col = (cl_long)a->dk_col,
                  dv_col = (cl_long)a->dv_col;
    const cl_int window = a->window;
    const cl_float scale = a->scale;
    cl_int err = attb_common_args(k, a);
    int i = 12;
    err |= BM_ARG(k, i++, a->dout);
    err |= BM_ARG(k, i++, o_ld);
    err |= BM_ARG(k, i++, window);
    err |= BM_ARG(k, i++, scale);
    err |= BM_ARG(k, i++, a->dk);
    err |= BM_ARG(k, i++, a->dv);
    err |= BM_ARG(k, i++, dkv_ld);
    err |= BM_ARG(k, i++, dk_col);
    err |= BM_ARG(k, i++, dv_col);
    err |= BM_ARG(k, i++, stats);
    err |= BM_ARG(k, i++, nstat);
    *next = i;
    return err;
}

/* The CPU form (cl/attention_backward_cpu.cl): one work-item per 8 queries of a head (dq, L, D),
 * then per 8 keys of a kv head (dk, dv); heads of a multiple of 16 up to 16 * BM_ATTC_MAXC. */
static int attb_cpu_fits(bm_rt *rt, int dh)
{
    return dh % 16 == 0 && dh <= 16 * bm_build_tunable(rt, "BM_ATTC_MAXC", 16);
}

static int attention_backward_cpu_launch(bm_rt *rt, const bm_attn_bwd_args *a, cl_mem stats, cl_long nstat)
{
    const size_t local[3] = {1, 1, 1};
    cl_kernel k1 = bm_kernel(rt, "bm_attn_bwd_dq_cpu"), k2 = bm_kernel(rt, "bm_attn_bwd_dkv_cpu");
    if (!k1 || !k2) return bm_fail_context(BMOJO_EBUILD, "attention_backward");
    int next;
    int st = bm_args_check(attb_dq_args(k1, a, stats, nstat, &next), "bm_attn_bwd_dq_cpu");
    const long tq = bm_build_tunable(rt, "BM_ATTBC_TQ", ATTBC_TQ_DEFAULT);
    const long tk = bm_build_tunable(rt, "BM_ATTBC_TK", ATTBC_TK_DEFAULT);
    const size_t g1[3] = {(size_t)((a->T + tq - 1) / tq), (size_t)a->H, (size_t)a->B};
    if (!st) st = bm_launch(rt, k1, "bm_attn_bwd_dq_cpu", 3, g1, local);
    if (!st) st = bm_args_check(attb_dkv_args(k2, a, stats, nstat, &next), "bm_attn_bwd_dkv_cpu");
    const size_t g2[3] = {(size_t)((a->T + tk - 1) / tk), (size_t)a->Hkv, (size_t)a->B};
    if (!st) st = bm_launch(rt, k2, "bm_attn_bwd_dkv_cpu", 3, g2, local);
    return st;
}

static int attention_backward_launch(bm_rt *rt, const bm_attn_bwd_args *a)
{
    int st = attb_check(a);
    if (st) return st;
    if (a->B == 0 || a->T == 0) return 0;
    const int dh = a->dh, G = a->H / a->Hkv;
    const long nrows = (long)G * a->T;
    const size_t groups1 = (size_t)a->B * a->Hkv;
    const cl_long nstat = (cl_long)groups1 * nrows;
    const long br_max = bm_build_tunable(rt, "BM_ATTB_BR", ATTB_BR_DEFAULT);
    const long bc_max = bm_build_tunable(rt, "BM_ATTB_BC", ATTB_BC_DEFAULT);

    cl_mem stats = NULL;
    st = bm_scratch_take(rt, sizeof(float) * 2u * (size_t)nstat, &stats);
    if (st) return bm_fail_context(st, "attention_backward statistics");
    const int cpu = bm_form_cpu(rt, rt->attn_bwd_form);
    if (cpu && attb_cpu_fits(rt, dh)) return attention_backward_cpu_launch(rt, a, stats, nstat);

    /* kernel 1: statistics and dq */
    cl_kernel k1 = bm_kernel(rt, "bm_attn_bwd_dq");
    if (!k1) return bm_fail_context(BMOJO_EBUILD, "attention_backward");
    const size_t L1 = attb_kernel_wg(rt, k1);
    int BR = 0, BC = 0;
    st = attb_plan(rt, L1, dh, br_max, bc_max, nrows, a->T, 1, 4, 1, &BR, &BC);
    if (st) return st;
    {
        const cl_int cbr = BR, cbc = BC;
        int i;
        cl_int err = attb_dq_args(k1, a, stats, nstat, &i);
        err |= BM_ARG(k1, i++, cbr);
        err |= BM_ARG(k1, i++, cbc);
        const size_t row_tile = sizeof(float) * (size_t)BR * (dh + 1), key_tile = sizeof(float) * (size_t)BC * (dh + 1);
        err |= BM_ARG_LOCAL(k1, i++, row_tile);                              /* qs */
        err |= BM_ARG_LOCAL(k1, i++, row_tile);                              /* dos */
        err |= BM_ARG_LOCAL(k1, i++, key_tile);                              /* ks */
        err |= BM_ARG_LOCAL(k1, i++, key_tile);                              /* vs */
        err |= BM_ARG_LOCAL(k1, i++, sizeof(float) * (size_t)BR * BC);       /* ss */
        err |= BM_ARG_LOCAL(k1, i++, sizeof(float) * 4u * (size_t)BR);       /* m, l, L, D */
        st = bm_args_check(err, "bm_attn_bwd_dq");
        if (st) return st;
        const size_t ntiles = (size_t)((nrows + BR - 1) / BR);
        const size_t global[2] = {ntiles * L1, groups1};
        const size_t local[2] = {L1, 1};
        st = bm_launch(rt, k1, "bm_attn_bwd_dq", 2, global, local);
        if (st) return st;
    }

    /* kernel 2: dk, dv */
    cl_kernel k2 = bm_kernel(rt, "bm_attn_bwd_dkv");
    if (!k2) return bm_fail_context(BMOJO_EBUILD, "attention_backward");
    const size_t L2 = attb_kernel_wg(rt, k2);
    st = attb_plan(rt, L2, dh, bc_max, br_max, a->T, nrows, 2, 2, 0, &BR, &BC);
    if (st) return st;
    {
        const cl_int cbr = BR, cbc = BC;
        int i;
        cl_int err = attb_dkv_args(k2, a, stats, nstat, &i);
        err |= BM_ARG(k2, i++, cbr);
        err |= BM_ARG(k2, i++, cbc);
        const size_t row_tile = sizeof(float) * (size_t)BR * (dh + 1), key_tile = sizeof(float) * (size_t)BC * (dh + 1);
        const size_t scores = sizeof(float) * (size_t)BR * BC;
        err |= BM_ARG_LOCAL(k2, i++, row_tile);                        /* qs */
        err |= BM_ARG_LOCAL(k2, i++, row_tile);                        /* dos */
        err |= BM_ARG_LOCAL(k2, i++, key_tile);                        /* ks */
        err |= BM_ARG_LOCAL(k2, i++, key_tile);                        /* vs */
        err |= BM_ARG_LOCAL(k2, i++, scores);                          /* ps */
        err |= BM_ARG_LOCAL(k2, i++, scores);                          /* dss */
        err |= BM_ARG_LOCAL(k2, i++, sizeof(float) * 2u * (size_t)BR); /* L, D */
        st = bm_args_check(err, "bm_attn_bwd_dkv");
        if (st) return st;
        const size_t ntiles = (size_t)((a->T + BC - 1) / BC);
        const size_t global[2] = {ntiles * L2, groups1};
        const size_t local[2] = {L2, 1};
        st = bm_launch(rt, k2, "bm_attn_bwd_dkv", 2, global, local);
    }
    return st;
}

int bm_op_attention_backward(bm_rt *rt, const bm_attn_bwd_args *a)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = attention_backward_launch(rt, a);
    bm_scratch_release(rt, mark);
    return st;
}
