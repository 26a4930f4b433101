/* test_data.c — the training data sources (src/data_mqar.c, data_tokens.c, data_source.c), host
 * only: MQAR examples have Zoology's structure over thousands of examples (keys and values from
 * their halves, the context first, each key queried once with its value as the target, nothing
 * else scored), the query gaps follow the power law, examples are pure functions of (seed, index)
 * (pinned by a checksum, so a change of the draws is noticed) and batches do not depend on B; bad
 * options are refused with messages naming them. Token files round-trip in both dtypes, random
 * windows are in bounds and shifted by one, the evaluation windows score every token once, and
 * each kind of bad file is refused with a message naming the problem. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bmojo.h"
#include "data_source.h"

static int n_pass, n_fail;

__attribute__((format(printf, 2, 3))) static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s  ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok) n_pass++;
    else n_fail++;
    fflush(stdout);
    return ok;
}

/* st is an error whose message holds every one of the (NULL-terminated) words. */
static int check_error(int st, const char *what, ...)
{
    const char *msg = bmojo_last_error();
    int ok = st != 0;
    va_list ap;
    va_start(ap, what);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL;) ok = ok && strstr(msg, w) != NULL;
    va_end(ap);
    return check(ok, "%s: refused (%s)", what, st ? msg : "accepted");
}

static char dir[] = "/tmp/bmojo-test-data-XXXXXX";
static char path_buf[4][512];
static const char *tmp_path(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", dir, name);
    return path_buf[slot];
}

/* ---------------------------------------------------------------------------------------- MQAR */

/* The structural properties of one example; returns 0 and says why on the first broken one.
 * gaps[P] gets each pair's gap (query position = 2P + 2 gap). */
static int mqar_valid(const bm_mqar_config *c, const int32_t *ids, const int32_t *tg, int *gaps, char *why, size_t n)
{
    const int V = c->vocab, T = c->seq, P = c->pairs, C = 2 * P;
    int queried[4096] = {0};
    for (int i = 0; i < P; i++) {
        int32_t k = ids[2 * i], v = ids[2 * i + 1];
        if (k < 1 || k >= V / 2) return snprintf(why, n, "key %d at %d not in [1, %d)", k, 2 * i, V / 2), 0;
        if (v < V / 2 || v >= V) return snprintf(why, n, "value %d at %d not in [%d, %d)", v, 2 * i + 1, V / 2, V), 0;
        for (int j = 0; j < i; j++)
            if (ids[2 * j] == k || ids[2 * j + 1] == v) return snprintf(why, n, "pair %d repeats a key or value", i), 0;
    }
    int scored = 0;
    for (int p = 0; p < T; p++) {
        if (ids[p] < 0 || ids[p] >= V) return snprintf(why, n, "id %d at %d outside the vocabulary", ids[p], p), 0;
        if (tg[p] == -1) continue;
        scored++;
        if (p < C || (p - C) % 2) return snprintf(why, n, "target at %d: not an even offset after the context", p), 0;
        int i = 0;
        while (i < P && ids[2 * i] != ids[p]) i++;
        if (i == P) return snprintf(why, n, "query at %d: id %d is not a key of the context", p, ids[p]), 0;
        if (queried[i]++) return snprintf(why, n, "key %d queried twice", ids[p]), 0;
        if (tg[p] != ids[2 * i + 1]) return snprintf(why, n, "query at %d: target %d, its value is %d", p, tg[p], ids[2 * i + 1]), 0;
        gaps[i] = (p - C) / 2;
    }
    for (int p = 0; p < T; p++)
        if (tg[p] < -1) return snprintf(why, n, "target %d at %d", tg[p], p), 0;
    if (scored != P) return snprintf(why, n, "%d scored positions, want %d", scored, P), 0;
    return 1;
}

