/* op_mamba_step.c — launcher of the fused Mamba-1 decoding step (cl/mamba_step.cl): x_proj,
 * the optional dt/B/C norms, dt_proj and the scan step in one launch. */
#include <stdint.h>

#include "error.h"
#include "ops.h"

#define MSTEP_TPR 16 /* mirrors BM_MSTEP_TPR in cl/mamba_step.cl */
#define MSTEP_QPC 4  /* mirrors BM_MSTEP_QPC */

/* Work-group size: a power of two within the device's and the kernel's limits, at most 1024 (a
 * group streams all of x_proj: the more loads in flight the better). */
static size_t mstep_wg(bm_rt *rt, cl_kernel k)
{
    size_t cap = rt->lim.max_wg ? rt->lim.max_wg : 64, kwg = 0;
    if (cap > 1024) cap = 1024;
    if (rt->lim.max_wi[0] && cap > rt->lim.max_wi[0]) cap = rt->lim.max_wi[0];
    if (k && clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && cap > kwg)
        cap = kwg;
    size_t L = 1;
    while (L * 2 <= cap) L *= 2;
    return L;
}

static size_t mstep_local_bytes(size_t L, int di, int n, int R)
{
    return ((size_t)di + L + (size_t)R + 2 * (size_t)n) * sizeof(float);
}

int bm_op_mamba_step_ok(bm_rt *rt, int di, int n, int R)
{
    if (!rt || di < 1 || n < 1 || R < 1) return 0;
    cl_kernel k = bm_kernel(rt, "bm_mamba_step");
    if (!k) return 0;
    size_t L = mstep_wg(rt, k);
    return L >= MSTEP_TPR && mstep_local_bytes(L, di, n, R) <= rt->lim.local_mem / 2;
}

int bm_op_mamba_step(bm_rt *rt, const bm_mamba_step_args *a)
{
    if (!rt || !a) return bm_fail(BMOJO_EINVAL, "bm_op_mamba_step: NULL argument");
    if (a->B < 0 || a->di < 0 || a->n < 1 || a->R < 1)
        return bm_fail(BMOJO_EINVAL, "mamba step: bad size (B=%d di=%d n=%d dt_rank=%d)", a->B, a->di, a->n, a->R);
    if (a->B == 0 || a->di == 0) return 0;
    if (!a->u || !a->x_proj || !a->xdbl || !a->dt_proj || !a->dt_bias || !a->A || !a->D || !a->z || !a->state || !a->y)
        return bm_fail(BMOJO_EINVAL, "mamba step: NULL buffer (u, x_proj, xdbl, dt_proj, dt_bias, A, D, z, state, y)");
    const int has_norm = a->dt_norm != NULL;
    if (has_norm != (a->b_norm != NULL) || has_norm != (a->c_norm != NULL))
        return bm_fail(BMOJO_EINVAL, "mamba step: the dt, B and C norm weights must be given all or none");
    if (a->z_ld < a->z_col + (size_t)a->di || a->z_ld > UINT32_MAX)
        return bm_fail(BMOJO_EINVAL, "mamba step: the z view (z_ld %zu, z_col %zu) does not fit di %d", a->z_ld, a->z_col,
                       a->di);
    cl_kernel k = bm_kernel(rt, "bm_mamba_step");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "mamba step");
    const size_t L = mstep_wg(rt, k), local = mstep_local_bytes(L, a->di, a->n, a->R);
    if (L < MSTEP_TPR || local > rt->lim.local_mem / 2)
        return bm_fail(BMOJO_EINVAL,
                       "mamba step: d_inner %d, d_state %d and dt_rank %d need %zu bytes of local memory and %d "
                       "work-items per group (device: %llu bytes, %zu items)",
                       a->di, a->n, a->R, local, MSTEP_TPR, (unsigned long long)rt->lim.local_mem, L);
    cl_int di = a->di, n = a->n, R = a->R, hn = has_norm;
    cl_float eps = a->eps;
    cl_uint z_ld = (cl_uint)a->z_ld, z_col = (cl_uint)a->z_col;
    cl_mem dn = has_norm ? a->dt_norm : a->x_proj, bn = has_norm ? a->b_norm : a->x_proj; /* unread when 0 */
    cl_mem cn = has_norm ? a->c_norm : a->x_proj;
    int i = 0;
    cl_int err = 0;
    err |= BM_ARG(k, i++, di);
    err |= BM_ARG(k, i++, n);
    err |= BM_ARG(k, i++, R);
    err |= BM_ARG(k, i++, a->u);
    err |= BM_ARG(k, i++, a->x_proj);
    err |= BM_ARG(k, i++, hn);
    err |= BM_ARG(k, i++, dn);
    err |= BM_ARG(k, i++, bn);
    err |= BM_ARG(k, i++, cn);
    err |= BM_ARG(k, i++, eps);
    err |= BM_ARG(k, i++, a->xdbl);
    err |= BM_ARG(k, i++, a->dt_proj);
    err |= BM_ARG(k, i++, a->dt_bias);
    err |= BM_ARG(k, i++, a->A);
    err |= BM_ARG(k, i++, a->D);
    err |= BM_ARG(k, i++, a->z);
    err |= BM_ARG(k, i++, z_ld);
    err |= BM_ARG(k, i++, z_col);
    err |= BM_ARG(k, i++, a->state);
    err |= BM_ARG(k, i++, a->y);
    err |= BM_ARG_LOCAL(k, i++, (size_t)a->di * sizeof(float));
    err |= BM_ARG_LOCAL(k, i++, L * sizeof(float));
    err |= BM_ARG_LOCAL(k, i++, ((size_t)a->R + 2 * (size_t)a->n) * sizeof(float));
    int st = bm_args_check(err, "bm_mamba_step");
    const size_t per_group = L / MSTEP_QPC; /* channels per group */
    size_t g[2] = {((size_t)a->di + per_group - 1) / per_group * L, (size_t)a->B}, l[2] = {L, 1};
    if (!st) st = bm_launch(rt, k, "bm_mamba_step", 2, g, l);
    return st;
}
