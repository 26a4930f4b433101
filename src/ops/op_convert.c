/* op_convert.c — launchers of the fp32 <-> half conversions of device buffers (cl/convert.cl),
 * used when a weight computed on the device at load time must be stored as f16. */
#include "ops.h"

#include "error.h"

/* One work-item per element, groups of BM_WG (within the device's limits). */
static int convert_launch(bm_rt *rt, cl_kernel k, const char *name, size_t n)
{
    size_t wg = rt->lim.wg < rt->lim.max_wg ? rt->lim.wg : rt->lim.max_wg;
    if (rt->lim.max_wi[0] && wg > rt->lim.max_wi[0]) wg = rt->lim.max_wi[0];
    if (wg == 0) wg = 1;
    size_t global = n, local = wg;
    return bm_launch(rt, k, name, 1, &global, &local);
}

int bm_op_f16_widen(bm_rt *rt, cl_mem src, size_t src_off, cl_mem dst, size_t n)
{
    if (n == 0) return 0;
    if (!rt || !src || !dst) return bm_fail(BMOJO_EINVAL, "bm_op_f16_widen: NULL argument");
    cl_kernel k = bm_kernel(rt, "bm_f16_widen");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_f16_widen");
    cl_ulong so = src_off, cn = n;
    cl_int err = BM_ARG(k, 0, src) | BM_ARG(k, 1, so) | BM_ARG(k, 2, dst) | BM_ARG(k, 3, cn);
    int st = bm_args_check(err, "bm_f16_widen");
    return st ? st : convert_launch(rt, k, "bm_f16_widen", n);
}

int bm_op_f16_narrow(bm_rt *rt, cl_mem src, size_t src_off, cl_mem dst, size_t n, const char *what)
{
    if (n == 0) return 0;
    if (!rt || !src || !dst) return bm_fail(BMOJO_EINVAL, "bm_op_f16_narrow: NULL argument");
    cl_kernel k = bm_kernel(rt, "bm_f16_narrow");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bm_op_f16_narrow");
    cl_mem flag = NULL;
    int st = bm_alloc(rt, sizeof(cl_int), &flag); /* zero-filled */
    if (st) return st;
    cl_ulong so = src_off, cn = n;
    cl_int err = BM_ARG(k, 0, src) | BM_ARG(k, 1, so) | BM_ARG(k, 2, dst) | BM_ARG(k, 3, cn) | BM_ARG(k, 4, flag);
    st = bm_args_check(err, "bm_f16_narrow");
    if (!st) st = convert_launch(rt, k, "bm_f16_narrow", n);
    cl_int overflow = 0;
    if (!st) st = bm_download(rt, flag, 0, &overflow, sizeof overflow);
    bm_release(flag);
    if (!st && overflow)
        st = bm_fail(BMOJO_ETENSOR, "%s holds a value beyond f16's largest finite value 65504, so it cannot be stored "
                                    "as f16 (load with f32 weight storage: --weights f32)",
                     what ? what : "a buffer");
    return st;
}
