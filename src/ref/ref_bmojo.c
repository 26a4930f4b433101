/* ref_bmojo.c — plain-C references of the B'MOJO mixer's attention part (see ref_bmojo.h and
 * model.md section 2). bm_ref_bmojo_mix walks the tokens one at a time over the same state
 * layout as the kernels; bm_ref_bmojo_direct recomputes everything from the definition. Both are
 * written for clarity: softmax sums in double, selections by repeated linear scans.
 * The state keeps no K/V rows of the candidates (ops_bmojo.h): at a chunk start s the new
 * memory takes a candidate's row from the window ring (positions s-w .. s-1, all still there)
 * or, for an older one, from the old memory, whose eidetic rows E(s-w) begin with exactly the
 * older-than-(s-w) candidates, in the same order. */
#include "ref/ref_bmojo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float bm_ref_bmojo_eps(const float *yt, const float *const *prev, const float *taps, int k, int d)
{
    /* Summation order (taps ascending, then channels ascending) is the same for every token,
     * so rows that repeat give bit-identical eps (ties are real ties). */
    float sum = 0.0f;
    for (int c = 0; c < d; c++) {
        float yhat = 0.0f;
        for (int i = 0; i < k; i++) yhat += taps[i] * (prev[i] ? prev[i][c] : 0.0f);
        float e = yt[c] - yhat;
        sum += e * e;
    }
    return sum;
}

/* a is better than b in the eidetic order: larger eps, ties to the smaller position. */
static int better(float ea, int64_t pa, float eb, int64_t pb) { return ea > eb || (ea == eb && pa < pb); }

/* o = softmax(q . keys * scale) values over n keys given as row pointers. */
static void attend(const float *q, const float *const *keys, const float *const *vals, int n, int dh, float scale,
                   float *o)
{
    double *s = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double mx = -INFINITY, l = 0.0;
    for (int i = 0; i < n; i++) {
        double dot = 0.0;
        for (int x = 0; x < dh; x++) dot += (double)q[x] * keys[i][x];
        s[i] = dot * scale;
        if (s[i] > mx) mx = s[i];
    }
    for (int i = 0; i < n; i++) {
        s[i] = exp(s[i] - mx);
        l += s[i];
    }
    for (int x = 0; x < dh; x++) {
        double acc = 0.0;
        for (int i = 0; i < n; i++) acc += s[i] * vals[i][x];
        o[x] = (float)(acc / l);
    }
    free(s);
}

