/* ref_rmsnorm_backward.c — plain-C reference of bm_op_rmsnorm_backward. For y = x r w with
 * r = (mean(x^2) + eps)^(-1/2): dy/dx gives dx = r w dy - x r^3 / d sum_j (w dy x)_j (the second
 * term from d r / d x_j = -r^3 x_j / d), and dw[j] += sum_rows dy[j] x[j] r. Double sums. */
#include "ref/ref_backward.h"

#include <math.h>
#include <stdlib.h>

void bm_ref_rmsnorm_backward(const float *x, size_t x_ld, size_t x_col, const float *w, const float *dy, size_t dy_ld,
                             size_t dy_col, float beta_dx, float *dx, size_t dx_ld, size_t dx_col, float *dw, int rows,
                             int d, float eps)
{
    double *dwacc = calloc((size_t)(d > 0 ? d : 1), sizeof(double));
    if (!dwacc) abort();
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * x_ld + x_col;
        const float *gr = dy + (size_t)r * dy_ld + dy_col;
        float *outr = dx + (size_t)r * dx_ld + dx_col;
        double ss = 0.0, sd = 0.0;
        for (int j = 0; j < d; j++) {
            ss += (double)xr[j] * xr[j];
            sd += (double)w[j] * gr[j] * xr[j];
        }
        double rs = 1.0 / sqrt(ss / d + (double)eps);
        double c = rs * rs * rs / d * sd;
        /* dw reads dy of the row before dx overwrites it (in place: dx == dy). */
        for (int j = 0; j < d; j++) dwacc[j] += (double)gr[j] * xr[j] * rs;
        for (int j = 0; j < d; j++) {
            double v = rs * w[j] * gr[j] - xr[j] * c;
            outr[j] = (float)(beta_dx != 0.0f ? beta_dx * (double)outr[j] + v : v);
        }
    }
    for (int j = 0; j < d; j++) dw[j] += (float)dwacc[j];
    free(dwacc);
}
