/* data_mqar.c — MQAR examples, as the Zoology benchmark defines the task
 * (HazyResearch/zoology, zoology/data/associative_recall.py, multiquery_ar / _mqar; the task of
 * the B'MOJO paper's Figure 2).
 *
 * The definition (V vocab, T seq, P pairs, a power_a; C = 2P the context, S = (T - C) / 2 gaps):
 *   - keys: P distinct ids drawn uniformly from [1, V/2) (0 is never a key), in random order;
 *     values: P distinct ids drawn uniformly from [V/2, V). Keys and values are disjoint halves.
 *   - the context: ids[0 .. C) = k0 v0 k1 v1 ... k(P-1) v(P-1).
 *   - gaps: P distinct gaps g_i in [0, S), drawn one after the other without replacement with
 *     probability proportional to (g + 1)^(a - 1) among the gaps not yet drawn (a power law: small
 *     gaps, i.e. queries soon after the context, are more likely; a = 1 is uniform). Pair i gets
 *     the i-th gap drawn, so early pairs tend to get the small gaps, as in Zoology.
 *   - queries: key k_i is repeated at position C + 2 g_i, and the target there is v_i (the model,
 *     having just read the key again, must predict its value). Query positions are even offsets
 *     from C, at most T - 2.
 *   - filler: every other position p >= C (including p = C + 2 g_i + 1: the value is never
 *     written after its query) holds an id drawn uniformly from [0, V) (Zoology's
 *     random_non_queries=True), drawn in increasing position order.
 *   - targets are -1 except at the P query positions. Zoology builds labels one position to the
 *     right and shifts inputs and labels by one (inputs = examples[:-1], labels = labels[1:]);
 *     the result is the same: targets[p] is the token to predict after reading ids[p].
 *   - validity as Zoology's asserts: T even and T >= 4P (S >= P gaps to draw from); keys need
 *     V/2 - 1 >= P.
 *
 * Where ours differs:
 *   - the random numbers: our own generator (data_rng.h), one stream per example seeded from
 *     (seed, index), so the sequences are not Zoology's numpy ones, only the distribution is the
 *     same. The draw order is: the P keys (Floyd's subset sampling then a Fisher-Yates shuffle,
 *     i.e. a uniformly random ordered sample), the P values (the same), the P gaps, the filler.
 *   - the gap weights are fixed-point integers: (g+1)^(a-1) = 2^((a-1) log2(g+1)) computed with
 *     integer arithmetic only (log2 by repeated squaring, 2^-x from square roots of 2, all Q31),
 *     relative error about 1e-8, and a rounded to 1e-6. No libm call that could differ between
 *     machines enters the sampling.
 *   - Zoology's numpy draws gaps in batches and drops repeats; that has the same distribution as
 *     drawing them one at a time without replacement, which is what we do.
 *   - Zoology asserts V > T; we do not (a small vocabulary with a long sequence is a valid task),
 *     and we restrict a to (0, 1] (a > 1 would favour late queries; Zoology uses 0.01).
 *   - Zoology makes a finite training set (100 000 examples) and iterates epochs; ours is unbounded
 *     (the data source makes new examples every step). Its test set is seed + 10 with the same
 *     power law unless test_power_a is given; see data_source.c for ours.
 */
#include "data_mqar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bmojo.h"
#include "data_rng.h"
#include "error.h"

/* The largest sequence we accept: keeps every product below in 64 bits with room to spare. */
#define MQAR_MAX_SEQ (1 << 24)

bm_mqar_config bm_mqar_defaults(void)
{
    bm_mqar_config c = {.vocab = 8192, .seq = 64, .pairs = 4, .power_a = 0.01};
    return c;
}

int bm_mqar_check(const bm_mqar_config *c)
{
    if (c->pairs < 1) return bm_fail(BMOJO_EINVAL, "mqar: pairs=%d: need at least 1 key-value pair", c->pairs);
    if (c->seq < 1 || c->seq > MQAR_MAX_SEQ)
        return bm_fail(BMOJO_EINVAL, "mqar: seq=%d is out of range [4, %d]", c->seq, MQAR_MAX_SEQ);
    if (c->seq % 2)
        return bm_fail(BMOJO_EINVAL, "mqar: seq=%d must be even (queries sit at even offsets after the context)", c->seq);
    if ((int64_t)c->seq < 4 * (int64_t)c->pairs)
        return bm_fail(BMOJO_EINVAL,
                       "mqar: seq=%d is too short for pairs=%d: the %d-token key-value context plus %d queries "
                       "with a slot of 2 tokens each need seq >= %lld",
                       c->seq, c->pairs, 2 * c->pairs, c->pairs, 4 * (long long)c->pairs);
    if (c->vocab < 4 || (int64_t)c->vocab / 2 - 1 < c->pairs)
        return bm_fail(BMOJO_EINVAL,
                       "mqar: vocab=%d is too small for pairs=%d: keys come from [1, vocab/2) and need %d "
                       "distinct ids (vocab >= %lld)",
                       c->vocab, c->pairs, c->pairs, 2 * (long long)c->pairs + 2);
    if (!(c->power_a > 0) || !(c->power_a <= 1))
        return bm_fail(BMOJO_EINVAL, "mqar: power_a=%g must be in (0, 1] (1: uniform gaps; smaller favours short gaps)",
                       c->power_a);
    if (llround(c->power_a * 1e6) < 1)
        return bm_fail(BMOJO_EINVAL, "mqar: power_a=%g is below the resolution 0.000001", c->power_a);
    return 0;
}

