/* ref_conv1d.c — plain-C reference of bm_op_conv1d: causal depthwise conv1d + SiLU over time
 * continuing from a state of the previous k-1 inputs (oldest first), and the state update. */
#include "ref/ref.h"

#include <math.h>

/* Entry h of one channel's history: the k-1 state values followed by its T new inputs. */
static float conv_hist(const float *st, int km1, const float *xc, size_t x_ld, int h)
{
    return h < km1 ? st[h] : xc[(size_t)(h - km1) * x_ld];
}

void bm_ref_conv1d(int B, int T, int di, int k, const float *x, size_t x_ld, const float *w,
                   const float *bias, float *state, float *out)
{
    int km1 = k - 1;
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < di; c++) {
            float *st = state + ((size_t)b * (size_t)di + (size_t)c) * (size_t)km1;
            const float *xc = x + (size_t)b * (size_t)T * x_ld + (size_t)c;
            for (int t = 0; t < T; t++) {
                /* Output t sees history t .. t+k-1, i.e. inputs t-(k-1) .. t. */
                float acc = bias ? bias[c] : 0.0f;
                for (int i = 0; i < k; i++) acc += w[(size_t)c * (size_t)k + (size_t)i] * conv_hist(st, km1, xc, x_ld, t + i);
                out[((size_t)b * (size_t)T + (size_t)t) * (size_t)di + (size_t)c] = acc / (1.0f + expf(-acc));
            }
            /* The new state is the last k-1 history entries, T .. T+k-2 (T < k-1 too). Entry i is
             * written after every read of a lower index, and T + i > i, so in-place is safe. */
            for (int i = 0; i < km1; i++) st[i] = conv_hist(st, km1, xc, x_ld, T + i);
        }
    }
}
