/* ref_optim.c — plain-C reference of the optimizer ops (ops_optim.h). The sum of squares in
 * double; the clip factor and the AdamW step in fp32 with each operation rounded separately, in
 * torch.optim.AdamW's single-tensor order (cl/optim.cl's top comment lists it), from the same fp32
 * scalars as the kernel (bm_adamw_scalars_make). */
#include "ref/ref_optim.h"

#include <math.h>

double bm_ref_sumsq(const float *x, size_t offset, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[offset + i] * x[offset + i];
    return s;
}

void bm_ref_clip_scale(float *buf, size_t sumsq_index, size_t out_index, float max_norm)
{
    float norm = sqrtf(buf[sumsq_index]);
    float scale = 1.0f;
    if (max_norm > 0.0f) scale = fminf(1.0f, max_norm / (norm + 1e-6f));
    buf[out_index] = norm;
    buf[out_index + 1] = scale;
}

void bm_ref_adamw(const bm_adamw_args *a, float *param, const float *grad, float *m, float *v, const float *clip,
                  size_t scale_index, size_t offset, size_t n)
{
    bm_adamw_scalars s;
    bm_adamw_scalars_make(a, &s);
    float scale = clip[scale_index];
    for (size_t k = 0; k < n; k++) {
        size_t i = offset + k;
        float g = grad[i] * scale;
        float p = param[i] * s.decay_mul;             /* decoupled decay first */
        float mv = m[i];
        mv = fabsf(s.w1) < 0.5f ? mv + s.w1 * (g - mv) /* lerp(m, g, 1 - beta1) */
                                : g - (g - mv) * (1.0f - s.w1);
        float vv = v[i] * s.beta2;
        vv = vv + s.omb2 * g * g;
        float d = sqrtf(vv) / s.bc2_sqrt + s.eps;
        p = p + s.neg_step * (mv / d);
        param[i] = p;
        m[i] = mv;
        v[i] = vv;
    }
}
