/* ref_rmsnorm.c — plain-C reference of bm_op_rmsnorm: out = x * rsqrt(mean(x^2) + eps) * w per
 * row, with strided rows and column offsets; in place (out == x, same ld/col) is allowed. */
#include "ref/ref.h"

#include <math.h>

void bm_ref_rmsnorm(const float *x, size_t x_ld, size_t x_col, const float *w,
                    float *out, size_t out_ld, size_t out_col, int rows, int d, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * x_ld + x_col;
        float *yr = out + (size_t)r * out_ld + out_col;
        /* Double accumulation so the reference is the more accurate side of any comparison. */
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)xr[j] * (double)xr[j];
        float scale = (float)(1.0 / sqrt(ss / (double)d + (double)eps));
        /* Each element is read before it is written, so the in-place case is safe. */
        for (int j = 0; j < d; j++) yr[j] = xr[j] * scale * w[j];
    }
}
