/* ref_elementwise.c — plain-C references of the elementwise ops: add, bias_add and SwiGLU
 * (copy needs no reference: the test compares with the source). */
#include "ref/ref.h"

#include <math.h>

void bm_ref_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void bm_ref_bias_add(float *x, size_t ld, const float *bias, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) x[(size_t)r * ld + (size_t)j] += bias[j];
}

void bm_ref_swiglu(const float *g, size_t ld_in, size_t g_col, size_t u_col, float *out, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        const float *row = g + (size_t)r * ld_in;
        for (int j = 0; j < cols; j++) {
            float a = row[g_col + (size_t)j];
            float silu = a / (1.0f + expf(-a));
            out[(size_t)r * (size_t)cols + (size_t)j] = silu * row[u_col + (size_t)j];
        }
    }
}
