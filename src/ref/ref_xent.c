/* ref_xent.c — plain-C reference of bm_op_xent_backward: loss = log sum exp(l) - l_t computed
 * relative to the row's max in double, gradient scale * (softmax - onehot(t)); t < 0 gives a zero
 * row and a zero loss, t >= V (the caller's to refuse) a zero row and a NaN loss as the kernel. */
#include "ref/ref_backward.h"

#include <math.h>

void bm_ref_xent_backward(float *logits, size_t ld, int V, const int32_t *targets, float scale, float *loss,
                          int32_t *hit, int rows)
{
    for (int r = 0; r < rows; r++) {
        float *l = logits + (size_t)r * ld;
        int t = targets[r];
        if (t < 0 || t >= V) {
            for (int j = 0; j < V; j++) l[j] = 0.0f;
            loss[r] = t < 0 ? 0.0f : NAN;
            if (hit) hit[r] = 0;
            continue;
        }
        double m = l[0];
        for (int j = 1; j < V; j++) m = fmax(m, (double)l[j]);
        /* s = 1 + rest, rest = the other columns' terms (a tie at the max adds 1): log1p(rest)
         * keeps the loss of a confident row (rest 1e-30 at logits +-80) where log(s) gives 0 */
        double rest = 0.0;
        int ties = 0;
        for (int j = 0; j < V; j++) {
            if ((double)l[j] == m) ties++;
            else rest += exp((double)l[j] - m);
        }
        rest += ties - 1;
        const double s = 1.0 + rest;
        loss[r] = (float)((m - l[t]) + log1p(rest));
        if (hit) hit[r] = (double)l[t] >= m;
        for (int j = 0; j < V; j++) {
            double p = exp((double)l[j] - m) / s;
            l[j] = (float)(scale * (p - (j == t ? 1.0 : 0.0)));
        }
    }
}
