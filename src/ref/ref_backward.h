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

/* ---- attention ---- */
/* Host twin of bm_attn_bwd_args (bm_op_attention_backward): the same views on host arrays. */
typedef struct {
    int B, T, H, Hkv, dh;
    int window;
    float scale;
    const float *q; size_t q_ld, q_col;
    const float *k, *v; size_t kv_ld, k_col, v_col;
    const float *o, *dout; size_t o_ld;
    float *dq; size_t dq_ld, dq_col;
    float *dk, *dv; size_t dkv_ld, dk_col, dv_col;
} bm_ref_attn_bwd_args;
/* Writes dq, dk, dv (only the views' columns); the softmax recomputed in double. */
void bm_ref_attention_backward(const bm_ref_attn_bwd_args *a);

/* ---- B'MOJO attention ---- */

#endif
