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

/* ---- B'MOJO attention ---- */
/* The host twin of bm_bmojo_bwd_args (same meaning, same layouts; sets: written by
 * bm_ref_bmojo_sets, read by bm_ref_bmojo_attention_backward). */
typedef struct {
    int B, T, d, H, Hkv, dh;
    int window, m_f, m_e;
    int n_taps; const float *taps;
    float scale;
    const float *y;
    int32_t *sets;
    const float *q; size_t q_ld, q_col;
    const float *kx, *vx; size_t x_ld, kx_col, vx_col;
    const float *kf, *vf; size_t f_ld, kf_col, vf_col;
    const float *o, *dout; size_t o_ld;
    float *dq; size_t dq_ld, dq_col;
    float *dkx, *dvx; size_t dx_ld, dkx_col, dvx_col;
    float *dkf, *dvf; size_t df_ld, dkf_col, dvf_col;
} bm_ref_bmojo_bwd_args;
/* E(s) of every chunk by a plain top-m_e scan over eps (bm_ref_bmojo_eps), as bm_ref_bmojo_direct. */
void bm_ref_bmojo_sets(const bm_ref_bmojo_bwd_args *a);
/* dq, dkx, dvx, dkf, dvf (written, view columns only) with the sets held constant. */
void bm_ref_bmojo_attention_backward(const bm_ref_bmojo_bwd_args *a);

#endif
