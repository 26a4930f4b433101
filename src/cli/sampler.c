/* sampler.c — greedy and temperature / top-k / top-p sampling on the host (the logits of one
 * position are V floats, too few to be worth a kernel). */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

int bm_sampler_init(bm_sampler *s, int V, float temperature, int top_k, float top_p, uint64_t seed)
{
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p;
    s->rng = seed ? seed : 0x853C49E6748FEA9Bull;
    s->V = V;
    s->order = malloc((size_t)V * sizeof *s->order);
    s->prob = malloc((size_t)V * sizeof *s->prob);
    if (!s->order || !s->prob) {
        bm_sampler_free(s);
        return -1;
    }
    return 0;
}

void bm_sampler_free(bm_sampler *s)
{
    free(s->order);
    free(s->prob);
    s->order = NULL;
    s->prob = NULL;
}

static double uniform(bm_sampler *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

static const float *sort_logits;
static int by_logit_desc(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_logits[i] != sort_logits[j]) return sort_logits[i] > sort_logits[j] ? -1 : 1;
    return i - j;
}

int bm_sample(bm_sampler *s, const float *logits)
{
    int V = s->V;
    if (s->temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    for (int i = 0; i < V; i++) s->order[i] = i;
    sort_logits = logits;
    qsort(s->order, (size_t)V, sizeof *s->order, by_logit_desc);
    int n = (s->top_k > 0 && s->top_k < V) ? s->top_k : V;
    double maxl = logits[s->order[0]], sum = 0;
    for (int r = 0; r < n; r++) {
        s->prob[r] = (float)exp(((double)logits[s->order[r]] - maxl) / s->temperature);
        sum += s->prob[r];
    }
    if (s->top_p < 1.0f) { /* keep the smallest prefix whose mass reaches top_p */
        double acc = 0;
        for (int r = 0; r < n; r++) {
            acc += s->prob[r] / sum;
            if (acc >= s->top_p) {
                n = r + 1;
                break;
            }
        }
        sum = 0;
        for (int r = 0; r < n; r++) sum += s->prob[r];
    }
    double u = uniform(s) * sum, acc = 0;
    for (int r = 0; r < n; r++) {
        acc += s->prob[r];
        if (u < acc) return s->order[r];
    }
    return s->order[n - 1];
}
