/* test_bmojo_model.c — model-level properties of the B'MOJO sublayer:
 *  1. with fading_tokens = eidetic_tokens = 0 it is exactly sliding-window attention without RoPE:
 *     a model with such a bmojo sublayer and one with an attention sublayer sharing the same
 *     q/k/v/o weights (checkpoints written here) give the same logits, in prefill and decoding;
 *  2. a long run: 32,768 tokens decoded one at a time through a tiny bmojo model, with the state's
 *     memory unchanged from the end of the first chunk on, and finite logits throughout. */
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static uint64_t rng = 0x1234567887654321ull;
static float urand(float a)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return a * (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct {
    char name[96];
    int64_t shape[3];
    int ndim;
    float *data;
} tensor;

static tensor make(const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, float scale, float offset)
{
    tensor t;
    snprintf(t.name, sizeof t.name, "%s", name);
    t.ndim = ndim;
    t.shape[0] = d0, t.shape[1] = d1, t.shape[2] = d2;
    size_t n = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * (size_t)(ndim > 2 ? d2 : 1);
    t.data = malloc(n * sizeof(float));
    for (size_t i = 0; t.data && i < n; i++) t.data[i] = offset + urand(scale);
    return t;
}

static int write_model(const char *dir, const char *yaml, tensor *ts, int n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(yaml, f);
    fclose(f);
    bm_st_out out[32];
    for (int i = 0; i < n; i++) {
        out[i].name = ts[i].name;
        out[i].dtype = BM_DT_F32;
        out[i].ndim = ts[i].ndim;
        for (int k = 0; k < 3; k++) out[i].shape[k] = ts[i].shape[k];
        out[i].data = ts[i].data;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return bm_st_write(path, out, n, NULL);
}

static void special_case(bmojo_runtime *rt, int window)
{
    const int V = 97, d = 48, H = 4, G = 2, dh = 12, f = 80, di = 96, n = 8, R = 3, k = 4, T = 45;
    char dir_b[256], dir_a[256], yaml[1024];
    snprintf(dir_b, sizeof dir_b, "/tmp/bmojo-special-%d-b", (int)getpid());
    snprintf(dir_a, sizeof dir_a, "/tmp/bmojo-special-%d-a", (int)getpid());
    mkdir(dir_b, 0700);
    mkdir(dir_a, 0700);
    tensor common[] = {
        make("embed.weight", 2, V, d, 0, 0.5f, 0), make("norm_f.weight", 1, d, 0, 0, 0.1f, 1),
        make("layers.0.norm.weight", 1, d, 0, 0, 0.1f, 1), make("layers.0.attn.q_proj.weight", 2, H * dh, d, 0, 0.3f, 0),
        make("layers.0.attn.k_proj.weight", 2, G * dh, d, 0, 0.3f, 0), make("layers.0.attn.v_proj.weight", 2, G * dh, d, 0, 0.3f, 0),
        make("layers.0.attn.o_proj.weight", 2, d, H * dh, 0, 0.2f, 0), make("layers.1.norm.weight", 1, d, 0, 0, 0.1f, 1),
        make("layers.1.mlp.gate_proj.weight", 2, f, d, 0, 0.2f, 0), make("layers.1.mlp.up_proj.weight", 2, f, d, 0, 0.2f, 0),
        make("layers.1.mlp.down_proj.weight", 2, d, f, 0, 0.2f, 0)};
    tensor mamba[] = {
        make("layers.0.mamba.in_proj.weight", 2, 2 * di, d, 0, 0.2f, 0), make("layers.0.mamba.conv1d.weight", 3, di, 1, k, 0.5f, 0),
        make("layers.0.mamba.conv1d.bias", 1, di, 0, 0, 0.1f, 0), make("layers.0.mamba.x_proj.weight", 2, R + 2 * n, di, 0, 0.2f, 0),
        make("layers.0.mamba.dt_proj.weight", 2, di, R, 0, 0.3f, 0), make("layers.0.mamba.dt_proj.bias", 1, di, 0, 0, 0.5f, -3),
        make("layers.0.mamba.A_log", 2, di, n, 0, 0.5f, 1), make("layers.0.mamba.D", 1, di, 0, 0, 0.1f, 1),
        make("layers.0.mamba.out_proj.weight", 2, d, di, 0, 0.2f, 0)};
    const int nc = (int)(sizeof common / sizeof common[0]), nm = (int)(sizeof mamba / sizeof mamba[0]);
    tensor all[32];
    for (int i = 0; i < nc; i++) all[i] = common[i];
    for (int i = 0; i < nm; i++) all[nc + i] = mamba[i];
    snprintf(yaml, sizeof yaml,
             "name: special-bmojo\nvocab_size: %d\nd_model: %d\nlayers:\n"
             "  - {type: bmojo, window: %d, fading_tokens: 0, eidetic_tokens: 0, heads: %d, kv_heads: %d, head_dim: %d,"
             " d_state: %d, d_conv: %d, expand: 2, dt_rank: %d}\n  - {type: mlp, intermediate: %d}\n",
             V, d, window, H, G, dh, n, k, R, f);
    int ok = write_model(dir_b, yaml, all, nc + nm) == 0;
    snprintf(yaml, sizeof yaml,
             "name: special-attention\nvocab_size: %d\nd_model: %d\nlayers:\n"
             "  - {type: attention, window: %d, heads: %d, kv_heads: %d, head_dim: %d}\n  - {type: mlp, intermediate: %d}\n",
             V, d, window, H, G, dh, f);
    ok = ok && write_model(dir_a, yaml, common, nc) == 0;
    for (int i = 0; i < nc + nm; i++) free(all[i].data);
    if (!tu_check(ok, "special case: checkpoints written")) return;

    bmojo_model *mb = NULL, *ma = NULL;
    bmojo_state *sb = NULL, *sa = NULL;
    float *lb = malloc(sizeof(float) * 2 * T * V), *la = malloc(sizeof(float) * 2 * T * V);
    int32_t ids[2 * 45];
    for (int i = 0; i < 2 * T; i++) ids[i] = (int32_t)((i * 37 + 11) % V);
    if (tu_status(bmojo_model_load(rt, dir_b, &mb), dir_b) && tu_status(bmojo_model_load(rt, dir_a, &ma), dir_a) &&
        tu_status(bmojo_state_create(mb, 2, &sb), "state") && tu_status(bmojo_state_create(ma, 2, &sa), "state") && lb && la) {
        int st = bmojo_forward(mb, sb, ids, T, BMOJO_LOGITS_ALL, lb);
        if (!st) st = bmojo_forward(ma, sa, ids, T, BMOJO_LOGITS_ALL, la);
        if (tu_status(st, "special-case prefill")) {
            double e = tu_rel_err(lb, la, (size_t)2 * T * V);
            tu_check(e <= 1e-5, "bmojo with fading = eidetic = 0 equals attention (window %d, no RoPE), B=2 prefill: rel err %.2e", window, e);
        }
        /* and in decoding */
        bmojo_state_reset(sb);
        bmojo_state_reset(sa);
        double worst = 0;
        for (int t = 0; st == 0 && t < T; t++) {
            int32_t col[2] = {ids[t], ids[T + t]};
            st = bmojo_forward(mb, sb, col, 1, BMOJO_LOGITS_LAST, lb);
            if (!st) st = bmojo_forward(ma, sa, col, 1, BMOJO_LOGITS_LAST, la);
            double e = tu_rel_err(lb, la, (size_t)2 * V);
            if (e > worst) worst = e;
        }
        if (tu_status(st, "special-case decode"))
            tu_check(worst <= 1e-5, "... and decoding %d tokens: worst rel err %.2e", T, worst);
    }
    free(lb);
    free(la);
    bmojo_state_free(sb);
    bmojo_state_free(sa);
    bmojo_model_free(mb);
    bmojo_model_free(ma);
    char path[600];
    const char *dirs[2] = {dir_b, dir_a};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/config.yaml", dirs[i]);
        remove(path);
        snprintf(path, sizeof path, "%s/model.safetensors", dirs[i]);
        remove(path);
        rmdir(dirs[i]);
    }
}

static uint64_t state_bytes(const bmojo_state *s)
{
    bmojo_state_memory m;
    bmojo_state_get_memory(s, &m);
    return m.attention_kv + m.eidetic + m.ssm + m.scratch;
}

static void long_run(bmojo_runtime *rt, const char *src)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/bmojo-tiny.yaml", src);
    bmojo_model *m = NULL;
    bmojo_state *s = NULL;
    if (!tu_status(bmojo_model_random(rt, path, 5, &m), path) || !tu_status(bmojo_state_create(m, 1, &s), "state")) {
        bmojo_model_free(m);
        return;
    }
    bmojo_model_info info;
    bmojo_model_get_info(m, &info);
    const int N = 32768, W = 32; /* bmojo-tiny's window = chunk length */
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    uint64_t after_first_chunk = 0, grew_at = 0;
    int st = 0, finite = 1;
    for (int t = 0; logits && st == 0 && t < N; t++) {
        int32_t id = (int32_t)((t * 7919u + (unsigned)t / 3u) % (unsigned)info.vocab_size);
        st = bmojo_forward(m, s, &id, 1, BMOJO_LOGITS_LAST, logits);
        if (t % 64 == 0 || t == N - 1)
            for (int v = 0; v < info.vocab_size; v++) finite &= isfinite(logits[v]) != 0;
        if (t + 1 == W) after_first_chunk = state_bytes(s);
        if (t + 1 > W && !grew_at && state_bytes(s) != after_first_chunk) grew_at = (uint64_t)t + 1;
    }
    if (tu_status(st, "long run")) {
        tu_check(grew_at == 0 && after_first_chunk > 0,
                 "32768 tokens decoded through bmojo-tiny: state memory stays %llu bytes after the first chunk%s",
                 (unsigned long long)after_first_chunk, grew_at ? " (it grew)" : "");
        tu_check(finite, "... with finite logits throughout");
        tu_check(bmojo_state_position(s) == N, "... and position %lld", (long long)bmojo_state_position(s));
    }
    free(logits);
    bmojo_state_free(s);
    bmojo_model_free(m);
}

int main(void)
{
    bmojo_runtime *rt = NULL;
    if (!tu_status(bmojo_runtime_create(NULL, &rt), "opening the default device")) return tu_finish();
    special_case(rt, 5);
    special_case(rt, 16);
    long_run(rt, tu_env("BMOJO_SOURCE_ROOT", "."));
    bmojo_runtime_free(rt);
    tu_check_no_leaked_buffers();
    return tu_finish();
}
