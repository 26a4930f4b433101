/* ref_attention.c — plain-C references of causal GQA attention over a ring K/V cache and of
 * the cache append. Scores, softmax and the weighted sum are accumulated in double, with a
 * separate max pass (the textbook softmax), so the kernel's online softmax is checked against an
 * independent formulation. */
#include <math.h>
#include <stdlib.h>

#include "ref/ref.h"

/* The key (or value) row of kv head g at absolute position p for sequence b. */
static const float *attn_ref_row(int b, int T, int Hkv, int dh, int g, int64_t p, const float *x,
                                 size_t kv_ld, size_t x_col, const float *cache, int cap, int64_t pos0)
{
    if (p < pos0) return cache + (((size_t)b * Hkv + g) * cap + (size_t)(p % cap)) * dh;
    return x + ((size_t)b * T + (size_t)(p - pos0)) * kv_ld + x_col + (size_t)g * dh;
}

void bm_ref_attention(int B, int T, int H, int Hkv, int dh,
                      const float *q, size_t q_ld, size_t q_col,
                      const float *k, const float *v, size_t kv_ld, size_t k_col, size_t v_col,
                      const float *k_cache, const float *v_cache, int cap, int64_t pos0,
                      int window, float scale, float *out, size_t out_ld)
{
    const int G = H / Hkv;
    const int64_t max_keys = pos0 + T;
    double *s = malloc(sizeof(double) * (size_t)(max_keys > 0 ? max_keys : 1));
    double *o = malloc(sizeof(double) * (size_t)dh);
    if (!s || !o) { /* the reference is test-only; leave out untouched on OOM */
        free(s);
        free(o);
        return;
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const int g = h / G;
                const int64_t qp = pos0 + t;
                const int64_t lo = window > 0 && qp - window + 1 > 0 ? qp - window + 1 : 0;
                const float *qr = q + ((size_t)b * T + t) * q_ld + q_col + (size_t)h * dh;
                double m = -INFINITY;
                for (int64_t p = lo; p <= qp; p++) {
                    const float *kr = attn_ref_row(b, T, Hkv, dh, g, p, k, kv_ld, k_col, k_cache, cap, pos0);
                    double dot = 0;
                    for (int d = 0; d < dh; d++) dot += (double)qr[d] * kr[d];
                    s[p - lo] = dot * scale;
                    if (s[p - lo] > m) m = s[p - lo];
                }
                double sum = 0;
                for (int d = 0; d < dh; d++) o[d] = 0;
                for (int64_t p = lo; p <= qp; p++) {
                    const double w = exp(s[p - lo] - m);
                    const float *vr = attn_ref_row(b, T, Hkv, dh, g, p, v, kv_ld, v_col, v_cache, cap, pos0);
                    sum += w;
                    for (int d = 0; d < dh; d++) o[d] += w * vr[d];
                }
                float *orow = out + ((size_t)b * T + t) * out_ld + (size_t)h * dh;
                for (int d = 0; d < dh; d++) orow[d] = (float)(o[d] / sum);
            }
    free(s);
    free(o);
}

void bm_ref_kv_append(int B, int T, int Hkv, int dh, const float *k, const float *v, size_t kv_ld,
                      size_t k_col, size_t v_col, float *k_cache, float *v_cache, int cap, int64_t pos0)
{
    const int n = T < cap ? T : cap;
    for (int b = 0; b < B; b++)
        for (int t = T - n; t < T; t++) {
            const size_t slot = (size_t)((pos0 + t) % cap);
            for (int g = 0; g < Hkv; g++)
                for (int d = 0; d < dh; d++) {
                    const size_t row = ((size_t)b * T + t) * kv_ld + (size_t)g * dh + d;
                    const size_t dst = (((size_t)b * Hkv + g) * cap + slot) * dh + d;
                    k_cache[dst] = k[row + k_col];
                    v_cache[dst] = v[row + v_col];
                }
        }
}
