/* cmd_bench.c — `bmojo bench`: llama-bench-style throughput, latency and memory of a model.
 * Every combination of batch (-b), depth (-d) and test (-p prefill of N tokens, -n decoding of N
 * tokens one at a time) runs one untimed warm-up and -r timed repetitions; each repetition starts
 * from the same state: empty, or filled to the depth once (untimed, in chunks, no logits) and
 * saved, then restored before every repetition so repetitions do not drift in position.
 * `--ops` instead times the kernels one by one (bench_ops.c). Output: bench_output.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "runtime.h"

static int usage(void)
{
    printf("usage: bmojo bench (-m MODEL_DIR | --config CONFIG.yaml [--weight-seed N]) [options]\n"
           "       bmojo bench --ops [--ops-scale small|default] [--ops-filter TEXT] [options]\n"
           "  -p LIST       prefill tests: prompt lengths, comma-separated (default 512; 0 = none)\n"
           "  -n LIST       decoding tests: tokens generated one at a time (default 128; 0 = none)\n"
           "  -d LIST       depths: tokens already in the state before the test (default 0)\n"
           "  -b LIST       batch: sequences processed together; t/s counts all of them (default 1)\n"
           "  -r N          timed repetitions after one warm-up (default 5; --ops uses at least 5)\n"
           "  -o FORMAT     md (default), json (one array) or jsonl (one object per line)\n"
           "  --chunk N     tokens per forward call when filling the depth or prefilling (default 2048)\n"
           "  --seed S      seed of the random token ids (default 1)\n"
           "  --device SPEC OpenCL device: P:D or a part of its name\n"
           "  --grad        the training pass instead: forward + backward tokens/s for each -b and -p\n"
           "                (sequence length), and the forward / backward split (with --profile, per kernel)\n"
           "  --ops         time each kernel at fixed shapes against the measured copy bandwidth\n"
           "                and SGEMM rate of the device\n"
           "  --ops-scale S default (130M-scale shapes, T 2048) or small (T 256, for CI)\n"
           "  --ops-filter TEXT  only the ops whose name contains TEXT (the limits always run)\n"
           "  --profile     after each test, the device time of each kernel per token on stderr\n"
           "                (OpenCL profiling events; CLBlast's GEMMs are not included)\n"
           "  -v            progress on stderr\n"
           CLI_MODEL_OPTIONS_HELP CLI_WEIGHTS_HELP
           "The environment variable BMOJO_COMMIT, if set, is reported as build_commit.\n");
    return CLI_OK;
}

typedef struct {
    int n;
    int v[64];
} int_list;

/* A comma-separated list of integers in [lo, hi]; each element is checked like a single value. */
static int parse_list(const char *flag, const char *s, long long lo, long long hi, int_list *out)
{
    out->n = 0;
    if (!*s) {
        cli_usage_error("%s needs a comma-separated list of integers, got an empty value", flag);
        return -1;
    }
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item) {
            cli_usage_error("%s: '%s' is not a comma-separated list of integers", flag, s);
            return -1;
        }
        if (out->n == (int)(sizeof out->v / sizeof out->v[0])) {
            cli_usage_error("%s: more than %d values", flag, (int)(sizeof out->v / sizeof out->v[0]));
            return -1;
        }
        memcpy(item, p, len);
        item[len] = 0;
        long long v;
        if (cli_parse_int(flag, item, lo, hi, &v)) return -1;
        out->v[out->n++] = (int)v;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

/* splitmix64: small, seedable, good enough for token ids. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void random_ids(int32_t *ids, size_t n, int vocab, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rng_next(rng) % (uint64_t)vocab);
}

typedef struct {
    bmojo_model *m;
    bm_rt *rt;
    int profile;
    bmojo_model_info info;
    const char *model_filename;
    char model_type[160];            /* the model's name, and " F16" with f16 weights (llama-bench's type) */
    int reps, chunk, verbose;
    uint64_t seed;
    bench_writer *w;
} bench_ctx;

/* Feeds n tokens per sequence (ids: n chunks laid out one after the other, each [B, c]) in
 * chunks of at most `chunk`; logits of the last position only when `last_logits`. */
