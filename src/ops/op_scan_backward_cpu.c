/* op_scan_backward_cpu.c — launcher of the selective-scan backward's CPU form
 * (cl/scan_backward_cpu.cl: bm_scan_bwd_cpu, one work-item per 16 channels of a sequence, the
 * whole sequence each), then the sums both forms share (bm_scan_backward_sums, with the CPU kernel
 * of the dB/dC sum, bm_scan_bwd_dbc_cpu). Taken by
 * bm_op_scan_backward on CPU devices for d_state <= 16 (src/ops/op_scan_backward.c decides).
 * Scratch: the checkpoints [B][nblk][nc-1][n][16], dB|dC per channel block [nblk][B*T][2][n] and
 * the per-sequence weight-gradient partials (pA [B][di][n], pD, pbias [B][di]). */
#include <stdint.h>

#include "error.h"
#include "ops/op_scan_backward.h"

#define BM_SCANBC_NS 16 /* mirrors BM_SCANC_NS (cl/scan_cpu.cl): the most states the kernel keeps */

int bm_scan_backward_cpu_fits(const bm_scan_bwd_args *a) { return a->n >= 1 && a->n <= BM_SCANBC_NS; }

int bm_scan_backward_cpu_chunk_len(bm_rt *rt)
{
    cl_kernel k = bm_kernel(rt, "bm_scan_bwd_cpu_config");
    if (!k) return -1;
    size_t wg[3] = {0, 0, 0};
    cl_int err = clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof wg, wg, NULL);
    if (err != CL_SUCCESS || wg[0] == 0) return -1;
    return (int)wg[0];
}

static int scanbc_launch(bm_rt *rt, const bm_scan_bwd_args *a)
{
    const int B = a->B, T = a->T, di = a->di, n = a->n;
    const int L = bm_scan_backward_cpu_chunk_len(rt);
    if (L < 1) return bm_fail_context(BMOJO_EBUILD, "scan backward (CPU kernel): chunk length");
    const char *name = "bm_scan_bwd_cpu";
    cl_kernel k = bm_kernel(rt, name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "scan backward (CPU kernel)");
    const size_t nblk = ((size_t)di + 15) / 16, BT = (size_t)B * (size_t)T;
    const size_t nc = ((size_t)T + (size_t)L - 1) / (size_t)L;
    cl_mem ckpt, pbc, pp;
    int st;
    if ((st = bm_scratch_take(rt, (size_t)B * nblk * (nc > 1 ? nc - 1 : 1) * (size_t)n * 16 * sizeof(float), &ckpt)))
        return st;
    if ((st = bm_scratch_take(rt, nblk * BT * 2 * (size_t)n * sizeof(float), &pbc))) return st;
    if ((st = bm_scratch_take(rt, ((size_t)B * di * n + 2 * (size_t)B * di) * sizeof(float), &pp))) return st;
    cl_int Ti = T, dii = di, ni = n;
    cl_uint dt_ld = (cl_uint)a->dt_ld, bc_ld = (cl_uint)a->bc_ld, b_col = (cl_uint)a->b_col, c_col = (cl_uint)a->c_col;
    cl_uint z_ld = (cl_uint)a->z_ld, z_col = (cl_uint)a->z_col, dz_ld = (cl_uint)a->dz_ld;
    cl_int err = BM_ARG(k, 0, Ti) | BM_ARG(k, 1, dii) | BM_ARG(k, 2, ni) | BM_ARG(k, 3, a->u) | BM_ARG(k, 4, a->dt) |
                 BM_ARG(k, 5, dt_ld) | BM_ARG(k, 6, a->dt_bias) | BM_ARG(k, 7, a->A) | BM_ARG(k, 8, a->bc) |
                 BM_ARG(k, 9, bc_ld) | BM_ARG(k, 10, b_col) | BM_ARG(k, 11, c_col) | BM_ARG(k, 12, a->D) |
                 BM_ARG(k, 13, a->z) | BM_ARG(k, 14, z_ld) | BM_ARG(k, 15, z_col) | BM_ARG(k, 16, a->dy) |
                 BM_ARG(k, 17, a->du) | BM_ARG(k, 18, a->ddt) | BM_ARG(k, 19, a->dz) | BM_ARG(k, 20, dz_ld) |
                 BM_ARG(k, 21, ckpt) | BM_ARG(k, 22, pbc) | BM_ARG(k, 23, pp);
    if ((st = bm_args_check(err, name))) return st;
    size_t g[2] = {nblk, (size_t)B}, l[2] = {1, 1};
    if ((st = bm_launch(rt, k, name, 2, g, l))) return st;
    return bm_scan_backward_sums(rt, a, pbc, (int)nblk, pp, 1);
}

int bm_op_scan_backward_cpu(bm_rt *rt, const bm_scan_bwd_args *a)
{
    if (!bm_scan_backward_cpu_fits(a))
        return bm_fail(BMOJO_EUNSUPPORTED, "scan backward (CPU kernel): d_state %d is over %d", a->n, BM_SCANBC_NS);
    if (a->B == 0 || a->T == 0 || a->di == 0) return 0;
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = scanbc_launch(rt, a);
    bm_scratch_release(rt, mark);
    return st;
}
