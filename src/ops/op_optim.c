/* op_optim.c — launchers of the optimizer kernels (cl/optim.cl): the deterministic sum of squares
 * (partials per work-group, then one work-group over them), the clip factor, and the AdamW step
 * over a range of the flat parameter buffers. */
#include "ops_optim.h"

#include "error.h"

/* The most partial sums of bm_op_sumsq: the second launch is one work-group, so this bounds its
 * loop (1024 / BM_WG items each); 1024 groups keep a GPU's compute units busy on the first. */
#define SUMSQ_MAX_GROUPS 1024
/* Fewer elements than this per group only add partials: a group of BM_WG items gets at least
 * 4 * BM_WG elements, so small ranges use one group. */
#define SUMSQ_MIN_PER_ITEM 4

/* The partials' temporary buffer, from the scratch stack (bm_op_sumsq releases it): the sum's
 * two launches are back to back on the in-order queue, so it only has to outlive them. */
static int sumsq_partials(bm_rt *rt, size_t groups, cl_mem *out)
{
    return bm_scratch_take(rt, groups * sizeof(float), out);
}

/* Bytes of a buffer, for range checks. */
static int mem_bytes(cl_mem m, size_t *bytes)
{
    cl_int err = clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof *bytes, bytes, NULL);
    return err != CL_SUCCESS ? bm_cl_check(err, "clGetMemObjectInfo(CL_MEM_SIZE)") : 0;
}

static int check_range(const char *fn, const char *what, cl_mem m, size_t offset_floats, size_t n)
{
    if (!m) return bm_fail(BMOJO_EINVAL, "%s: NULL buffer %s", fn, what);
    size_t bytes = 0;
    int st = mem_bytes(m, &bytes);
    if (st) return st;
    if (offset_floats > bytes / sizeof(float) || n > bytes / sizeof(float) - offset_floats)
        return bm_fail(BMOJO_EINVAL, "%s: range [%zu, %zu) of %s exceeds its %zu floats", fn, offset_floats,
                       offset_floats + n, what, bytes / sizeof(float));
    return 0;
}

/* Both reduction kernels are compiled for exactly BM_WG = rt->lim.wg items with a local array
 * of as many floats. */
static int wg_fits(const bm_rt *rt, const char *fn)
{
    size_t wg = rt->lim.wg;
    if (wg == 0 || wg > rt->lim.max_wg || (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) ||
        (uint64_t)wg * sizeof(float) > rt->lim.local_mem)
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: work-group size %zu does not fit the device (max %zu, local memory %llu bytes)",
                       fn, wg, rt->lim.max_wg, (unsigned long long)rt->lim.local_mem);
    return 0;
}

static int sumsq_launch(bm_rt *rt, cl_mem x, size_t offset_floats, size_t n, cl_mem out, size_t out_index)
{
    const char *fn = "bm_op_sumsq";
    int st;
    if ((st = check_range(fn, "x", x, offset_floats, n)) || (st = check_range(fn, "out", out, out_index, 1))) return st;
    if (x == out && out_index >= offset_floats && out_index < offset_floats + n)
        return bm_fail(BMOJO_EINVAL, "%s: out[%zu] lies inside the summed range", fn, out_index);
    if ((st = wg_fits(rt, fn))) return st;
    size_t wg = rt->lim.wg;
    /* G and the chunk depend on n (and BM_WG) only: the same range always adds in the same order. */
    size_t per_group = wg * SUMSQ_MIN_PER_ITEM;
    size_t groups = (n + per_group - 1) / per_group;
    if (groups > SUMSQ_MAX_GROUPS) groups = SUMSQ_MAX_GROUPS;
    if (groups == 0) groups = 1;
    size_t chunk = (n + groups - 1) / groups;
    chunk = (chunk + wg - 1) / wg * wg; /* every item of a group gets the same count but the last group's */
    cl_mem part = NULL;
    if ((st = sumsq_partials(rt, groups, &part))) return bm_fail_context(st, "%s: %zu partial sums", fn, groups);

    cl_ulong co = offset_floats, cn = n, cc = chunk, oi = out_index;
    cl_int cg = (cl_int)groups, err = 0;
    cl_kernel k = bm_kernel(rt, "bm_sumsq_part");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    err |= BM_ARG(k, 0, x);
    err |= BM_ARG(k, 1, co);
    err |= BM_ARG(k, 2, cn);
    err |= BM_ARG(k, 3, cc);
    err |= BM_ARG(k, 4, part);
    if ((st = bm_args_check(err, "bm_sumsq_part"))) return st;
    size_t global = groups * wg, local = wg;
    if ((st = bm_launch(rt, k, "bm_sumsq_part", 1, &global, &local))) return st;

    k = bm_kernel(rt, "bm_sumsq_final");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    err = 0;
    err |= BM_ARG(k, 0, part);
    err |= BM_ARG(k, 1, cg);
    err |= BM_ARG(k, 2, out);
    err |= BM_ARG(k, 3, oi);
    if ((st = bm_args_check(err, "bm_sumsq_final"))) return st;
    global = wg;
    return bm_launch(rt, k, "bm_sumsq_final", 1, &global, &local);
}

