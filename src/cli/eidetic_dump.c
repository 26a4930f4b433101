/* eidetic_dump.c — `bmojo eval --eidetic FILE.jsonl`: for each evaluated row and each sublayer with
 * eidetic memory, the positions that memory held at every chunk start (the sets the forward's
 * innovation test chose), and for MQAR data the example's key, value and query positions beside
 * them: does the innovation test keep the tokens that matter? One JSON object per (row, sublayer);
 * a summary line per sublayer on stdout. tools/plot_eidetic.py draws them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eidetic_dump.h"
#include "error.h"
#include "train.h"

typedef struct {
    uint64_t far_queries; /* queries whose pair lies wholly before the query's window */
    uint64_t key_held, value_held;
    uint64_t slots_filled, slots_on_pairs; /* filled slots at chunk starts, those on a key or value */
} layer_tally;

static void write_list(FILE *f, const int32_t *v, int n)
{
    fputc('[', f);
    for (int k = 0; k < n; k++) fprintf(f, k ? ", %d" : "%d", (int)v[k]);
    fputc(']', f);
}

static int in_set(const int32_t *set, int n, int p)
{
    for (int e = 0; e < n; e++)
        if (set[e] == p) return 1;
    return 0;
}

/* One row of one sublayer: its JSON object and its tally. */
static void dump_row(FILE *f, uint64_t row, int layer, const int32_t *ids, const int32_t *targets, int T, int pairs,
                     const int32_t *sets, int chunks, int per, int w, layer_tally *t)
{
    fprintf(f, "{\"row\": %llu, \"layer\": %d, \"chunk_len\": %d, \"slots\": %d", (unsigned long long)row, layer, w, per);
    if (pairs > 0) {
        int32_t *q = malloc((size_t)T * 2 * sizeof *q);
        int nq = 0;
        for (int p = 2 * pairs; q && p < T; p++)
            if (targets[p] >= 0) q[nq++] = p;
        fprintf(f, ", \"pairs\": %d, \"queries\": ", pairs);
        if (q) write_list(f, q, nq);
        fprintf(f, ", \"query_pairs\": [");
        for (int k = 0; q && k < nq; k++) {
            int j = 0;
            while (j < pairs && ids[2 * j] != ids[q[k]]) j++;
            fprintf(f, k ? ", %d" : "%d", j < pairs ? j : -1);
            /* the pair (key 2j, value 2j+1) lies before the query's window: only memory can recall it */
            const int c = q[k] / w;
            if (j < pairs && 2 * j + 1 < q[k] - w + 1) {
                const int32_t *set = sets + (size_t)c * (size_t)per;
                t->far_queries++;
                t->key_held += (uint64_t)in_set(set, per, 2 * j);
                t->value_held += (uint64_t)in_set(set, per, 2 * j + 1);
            }
        }
        fputc(']', f);
        free(q);
    }
    fprintf(f, ", \"chunks\": [");
    for (int c = 0; c < chunks; c++) {
        const int32_t *set = sets + (size_t)c * (size_t)per;
        int32_t held[256];
        int n = 0;
        for (int e = 0; e < per && n < 256; e++)
            if (set[e] >= 0) held[n++] = set[e];
        for (int e = 0; e < n; e++) {
            t->slots_filled++;
            if (pairs > 0 && held[e] < 2 * pairs) t->slots_on_pairs++;
        }
        fputs(c ? ", " : "", f);
        write_list(f, held, n);
    }
    fputs("]}\n", f);
}

