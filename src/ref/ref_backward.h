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

#endif
