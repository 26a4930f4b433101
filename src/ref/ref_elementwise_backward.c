/* ref_elementwise_backward.c — plain-C references of the elementwise gradients: SwiGLU
 * (d silu(g) / dg = s (1 + g (1 - s)), s = sigmoid(g)), column sums, A = -exp(A_log) and
 * dA_log = dA * A. */
#include "ref/ref_backward.h"

#include <math.h>
#include <stdlib.h>

void bm_ref_swiglu_backward(const float *gu, size_t ld, size_t g_col, size_t u_col, const float *dout, float *dgu,
                            int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            size_t row = (size_t)r * ld;
            double g = gu[row + g_col + (size_t)j], u = gu[row + u_col + (size_t)j];
            double go = dout[(size_t)r * (size_t)cols + (size_t)j];
            double s = 1.0 / (1.0 + exp(-g));
            dgu[row + g_col + (size_t)j] = (float)(go * u * s * (1.0 + g * (1.0 - s)));
            dgu[row + u_col + (size_t)j] = (float)(go * g * s);
        }
}

void bm_ref_colsum(const float *dy, size_t ld, size_t col, int rows, int cols, float *dbias)
{
    for (int j = 0; j < cols; j++) {
        double acc = 0.0;
        for (int r = 0; r < rows; r++) acc += dy[(size_t)r * ld + col + (size_t)j];
        dbias[j] += (float)acc;
    }
}

void bm_ref_neg_exp(const float *a_log, float *a, size_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = (float)-exp((double)a_log[i]);
}

void bm_ref_neg_exp_backward(const float *a, const float *d_a, float *d_a_log, size_t n)
{
    for (size_t i = 0; i < n; i++) d_a_log[i] = (float)((double)d_a_log[i] + (double)d_a[i] * a[i]);
}
