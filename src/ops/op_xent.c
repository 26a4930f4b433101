/* op_xent.c — launcher of the fused cross-entropy loss and gradient over a chunk of the head's
 * logits: cl/xent.cl (one work-group of BM_WG work-items per row) on GPUs, cl/xent_cpu.cl (one
 * work-item per row) on CPUs; rt->xent_form forces either (tests). */
#include "ops_backward.h"

#include "error.h"

int bm_op_xent_backward(bm_rt *rt, cl_mem logits, size_t ld, int V, cl_mem targets, float scale, cl_mem loss,
                        cl_mem hit, int rows)
{
    const char *fn = "bm_op_xent_backward";
    if (rows < 0) return bm_fail(BMOJO_EINVAL, "%s: negative rows (%d)", fn, rows);
    if (rows == 0) return 0;
    if (V < 1) return bm_fail(BMOJO_EINVAL, "%s: V = %d, need at least one class", fn, V);
    if (!logits) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer logits", fn);
    if (!targets) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer targets", fn);
    if (!loss) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer loss", fn);
    if (rows > 1 && ld < (size_t)V) return bm_fail(BMOJO_EINVAL, "%s: V %d exceeds leading dimension ld %zu", fn, V, ld);
    const int cpu = bm_form_cpu(rt, rt->xent_form);
    /* The GPU form is compiled for exactly BM_WG work-items and two local arrays of as many floats. */
    size_t wg = cpu ? 1 : rt->lim.wg;
    if (!cpu && (wg == 0 || wg > rt->lim.max_wg || (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) ||
        (uint64_t)wg * 2 * sizeof(float) > rt->lim.local_mem))
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: work-group size %zu does not fit the device (max %zu, local memory %llu bytes)",
                       fn, wg, rt->lim.max_wg, (unsigned long long)rt->lim.local_mem);
    const char *name = cpu ? "bm_xent_bwd_cpu" : "bm_xent_bwd";
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    cl_ulong cl_ld = ld;
    cl_int cv = V, err = 0;
    cl_float cs = scale;
    err |= BM_ARG(k, 0, logits);
    err |= BM_ARG(k, 1, cl_ld);
    err |= BM_ARG(k, 2, cv);
    err |= BM_ARG(k, 3, targets);
    err |= BM_ARG(k, 4, cs);
    err |= BM_ARG(k, 5, loss);
    err |= BM_ARG(k, 6, hit); /* NULL is a valid global-pointer argument (OpenCL 1.2, clSetKernelArg) */
    int st = bm_args_check(err, name);
    if (st) return st;
    size_t global = (size_t)rows * wg, local = wg;
    return bm_launch(rt, k, name, 1, &global, &local);
}