static int feed(bench_ctx *c, bmojo_state *s, const int32_t *ids, int n, int last_logits, float *logits)
{
    int B = bmojo_state_batch(s);
    for (int t = 0; t < n; t += c->chunk) {
        int len = n - t < c->chunk ? n - t : c->chunk;
        int mode = last_logits && t + len == n ? BMOJO_LOGITS_LAST : BMOJO_LOGITS_NONE;
        int st = bmojo_forward(c->m, s, ids + (size_t)B * (size_t)t, len, mode, mode ? logits : NULL);
        if (st) return st;
    }
    return 0;
}

/* Fills a fresh state of B sequences with `depth` random tokens and saves it (untimed setup). */
static int fill_depth(bench_ctx *c, int B, int depth, void **saved, size_t *saved_size)
{
    bmojo_state *s = NULL;
    uint64_t rng = c->seed ^ (0x5eedull * (uint64_t)(depth + 1)) ^ ((uint64_t)B << 40);
    int32_t *ids = malloc((size_t)B * (size_t)depth * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "bmojo: out of host memory\n");
        return CLI_FAIL;
    }
    random_ids(ids, (size_t)B * (size_t)depth, c->info.vocab_size, &rng);
    int st = bmojo_state_create(c->m, B, &s), rc = CLI_OK;
    double t0 = cli_now();
    if (st) rc = cli_status_error(st, "creating the state");
    else if ((st = feed(c, s, ids, depth, 0, NULL))) rc = cli_status_error(st, "filling the state to the depth");
    else if ((st = bmojo_state_save(s, saved, saved_size))) rc = cli_status_error(st, "saving the filled state");
    if (!rc && c->verbose)
        fprintf(stderr, "bench: filled %d x %d tokens in %.2f s (not timed)\n", B, depth, cli_now() - t0);
    bmojo_state_free(s);
    free(ids);
    return rc;
}

/* One test: n_prompt > 0 (prefill) or n_gen > 0 (decoding), at depth d with B sequences. */
/* The kernels' device time over the timed repetitions, per generated token (tg) or per prefill
 * (pp), most expensive first, against the measured wall time. */
static void profile_report(bench_ctx *c, const char *test, double units, double wall_s)
{
    bm_profile *p = &c->rt->profile;
    bm_profile_collect(p);
    uint64_t total = 0, launches = 0;
    for (size_t i = 0; i < p->n_entries; i++) total += p->entries[i].total_ns, launches += p->entries[i].count;
    for (size_t i = 1; i < p->n_entries; i++) /* insertion sort by time, descending */
        for (size_t j = i; j > 0 && p->entries[j].total_ns > p->entries[j - 1].total_ns; j--) {
            bm_profile_entry t = p->entries[j];
            p->entries[j] = p->entries[j - 1];
            p->entries[j - 1] = t;
        }
    fprintf(stderr, "profile %s: %.1f launches, %.1f us of kernel time, %.1f us of wall time\n", test,
            (double)launches / units, (double)total / 1e3 / units, wall_s * 1e6 / units);
    for (size_t i = 0; i < p->n_entries; i++)
        if (p->entries[i].count)
        fprintf(stderr, "  %-28s %7.2f launches %9.1f us  %5.1f %%\n", p->entries[i].name,
                (double)p->entries[i].count / units, (double)p->entries[i].total_ns / 1e3 / units,
                total ? 100.0 * (double)p->entries[i].total_ns / (double)total : 0.0);
    bm_profile_reset(p);
}

