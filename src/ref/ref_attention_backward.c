/* ref_attention_backward.c — plain-C reference of the causal GQA attention backward
 * (bm_op_attention_backward): per query row the textbook softmax in double (separate max pass),
 * P, dP = dout . v, D = dout . o (o as given: the forward's fp32 output), dS = P (dP - D), then
 * dq = scale sum dS k written per row, and dk += scale dS q, dv += P dout accumulated in double
 * over all rows of the group before being written. */
#include <math.h>
#include <stdlib.h>

#include "ref/ref_backward.h"

void bm_ref_attention_backward(const bm_ref_attn_bwd_args *a)
{
    const int B = a->B, T = a->T, H = a->H, Hkv = a->Hkv, dh = a->dh, G = H / Hkv;
    const size_t nkv = (size_t)B * T * Hkv * dh;
    double *s = malloc(sizeof(double) * (size_t)(T > 0 ? T : 1));
    double *ds = malloc(sizeof(double) * (size_t)(T > 0 ? T : 1));
    double *dq = malloc(sizeof(double) * (size_t)(dh > 0 ? dh : 1));
    double *dk = calloc(nkv ? nkv : 1, sizeof(double)), *dv = calloc(nkv ? nkv : 1, sizeof(double));
    if (!s || !ds || !dq || !dk || !dv) { /* test-only; leave the outputs untouched on OOM */
        free(s);
        free(ds);
        free(dq);
        free(dk);
        free(dv);
        return;
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const int g = h / G;
                const int lo = a->window > 0 && t - a->window + 1 > 0 ? t - a->window + 1 : 0;
                const size_t tok = (size_t)b * T + t;
                const float *qr = a->q + tok * a->q_ld + a->q_col + (size_t)h * dh;
                const float *orow = a->o + tok * a->o_ld + (size_t)h * dh;
                const float *dor = a->dout + tok * a->o_ld + (size_t)h * dh;
                double m = -INFINITY;
                for (int p = lo; p <= t; p++) {
                    const float *kr = a->k + ((size_t)b * T + p) * a->kv_ld + a->k_col + (size_t)g * dh;
                    double dot = 0;
                    for (int d = 0; d < dh; d++) dot += (double)qr[d] * kr[d];
                    s[p - lo] = dot * a->scale;
                    if (s[p - lo] > m) m = s[p - lo];
                }
                double sum = 0;
                for (int p = lo; p <= t; p++) {
                    s[p - lo] = exp(s[p - lo] - m);
                    sum += s[p - lo];
                }
                double D = 0;
                for (int d = 0; d < dh; d++) D += (double)dor[d] * orow[d];
                for (int d = 0; d < dh; d++) dq[d] = 0;
                for (int p = lo; p <= t; p++) {
                    const size_t krow = ((size_t)b * T + p) * a->kv_ld + (size_t)g * dh;
                    const float *kr = a->k + krow + a->k_col, *vr = a->v + krow + a->v_col;
                    const double P = s[p - lo] / sum;
                    double dP = 0;
                    for (int d = 0; d < dh; d++) dP += (double)dor[d] * vr[d];
                    ds[p - lo] = P * (dP - D);
                    double *dkr = dk + (((size_t)b * T + p) * Hkv + g) * dh;
                    double *dvr = dv + (((size_t)b * T + p) * Hkv + g) * dh;
                    for (int d = 0; d < dh; d++) {
                        dq[d] += ds[p - lo] * kr[d];
                        dkr[d] += a->scale * ds[p - lo] * qr[d];
                        dvr[d] += P * dor[d];
                    }
                }
                float *dqr = a->dq + tok * a->dq_ld + a->dq_col + (size_t)h * dh;
                for (int d = 0; d < dh; d++) dqr[d] = (float)(a->scale * dq[d]);
            }
    for (size_t r = 0; r < (size_t)B * T; r++)
        for (int g = 0; g < Hkv; g++)
            for (int d = 0; d < dh; d++) {
                const size_t src = (r * Hkv + g) * dh + d, dst = r * a->dkv_ld + (size_t)g * dh + d;
                a->dk[dst + a->dk_col] = (float)dk[src];
                a->dv[dst + a->dv_col] = (float)dv[src];
            }
    free(s);
    free(ds);
    free(dq);
    free(dk);
    free(dv);
}
