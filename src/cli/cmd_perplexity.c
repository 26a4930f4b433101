/* cmd_perplexity.c — `bmojo perplexity`: a model's perplexity on a text file, as llama.cpp's
 * perplexity tool measures it: the file's tokens cut into consecutive chunks of N_CTX, each run
 * from an empty state, and only the second half of each chunk scored (every scored token has at
 * least N_CTX/2 tokens of context). Shows a progress bar on a terminal (chunk, running perplexity,
 * ETA), else the running perplexity per chunk as llama.cpp prints it ([1]5.1234,[2]...); then
 * PPL = exp(mean NLL) with its standard error (delta method: PPL * sd(NLL) / sqrt(n - 1)). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "file_read.h"
#include "tokenizer/unicode.h"

static int usage(void)
{
    printf("usage: bmojo perplexity (-m MODEL_DIR | --config CONFIG.yaml [--weight-seed N]) -f TEXT_FILE\n"
           "                        [-c N_CTX] [--chunks N] [--tokenizer FILE.json] [--device SPEC] [--json]\n"
           "  -f FILE       the text (its exact bytes; invalid UTF-8 replaced by U+FFFD)\n"
           "  -c N_CTX      tokens per chunk (default 512); the second half of each chunk is scored\n"
           "  --chunks N    at most N chunks (default: all whole chunks of the file)\n"
           "  --tokenizer FILE.json  the tokenizer (default MODEL_DIR/tokenizer.json)\n"
           "  --json        the result as one JSON object\n" CLI_MODEL_OPTIONS_HELP CLI_WEIGHTS_HELP);
    return CLI_OK;
}

int cmd_perplexity(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *file = NULL, *tok_file = NULL;
    long long n_ctx = 512, max_chunks = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(&mo, argc, argv, &i);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE;
        if (!strcmp(a, "-f")) file = v;
        else if (!strcmp(a, "--tokenizer")) tok_file = v;
        else if (!strcmp(a, "-c")) {
            if (cli_parse_int(a, v, 4, 1 << 20, &n_ctx)) return CLI_USAGE;
        } else if (!strcmp(a, "--chunks")) {
            if (cli_parse_int(a, v, 1, 1 << 30, &max_chunks)) return CLI_USAGE;
        } else
            return cli_usage_error("perplexity: unknown option '%s'", a);
    }
    if (!mo.model_dir == !mo.config) return cli_usage_error("perplexity: give exactly one of -m MODEL_DIR or --config CONFIG.yaml");
    if (!file) return cli_usage_error("perplexity: -f TEXT_FILE is required");
    char tpath[4096];
    bmojo_tokenizer *tk = NULL;
    int rc = cli_open_tokenizer(tok_file, mo.model_dir, 0, tpath, sizeof tpath, &tk), st;
    if (rc) return rc;
    if (!tk) return cli_usage_error("perplexity: no tokenizer (MODEL_DIR/tokenizer.json or --tokenizer FILE.json)");
    rc = CLI_FAIL;
    bmojo_runtime *rt = NULL;
    bmojo_model *m = NULL;
    bmojo_state *s = NULL;
    char *raw = NULL, *text = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    double *nll = NULL;
    size_t rn = 0, tn = 0, n = 0;
    if ((st = bm_read_file(file, (size_t)1 << 30, &raw, &rn))) {
        rc = cli_status_error(st, "reading the text");
        goto done;
    }
    if (bm_utf8_lossy(raw, rn, &text, &tn) || (st = bmojo_tokenizer_encode(tk, text, tn, 0, &ids, &n))) {
        rc = cli_status_error(st ? st : BMOJO_ENOMEM, "tokenizing the text");
        goto done;
    }
    long long chunks = (long long)n / n_ctx;
    if (max_chunks && chunks > max_chunks) chunks = max_chunks;
    if (chunks < 1) {
        rc = cli_usage_error("perplexity: %s gives %zu tokens, fewer than one chunk of %lld (-c)", file, n, n_ctx);
        goto done;
    }
    if ((rc = cli_open_model(&mo, &rt, &m))) goto done;
    rc = CLI_FAIL;
    bmojo_model_info info;
    bmojo_model_get_info(m, &info);
    if (cli_tokenizer_fits(tk, tpath, info.vocab_size)) goto done;
    const size_t V = (size_t)info.vocab_size, first = (size_t)n_ctx / 2, per = (size_t)n_ctx - 1 - first;
    logits = malloc((size_t)n_ctx * V * sizeof *logits);
    nll = malloc((size_t)chunks * per * sizeof *nll);
    if (!logits || !nll) {
        fprintf(stderr, "bmojo: out of host memory for %lld x %zu logits\n", n_ctx, V);
        goto done;
    }
    if ((st = bmojo_state_create(m, 1, &s))) {
        rc = cli_status_error(st, "creating the state");
        goto done;
    }
    if (!json)
        fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld, scoring the last %zu of each\n", n, chunks, n_ctx, per);
    size_t k = 0;
    double sum = 0, t0 = cli_now();
    const int tty = isatty(STDERR_FILENO);
    for (long long c = 0; c < chunks; c++) {
        const int32_t *chunk = ids + (size_t)c * (size_t)n_ctx;
        if ((st = bmojo_state_reset(s)) || (st = bmojo_forward(m, s, chunk, (int)n_ctx, BMOJO_LOGITS_ALL, logits))) {
            rc = cli_status_error(st, "evaluating");
            goto done;
        }
        /* -log softmax(logits[j])[chunk[j + 1]] for j = first .. n_ctx - 2, in double */
        for (size_t j = first; j + 1 < (size_t)n_ctx; j++) {
            const float *l = logits + j * V;
            float mx = l[0];
            for (size_t v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            double z = 0;
            for (size_t v = 0; v < V; v++) z += exp((double)l[v] - mx);
            nll[k] = log(z) + mx - l[chunk[j + 1]];
            sum += nll[k++];
        }
        if (!json && tty) {
            const double el = cli_now() - t0, eta = el / (double)(c + 1) * (double)(chunks - c - 1);
            const int w = 30, fill = (int)((double)w * (double)(c + 1) / (double)chunks);
            fprintf(stderr, "\r[%.*s%*s] chunk %lld/%lld  ppl %.4f  %.0f s left ", fill, "##############################",
                    w - fill, "", c + 1, chunks, exp(sum / (double)k), eta);
            if (c + 1 == chunks) fprintf(stderr, "\n");
        } else if (!json) {
            fprintf(stderr, "[%lld]%.4f,", c + 1, exp(sum / (double)k));
            if (c + 1 == chunks) fprintf(stderr, "\n");
        }
    }
    const double mean = sum / (double)k;
    double var = 0;
    for (size_t j = 0; j < k; j++) var += (nll[j] - mean) * (nll[j] - mean);
    var = k > 1 ? var / (double)(k - 1) : 0;
    const double ppl = exp(mean), se = k > 1 ? ppl * sqrt(var / (double)(k - 1)) : 0;
    if (json)
        printf("{\"tokens\": %zu, \"chunks\": %lld, \"n_ctx\": %lld, \"scored\": %zu, \"nll\": %.9g, \"ppl\": %.9g, "
               "\"ppl_se\": %.9g, \"seconds\": %.3f}\n",
               n, chunks, n_ctx, k, mean, ppl, se, cli_now() - t0);
    else
        printf("PPL = %.4f +/- %.4f (%zu tokens scored in %lld chunks of %lld, %.1f s)\n", ppl, se, k, chunks, n_ctx,
               cli_now() - t0);
    rc = CLI_OK;
done:
    free(raw), free(text), free(ids), free(logits), free(nll);
    bmojo_state_free(s);
    bmojo_model_free(m);
    bmojo_runtime_free(rt);
    bmojo_tokenizer_free(tk);
    return rc;
}
