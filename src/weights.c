/* weights.c — puts a model's weights on the device: from a safetensors checkpoint (every name and
 * shape checked against the config, every checkpoint tensor required to be one the config reads,
 * F16/BF16 widened to f32) or, for benchmarks and tests without a checkpoint, seeded random values
 * with the usual Mamba / Transformer initialization scales.
 * Projections used side by side are fused here (q|k|v, gate|up) so each needs one GEMM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mem_budget.h"
#include "model.h"
#include "ops.h"

typedef enum { INIT_FANIN, INIT_ONES, INIT_ZEROS, INIT_A_LOG, INIT_DT_BIAS, INIT_EMBED, INIT_CONV } init_kind;

typedef struct {
    bm_model *m;
    const bm_st_set *st; /* NULL: random */
    unsigned char **used; /* per file of st, per tensor: 1 once the config has read it */
    uint64_t rng;
    float *host;         /* staging buffer */
    size_t host_cap;
    /* planning pass: nothing is read or allocated, the sizes are added up (the memory budget) */
    int plan_only;
    uint64_t plan_bytes;  /* device bytes of every weight buffer */
    size_t plan_largest;  /* floats of the largest buffer: the host staging buffer */
} loader;

static double next_uniform(loader *L) /* [0, 1) */
{
    uint64_t x = L->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    L->rng = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

static void fill_random(loader *L, float *dst, size_t n, int64_t rows, int64_t cols, init_kind init, size_t fan_in)
{
    double a = 1.0 / sqrt((double)(fan_in ? fan_in : 1));
    for (size_t i = 0; i < n; i++) {
        double u = next_uniform(L);
        switch (init) {
        case INIT_FANIN: dst[i] = (float)((2 * u - 1) * a); break;
        case INIT_EMBED: dst[i] = (float)((2 * u - 1) * 0.05); break;
        case INIT_CONV: dst[i] = (float)((2 * u - 1) * a); break;
        case INIT_ONES: dst[i] = 1.0f; break;
        case INIT_ZEROS: dst[i] = 0.0f; break;
        case INIT_A_LOG: dst[i] = (float)log((double)(i % (size_t)cols) + 1.0); break; /* A = -(1..n) */
        case INIT_DT_BIAS: { /* dt ~ log-uniform in [1e-3, 1e-1], stored as softplus^-1(dt) */
            double dt = exp(log(1e-3) + u * (log(1e-1) - log(1e-3)));
            dst[i] = (float)(dt + log(-expm1(-dt)));
            break;
        }
        }
    }
    (void)rows;
}

static int ensure_host(loader *L, size_t n)
{
    if (n <= L->host_cap) return 0;
    float *p = realloc(L->host, n * sizeof(float));
    if (!p) return bm_fail(BMOJO_ENOMEM, "out of host memory staging %zu floats", n);
    L->host = p;
    L->host_cap = n;
    return 0;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
}

/* Reads tensor `name` of the given shape into dst (nelem floats), or fills it randomly. */
static int fetch(loader *L, const char *name, int ndim, const int64_t *shape, init_kind init, size_t fan_in, float *dst)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (!L->st) {
        fill_random(L, dst, n, ndim > 0 ? shape[0] : 1, ndim > 1 ? shape[ndim - 1] : 1, init, fan_in);
        return 0;
    }
    const bm_st_file *f = NULL;
    const bm_st_tensor *t = bm_st_set_find(L->st, name, &f);
    if (!t) return bm_fail(BMOJO_ETENSOR, "tensor %s is missing from the checkpoint", name);
    L->used[f - L->st->files][t - f->tensors] = 1;
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[96], got[96];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return bm_fail(BMOJO_ETENSOR, "tensor %s has shape %s, the config needs %s", name, got, want);
    }
    if (t->dtype != BM_DT_F32 && t->dtype != BM_DT_F16 && t->dtype != BM_DT_BF16)
        return bm_fail(BMOJO_ETENSOR, "tensor %s has dtype %s; weights must be F32, F16 or BF16", name,
                       bm_dtype_name(t->dtype));
    int st = bm_st_to_f32(f, t, dst);
    if (st) return bm_fail_context(st, "tensor %s", name);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) return bm_fail(BMOJO_ETENSOR, "tensor %s holds a non-finite value at element %zu", name, i);
    return 0;
}

