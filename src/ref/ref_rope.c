/* ref_rope.c — plain-C reference of RoPE (HF rotate-half convention), evaluated in double
 * precision on HF's float32 angle.
 *
 * HF transformers computes inv_freq = 1 / theta^(2i/dh) in float32 and the angle as the float32
 * product pos * inv_freq (also for float64 models), then cos/sin of that angle. The reference
 * follows it: exponent (float)(2i) / dh in float, theta^e in double rounded to float (what a
 * correctly rounded float pow gives), the reciprocal and the product in float; then cos, sin
 * and the rotation in double. The float32 angle is off the real angle by up to pos * 2^-24 rad
 * (1.8e-3 at pos 30000); that is the model's definition we match, not an error of the kernel. */
#include <math.h>

#include "ref/ref.h"

void bm_ref_rope(float *x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, float theta)
{
    const int nhalf = dh / 2;
    for (int i = 0; i < nhalf; i++) {
        const float e = (float)(2 * i) / (float)dh;
        const float pw = (float)pow((double)theta, (double)e);
        const float inv = 1.0f / pw;
        for (int r = 0; r < B * T; r++) {
            const int64_t pos = pos0 + r % T;
            const float a = (float)pos * inv; /* one float32 rounding, as in HF */
            const double c = cos((double)a), s = sin((double)a);
            for (int h = 0; h < nh; h++) {
                float *xp = x + (size_t)r * ld + col + (size_t)h * dh + i;
                const double x1 = xp[0], x2 = xp[nhalf];
                xp[0] = (float)(x1 * c - x2 * s);
                xp[nhalf] = (float)(x2 * c + x1 * s);
            }
        }
    }
}
