/* op_conv1d_backward.c — launcher of the conv1d + SiLU backward (cl/conv1d_backward.cl): dpre
 * into scratch, per-time-block partials of dw / dbias, their ordered reduction, then dx. On CPU
 * devices (rt->conv_bwd_form) the CPU form (cl/conv1d_backward_cpu.cl) computes dpre with the
 * partials in one launch and dx in another, around the same reduction. No atomics, so the result
 * is the same on every run. */
#include <limits.h>

#include "error.h"
#include "ops_backward.h"

/* Rows per time block of the weight-gradient partials, and the cap on the partials per
 * (channel, tap): long batches get longer blocks, so that the reduce kernel's serial loop (and the
 * scratch) stays bounded while short ones still spread over many work-items. */
#define CONV_BWD_TB 64
#define CONV_BWD_MAXPART 1024
#define CONV_BWD_CPU_KMAX 8 /* mirrors BM_CONV_KMAX (cl/conv1d.cl): the CPU form's widest kernel */

/* Local size of a 2-D (channel, row) range: dim 0 as wide as the channels allow (a power of two
 * within the device limits), the rest of the group over dim 1. */
static void conv_bwd_local(const bm_rt *rt, size_t cols, size_t rows, size_t local[2])
{
    size_t wg = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) wg = rt->lim.max_wi[0];
    if (wg == 0) wg = 1;
    size_t l0 = 1, l1 = 1;
    while (l0 * 2 <= wg && l0 < cols) l0 *= 2;
    while (l0 * l1 * 2 <= wg && l1 < rows && (rt->lim.max_wi[1] == 0 || l1 * 2 <= rt->lim.max_wi[1])) l1 *= 2;
    local[0] = l0;
    local[1] = l1;
}

static int conv_bwd_launch(bm_rt *rt, cl_kernel k, const char *name, size_t g0, size_t g1)
{
    size_t global[2] = {g0, g1}, local[2];
    conv_bwd_local(rt, g0, g1, local);
    return bm_launch(rt, k, name, 2, global, local);
}

