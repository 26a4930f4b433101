/* cmd_tokenize.c — `bmojo tokenize` (text -> ids, the tokenizer's golden interface) and
 * `bmojo detokenize` (ids -> text) with a Hugging Face tokenizer.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "file_read.h"
#include "tokenizer/unicode.h"

static void usage(FILE *f, int detok)
{
    if (detok)
        fprintf(f, "usage: bmojo detokenize --tokenizer FILE.json | -m MODEL_DIR (--ids 1,2,3 | -f IDS_FILE)\n"
                   "  prints the text of the ids (as Hugging Face's decode); IDS_FILE holds ids separated by\n"
                   "  spaces, commas or newlines\n");
    else
        fprintf(f, "usage: bmojo tokenize --tokenizer FILE.json | -m MODEL_DIR (-f TEXT_FILE | -p TEXT) [--special]\n"
                   "  prints, on one line separated by spaces, the ids Hugging Face's tokenizers give for\n"
                   "  encode(text, add_special_tokens=False); --special adds the post-processor's special tokens.\n"
                   "  A file is read as its exact bytes, invalid UTF-8 sequences replaced by U+FFFD (as Python's\n"
                   "  errors=\"replace\"); a -p text must be valid UTF-8.\n");
}

int cmd_tokenize(int argc, char **argv)
{
    const int detok = !strcmp(argv[0], "detokenize");
    const char *file = NULL, *dir = NULL, *input = NULL, *text = NULL, *ids_arg = NULL;
    int special = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, detok);
            return CLI_OK;
        }
        if (!detok && !strcmp(a, "--special")) {
            special = 1;
            continue;
        }
        const char **dst = !strcmp(a, "--tokenizer") ? &file : !strcmp(a, "-m") ? &dir : !strcmp(a, "-f") ? &input
                           : !detok && !strcmp(a, "-p") ? &text : detok && !strcmp(a, "--ids") ? &ids_arg : NULL;
        if (!dst) return cli_usage_error("%s: unknown option '%s'", argv[0], a);
        if (!(*dst = cli_value(argc, argv, &i))) return CLI_USAGE;
    }
    if (!file == !dir) return cli_usage_error("%s: give exactly one of --tokenizer FILE.json or -m MODEL_DIR", argv[0]);
    if (!input == !(detok ? ids_arg : text))
        return cli_usage_error("%s: give exactly one of -f FILE or %s", argv[0], detok ? "--ids 1,2,3" : "-p TEXT");
    char *data = NULL;
    size_t n = 0;
    if (input) {
        int st = bm_read_file(input, (size_t)1 << 30, &data, &n);
        if (st) return cli_status_error(st, "reading the input");
    }
    bmojo_tokenizer *t = NULL;
    char tpath[4096];
    int rc = cli_open_tokenizer(file, dir, 1, tpath, sizeof tpath, &t);
    if (rc) {
        free(data);
        return rc;
    }
    if (!detok) {
        char *clean = NULL;
        size_t cn = 0;
        if (input && bm_utf8_lossy(data, n, &clean, &cn)) rc = cli_status_error(BMOJO_ENOMEM, "reading the input");
        int32_t *ids = NULL;
        size_t k = 0;
        int st = rc ? 0 : bmojo_tokenizer_encode(t, input ? clean : text, input ? cn : strlen(text), special, &ids, &k);
        if (!rc && st) rc = cli_status_error(st, "tokenizing");
        for (size_t i = 0; !rc && i < k; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        if (!rc) printf("\n");
        free(ids);
        free(clean);
    } else {
        const char *s = input ? data : ids_arg;
        size_t cap = 64, k = 0;
        int32_t *ids = malloc(cap * sizeof *ids);
        for (const char *p = s; ids && !rc && *p;) {
            if (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r') {
                p++;
                continue;
            }
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p || v < 0 || v > INT32_MAX) {
                rc = cli_usage_error("detokenize: '%.20s' is not a token id", p);
                break;
            }
            if (k == cap) {
                int32_t *g = realloc(ids, (cap *= 2) * sizeof *ids);
                if (!g) break;
                ids = g;
            }
            ids[k++] = (int32_t)v;
            p = end;
        }
        char *out = NULL;
        size_t on = 0;
        if (!rc && !ids) rc = cli_status_error(BMOJO_ENOMEM, "reading the ids");
        if (!rc) {
            int st = bmojo_tokenizer_decode(t, ids, k, &out, &on);
            if (st) rc = cli_status_error(st, "detokenizing");
            else fwrite(out, 1, on, stdout);
        }
        free(out);
        free(ids);
    }
    bmojo_tokenizer_free(t);
    free(data);
    return rc;
}
