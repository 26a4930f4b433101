/* test_bmojo_model.c — model-level properties of the B'MOJO sublayer:
 *  1. with fading_tokens = eidetic_tokens = 0 it is exactly sliding-window attention without RoPE:
 *     a model with such a bmojo sublayer and one with an attention sublayer sharing the same
 *     q/k/v/o weights (checkpoints written here) give the same logits, in prefill and decoding;
 *     with rope_theta on both (RoPE in B'MOJO: an extension beyond the contract) the same holds
 *     with RoPE, and the training pass gives both models the same loss and the same gradients;
 *  2. a long run: 32,768 tokens decoded one at a time through a tiny bmojo model, with the state's
 *     memory unchanged from the end of the first chunk on, and finite logits throughout;
 *  3. RoPE in a B'MOJO with fading and eidetic tokens: decoding token by token and a prefill in
 *     two parts give one prefill's logits, the rotation changes the logits, and the gradients of
 *     q_proj, k_proj (through Kx and Kf) and the Mamba out_proj (through y, i.e. Kf and Vf only)
 *     match central finite differences of the loss along a direction (half the gradient's, half
 *     random). */
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

/* The tensors of the test models: a bmojo (or attention) sublayer 0 and an mlp sublayer 1, the
 * first BM_COMMON of them shared with an attention model; out_scale: the Mamba out_proj's range. */
enum { V = 97, D = 48, H = 4, G = 2, DH = 12, F = 80, DI = 96, NS = 8, R = 3, KC = 4, BM_COMMON = 11, BM_ALL = 20 };
static void make_tensors(tensor *t, float out_scale)
{
    int i = 0; /* one statement each: make() draws from the generator in this order */
    t[i++] = make("embed.weight", 2, V, D, 0, 0.5f, 0);
    t[i++] = make("norm_f.weight", 1, D, 0, 0, 0.1f, 1);
    t[i++] = make("layers.0.norm.weight", 1, D, 0, 0, 0.1f, 1);
    t[i++] = make("layers.0.attn.q_proj.weight", 2, H * DH, D, 0, 0.3f, 0);
    t[i++] = make("layers.0.attn.k_proj.weight", 2, G * DH, D, 0, 0.3f, 0);
    t[i++] = make("layers.0.attn.v_proj.weight", 2, G * DH, D, 0, 0.3f, 0);
    t[i++] = make("layers.0.attn.o_proj.weight", 2, D, H * DH, 0, 0.2f, 0);
    t[i++] = make("layers.1.norm.weight", 1, D, 0, 0, 0.1f, 1);
    t[i++] = make("layers.1.mlp.gate_proj.weight", 2, F, D, 0, 0.2f, 0);
    t[i++] = make("layers.1.mlp.up_proj.weight", 2, F, D, 0, 0.2f, 0);
    t[i++] = make("layers.1.mlp.down_proj.weight", 2, D, F, 0, 0.2f, 0);
    t[i++] = make("layers.0.mamba.in_proj.weight", 2, 2 * DI, D, 0, 0.2f, 0);
    t[i++] = make("layers.0.mamba.conv1d.weight", 3, DI, 1, KC, 0.5f, 0);
    t[i++] = make("layers.0.mamba.conv1d.bias", 1, DI, 0, 0, 0.1f, 0);
    t[i++] = make("layers.0.mamba.x_proj.weight", 2, R + 2 * NS, DI, 0, 0.2f, 0);
    t[i++] = make("layers.0.mamba.dt_proj.weight", 2, DI, R, 0, 0.3f, 0);
    t[i++] = make("layers.0.mamba.dt_proj.bias", 1, DI, 0, 0, 0.5f, -3);
    t[i++] = make("layers.0.mamba.A_log", 2, DI, NS, 0, 0.5f, 1);
    t[i++] = make("layers.0.mamba.D", 1, DI, 0, 0, 0.1f, 1);
    t[i++] = make("layers.0.mamba.out_proj.weight", 2, D, DI, 0, out_scale, 0);
}

static void remove_model(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    remove(path);
    rmdir(dir);
}

