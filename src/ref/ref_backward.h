/* ref_backward.h — plain-C references of the backward launchers in ops_backward.h, with the same
 * arguments on host arrays (no cl_mem; the *_args structs have host-array twins here). fp32 in
 * and out, double accumulation; written for clarity, not speed. tests/ops/test_*_backward.c check
 * every kernel against them and them against central finite differences of the forward in
 * double. */
#ifndef BM_REF_BACKWARD_H
#define BM_REF_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

/* ---- GEMM with transposed operands ---- */

/* ---- embedding ---- */

/* ---- RMSNorm ---- */

/* ---- elementwise ---- */

/* ---- cross-entropy ---- */

/* ---- conv1d ---- */

/* ---- RoPE ---- */

/* ---- selective scan ---- */
/* bm_op_scan_backward on host arrays (fields as in bm_scan_bwd_args). The forward is rerun in
 * double storing every h, then the reverse recursion; dB/dC sums over channels in double. */
typedef struct {
    int B, T, di, n;
    const float *u;
    const float *dt; size_t dt_ld;
    const float *dt_bias, *A;
    const float *bc; size_t bc_ld, b_col, c_col;
    const float *D;
    const float *z; size_t z_ld, z_col;
    const float *dy;
    float *du, *ddt;
    float *dbc; size_t dbc_ld;
    float *dz; size_t dz_ld;
    float *dA, *dD, *d_dt_bias;
} bm_ref_scan_bwd_args;
void bm_ref_scan_backward(const bm_ref_scan_bwd_args *a);

/* ---- attention ---- */

/* ---- B'MOJO attention ---- */

#endif
