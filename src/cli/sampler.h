/* sampler.h — choosing the next token from logits: greedy, or temperature with top-k and top-p,
 * from a seeded generator (the same seed gives the same tokens). */
#ifndef BM_SAMPLER_H
#define BM_SAMPLER_H

#include <stdint.h>

typedef struct {
    float temperature; /* 0: greedy (argmax, lowest id on ties) */
    int top_k;         /* 0: no limit */
    float top_p;       /* 1: no limit */
    uint64_t rng;
    int *order;        /* scratch: V indices */
    float *prob;       /* scratch: V probabilities */
    int V;
} bm_sampler;

/* 0, or -1 when out of memory. */
int bm_sampler_init(bm_sampler *s, int V, float temperature, int top_k, float top_p, uint64_t seed);
void bm_sampler_free(bm_sampler *s);
int bm_sample(bm_sampler *s, const float *logits);

#endif
