/* cmd_generate.c — `bmojo generate`: prefill a prompt, then decode N tokens one at a time (greedy,
 * or temperature / top-k / top-p from a seed). With a tokenizer (MODEL_DIR/tokenizer.json, or
 * --tokenizer) the prompt is text and the output streams as text, each token printed as soon as
 * it completes a UTF-8 character, stopping at the tokenizer's end-of-sequence token; without one
 * (or with --ids) the prompt is token ids and the generated ids are printed, one line per sequence.
 * The device, the model, memory use and speed go to stderr; without -q the prompt's text is echoed
 * before the generated text, as llama.cpp does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sampler.h"

static int usage(void)
{
    printf("usage: bmojo generate (-m MODEL_DIR | --config CONFIG.yaml [--weight-seed N])\n"
           "                      (-p PROMPT | --ids IDS) [-n N] [-b B] [--temp T] [--top-k K] [--top-p P]\n"
           "                      [--seed S] [--tokenizer FILE.json] [--device SPEC] [--allow-unused-tensors] [-q]\n"
           "                      [--weights auto|f32|f16]\n"
           "  -p PROMPT   the prompt: text when the model has a tokenizer (MODEL_DIR/tokenizer.json or\n"
           "              --tokenizer; the tokenizer's special tokens are added, as Hugging Face does),\n"
           "              else token ids, comma-separated (e.g. 1,2,3)\n"
           "  --ids IDS   the prompt as token ids even when there is a tokenizer; ids are printed\n"
           "  --tokenizer FILE.json  a tokenizer for a --config model (or instead of MODEL_DIR's)\n"
           "  -n N        tokens to generate (default 32)\n"
           "  -b B        batch: B copies of the prompt decoded together (default 1)\n"
           "  --temp T    sampling temperature; 0 = greedy (default 0)\n"
           "  --top-k K   keep the K most likely tokens (0 = all)\n"
           "  --top-p P   keep the smallest set of tokens with probability mass P (default 1)\n"
           "  --seed S    sampling seed (default 42); sequence b uses S + b\n"
           "  -q          print only the generated text or ids\n"
           "With a tokenizer, generation stops early at the end-of-sequence token: the model config.json's\n"
           "eos_token_id, else the tokenizer's (</s>, <|endoftext|>, ...).\n"
           CLI_MODEL_OPTIONS_HELP CLI_WEIGHTS_HELP);
    return CLI_OK;
}

/* Streaming text: the prompt and the tokens so far are decoded together (decoders such as
 * SentencePiece's strip a leading space or join bytes across tokens) and the part past what was
 * printed goes out, except a trailing U+FFFD: the lossy decode of a character whose bytes have not
 * all arrived yet. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
    size_t printed; /* bytes of the decoded text already printed (the prompt's counted as printed) */
} text_stream;

static int stream_push(text_stream *ts, int32_t id)
{
    if (ts->n == ts->cap) {
        size_t cap = ts->cap * 2 + 64;
        int32_t *g = realloc(ts->ids, cap * sizeof *g);
        if (!g) return -1;
        ts->ids = g, ts->cap = cap;
    }
    ts->ids[ts->n++] = id;
    return 0;
}

/* echo: the prompt's text is printed too (before the first generated token's) */
static int stream_start(text_stream *ts, const bmojo_tokenizer *tk, const int32_t *prompt, int np, int echo)
{
    for (int k = 0; k < np; k++)
        if (stream_push(ts, prompt[k])) return BMOJO_ENOMEM;
    char *out = NULL;
    size_t on = 0;
    int st = bmojo_tokenizer_decode(tk, ts->ids, ts->n, &out, &on);
    ts->printed = echo ? 0 : on;
    free(out);
    return st;
}

static int stream_flush(text_stream *ts, const bmojo_tokenizer *tk, int final)
{
    char *out = NULL;
    size_t on = 0;
    int st = bmojo_tokenizer_decode(tk, ts->ids, ts->n, &out, &on);
    if (st) return st;
    size_t end = on;
    while (!final && end >= ts->printed + 3 && !memcmp(out + end - 3, "\xef\xbf\xbd", 3)) end -= 3;
    if (end > ts->printed) {
        fwrite(out + ts->printed, 1, end - ts->printed, stdout);
        fflush(stdout);
        ts->printed = end;
    }
    free(out);
    return 0;
}

static int stream_token(text_stream *ts, const bmojo_tokenizer *tk, int32_t id)
{
    if (stream_push(ts, id)) return BMOJO_ENOMEM;
    return stream_flush(ts, tk, 0);
}

