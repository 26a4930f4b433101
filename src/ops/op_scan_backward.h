/* op_scan_backward.h — extra entry point of the selective-scan backward launcher
 * (src/ops/op_scan_backward.c) beyond bm_op_scan_backward in ops_backward.h: the same op with the
 * work-group shape forced, so that tests can exercise channel padding on any device. */
#ifndef BM_OP_SCAN_BACKWARD_H
#define BM_OP_SCAN_BACKWARD_H

#include "ops_backward.h"

/* bm_op_scan_backward with cb channels per work-group (<= 0: the automatic choice). The
 * work-group is cb * n items; BMOJO_EUNSUPPORTED when that or its local memory does not fit the
 * device. */
int bm_op_scan_backward_ex(bm_rt *rt, const bm_scan_bwd_args *a, int cb);

/* The chunk length the kernels were compiled with (BM_SCANB_L in cl/scan_backward.cl), or < 0. */
int bm_scan_backward_chunk_len(bm_rt *rt);

/* The CPU form (cl/scan_backward_cpu.c, src/ops/op_scan_backward_cpu.c): whether it takes these
 * arguments (d_state <= 16), its launches, and its chunk length (BM_SCANBC_L), or < 0. */
int bm_scan_backward_cpu_fits(const bm_scan_bwd_args *a);
int bm_op_scan_backward_cpu(bm_rt *rt, const bm_scan_bwd_args *a);
int bm_scan_backward_cpu_chunk_len(bm_rt *rt);

/* Both forms' last launches: dB, dC summed over nblk channel blocks of pbc [nblk][B*T][2][n]
 * (bm_scan_bwd_dbc, or with cpu bm_scan_bwd_dbc_cpu: the same order, the same bits), and dA, dD,
 * d_dt_bias += the per-sequence partials pp (pA [B][di][n], pD [B][di], pbias [B][di]). */
int bm_scan_backward_sums(bm_rt *rt, const bm_scan_bwd_args *a, cl_mem pbc, int nblk, cl_mem pp, int cpu);

#endif
