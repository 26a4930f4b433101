/* cmd_logits.c — `bmojo logits` (model contract section 5): reads input_ids ([T] or [B, T], I32 or
 * I64) from a safetensors file (ids_file.c), runs one prefill (or, with --decode, one token at a
 * time through the decoding path) and writes the F32 tensor `logits` ([T, V] or [B, T, V]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ids_file.h"
#include "safetensors.h"

static int usage(void)
{
    printf("usage: bmojo logits -m MODEL_DIR | --config CONFIG.yaml [--weight-seed N]\n"
           "                    -i IDS.safetensors -o OUT.safetensors [--decode] [--device SPEC]\n"
           "                    [--allow-unused-tensors]\n" CLI_MODEL_OPTIONS_HELP);
    return CLI_OK;
}

int cmd_logits(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *in = NULL, *out = NULL;
    int decode = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(&mo, argc, argv, &i);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-i")) {
            if (!(in = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "-o")) {
            if (!(out = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "--decode")) decode = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage();
        else return cli_usage_error("logits: unknown option '%s'", argv[i]);
    }
    if (!in || !out) return cli_usage_error("logits: -i IDS.safetensors and -o OUT.safetensors are required");

    cli_ids_file idf;
    int st = cli_ids_open(in, &idf);
    if (st) return cli_status_error(st, "reading the token ids");
    int32_t *ids = NULL;
    int B = idf.B, T = idf.T, ndim = idf.ndim, rc;
    bmojo_runtime *rt = NULL;
    bmojo_model *m = NULL;
    bmojo_state *s = NULL;
    float *logits = NULL, *step = NULL;
    int32_t *tok = NULL;
    rc = cli_open_model(&mo, &rt, &m);
    if (rc) goto done;
    bmojo_model_info info;
    bmojo_model_get_info(m, &info);
    size_t V = (size_t)info.vocab_size;
    if (!(ids = malloc((size_t)B * (size_t)T * sizeof *ids))) {
        fprintf(stderr, "bmojo: out of host memory for %d x %d token ids\n", B, T);
        rc = CLI_FAIL;
        goto done;
    }
    if ((st = cli_ids_read(&idf, info.vocab_size, ids))) {
        rc = cli_status_error(st, "reading the token ids");
        goto done;
    }
    st = bmojo_state_create(m, B, &s);
    if (st) {
        rc = cli_status_error(st, "creating the state");
        goto done;
    }
    logits = malloc((size_t)B * (size_t)T * V * sizeof *logits);
    step = malloc((size_t)B * V * sizeof *step);
    tok = malloc((size_t)B * sizeof *tok);
    if (!logits || !step || !tok) {
        fprintf(stderr, "bmojo: out of host memory for %d x %d x %zu logits\n", B, T, V);
        rc = CLI_FAIL;
        goto done;
    }
    if (!decode) st = bmojo_forward(m, s, ids, T, BMOJO_LOGITS_ALL, logits);
    for (int t = 0; decode && st == 0 && t < T; t++) {
        for (int b = 0; b < B; b++) tok[b] = ids[(size_t)b * (size_t)T + (size_t)t];
        st = bmojo_forward(m, s, tok, 1, BMOJO_LOGITS_LAST, step);
        for (int b = 0; st == 0 && b < B; b++)
            memcpy(logits + ((size_t)b * (size_t)T + (size_t)t) * V, step + (size_t)b * V, V * sizeof(float));
    }
    if (st) {
        rc = cli_status_error(st, decode ? "decoding" : "prefill");
        goto done;
    }
    bm_st_out o = {.name = "logits", .dtype = BM_DT_F32, .ndim = ndim + 1, .data = logits};
    if (ndim == 2) {
        o.shape[0] = B;
        o.shape[1] = T;
        o.shape[2] = (int64_t)V;
    } else {
        o.shape[0] = T;
        o.shape[1] = (int64_t)V;
    }
    const char *meta[] = {"mode", decode ? "decode" : "prefill", NULL};
    st = bm_st_write(out, &o, 1, meta);
    if (st) rc = cli_status_error(st, "writing the logits");
done:
    cli_ids_close(&idf);
    free(ids);
    free(logits);
    free(step);
    free(tok);
    bmojo_state_free(s);
    bmojo_model_free(m);
    bmojo_runtime_free(rt);
    return rc;
}
