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

#endif
