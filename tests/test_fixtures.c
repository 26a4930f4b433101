/* test_fixtures.c — the golden test: every model under $BMOJO_FIXTURES (hf/: Hugging Face Mamba,
 * Mistral and Jamba; bmojo/: B'MOJO and B'MOJO-F from an independent float64 reference) must give
 * the reference logits within a relative error of 1e-4, in one prefill and token by token, on
 * every OpenCL device; hf/ models must also reproduce the greedy continuation of transformers, and
 * a batch of two different sequences must give each sequence's own logits. Each model is also
 * run with f16 weight storage (BMOJO_LOAD_WEIGHTS_F16; check_f16 says what is checked and why). A
 * checkpoint holding tensors its config does not use is refused unless the caller allows it. */
#include <dirent.h>
#include <unistd.h>

#include "test_util.h"

#include "half.h"
#include "safetensors.h"

#define TOL 1e-4
static void check_f16(bmojo_runtime *rt, const char *dev, const char *dir, const int32_t *ids, int T, int V,
                      const float *f32_logits, const float *ref);

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
        check_f16(rt, dev, dir, ids, T, V, got, ref);
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

/* Reads a whole file into a malloc'ed, NUL-terminated buffer; NULL on failure. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = 0;
        *n = (size_t)len;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    return buf;
}

static int spill(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok;
}

/* f16 weight storage (issue 15). On the fixtures as they are, f16 moves the logits by the
 * rounding of the weights alone (every matrix's ||round(W) - W|| / ||W|| is 2.1e-4), which these
 * random models amplify: measured against the fp32 weights, mamba-0/1 2.9e-4 / 4.5e-4, mistral-0/1
 * 7.8e-4 / 9.7e-4, jamba-0 1.2e-3, bmojo-f-small 1.8e-3, bmojo-small 2.0e-3, and exactly what the
 * fp32 path gives on the rounded weights (docs/performance.md, "f16 weights"). So on the fixtures
 * as they are F16_SANITY only catches a wrong weight; the storage and the f16 kernels are checked
 * exactly on a copy whose tensors already hold f16 values: f16 and fp32 storage of those must give
 * the same logits up to fp32 round-off (F16_EXACT), prefill and token by token. */
#define F16_SANITY 1e-2
#define F16_EXACT 1e-5

/* The logits of the model at dir ([T, V]) from one prefill (prefill) and token by token (decode). */
static int run_logits(bmojo_runtime *rt, const char *dir, unsigned flags, const int32_t *ids, int T, int V,
                      float *prefill, float *decode)
{
    bmojo_model *m = NULL;
    bmojo_state *s = NULL;
    bmojo_model_info info;
    int ok = tu_status(bmojo_model_load_flags(rt, dir, flags, &m), "load") &&
             tu_status(bmojo_model_get_info(m, &info), "info") &&
             tu_check(info.weights_f16 == ((flags & BMOJO_LOAD_WEIGHTS_F16) != 0), "%s: weight storage as asked", dir) &&
             tu_status(bmojo_state_create(m, 1, &s), "state") &&
             tu_status(bmojo_forward(m, s, ids, T, BMOJO_LOGITS_ALL, prefill), "prefill");
    if (ok && decode) {
        bmojo_state_reset(s);
        int st = 0;
        for (int t = 0; t < T && st == 0; t++) st = bmojo_forward(m, s, ids + t, 1, BMOJO_LOGITS_LAST, decode + (size_t)t * V);
        ok = tu_status(st, "decode");
    }
    bmojo_state_free(s);
    bmojo_model_free(m);
    return ok;
}

/* A copy of model folder dir (its config and model.safetensors) in a new temporary folder (path:
 * out, 64 bytes) with every F32 value rounded to the nearest f16 (still stored as F32). */
static int rounded_copy(const char *dir, char *out)
{
    char path[4096];
    snprintf(out, 64, "/tmp/bmojo-f16.XXXXXX");
    if (!mkdtemp(out)) return 0;
    int ok = 1;
    const char *configs[] = {"config.json", "config.yaml"};
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        snprintf(path, sizeof path, "%s/%s", dir, configs[i]);
        char *c = slurp(path, &n);
        snprintf(path, sizeof path, "%s/%s", out, configs[i]);
        if (c) ok &= spill(path, c, n);
        free(c);
    }
    bm_st_set set;
    memset(&set, 0, sizeof set);
    size_t nw = 0;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    char *w = slurp(path, &nw);
    ok &= w && bm_st_set_open(dir, &set) == 0 && set.n_files == 1;
    if (ok) {
        const bm_st_file *f = &set.files[0];
        const size_t data = (size_t)(f->data - f->file);
        for (int j = 0; j < f->n; j++) {
            const bm_st_tensor *t = &f->tensors[j];
            if (t->dtype != BM_DT_F32) continue;
            for (uint64_t e = 0; e < t->nelem; e++) {
                float v;
                char *at = w + data + t->begin + 4 * e;
                memcpy(&v, at, 4);
                v = bm_half_to_float(bm_half_from_float(v, NULL));
                memcpy(at, &v, 4);
            }
        }
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        ok = spill(path, w, nw);
    }
    bm_st_set_close(&set);
    free(w);
    return ok;
}