/* The training pass of the two special-case models on one batch: the same loss, the same gradient
 * for every tensor they share, and none for the bmojo's Mamba stream (no fading keys, and eps
 * carries no gradient). */
static void same_gradients(bmojo_runtime *rt, const char *dir_b, const char *dir_a, const int32_t *ids, int T, int V,
                           int window, float theta)
{
    bmojo_trainer *tb = NULL, *ta = NULL;
    int32_t *targets = malloc(sizeof(int32_t) * 2 * (size_t)T);
    for (int i = 0; targets && i < 2 * T; i++) targets[i] = (i % 5 == 0) ? -1 : (int32_t)((i * 13 + 5) % V);
    double lb = 0, la = 0;
    if (!targets || !tu_status(bmojo_trainer_load(rt, dir_b, 0, &tb), dir_b) ||
        !tu_status(bmojo_trainer_load(rt, dir_a, 0, &ta), dir_a) ||
        !tu_status(bmojo_trainer_grad(tb, ids, targets, 2, T, &lb), "special-case gradients (bmojo)") ||
        !tu_status(bmojo_trainer_grad(ta, ids, targets, 2, T, &la), "special-case gradients (attention)")) {
        bmojo_trainer_free(tb);
        bmojo_trainer_free(ta);
        free(targets);
        return;
    }
    tu_check(fabs(lb - la) <= 1e-6 * fabs(la), "... the training pass: loss %.9f against %.9f (window %d, rope_theta %g)",
             lb, la, window, (double)theta);
    double worst = 0;
    int shared = 0, others_zero = 1, ok = 1;
    for (int kb = 0; ok && kb < bmojo_trainer_tensor_count(tb); kb++) {
        bmojo_tensor_info ib, ia;
        bmojo_trainer_tensor(tb, kb, &ib);
        float *gb = malloc(ib.numel * sizeof(float)), *ga = malloc(ib.numel * sizeof(float));
        ok = gb && ga && bmojo_trainer_read_grad(tb, kb, gb) == 0;
        int ka = -1;
        for (int j = 0; ok && j < bmojo_trainer_tensor_count(ta); j++) {
            bmojo_trainer_tensor(ta, j, &ia);
            if (!strcmp(ia.name, ib.name)) ka = j;
        }
        if (ok && ka >= 0) {
            bmojo_trainer_tensor(ta, ka, &ia);
            ok = ia.numel == ib.numel && bmojo_trainer_read_grad(ta, ka, ga) == 0;
            double e = ok ? tu_rel_err(gb, ga, ib.numel) : 1;
            if (e > worst) worst = e;
            shared++;
        } else if (ok) {
            for (size_t x = 0; x < ib.numel; x++) others_zero &= gb[x] == 0.0f;
        }
        free(gb);
        free(ga);
    }
    tu_check(ok && shared == bmojo_trainer_tensor_count(ta) && worst <= 1e-4,
             "... and the same gradients for its %d tensors: worst rel err %.2e", shared, worst);
    tu_check(ok && others_zero, "... and zero gradients for the Mamba stream's tensors");
    bmojo_trainer_free(tb);
    bmojo_trainer_free(ta);
    free(targets);
}

