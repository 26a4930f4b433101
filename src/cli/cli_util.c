/* cli_util.c — argument parsing, error reporting and model opening shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bmojo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_USAGE;
}

int cli_status_error(int status, const char *what)
{
    fprintf(stderr, "bmojo: %s: %s (%s)\n", what, bmojo_strerror(status), bmojo_last_error());
    return CLI_FAIL;
}

int cli_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno) {
        cli_usage_error("%s needs an integer, got '%s'", flag, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        cli_usage_error("%s = %lld is out of range [%lld, %lld]", flag, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v)) {
        cli_usage_error("%s needs a number, got '%s'", flag, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        cli_usage_error("%s = %g is out of range [%g, %g]", flag, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_usage_error("%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_check_device(const char *spec)
{
    /* The library reads an empty spec as "none given" and would pick the default device. */
    if (!*spec) {
        cli_usage_error("--device needs a device: P:D or a part of its name, got an empty value");
        return -1;
    }
    return 0;
}

int cli_model_option(cli_model_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char **slot = NULL;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) slot = &o->model_dir;
    else if (!strcmp(a, "--config")) slot = &o->config;
    else if (!strcmp(a, "--device")) {
        const char *v = cli_value(argc, argv, i);
        if (!v || cli_check_device(v)) return -1;
        o->device = v;
        return 1;
    } else if (!strcmp(a, "--allow-unused-tensors")) {
        o->load_flags |= BMOJO_LOAD_ALLOW_UNUSED_TENSORS;
        return 1;
    } else if (!strcmp(a, "--weights")) {
        const char *v = cli_value(argc, argv, i);
        if (!v) return -1;
        unsigned w;
        if (!strcmp(v, "auto")) w = 0;
        else if (!strcmp(v, "f32")) w = BMOJO_LOAD_WEIGHTS_F32;
        else if (!strcmp(v, "f16")) w = BMOJO_LOAD_WEIGHTS_F16;
        else {
            cli_usage_error("--weights takes auto, f32 or f16, got '%s'", v);
            return -1;
        }
        o->load_flags = (o->load_flags & ~(unsigned)(BMOJO_LOAD_WEIGHTS_F32 | BMOJO_LOAD_WEIGHTS_F16)) | w;
        return 1;
    } else if (!strcmp(a, "--weight-seed")) {
        const char *v = cli_value(argc, argv, i);
        long long s;
        if (!v || cli_parse_int(a, v, 0, (long long)1 << 62, &s)) return -1;
        o->weight_seed = (uint64_t)s;
        return 1;
    } else
        return 0;
    const char *v = cli_value(argc, argv, i);
    if (!v) return -1;
    *slot = v;
    return 1;
}

int cli_refuse_f16_weights(const cli_model_opts *o, const char *cmd)
{
    if (!(o->load_flags & BMOJO_LOAD_WEIGHTS_F16)) return 0;
    return cli_usage_error("%s: --weights f16 is for inference (logits, generate, bench, perplexity); %s runs the "
                           "training pass, which keeps its weights in f32",
                           cmd, cmd);
}

int cli_open_runtime(const char *device, bmojo_runtime **rt)
{
    int st = bmojo_runtime_create(device, rt);
    const char *w = st ? NULL : bmojo_runtime_warning(*rt);
    if (w) fprintf(stderr, "bmojo: warning: %s\n", w);
    return st;
}

int cli_open_model(const cli_model_opts *o, bmojo_runtime **rt, bmojo_model **m)
{
    *rt = NULL;
    *m = NULL;
    if (!o->model_dir == !o->config) return cli_usage_error("give exactly one of -m MODEL_DIR or --config CONFIG.yaml");
    int st = cli_open_runtime(o->device, rt);
    if (st) return cli_status_error(st, "opening the OpenCL device");
    if (o->model_dir) st = bmojo_model_load_flags(*rt, o->model_dir, o->load_flags, m);
    else
        st = bmojo_model_random_flags(*rt, o->config, o->weight_seed ? o->weight_seed : 1,
                                      o->load_flags & (BMOJO_LOAD_WEIGHTS_F32 | BMOJO_LOAD_WEIGHTS_F16), m);
    if (st) {
        cli_status_error(st, o->model_dir ? "loading the model" : "building the model from its config");
        bmojo_runtime_free(*rt);
        *rt = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

const char *cli_bytes(uint64_t bytes, char *buf, unsigned n)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

void cli_command_line(int argc, char **argv, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "bmojo");
    for (int i = 0; i < argc && k < n; i++) k += (size_t)snprintf(buf + k, n - k, " %s", argv[i]);
}

int cli_open_tokenizer(const char *file, const char *model_dir, int required, char *path, size_t n, bmojo_tokenizer **t)
{
    *t = NULL;
    path[0] = 0;
    if (!file && !model_dir) return 0;
    const int w = file ? snprintf(path, n, "%s", file) : snprintf(path, n, "%s/tokenizer.json", model_dir);
    if (w < 0 || (size_t)w >= n) return cli_usage_error("the tokenizer's path is too long");
    if (!file && !required && access(path, F_OK) != 0) {
        path[0] = 0;
        return 0;
    }
    int st = bmojo_tokenizer_load(path, t);
    return st ? cli_status_error(st, "loading the tokenizer") : 0;
}

int cli_tokenizer_fits(const bmojo_tokenizer *t, const char *path, int vocab_size)
{
    if (!t || bmojo_tokenizer_vocab_size(t) <= vocab_size) return 0;
    fprintf(stderr, "bmojo: the tokenizer %s has %d tokens, more than the model's vocabulary of %d\n", path,
            (int)bmojo_tokenizer_vocab_size(t), vocab_size);
    return CLI_FAIL;
}