/* One device buffer made of `nparts` tensors stacked along the first dimension. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[3];
    init_kind init;
    size_t fan_in;
} part;

/* transform: NULL, or applied to the host values before they go up (A_log -> A). */
static int upload_parts_tf(loader *L, const part *parts, int nparts, void (*transform)(float *, size_t), cl_mem *out)
{
    size_t total = 0, sizes[4];
    for (int p = 0; p < nparts; p++) {
        sizes[p] = 1;
        for (int i = 0; i < parts[p].ndim; i++) sizes[p] *= (size_t)parts[p].shape[i];
        total += sizes[p];
    }
    if (L->plan_only) {
        L->plan_bytes += total * sizeof(float);
        if (total > L->plan_largest) L->plan_largest = total;
        return 0;
    }
    int st = ensure_host(L, total);
    size_t off = 0;
    for (int p = 0; st == 0 && p < nparts; p++) {
        st = fetch(L, parts[p].name, parts[p].ndim, parts[p].shape, parts[p].init, parts[p].fan_in, L->host + off);
        off += sizes[p];
    }
    if (st == 0 && transform) transform(L->host, total);
    if (st == 0) st = bm_alloc(L->m->rt, total * sizeof(float), out);
    if (st == 0) st = bm_upload(L->m->rt, *out, 0, L->host, total * sizeof(float));
    if (st == 0) {
        L->m->n_params += total;
        L->m->weight_bytes += total * sizeof(float);
    }
    return st;
}

static int upload_parts(loader *L, const part *parts, int nparts, cl_mem *out)
{
    return upload_parts_tf(L, parts, nparts, NULL, out);
}

static int upload1(loader *L, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, init_kind init,
                   size_t fan_in, cl_mem *out)
{
    part p = {name, ndim, {d0, d1, d2}, init, fan_in};
    return upload_parts(L, &p, 1, out);
}

/* A_log is stored; the scan wants A = -exp(A_log). */
static void neg_exp(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = -expf(x[i]);
}

static int upload_A(loader *L, const char *name, int64_t di, int64_t n, cl_mem *out)
{
    part p = {name, 2, {di, n, 0}, INIT_A_LOG, 0};
    return upload_parts_tf(L, &p, 1, neg_exp, out);
}

static int tname(const bm_config *c, int layer, const char *suffix, char *buf, size_t n)
{
    return bm_config_tensor_name(c, layer, suffix, buf, n);
}

static int load_mamba(loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    const bm_config *c = &L->m->cfg;
    const bm_mamba_cfg *mc = &lc->mamba;
    int64_t d = c->d_model, di = mc->d_inner, n = mc->d_state, R = mc->dt_rank, k = mc->d_conv;
    char nm[4][256];
    int st = 0;
#define NAME(j, suffix) (st = st ? st : tname(c, i, suffix, nm[j], sizeof nm[j]), nm[j])
    if (lc->type == BM_LAYER_BMOJO) {
        /* in_proj and q|k|v both read h: one weight [2*di + (H + 2*Hkv)*dh, d], so one GEMM */
        const bm_attn_cfg *ac = &lc->attn;
        int64_t qd = (int64_t)ac->heads * ac->head_dim, kvd = (int64_t)ac->kv_heads * ac->head_dim;
        NAME(0, "mamba.in_proj.weight");
        NAME(1, "attn.q_proj.weight");
        NAME(2, "attn.k_proj.weight");
        NAME(3, "attn.v_proj.weight");
        if (st) return st;
        part parts[4] = {{nm[0], 2, {2 * di, d, 0}, INIT_FANIN, (size_t)d},
                         {nm[1], 2, {qd, d, 0}, INIT_FANIN, (size_t)d},
                         {nm[2], 2, {kvd, d, 0}, INIT_FANIN, (size_t)d},
                         {nm[3], 2, {kvd, d, 0}, INIT_FANIN, (size_t)d}};
        st = upload_parts(L, parts, 4, &w->in_proj);
        w->wqkv_row = (size_t)(2 * di);
    } else
        st = upload1(L, NAME(0, "mamba.in_proj.weight"), 2, 2 * di, d, 0, INIT_FANIN, (size_t)d, &w->in_proj);
    if (!st && mc->proj_bias) st = upload1(L, NAME(0, "mamba.in_proj.bias"), 1, 2 * di, 0, 0, INIT_ZEROS, 0, &w->in_proj_b);
    if (!st) st = upload1(L, NAME(0, "mamba.conv1d.weight"), 3, di, 1, k, INIT_CONV, (size_t)k, &w->conv_w);
    if (!st && mc->conv_bias) st = upload1(L, NAME(0, "mamba.conv1d.bias"), 1, di, 0, 0, INIT_CONV, (size_t)k, &w->conv_b);
    if (!st) st = upload1(L, NAME(0, "mamba.x_proj.weight"), 2, R + 2 * n, di, 0, INIT_FANIN, (size_t)di, &w->x_proj);
    if (!st) st = upload1(L, NAME(0, "mamba.dt_proj.weight"), 2, di, R, 0, INIT_FANIN, (size_t)R, &w->dt_proj);
    if (!st) st = upload1(L, NAME(0, "mamba.dt_proj.bias"), 1, di, 0, 0, INIT_DT_BIAS, 0, &w->dt_bias);
    if (!st) st = upload_A(L, NAME(0, "mamba.A_log"), di, n, &w->A);
    if (!st) st = upload1(L, NAME(0, "mamba.D"), 1, di, 0, 0, INIT_ONES, 0, &w->D);
    if (!st) st = upload1(L, NAME(0, "mamba.out_proj.weight"), 2, d, di, 0, INIT_FANIN, (size_t)di, &w->out_proj);
    if (!st && mc->proj_bias) st = upload1(L, NAME(0, "mamba.out_proj.bias"), 1, d, 0, 0, INIT_ZEROS, 0, &w->out_proj_b);
    if (!st && mc->dt_bc_norm) {
        st = upload1(L, NAME(0, "mamba.dt_norm.weight"), 1, R, 0, 0, INIT_ONES, 0, &w->dt_norm);
        if (!st) st = upload1(L, NAME(0, "mamba.b_norm.weight"), 1, n, 0, 0, INIT_ONES, 0, &w->b_norm);
        if (!st) st = upload1(L, NAME(0, "mamba.c_norm.weight"), 1, n, 0, 0, INIT_ONES, 0, &w->c_norm);
    }
    return st;
}

