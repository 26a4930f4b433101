/* safetensors_index.c — model.safetensors.index.json from memory: the weight_map's distinct
 * shard names (found by sorting, so an index of millions of entries stays n log n) and the shard
 * of every tensor. Opening the shards is bm_st_set_open's job (safetensors.c). */
#include "safetensors_index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct {
    const char *s;
    size_t i; /* entry index: ties sort by it, so the first of a run is the first mention */
} entry_ref;

static int cmp_entry(const void *a, const void *b)
{
    const entry_ref *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

void bm_st_index_free(bm_st_index *ix)
{
    if (!ix)
        return;
    bm_json_free(ix->json);
    free(ix->shards);
    free(ix->shard_of);
    memset(ix, 0, sizeof *ix);
}

int bm_st_index_parse(const char *text, size_t len, const char *index_path, bm_st_index *out)
{
    memset(out, 0, sizeof *out);
    char jerr[256];
    int rc = bm_json_parse(text, len, &out->json, jerr, sizeof jerr);
    if (rc == BMOJO_ENOMEM)
        return bm_fail(rc, "%s: out of memory", index_path);
    if (rc)
        return bm_fail(BMOJO_EFORMAT, "%s is not valid JSON: %s", index_path, jerr);

    const bm_json *wm = bm_json_get(out->json, "weight_map");
    entry_ref *ord = NULL;
    size_t *first = NULL;
    if (!wm || wm->type != BM_JSON_OBJECT) {
        rc = bm_fail(BMOJO_EFORMAT, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    if (wm->count == 0) {
        rc = bm_fail(BMOJO_EFORMAT, "%s: \"weight_map\" is empty", index_path);
        goto done;
    }
    if (wm->count > (size_t)INT32_MAX) {
        rc = bm_fail(BMOJO_EFORMAT, "%s: \"weight_map\" has more than %d entries", index_path, INT32_MAX);
        goto done;
    }
    /* Each shard must be a plain file name inside the model folder: the index must not reach
     * outside it. */
    for (size_t i = 0; i < wm->count; i++) {
        const bm_json *v = &wm->items[i];
        if (v->type != BM_JSON_STRING || v->string_len == 0 || strlen(v->string) != v->string_len) {
            rc = bm_fail(BMOJO_EFORMAT, "%s: weight_map entry of tensor '%s' is not a file name", index_path, wm->keys[i]);
            goto done;
        }
        if (strchr(v->string, '/') || strstr(v->string, "..")) {
            rc = bm_fail(BMOJO_EFORMAT, "%s: weight_map entry of tensor '%s' names shard '%s', which contains '/' or '..'",
                         index_path, wm->keys[i], v->string);
            goto done;
        }
    }
    size_t n = wm->count;
    ord = malloc(n * sizeof *ord);
    first = malloc(n * sizeof *first);
    out->shard_of = malloc(n * sizeof *out->shard_of);
    out->shards = malloc(n * sizeof *out->shards);
    if (!ord || !first || !out->shard_of || !out->shards) {
        rc = bm_fail(BMOJO_ENOMEM, "%s: out of memory for %zu weight_map entries", index_path, n);
        goto done;
    }
    /* Sorting (name, entry) pairs groups the entries of each shard; the first of each group is
     * that shard's first mention. first[i] is the entry that first mentions entry i's shard. */
    for (size_t i = 0; i < n; i++)
        ord[i] = (entry_ref){wm->items[i].string, i};
    qsort(ord, n, sizeof *ord, cmp_entry);
    for (size_t k = 0; k < n; k++)
        first[ord[k].i] = (k > 0 && strcmp(ord[k].s, ord[k - 1].s) == 0) ? first[ord[k - 1].i] : ord[k].i;
    /* Shards numbered in order of first mention: first[i] <= i, so its number is already set. */
    for (size_t i = 0; i < n; i++) {
        if (first[i] == i) {
            out->shard_of[i] = out->n_shards;
            out->shards[out->n_shards++] = wm->items[i].string;
        } else {
            out->shard_of[i] = out->shard_of[first[i]];
        }
    }
    out->n = n;
    out->names = wm->keys;
done:
    free(ord);
    free(first);
    if (rc)
        bm_st_index_free(out);
    return rc;
}
