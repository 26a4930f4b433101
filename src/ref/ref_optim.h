/* ref_optim.h — plain-C references of the optimizer launchers in ops_optim.h, with the same
 * arguments on host arrays. tests/ops/test_optim.c checks the kernels against them. */
#ifndef BM_REF_OPTIM_H
#define BM_REF_OPTIM_H

#include <stddef.h>

#include "optim_args.h"

/* sum of x[offset + i]^2, i < n, accumulated in double (the kernel's fp32 result is checked
 * against it). */
double bm_ref_sumsq(const float *x, size_t offset, size_t n);
/* bm_op_clip_scale in fp32: buf[out] = sqrt(buf[sumsq]), buf[out + 1] = min(1, max_norm / (norm +
 * 1e-6)), 1 when max_norm <= 0. */
void bm_ref_clip_scale(float *buf, size_t sumsq_index, size_t out_index, float max_norm);
/* bm_op_adamw in fp32, operation for operation (cl/optim.cl lists them). */
void bm_ref_adamw(const bm_adamw_args *a, float *param, const float *grad, float *m, float *v, const float *clip,
                  size_t scale_index, size_t offset, size_t n);

#endif