static int load_attention(loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    const bm_config *c = &L->m->cfg;
    const bm_attn_cfg *ac = &lc->attn;
    int64_t d = c->d_model, qd = (int64_t)ac->heads * ac->head_dim, kvd = (int64_t)ac->kv_heads * ac->head_dim;
    char nm[4][256];
    int st = 0;
    NAME(0, "attn.q_proj.weight");
    NAME(1, "attn.k_proj.weight");
    NAME(2, "attn.v_proj.weight");
    NAME(3, "attn.o_proj.weight");
    if (st) return st;
    if (lc->type == BM_LAYER_BMOJO) /* q|k|v were loaded with in_proj (load_mamba) */
        return upload1(L, nm[3], 2, d, qd, 0, INIT_FANIN, (size_t)qd, &w->wo);
    part qkv[3] = {{nm[0], 2, {qd, d, 0}, INIT_FANIN, (size_t)d},
                   {nm[1], 2, {kvd, d, 0}, INIT_FANIN, (size_t)d},
                   {nm[2], 2, {kvd, d, 0}, INIT_FANIN, (size_t)d}};
    st = upload_parts(L, qkv, 3, &w->wqkv);
    if (!st) st = upload1(L, nm[3], 2, d, qd, 0, INIT_FANIN, (size_t)qd, &w->wo);
    return st;
}

static int load_mlp(loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    const bm_config *c = &L->m->cfg;
    int64_t d = c->d_model, f = lc->intermediate;
    char nm[3][256];
    int st = 0;
    NAME(0, "mlp.gate_proj.weight");
    NAME(1, "mlp.up_proj.weight");
    NAME(2, "mlp.down_proj.weight");
#undef NAME
    if (st) return st;
    part gu[2] = {{nm[0], 2, {f, d, 0}, INIT_FANIN, (size_t)d}, {nm[1], 2, {f, d, 0}, INIT_FANIN, (size_t)d}};
    st = upload_parts(L, gu, 2, &w->w_gate_up);
    if (!st) st = upload1(L, nm[2], 2, d, f, 0, INIT_FANIN, (size_t)f, &w->w_down);
    return st;
}

