/* ref_rope_backward.c — plain-C reference of bm_op_rope_backward: the transpose of RoPE's
 * rotation (by -angle), with the same float32 angle as bm_ref_rope and cos / sin and the
 * rotation in double. Rotations are orthogonal, so the transpose is the inverse. */
#include <math.h>

#include "ref/ref_backward.h"

void bm_ref_rope_backward(float *x, size_t ld, size_t col, int B, int T, int nh, int dh, int64_t pos0, float theta)
{
    const int nhalf = dh / 2;
    for (int i = 0; i < nhalf; i++) {
        /* inv_freq and the angle exactly as bm_ref_rope (HF's float32 formulation) */
        const float e = (float)(2 * i) / (float)dh;
        const float pw = (float)pow((double)theta, (double)e);
        const float inv = 1.0f / pw;
        for (int r = 0; r < B * T; r++) {
            const int64_t pos = pos0 + r % T;
            const float ang = (float)pos * inv;
            const double c = cos((double)ang), s = sin((double)ang);
            for (int h = 0; h < nh; h++) {
                float *xp = x + (size_t)r * ld + col + (size_t)h * dh + i;
                const double x1 = xp[0], x2 = xp[nhalf];
                xp[0] = (float)(x1 * c + x2 * s);
                xp[nhalf] = (float)(x2 * c - x1 * s);
            }
        }
    }
}