int bm_op_sumsq(bm_rt *rt, cl_mem x, size_t offset_floats, size_t n, cl_mem out, size_t out_index)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = sumsq_launch(rt, x, offset_floats, n, out, out_index);
    bm_scratch_release(rt, mark);
    return st;
}

int bm_op_clip_scale(bm_rt *rt, cl_mem buf, size_t sumsq_index, size_t out_index, float max_norm)
{
    const char *fn = "bm_op_clip_scale";
    int st;
    if ((st = check_range(fn, "buf", buf, sumsq_index, 1)) || (st = check_range(fn, "buf", buf, out_index, 2)))
        return st;
    cl_ulong si = sumsq_index, oi = out_index;
    cl_float mn = max_norm;
    cl_int err = 0;
    cl_kernel k = bm_kernel(rt, "bm_clip_scale");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    err |= BM_ARG(k, 0, buf);
    err |= BM_ARG(k, 1, si);
    err |= BM_ARG(k, 2, oi);
    err |= BM_ARG(k, 3, mn);
    if ((st = bm_args_check(err, "bm_clip_scale"))) return st;
    size_t one = 1;
    return bm_launch(rt, k, "bm_clip_scale", 1, &one, &one);
}

int bm_op_adamw(bm_rt *rt, const bm_adamw_args *a, cl_mem param, cl_mem grad, cl_mem m, cl_mem v, cl_mem clip,
                size_t scale_index, size_t offset_floats, size_t n)
{
    const char *fn = "bm_op_adamw";
    if (!a) return bm_fail(BMOJO_EINVAL, "%s: no hyperparameters", fn);
    if (a->t < 1) return bm_fail(BMOJO_EINVAL, "%s: step %lld (Adam counts steps from 1)", fn, (long long)a->t);
    if (!(a->beta1 >= 0 && a->beta1 < 1) || !(a->beta2 >= 0 && a->beta2 < 1))
        return bm_fail(BMOJO_EINVAL, "%s: betas (%g, %g) must be in [0, 1)", fn, a->beta1, a->beta2);
    if (!(a->lr >= 0) || !(a->eps >= 0) || !(a->weight_decay >= 0))
        return bm_fail(BMOJO_EINVAL, "%s: lr %g, eps %g and weight decay %g must be >= 0", fn, a->lr, a->eps,
                       a->weight_decay);
    int st;
    if ((st = check_range(fn, "param", param, offset_floats, n)) || (st = check_range(fn, "grad", grad, offset_floats, n)) ||
        (st = check_range(fn, "m", m, offset_floats, n)) || (st = check_range(fn, "v", v, offset_floats, n)) ||
        (st = check_range(fn, "clip", clip, scale_index, 1)))
        return st;
    if (n == 0) return 0;
    bm_adamw_scalars s;
    bm_adamw_scalars_make(a, &s);
    cl_ulong si = scale_index, co = offset_floats, cn = n;
    cl_int err = 0;
    cl_kernel k = bm_kernel(rt, "bm_adamw_step");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "%s", fn);
    err |= BM_ARG(k, 0, param);
    err |= BM_ARG(k, 1, grad);
    err |= BM_ARG(k, 2, m);
    err |= BM_ARG(k, 3, v);
    err |= BM_ARG(k, 4, clip);
    err |= BM_ARG(k, 5, si);
    err |= BM_ARG(k, 6, co);
    err |= BM_ARG(k, 7, cn);
    err |= BM_ARG(k, 8, s.decay_mul);
    err |= BM_ARG(k, 9, s.w1);
    err |= BM_ARG(k, 10, s.beta2);
    err |= BM_ARG(k, 11, s.omb2);
    err |= BM_ARG(k, 12, s.neg_step);
    err |= BM_ARG(k, 13, s.bc2_sqrt);
    err |= BM_ARG(k, 14, s.eps);
    if ((st = bm_args_check(err, "bm_adamw_step"))) return st;
    size_t local = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (local == 0) local = 1;
    size_t global = n;
    return bm_launch(rt, k, "bm_adamw_step", 1, &global, &local);
}
