/* data_mqar.h — multi-query associative recall (MQAR, Zoology's `multiquery_ar`), generated on the
 * fly: example i of a seed is a pure function of (config, seed, i), the same on every machine.
 * The definition, and where it differs from Zoology's, is at the top of data_mqar.c. */
#ifndef BM_DATA_MQAR_H
#define BM_DATA_MQAR_H

#include <stdint.h>

typedef struct {
    int vocab;      /* V: keys from [1, V/2), values from [V/2, V), filler from [0, V); >= 2 pairs + 2 */
    int seq;        /* T: even, >= 4 pairs */
    int pairs;      /* key-value pairs per example, each queried once: the scored positions */
    double power_a; /* the query gaps' power law p(g) ~ (g+1)^(power_a-1), in (0, 1] (1: uniform);
                     * used rounded to 6 decimals */
} bm_mqar_config;

/* The defaults of Zoology's multiquery_ar: vocab 8192, seq 64, 4 pairs, power_a 0.01. */
bm_mqar_config bm_mqar_defaults(void);

/* Checks a config; BMOJO_EINVAL with a message naming the option and the bound it breaks. */
int bm_mqar_check(const bm_mqar_config *cfg);

/* A checked config and its gap distribution (integer weights, computed without libm). */
typedef struct {
    bm_mqar_config cfg;
    int space;         /* the number of possible gaps, (seq - 2 pairs) / 2 */
    uint64_t *weight;  /* [space]: weight[g] ~ (g+1)^(power_a-1), fixed point, >= 1 */
    uint64_t total;    /* their sum */
} bm_mqar;

/* Checks cfg and builds the weights. BMOJO_EINVAL (bad config), BMOJO_ENOMEM. */
int bm_mqar_init(bm_mqar *m, const bm_mqar_config *cfg);
void bm_mqar_free(bm_mqar *m);

/* Example `index` of the set `seed`: ids[seq] (the model's input) and targets[seq] (the token to
 * predict at each position; -1 where nothing is scored: every position but the pairs queries).
 * Uses no memory besides the two arrays; thread-safe. */
void bm_mqar_example(const bm_mqar *m, uint64_t seed, uint64_t index, int32_t *ids, int32_t *targets);

/* The weight of gap g (0-based), as bm_mqar_init computes it; exposed for the tests. */
uint64_t bm_mqar_gap_weight(int64_t a_micro, uint64_t g);

#endif
