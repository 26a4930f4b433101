/* main.c — the `bmojo` command: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bmojo <command> [options]\n"
            "\n"
            "commands:\n"
            "  devices    list OpenCL platforms and devices (--build-options: kernel build flags)\n"
            "  generate   generate token ids from a prompt (greedy or sampled)\n"
            "  logits     write the logits of input_ids (model contract section 5)\n"
            "  grad       loss and gradients of a training batch (model contract section 6)\n"
            "  train      train a model: AdamW, MQAR or token files, checkpoints, --resume\n"
            "  eval       loss and perplexity on a token file, accuracy on MQAR\n"
            "  bench      throughput, latency and memory (llama-bench style); --ops: kernels\n"
            "  memory     the recurrent memory of one sequence of a model, in floats, by kind\n"
            "  tokenize   text -> token ids with a Hugging Face tokenizer.json\n"
            "  detokenize token ids -> text\n"
            "  perplexity a model's perplexity on a text file (llama.cpp's strided chunks)\n"
            "\n"
            "Run `bmojo <command> --help` for a command's options. The device is chosen with\n"
            "--device P:D or a part of its name, or the BMOJO_DEVICE variable; default: the first\n"
            "GPU, else the first CPU device.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("bmojo %s (commit %s)\n", bmojo_version(), bmojo_build_commit());
        return CLI_OK;
    }
    if (!strcmp(cmd, "devices")) return cmd_devices(argc - 1, argv + 1);
    if (!strcmp(cmd, "logits")) return cmd_logits(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "grad")) return cmd_grad(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "memory")) return cmd_memory(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize") || !strcmp(cmd, "detokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "perplexity")) return cmd_perplexity(argc - 1, argv + 1);
    fprintf(stderr, "bmojo: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}
