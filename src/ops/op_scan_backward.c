/* op_scan_backward.c — host launcher of the selective-scan backward (contract:
 * bm_op_scan_backward in ops_backward.h; kernels in cl/scan_backward.cl, whose top comment gives
 * the algorithm). On CPU devices (rt->scan_bwd_form) the CPU form runs instead
 * (op_scan_backward_cpu.c) and shares the last two launches (bm_scan_backward_sums). Here:
 * bm_scan_bwd_main (a work-item per (sequence, channel, state): checkpoints, then the reverse
 * recursion chunk by chunk), bm_scan_bwd_dbc (dB, dC summed over the channel blocks) and
 * bm_scan_bwd_params (the weight gradients summed over sequences and added), after
 * bm_scan_bwd_pre (delta and dy silu(z) once per row and channel). Every sum has a fixed order:
 * results are deterministic. Scratch slots 0 (checkpoints), 1 (dB/dC partials per channel
 * block), 2 (per-sequence dA, dD, d_dt_bias) and 3 (delta, dy silu(z)). */
#include <stdint.h>

#include "error.h"
#include "ops/op_scan_backward.h"

/* Tunables (compile with -D to change). */
#ifndef BM_SCANB_WG_TARGET
#define BM_SCANB_WG_TARGET 128   /* work-items per group to aim for (channels x states) */
#endif

int bm_scan_backward_chunk_len(bm_rt *rt)
{
    cl_kernel k = bm_kernel(rt, "bm_scan_bwd_config");
    if (!k) return -1;
    size_t wg[3] = {0, 0, 0};
    cl_int err = clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof wg, wg, NULL);
    if (err != CL_SUCCESS || wg[0] == 0) return -1;
    return (int)wg[0];
}