static int run_test(bench_ctx *c, int B, int depth, int n_prompt, int n_gen, const void *saved, size_t saved_size)
{
    int reps = c->reps, V = c->info.vocab_size, rc = CLI_OK, st = 0;
    int n = n_prompt ? n_prompt : n_gen;
    bmojo_state *s = NULL;
    bench_result r = {0};
    uint64_t rng = c->seed * 0x9E3779B97F4A7C15ull + (uint64_t)n * 131u + (uint64_t)depth * 7u + (uint64_t)B;
    int32_t *ids = malloc((size_t)B * (size_t)(n_prompt ? n_prompt : 1) * sizeof *ids);
    float *logits = malloc((size_t)B * (size_t)V * sizeof *logits);
    double *samples = calloc((size_t)reps * 2, sizeof *samples), ttft_sum = 0;
    if (!ids || !logits || !samples) {
        fprintf(stderr, "bmojo: out of host memory\n");
        rc = CLI_FAIL;
        goto done;
    }
    bench_iso_time(r.test_time, sizeof r.test_time);
    /* A fresh state per test so its scratch memory reflects this test only. */
    if ((st = bmojo_state_create(c->m, B, &s))) {
        rc = cli_status_error(st, "creating the state");
        goto done;
    }
    for (int rep = -1; rep < reps; rep++) { /* rep -1: warm-up, not counted */
        st = saved ? bmojo_state_restore(s, saved, saved_size) : bmojo_state_reset(s);
        if (st) {
            rc = cli_status_error(st, saved ? "restoring the filled state" : "resetting the state");
            goto done;
        }
        double t0, first = 0, t;
        if (n_prompt) {
            random_ids(ids, (size_t)B * (size_t)n_prompt, V, &rng);
            t0 = cli_now();
            st = feed(c, s, ids, n_prompt, 1, logits);
            t = cli_now() - t0;
            first = t;
        } else {
            random_ids(ids, (size_t)B, V, &rng);
            t0 = cli_now();
            for (int k = 0; k < n_gen && !st; k++) {
                st = bmojo_forward(c->m, s, ids, 1, BMOJO_LOGITS_LAST, logits);
                if (k == 0) first = cli_now() - t0;
                /* Greedy next token, as a decoder would pick one (host work is part of decoding). */
                for (int b = 0; b < B && !st; b++) {
                    const float *lb = logits + (size_t)b * (size_t)V;
                    int best = 0;
                    for (int v = 1; v < V; v++)
                        if (lb[v] > lb[best]) best = v;
                    ids[b] = best;
                }
            }
            t = cli_now() - t0;
        }
        if (st) {
            rc = cli_status_error(st, n_prompt ? "prefilling" : "decoding");
            goto done;
        }
        /* Each repetition must run exactly the tokens it is credited with, from the depth. */
        if (bmojo_state_position(s) != (int64_t)depth + n) {
            fprintf(stderr, "bmojo: bench: the state is at position %lld after the test, expected %d + %d\n",
                    (long long)bmojo_state_position(s), depth, n);
            rc = CLI_FAIL;
            goto done;
        }
        if (t <= 0) t = 1e-9; /* clock granularity: keep t/s finite */
        if (c->verbose)
            fprintf(stderr, "bench: %s%d d%d b%d %s: %.3f s\n", n_prompt ? "pp" : "tg", n, depth, B,
                    rep < 0 ? "warm-up" : "rep", t);
        if (rep < 0 && c->profile) bm_profile_reset(&c->rt->profile); /* profile the timed runs only */
        if (rep >= 0) {
            samples[rep] = t * 1e9;
            samples[reps + rep] = (double)B * (double)n / t;
            ttft_sum += first;
        }
    }
    bmojo_state_memory mem;
    if ((st = bmojo_state_get_memory(s, &mem))) {
        rc = cli_status_error(st, "reading the state memory");
        goto done;
    }
    r.model_filename = c->model_filename;
    r.model_type = c->model_type;
    r.model_size = c->info.weight_bytes;
    r.model_n_params = c->info.n_params;
    r.n_batch = B;
    r.n_prompt = n_prompt;
    r.n_gen = n_gen;
    r.n_depth = depth;
    r.n_samples = reps;
    r.samples_ns = samples;
    r.samples_ts = samples + reps;
    bench_mean_std(r.samples_ns, reps, &r.avg_ns, &r.stddev_ns);
    bench_mean_std(r.samples_ts, reps, &r.avg_ts, &r.stddev_ts);
    r.ttft_ms = ttft_sum / reps * 1e3;
    r.mem_weights = c->info.weight_bytes;
    r.mem_attention_kv = mem.attention_kv;
    r.mem_eidetic = mem.eidetic;
    r.mem_ssm = mem.ssm;
    r.mem_scratch = mem.scratch;
    bench_model_row(c->w, &r);
    if (c->profile) {
        char test[64];
        snprintf(test, sizeof test, "%s%d @ d%d, batch %d (per %s)", n_prompt ? "pp" : "tg", n, depth, B,
                 n_prompt ? "prefill" : "token");
        double total_s = 0;
        for (int i = 0; i < reps; i++) total_s += samples[i] * 1e-9;
        double units = n_prompt ? (double)reps : (double)reps * n_gen;
        profile_report(c, test, units, total_s);
    }
done:
    bmojo_state_free(s);
    free(ids);
    free(logits);
    free(samples);
    return rc;
}