static void test_mqar_structure(void)
{
    const bm_mqar_config cfgs[] = {
        {8192, 64, 4, 0.01}, {11, 18, 4, 0.5}, {64, 256, 16, 0.1}, {10, 16, 4, 1.0}, {4, 4, 1, 0.01}, {100, 402, 3, 0.01},
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        const bm_mqar_config *c = &cfgs[k];
        bm_mqar m;
        if (!check(bm_mqar_init(&m, c) == 0, "mqar init V=%d T=%d P=%d a=%g", c->vocab, c->seq, c->pairs, c->power_a))
            continue;
        int32_t *ids = malloc((size_t)c->seq * 4), *tg = malloc((size_t)c->seq * 4);
        int gaps[64], ok = 1, lo = c->vocab, hi = -1;
        char why[256] = "";
        for (uint64_t i = 0; i < 3000 && ok; i++) {
            bm_mqar_example(&m, 7, i, ids, tg);
            ok = mqar_valid(c, ids, tg, gaps, why, sizeof why);
            for (int p = 2 * c->pairs; p < c->seq; p++)
                if (tg[p] < 0) {
                    lo = ids[p] < lo ? ids[p] : lo;
                    hi = ids[p] > hi ? ids[p] : hi;
                }
            if (!ok) snprintf(why + strlen(why), sizeof why - strlen(why), " (example %llu)", (unsigned long long)i);
        }
        check(ok, "mqar V=%d T=%d P=%d: 3000 examples: keys in [1, V/2), values in [V/2, V), the pairs first, "
                  "each key queried once with its value as target, -1 elsewhere %s",
              c->vocab, c->seq, c->pairs, why);
        check(lo == 0 && hi == c->vocab - 1, "mqar V=%d: the filler spans the whole vocabulary [0, V) (saw [%d, %d])",
              c->vocab, lo, hi);
        free(ids);
        free(tg);
        bm_mqar_free(&m);
    }
}

/* The gap weights against pow() in double; then the sampled gaps against the law. */
static void test_mqar_power_law(void)
{
    double worst = 0;
    const double as[] = {0.000001, 0.01, 0.1, 0.5, 0.999999, 1.0};
    for (size_t k = 0; k < 6; k++)
        for (uint64_t g = 0; g < 5000; g += g < 64 ? 1 : 37) {
            int64_t am = llround(as[k] * 1e6);
            double want = pow((double)(g + 1), as[k] - 1) * 2147483648.0;
            double got = (double)bm_mqar_gap_weight(am, g);
            /* the Q31 chain's own error (about 1e-8) plus the floor to whole units */
            double rel = (fabs(got - want) - 1) / want;
            worst = rel > worst ? rel : worst;
        }
    check(worst < 1e-7, "the integer gap weights match (g+1)^(a-1) (worst relative error %.2e)", worst);

    /* T 64, P 4: 28 gaps. Pair 0's gap is the first draw: exactly the law p(g). */
    bm_mqar_config c = {8192, 64, 4, 0.01};
    bm_mqar m;
    bm_mqar_init(&m, &c);
    enum { N = 40000 };
    int hist0[64] = {0}, hist_all[64] = {0};
    int32_t ids[64], tg[64];
    int gaps[4];
    char why[256];
    for (uint64_t i = 0; i < N; i++) {
        bm_mqar_example(&m, 3, i, ids, tg);
        mqar_valid(&c, ids, tg, gaps, why, sizeof why);
        hist0[gaps[0]]++;
        for (int p = 0; p < 4; p++) hist_all[gaps[p]]++;
    }
    double max_z = 0;
    for (int g = 0; g < m.space; g++) {
        double p = (double)m.weight[g] / (double)m.total, e = N * p;
        double z = fabs(hist0[g] - e) / sqrt(e * (1 - p));
        max_z = z > max_z ? z : max_z;
    }
    check(max_z < 5, "mqar a=0.01: the first pair's gap follows p(g) ~ (g+1)^(a-1) (worst |z| %.2f over %d gaps)", max_z,
          m.space);
    int early = 0, late = 0;
    for (int g = 0; g < 7; g++) early += hist_all[g];
    for (int g = 21; g < 28; g++) late += hist_all[g];
    check(early > 2 * late && hist_all[0] > hist_all[27],
          "mqar a=0.01: queries come early more often (gaps 0-6: %d, gaps 21-27: %d)", early, late);
    bm_mqar_free(&m);

    c.power_a = 1.0;
    bm_mqar_init(&m, &c);
    int h[64] = {0};
    for (uint64_t i = 0; i < N; i++) {
        bm_mqar_example(&m, 3, i, ids, tg);
        mqar_valid(&c, ids, tg, gaps, why, sizeof why);
        for (int p = 0; p < 4; p++) h[gaps[p]]++;
    }
    early = late = 0;
    for (int g = 0; g < 7; g++) early += h[g];
    for (int g = 21; g < 28; g++) late += h[g];
    check(fabs((double)early / late - 1) < 0.1, "mqar a=1: gaps uniform (gaps 0-6: %d, gaps 21-27: %d)", early, late);
    bm_mqar_free(&m);
}