static void special_case(bmojo_runtime *rt, int window, float theta)
{
    const int T = 45;
    char dir_b[256], dir_a[256], yaml[1024];
    snprintf(dir_b, sizeof dir_b, "/tmp/bmojo-special-%d-b", (int)getpid());
    snprintf(dir_a, sizeof dir_a, "/tmp/bmojo-special-%d-a", (int)getpid());
    mkdir(dir_b, 0700);
    mkdir(dir_a, 0700);
    tensor all[BM_ALL];
    make_tensors(all, 0.2f);
    char rope[48] = "";
    if (theta > 0) snprintf(rope, sizeof rope, ", rope_theta: %g", (double)theta);
    snprintf(yaml, sizeof yaml,
             "name: special-bmojo\nvocab_size: %d\nd_model: %d\nlayers:\n"
             "  - {type: bmojo, window: %d, fading_tokens: 0, eidetic_tokens: 0, heads: %d, kv_heads: %d, head_dim: %d,"
             " d_state: %d, d_conv: %d, expand: 2, dt_rank: %d%s}\n  - {type: mlp, intermediate: %d}\n",
             V, D, window, H, G, DH, NS, KC, R, rope, F);
    int ok = write_model(dir_b, yaml, all, BM_ALL) == 0;
    snprintf(yaml, sizeof yaml,
             "name: special-attention\nvocab_size: %d\nd_model: %d\nlayers:\n"
             "  - {type: attention, window: %d, heads: %d, kv_heads: %d, head_dim: %d%s}\n  - {type: mlp, intermediate: %d}\n",
             V, D, window, H, G, DH, rope, F);
    ok = ok && write_model(dir_a, yaml, all, BM_COMMON) == 0; /* the attention model: the shared tensors */
    for (int i = 0; i < BM_ALL; i++) free(all[i].data);
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
            tu_check(e <= 1e-5, "bmojo with fading = eidetic = 0 equals attention (window %d, rope_theta %g), B=2 prefill: rel err %.2e",
                     window, (double)theta, e);
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
    same_gradients(rt, dir_b, dir_a, ids, T, V, window, theta);
    remove_model(dir_b);
    remove_model(dir_a);
}

/* Central finite difference of the loss along a random unit direction u of tensor `which` (of
 * ts[0..nt)), against the analytic gradient's g.u; the model is written to `dir` twice. */
static void finite_difference(bmojo_runtime *rt, const char *dir, const char *yaml, tensor *ts, int nt, int which,
                              const float *grad, const int32_t *ids, const int32_t *targets, int B, int T)
{
    tensor *t = &ts[which];
    size_t n = (size_t)t->shape[0] * (size_t)(t->ndim > 1 ? t->shape[1] : 1) * (size_t)(t->ndim > 2 ? t->shape[2] : 1);
    float *keep = malloc(n * sizeof(float)), *u = malloc(n * sizeof(float));
    if (!keep || !u) {
        free(keep);
        free(u);
        tu_check(0, "finite difference of %s: out of memory", t->name);
        return;
    }
    memcpy(keep, t->data, n * sizeof(float));
    /* u: half the gradient's direction, half a random one (a purely random direction can be
     * nearly orthogonal to the gradient, leaving g.u below the difference's float noise) */
    double rn = 0, gn = 0, norm = 0, gu = 0;
    for (size_t x = 0; x < n; x++) {
        u[x] = urand(1.0f);
        rn += (double)u[x] * u[x];
        gn += (double)grad[x] * grad[x];
    }
    for (size_t x = 0; x < n; x++) {
        u[x] = (float)(u[x] / sqrt(rn) + grad[x] / sqrt(gn > 0 ? gn : 1));
        norm += (double)u[x] * u[x];
    }
    for (size_t x = 0; x < n; x++) {
        u[x] = (float)(u[x] / sqrt(norm));
        gu += (double)grad[x] * u[x];
    }
    const double h = 1e-2;
    double loss[2] = {0, 0};
    int st = 0;
    for (int side = 0; st == 0 && side < 2; side++) {
        for (size_t x = 0; x < n; x++) t->data[x] = keep[x] + (float)((side ? -h : h) * u[x]);
        bmojo_trainer *tr = NULL;
        st = write_model(dir, yaml, ts, nt) ? BMOJO_EIO : 0;
        if (!st) st = bmojo_trainer_load(rt, dir, 0, &tr);
        if (!st) st = bmojo_trainer_loss(tr, ids, targets, B, T, &loss[side]);
        bmojo_trainer_free(tr);
    }
    memcpy(t->data, keep, n * sizeof(float));
    if (tu_status(st, "finite difference")) {
        const double fd = (loss[0] - loss[1]) / (2 * h);
        tu_check(fabs(fd - gu) <= 1e-2 * fabs(gu) && fabs(gu) > 1e-3,
                 "... gradient of %s along a direction: %.6f, central difference %.6f", t->name, gu, fd);
    }
    free(keep);
    free(u);
}

