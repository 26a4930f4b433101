/* data_source.c — the `--data` option and the batches of a training run.
 *
 * Syntax: KIND[:ITEM,ITEM,...], each ITEM key=value (no spaces; a path may not contain ',').
 *   mqar:vocab=8192,seq=64,pairs=4,power_a=0.01,seed=1,test_seed=11,test=3000,train=100000
 *     every key optional: vocab defaults to the model's vocabulary, seq 64, pairs 4,
 *     power_a 0.01 (Zoology's defaults), seed to the run's seed, test_seed to seed + 10 (as
 *     Zoology's test set), test (the number of test examples) 3000, train (a fixed training set
 *     of that many examples, seen in epochs, each in its own shuffled order) 0: unbounded.
 *   tokens:train.bin,val=val.bin,seed=1
 *     the first item may be a bare path (the training file; write train=PATH if the path holds a
 *     '='); val= a held-out file for evaluation; seed as above.
 * Unknown, repeated or empty keys, and values that are not numbers, are errors naming the key.
 *
 * Determinism: training batch k of size B holds the examples k B .. k B + B - 1 of the stream
 * `seed`; example i is made from (seed, i) alone (data_rng.h), so it does not depend on B, on
 * earlier batches, or on the machine. With train=N, position i of the stream is example
 * pi_e(i mod N) of epoch e = i / N, pi_e a permutation of [0, N) (epoch_example below): the
 * same N examples every epoch, in a new order. The data position to checkpoint is the next batch index. The
 * MQAR test set is examples 0 .. test - 1 of the stream test_seed, whatever the training seed;
 * test_seed == seed is refused (the test set would be the first training batches). */
#include "data_source.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmojo.h"
#include "data_rng.h"
#include "error.h"

#define MQAR_TEST_SEED_OFFSET 10 /* Zoology: test seed = seed + 10 */
#define MQAR_TEST_DEFAULT 3000   /* Zoology: num_test_examples */

static int parse_u64(const char *kind, const char *key, const char *v, uint64_t max, uint64_t *out)
{
    if (!*v || strspn(v, "0123456789") != strlen(v))
        return bm_fail(BMOJO_EINVAL, "--data %s: %s=%s is not a whole number", kind, key, v);
    errno = 0;
    unsigned long long x = strtoull(v, NULL, 10);
    if (errno || x > max)
        return bm_fail(BMOJO_EINVAL, "--data %s: %s=%s is too large (at most %llu)", kind, key, v,
                       (unsigned long long)max);
    *out = x;
    return 0;
}

static int parse_double(const char *kind, const char *key, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || x != x)
        return bm_fail(BMOJO_EINVAL, "--data %s: %s=%s is not a number", kind, key, v);
    *out = x;
    return 0;
}

/* The items of a spec, split in place. */
typedef struct {
    char *key[16], *val[16];
    int n;
} items;