static int stream_end(text_stream *ts, const bmojo_tokenizer *tk)
{
    int st = stream_flush(ts, tk, 1);
    printf("\n");
    fflush(stdout);
    return st;
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
    const char *prompt = NULL, *ids_arg = NULL, *tok_file = NULL;
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
        else if (!strcmp(a, "--ids")) ids_arg = v;
        else if (!strcmp(a, "--tokenizer")) tok_file = v;
        else if (!strcmp(a, "-n")) bad = cli_parse_int(a, v, 1, 1 << 24, &n_gen);
        else if (!strcmp(a, "-b")) bad = cli_parse_int(a, v, 1, 4096, &batch);
        else if (!strcmp(a, "--temp")) bad = cli_parse_float(a, v, 0, 100, &temp);
        else if (!strcmp(a, "--top-k")) bad = cli_parse_int(a, v, 0, 1 << 24, &top_k);
        else if (!strcmp(a, "--top-p")) bad = cli_parse_float(a, v, 1e-6, 1, &top_p);
        else if (!strcmp(a, "--seed")) bad = cli_parse_int(a, v, 0, (long long)1 << 62, &seed);
        else return cli_usage_error("generate: unknown option '%s'", a);
        if (bad) return CLI_USAGE;
    }
    if (!prompt == !ids_arg) return cli_usage_error("generate: give exactly one of -p PROMPT or --ids 1,2,3");
    bmojo_tokenizer *tk = NULL;
    char tpath[4096];
    int trc = cli_open_tokenizer(tok_file, mo.model_dir, 0, tpath, sizeof tpath, &tk);
    if (trc) return trc;
    const int text_mode = tk && prompt;
    int32_t *pids = NULL;
    int np = 0;
    if (text_mode) {
        if (!*prompt) {
            bmojo_tokenizer_free(tk);
            return cli_usage_error("-p: the prompt is empty");
        }
        size_t k = 0;
        int st = bmojo_tokenizer_encode(tk, prompt, strlen(prompt), 1, &pids, &k);
        if (st || k == 0) {
            bmojo_tokenizer_free(tk);
            free(pids);
            return st ? cli_status_error(st, "tokenizing the prompt") : cli_usage_error("-p: the prompt gives no tokens");
        }
        np = (int)k;
    } else if (parse_ids(prompt ? prompt : ids_arg, &pids, &np)) {
        bmojo_tokenizer_free(tk);
        return CLI_USAGE;
    }

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
    if ((rc = cli_tokenizer_fits(tk, tpath, info.vocab_size))) goto done;
    for (int k = 0; k < np; k++)
        if (pids[k] >= info.vocab_size) {
            fprintf(stderr, "bmojo: prompt token %d (id %d) is not in the model's vocabulary of %d\n", k, (int)pids[k],
                    info.vocab_size);
            rc = CLI_FAIL;
            goto done;
        }
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
    text_stream ts = {0};
    if (text_mode && B == 1 && (st = stream_start(&ts, tk, pids, np, !quiet))) {
        rc = cli_status_error(st, "decoding the prompt");
        goto done;
    }
    /* the end of sequence: the model's (config.json), else the tokenizer's; ids mode never stops */
    const int32_t eos = !text_mode ? -1 : info.eos_token_id >= 0 ? info.eos_token_id : bmojo_tokenizer_eos(tk);
    long long made = n_gen; /* tokens generated (fewer when every sequence reached EOS) */
    double t0 = cli_now();
    st = bmojo_forward(m, s, ids, np, BMOJO_LOGITS_LAST, logits);
    double t1 = cli_now();
    for (int k = 0; st == 0 && k < n_gen; k++) {
        int ended = eos >= 0;
        for (int b = 0; b < B; b++) {
            tok[b] = bm_sample(&samp[b], logits + (size_t)b * (size_t)info.vocab_size);
            gen[(size_t)b * (size_t)n_gen + (size_t)k] = tok[b];
            ended &= tok[b] == eos;
        }
        if (text_mode && B == 1 && !ended && (st = stream_token(&ts, tk, tok[0]))) break;
        if (ended) {
            made = k + 1;
            break;
        }
        if (k + 1 < n_gen) st = bmojo_forward(m, s, tok, 1, BMOJO_LOGITS_LAST, logits);
    }
    double t2 = cli_now();
    if (text_mode && B == 1 && !st) st = stream_end(&ts, tk);
    free(ts.ids);
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
                np, B, t1 - t0, (double)np * B / (t1 - t0), made - 1, B, t2 - t1,
                made > 1 ? (double)(made - 1) * B / (t2 - t1) : 0.0);
    }
    for (int b = 0; !text_mode && b < B; b++) {
        for (long long k = 0; k < made; k++) printf(k ? " %d" : "%d", gen[(size_t)b * (size_t)n_gen + (size_t)k]);
        printf("\n");
    }
    for (int b = 0; text_mode && B > 1 && b < B; b++) { /* a batch: each sequence's text after it ends */
        long long n = 0;
        while (n < made && gen[(size_t)b * (size_t)n_gen + (size_t)n] != eos) n++;
        char *out = NULL;
        size_t on = 0;
        if ((st = bmojo_tokenizer_decode(tk, gen + (size_t)b * (size_t)n_gen, (size_t)n, &out, &on))) {
            rc = cli_status_error(st, "decoding");
            break;
        }
        printf("[%d] ", b);
        fwrite(out, 1, on, stdout);
        printf("\n");
        free(out);
    }
done:
    bmojo_tokenizer_free(tk);
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