static uint64_t fnv(uint64_t h, const int32_t *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)x[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void test_mqar_determinism(void)
{
    bm_mqar_config c = bm_mqar_defaults();
    bm_mqar m;
    bm_mqar_init(&m, &c);
    int32_t a[64], at[64], b[64], bt[64];
    bm_mqar_example(&m, 5, 123, a, at);
    bm_mqar_example(&m, 5, 999, b, bt);
    bm_mqar_example(&m, 5, 123, b, bt);
    check(!memcmp(a, b, sizeof a) && !memcmp(at, bt, sizeof at), "mqar: the same (seed, index) gives the same example");
    bm_mqar_example(&m, 5, 124, b, bt);
    int diff_index = memcmp(a, b, sizeof a) != 0;
    bm_mqar_example(&m, 6, 123, b, bt);
    check(diff_index && memcmp(a, b, sizeof a) != 0, "mqar: another index or seed gives another example");
    /* The stream is part of the definition: a checksum of the first 100 examples of seed 1 pins it
     * (identical on every machine; changes only when the draws are redefined on purpose). */
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < 100; i++) {
        bm_mqar_example(&m, 1, i, a, at);
        h = fnv(fnv(h, a, 64), at, 64);
    }
    const uint64_t pinned = 0x0c1c3ddebbe8c328ull;
    check(h == pinned, "mqar: the examples of seed 1 are the pinned ones (checksum %016llx)", (unsigned long long)h);
    bm_mqar_free(&m);

    /* batches: batch k of size B holds examples k B .. k B + B - 1, whatever B */
    bm_data_source s1;
    check(bm_data_open(&s1, "mqar:seq=32,pairs=3,seed=9", 100, 0) == 0, "data_open mqar:seq=32,pairs=3,seed=9");
    int32_t big[12 * 32], bigt[12 * 32], one[32], onet[32];
    bm_data_batch(&s1, 1, 6, 32, big, bigt); /* examples 6 .. 11 */
    int same = 1;
    for (int r = 0; r < 6; r++) {
        bm_data_batch(&s1, 6 + (uint64_t)r, 1, 32, one, onet);
        same &= !memcmp(one, big + r * 32, sizeof one) && !memcmp(onet, bigt + r * 32, sizeof onet);
    }
    bm_data_batch(&s1, 0, 12, 32, big, bigt); /* examples 0 .. 11 */
    int32_t six[6 * 32], sixt[6 * 32];
    bm_data_batch(&s1, 1, 6, 32, six, sixt);
    same &= !memcmp(six, big + 6 * 32, sizeof six) && !memcmp(sixt, bigt + 6 * 32, sizeof sixt);
    check(same, "mqar batches: the rows of batch 1 at B=6 are batches 6..11 at B=1 and rows 6..11 of batch 0 at B=12");
    check(bm_data_scored(bigt, 12 * 32) == 12 * 3, "mqar batch: pairs scored positions per row (%llu of 36)",
          (unsigned long long)bm_data_scored(bigt, 12 * 32));
    check_error(bm_data_batch(&s1, 0, 2, 64, big, bigt), "mqar batch with T != seq", "seq=32", "T=64", NULL);
    check_error(bm_data_batch(&s1, 0, 0, 32, big, bigt), "mqar batch with B = 0", "batch size 0", NULL);

    /* the test set: test_seed = seed + 10, its own examples, a fixed count, a short last batch */
    int rows = -1;
    check(bm_data_eval_rows(&s1, 32) == 3000 && s1.test_seed == 19, "mqar test set: 3000 examples of seed + 10 by default");
    bm_data_eval_batch(&s1, 0, 6, 32, six, sixt, &rows);
    bm_data_batch(&s1, 0, 6, 32, big, bigt);
    check(rows == 6 && memcmp(six, big, sizeof six) != 0, "mqar eval batch 0: 6 rows, not the training examples");
    bm_mqar_example(&s1.mqar, 19, 4, one, onet);
    check(!memcmp(one, six + 4 * 32, sizeof one), "mqar eval row 4 = example 4 of test_seed");
    bm_data_close(&s1);
    check(bm_data_open(&s1, "mqar:seq=32,pairs=3,test=10,test_seed=77", 100, 4) == 0 && s1.seed == 4 && s1.test_seed == 77,
          "data_open: seed from the caller, test_seed= and test= taken");
    int32_t e8[8 * 32], e8t[8 * 32];
    int st = bm_data_eval_batch(&s1, 1, 8, 32, e8, e8t, &rows);
    int pad = 1;
    for (int i = 2 * 32; i < 8 * 32; i++) pad &= e8t[i] == -1 && e8[i] == 0;
    check(st == 0 && rows == 2 && pad, "mqar eval: the last batch of 10 in 8s has 2 real rows, the rest padded (-1)");
    check_error(bm_data_eval_batch(&s1, 2, 8, 32, e8, e8t, &rows), "mqar eval batch past the end", "past", NULL);
    char d[256];
    bm_data_describe(&s1, d, sizeof d);
    check(!strcmp(d, "mqar:vocab=100,seq=32,pairs=3,power_a=0.010000,seed=4,test_seed=77,test=10"), "describe: %s", d);
    bm_data_source s2;
    check(bm_data_open(&s2, d, 100, 0) == 0 && s2.seed == 4 && s2.mqar.cfg.vocab == 100 && s2.test_examples == 10,
          "the described spec opens the same source");
    bm_data_close(&s2);
    bm_data_close(&s1);
}

