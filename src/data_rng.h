/* data_rng.h — the random numbers of the training data sources (data_mqar.c, data_tokens.c):
 * integer-only, so every machine and compiler gives the same bits.
 *
 * Definition (enough to reimplement it elsewhere, e.g. to check a batch in Python):
 *   mix(z)      = splitmix64's finalizer: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
 *                 z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31 (all mod 2^64)
 *   the stream of example `index` under `seed` in domain `dom` (a constant per use, so the MQAR
 *   and token-window streams of one seed are unrelated) starts from
 *                 x = mix(mix(mix(dom) ^ seed) ^ index)
 *   and its four xoshiro256** state words are the next four splitmix64 outputs from x
 *   (x += 0x9E3779B97F4A7C15; out = mix(x)).
 *   Draws are xoshiro256** (Blackman and Vigna) outputs; a uniform integer in [0, n) rejects
 *   outputs below (2^64 - n) mod n and returns r mod n (exactly uniform, no floating point).
 * Each example has its own stream, so example i is the same whatever the batch size, the batch it
 * lands in or the thread that makes it. */
#ifndef BM_DATA_RNG_H
#define BM_DATA_RNG_H

#include <stdint.h>

#define BM_RNG_DOM_MQAR 0x4d514152ull   /* "MQAR" */
#define BM_RNG_DOM_TOKENS 0x544f4b4eull /* "TOKN" */

typedef struct {
    uint64_t s[4];
} bm_rng;

static inline uint64_t bm_rng_mix(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z;
}

static inline void bm_rng_seed(bm_rng *r, uint64_t dom, uint64_t seed, uint64_t index)
{
    uint64_t x = bm_rng_mix(bm_rng_mix(bm_rng_mix(dom) ^ seed) ^ index);
    for (int i = 0; i < 4; i++) {
        x += 0x9E3779B97F4A7C15ull;
        r->s[i] = bm_rng_mix(x);
    }
}

static inline uint64_t bm_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t bm_rng_next(bm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = bm_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bm_rng_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n), n >= 1. */
static inline uint64_t bm_rng_below(bm_rng *r, uint64_t n)
{
    uint64_t threshold = (0 - n) % n; /* (2^64 - n) mod n */
    for (;;) {
        uint64_t x = bm_rng_next(r);
        if (x >= threshold) return x % n;
    }
}

#endif
