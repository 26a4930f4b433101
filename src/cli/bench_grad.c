/* bench_grad.c — `bmojo bench --grad`: the speed of a training pass. For each batch size (-b) and
 * sequence length (-p), one untimed warm-up, then -r timed repetitions of the loss alone (the
 * forward pass) and of the loss with gradients (forward + backward); the backward's time is the
 * difference. Tokens/s count B * T tokens per pass. With --profile, the kernels' device time per
 * token split into forward and backward (OpenCL profiling events) goes to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "runtime.h"

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Per kernel, forward and backward device time per token of one pass, most expensive first. The
 * profiled repetitions ran the forward twice (the loss alone, then with gradients) and the
 * backward once: `passes` is the number of loss-with-gradient passes. */
static void profile_split(bm_rt *rt, double tokens, int passes)
{
    bm_profile *p = &rt->profile;
    bm_profile_collect(p);
    uint64_t fwd = 0, bwd = 0;
    for (size_t i = 0; i < p->n_entries; i++) {
        if (!strncmp(p->entries[i].name, "forward:", 8)) fwd += p->entries[i].total_ns;
        else if (!strncmp(p->entries[i].name, "backward:", 9)) bwd += p->entries[i].total_ns;
    }
    for (size_t i = 1; i < p->n_entries; i++)
        for (size_t j = i; j > 0 && p->entries[j].total_ns > p->entries[j - 1].total_ns; j--) {
            bm_profile_entry t = p->entries[j];
            p->entries[j] = p->entries[j - 1];
            p->entries[j - 1] = t;
        }
    const double fwd_div = tokens * 2.0 * passes, bwd_div = tokens * passes;
    double f = (double)fwd / 1e3 / fwd_div, b = (double)bwd / 1e3 / bwd_div;
    fprintf(stderr, "profile: one pass's kernel time per token: forward %.3f us, backward %.3f us (%.2fx)\n", f, b,
            f > 0 ? b / f : 0.0);
    for (size_t i = 0; i < p->n_entries; i++)
        if (p->entries[i].count) {
            int is_fwd = !strncmp(p->entries[i].name, "forward:", 8);
            double div = is_fwd ? fwd_div : bwd_div, us = (double)p->entries[i].total_ns / 1e3 / div;
            fprintf(stderr, "  %-40s %7.1f launches %9.4f us/token %5.1f %%\n", p->entries[i].name,
                    (double)p->entries[i].count * tokens / div, us, f + b > 0 ? 100.0 * us / (f + b) : 0.0);
        }
    bm_profile_reset(p);
}

