/* cmd_eval.c — `bmojo eval`: a model's loss and perplexity on a token file (consecutive windows
 * that score each token once) or its accuracy on MQAR's test set, the same evaluation `bmojo
 * train` runs (bm_train_evaluate). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "eidetic_dump.h"
#include "train_run.h"

static int usage(void)
{
    printf("usage: bmojo eval -m MODEL_DIR | --config CONFIG.yaml [--weight-seed N] --data SPEC\n"
           "                  [-T N] [-b N] [--rows N] [--json] [--device SPEC]\n"
           "  --data SPEC  tokens:FILE.bin (its val= file when given, else FILE itself) or mqar:... (its test set)\n"
           "  -T, --seq N  tokens per window (default: MQAR's seq, else 256)\n"
           "  -b, --batch N  windows per pass (default 16)\n"
           "  --rows N     evaluate at most N windows or examples (default: all)\n"
           "  --json       one JSON object instead of the text line\n"
           "  --eidetic FILE  also write, per evaluated row and B'MOJO sublayer, the positions its eidetic\n"
           "               memory held at each chunk start (with MQAR's key, value and query positions) as\n"
           "               JSONL, and a summary line per sublayer (tools/plot_eidetic.py draws it)\n" CLI_MODEL_OPTIONS_HELP);
    return CLI_OK;
}

int cmd_eval(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *data = NULL, *eidetic = NULL;
    long long seq = 0, batch = 16, rows = 0;
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
        if (strcmp(a, "--data") && strcmp(a, "-T") && strcmp(a, "--seq") && strcmp(a, "-b") && strcmp(a, "--batch") &&
            strcmp(a, "--rows") && strcmp(a, "--eidetic"))
            return cli_usage_error("eval: unknown option '%s'", a);
        if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--eidetic")) eidetic = v;
        else if (!strcmp(a, "--rows")) {
            if (cli_parse_int(a, v, 1, (long long)1 << 50, &rows)) return CLI_USAGE;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (cli_parse_int(a, v, 1, 1 << 20, &batch)) return CLI_USAGE;
        } else if (cli_parse_int(a, v, 1, 1 << 24, &seq))
            return CLI_USAGE;
    }
    if (cli_refuse_f16_weights(&mo, "eval")) return CLI_USAGE;
    if (!mo.model_dir == !mo.config) return cli_usage_error("eval: give exactly one of -m MODEL_DIR or --config CONFIG.yaml");
    if (!data) return cli_usage_error("eval: --data SPEC is required (tokens:FILE.bin or mqar:...)");

    int rc = CLI_FAIL, st, data_open = 0;
    const char *doing = "opening the OpenCL device";
    bmojo_runtime *rt = NULL;
    bmojo_trainer *tr = NULL;
    bm_data_source src;
    if ((st = cli_open_runtime(mo.device, &rt))) goto fail;
    doing = mo.model_dir ? "loading the model" : "building the model from its config";
    st = mo.model_dir ? bmojo_trainer_load(rt, mo.model_dir, mo.load_flags, &tr)
                      : bmojo_trainer_random(rt, mo.config, mo.weight_seed ? mo.weight_seed : 1, &tr);
    if (st) goto fail;
    doing = "--data";
    if ((st = bm_data_open(&src, data, tr->cfg.vocab_size, 1))) goto fail;
    data_open = 1;
    const int fixed = bm_data_seq(&src);
    if (seq == 0) seq = fixed ? fixed : 256;
    if (fixed && seq != fixed) {
        rc = cli_usage_error("eval: -T %lld: the data fixes the sequence length at %d", seq, fixed);
        goto done;
    }
    bm_train_eval_info e;
    doing = "evaluating";
    if ((st = bm_train_evaluate(tr, &src, (int)batch, (int)seq, (uint64_t)rows, &e))) goto fail;
    char spec[BM_TRAIN_SPEC_MAX];
    bm_data_describe(&src, spec, sizeof spec);
    if (json)
        printf("{\"data\": \"%s\", \"seq\": %lld, \"rows\": %llu, \"scored\": %llu, \"loss\": %.9g, \"ppl\": %.9g, "
               "\"accuracy\": %.9g, \"exact\": %.9g}\n",
               spec, seq, (unsigned long long)e.rows, (unsigned long long)e.scored, e.loss, e.ppl, e.accuracy, e.exact);
    else
        printf("%s: %llu rows of %lld tokens, %llu scored: loss %.4f, perplexity %.3f, accuracy %.4f, exact %.4f\n", spec,
               (unsigned long long)e.rows, seq, (unsigned long long)e.scored, e.loss, e.ppl, e.accuracy, e.exact);
    if (eidetic) {
        doing = "--eidetic";
        char cmd[4096];
        cli_command_line(argc, argv, cmd, sizeof cmd);
        bmojo_device_desc dd;
        memset(&dd, 0, sizeof dd);
        bmojo_runtime_device(rt, &dd);
        if ((st = cli_eidetic_dump(tr, &src, (int)batch, (int)seq, (uint64_t)rows, eidetic, cmd, dd.name))) goto fail;
    }
    rc = CLI_OK;
    goto done;
fail:
    rc = cli_status_error(st, doing);
done:
    if (data_open) bm_data_close(&src);
    bmojo_trainer_free(tr);
    bmojo_runtime_free(rt);
    return rc;
}