/* floor(sqrt(x)), bit by bit. */
static uint64_t isqrt64(uint64_t x)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > x) bit >>= 2;
    while (bit) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else
            r >>= 1;
        bit >>= 2;
    }
    return r;
}

/* log2(n) in Q32 for 1 <= n < 2^31: the integer part from the top bit, 32 fraction bits by
 * squaring the mantissa (Q31 in [1, 2)) and taking a bit each time it reaches 2. */
static uint64_t log2_q32(uint64_t n)
{
    int k = 0;
    while ((n >> (k + 1)) != 0) k++;
    uint64_t x = n << (31 - k), frac = 0;
    for (int i = 1; i <= 32; i++) {
        x = (x * x) >> 31;
        if (x >= ((uint64_t)2 << 31)) {
            x >>= 1;
            frac |= (uint64_t)1 << (32 - i);
        }
    }
    return ((uint64_t)k << 32) | frac;
}

/* 2^(-m / 2^32) in Q31 for m < 32 * 2^32: the fraction part as a product of 2^(-2^-i) for its set
 * bits (each the square root of the previous, from 2^-1/2 = sqrt(2^61) / 2^31), then a shift. */
static uint64_t exp2_neg_q31(uint64_t m)
{
    uint64_t q = m >> 32, f = m & 0xffffffffull;
    uint64_t r = (uint64_t)1 << 31, c = isqrt64((uint64_t)1 << 61);
    for (int i = 1; i <= 32; i++) {
        if (f & ((uint64_t)1 << (32 - i))) r = (r * c) >> 31;
        c = isqrt64(c << 31);
    }
    return q >= 63 ? 0 : r >> q;
}

uint64_t bm_mqar_gap_weight(int64_t a_micro, uint64_t g)
{
    /* (g+1)^(a-1) = 2^(-(1-a) log2(g+1)), 1 - a = (1e6 - a_micro) / 1e6 in [0, 1) */
    uint64_t e = (uint64_t)(1000000 - a_micro);
    uint64_t m = e * log2_q32(g + 1) / 1000000;
    uint64_t w = exp2_neg_q31(m);
    return w ? w : 1; /* every gap stays possible */
}

int bm_mqar_init(bm_mqar *m, const bm_mqar_config *cfg)
{
    memset(m, 0, sizeof *m);
    int st = bm_mqar_check(cfg);
    if (st) return st;
    m->cfg = *cfg;
    m->space = (cfg->seq - 2 * cfg->pairs) / 2;
    m->weight = malloc((size_t)m->space * sizeof *m->weight);
    if (!m->weight) return bm_fail(BMOJO_ENOMEM, "mqar: out of host memory for %d gap weights", m->space);
    int64_t a_micro = llround(cfg->power_a * 1e6);
    for (int g = 0; g < m->space; g++) {
        m->weight[g] = bm_mqar_gap_weight(a_micro, (uint64_t)g);
        m->total += m->weight[g];
    }
    return 0;
}

void bm_mqar_free(bm_mqar *m)
{
    free(m->weight);
    memset(m, 0, sizeof *m);
}

/* P distinct ids from [lo, lo + n), in uniformly random order, written to out[0], out[2], ...
 * (stride 2: keys and values go straight into their context slots). Floyd's algorithm picks the
 * set with exactly P draws; a Fisher-Yates shuffle then orders it (Floyd's insertion order is not
 * uniform). */
static void sample_distinct(bm_rng *r, int32_t lo, uint64_t n, int P, int32_t *out)
{
    int have = 0;
    for (uint64_t j = n - (uint64_t)P; j < n; j++) {
        int32_t t = lo + (int32_t)bm_rng_below(r, j + 1);
        for (int i = 0; i < have; i++)
            if (out[2 * i] == t) {
                t = lo + (int32_t)j;
                break;
            }
        out[2 * have++] = t;
    }
    for (int i = P - 1; i > 0; i--) {
        int k = (int)bm_rng_below(r, (uint64_t)i + 1);
        int32_t x = out[2 * i];
        out[2 * i] = out[2 * k];
        out[2 * k] = x;
    }
}

void bm_mqar_example(const bm_mqar *m, uint64_t seed, uint64_t index, int32_t *ids, int32_t *targets)
{
    const int V = m->cfg.vocab, T = m->cfg.seq, P = m->cfg.pairs, C = 2 * P;
    bm_rng r;
    bm_rng_seed(&r, BM_RNG_DOM_MQAR, seed, index);
    for (int p = 0; p < T; p++) targets[p] = -1;
    sample_distinct(&r, 1, (uint64_t)(V / 2 - 1), P, ids);
    sample_distinct(&r, V / 2, (uint64_t)(V - V / 2), P, ids + 1);
    /* Gaps without replacement: a drawn gap g is marked by its target (>= 0) and skipped. The
     * linear scan costs P * S per example, nothing next to a training step at these sizes. */
    uint64_t left = m->total;
    for (int i = 0; i < P; i++) {
        uint64_t x = bm_rng_below(&r, left), acc = 0;
        int g = 0;
        for (;; g++) {
            if (targets[C + 2 * g] >= 0) continue;
            acc += m->weight[g];
            if (x < acc || g == m->space - 1) break;
        }
        ids[C + 2 * g] = ids[2 * i];
        targets[C + 2 * g] = ids[2 * i + 1];
        left -= m->weight[g];
    }
    for (int p = C; p < T; p++)
        if (targets[p] < 0) ids[p] = (int32_t)bm_rng_below(&r, (uint64_t)V);
}
