/* ref_conv1d_backward.c — plain-C reference of bm_op_conv1d_backward: gradients of the causal
 * depthwise conv1d + SiLU from a zero state, in double (fp32 in and out). */
#include <math.h>
#include <stdlib.h>

#include "ref/ref_backward.h"

void bm_ref_conv1d_backward(const bm_ref_conv_bwd_args *a)
{
    const int T = a->T, di = a->di, k = a->k, km1 = a->k - 1;
    if (a->B <= 0 || T <= 0 || di <= 0 || k < 1) return;
    double *dpre = malloc((size_t)T * sizeof(double));
    double *dw = malloc((size_t)k * sizeof(double));
    if (!dpre || !dw) abort();
    for (int c = 0; c < di; c++) {
        const float *wc = a->w + (size_t)c * (size_t)k;
        double db = 0.0;
        for (int i = 0; i < k; i++) dw[i] = 0.0;
        for (int b = 0; b < a->B; b++) {
            const size_t r0 = (size_t)b * (size_t)T; /* first row of sequence b */
            /* channel c's input at time t of this sequence; zero before 0 (the empty state) */
#define XIN(t) ((t) >= 0 ? (double)a->x[(r0 + (size_t)(t)) * a->x_ld + (size_t)c] : 0.0)
            for (int t = 0; t < T; t++) {
                double pre = a->bias ? (double)a->bias[c] : 0.0;
                for (int i = 0; i < k; i++) pre += (double)wc[i] * XIN(t - km1 + i);
                const double s = 1.0 / (1.0 + exp(-pre));
                dpre[t] = (double)a->du[(r0 + (size_t)t) * (size_t)di + (size_t)c] * s * (1.0 + pre * (1.0 - s));
                db += dpre[t];
                /* pre[t] read x[t - (k-1) + i] through w[c, i] */
                for (int i = 0; i < k; i++) dw[i] += dpre[t] * XIN(t - km1 + i);
            }
#undef XIN
            /* x[t] fed pre[t + (k-1) - i] through w[c, i], for the steps of this sequence */
            for (int t = 0; t < T; t++) {
                double acc = 0.0;
                for (int i = 0; i < k; i++)
                    if (t + km1 - i < T) acc += (double)wc[i] * dpre[t + km1 - i];
                a->dx[(r0 + (size_t)t) * a->dx_ld + (size_t)c] = (float)acc;
            }
        }
        for (int i = 0; i < k; i++) a->dw[(size_t)c * (size_t)k + (size_t)i] += (float)dw[i];
        if (a->dbias) a->dbias[c] += (float)db;
    }
    free(dpre);
    free(dw);
}