static int split_items(const char *kind, char *s, const char *bare_key, items *it)
{
    it->n = 0;
    if (!s) return 0;
    for (char *p = s; p;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        char *eq = strchr(p, '=');
        if (it->n == 16) return bm_fail(BMOJO_EINVAL, "--data %s: too many items", kind);
        if (eq) {
            *eq = 0;
            it->key[it->n] = p;
            it->val[it->n] = eq + 1;
        } else if (it->n == 0 && bare_key && *p) {
            it->key[it->n] = (char *)bare_key;
            it->val[it->n] = p;
        } else
            return bm_fail(BMOJO_EINVAL, "--data %s: \"%s\" is not key=value", kind, p);
        if (!*it->key[it->n]) return bm_fail(BMOJO_EINVAL, "--data %s: an item has an empty key", kind);
        if (!*it->val[it->n]) return bm_fail(BMOJO_EINVAL, "--data %s: %s= has no value", kind, it->key[it->n]);
        for (int i = 0; i < it->n; i++)
            if (strcmp(it->key[i], it->key[it->n]) == 0)
                return bm_fail(BMOJO_EINVAL, "--data %s: %s is given twice", kind, it->key[it->n]);
        it->n++;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

#define BM_RNG_DOM_EPOCH 0x45504f43ull /* "EPOC": the epochs' orders */

/* pi_e(j) for a training set of n examples: a 4-round Feistel network on the smallest even number
 * of bits holding n - 1, keyed by (seed, epoch), walked until it lands below n (a bijection of
 * [0, 2^bits) restricted by cycle walking stays a bijection of [0, n); fewer than 4 steps on
 * average). Integer-only: the same order on every machine. */
static uint64_t epoch_example(uint64_t seed, uint64_t epoch, uint64_t j, uint64_t n)
{
    int bits = 2;
    while (bits < 64 && (n - 1) >> bits) bits += 2;
    const int half = bits / 2;
    const uint64_t mask = (1ull << half) - 1;
    const uint64_t key = bm_rng_mix(bm_rng_mix(bm_rng_mix(BM_RNG_DOM_EPOCH) ^ seed) ^ epoch);
    uint64_t x = j;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (uint64_t round = 0; round < 4; round++) {
            const uint64_t f = bm_rng_mix(key ^ (round << 56) ^ r) & mask;
            const uint64_t t = l ^ f;
            l = r;
            r = t;
        }
        x = (l << half) | r;
    } while (x >= n);
    return x;
}

static int open_mqar(bm_data_source *src, items *it, int64_t vocab, uint64_t seed)
{
    bm_mqar_config c = bm_mqar_defaults();
    if (vocab > 0) c.vocab = vocab > INT32_MAX ? INT32_MAX : (int)vocab;
    int has_test_seed = 0;
    src->seed = seed;
    src->test_examples = MQAR_TEST_DEFAULT;
    for (int i = 0; i < it->n; i++) {
        const char *k = it->key[i], *v = it->val[i];
        uint64_t x = 0;
        int st = 0;
        if (!strcmp(k, "vocab") || !strcmp(k, "seq") || !strcmp(k, "pairs")) {
            st = parse_u64("mqar", k, v, INT32_MAX, &x);
            if (!st) *(k[0] == 'v' ? &c.vocab : k[0] == 's' ? &c.seq : &c.pairs) = (int)x;
            if (!st && k[0] == 'v' && vocab > 0 && (int64_t)x > vocab)
                st = bm_fail(BMOJO_EINVAL, "--data mqar: vocab=%s exceeds the model's vocabulary (%lld)", v,
                             (long long)vocab);
        } else if (!strcmp(k, "power_a"))
            st = parse_double("mqar", k, v, &c.power_a);
        else if (!strcmp(k, "seed"))
            st = parse_u64("mqar", k, v, UINT64_MAX, &src->seed);
        else if (!strcmp(k, "test_seed")) {
            st = parse_u64("mqar", k, v, UINT64_MAX, &src->test_seed);
            has_test_seed = 1;
        } else if (!strcmp(k, "test")) {
            st = parse_u64("mqar", k, v, (uint64_t)1 << 40, &src->test_examples);
            if (!st && src->test_examples == 0)
                st = bm_fail(BMOJO_EINVAL, "--data mqar: test=0: the test set needs at least one example");
        } else if (!strcmp(k, "train"))
            st = parse_u64("mqar", k, v, (uint64_t)1 << 40, &src->train_examples);
        else
            st = bm_fail(BMOJO_EINVAL,
                         "--data mqar: unknown key \"%s\" (keys: vocab, seq, pairs, power_a, seed, test_seed, test, train)",
                         k);
        if (st) return st;
    }
    if (!has_test_seed) src->test_seed = src->seed + MQAR_TEST_SEED_OFFSET;
    if (src->test_seed == src->seed)
        return bm_fail(BMOJO_EINVAL,
                       "--data mqar: test_seed=%llu equals seed: the test set would be the first training examples",
                       (unsigned long long)src->seed);
    int st = bm_mqar_init(&src->mqar, &c);
    if (st) return bm_fail_context(st, "--data");
    return 0;
}

static int open_tokens(bm_data_source *src, items *it, int64_t vocab, uint64_t seed)
{
    const char *train = NULL, *val = NULL;
    src->seed = seed;
    for (int i = 0; i < it->n; i++) {
        const char *k = it->key[i], *v = it->val[i];
        int st = 0;
        if (!strcmp(k, "train")) train = v;
        else if (!strcmp(k, "val")) val = v;
        else if (!strcmp(k, "seed")) st = parse_u64("tokens", k, v, UINT64_MAX, &src->seed);
        else st = bm_fail(BMOJO_EINVAL, "--data tokens: unknown key \"%s\" (keys: train, val, seed)", k);
        if (st) return st;
    }
    if (!train) return bm_fail(BMOJO_EINVAL, "--data tokens: no training file (tokens:PATH or tokens:train=PATH)");
    int st = bm_tokens_open(train, vocab, &src->train);
    if (!st && val) {
        st = bm_tokens_open(val, vocab, &src->val);
        src->has_val = !st;
    }
    return st;
}

int bm_data_open(bm_data_source *src, const char *spec, int64_t vocab, uint64_t seed)
{
    memset(src, 0, sizeof *src);
    if (!spec || !*spec)
        return bm_fail(BMOJO_EINVAL, "--data is empty (mqar[:key=value,...] or tokens:PATH[,val=PATH])");
    char *s = strdup(spec);
    if (!s) return bm_fail(BMOJO_ENOMEM, "--data: out of host memory");
    char *colon = strchr(s, ':');
    if (colon) *colon = 0;
    char *rest = colon ? colon + 1 : NULL;
    items it;
    int st;
    if (!strcmp(s, "mqar")) {
        src->kind = BM_DATA_MQAR;
        st = split_items("mqar", rest && *rest ? rest : NULL, NULL, &it);
        if (!st) st = open_mqar(src, &it, vocab, seed);
    } else if (!strcmp(s, "tokens")) {
        src->kind = BM_DATA_TOKENS;
        st = split_items("tokens", rest && *rest ? rest : NULL, "train", &it);
        if (!st) st = open_tokens(src, &it, vocab, seed);
    } else
        st = bm_fail(BMOJO_EINVAL, "--data: unknown kind \"%s\" (mqar or tokens)", s);
    free(s);
    if (st) bm_data_close(src);
    return st;
}

void bm_data_close(bm_data_source *src)
{
    bm_mqar_free(&src->mqar);
    bm_tokens_close(&src->train);
    bm_tokens_close(&src->val);
    memset(src, 0, sizeof *src);
}

int bm_data_seq(const bm_data_source *src) { return src->kind == BM_DATA_MQAR ? src->mqar.cfg.seq : 0; }

static int check_shape(const bm_data_source *src, int B, int T)
{
    if (B < 1) return bm_fail(BMOJO_EINVAL, "data batch: batch size %d must be >= 1", B);
    if (T < 1) return bm_fail(BMOJO_EINVAL, "data batch: sequence length %d must be >= 1", T);
    if (src->kind == BM_DATA_MQAR && T != src->mqar.cfg.seq)
        return bm_fail(BMOJO_EINVAL, "data batch: the MQAR examples have seq=%d, the batch asks for T=%d",
                       src->mqar.cfg.seq, T);
    if (src->kind != BM_DATA_MQAR && src->kind != BM_DATA_TOKENS)
        return bm_fail(BMOJO_EINVAL, "data batch: the source is not open");
    return 0;
}

int bm_data_batch(const bm_data_source *src, uint64_t batch, int B, int T, int32_t *ids, int32_t *targets)
{
    int st = check_shape(src, B, T);
    if (st) return st;
    if (batch > UINT64_MAX / (uint64_t)B - 1) return bm_fail(BMOJO_EINVAL, "data batch: index %llu is too large",
                                                             (unsigned long long)batch);
    for (int r = 0; r < B && !st; r++) {
        uint64_t ex = batch * (uint64_t)B + (uint64_t)r;
        size_t off = (size_t)r * (size_t)T;
        if (src->kind == BM_DATA_MQAR && src->train_examples > 0) {
            const uint64_t n = src->train_examples;
            ex = epoch_example(src->seed, ex / n, ex % n, n);
        }
        if (src->kind == BM_DATA_MQAR) bm_mqar_example(&src->mqar, src->seed, ex, ids + off, targets + off);
        else st = bm_tokens_window(&src->train, src->seed, ex, T, ids + off, targets + off);
    }
    return st;
}

int bm_data_has_heldout(const bm_data_source *src) { return src->kind == BM_DATA_MQAR || src->has_val; }

static const bm_tokens *eval_file(const bm_data_source *src) { return src->has_val ? &src->val : &src->train; }

uint64_t bm_data_eval_rows(const bm_data_source *src, int T)
{
    if (src->kind == BM_DATA_MQAR) return src->test_examples;
    if (src->kind == BM_DATA_TOKENS) return bm_tokens_eval_windows(eval_file(src), T);
    return 0;
}

int bm_data_eval_batch(const bm_data_source *src, uint64_t batch, int B, int T, int32_t *ids, int32_t *targets,
                       int *rows)
{
    *rows = 0;
    int st = check_shape(src, B, T);
    if (st) return st;
    uint64_t total = bm_data_eval_rows(src, T);
    if (batch >= (total + (uint64_t)B - 1) / (uint64_t)B)
        return bm_fail(BMOJO_EINVAL, "data eval batch %llu is past the evaluation set (%llu rows in batches of %d)",
                       (unsigned long long)batch, (unsigned long long)total, B);
    for (int r = 0; r < B && !st; r++) {
        uint64_t ex = batch * (uint64_t)B + (uint64_t)r;
        size_t off = (size_t)r * (size_t)T;
        if (ex >= total) {
            for (int j = 0; j < T; j++) {
                ids[off + (size_t)j] = 0;
                targets[off + (size_t)j] = -1;
            }
            continue;
        }
        if (src->kind == BM_DATA_MQAR) bm_mqar_example(&src->mqar, src->test_seed, ex, ids + off, targets + off);
        else st = bm_tokens_eval_window(eval_file(src), ex, T, ids + off, targets + off);
        if (!st) (*rows)++;
    }
    return st;
}

int bm_data_describe(const bm_data_source *src, char *buf, size_t n)
{
    if (src->kind == BM_DATA_MQAR) {
        const bm_mqar_config *c = &src->mqar.cfg;
        char train[40] = "";
        if (src->train_examples > 0) snprintf(train, sizeof train, ",train=%llu", (unsigned long long)src->train_examples);
        return snprintf(buf, n, "mqar:vocab=%d,seq=%d,pairs=%d,power_a=%.6f,seed=%llu,test_seed=%llu,test=%llu%s",
                        c->vocab, c->seq, c->pairs, c->power_a, (unsigned long long)src->seed,
                        (unsigned long long)src->test_seed, (unsigned long long)src->test_examples, train);
    }
    if (src->kind == BM_DATA_TOKENS)
        return snprintf(buf, n, "tokens:train=%s%s%s,seed=%llu", src->train.path, src->has_val ? ",val=" : "",
                        src->has_val ? src->val.path : "", (unsigned long long)src->seed);
    return snprintf(buf, n, "(none)");
}

void bm_data_accuracy_add(bm_data_accuracy *acc, const int32_t *targets, const int32_t *hit, int B, int T)
{
    for (int r = 0; r < B; r++) {
        uint64_t scored = 0, correct = 0;
        for (int j = 0; j < T; j++) {
            size_t i = (size_t)r * (size_t)T + (size_t)j;
            if (targets[i] < 0) continue;
            scored++;
            correct += hit[i] != 0;
        }
        acc->scored += scored;
        acc->correct += correct;
        acc->examples += scored > 0;
        acc->examples_correct += scored > 0 && correct == scored;
    }
}

uint64_t bm_data_scored(const int32_t *targets, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += targets[i] >= 0;
    return s;
}