/* train=N: every epoch holds exactly stream examples 0 .. N-1 (each once), in an order of its own,
 * the same for every batch size; the spec round-trips through describe. Sizes: 1, 2, odd, and
 * one past a power of two (the cycle walk's worst case). */
static void test_mqar_train_epochs(void)
{
    const uint64_t sizes[] = {1, 2, 7, 33, 257};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const uint64_t n = sizes[k];
        char spec[96];
        snprintf(spec, sizeof spec, "mqar:seq=16,pairs=2,seed=3,train=%llu", (unsigned long long)n);
        bm_data_source s;
        if (!check(bm_data_open(&s, spec, 64, 0) == 0 && s.train_examples == n, "data_open %s", spec)) continue;
        /* which stream example sits at each position: match its tokens against examples 0 .. n-1 */
        uint64_t *hash = calloc(n, sizeof *hash);
        int32_t ids[16], tg[16];
        for (uint64_t i = 0; i < n; i++) {
            bm_mqar_example(&s.mqar, 3, i, ids, tg);
            hash[i] = fnv(fnv(0xcbf29ce484222325ull, ids, 16), tg, 16);
        }
        int perm_ok = 1, orders_differ = n < 7, same_b = 1;
        int *seen = calloc(n, sizeof *seen), *first = calloc(n, sizeof *first);
        for (uint64_t e = 0; e < 3; e++) {
            memset(seen, 0, n * sizeof *seen);
            for (uint64_t j = 0; j < n; j++) {
                bm_data_batch(&s, e * n + j, 1, 16, ids, tg);
                const uint64_t h = fnv(fnv(0xcbf29ce484222325ull, ids, 16), tg, 16);
                int at = -1;
                for (uint64_t i = 0; i < n && at < 0; i++)
                    if (hash[i] == h) at = (int)i;
                if (at < 0 || seen[at]++) perm_ok = 0;
                if (e == 0) first[j] = at;
                else if (at != first[j]) orders_differ = 1;
            }
        }
        /* batch size does not matter: batch 1 of size 3 = positions 3, 4, 5 */
        int32_t b3[3 * 16], b3t[3 * 16];
        bm_data_batch(&s, 1, 3, 16, b3, b3t);
        for (int r = 0; r < 3; r++) {
            bm_data_batch(&s, 3 + (uint64_t)r, 1, 16, ids, tg);
            same_b &= !memcmp(ids, b3 + r * 16, sizeof ids) && !memcmp(tg, b3t + r * 16, sizeof tg);
        }
        check(perm_ok && orders_differ && same_b,
              "mqar train=%llu: each of 3 epochs is examples 0..%llu once each, orders differ between epochs, batch size "
              "irrelevant",
              (unsigned long long)n, (unsigned long long)n - 1);
        char d[256];
        bm_data_describe(&s, d, sizeof d);
        snprintf(spec, sizeof spec, ",train=%llu", (unsigned long long)n);
        check(strstr(d, spec) != NULL, "describe keeps train=: %s", d);
        free(hash), free(seen), free(first);
        bm_data_close(&s);
    }
}