static int scanb_check_args(const bm_scan_bwd_args *a)
{
    if (a->B < 0 || a->T < 0 || a->di < 0 || a->n < 1)
        return bm_fail(BMOJO_EINVAL, "scan backward: bad size (B=%d T=%d di=%d must be >= 0, d_state n=%d >= 1)", a->B,
                       a->T, a->di, a->n);
    const struct { cl_mem m; const char *name; } bufs[] = {
        {a->u, "u"},   {a->dt, "dt"}, {a->dt_bias, "dt_bias"}, {a->A, "A"},     {a->bc, "bc"},
        {a->D, "D"},   {a->z, "z"},   {a->dy, "dy"},           {a->du, "du"},   {a->ddt, "ddt"},
        {a->dbc, "dbc"}, {a->dz, "dz"}, {a->dA, "dA"},         {a->dD, "dD"},   {a->d_dt_bias, "d_dt_bias"},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (!bufs[i].m) return bm_fail(BMOJO_EINVAL, "scan backward: NULL buffer %s", bufs[i].name);
    size_t n = (size_t)a->n, di = (size_t)a->di;
    if (a->dt_ld < di) return bm_fail(BMOJO_EINVAL, "scan backward: dt_ld %zu < di %d", a->dt_ld, a->di);
    if (a->bc_ld < a->b_col + n || a->bc_ld < a->c_col + n)
        return bm_fail(BMOJO_EINVAL, "scan backward: bc_ld %zu too small for b_col %zu / c_col %zu + n %d", a->bc_ld,
                       a->b_col, a->c_col, a->n);
    if (a->dbc_ld < a->b_col + n || a->dbc_ld < a->c_col + n)
        return bm_fail(BMOJO_EINVAL, "scan backward: dbc_ld %zu too small for b_col %zu / c_col %zu + n %d", a->dbc_ld,
                       a->b_col, a->c_col, a->n);
    if (a->z_ld < a->z_col + di)
        return bm_fail(BMOJO_EINVAL, "scan backward: z_ld %zu too small for z_col %zu + di %d", a->z_ld, a->z_col, a->di);
    if (a->dz_ld < a->z_col + di)
        return bm_fail(BMOJO_EINVAL, "scan backward: dz_ld %zu too small for z_col %zu + di %d", a->dz_ld, a->z_col,
                       a->di);
    if (a->dt_ld > UINT32_MAX || a->bc_ld > UINT32_MAX || a->dbc_ld > UINT32_MAX || a->z_ld > UINT32_MAX ||
        a->dz_ld > UINT32_MAX)
        return bm_fail(BMOJO_ERANGE, "scan backward: leading dimension over 2^32");
    if ((uint64_t)a->B * (uint64_t)a->T > INT32_MAX)
        return bm_fail(BMOJO_ERANGE, "scan backward: B*T = %lld rows over 2^31", (long long)a->B * a->T);
    return 0;
}

int bm_op_scan_backward(bm_rt *rt, const bm_scan_bwd_args *a) { return bm_op_scan_backward_ex(rt, a, 0); }

/* The launches both forms end with: dB, dC summed over the channel blocks (pbc [nblk][B*T][2][n])
 * and the weight gradients summed over sequences (pp: pA [B][di][n], pD, pbias [B][di]). */
int bm_scan_backward_sums(bm_rt *rt, const bm_scan_bwd_args *a, cl_mem pbc, int nblk, cl_mem pp, int cpu)
{
    const char *dbc_name = cpu ? "bm_scan_bwd_dbc_cpu" : "bm_scan_bwd_dbc";
    cl_kernel kd = bm_kernel(rt, dbc_name);
    cl_kernel kp = bm_kernel(rt, "bm_scan_bwd_params");
    if (!kd || !kp) return bm_fail_context(BMOJO_EBUILD, "scan backward");
    const size_t BT = (size_t)a->B * (size_t)a->T;
    const int di = a->di, n = a->n;
    cl_int Bi = a->B, dii = di, ni = n, BTi = (cl_int)BT, nblki = nblk;
    cl_uint b_col = (cl_uint)a->b_col, c_col = (cl_uint)a->c_col, dbc_ld = (cl_uint)a->dbc_ld;
    size_t ld = rt->lim.wg ? rt->lim.wg : 64;
    if (ld > 256) ld = 256;
    int st;
    cl_int err = 0;
    err |= BM_ARG(kd, 0, BTi);
    err |= BM_ARG(kd, 1, ni);
    err |= BM_ARG(kd, 2, nblki);
    err |= BM_ARG(kd, 3, pbc);
    err |= BM_ARG(kd, 4, a->dbc);
    err |= BM_ARG(kd, 5, dbc_ld);
    err |= BM_ARG(kd, 6, b_col);
    err |= BM_ARG(kd, 7, c_col);
    if ((st = bm_args_check(err, dbc_name))) return st;
    if (cpu) {
        size_t gd = (BT + 15) / 16, one = 1;
        if ((st = bm_launch(rt, kd, dbc_name, 1, &gd, &one))) return st;
    } else {
        size_t gd = (BT * 2 * (size_t)n + ld - 1) / ld * ld;
        if ((st = bm_launch(rt, kd, dbc_name, 1, &gd, &ld))) return st;
    }

    err = 0;
    err |= BM_ARG(kp, 0, Bi);
    err |= BM_ARG(kp, 1, dii);
    err |= BM_ARG(kp, 2, ni);
    err |= BM_ARG(kp, 3, pp);
    err |= BM_ARG(kp, 4, a->dA);
    err |= BM_ARG(kp, 5, a->dD);
    err |= BM_ARG(kp, 6, a->d_dt_bias);
    if ((st = bm_args_check(err, "bm_scan_bwd_params"))) return st;
    size_t gp = ((size_t)di * n + ld - 1) / ld * ld;
    return bm_launch(rt, kp, "bm_scan_bwd_params", 1, &gp, &ld);
}

static int scan_backward_ex_launch(bm_rt *rt, const bm_scan_bwd_args *a, int cb_force)
{
    if (!rt || !a) return bm_fail(BMOJO_EINVAL, "scan backward: NULL argument");
    int st = scanb_check_args(a);
    if (st) return st;
    if (a->B == 0 || a->T == 0 || a->di == 0) return 0;   /* nothing to write or accumulate */
    /* the CPU form (a forced work-group shape is the GPU form's) */
    const int cpu = bm_form_cpu(rt, rt->scan_bwd_form);
    if (cb_force <= 0 && cpu && bm_scan_backward_cpu_fits(a)) return bm_op_scan_backward_cpu(rt, a);

    const int B = a->B, T = a->T, di = a->di, n = a->n;
    const int L = bm_scan_backward_chunk_len(rt);
    if (L < 1) return bm_fail_context(BMOJO_EBUILD, "scan backward: chunk length");
    cl_kernel km = bm_kernel(rt, "bm_scan_bwd_main");
    cl_kernel kq = bm_kernel(rt, "bm_scan_bwd_pre");
    if (!km || !kq) return bm_fail_context(BMOJO_EBUILD, "scan backward");

    /* Work-group: CB channels x n states, at most the device's and the kernel's limits. */
    size_t cap = rt->lim.max_wg ? rt->lim.max_wg : 64, kwg = 0;
    if (rt->lim.max_wi[0] && cap > rt->lim.max_wi[0]) cap = rt->lim.max_wi[0];
    if (clGetKernelWorkGroupInfo(km, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && cap > kwg)
        cap = kwg;
    if ((size_t)n > cap)
        return bm_fail(BMOJO_EUNSUPPORTED, "scan backward: d_state %d exceeds the work-group limit %zu", n, cap);
    size_t target = rt->lim.wg ? rt->lim.wg : 64;
    if (target > BM_SCANB_WG_TARGET) target = BM_SCANB_WG_TARGET;
    size_t CB = cb_force > 0 ? (size_t)cb_force : (target > (size_t)n ? target / (size_t)n : 1);
    if (cb_force <= 0 && CB > (size_t)di) CB = (size_t)di;
    if (CB * (size_t)n > cap) {
        if (cb_force > 0)
            return bm_fail(BMOJO_EUNSUPPORTED, "scan backward: %d channels x %d states exceed the work-group limit %zu",
                           cb_force, n, cap);
        CB = cap / (size_t)n;
    }
    const size_t njp = (size_t)(n | 1);
    size_t lbytes;
    for (;;) {
        lbytes = 5 * (size_t)L * CB * njp * sizeof(float);
        if (lbytes <= rt->lim.local_mem) break;
        if (cb_force <= 0 && CB > 1) CB /= 2;
        else
            return bm_fail(BMOJO_EUNSUPPORTED, "scan backward: %zu bytes of local memory needed, the device has %llu",
                           lbytes, (unsigned long long)rt->lim.local_mem);
    }
    const size_t wg = CB * (size_t)n;
    const size_t nblk = ((size_t)di + CB - 1) / CB;
    const size_t BT = (size_t)B * (size_t)T;
    const int nc = (T + L - 1) / L;

    cl_mem ckpt, pbc, pp, pre;
    size_t ck_bytes = (size_t)(nc > 1 ? nc - 1 : 1) * (size_t)B * di * n * sizeof(float);
    if ((st = bm_scratch_take(rt, ck_bytes, &ckpt))) return st;
    if ((st = bm_scratch_take(rt, nblk * BT * 2 * (size_t)n * sizeof(float), &pbc))) return st;
    if ((st = bm_scratch_take(rt, ((size_t)B * di * n + 2 * (size_t)B * di) * sizeof(float), &pp))) return st;
    if ((st = bm_scratch_take(rt, 2 * BT * (size_t)di * sizeof(float), &pre))) return st;

    cl_int Ti = T, dii = di, ni = n, CBi = (cl_int)CB;
    cl_uint dt_ld = (cl_uint)a->dt_ld, bc_ld = (cl_uint)a->bc_ld, b_col = (cl_uint)a->b_col, c_col = (cl_uint)a->c_col;
    cl_uint z_ld = (cl_uint)a->z_ld, z_col = (cl_uint)a->z_col, dz_ld = (cl_uint)a->dz_ld;
    /* softplus(dt + dt_bias) and dy silu(z) once per (row, channel) */
    size_t ld = rt->lim.wg ? rt->lim.wg : 64;
    if (ld > 256) ld = 256;
    cl_int err = 0;
    err |= BM_ARG(kq, 0, dii);
    err |= BM_ARG(kq, 1, a->dt);
    err |= BM_ARG(kq, 2, dt_ld);
    err |= BM_ARG(kq, 3, a->dt_bias);
    err |= BM_ARG(kq, 4, a->z);
    err |= BM_ARG(kq, 5, z_ld);
    err |= BM_ARG(kq, 6, z_col);
    err |= BM_ARG(kq, 7, a->dy);
    err |= BM_ARG(kq, 8, pre);
    if ((st = bm_args_check(err, "bm_scan_bwd_pre"))) return st;
    {
        size_t lq[2] = {ld < (size_t)di ? ld : 1, 1}, gq[2];
        if (lq[0] == 1) while (lq[0] * 2 <= (size_t)di) lq[0] *= 2;
        gq[0] = ((size_t)di + lq[0] - 1) / lq[0] * lq[0];
        gq[1] = BT;
        if ((st = bm_launch(rt, kq, "bm_scan_bwd_pre", 2, gq, lq))) return st;
    }

    err = 0;
    err |= BM_ARG(km, 0, Ti);
    err |= BM_ARG(km, 1, dii);
    err |= BM_ARG(km, 2, ni);
    err |= BM_ARG(km, 3, CBi);
    err |= BM_ARG(km, 4, a->u);
    err |= BM_ARG(km, 5, a->dt);
    err |= BM_ARG(km, 6, dt_ld);
    err |= BM_ARG(km, 7, a->dt_bias);
    err |= BM_ARG(km, 8, a->A);
    err |= BM_ARG(km, 9, a->bc);
    err |= BM_ARG(km, 10, bc_ld);
    err |= BM_ARG(km, 11, b_col);
    err |= BM_ARG(km, 12, c_col);
    err |= BM_ARG(km, 13, a->D);
    err |= BM_ARG(km, 14, a->z);
    err |= BM_ARG(km, 15, z_ld);
    err |= BM_ARG(km, 16, z_col);
    err |= BM_ARG(km, 17, a->dy);
    err |= BM_ARG(km, 18, pre);
    err |= BM_ARG(km, 19, a->du);
    err |= BM_ARG(km, 20, a->ddt);
    err |= BM_ARG(km, 21, a->dz);
    err |= BM_ARG(km, 22, dz_ld);
    err |= BM_ARG(km, 23, ckpt);
    err |= BM_ARG(km, 24, pbc);
    err |= BM_ARG(km, 25, pp);
    err |= BM_ARG_LOCAL(km, 26, lbytes);
    if ((st = bm_args_check(err, "bm_scan_bwd_main"))) return st;
    size_t gm[2] = {nblk * wg, (size_t)B}, lm[2] = {wg, 1};
    if ((st = bm_launch(rt, km, "bm_scan_bwd_main", 2, gm, lm))) return st;

    return bm_scan_backward_sums(rt, a, pbc, (int)nblk, pp, 0);
}

int bm_op_scan_backward_ex(bm_rt *rt, const bm_scan_bwd_args *a, int cb_force)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = scan_backward_ex_launch(rt, a, cb_force);
    bm_scratch_release(rt, mark);
    return st;
}