/* bmojo, decoding fusion: Kf | Vf = y [Wk | Wv]^T with y = ys out_proj^T, i.e. Kf | Vf =
 * ys ((Wk|Wv) out_proj)^T. out_proj [d, di] is replaced by [d + 2*Hkv*dh, di]: its rows, then the
 * product (computed here on the device, in fp32), so that a decoding step gets y and Kf | Vf
 * from one GEMV (bm_op_gemv_split) instead of two dependent launches; prefill keeps using the
 * first d rows. Costs 2*Hkv*dh*di floats per layer (3 MiB at the 130M scale). */
static int fold_out_kv(bm_model *m, const bm_layer_cfg *lc, bm_layer_weights *w)
{
    const size_t d = (size_t)m->cfg.d_model, di = (size_t)lc->mamba.d_inner;
    const size_t kv = 2 * (size_t)lc->attn.kv_heads * (size_t)lc->attn.head_dim;
    const size_t krow = w->wqkv_row + (size_t)lc->attn.heads * (size_t)lc->attn.head_dim;
    cl_mem both = NULL;
    int st = bm_alloc(m->rt, (d + kv) * di * sizeof(float), &both);
    if (!st) st = bm_op_copy(m->rt, w->out_proj, both, d * di);
    if (!st) st = bm_gemm_nn(m->rt, kv, di, d, w->in_proj, krow * d, d, w->out_proj, 0, di, both, d * di, di);
    if (!st) st = bm_finish(m->rt);
    if (st) {
        bm_release(both);
        return bm_fail_context(st, "folding Wk|Wv into out_proj");
    }
    bm_release(w->out_proj);
    w->out_proj = both;
    w->out_kv_rows = kv;
    return 0;
}

/* The extra rows fold_out_kv gives out_proj, in bytes. */
static uint64_t fold_out_kv_bytes(const bm_layer_cfg *lc)
{
    return 2 * (uint64_t)lc->attn.kv_heads * (uint64_t)lc->attn.head_dim * (uint64_t)lc->mamba.d_inner * sizeof(float);
}

/* Tensors a checkpoint may carry that no config reads and whose absence from the model changes
 * nothing: buffers that older transformers versions saved along with the weights. Matched on the
 * end of the name. */
static const char *const harmless_extras[] = {
    "rotary_emb.inv_freq", /* RoPE's inverse frequencies, recomputed from rope_theta */
};

int bm_weights_harmless_extra(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof harmless_extras / sizeof harmless_extras[0]; i++) {
        size_t k = strlen(harmless_extras[i]);
        if (n >= k && strcmp(name + n - k, harmless_extras[i]) == 0) return 1;
    }
    return 0;
}

/* The names listed in the message; the count covers the rest. */
#define UNUSED_NAMES_SHOWN 4

/* Every checkpoint tensor must have been read by the config (a checkpoint with more layers than
 * the config, or a misspelled name, would otherwise run as a different model without a word). */
static int check_unused(const loader *L)
{
    const bm_st_set *s = L->st;
    size_t n_unused = 0, off = 0;
    char names[UNUSED_NAMES_SHOWN * 128 + 8];
    names[0] = 0;
    for (int k = 0; k < s->n_files; k++)
        for (int j = 0; j < s->files[k].n; j++) {
            const char *name = s->files[k].tensors[j].name;
            if (L->used[k][j] || bm_weights_harmless_extra(name)) continue;
            if (n_unused < UNUSED_NAMES_SHOWN && off < sizeof names)
                off += (size_t)snprintf(names + off, sizeof names - off, "%s%.120s", n_unused ? ", " : "", name);
            n_unused++;
        }
    if (n_unused == 0) return 0;
    char where[64];
    if (s->n_files == 1) snprintf(where, sizeof where, "%s", "model.safetensors");
    else snprintf(where, sizeof where, "the %d shards of model.safetensors.index.json", s->n_files);
    return bm_fail(BMOJO_ETENSOR,
                   "%s %s %zu tensor%s the config does not use: %s%s (pass --allow-unused-tensors, or "
                   "BMOJO_LOAD_ALLOW_UNUSED_TENSORS to bmojo_model_load_flags, to ignore them)",
                   where, s->n_files == 1 ? "has" : "hold", n_unused, n_unused == 1 ? "" : "s", names,
                   n_unused > UNUSED_NAMES_SHOWN ? ", ..." : "");
}