void bm_ref_bmojo_mix(const bm_ref_bmojo_args *a)
{
    const int B = a->B, T = a->T, d = a->d, k = a->n_taps, w = a->window, mf = a->m_f, me = a->m_e;
    const int Hkv = a->Hkv, dh = a->dh, rep = a->H / a->Hkv;
    const int M = mf + me, Mc = M > 0 ? M : 1, mfc = mf > 0 ? mf : 1, mec = me > 0 ? me : 1;
    const int nmax = M + w;
    const float **keys = malloc(sizeof(float *) * (size_t)nmax);
    const float **vals = malloc(sizeof(float *) * (size_t)nmax);
    const float **prev = malloc(sizeof(float *) * (size_t)k);
    float *zero = calloc((size_t)(d > dh ? d : dh), sizeof(float));
    /* the old memory's eidetic rows of one (b, g) while the new ones are written */
    float *oldk = malloc(sizeof(float) * (size_t)mec * dh), *oldv = malloc(sizeof(float) * (size_t)mec * dh);
    if (!keys || !vals || !prev || !zero || !oldk || !oldv) goto done;
    float *mem_k = a->mem, *mem_v = a->mem + (size_t)B * Hkv * Mc * dh; /* [2, B, Hkv, Mc, dh] */

    for (int b = 0; b < B; b++) {
        float *yh = a->y_hist + (size_t)b * k * d;
        for (int t = 0; t < T; t++) {
            const int64_t P = a->pos0 + t;
            const size_t r = (size_t)b * T + t;
            const float *yt = a->y + r * d;

            /* 1. innovation from the k previous outputs, then shift them */
            for (int i = 1; i <= k; i++) prev[i - 1] = yh + (size_t)(k - i) * d;
            float eps = bm_ref_bmojo_eps(yt, prev, a->taps, k, d);
            memmove(yh, yh + d, sizeof(float) * (size_t)(k - 1) * d);
            memcpy(yh + (size_t)(k - 1) * d, yt, sizeof(float) * (size_t)d);

            /* 2. chunk start: freeze this chunk's memory from the state (the rings do not
             *    have this token yet) */
            const int64_t s = P / w * w;
            if (P == s) {
                const int na = s < me ? (int)s : me;
                const int32_t *cp = a->cand_pos + (size_t)b * me;
                for (int g = 0; g < Hkv; g++) {
                    const size_t base = ((size_t)b * Hkv + g) * Mc;
                    if (me > 0) {
                        memcpy(oldk, mem_k + (base + mf) * dh, sizeof(float) * (size_t)me * dh);
                        memcpy(oldv, mem_v + (base + mf) * dh, sizeof(float) * (size_t)me * dh);
                    }
                    int nold = 0; /* candidates older than s-w met so far */
                    for (int j = 0; j < M; j++) {
                        const float *sk = zero, *sv = zero;
                        if (j < mf) {
                            int64_t p = s - mf + j;
                            if (p >= 0) {
                                size_t src = (((size_t)b * Hkv + g) * mfc + (size_t)(p % mf)) * dh;
                                sk = a->fade_k + src;
                                sv = a->fade_v + src;
                            }
                        } else if (j - mf < na) {
                            int64_t p = cp[j - mf];
                            if (p >= s - w) {
                                size_t src = (((size_t)b * Hkv + g) * w + (size_t)(p % w)) * dh;
                                sk = a->win_k + src;
                                sv = a->win_v + src;
                            } else {
                                sk = oldk + (size_t)nold * dh;
                                sv = oldv + (size_t)nold * dh;
                                nold++;
                            }
                        }
                        memcpy(mem_k + (base + j) * dh, sk, sizeof(float) * (size_t)dh);
                        memcpy(mem_v + (base + j) * dh, sv, sizeof(float) * (size_t)dh);
                    }
                }
            }

            /* 3. the window ring gets this token's Kx/Vx (slot P % w) */
            for (int g = 0; g < Hkv; g++) {
                size_t dst = (((size_t)b * Hkv + g) * w + (size_t)(P % w)) * dh;
                memcpy(a->win_k + dst, a->kx + r * a->x_ld + a->kx_col + (size_t)g * dh, sizeof(float) * (size_t)dh);
                memcpy(a->win_v + dst, a->vx + r * a->x_ld + a->vx_col + (size_t)g * dh, sizeof(float) * (size_t)dh);
            }

            /* 4. attention over [fading | eidetic | window] */
            for (int h = 0; h < a->H; h++) {
                int g = h / rep, n = 0;
                for (int j = 0; j < M; j++) {
                    int valid = j < mf ? (s - mf + j >= 0) : (j - mf < s);
                    if (!valid) continue;
                    size_t src = (((size_t)b * Hkv + g) * Mc + j) * dh;
                    keys[n] = mem_k + src;
                    vals[n] = mem_v + src;
                    n++;
                }
                for (int64_t p = P - w + 1 < 0 ? 0 : P - w + 1; p <= P; p++) {
                    size_t src = (((size_t)b * Hkv + g) * w + (size_t)(p % w)) * dh;
                    keys[n] = a->win_k + src;
                    vals[n] = a->win_v + src;
                    n++;
                }
                attend(a->q + r * a->q_ld + a->q_col + (size_t)h * dh, keys, vals, n, dh, a->scale,
                       a->out + r * a->out_ld + (size_t)h * dh);
            }

            /* 5. the fading ring gets this token's Kf/Vf (slot P % m_f) */
            if (mf > 0) {
                for (int g = 0; g < Hkv; g++) {
                    size_t dst = (((size_t)b * Hkv + g) * mf + (size_t)(P % mf)) * dh;
                    memcpy(a->fade_k + dst, a->kf + r * a->f_ld + a->kf_col + (size_t)g * dh, sizeof(float) * (size_t)dh);
                    memcpy(a->fade_v + dst, a->vf + r * a->f_ld + a->vf_col + (size_t)g * dh, sizeof(float) * (size_t)dh);
                }
            }

            /* 6. this token becomes an eidetic candidate if it ranks in the top m_e (its row
             *    stays in the window ring until the next chunk start copies it) */
            if (me > 0) {
                int n = P < me ? (int)P : me;
                float *ce = a->cand_eps + (size_t)b * me;
                int32_t *cp = a->cand_pos + (size_t)b * me;
                int at = 0;
                while (at < n && !better(eps, P, ce[at], cp[at])) at++;
                if (at < me) {
                    int last = n < me ? n : me - 1; /* entries at..last-1 move down one slot */
                    for (int i = last; i > at; i--) {
                        ce[i] = ce[i - 1];
                        cp[i] = cp[i - 1];
                    }
                    ce[at] = eps;
                    cp[at] = (int32_t)P;
                }
            }
        }
    }
done:
    free(keys);
    free(vals);
    free(prev);
    free(zero);
    free(oldk);
    free(oldv);
}

