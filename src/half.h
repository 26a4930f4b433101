/* half.h — IEEE 754 binary16 ("f16", OpenCL's half) on the host: widening (checkpoints' F16
 * tensors, the tests' references of the f16-weight kernels) and narrowing with round-to-nearest-
 * even, as OpenCL's vstore_half does by default (the loader's f16 weight storage). */
#ifndef BM_HALF_H
#define BM_HALF_H

#include <stdint.h>

/* The largest finite f16; fp32 values of magnitude 65520 and up round to infinity. */
#define BM_HALF_MAX 65504.0f

/* Exact for every input (subnormals, infinities; NaN payload kept in the high mantissa bits). */
float bm_half_to_float(uint16_t h);
/* The nearest f16 (ties to even). A finite f that rounds to infinity sets *overflow (when not
 * NULL) and gives the infinity of its sign; magnitudes below 2^-25 give zero (f16's smallest
 * subnormal is 2^-24), infinities and NaN stay what they are. */
uint16_t bm_half_from_float(float f, int *overflow);

#endif
