/* op_scan_cpu.c — launchers of the CPU selective scan (cl/scan_cpu.cl): bm_scan_cpu, one work-item
 * per 16 channels of a sequence, the whole sequence each; bm_scan_step_cpu, the decoding step with
 * dt_proj fused, one work-item per 64 channels. bm_op_scan uses them on CPU devices for d_state
 * <= BM_SCANC_NS (16); src/ops/op_scan.c decides. */
#include <stdint.h>

#include "error.h"
#include "ops/op_scan.h"

#define BM_SCANC_NS 16 /* mirrors cl/scan_cpu.cl: the most states the kernel keeps */

int bm_scan_cpu_fits(const bm_scan_args *a) { return a->n >= 1 && a->n <= BM_SCANC_NS; }

#define BM_SCANC_STEP_CH 64 /* mirrors cl/scan_cpu.cl: channels per work-item of the step */

int bm_op_scan_step_cpu(bm_rt *rt, const bm_scan_args *a)
{
    if (!bm_scan_cpu_fits(a) || a->T != 1 || !a->dt_proj)
        return bm_fail(BMOJO_EUNSUPPORTED, "scan step (CPU kernel): needs T 1, dt_proj and d_state <= %d (T %d, d_state %d)",
                       BM_SCANC_NS, a->T, a->n);
    if (a->B == 0 || a->di == 0) return 0;
    const char *name = "bm_scan_step_cpu";
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "scan step (CPU kernel)");
    int st = bm_args_check(bm_scan_step_args(k, a), name);
    size_t g[2] = {((size_t)a->di + BM_SCANC_STEP_CH - 1) / BM_SCANC_STEP_CH, (size_t)a->B}, l[2] = {1, 1};
    if (!st) st = bm_launch(rt, k, name, 2, g, l);
    return st;
}

int bm_op_scan_cpu(bm_rt *rt, const bm_scan_args *a)
{
    if (!bm_scan_cpu_fits(a))
        return bm_fail(BMOJO_EUNSUPPORTED, "scan (CPU kernel): d_state %d is over %d", a->n, BM_SCANC_NS);
    if (a->B == 0 || a->T == 0 || a->di == 0) return 0;
    const char *name = "bm_scan_cpu";
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "scan (CPU kernel)");
    cl_int T = a->T, di = a->di, n = a->n;
    cl_uint dt_ld = (cl_uint)a->dt_ld, bc_ld = (cl_uint)a->bc_ld, b_col = (cl_uint)a->b_col, c_col = (cl_uint)a->c_col;
    cl_uint z_ld = (cl_uint)a->z_ld, z_col = (cl_uint)a->z_col;
    cl_int err = BM_ARG(k, 0, T) | BM_ARG(k, 1, di) | BM_ARG(k, 2, n) | BM_ARG(k, 3, a->u) | BM_ARG(k, 4, a->dt) |
                 BM_ARG(k, 5, dt_ld) | BM_ARG(k, 6, a->dt_bias) | BM_ARG(k, 7, a->A) | BM_ARG(k, 8, a->bc) |
                 BM_ARG(k, 9, bc_ld) | BM_ARG(k, 10, b_col) | BM_ARG(k, 11, c_col) | BM_ARG(k, 12, a->D) |
                 BM_ARG(k, 13, a->z) | BM_ARG(k, 14, z_ld) | BM_ARG(k, 15, z_col) | BM_ARG(k, 16, a->state) |
                 BM_ARG(k, 17, a->y);
    int st = bm_args_check(err, name);
    size_t g[2] = {((size_t)a->di + 15) / 16, (size_t)a->B}, l[2] = {1, 1};
    if (!st) st = bm_launch(rt, k, name, 2, g, l);
    return st;
}
