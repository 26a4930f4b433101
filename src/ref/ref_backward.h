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
/* bm_op_conv1d_backward on host arrays (twin of bm_conv_bwd_args): from a zero state, writes dx
 * columns 0..di-1 of [B*T, dx_ld], accumulates dw [di, k] and dbias [di] (dbias may be NULL;
 * bias may be NULL for a forward without bias). */
typedef struct {
    int B, T, di, k;
    const float *x; size_t x_ld;
    const float *w, *bias;
    const float *du;
    float *dx; size_t dx_ld;
    float *dw, *dbias;
} bm_ref_conv_bwd_args;
void bm_ref_conv1d_backward(const bm_ref_conv_bwd_args *a);

/* ---- RoPE ---- */
/* bm_op_rope_backward: the transpose of bm_ref_rope (rotation by -angle, the same float32
 * angle), in place on the same view. */
void bm_ref_rope_backward(float *x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, float theta);

/* ---- selective scan ---- */

/* ---- attention ---- */

/* ---- B'MOJO attention ---- */

#endif