static void test_mqar_errors(void)
{
    bm_mqar_config c;
    c = (bm_mqar_config){8192, 64, 0, 0.01};
    check_error(bm_mqar_check(&c), "pairs=0", "pairs=0", NULL);
    c = (bm_mqar_config){8192, 63, 4, 0.01};
    check_error(bm_mqar_check(&c), "odd seq", "seq=63", "even", NULL);
    c = (bm_mqar_config){8192, 30, 8, 0.01};
    check_error(bm_mqar_check(&c), "seq too short for the pairs", "seq=30", "too short", "pairs=8", "seq >= 32", NULL);
    c = (bm_mqar_config){17, 64, 8, 0.01};
    check_error(bm_mqar_check(&c), "vocab too small for the pairs", "vocab=17", "too small", "vocab >= 18", NULL);
    c = (bm_mqar_config){18, 64, 8, 0.01};
    check(bm_mqar_check(&c) == 0, "vocab=18 holds 8 pairs (keys 1..8)");
    c = (bm_mqar_config){8192, 64, 4, 0};
    check_error(bm_mqar_check(&c), "power_a=0", "power_a=0", "(0, 1]", NULL);
    c.power_a = 1.5;
    check_error(bm_mqar_check(&c), "power_a=1.5", "power_a=1.5", NULL);
    c.power_a = NAN;
    check_error(bm_mqar_check(&c), "power_a=nan", "power_a", NULL);

    bm_data_source s;
    struct {
        const char *spec, *word1, *word2;
    } bad[] = {
        {"mqar:pairs=4,colour=red", "unknown key \"colour\"", "mqar"},
        {"mqar:pairs=four", "pairs=four", "not a whole number"},
        {"mqar:train=-5", "train=-5", "mqar"},
        {"mqar:pairs=-1", "pairs=-1", "not a whole number"},
        {"mqar:seq=64,seq=32", "seq", "twice"},
        {"mqar:seq=", "seq=", "no value"},
        {"mqar:64", "\"64\"", "key=value"},
        {"mqar:power_a=abc", "power_a=abc", "not a number"},
        {"mqar:seed=3,test_seed=3", "test_seed=3", "equals seed"},
        {"mqar:vocab=9000", "vocab=9000", "model's vocabulary"},
        {"mqar:seq=30,pairs=8", "seq=30", "too short"},
        {"mqar:test=0", "test=0", "at least one"},
        {"mqar:vocab=99999999999", "vocab=99999999999", "too large"},
        {"markov:order=2", "unknown kind \"markov\"", "mqar or tokens"},
        {"", "empty", "tokens"},
        {"tokens:", "no training file", "tokens:PATH"},
        {"tokens:x.bin,shuffle=1", "unknown key \"shuffle\"", "train, val, seed"},
        {"tokens:/nonexistent/x.bin", "/nonexistent/x.bin", "cannot open"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_error(bm_data_open(&s, bad[i].spec, 8192, 1), bad[i].spec, bad[i].word1, bad[i].word2, NULL);
    check(bm_data_open(&s, "mqar", 8192, 1) == 0 && s.mqar.cfg.vocab == 8192 && s.mqar.cfg.seq == 64 &&
              s.mqar.cfg.pairs == 4 && bm_data_seq(&s) == 64,
          "\"mqar\" alone: Zoology's defaults, vocab from the model");
    bm_data_close(&s);
}

static void test_accuracy(void)
{
    int32_t tg[2 * 4] = {-1, 5, -1, 7, -1, -1, 3, 2};
    int32_t hit[2 * 4] = {1, 1, 1, 1, 1, 1, 1, 0}; /* hits at unscored positions must not count */
    bm_data_accuracy acc = {0};
    bm_data_accuracy_add(&acc, tg, hit, 2, 4);
    check(acc.scored == 4 && acc.correct == 3 && acc.examples == 2 && acc.examples_correct == 1,
          "accuracy: 3 of 4 scored positions, 1 of 2 examples fully right (got %llu/%llu, %llu/%llu)",
          (unsigned long long)acc.correct, (unsigned long long)acc.scored, (unsigned long long)acc.examples_correct,
          (unsigned long long)acc.examples);
}

/* ---------------------------------------------------------------------------------- token files */

static int write_raw(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static size_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

static void test_tokens_round_trip(void)
{
    enum { N = 1001 };
    uint32_t ids[N];
    for (int dt = 2; dt <= 4; dt += 2) {
        for (int i = 0; i < N; i++) ids[i] = dt == 2 ? (uint32_t)(i * 2654435761u) >> 16 : (uint32_t)(i * 2654435761u) >> 1;
        const char *p = tmp_path(0, dt == 2 ? "u16.bin" : "u32.bin");
        check(bm_tokens_write(p, dt, ids, N) == 0, "write %s", p);
        check(file_size(p) == 24 + (size_t)N * dt, "%s is 24 + %d * %d bytes", p, N, dt);
        uint8_t h[24];
        FILE *f = fopen(p, "rb");
        size_t got = f ? fread(h, 1, 24, f) : 0;
        if (f) fclose(f);
        check(got == 24 && !memcmp(h, "BMOJOTOK", 8) && h[8] == 1 && !h[9] && !h[10] && !h[11] && h[12] == dt && !h[13] &&
                  h[16] == (N & 0xff) && h[17] == (N >> 8) && !h[18] && !h[23],
              "%s: header bytes = magic, version 1, dtype %d, count %d, little-endian", p, dt, N);
        bm_tokens t;
        int st = bm_tokens_open(p, 0, &t);
        int same = st == 0 && t.count == N && t.dtype == dt;
        for (int i = 0; same && i < N; i++) same = bm_tokens_at(&t, (uint64_t)i) == ids[i];
        check(same, "%s reads back the same %d ids", p, N);
        if (!st) bm_tokens_close(&t);
    }
    for (int i = 0; i < 5; i++) ids[i] = (uint32_t)i;
    ids[3] = 70000;
    check_error(bm_tokens_write(tmp_path(0, "bad16.bin"), 2, ids, 5), "uint16 writer with id 70000", "70000",
                "position 3", NULL);
    check(access(tmp_path(0, "bad16.bin"), F_OK) != 0, "nothing written for the refused uint16 file");
}

static void test_tokens_windows(void)
{
    enum { N = 200 };
    uint32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (uint32_t)i;
    const char *p = tmp_path(0, "seq.bin");
    bm_tokens_write(p, 4, ids, N);
    bm_tokens t;
    check(bm_tokens_open(p, N, &t) == 0, "open %s with vocab %d", p, N);
    const int T = 13;
    int32_t x[T], y[T], x2[T], y2[T];
    int ok = 1, saw_first = 0, saw_last = 0;
    for (uint64_t i = 0; i < 5000 && ok; i++) {
        ok = bm_tokens_window(&t, 42, i, T, x, y) == 0;
        int s = x[0];
        saw_first |= s == 0;
        saw_last |= s == N - T - 1;
        ok = ok && s >= 0 && s + T <= N - 1;
        for (int j = 0; ok && j < T; j++) ok = x[j] == s + j && y[j] == s + j + 1;
    }
    check(ok, "windows: T + 1 consecutive tokens inside the file, targets = ids shifted by one");
    check(saw_first && saw_last, "windows: the starts reach both ends, 0 and count - T - 1");
    bm_tokens_window(&t, 42, 17, T, x, y);
    bm_tokens_window(&t, 42, 17, T, x2, y2);
    int same = !memcmp(x, x2, sizeof x);
    bm_tokens_window(&t, 43, 17, T, x2, y2);
    check(same && memcmp(x, x2, sizeof x) != 0, "windows: the same (seed, index) gives the same window, another seed another");
    check_error(bm_tokens_window(&t, 1, 0, N, x, y), "a window longer than the file", "200 tokens", "fewer than", NULL);

    /* evaluation windows: every token after the first scored exactly once, in order */
    const int Ts[] = {1, 7, 199, 200, 13};
    for (int k = 0; k < 5; k++) {
        int TT = Ts[k];
        uint64_t nw = bm_tokens_eval_windows(&t, TT);
        int32_t *ex = malloc((size_t)TT * 4), *ey = malloc((size_t)TT * 4);
        int next = 1, good = nw == (uint64_t)(N - 1 + TT - 1) / (uint64_t)TT;
        for (uint64_t w = 0; good && w < nw; w++) {
            good = bm_tokens_eval_window(&t, w, TT, ex, ey) == 0;
            for (int j = 0; good && j < TT; j++) {
                if (ey[j] == -1) continue;
                good = ey[j] == next && ex[j] == next - 1;
                next++;
            }
        }
        check(good && next == N, "eval windows T=%d: %llu windows score tokens 1..%d once each, in order", TT,
              (unsigned long long)nw, N - 1);
        free(ex);
        free(ey);
    }
    check_error(bm_tokens_eval_window(&t, 16, 13, x, y), "eval window past the last", "past the last", NULL);
    bm_tokens_close(&t);

    /* through the source: tokens:PATH,val=PATH; eval reads val, batches read train */
    uint32_t v[40];
    for (int i = 0; i < 40; i++) v[i] = 100 + (uint32_t)i;
    bm_tokens_write(tmp_path(1, "val.bin"), 2, v, 40);
    char spec[1200];
    snprintf(spec, sizeof spec, "tokens:%s,val=%s,seed=5", p, tmp_path(1, "val.bin"));
    bm_data_source s;
    int st = bm_data_open(&s, spec, 256, 0);
    check(st == 0 && s.has_val && bm_data_has_heldout(&s) && bm_data_seq(&s) == 0, "data_open %s", spec);
    if (!st) {
        int32_t b[3 * 8], bt[3 * 8];
        int rows;
        check(bm_data_eval_rows(&s, 8) == 5, "val: 39 targets in windows of 8: 5 rows");
        st = bm_data_eval_batch(&s, 1, 3, 8, b, bt, &rows);
        check(st == 0 && rows == 2 && b[0] == 124 && bt[0] == 125 && bt[2 * 8 - 1] == -1 && bt[2 * 8] == -1,
              "val eval batch 1 of 3 rows: windows 3 and 4 (the last one short), a padded row");
        st = bm_data_batch(&s, 2, 3, 8, b, bt);
        int32_t one[8], onet[8];
        bm_tokens_window(&s.train, 5, 7, 8, one, onet);
        check(st == 0 && b[8] < 200 && !memcmp(one, b + 8, sizeof one), "training batch 2 row 1 = window 7 of seed 5 of the train file");
        char d[1400];
        bm_data_describe(&s, d, sizeof d);
        check(strstr(d, "tokens:train=") && strstr(d, ",val=") && strstr(d, ",seed=5"), "describe: %s", d);
        bm_data_close(&s);
    }
}

static void test_tokens_bad(void)
{
    bm_tokens t;
    /* an id >= vocab: named with its position */
    uint32_t ids[50];
    for (int i = 0; i < 50; i++) ids[i] = (uint32_t)i;
    ids[37] = 5000;
    ids[45] = 6000;
    const char *p = tmp_path(0, "oov.bin");
    bm_tokens_write(p, 2, ids, 50);
    check_error(bm_tokens_open(p, 4096, &t), "id >= vocab", "token id 5000", "position 37", "vocabulary size 4096",
                "oov.bin", NULL);
    check(bm_tokens_open(p, 6001, &t) == 0, "the same file with vocab 6001 opens");
    bm_tokens_close(&t);
    ids[45] = 0x80000000u;
    bm_tokens_write(p, 4, ids, 50);
    check_error(bm_tokens_open(p, 0, &t), "id >= 2^31 without a vocabulary", "2147483648", "position 45", NULL);

    /* a valid file, then damaged copies */
    ids[37] = 1;
    ids[45] = 2;
    const char *good = tmp_path(1, "good.bin");
    bm_tokens_write(good, 4, ids, 50);
    uint8_t raw[24 + 50 * 4 + 8];
    FILE *f = fopen(good, "rb");
    size_t n = fread(raw, 1, sizeof raw, f);
    fclose(f);
    check(n == 24 + 200, "read back the good file");
    uint8_t bad[sizeof raw];
    const char *q = tmp_path(2, "bad.bin");

    write_raw(q, raw, 24 + 199);
    check_error(bm_tokens_open(q, 0, &t), "truncated ids", "truncated", "50 ids", "199 bytes", "bad.bin", NULL);
    write_raw(q, raw, 10);
    check_error(bm_tokens_open(q, 0, &t), "truncated header", "truncated", "10 bytes", "header", NULL);
    write_raw(q, raw, 0);
    check_error(bm_tokens_open(q, 0, &t), "empty file", "empty", "bad.bin", NULL);
    memcpy(bad, raw, n);
    bad[0] = 'X';
    write_raw(q, bad, n);
    check_error(bm_tokens_open(q, 0, &t), "wrong magic", "not a token file", "wrong magic", NULL);
    memcpy(bad, raw, n);
    bad[8] = 2;
    write_raw(q, bad, n);
    check_error(bm_tokens_open(q, 0, &t), "wrong version", "version 2", "reads version 1", NULL);
    memcpy(bad, raw, n);
    bad[12] = 8;
    write_raw(q, bad, n);
    check_error(bm_tokens_open(q, 0, &t), "wrong dtype", "dtype 8", "uint16", NULL);
    memcpy(bad, raw, n);
    bad[16] = 49; /* count 49, 50 ids of bytes */
    write_raw(q, bad, n);
    check_error(bm_tokens_open(q, 0, &t), "count below the size", "count mismatch", "49 ids", "200 bytes", NULL);
    memcpy(bad, raw, n);
    memset(bad + 16, 0xff, 8); /* a count whose size overflows */
    write_raw(q, bad, n);
    check_error(bm_tokens_open(q, 0, &t), "count 2^64 - 1", "truncated", NULL);
    memcpy(bad, raw, n);
    memset(bad + 16, 0, 8);
    write_raw(q, bad, 24);
    check_error(bm_tokens_open(q, 0, &t), "count 0", "no token ids", NULL);
    memcpy(bad, raw, n);
    write_raw(q, bad, n + 2);
    check_error(bm_tokens_open(q, 0, &t), "trailing bytes", "count mismatch", "202 bytes", NULL);

    check_error(bm_tokens_open(dir, 0, &t), "a folder", "folder", "not a regular file", NULL);
    const char *fifo = tmp_path(3, "fifo");
    if (mkfifo(fifo, 0600) == 0)
        check_error(bm_tokens_open(fifo, 0, &t), "a FIFO (no writer: must not block)", "FIFO", "token file", NULL);
    else
        check(0, "mkfifo %s", fifo);
    unlink(fifo);
    check_error(bm_tokens_open(tmp_path(3, "missing.bin"), 0, &t), "a missing file", "cannot open", "missing.bin", NULL);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_mqar_structure();
    test_mqar_power_law();
    test_mqar_determinism();
    test_mqar_train_epochs();
    test_mqar_errors();
    test_accuracy();
    test_tokens_round_trip();
    test_tokens_windows();
    test_tokens_bad();
    const char *names[] = {"u16.bin", "u32.bin", "seq.bin", "val.bin", "oov.bin", "good.bin", "bad.bin", "bad16.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(0, names[i]));
    rmdir(dir);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
