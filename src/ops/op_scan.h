/* op_scan.h — extra entry points of the selective-scan launcher (src/ops/op_scan.c) beyond
 * bm_op_scan in ops.h: the chunk length it would pick, a variant with a forced chunk length, and
 * the one-pass lanes kernel, so that tests (and benchmarks) can exercise each path on any device. */
#ifndef BM_OP_SCAN_H
#define BM_OP_SCAN_H

#include "ops.h"

/* The time-chunk length bm_op_scan uses for these sizes on this device (T means one pass). */
int bm_scan_chunk_len(const bm_rt *rt, int B, int di, int T);

/* Sets arguments 0..17 of a kernel that starts with bm_scan_step's parameters (the step itself,
 * or a fused launch that appends its own after them) for the decoding step of a (T = 1, dt_proj
 * given; the caller has checked the arguments), and gives its launch shape. */
int bm_scan_step_setup(bm_rt *rt, cl_kernel k, const bm_scan_args *a, size_t global[2], size_t local[2]);
/* Arguments 0..16 of a kernel with bm_scan_step's parameters (bm_scan_step_setup's first part;
 * also bm_scan_step_cpu's whole list); the OR of the clSetKernelArg results. */
cl_int bm_scan_step_args(cl_kernel k, const bm_scan_args *a);

/* bm_op_scan with chunk length L (L <= 0: the automatic choice; L >= T: single pass). */
int bm_op_scan_chunked(bm_rt *rt, const bm_scan_args *a, int L);

/* The one-pass lanes kernel (cl/scan_lanes.cl) whatever rt->scan_variant says: BMOJO_EUNSUPPORTED
 * when d_state does not fit a work-group of this device. Same contract as bm_op_scan (no dt_proj). */
int bm_op_scan_lanes(bm_rt *rt, const bm_scan_args *a);

/* The CPU kernel (cl/scan_cpu.cl: 16 channels per work-item as float16 lanes) whatever the device:
 * whether it takes these arguments (d_state <= 16), and the op with it (BMOJO_EUNSUPPORTED when it
 * does not fit). Same contract as bm_op_scan (no dt_proj). */
int bm_scan_cpu_fits(const bm_scan_args *a);
int bm_op_scan_cpu(bm_rt *rt, const bm_scan_args *a);
/* The decoding step of the CPU kernels (bm_scan_step_cpu): T 1 with dt_proj, d_state <= 16. */
int bm_op_scan_step_cpu(bm_rt *rt, const bm_scan_args *a);

#endif