static int conv1d_backward_launch(bm_rt *rt, const bm_conv_bwd_args *a)
{
    if (!rt || !a) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: NULL runtime or arguments");
    if (a->B < 0 || a->T < 0 || a->di < 0 || a->k < 1)
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: bad shape (B=%d, T=%d, di=%d, k=%d)", a->B, a->T, a->di,
                       a->k);
    if (a->B == 0 || a->T == 0 || a->di == 0) return 0;
    if ((long long)a->B * a->T > INT_MAX || (long long)a->di * a->k > INT_MAX)
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: B*T = %lld rows or di*k = %lld taps is too many",
                       (long long)a->B * a->T, (long long)a->di * a->k);
    if (!a->x) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: x is NULL");
    if (!a->w) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: w is NULL");
    if (!a->du) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: du is NULL");
    if (!a->dx) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: dx is NULL");
    if (!a->dw) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: dw is NULL");
    if (a->x_ld < (size_t)a->di)
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: x_ld %zu < di %d", a->x_ld, a->di);
    if (a->dx_ld < (size_t)a->di)
        return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: dx_ld %zu < di %d", a->dx_ld, a->di);

    const int B = a->B, T = a->T, di = a->di, kw = a->k, rows = B * T;
    const int ntap = kw + (a->dbias != NULL); /* the bias is one more tap, of constant input 1 */
    int tb = CONV_BWD_TB < T ? CONV_BWD_TB : T;
    int nblk = (T + tb - 1) / tb;
    if ((long long)B * nblk > CONV_BWD_MAXPART) {
        int want = CONV_BWD_MAXPART / B > 0 ? CONV_BWD_MAXPART / B : 1;
        tb = (T + want - 1) / want;
        nblk = (T + tb - 1) / tb;
    }
    const long long nq_ll = (long long)B * nblk * ntap;
    if (nq_ll > INT_MAX) return bm_fail(BMOJO_EINVAL, "bm_op_conv1d_backward: B=%d is too many sequences", B);
    const int npart = B * nblk, nq = (int)nq_ll;

    cl_mem dpre = NULL, part = NULL;
    int st = bm_scratch_take(rt, (size_t)rows * (size_t)di * sizeof(float), &dpre);
    if (!st) st = bm_scratch_take(rt, (size_t)nq * (size_t)di * sizeof(float), &part);
    if (st) return st;

    const cl_ulong x_ld = a->x_ld, dx_ld = a->dx_ld;
    const cl_int cT = T, cdi = di, ck = kw, crows = rows, ctb = tb, cnblk = nblk, cntap = ntap, cnq = nq,
                 cnpart = npart, has_bias = a->bias != NULL;
    const cl_mem bias = a->bias ? a->bias : a->w;     /* any valid buffer; has_bias = 0 keeps it unread */
    const cl_mem dbias = a->dbias ? a->dbias : a->dw; /* ntap == k: the bias tap never runs */
    cl_int err = 0;

    const int cpu = bm_form_cpu(rt, rt->conv_bwd_form) &&
                    kw <= CONV_BWD_CPU_KMAX;
    const size_t cblk = ((size_t)di + 15) / 16;
    if (cpu) {
        /* dpre and the partials: one item per (16 channels, time block) */
        cl_kernel kc = bm_kernel(rt, "bm_conv1d_bwd_cpu_part");
        if (!kc) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d_backward");
        err = BM_ARG(kc, 0, a->x) | BM_ARG(kc, 1, x_ld) | BM_ARG(kc, 2, a->w) | BM_ARG(kc, 3, bias) |
              BM_ARG(kc, 4, has_bias) | BM_ARG(kc, 5, a->du) | BM_ARG(kc, 6, dpre) | BM_ARG(kc, 7, part) |
              BM_ARG(kc, 8, cT) | BM_ARG(kc, 9, cdi) | BM_ARG(kc, 10, ck) | BM_ARG(kc, 11, ctb) | BM_ARG(kc, 12, cnblk) |
              BM_ARG(kc, 13, cntap);
        if ((st = bm_args_check(err, "bm_conv1d_bwd_cpu_part"))) return st;
        size_t g[2] = {cblk, (size_t)npart}, l[2] = {1, 1};
        if ((st = bm_launch(rt, kc, "bm_conv1d_bwd_cpu_part", 2, g, l))) return st;
    } else {
        cl_kernel k1 = bm_kernel(rt, "bm_conv1d_bwd_dpre");
        if (!k1) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d_backward");
        err |= BM_ARG(k1, 0, a->x);
        err |= BM_ARG(k1, 1, x_ld);
        err |= BM_ARG(k1, 2, a->w);
        err |= BM_ARG(k1, 3, bias);
        err |= BM_ARG(k1, 4, has_bias);
        err |= BM_ARG(k1, 5, a->du);
        err |= BM_ARG(k1, 6, dpre);
        err |= BM_ARG(k1, 7, cT);
        err |= BM_ARG(k1, 8, cdi);
        err |= BM_ARG(k1, 9, ck);
        err |= BM_ARG(k1, 10, crows);
        if ((st = bm_args_check(err, "bm_conv1d_bwd_dpre"))) return st;
        if ((st = conv_bwd_launch(rt, k1, "bm_conv1d_bwd_dpre", (size_t)di, (size_t)rows))) return st;

        cl_kernel k2 = bm_kernel(rt, "bm_conv1d_bwd_part");
        if (!k2) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d_backward");
        err = 0;
        err |= BM_ARG(k2, 0, a->x);
        err |= BM_ARG(k2, 1, x_ld);
        err |= BM_ARG(k2, 2, dpre);
        err |= BM_ARG(k2, 3, part);
        err |= BM_ARG(k2, 4, cT);
        err |= BM_ARG(k2, 5, cdi);
        err |= BM_ARG(k2, 6, ck);
        err |= BM_ARG(k2, 7, ctb);
        err |= BM_ARG(k2, 8, cnblk);
        err |= BM_ARG(k2, 9, cntap);
        err |= BM_ARG(k2, 10, cnq);
        if ((st = bm_args_check(err, "bm_conv1d_bwd_part"))) return st;
        if ((st = conv_bwd_launch(rt, k2, "bm_conv1d_bwd_part", (size_t)di, (size_t)nq))) return st;
    }

    cl_kernel k3 = bm_kernel(rt, "bm_conv1d_bwd_reduce");
    if (!k3) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d_backward");
    err = 0;
    err |= BM_ARG(k3, 0, part);
    err |= BM_ARG(k3, 1, a->dw);
    err |= BM_ARG(k3, 2, dbias);
    err |= BM_ARG(k3, 3, cdi);
    err |= BM_ARG(k3, 4, ck);
    err |= BM_ARG(k3, 5, cntap);
    err |= BM_ARG(k3, 6, cnpart);
    if ((st = bm_args_check(err, "bm_conv1d_bwd_reduce"))) return st;
    if ((st = conv_bwd_launch(rt, k3, "bm_conv1d_bwd_reduce", (size_t)di, (size_t)ntap))) return st;

    /* last: every read of x and du is done, so dx may alias either */
    if (cpu) {
        cl_kernel kx = bm_kernel(rt, "bm_conv1d_bwd_cpu_dx");
        if (!kx) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d_backward");
        err = BM_ARG(kx, 0, dpre) | BM_ARG(kx, 1, a->w) | BM_ARG(kx, 2, a->dx) | BM_ARG(kx, 3, dx_ld) | BM_ARG(kx, 4, cT) |
              BM_ARG(kx, 5, cdi) | BM_ARG(kx, 6, ck) | BM_ARG(kx, 7, ctb) | BM_ARG(kx, 8, cnblk);
        if ((st = bm_args_check(err, "bm_conv1d_bwd_cpu_dx"))) return st;
        size_t g[2] = {cblk, (size_t)npart}, l[2] = {1, 1};
        return bm_launch(rt, kx, "bm_conv1d_bwd_cpu_dx", 2, g, l);
    }
    cl_kernel k4 = bm_kernel(rt, "bm_conv1d_bwd_dx");
    if (!k4) return bm_fail_context(BMOJO_EBUILD, "bm_op_conv1d_backward");
    err = 0;
    err |= BM_ARG(k4, 0, dpre);
    err |= BM_ARG(k4, 1, a->w);
    err |= BM_ARG(k4, 2, a->dx);
    err |= BM_ARG(k4, 3, dx_ld);
    err |= BM_ARG(k4, 4, cT);
    err |= BM_ARG(k4, 5, cdi);
    err |= BM_ARG(k4, 6, ck);
    err |= BM_ARG(k4, 7, crows);
    if ((st = bm_args_check(err, "bm_conv1d_bwd_dx"))) return st;
    return conv_bwd_launch(rt, k4, "bm_conv1d_bwd_dx", (size_t)di, (size_t)rows);
}

int bm_op_conv1d_backward(bm_rt *rt, const bm_conv_bwd_args *a)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = conv1d_backward_launch(rt, a);
    bm_scratch_release(rt, mark);
    return st;
}
