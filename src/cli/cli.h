/* cli.h — shared pieces of the `bmojo` command-line tool: argument parsing that rejects bad
 * values with a message naming the flag, model opening, and the subcommands' entry points. */
#ifndef BM_CLI_H
#define BM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "bmojo.h"

/* Exit codes: 0 success, 1 a failure while running, 2 a usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "bmojo: <message>" to stderr; returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...);
/* Prints "bmojo: <what>: <status message> (<detail>)" to stderr; returns CLI_FAIL. */
int cli_status_error(int status, const char *what);

/* Strict number parsing: the whole string must be a number within [lo, hi]. 0 on success. */
int cli_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out);
int cli_parse_float(const char *flag, const char *s, double lo, double hi, double *out);
/* The value after flag argv[*i]; advances *i. NULL (and a message) when missing. */
const char *cli_value(int argc, char **argv, int *i);

/* Opens the runtime and a model: a model folder (-m), or a config.yaml with random weights. */
typedef struct {
    const char *model_dir;   /* -m */
    const char *config;      /* --config (random weights) */
    uint64_t weight_seed;    /* --weight-seed */
    const char *device;      /* --device, else BMOJO_DEVICE, else default */
    unsigned load_flags;     /* BMOJO_LOAD_*: --allow-unused-tensors, --weights f32|f16 */
} cli_model_opts;
int cli_open_model(const cli_model_opts *o, bmojo_runtime **rt, bmojo_model **m);
/* Opens the runtime (bmojo_runtime_create) and prints its warning, if any, as
 * "bmojo: warning: ..." on stderr. */
int cli_open_runtime(const char *device, bmojo_runtime **rt);
/* Consumes one of the model options at argv[*i]; 1 if consumed, 0 if not ours, -1 on error. */
int cli_model_option(cli_model_opts *o, int argc, char **argv, int *i);
/* Commands that run the training pass (train, grad, eval) keep fp32 weights: 0 unless --weights
 * f16 was given, else a usage message naming cmd and CLI_USAGE. */
int cli_refuse_f16_weights(const cli_model_opts *o, const char *cmd);
/* A --device value: 0 if usable, else a usage message and -1 (an empty spec is refused). */
int cli_check_device(const char *spec);
/* Help text of the model options, printed by each command that loads a model. */
#define CLI_MODEL_OPTIONS_HELP                                                                     \
    "  --allow-unused-tensors  load a checkpoint that holds tensors the config does not use\n"    \
    "              (by default an error naming them: more layers than the config, a misspelled name)\n"
/* Help text of --weights, printed by the commands that run a model for inference. */
#define CLI_WEIGHTS_HELP                                                                           \
    "  --weights auto|f32|f16  storage of the weight matrices (projections, embedding, head):\n"  \
    "              f16 halves their memory and the bytes decoding streams, arithmetic stays fp32;\n" \
    "              auto (default): f16 when the checkpoint stores them all as F16/BF16, else f32\n"
/* Human-readable size ("12.3 MiB"). */
const char *cli_bytes(uint64_t bytes, char *buf, unsigned n);
double cli_now(void);
/* The tokenizer a command reads: file (--tokenizer) when given, else MODEL_DIR/tokenizer.json when
 * model_dir holds one (with required: whether or not, so that its load names what is missing). *t
 * stays NULL when there is none; path (n bytes) gets the file read. 0, or the exit status after a
 * message. */
int cli_open_tokenizer(const char *file, const char *model_dir, int required, char *path, size_t n, bmojo_tokenizer **t);
/* 0 when the tokenizer's ids all fit the model's vocabulary, else a message naming both and CLI_FAIL. */
int cli_tokenizer_fits(const bmojo_tokenizer *t, const char *path, int vocab_size);
/* "bmojo" and a subcommand's arguments (argv[0] is the subcommand), space-separated, into buf
 * (truncated to n bytes): the command a log records. */
void cli_command_line(int argc, char **argv, char *buf, size_t n);
/* Writes s as a JSON string (quotes, backslashes and control characters escaped). */
void cli_json_string(FILE *f, const char *s);

int cmd_devices(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_memory(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv); /* tokenize and detokenize (argv[0] tells which) */

#endif