/* RoPE in a B'MOJO sublayer with fading and eidetic tokens (test 3 of the header). */
static void rope_bmojo(bmojo_runtime *rt)
{
    const int T = 45, w = 8, B = 2;
    char dir_r[256], dir_n[256], dir_p[256], yaml_r[1024], yaml_n[1024];
    snprintf(dir_r, sizeof dir_r, "/tmp/bmojo-rope-%d-r", (int)getpid());
    snprintf(dir_n, sizeof dir_n, "/tmp/bmojo-rope-%d-n", (int)getpid());
    snprintf(dir_p, sizeof dir_p, "/tmp/bmojo-rope-%d-p", (int)getpid());
    mkdir(dir_r, 0700);
    mkdir(dir_n, 0700);
    mkdir(dir_p, 0700);
    tensor ts[BM_ALL];
    make_tensors(ts, 0.5f); /* a larger out_proj: y, and so Kf and Vf, count more */
    const int nt = BM_ALL;
    const char *fmt = "name: rope-bmojo\nvocab_size: %d\nd_model: %d\nlayers:\n"
                      "  - {type: bmojo, window: %d, fading_tokens: 3, eidetic_tokens: 4, heads: %d, kv_heads: %d, "
                      "head_dim: %d, d_state: %d, d_conv: %d, expand: 2, dt_rank: %d%s}\n  - {type: mlp, intermediate: %d}\n";
    snprintf(yaml_r, sizeof yaml_r, fmt, V, D, w, H, G, DH, NS, KC, R, ", rope_theta: 10000", F);
    snprintf(yaml_n, sizeof yaml_n, fmt, V, D, w, H, G, DH, NS, KC, R, "", F);
    int ok = write_model(dir_r, yaml_r, ts, nt) == 0 && write_model(dir_n, yaml_n, ts, nt) == 0;
    int32_t ids[2 * 45], targets[2 * 45], part[2 * 45];
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)((i * 41 + 7) % V);
    for (int i = 0; i < B * T; i++) targets[i] = i % 4 == 1 ? -1 : (int32_t)((i * 17 + 3) % V);
    float *full = malloc(sizeof(float) * B * T * V), *got = malloc(sizeof(float) * B * T * V);
    bmojo_model *m = NULL, *mn = NULL;
    bmojo_state *s = NULL, *sn = NULL;
    if (tu_check(ok && full && got, "rope: checkpoints written") && tu_status(bmojo_model_load(rt, dir_r, &m), dir_r) &&
        tu_status(bmojo_model_load(rt, dir_n, &mn), dir_n) && tu_status(bmojo_state_create(m, B, &s), "state") &&
        tu_status(bmojo_state_create(mn, B, &sn), "state")) {
        int st = bmojo_forward(m, s, ids, T, BMOJO_LOGITS_ALL, full);
        if (!st) st = bmojo_forward(mn, sn, ids, T, BMOJO_LOGITS_ALL, got);
        if (tu_status(st, "rope prefill")) {
            double e = tu_rel_err(got, full, (size_t)B * T * V);
            tu_check(e > 1e-2, "B'MOJO with RoPE (window %d, fading 3, eidetic 4): the rotation moves the logits (rel %.2e)", w, e);
        }
        /* token by token */
        bmojo_state_reset(s);
        double worst = 0;
        for (int t = 0; st == 0 && t < T; t++) {
            int32_t col[2] = {ids[t], ids[T + t]};
            st = bmojo_forward(m, s, col, 1, BMOJO_LOGITS_LAST, got);
            for (int b = 0; st == 0 && b < B; b++) {
                double e = tu_rel_err(got + (size_t)b * V, full + ((size_t)b * T + t) * V, (size_t)V);
                if (e > worst) worst = e;
            }
        }
        if (tu_status(st, "rope decode")) tu_check(worst <= 1e-5, "... decoding %d tokens gives the prefill's logits: worst rel err %.2e", T, worst);
        /* a prefill of 13 tokens, then one of 32 from position 13 */
        bmojo_state_reset(s);
        const int T1 = 13, T2 = T - T1;
        for (int b = 0; b < B; b++) memcpy(part + b * T1, ids + b * T, sizeof(int32_t) * T1);
        st = bmojo_forward(m, s, part, T1, BMOJO_LOGITS_ALL, got);
        double e1 = st ? 1 : 0, e2 = 1;
        for (int b = 0; st == 0 && b < B; b++) {
            double e = tu_rel_err(got + (size_t)b * T1 * V, full + (size_t)b * T * V, (size_t)T1 * V);
            if (e > e1) e1 = e;
        }
        for (int b = 0; b < B; b++) memcpy(part + b * T2, ids + b * T + T1, sizeof(int32_t) * T2);
        if (!st) st = bmojo_forward(m, s, part, T2, BMOJO_LOGITS_ALL, got);
        for (int b = 0; st == 0 && b < B; b++) {
            double e = tu_rel_err(got + (size_t)b * T2 * V, full + ((size_t)b * T + T1) * V, (size_t)T2 * V);
            e2 = b ? fmax(e2, e) : e;
        }
        if (tu_status(st, "rope prefill in two parts"))
            tu_check(e1 <= 1e-5 && e2 <= 1e-5, "... a prefill of %d then %d tokens too: rel err %.2e / %.2e", T1, T2, e1, e2);
    }
    bmojo_state_free(s);
    bmojo_state_free(sn);
    bmojo_model_free(m);
    bmojo_model_free(mn);
    /* gradients against central differences of the loss */
    bmojo_trainer *tr = NULL;
    double loss = 0;
    if (ok && tu_status(bmojo_trainer_load(rt, dir_r, 0, &tr), dir_r) &&
        tu_status(bmojo_trainer_grad(tr, ids, targets, B, T, &loss), "rope gradients")) {
        /* the training pass computes the model that inference runs: its loss from the prefill's logits */
        double want = 0;
        int scored = 0;
        for (int r = 0; r < B * T; r++) {
            if (targets[r] < 0) continue;
            const float *z = full + (size_t)r * V;
            double mx = z[0], sum = 0;
            for (int v = 1; v < V; v++) mx = fmax(mx, z[v]);
            for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
            want += mx + log(sum) - z[targets[r]];
            scored++;
        }
        want /= scored;
        tu_check(fabs(loss - want) <= 1e-5 * want, "... the training pass's loss %.7f is the prefill logits' %.7f", loss, want);
        /* out_proj reaches the attention only through y, i.e. Kf and Vf */
        const char *names[3] = {"layers.0.attn.q_proj.weight", "layers.0.attn.k_proj.weight",
                                "layers.0.mamba.out_proj.weight"};
        for (int q = 0; q < 3; q++) {
            int kt = -1, kp = -1;
            for (int j = 0; j < nt; j++)
                if (!strcmp(ts[j].name, names[q])) kt = j;
            for (int j = 0; j < bmojo_trainer_tensor_count(tr); j++) {
                bmojo_tensor_info info;
                bmojo_trainer_tensor(tr, j, &info);
                if (!strcmp(info.name, names[q])) kp = j;
            }
            bmojo_tensor_info info;
            float *g = NULL;
            if (kt >= 0 && kp >= 0 && bmojo_trainer_tensor(tr, kp, &info) == 0 && (g = malloc(info.numel * sizeof(float))) &&
                bmojo_trainer_read_grad(tr, kp, g) == 0)
                finite_difference(rt, dir_p, yaml_r, ts, nt, kt, g, ids, targets, B, T);
            else
                tu_check(0, "rope: gradient of %s not found", names[q]);
            free(g);
        }
    }
    bmojo_trainer_free(tr);
    for (int i = 0; i < nt; i++) free(ts[i].data);
    free(full);
    free(got);
    remove_model(dir_r);
    remove_model(dir_n);
    remove_model(dir_p);
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
    special_case(rt, 5, 0.0f);
    special_case(rt, 16, 0.0f);
    special_case(rt, 5, 10000.0f);
    special_case(rt, 16, 100.0f);
    rope_bmojo(rt);
    long_run(rt, tu_env("BMOJO_SOURCE_ROOT", "."));
    bmojo_runtime_free(rt);
    tu_check_no_leaked_buffers();
    return tu_finish();
}
