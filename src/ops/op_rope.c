/* op_rope.c — launcher of RoPE (cl/rope.cl). The inverse frequencies are computed here, on the
 * host, exactly as HF does in float32 (a correctly rounded float pow, then 1/x), and passed by
 * value as 8 float16 kernel arguments: OpenCL's pow may be 16 ulp off, and one ulp of
 * inv_freq moves the angle at position 30000 by ~2e-3 rad. The kernel then forms the same
 * float32 angle pos * inv_freq as HF (see the top of cl/rope.cl for the accuracy discussion).
 * bm_op_rope_backward (ops_backward.h) is the same launch of the transposed kernel bm_rope_bwd. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "ops_backward.h"

#define ROPE_MAX_PAIRS 128 /* 8 float16 arguments: head_dim <= 256 */

/* bm_rope (the rotation by +angle) or bm_rope_bwd (by -angle, its transpose): the same checks,
 * table and launch; `what` names the op in errors. */
static int rope_launch(bm_rt *rt, const char *kname, const char *what, cl_mem x, size_t ld, size_t col, int B, int T,
                       int nh, int dh, int64_t pos0, float theta)
{
    if (!rt || !x) return bm_fail(BMOJO_EINVAL, "%s: NULL runtime or buffer", what);
    if (B < 0 || T < 0 || nh < 0 || dh < 2 || dh % 2 != 0 || pos0 < 0 || !(theta > 0.0f))
        return bm_fail(BMOJO_EINVAL, "%s: bad arguments B=%d T=%d heads=%d head_dim=%d (even, >= 2) pos0=%lld theta=%g",
                       what, B, T, nh, dh, (long long)pos0, (double)theta);
    if (dh / 2 > ROPE_MAX_PAIRS)
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: head_dim %d > %d", what, dh, 2 * ROPE_MAX_PAIRS);
    if (ld < col + (size_t)nh * dh)
        return bm_fail(BMOJO_EINVAL, "%s: ld %zu too small for col %zu + %d heads of %d", what, ld, col, nh, dh);
    if (B == 0 || T == 0 || nh == 0) return 0;

    cl_float16 f[ROPE_MAX_PAIRS / 16];
    memset(f, 0, sizeof f);
    for (int i = 0; i < dh / 2; i++) {
        const float e = (float)(2 * i) / (float)dh;
        const float pw = (float)pow((double)theta, (double)e);
        f[i / 16].s[i % 16] = 1.0f / pw;
    }
    /* CPUs: the per-position form (cl/rope.cl: bm_rope_cpu / bm_rope_bwd_cpu); rt->rope_form forces one */
    const int per_position = rt->rope_form == BM_ROPE_FORM_POSITIONS || (rt->rope_form == BM_ROPE_FORM_AUTO && !rt->lim.is_gpu);
    char name[32];
    snprintf(name, sizeof name, "%s%s", kname, per_position ? "_cpu" : "");
    kname = name;
    cl_kernel k = bm_kernel(rt, kname);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", what);
    const cl_long cld = (cl_long)ld, ccol = (cl_long)col, cpos0 = (cl_long)pos0,
                  total = (cl_long)B * T * nh * (dh / 2);
    const cl_int cT = T, cnh = nh, cdh = dh;
    cl_int err = 0;
    int i = 0;
    err |= BM_ARG(k, i++, x);
    err |= BM_ARG(k, i++, cld);
    err |= BM_ARG(k, i++, ccol);
    err |= BM_ARG(k, i++, cT);
    err |= BM_ARG(k, i++, cnh);
    err |= BM_ARG(k, i++, cdh);
    err |= BM_ARG(k, i++, cpos0);
    err |= BM_ARG(k, i++, total);
    for (int j = 0; j < ROPE_MAX_PAIRS / 16; j++) err |= BM_ARG(k, i++, f[j]);
    int st = bm_args_check(err, kname);
    if (st) return st;
    if (per_position) { /* a work-item per position (each rotates its B rows) */
        const size_t positions = (size_t)T, one = 1;
        return bm_launch(rt, k, kname, 1, &positions, &one);
    }
    size_t L = rt->lim.wg ? rt->lim.wg : 64;
    size_t kwg = 0;
    if (clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && kwg < L)
        L = kwg;
    if (L > rt->lim.max_wg) L = rt->lim.max_wg;
    if (L > rt->lim.max_wi[0]) L = rt->lim.max_wi[0];
    const size_t global[1] = {(size_t)total};
    const size_t local[1] = {L};
    return bm_launch(rt, k, kname, 1, global, local);
}

int bm_op_rope(bm_rt *rt, cl_mem x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, float theta)
{
    return rope_launch(rt, "bm_rope", "rope", x, ld, col, B, T, nh, dh, pos0, theta);
}

int bm_op_rope_backward(bm_rt *rt, cl_mem x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0,
                        float theta)
{
    return rope_launch(rt, "bm_rope_bwd", "rope_backward", x, ld, col, B, T, nh, dh, pos0, theta);
}
