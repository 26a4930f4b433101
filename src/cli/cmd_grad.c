/* cmd_grad.c — `bmojo grad` (model contract section 6): the loss of a batch and the gradient of
 * every checkpoint tensor, written to a safetensors file as `loss` (F32 [1]) and one F32 tensor
 * per checkpoint tensor under its own name and shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_file.h"
#include "cli.h"
#include "safetensors.h"

static int usage(void)
{
    printf("usage: bmojo grad -m MODEL_DIR | --config CONFIG.yaml [--weight-seed N]\n"
           "                  -i BATCH.safetensors -o GRADS.safetensors [--device SPEC]\n"
           "                  [--allow-unused-tensors]\n"
           "  BATCH holds input_ids and targets (I32 [B, T]; a target of -1 scores nothing);\n"
           "  GRADS gets loss (F32 [1], the mean over scored positions) and the gradient of\n"
           "  every checkpoint tensor under its own name.\n" CLI_MODEL_OPTIONS_HELP);
    return CLI_OK;
}

int cmd_grad(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(&mo, argc, argv, &i);
        if (r < 0) return CLI_USAGE;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-i")) {
            if (!(in = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "-o")) {
            if (!(out = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage();
        else return cli_usage_error("grad: unknown option '%s'", argv[i]);
    }
    if (!in || !out) return cli_usage_error("grad: -i BATCH.safetensors and -o GRADS.safetensors are required");
    if (cli_refuse_f16_weights(&mo, "grad")) return CLI_USAGE;
    if (!mo.model_dir == !mo.config) return cli_usage_error("grad: give exactly one of -m MODEL_DIR or --config CONFIG.yaml");

    cli_batch_file bf;
    int st = cli_batch_open(in, &bf);
    if (st) return cli_status_error(st, "reading the batch");
    int B = bf.ids.B, T = bf.ids.T, rc = CLI_FAIL, nt = 0;
    bmojo_runtime *rt = NULL;
    bmojo_trainer *tr = NULL;
    int32_t *ids = NULL, *targets = NULL;
    float **grads = NULL;
    bm_st_out *outs = NULL;
    const char *doing = "opening the OpenCL device";
    st = cli_open_runtime(mo.device, &rt);
    if (!st) {
        doing = mo.model_dir ? "loading the model for training" : "building the model from its config";
        st = mo.model_dir ? bmojo_trainer_load(rt, mo.model_dir, mo.load_flags, &tr)
                          : bmojo_trainer_random(rt, mo.config, mo.weight_seed ? mo.weight_seed : 1, &tr);
    }
    if (st) goto fail;
    size_t n = (size_t)B * (size_t)T;
    ids = malloc(n * sizeof *ids);
    targets = malloc(n * sizeof *targets);
    if (!ids || !targets) {
        fprintf(stderr, "bmojo: out of host memory for a batch of %d x %d\n", B, T);
        goto done;
    }
    /* the vocabulary is the embedding's first dimension */
    bmojo_tensor_info emb;
    bmojo_trainer_tensor(tr, 0, &emb);
    doing = "reading the batch";
    if ((st = cli_batch_read(&bf, emb.shape[0], ids, targets))) goto fail;
    double loss = 0;
    doing = "computing the gradients";
    if ((st = bmojo_trainer_zero_grad(tr)) || (st = bmojo_trainer_grad(tr, ids, targets, B, T, &loss))) goto fail;
    nt = bmojo_trainer_tensor_count(tr);
    grads = calloc((size_t)nt, sizeof *grads);
    outs = calloc((size_t)nt + 1, sizeof *outs);
    if (!grads || !outs) {
        fprintf(stderr, "bmojo: out of host memory\n");
        goto done;
    }
    float loss32 = (float)loss;
    outs[0] = (bm_st_out){.name = "loss", .dtype = BM_DT_F32, .ndim = 1, .shape = {1}, .data = &loss32};
    for (int k = 0; k < nt; k++) {
        bmojo_tensor_info ti;
        bmojo_trainer_tensor(tr, k, &ti);
        if (!(grads[k] = malloc(ti.numel * sizeof(float)))) {
            fprintf(stderr, "bmojo: out of host memory for the gradient of %s\n", ti.name);
            goto done;
        }
        if ((st = bmojo_trainer_read_grad(tr, k, grads[k]))) goto fail;
        outs[k + 1] = (bm_st_out){.name = ti.name, .dtype = BM_DT_F32, .ndim = ti.ndim, .data = grads[k]};
        for (int j = 0; j < ti.ndim; j++) outs[k + 1].shape[j] = ti.shape[j];
    }
    doing = "writing the gradients";
    const char *meta[] = {"format", "bmojo-grad", NULL};
    if ((st = bm_st_write(out, outs, nt + 1, meta))) goto fail;
    printf("loss %.9g over %d x %d tokens, %d gradient tensors written to %s\n", loss, B, T, nt, out);
    rc = CLI_OK;
    goto done;
fail:
    rc = cli_status_error(st, doing);
done:
    for (int k = 0; grads && k < nt; k++) free(grads[k]);
    free(grads);
    free(outs);
    free(ids);
    free(targets);
    cli_batch_close(&bf);
    bmojo_trainer_free(tr);
    bmojo_runtime_free(rt);
    return rc;
}
