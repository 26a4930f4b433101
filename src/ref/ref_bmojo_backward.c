/* ref_bmojo_backward.c — plain-C references of the B'MOJO attention's backward (ref_backward.h,
 * ops_backward.h): the eidetic sets of whole sequences from position 0 by repeated scans (the
 * definition, as bm_ref_bmojo_direct selects), and the gradients of the attention over
 * [fading | eidetic | window] with the sets constant, query by query: the softmax recomputed in
 * double, then dq and the key/value gradients accumulated per position in double. */
#include "ref/ref_backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_bmojo.h"

void bm_ref_bmojo_sets(const bm_ref_bmojo_bwd_args *a)
{
    const int B = a->B, T = a->T, d = a->d, k = a->n_taps, w = a->window, me = a->m_e;
    const int mec = me > 0 ? me : 1, NC = (T + w - 1) / w;
    float *eps = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
    char *taken = malloc((size_t)(T > 0 ? T : 1));
    const float **prev = malloc(sizeof(float *) * (size_t)k);
    if (!eps || !taken || !prev) goto done;
    for (int b = 0; b < B; b++) {
        const size_t r0 = (size_t)b * T;
        for (int t = 0; t < T; t++) {
            for (int i = 1; i <= k; i++) prev[i - 1] = t - i >= 0 ? a->y + (r0 + t - i) * d : NULL;
            eps[t] = bm_ref_bmojo_eps(a->y + (r0 + t) * d, prev, a->taps, k, d);
        }
        for (int c = 0; c < NC; c++) {
            const int s = c * w, nE = s < me ? s : me;
            int32_t *set = a->sets + ((size_t)b * NC + c) * mec;
            memset(taken, 0, (size_t)T);
            for (int e = 0; e < mec; e++) set[e] = -1;
            for (int e = 0; e < nE; e++) {
                int best = -1; /* ascending j, strict '>': the smaller position wins ties */
                for (int j = 0; j < s; j++)
                    if (!taken[j] && (best < 0 || eps[j] > eps[best])) best = j;
                taken[best] = 1;
                set[e] = best;
            }
        }
    }
done:
    free(eps);
    free(taken);
    free(prev);
}

/* One key of a query's list: a row of Kx/Vx (fade 0) or Kf/Vf (fade 1) at position p. */
typedef struct {
    int p, fade;
} ref_key;

void bm_ref_bmojo_attention_backward(const bm_ref_bmojo_bwd_args *a)
{
    const int B = a->B, T = a->T, H = a->H, Hkv = a->Hkv, dh = a->dh, w = a->window, mf = a->m_f, me = a->m_e;
    const int rep = H / Hkv, mec = me > 0 ? me : 1, NC = (T + w - 1) / w;
    const size_t rows = (size_t)B * T, kv = (size_t)Hkv * dh;
    const int nmax = mf + me + w;
    ref_key *keys = malloc(sizeof(ref_key) * (size_t)nmax);
    double *P = malloc(sizeof(double) * (size_t)nmax), *dq = malloc(sizeof(double) * (size_t)dh);
    /* per-position gradients [B*T, Hkv*dh] of the x rows and the f rows */
    double *gkx = calloc(rows * kv + 1, sizeof(double)), *gvx = calloc(rows * kv + 1, sizeof(double));
    double *gkf = calloc(rows * kv + 1, sizeof(double)), *gvf = calloc(rows * kv + 1, sizeof(double));
    if (!keys || !P || !dq || !gkx || !gvx || !gkf || !gvf) goto done;

    for (int b = 0; b < B; b++) {
        const size_t r0 = (size_t)b * T;
        for (int t = 0; t < T; t++) {
            const int c = t / w, s = c * w;
            const int32_t *set = a->sets + ((size_t)b * NC + c) * mec;
            int n = 0;
            for (int p = s - mf < 0 ? 0 : s - mf; p < s; p++) keys[n++] = (ref_key){p, 1};
            for (int e = 0; e < me && e < s; e++)
                if (set[e] >= 0 && set[e] < s) keys[n++] = (ref_key){set[e], 0};
            for (int p = t - w + 1 < 0 ? 0 : t - w + 1; p <= t; p++) keys[n++] = (ref_key){p, 0};
            const size_t r = r0 + t;
            for (int h = 0; h < H; h++) {
                const size_t go = (size_t)(h / rep) * dh;
                const float *q = a->q + r * a->q_ld + a->q_col + (size_t)h * dh;
                const float *o = a->o + r * a->o_ld + (size_t)h * dh;
                const float *dO = a->dout + r * a->o_ld + (size_t)h * dh;
                double mx = -INFINITY, l = 0.0, D = 0.0;
                for (int x = 0; x < dh; x++) D += (double)dO[x] * o[x];
                for (int i = 0; i < n; i++) {
                    const size_t kr = r0 + keys[i].p;
                    const float *k = keys[i].fade ? a->kf + kr * a->f_ld + a->kf_col + go
                                                  : a->kx + kr * a->x_ld + a->kx_col + go;
                    double dot = 0.0;
                    for (int x = 0; x < dh; x++) dot += (double)q[x] * k[x];
                    P[i] = dot * a->scale;
                    if (P[i] > mx) mx = P[i];
                }
                for (int i = 0; i < n; i++) l += (P[i] = exp(P[i] - mx));
                for (int x = 0; x < dh; x++) dq[x] = 0.0;
                for (int i = 0; i < n; i++) {
                    const size_t kr = r0 + keys[i].p;
                    const int f = keys[i].fade;
                    const float *k = f ? a->kf + kr * a->f_ld + a->kf_col + go : a->kx + kr * a->x_ld + a->kx_col + go;
                    const float *v = f ? a->vf + kr * a->f_ld + a->vf_col + go : a->vx + kr * a->x_ld + a->vx_col + go;
                    double *gk = (f ? gkf : gkx) + kr * kv + go, *gv = (f ? gvf : gvx) + kr * kv + go;
                    const double p = P[i] / l;
                    double dp = 0.0;
                    for (int x = 0; x < dh; x++) dp += (double)dO[x] * v[x];
                    const double dS = p * (dp - D);
                    for (int x = 0; x < dh; x++) {
                        dq[x] += dS * k[x];
                        gk[x] += dS * a->scale * q[x];
                        gv[x] += p * dO[x];
                    }
                }
                float *dqr = a->dq + r * a->dq_ld + a->dq_col + (size_t)h * dh;
                for (int x = 0; x < dh; x++) dqr[x] = (float)(dq[x] * a->scale);
            }
        }
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t x = 0; x < kv; x++) {
            a->dkx[r * a->dx_ld + a->dkx_col + x] = (float)gkx[r * kv + x];
            a->dvx[r * a->dx_ld + a->dvx_col + x] = (float)gvx[r * kv + x];
            a->dkf[r * a->df_ld + a->dkf_col + x] = (float)gkf[r * kv + x];
            a->dvf[r * a->df_ld + a->dvf_col + x] = (float)gvf[r * kv + x];
        }
done:
    free(keys);
    free(P);
    free(dq);
    free(gkx);
    free(gvx);
    free(gkf);
    free(gvf);
}
