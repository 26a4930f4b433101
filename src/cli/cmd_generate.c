/* cmd_generate.c — `bmojo generate`: prefill a prompt of token ids, then decode N tokens one at a
 * time (greedy, or temperature / top-k / top-p from a seed). Prints the device, the model, memory
 * use and speed on stderr, and the generated ids on stdout (one line per sequence). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sampler.h"

static int usage(void)
{
    printf("usage: bmojo generate (-m MODEL_DIR | --config CONFIG.yaml [--weight-seed N])\n"
           "                      -p IDS [-n N] [-b B] [--temp T] [--top-k K] [--top-p P] [--seed S]\n"
           "                      [--device SPEC] [--allow-unused-tensors] [-q]\n"
           "  -p IDS      prompt token ids, comma-separated (e.g. 1,2,3)\n"
           "  -n N        tokens to generate (default 32)\n"
           "  -b B        batch: B copies of the prompt decoded together (default 1)\n"
           "  --temp T    sampling temperature; 0 = greedy (default 0)\n"
           "  --top-k K   keep the K most likely tokens (0 = all)\n"
           "  --top-p P   keep the smallest set of tokens with probability mass P (default 1)\n"
           "  --seed S    sampling seed (default 42); sequence b uses S + b\n"
           "  -q          print only the generated ids\n" CLI_MODEL_OPTIONS_HELP);
    return CLI_OK;
}

static int parse_ids(const char *s, int32_t **out, int *n)
{
    int cap = 16, cnt = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return cli_usage_error("out of memory");
    if (!*s) {
        free(ids);
        return cli_usage_error("-p: the prompt is empty");
    }
    /* Every element must be a number: after a comma another id must follow, so "1,2," and
     * "1,,2" are refused rather than read as shorter prompts. */
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p && (*p == ',' || !*p)) {
            free(ids);
            return cli_usage_error("-p: '%s' has an empty element at position %d (a stray comma?)", s, cnt + 1);
        }
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return cli_usage_error("-p: '%s' is not a comma-separated list of non-negative token ids", s);
        }
        if (cnt == cap) {
            int32_t *g = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            if (!g) {
                free(ids);
                return cli_usage_error("out of memory");
            }
            ids = g;
        }
        ids[cnt++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    *out = ids;
    *n = cnt;
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *prompt = NULL;
    long long n_gen = 32, batch = 1, top_k = 0, seed = 42;
    double temp = 0, top_p = 1;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(&mo, argc, argv, &i);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        if (!strcmp(a, "-q")) {
            quiet = 1;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE;
        int bad = 0;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "-n")) bad = cli_parse_int(a, v, 1, 1 << 24, &n_gen);
        else if (!strcmp(a, "-b")) bad = cli_parse_int(a, v, 1, 4096, &batch);
        else if (!strcmp(a, "--temp")) bad = cli_parse_float(a, v, 0, 100, &temp);
        else if (!strcmp(a, "--top-k")) bad = cli_parse_int(a, v, 0, 1 << 24, &top_k);
        else if (!strcmp(a, "--top-p")) bad = cli_parse_float(a, v, 1e-6, 1, &top_p);
        else if (!strcmp(a, "--seed")) bad = cli_parse_int(a, v, 0, (long long)1 << 62, &seed);
        else return cli_usage_error("generate: unknown option '%s'", a);
        if (bad) return CLI_USAGE;
    }
    if (!prompt) return cli_usage_error("generate: a prompt is required (-p 1,2,3)");
    int32_t *pids = NULL;
    int np = 0;
    if (parse_ids(prompt, &pids, &np)) return CLI_USAGE;

    int B = (int)batch, rc = CLI_OK, st = 0;
    bmojo_runtime *rt = NULL;
    bmojo_model *m = NULL;
    bmojo_state *s = NULL;
    bm_sampler *samp = calloc((size_t)B, sizeof *samp);
    int32_t *ids = malloc((size_t)B * (size_t)np * sizeof *ids), *tok = malloc((size_t)B * sizeof *tok);
    int32_t *gen = malloc((size_t)B * (size_t)n_gen * sizeof *gen);
    float *logits = NULL;
    if (!samp || !ids || !tok || !gen) {
        fprintf(stderr, "bmojo: out of host memory\n");
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = cli_open_model(&mo, &rt, &m))) goto done;
    bmojo_model_info info;
    bmojo_model_get_info(m, &info);
    /* the state first: its memory budget names the real cost of a large batch */
    if ((st = bmojo_state_create(m, B, &s))) {
        rc = cli_status_error(st, "creating the state");
        goto done;
    }
    for (int b = 0; b < B; b++) memcpy(ids + (size_t)b * (size_t)np, pids, (size_t)np * sizeof *ids);
    for (int b = 0; b < B; b++)
        if (bm_sampler_init(&samp[b], info.vocab_size, (float)temp, (int)top_k, (float)top_p, (uint64_t)seed + (uint64_t)b)) {
            fprintf(stderr, "bmojo: out of host memory for the samplers of %d sequences of %d words\n", B, info.vocab_size);
            rc = CLI_FAIL;
            goto done;
        }
    logits = malloc((size_t)B * (size_t)info.vocab_size * sizeof *logits);
    if (!logits) {
        fprintf(stderr, "bmojo: out of host memory for %d x %d logits\n", B, info.vocab_size);
        rc = CLI_FAIL;
        goto done;
    }
    if (!quiet) {
        bmojo_device_desc dd;
        bmojo_runtime_device(rt, &dd);
        char buf[8192];
        bmojo_model_describe(m, buf, sizeof buf);
        fprintf(stderr, "device: %s (%s, driver %s)\n", dd.name, dd.platform_name, dd.driver_version);
        fprintf(stderr, "model:  %s", buf);
    }
    double t0 = cli_now();
    st = bmojo_forward(m, s, ids, np, BMOJO_LOGITS_LAST, logits);
    double t1 = cli_now();
    for (int k = 0; st == 0 && k < n_gen; k++) {
        for (int b = 0; b < B; b++) {
            tok[b] = bm_sample(&samp[b], logits + (size_t)b * (size_t)info.vocab_size);
            gen[(size_t)b * (size_t)n_gen + (size_t)k] = tok[b];
        }
        if (k + 1 < n_gen) st = bmojo_forward(m, s, tok, 1, BMOJO_LOGITS_LAST, logits);
    }
    double t2 = cli_now();
    if (st) {
        rc = cli_status_error(st, "generating");
        goto done;
    }
    if (!quiet) {
        bmojo_state_memory mem;
        bmojo_state_get_memory(s, &mem);
        char w[32], kv[32], e[32], ssm[32], sc[32];
        fprintf(stderr, "memory: weights %s, attention K/V %s, eidetic %s, SSM %s, scratch %s\n",
                cli_bytes(info.weight_bytes, w, sizeof w), cli_bytes(mem.attention_kv, kv, sizeof kv),
                cli_bytes(mem.eidetic, e, sizeof e), cli_bytes(mem.ssm, ssm, sizeof ssm),
                cli_bytes(mem.scratch, sc, sizeof sc));
        fprintf(stderr, "speed:  prefill %d x %d tokens in %.3f s (%.1f tokens/s), decode %lld x %d tokens in %.3f s "
                        "(%.1f tokens/s)\n",
                np, B, t1 - t0, (double)np * B / (t1 - t0), n_gen - 1, B, t2 - t1,
                n_gen > 1 ? (double)(n_gen - 1) * B / (t2 - t1) : 0.0);
    }
    for (int b = 0; b < B; b++) {
        for (long long k = 0; k < n_gen; k++) printf(k ? " %d" : "%d", gen[(size_t)b * (size_t)n_gen + (size_t)k]);
        printf("\n");
    }
done:
    for (int b = 0; samp && b < B; b++) bm_sampler_free(&samp[b]);
    free(samp);
    free(pids);
    free(ids);
    free(tok);
    free(gen);
    free(logits);
    bmojo_state_free(s);
    bmojo_model_free(m);
    bmojo_runtime_free(rt);
    return rc;
}