static void remove_folder(const char *dir)
{
    char path[4096];
    const char *files[] = {"config.json", "config.yaml", "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void check_f16(bmojo_runtime *rt, const char *dev, const char *dir, const int32_t *ids, int T, int V,
                      const float *f32_logits, const float *ref)
{
    const size_t n = (size_t)T * (size_t)V;
    float *p16 = malloc(sizeof(float) * n), *d16 = malloc(sizeof(float) * n);
    float *p32 = malloc(sizeof(float) * n), *d32 = malloc(sizeof(float) * n);
    char tmp[64];
    if (!tu_check(p16 && d16 && p32 && d32, "f16 check buffers")) goto done;
    /* the fixture as it is */
    if (run_logits(rt, dir, BMOJO_LOAD_WEIGHTS_F16, ids, T, V, p16, NULL)) {
        double e = tu_rel_err(p16, f32_logits, n);
        tu_check(e <= F16_SANITY, "%s %s: f16 weights, prefill, rel err %.2e against f32 weights (issue 15's "
                 "target 1e-3: %s; %.2e against the reference)", dev, dir, e, e <= 1e-3 ? "met" : "not met",
                 tu_rel_err(p16, ref, n));
    }
    /* the weights already f16 values: f16 storage must change nothing beyond fp32 round-off */
    if (!tu_check(rounded_copy(dir, tmp), "%s: a copy with f16-rounded weights", dir)) goto done;
    if (run_logits(rt, tmp, BMOJO_LOAD_WEIGHTS_F32, ids, T, V, p32, d32) &&
        run_logits(rt, tmp, BMOJO_LOAD_WEIGHTS_F16, ids, T, V, p16, d16)) {
        double ep = tu_rel_err(p16, p32, n), ed = tu_rel_err(d16, d32, n);
        tu_check(ep <= F16_EXACT && ed <= F16_EXACT,
                 "%s %s, weights rounded to f16: f16 against f32 storage, prefill rel err %.2e, token by token %.2e",
                 dev, dir, ep, ed);
    }
    remove_folder(tmp);
done:
    free(p16), free(d16), free(p32), free(d32);
}

/* A checkpoint must match its config both ways: hf/mamba-0's weights (2 layers) under its config
 * cut to 1 layer hold 10 tensors the config does not use, which bmojo_model_load refuses, naming
 * them, and BMOJO_LOAD_ALLOW_UNUSED_TENSORS accepts. */
static void check_unused_tensors(bmojo_runtime *rt, const char *root)
{
    char src[4096], dir[64], path[4096];
    snprintf(dir, sizeof dir, "/tmp/bmojo-unused.XXXXXX");
    if (!tu_check(mkdtemp(dir) != NULL, "temporary model folder")) return;
    size_t nc = 0, nw = 0;
    snprintf(src, sizeof src, "%s/hf/mamba-0/config.json", root);
    char *cfg = slurp(src, &nc);
    snprintf(src, sizeof src, "%s/hf/mamba-0/model.safetensors", root);
    char *w = slurp(src, &nw);
    char *layers = cfg ? strstr(cfg, "\"num_hidden_layers\": 2") : NULL;
    bmojo_model *m = NULL;
    if (tu_check(w && layers, "hf/mamba-0 has 2 layers in config.json")) {
        layers[strlen("\"num_hidden_layers\": ")] = '1';
        snprintf(path, sizeof path, "%s/config.json", dir);
        int ok = spill(path, cfg, nc);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (tu_check(ok && spill(path, w, nw), "temporary model folder written")) {
            int st = bmojo_model_load(rt, dir, &m);
            tu_check(st == BMOJO_ETENSOR && strstr(bmojo_last_error(), "10 tensors the config does not use") &&
                         strstr(bmojo_last_error(), "backbone.layers.1.mixer.A_log"),
                     "a checkpoint with more layers than its config is refused: %s (%s)", bmojo_strerror(st),
                     bmojo_last_error());
            bmojo_model_free(m);
            m = NULL;
            st = bmojo_model_load_flags(rt, dir, BMOJO_LOAD_ALLOW_UNUSED_TENSORS, &m);
            bmojo_model_info info = {0};
            if (st == 0) bmojo_model_get_info(m, &info);
            tu_check(st == 0 && info.n_layers == 1, "... and loads with BMOJO_LOAD_ALLOW_UNUSED_TENSORS: %s (%s)",
                     bmojo_strerror(st), st ? bmojo_last_error() : "1 layer");
            bmojo_model_free(m);
            m = NULL;
            st = bmojo_model_load_flags(rt, dir, 1u << 31, &m);
            tu_check(st == BMOJO_EINVAL && m == NULL, "an unknown load flag is BMOJO_EINVAL: %s", bmojo_last_error());
            st = bmojo_model_load_flags(rt, dir, BMOJO_LOAD_WEIGHTS_F32 | BMOJO_LOAD_WEIGHTS_F16, &m);
            tu_check(st == BMOJO_EINVAL && m == NULL, "both weight storages at once are BMOJO_EINVAL: %s",
                     bmojo_last_error());
            bmojo_trainer *tr = NULL;
            st = bmojo_trainer_load(rt, dir, BMOJO_LOAD_WEIGHTS_F16 | BMOJO_LOAD_ALLOW_UNUSED_TENSORS, &tr);
            tu_check(st == BMOJO_EINVAL && tr == NULL && strstr(bmojo_last_error(), "fp32"),
                     "the trainer refuses f16 weight storage: %s", bmojo_last_error());
            bmojo_trainer_free(tr);
        }
        remove(path);
        snprintf(path, sizeof path, "%s/config.json", dir);
        remove(path);
    }
    rmdir(dir);
    free(cfg);
    free(w);
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
        if (k == 0 && !only) check_unused_tensors(rt, root);
        bmojo_runtime_free(rt);
    }
    for (int i = 0; i < nd; i++) free(dirs[i]);
    tu_check_no_leaked_buffers();
    return tu_finish();
}