void bm_ref_bmojo_direct(const bm_ref_bmojo_args *a)
{
    const int B = a->B, T = a->T, d = a->d, k = a->n_taps, w = a->window, mf = a->m_f, me = a->m_e;
    const int rep = a->H / a->Hkv, dh = a->dh;
    float *eps = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
    char *taken = malloc((size_t)(T > 0 ? T : 1));
    int *E = malloc(sizeof(int) * (size_t)(me > 0 ? me : 1));
    const float **prev = malloc(sizeof(float *) * (size_t)k);
    const int nmax = mf + me + w;
    const float **keys = malloc(sizeof(float *) * (size_t)nmax);
    const float **vals = malloc(sizeof(float *) * (size_t)nmax);
    if (!eps || !taken || !E || !prev || !keys || !vals) goto done;

    for (int b = 0; b < B; b++) {
        const size_t r0 = (size_t)b * T;
        for (int t = 0; t < T; t++) {
            for (int i = 1; i <= k; i++) prev[i - 1] = t - i >= 0 ? a->y + (r0 + t - i) * d : NULL;
            eps[t] = bm_ref_bmojo_eps(a->y + (r0 + t) * d, prev, a->taps, k, d);
        }
        int nE = 0;
        for (int t = 0; t < T; t++) {
            const int s = t / w * w;
            if (t == s) { /* E(s): the m_e best of positions < s, by repeated scans */
                memset(taken, 0, (size_t)T);
                nE = s < me ? s : me;
                for (int e = 0; e < nE; e++) {
                    int best = -1;
                    /* ascending j with a strict '>' keeps the first of equal values: the
                     * smaller position wins ties (written apart from better() on purpose) */
                    for (int j = 0; j < s; j++)
                        if (!taken[j] && (best < 0 || eps[j] > eps[best])) best = j;
                    if (best < 0) break; /* cannot happen: nE <= s */
                    taken[best] = 1;
                    E[e] = best;
                }
            }
            const size_t r = r0 + t;
            for (int h = 0; h < a->H; h++) {
                const size_t kvo = (size_t)(h / rep) * dh;
                int n = 0;
                for (int p = s - mf < 0 ? 0 : s - mf; p < s; p++, n++) {
                    keys[n] = a->kf + (r0 + p) * a->f_ld + a->kf_col + kvo;
                    vals[n] = a->vf + (r0 + p) * a->f_ld + a->vf_col + kvo;
                }
                for (int e = 0; e < nE; e++, n++) {
                    keys[n] = a->kx + (r0 + E[e]) * a->x_ld + a->kx_col + kvo;
                    vals[n] = a->vx + (r0 + E[e]) * a->x_ld + a->vx_col + kvo;
                }
                for (int p = t - w + 1 < 0 ? 0 : t - w + 1; p <= t; p++, n++) {
                    keys[n] = a->kx + (r0 + p) * a->x_ld + a->kx_col + kvo;
                    vals[n] = a->vx + (r0 + p) * a->x_ld + a->vx_col + kvo;
                }
                attend(a->q + r * a->q_ld + a->q_col + (size_t)h * dh, keys, vals, n, dh, a->scale,
                       a->out + r * a->out_ld + (size_t)h * dh);
            }
        }
    }
done:
    free(eps);
    free(taken);
    free(E);
    free(prev);
    free(keys);
    free(vals);
}
