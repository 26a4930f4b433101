/* cmd_memory.c — `bmojo memory`: the recurrent memory of one sequence of a model, in floats, by
 * kind (bmojo_config_recurrent_memory): the x-axis of the recall study (docs/experiments/mqar.md).
 * Reads the config only; opens no device. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: bmojo memory --config CONFIG.yaml | -m MODEL_DIR [-T N] [-o md|json]\n"
               "  -T N        context length in tokens (needed when a sublayer is full attention,\n"
               "              whose K/V grow with the context)\n"
               "  -o FORMAT   md (default: a table) or json (one object)\n"
               "Floats kept per sequence: Mamba SSM states, K/V of sliding windows, of full attention's\n"
               "context, of B'MOJO's fading and eidetic tokens; the Mamba convolution tails are shown\n"
               "apart and not counted (docs/bmojo.md, \"Recurrent memory\").\n");
}

int cmd_memory(int argc, char **argv)
{
    const char *path = NULL, *format = "md";
    long long T = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--config") || !strcmp(a, "-m")) {
            if (path) return cli_usage_error("memory: give one model (--config or -m), once");
            if (!(path = cli_value(argc, argv, &i))) return CLI_USAGE;
        } else if (!strcmp(a, "-T")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_parse_int("-T", v, 1, (long long)1 << 40, &T)) return CLI_USAGE;
        } else if (!strcmp(a, "-o")) {
            if (!(format = cli_value(argc, argv, &i))) return CLI_USAGE;
            if (strcmp(format, "md") && strcmp(format, "json"))
                return cli_usage_error("memory: -o must be md or json (got '%s')", format);
        } else
            return cli_usage_error("memory: unknown option '%s'", a);
    }
    if (!path) {
        usage(stderr);
        return cli_usage_error("memory: give a model: --config CONFIG.yaml or -m MODEL_DIR");
    }
    bmojo_recurrent_memory m;
    int st = bmojo_config_recurrent_memory(path, T > 0 ? T : 1, &m);
    if (st) return cli_status_error(st, path);
    if (T == 0 && m.context_kv > 0)
        return cli_usage_error("memory: %s has full attention, whose K/V grow with the context: give -T", path);
    if (!strcmp(format, "json")) {
        printf("{\"model\": ");
        cli_json_string(stdout, path);
        if (T > 0) printf(", \"context\": %lld", T);
        else printf(", \"context\": null");
        printf(", \"ssm\": %llu, \"window_kv\": %llu, \"context_kv\": %llu, "
               "\"fading_kv\": %llu, \"eidetic_kv\": %llu, \"total\": %llu, \"conv\": %llu}\n",
               (unsigned long long)m.ssm, (unsigned long long)m.window_kv, (unsigned long long)m.context_kv,
               (unsigned long long)m.fading_kv, (unsigned long long)m.eidetic_kv, (unsigned long long)m.total,
               (unsigned long long)m.conv);
        return CLI_OK;
    }
    printf("recurrent memory of one sequence of %s", path);
    if (T > 0) printf(" at a context of %lld tokens", T);
    printf(", in floats:\n\n| kind | floats |\n| --- | ---: |\n");
    const struct {
        const char *name;
        unsigned long long v;
    } rows[] = {{"SSM states", m.ssm},         {"window K/V", m.window_kv},   {"full-attention K/V", m.context_kv},
                {"fading K/V", m.fading_kv},   {"eidetic K/V", m.eidetic_kv}, {"**total**", m.total},
                {"(conv tails, not counted)", m.conv}};
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) printf("| %s | %llu |\n", rows[k].name, rows[k].v);
    return CLI_OK;
}
