/* op_bmojo_innovation.c — launcher of the B'MOJO innovation eps for B*T rows (prefill, and the
 * backward's eidetic sets): bm_bmojo_innovation (cl/bmojo_innovation.cl, a work-group of rt->lim.wg
 * items per row) or, on CPU devices, bm_bmojo_innovation_cpu (cl/bmojo_innovation_cpu.cl, a
 * work-item per 16 rows summing in the GPU form's order over the same size): the same eps bits,
 * which the decoding step's selection must reproduce. */
#include "ops.h"
#include "ops_bmojo.h"

#include "error.h"

#define BM_BMOJO_INNOV_CPU_ROWS 16 /* cl/bmojo_innovation_cpu.cl's default; a -D override is read back */

int bm_bmojo_innovation_launch(bm_rt *rt, cl_mem y, cl_mem y_hist, cl_mem scr, cl_ulong eps_off, int B, int T, int d,
                               int k, const cl_float16 *taps)
{
    const int cpu = bm_form_cpu(rt, rt->bmojo_innov_form);
    const char *name = cpu ? "bm_bmojo_innovation_cpu" : "bm_bmojo_innovation";
    cl_kernel kn = bm_kernel(rt, name);
    if (!kn) return bm_fail_context(BMOJO_EBUILD, "B'MOJO innovation");
    const size_t rows = (size_t)B * (size_t)T;
    cl_int cT = T, cd = d, ck = k, crows = (cl_int)rows;
    cl_int err = BM_ARG(kn, 0, y) | BM_ARG(kn, 1, y_hist) | BM_ARG(kn, 2, scr) | BM_ARG(kn, 3, eps_off) |
                 BM_ARG(kn, 4, cT) | BM_ARG(kn, 5, cd) | BM_ARG(kn, 6, ck) | BM_ARG(kn, 7, *taps);
    if (cpu) err |= BM_ARG(kn, 8, crows);
    int st = bm_args_check(err, name);
    if (st) return st;
    if (cpu) {
        /* rows per work-item as the program was built (BMOJO_CL_DEFINES may set it) */
        const size_t per = (size_t)bm_build_tunable(rt, "BM_BMOJO_INNOV_CPU_ROWS", BM_BMOJO_INNOV_CPU_ROWS);
        size_t g = (rows + per - 1) / per, l = 1;
        return bm_launch(rt, kn, name, 1, &g, &l);
    }
    size_t g[2] = {rt->lim.wg, rows}, l[2] = {rt->lim.wg, 1};
    return bm_launch(rt, kn, name, 2, g, l);
}
