/* test_fixtures.c — the golden test: every model under $BMOJO_FIXTURES (hf/: Hugging Face Mamba,
 * Mistral and Jamba; bmojo/: B'MOJO and B'MOJO-F from an independent float64 reference) must give
 * the reference logits within a relative error of 1e-4, in one prefill and token by token, on
 * every OpenCL device; hf/ models must also reproduce the greedy continuation of transformers, and
 * a batch of two different sequences must give each sequence's own logits. */
#include <dirent.h>

#include "test_util.h"

#define TOL 1e-4

static void check_model(bmojo_runtime *rt, const char *dev, const char *dir)
{
    char ref_path[4096];
    snprintf(ref_path, sizeof ref_path, "%s/reference.safetensors", dir);
    int64_t ishape[2], lshape[2], gshape[2];
    int32_t *ids = tu_read_tensor(ref_path, "input_ids", ishape, NULL);
    float *ref = tu_read_tensor(ref_path, "logits", lshape, NULL);
    int32_t *greedy = NULL;
    bmojo_model *m = NULL;
    bmojo_state *s = NULL, *s2 = NULL;
    float *got = NULL;
    if (!tu_check(ids && ref, "%s %s: reference tensors readable", dev, dir)) goto done;
    int T = (int)ishape[0], V = (int)lshape[1];
    if (!tu_status(bmojo_model_load(rt, dir, &m), dir)) goto done;
    if (!tu_status(bmojo_state_create(m, 1, &s), "state")) goto done;
    got = malloc(sizeof(float) * 2 * (size_t)T * (size_t)V);
    if (!got) goto done;

    /* one prefill */
    int st = bmojo_forward(m, s, ids, T, BMOJO_LOGITS_ALL, got);
    if (tu_status(st, "prefill")) {
        double e = tu_rel_err(got, ref, (size_t)T * V);
        tu_check(e <= TOL, "%s %s: prefill of %d tokens, rel err %.2e", dev, dir, T, e);
    }
    /* token by token */
    bmojo_state_reset(s);
    st = 0;
    for (int t = 0; t < T && st == 0; t++) st = bmojo_forward(m, s, ids + t, 1, BMOJO_LOGITS_LAST, got + (size_t)t * V);
    if (tu_status(st, "decode")) {
        double e = tu_rel_err(got, ref, (size_t)T * V);
        tu_check(e <= TOL, "%s %s: decoding %d tokens one at a time, rel err %.2e", dev, dir, T, e);
    }
    /* a batch of two different sequences: row 0 the reference sequence, row 1 it reversed */
    if (tu_status(bmojo_state_create(m, 2, &s2), "batch state")) {
        int32_t *bids = malloc(sizeof(int32_t) * 2 * (size_t)T);
        float *single = malloc(sizeof(float) * (size_t)T * V);
        if (bids && single) {
            for (int t = 0; t < T; t++) bids[t] = ids[t], bids[T + t] = ids[T - 1 - t];
            st = bmojo_forward(m, s2, bids, T, BMOJO_LOGITS_ALL, got);
            bmojo_state_reset(s);
            if (st == 0) st = bmojo_forward(m, s, bids + T, T, BMOJO_LOGITS_ALL, single);
            if (tu_status(st, "batch prefill")) {
                double e0 = tu_rel_err(got, ref, (size_t)T * V);
                double e1 = tu_rel_err(got + (size_t)T * V, single, (size_t)T * V);
                tu_check(e0 <= TOL && e1 <= 1e-5, "%s %s: batch of 2 sequences, rel err %.2e (ref), %.2e (single run)",
                         dev, dir, e0, e1);
            }
        }
        free(bids);
        free(single);
    }
    /* greedy continuation (hf/ fixtures) */
    greedy = strstr(dir, "/hf/") ? tu_read_tensor(ref_path, "greedy_ids", gshape, NULL) : NULL;
    if (greedy) {
        int np = T / 2, n_new = (int)gshape[0] - np, ok = 1;
        bmojo_state_reset(s);
        st = bmojo_forward(m, s, greedy, np, BMOJO_LOGITS_LAST, got);
        for (int k = 0; st == 0 && k < n_new; k++) {
            int best = 0;
            for (int v = 1; v < V; v++)
                if (got[v] > got[best]) best = v;
            if (best != greedy[np + k]) ok = 0;
            int32_t tok = best;
            if (k + 1 < n_new) st = bmojo_forward(m, s, &tok, 1, BMOJO_LOGITS_LAST, got);
        }
        if (tu_status(st, "greedy")) tu_check(ok, "%s %s: greedy continuation of %d tokens matches transformers", dev, dir, n_new);
    }
done:
    free(ids);
    free(ref);
    free(greedy);
    free(got);
    bmojo_state_free(s);
    bmojo_state_free(s2);
    bmojo_model_free(m);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    const char *root = tu_env("BMOJO_FIXTURES", "../shared/fixtures");
    const char *only = argc > 1 ? argv[1] : NULL;
    char *dirs[64];
    int nd = 0;
    const char *groups[] = {"hf", "bmojo"};
    for (int g = 0; g < 2; g++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, groups[g]);
        DIR *d = opendir(path);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) && nd < 64) {
            if (e->d_name[0] == '.') continue;
            if (only && !strstr(e->d_name, only) && !strstr(groups[g], only)) continue;
            char *p = malloc(strlen(path) + strlen(e->d_name) + 2);
            if (!p) return 1;
            sprintf(p, "%s/%s", path, e->d_name);
            dirs[nd++] = p;
        }
        closedir(d);
    }
    qsort(dirs, (size_t)nd, sizeof dirs[0], cmp_str);
    if (!tu_check(nd > 0, "fixtures found under %s", root)) return tu_finish();
    bmojo_device_desc devs[16];
    int ndev = 0;
    if (!tu_status(bmojo_devices_list(devs, 16, &ndev), "listing devices") || !tu_check(ndev > 0, "an OpenCL device"))
        return tu_finish();
    for (int k = 0; k < ndev && k < 16; k++) {
        char spec[32];
        snprintf(spec, sizeof spec, "%d:%d", devs[k].platform_index, devs[k].device_index);
        bmojo_runtime *rt = NULL;
        if (!tu_status(bmojo_runtime_create(spec, &rt), spec)) continue;
        for (int i = 0; i < nd; i++) check_model(rt, devs[k].name, dirs[i]);
        bmojo_runtime_free(rt);
    }
    for (int i = 0; i < nd; i++) free(dirs[i]);
    tu_check_no_leaked_buffers();
    return tu_finish();
}