static void env_fill(bench_env *env, bmojo_runtime *rt)
{
    const char *commit = getenv("BMOJO_COMMIT");
    env->build_commit = commit && *commit ? commit : bmojo_build_commit();
    env->version = bmojo_version();
    bmojo_device_desc dd;
    if (bmojo_runtime_device(rt, &dd) == 0) {
        snprintf(env->device, sizeof env->device, "%s", dd.name);
        snprintf(env->driver, sizeof env->driver, "%s %s", dd.platform_name, dd.driver_version);
    } else {
        snprintf(env->device, sizeof env->device, "unknown");
        snprintf(env->driver, sizeof env->driver, "unknown");
    }
}

/* --grad: a trainer instead of a model (bench_grad.c). */
static int bench_grad(const cli_model_opts *mo, const int_list *lengths, const int_list *batches, int reps, uint64_t seed,
                      int profile, bench_format fmt)
{
    int_list T = {0};
    for (int i = 0; i < lengths->n; i++)
        if (lengths->v[i] > 0) T.v[T.n++] = lengths->v[i];
    if (T.n == 0) return cli_usage_error("bench --grad: -p lists the sequence lengths; none is > 0");
    if (!mo->model_dir == !mo->config) return cli_usage_error("give exactly one of -m MODEL_DIR or --config CONFIG.yaml");
    bmojo_runtime *rt = NULL;
    bmojo_trainer *tr = NULL;
    int st = cli_open_runtime(mo->device, &rt);
    if (st) return cli_status_error(st, "opening the OpenCL device");
    st = mo->model_dir ? bmojo_trainer_load(rt, mo->model_dir, mo->load_flags, &tr)
                       : bmojo_trainer_random(rt, mo->config, mo->weight_seed ? mo->weight_seed : 1, &tr);
    if (!st && profile && !rt->profile.enabled) st = bm_runtime_set_profiling(rt, 1);
    int rc = CLI_OK;
    if (st) rc = cli_status_error(st, mo->model_dir ? "loading the model for training" : "building the model from its config");
    else {
        bench_env env;
        env_fill(&env, rt);
        const char *name = mo->model_dir ? mo->model_dir : mo->config;
        rc = bench_grad_run(rt, tr, name, batches->v, batches->n, T.v, T.n, reps, seed, profile, fmt, &env);
    }
    bmojo_trainer_free(tr);
    bmojo_runtime_free(rt);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    cli_model_opts mo = {0};
    int_list pp = {1, {512}}, tg = {1, {128}}, depths = {1, {0}}, batches = {1, {1}};
    long long reps = 5, seed = 1, chunk = 2048;
    bench_format fmt = BENCH_MD;
    int ops = 0, grad = 0, ops_small = 0, verbose = 0, profile = 0;
    const char *ops_filter = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(&mo, argc, argv, &i);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        if (!strcmp(a, "--ops")) {
            ops = 1;
            continue;
        }
        if (!strcmp(a, "--grad")) {
            grad = 1;
            continue;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
            continue;
        }
        if (!strcmp(a, "--profile")) {
            profile = 1;
            continue;
        }
        if (strcmp(a, "-p") && strcmp(a, "-n") && strcmp(a, "-d") && strcmp(a, "-b") && strcmp(a, "-r") &&
            strcmp(a, "-o") && strcmp(a, "--seed") && strcmp(a, "--chunk") && strcmp(a, "--ops-scale") &&
            strcmp(a, "--ops-filter"))
            return cli_usage_error("bench: unknown option '%s' (see bmojo bench --help)", a);
        if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE;
        int bad = 0;
        if (!strcmp(a, "-p")) bad = parse_list(a, v, 0, 1 << 20, &pp);
        else if (!strcmp(a, "-n")) bad = parse_list(a, v, 0, 1 << 20, &tg);
        else if (!strcmp(a, "-d")) bad = parse_list(a, v, 0, 1 << 24, &depths);
        else if (!strcmp(a, "-b")) bad = parse_list(a, v, 1, 4096, &batches);
        else if (!strcmp(a, "-r")) bad = cli_parse_int(a, v, 1, 100000, &reps);
        else if (!strcmp(a, "--seed")) bad = cli_parse_int(a, v, 0, (long long)1 << 62, &seed);
        else if (!strcmp(a, "--chunk")) bad = cli_parse_int(a, v, 1, 1 << 20, &chunk);
        else if (!strcmp(a, "-o")) {
            if (!strcmp(v, "md")) fmt = BENCH_MD;
            else if (!strcmp(v, "json")) fmt = BENCH_JSON;
            else if (!strcmp(v, "jsonl")) fmt = BENCH_JSONL;
            else return cli_usage_error("-o: unknown output format '%s' (expected md, json or jsonl)", v);
        } else if (!strcmp(a, "--ops-filter")) {
            ops_filter = v;
        } else { /* --ops-scale */
            if (!strcmp(v, "small")) ops_small = 1;
            else if (!strcmp(v, "default")) ops_small = 0;
            else return cli_usage_error("--ops-scale: unknown scale '%s' (expected small or default)", v);
        }
        if (bad) return CLI_USAGE;
    }

    bench_env env;
    bench_writer w;
    if (ops) {
        bmojo_runtime *rt = NULL;
        int st = cli_open_runtime(mo.device, &rt);
        if (st) return cli_status_error(st, "opening the OpenCL device");
        env_fill(&env, rt);
        bench_writer_init(&w, stdout, fmt, &env);
        int rc = bench_ops_run(rt, ops_small, ops_filter, reps < 5 ? 5 : (int)reps, (uint64_t)seed, &w, verbose);
        bmojo_runtime_free(rt);
        return rc;
    }

    if (ops && grad) return cli_usage_error("bench: --ops and --grad are separate benchmarks; give one");
    if (grad && cli_refuse_f16_weights(&mo, "bench --grad")) return CLI_USAGE;
    if (grad) return bench_grad(&mo, &pp, &batches, (int)reps, (uint64_t)seed, profile, fmt);

    int any = 0;
    for (int i = 0; i < pp.n; i++) any |= pp.v[i] > 0;
    for (int i = 0; i < tg.n; i++) any |= tg.v[i] > 0;
    if (!any) return cli_usage_error("bench: -p and -n are both 0, nothing to measure");

    bmojo_runtime *rt = NULL;
    bmojo_model *m = NULL;
    int rc = cli_open_model(&mo, &rt, &m);
    if (rc) return rc;
    env_fill(&env, rt);
    bench_writer_init(&w, stdout, fmt, &env);
    if (profile && !rt->profile.enabled) {
        int st = bm_runtime_set_profiling(rt, 1);
        if (st) {
            bmojo_model_free(m);
            bmojo_runtime_free(rt);
            return cli_status_error(st, "bench --profile");
        }
    }
    bench_ctx c = {.m = m, .rt = rt, .profile = profile, .model_filename = mo.model_dir ? mo.model_dir : mo.config, .reps = (int)reps,
                   .chunk = (int)chunk, .verbose = verbose, .seed = (uint64_t)seed, .w = &w};
    bmojo_model_get_info(m, &c.info);
    snprintf(c.model_type, sizeof c.model_type, "%s%s", c.info.name, c.info.weights_f16 ? " F16" : "");
    bench_model_begin(&w);
    for (int bi = 0; bi < batches.n && !rc; bi++) {
        int B = batches.v[bi];
        for (int di = 0; di < depths.n && !rc; di++) {
            int d = depths.v[di];
            void *saved = NULL;
            size_t saved_size = 0;
            if (d > 0) rc = fill_depth(&c, B, d, &saved, &saved_size);
            for (int i = 0; i < pp.n && !rc; i++)
                if (pp.v[i] > 0) rc = run_test(&c, B, d, pp.v[i], 0, saved, saved_size);
            for (int i = 0; i < tg.n && !rc; i++)
                if (tg.v[i] > 0) rc = run_test(&c, B, d, 0, tg.v[i], saved, saved_size);
            free(saved);
        }
    }
    bench_model_end(&w);
    bmojo_model_free(m);
    bmojo_runtime_free(rt);
    return rc;
}