/* Every weight buffer in order; with L->plan_only the sizes are only added up. */
static int load_all(loader *L, unsigned flags)
{
    bm_model *m = L->m;
    bm_config *c = &m->cfg;
    const bm_st_set *st_set = L->st;
    int64_t V = c->vocab_size, d = c->d_model;
    int st = upload1(L, c->embed_name, 2, V, d, 0, INIT_EMBED, 0, &m->embed);
    for (int i = 0; st == 0 && i < c->n_layers; i++) {
        const bm_layer_cfg *lc = &c->layers[i];
        bm_layer_weights *w = &m->layers[i];
        char nm[256];
        st = tname(c, i, "norm.weight", nm, sizeof nm);
        if (!st) st = upload1(L, nm, 1, d, 0, 0, INIT_ONES, 0, &w->norm);
        if (!st && (lc->type == BM_LAYER_MAMBA || lc->type == BM_LAYER_BMOJO)) st = load_mamba(L, i, lc, w);
        if (!st && (lc->type == BM_LAYER_ATTENTION || lc->type == BM_LAYER_BMOJO)) st = load_attention(L, i, lc, w);
        if (!st && lc->type == BM_LAYER_MLP) st = load_mlp(L, i, lc, w);
        if (!st && lc->type == BM_LAYER_BMOJO && m->rt->fuse_decode) {
            if (L->plan_only) L->plan_bytes += fold_out_kv_bytes(lc);
            else st = fold_out_kv(m, lc, w);
        }
        if (st) st = bm_fail_context(st, "layers[%d] (%s)", i, bm_layer_type_name(lc->type));
    }
    if (!st) st = upload1(L, c->norm_f_name, 1, d, 0, 0, INIT_ONES, 0, &m->norm_f);
    if (!st) {
        /* lm_head: the checkpoint's when present, else tied to the embedding (contract 1). */
        const bm_st_file *head_file = NULL;
        int has_head = st_set && bm_st_set_find(st_set, c->lm_head_name, &head_file);
        if (has_head) st = upload1(L, c->lm_head_name, 2, V, d, 0, INIT_FANIN, (size_t)d, &m->lm_head);
        else if (c->tie_embeddings) m->lm_head = m->embed;
        else if (!st_set) st = upload1(L, c->lm_head_name, 2, V, d, 0, INIT_FANIN, (size_t)d, &m->lm_head);
        else st = bm_fail(BMOJO_ETENSOR, "tensor %s is missing and the config does not tie embeddings", c->lm_head_name);
    }
    if (!st && st_set && !L->plan_only && !(flags & BMOJO_LOAD_ALLOW_UNUSED_TENSORS)) st = check_unused(L);
    return st;
}

/* The loader's marks live as long as the load: one byte per checkpoint tensor. */
int bm_weights_load(bm_model *m, const bm_st_set *st_set, uint64_t seed, unsigned flags)
{
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    if (!m->layers) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    /* The memory budget first: a model that cannot fit fails here, before any allocation. */
    loader plan = {.m = m, .st = st_set, .plan_only = 1};
    int st = load_all(&plan, flags);
    if (!st)
        st = bm_mem_check(m->rt, "the weights", plan.plan_bytes, plan.plan_bytes,
                          (uint64_t)plan.plan_largest * sizeof(float));
    if (st) return st;
    loader L = {.m = m, .st = st_set, .rng = seed ? seed * 0x9E3779B97F4A7C15ull | 1 : 0x2545F4914F6CDD1Dull};
    if (st_set) {
        L.used = calloc((size_t)st_set->n_files + 1, sizeof *L.used);
        for (int k = 0; L.used && k < st_set->n_files; k++)
            if (!(L.used[k] = calloc((size_t)st_set->files[k].n + 1, 1))) st = BMOJO_ENOMEM;
        if (!L.used || st) st = bm_fail(BMOJO_ENOMEM, "out of host memory");
    }
    if (!st) st = load_all(&L, flags);
    for (int k = 0; L.used && k < st_set->n_files; k++) free(L.used[k]);
    free(L.used);
    free(L.host);
    return st;
}

void bm_weights_free(bm_model *m)
{
    if (m->layers) {
        for (int i = 0; i < m->cfg.n_layers; i++) {
            bm_layer_weights *w = &m->layers[i];
#define RELEASE(f) bm_release(w->f);
            BM_LAYER_WEIGHT_BUFFERS(RELEASE)
#undef RELEASE
        }
        free(m->layers);
        m->layers = NULL;
    }
    if (m->lm_head != m->embed) bm_release(m->lm_head);
    bm_release(m->embed);
    bm_release(m->norm_f);
    m->embed = m->lm_head = m->norm_f = NULL;
}