int bench_grad_run(bmojo_runtime *rt, bmojo_trainer *tr, const char *model_name, const int *batches, int nb,
                   const int *lengths, int nl, int reps, uint64_t seed, int profile, bench_format fmt,
                   const bench_env *env)
{
    bmojo_tensor_info emb;
    bmojo_trainer_tensor(tr, 0, &emb);
    int V = (int)emb.shape[0];
    uint64_t n_params = 0;
    for (int k = 0; k < bmojo_trainer_tensor_count(tr); k++) {
        bmojo_tensor_info ti;
        bmojo_trainer_tensor(tr, k, &ti);
        n_params += ti.numel;
    }
    if (fmt == BENCH_MD) {
        printf("device: %s | driver: %s | bmojo %s (build %s)\n\n", env->device, env->driver, env->version,
               env->build_commit);
        printf("| %-20s | %9s | %5s | %-10s | %22s | %12s | %12s | %9s |\n", "model", "params", "batch", "test",
               "fwd+bwd t/s", "forward ms", "backward ms", "bwd/fwd");
        printf("| -------------------- | --------: | ----: | ---------- | ---------------------: | -----------: | "
               "-----------: | --------: |\n");
    } else if (fmt == BENCH_JSON)
        printf("[");
    int rc = CLI_OK, first = 1;
    for (int bi = 0; bi < nb && rc == CLI_OK; bi++)
        for (int li = 0; li < nl && rc == CLI_OK; li++) {
            int B = batches[bi], T = lengths[li];
            size_t n = (size_t)B * (size_t)T;
            int32_t *ids = malloc(n * 4), *tg = malloc(n * 4);
            double *fs = calloc((size_t)reps, sizeof *fs), *gs = calloc((size_t)reps, sizeof *gs), loss = 0;
            if (!ids || !tg || !fs || !gs) {
                fprintf(stderr, "bmojo: out of host memory\n");
                rc = CLI_FAIL;
            }
            uint64_t rng = seed * 0x9E3779B97F4A7C15ull + n;
            for (size_t r = 0; rc == CLI_OK && r < n; r++) {
                ids[r] = (int32_t)(mix(&rng) % (uint64_t)V);
                tg[r] = (int32_t)(mix(&rng) % (uint64_t)V);
            }
            int st = 0;
            const char *doing = "the warm-up pass";
            if (rc == CLI_OK) st = bmojo_trainer_grad(tr, ids, tg, B, T, &loss);
            if (!st && profile) bm_profile_reset(&rt->profile);
            if (!st) doing = "a timed pass";
            for (int r = 0; rc == CLI_OK && st == 0 && r < reps; r++) {
                double t0 = cli_now();
                st = bmojo_trainer_loss(tr, ids, tg, B, T, &loss);
                double t1 = cli_now();
                if (!st) st = bmojo_trainer_grad(tr, ids, tg, B, T, &loss);
                double t2 = cli_now();
                fs[r] = t1 - t0;
                gs[r] = t2 - t1;
            }
            if (rc == CLI_OK && st) rc = cli_status_error(st, doing);
            if (rc == CLI_OK) {
                double fm, fsd, gm, gsd;
                double *tps = calloc((size_t)reps, sizeof *tps);
                for (int r = 0; tps && r < reps; r++) tps[r] = (double)n / gs[r];
                double tm = 0, tsd = 0;
                if (tps) bench_mean_std(tps, reps, &tm, &tsd);
                free(tps);
                bench_mean_std(fs, reps, &fm, &fsd);
                bench_mean_std(gs, reps, &gm, &gsd);
                double bwd = gm - fm;
                char test[32], ts[48], pm[32];
                snprintf(test, sizeof test, "grad%d", T);
                snprintf(ts, sizeof ts, "%.2f ± %.2f", tm, tsd);
                snprintf(pm, sizeof pm, "%.2f M", (double)n_params / 1e6);
                if (fmt == BENCH_MD)
                    printf("| %-20s | %9s | %5d | %-10s | %23s | %12.2f | %12.2f | %9.2f |\n", model_name, pm, B, test, ts,
                           fm * 1e3, bwd * 1e3, fm > 0 ? bwd / fm : 0.0);
                else {
                    if (fmt == BENCH_JSON) printf(first ? "\n  " : ",\n  ");
                    printf("{\"build_commit\": ");
                    bench_json_string(stdout, env->build_commit);
                    printf(", \"device\": ");
                    bench_json_string(stdout, env->device);
                    printf(", \"model_type\": ");
                    bench_json_string(stdout, model_name);
                    printf(", \"model_n_params\": %llu, \"n_batch\": %d, \"n_tokens\": %d, \"avg_ts\": %.6g, "
                           "\"stddev_ts\": %.6g, \"forward_ms\": %.6g, \"backward_ms\": %.6g, \"loss\": %.9g}",
                           (unsigned long long)n_params, B, T, tm, tsd, fm * 1e3, bwd * 1e3, loss);
                    if (fmt == BENCH_JSONL) printf("\n");
                }
                first = 0;
                fflush(stdout);
                if (profile) profile_split(rt, (double)n, reps);
            }
            free(ids);
            free(tg);
            free(fs);
            free(gs);
        }
    if (fmt == BENCH_JSON) printf(first ? "]\n" : "\n]\n");
    return rc;
}
