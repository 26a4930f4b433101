/* cmd_logits.c — `bmojo logits` (model contract section 5): reads input_ids ([T] or [B, T], I32 or
 * I64) from a safetensors file (ids_file.c), runs one prefill (or, with --decode, one token at a
 * time through the decoding path) and writes the F32 tensor `logits` ([T, V] or [B, T, V]) chunk
 * by chunk, so neither the host nor the device holds more than one chunk of it; the file appears
 * only once complete (written to a temporary name, fsynced, renamed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ids_file.h"
#include "safetensors.h"

/* Host memory for one chunk of output logits. */
#define LOGITS_CHUNK_BYTES ((size_t)64 << 20)

static int usage(void)
{
    printf("usage: bmojo logits -m MODEL_DIR | --config CONFIG.yaml [--weight-seed N]\n"
           "                    -i IDS.safetensors -o OUT.safetensors [--decode] [--device SPEC]\n"
           "                    [--chunk N] [--allow-unused-tensors] [--weights auto|f32|f16]\n"
           "  --chunk N   positions computed and written per step (default: 64 MiB of logits)\n" CLI_MODEL_OPTIONS_HELP
           CLI_WEIGHTS_HELP);
    return CLI_OK;
}

int cmd_logits(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *in = NULL, *out = NULL;
    int decode = 0;
    long long chunk_arg = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(&mo, argc, argv, &i);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-i")) {
            if (!(in = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "-o")) {
            if (!(out = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "--chunk")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_parse_int("--chunk", v, 1, 1 << 22, &chunk_arg)) return CLI_USAGE;
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
    float *chunk = NULL, *step = NULL;
    int32_t *chunk_ids = NULL;
    bm_st_writer w;
    memset(&w, 0, sizeof w);
    w.af.fd = -1;
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
    /* The output goes out chunk by chunk: Tc positions of every sequence at a time, so host
     * memory stays at LOGITS_CHUNK_BYTES whatever T is (at least one position). */
    size_t row_bytes = (size_t)B * V * sizeof(float);
    int Tc = row_bytes >= LOGITS_CHUNK_BYTES ? 1 : (int)(LOGITS_CHUNK_BYTES / row_bytes);
    if (chunk_arg) Tc = (int)chunk_arg;
    if (Tc > T) Tc = T;
    chunk = malloc((size_t)Tc * row_bytes);
    step = malloc(row_bytes);
    chunk_ids = malloc((size_t)B * (size_t)Tc * sizeof *chunk_ids);
    if (!chunk || !step || !chunk_ids) {
        fprintf(stderr, "bmojo: out of host memory for %d x %d x %zu logits\n", B, Tc, V);
        rc = CLI_FAIL;
        goto done;
    }
    bm_st_out o = {.name = "logits", .dtype = BM_DT_F32, .ndim = ndim + 1};
    if (ndim == 2) {
        o.shape[0] = B;
        o.shape[1] = T;
        o.shape[2] = (int64_t)V;
    } else {
        o.shape[0] = T;
        o.shape[1] = (int64_t)V;
    }
    const char *meta[] = {"mode", decode ? "decode" : "prefill", NULL};
    st = bm_st_writer_open(&w, out, &o, 1, meta);
    if (st) {
        rc = cli_status_error(st, "writing the logits");
        goto done;
    }
    const char *doing = decode ? "decoding" : "prefill";
    for (int t0 = 0; st == 0 && t0 < T; t0 += Tc) {
        int n = T - t0 < Tc ? T - t0 : Tc;
        /* chunk: [B, n, V] */
        if (!decode) {
            for (int b = 0; b < B; b++)
                memcpy(chunk_ids + (size_t)b * (size_t)n, ids + (size_t)b * (size_t)T + (size_t)t0, (size_t)n * 4);
            st = bmojo_forward(m, s, chunk_ids, n, BMOJO_LOGITS_ALL, chunk);
        }
        for (int t = 0; decode && st == 0 && t < n; t++) {
            for (int b = 0; b < B; b++) chunk_ids[b] = ids[(size_t)b * (size_t)T + (size_t)(t0 + t)];
            st = bmojo_forward(m, s, chunk_ids, 1, BMOJO_LOGITS_LAST, step);
            for (int b = 0; st == 0 && b < B; b++)
                memcpy(chunk + ((size_t)b * (size_t)n + (size_t)t) * V, step + (size_t)b * V, V * sizeof(float));
        }
        if (st) break;
        doing = "writing the logits";
        for (int b = 0; st == 0 && b < B; b++)
            st = bm_st_writer_put(&w, 0, ((size_t)b * (size_t)T + (size_t)t0) * V * sizeof(float),
                                  chunk + (size_t)b * (size_t)n * V, (size_t)n * V * sizeof(float));
        if (!st) doing = decode ? "decoding" : "prefill";
    }
    if (!st) {
        doing = "writing the logits";
        st = bm_st_writer_commit(&w);
    }
    if (st) rc = cli_status_error(st, doing);
done:
    bm_st_writer_abort(&w); /* nothing after a commit; the temporary file after a failure */
    cli_ids_close(&idf);
    free(ids);
    free(chunk);
    free(step);
    free(chunk_ids);
    bmojo_state_free(s);
    bmojo_model_free(m);
    bmojo_runtime_free(rt);
    return rc;
}