int cli_eidetic_dump(bmojo_trainer *tr, const bm_data_source *src, int B, int T, uint64_t max_rows, const char *path,
                     const char *command, const char *device)
{
    const int L = tr->cfg.n_layers;
    int any = 0;
    for (int i = 0; i < L; i++) any |= tr->layers[i].kind->eidetic_sets != NULL;
    if (!any) return bm_fail(BMOJO_EINVAL, "--eidetic: the model has no sublayer with eidetic memory (no bmojo sublayer)");
    FILE *f = fopen(path, "w");
    if (!f) return bm_fail(BMOJO_EIO, "--eidetic: cannot write %s", path);
    uint64_t rows = bm_data_eval_rows(src, T);
    if (max_rows && rows > max_rows) rows = max_rows;
    char spec[512];
    bm_data_describe(src, spec, sizeof spec);
    fputs("{\"event\": \"start\", \"command\": ", f); /* what made the file: a plot can say it */
    cli_json_string(f, command);
    fputs(", \"commit\": ", f);
    cli_json_string(f, bmojo_build_commit());
    fputs(", \"device\": ", f);
    cli_json_string(f, device);
    fputs(", \"data\": ", f);
    cli_json_string(f, spec);
    fprintf(f, ", \"rows\": %llu}\n", (unsigned long long)rows);
    const int pairs = src->kind == BM_DATA_MQAR ? src->mqar.cfg.pairs : 0;
    const size_t n = (size_t)B * (size_t)T;
    int32_t *ids = malloc(n * sizeof *ids), *targets = malloc(n * sizeof *targets), *sets = NULL;
    layer_tally *tally = calloc((size_t)L, sizeof *tally);
    int st = ids && targets && tally ? 0 : bm_fail(BMOJO_ENOMEM, "out of host memory");
    for (uint64_t b = 0; !st && b * (uint64_t)B < rows; b++) {
        int real = 0;
        if ((st = bm_data_eval_batch(src, b, B, T, ids, targets, &real))) break;
        bm_train_stats s;
        if ((st = bm_trainer_pass(tr, ids, targets, B, T, 0, 0.0, &s, NULL))) break;
        for (int i = 0; !st && i < L; i++) {
            bm_train_layer *l = &tr->layers[i];
            if (!l->kind->eidetic_sets) continue;
            int chunks = 0, per = 0, w = 0;
            l->kind->eidetic_sets(tr, i, l, NULL, &chunks, &per, &w);
            int32_t *grown = realloc(sets, (size_t)B * (size_t)chunks * (size_t)per * sizeof *sets);
            if (!grown) {
                st = bm_fail(BMOJO_ENOMEM, "out of host memory");
                break;
            }
            sets = grown;
            if ((st = l->kind->eidetic_sets(tr, i, l, sets, &chunks, &per, &w))) break;
            for (int r = 0; r < real && b * (uint64_t)B + (uint64_t)r < rows; r++)
                dump_row(f, b * (uint64_t)B + (uint64_t)r, i, ids + (size_t)r * T, targets + (size_t)r * T, T, pairs,
                         sets + (size_t)r * (size_t)chunks * (size_t)per, chunks, per, w, &tally[i]);
        }
    }
    if (fclose(f) != 0 && !st) st = bm_fail(BMOJO_EIO, "--eidetic: writing %s failed", path);
    for (int i = 0; !st && i < L; i++) {
        const layer_tally *t = &tally[i];
        if (!tr->layers[i].kind->eidetic_sets) continue;
        printf("eidetic memory of sublayer %d over %llu rows: %llu slots filled at chunk starts, %.1f %% on a key or value",
               i, (unsigned long long)rows, (unsigned long long)t->slots_filled,
               t->slots_filled ? 100.0 * (double)t->slots_on_pairs / (double)t->slots_filled : 0.0);
        if (pairs > 0)
            printf("; of %llu queries whose pair lies before their window, %.1f %% find its key, %.1f %% its value",
                   (unsigned long long)t->far_queries,
                   t->far_queries ? 100.0 * (double)t->key_held / (double)t->far_queries : 0.0,
                   t->far_queries ? 100.0 * (double)t->value_held / (double)t->far_queries : 0.0);
        printf("\n");
    }
    free(ids);
    free(targets);
    free(sets);
    free(tally);
    return st;
}
