/* weights.c — puts a model's weights on the device: from a safetensors checkpoint (every name and
 * shape checked against the config, every checkpoint tensor required to be one the config reads,
 * F16/BF16 widened to f32) or, for benchmarks and tests without a checkpoint, seeded random values
 * with the usual Mamba / Transformer initialization scales. The weight matrices (bm_load_matrix_*:
 * the GEMMs' W, the embedding, the head) are then stored as the model's matrix_store says: fp32,
 * or f16 (BMOJO_LOAD_WEIGHTS_F16, or AUTO with a checkpoint whose matrices are all F16/BF16),
 * narrowed on the host with round-to-nearest-even and checked against f16's range.
 * The tensors of each sublayer are named, shaped and fused (q|k|v, gate|up, so each needs one
 * GEMM) by that kind's loader (bm_layer_kind.load in layer_*.c); this file holds the machinery
 * they share (weights_loader.h), the embedding, the head and the unused-tensor check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "half.h"
#include "layer_kind.h"
#include "mem_budget.h"
#include "model.h"
#include "weights_loader.h"

/* xorshift64: [0, 1) */
static double next_uniform(uint64_t *rng)
{
    uint64_t x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

void bm_weights_fill_random(uint64_t *rng, float *dst, size_t n, int64_t cols, bm_init_kind init, size_t fan_in)
{
    double a = 1.0 / sqrt((double)(fan_in ? fan_in : 1));
    for (size_t i = 0; i < n; i++) {
        double u = next_uniform(rng);
        switch (init) {
        case BM_INIT_FANIN: dst[i] = (float)((2 * u - 1) * a); break;
        case BM_INIT_EMBED: dst[i] = (float)((2 * u - 1) * 0.05); break;
        case BM_INIT_CONV: dst[i] = (float)((2 * u - 1) * a); break;
        case BM_INIT_ONES: dst[i] = 1.0f; break;
        case BM_INIT_ZEROS: dst[i] = 0.0f; break;
        case BM_INIT_A_LOG: dst[i] = (float)log((double)(i % (size_t)cols) + 1.0); break; /* A = -(1..n) */
        case BM_INIT_DT_BIAS: { /* dt ~ log-uniform in [1e-3, 1e-1], stored as softplus^-1(dt) */
            double dt = exp(log(1e-3) + u * (log(1e-1) - log(1e-3)));
            dst[i] = (float)(dt + log(-expm1(-dt)));
            break;
        }
        }
    }
}

static int ensure_host(bm_loader *L, size_t n)
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
static int fetch(bm_loader *L, const char *name, int ndim, const int64_t *shape, bm_init_kind init, size_t fan_in, float *dst)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (!L->st) {
        bm_weights_fill_random(&L->rng, dst, n, ndim > 1 ? shape[ndim - 1] : 1, init, fan_in);
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

/* Narrows the staged values of the parts to f16 in L->host16, refusing a value beyond f16's range
 * (BF16 checkpoints reach 3.4e38; f16 stops at 65504) with the tensor's name. */
static int narrow_parts(bm_loader *L, const bm_load_part *parts, int nparts, const size_t *sizes, size_t total)
{
    if (total > L->host16_cap) {
        uint16_t *p = realloc(L->host16, total * sizeof *p);
        if (!p) return bm_fail(BMOJO_ENOMEM, "out of host memory staging %zu f16 values", total);
        L->host16 = p;
        L->host16_cap = total;
    }
    size_t off = 0;
    for (int p = 0; p < nparts; p++) {
        for (size_t i = 0; i < sizes[p]; i++) {
            int overflow = 0;
            L->host16[off + i] = bm_half_from_float(L->host[off + i], &overflow);
            if (overflow)
                return bm_fail(BMOJO_ETENSOR,
                               "tensor %s: element %zu is %g, beyond f16's largest finite value %g, so the tensor "
                               "cannot be stored as f16 (load it with f32 weight storage: --weights f32)",
                               parts[p].name ? parts[p].name : "(random)", i, (double)L->host[off + i],
                               (double)BM_HALF_MAX);
        }
        off += sizes[p];
    }
    return 0;
}

/* The dtype check of the automatic storage: counts a matrix part's checkpoint tensor, and whether
 * it is F16 or BF16 (missing tensors are the real pass's error). */
static void plan_matrix_dtype(bm_loader *L, const bm_load_part *part)
{
    const bm_st_file *f = NULL;
    const bm_st_tensor *t = L->st && part->name ? bm_st_set_find(L->st, part->name, &f) : NULL;
    if (!t) return;
    L->plan_matrices++;
    if (t->dtype == BM_DT_F16 || t->dtype == BM_DT_BF16) L->plan_matrices_half++;
}

/* One device buffer made of `nparts` tensors stacked along the first dimension, stored as `store`. */
static int load_buffer(bm_loader *L, const bm_load_part *parts, int nparts, void (*transform)(float *, size_t),
                       bm_store store, int is_matrix, cl_mem *out)
{
    size_t total = 0, sizes[BM_LOAD_MAX_PARTS];
    if (nparts < 1 || nparts > BM_LOAD_MAX_PARTS)
        return bm_fail(BMOJO_EINVAL, "bm_load_parts: %d parts, at most %d", nparts, BM_LOAD_MAX_PARTS);
    for (int p = 0; p < nparts; p++) {
        sizes[p] = 1;
        for (int i = 0; i < parts[p].ndim; i++) sizes[p] *= (size_t)parts[p].shape[i];
        total += sizes[p];
    }
    if (L->plan_only) {
        if (is_matrix) {
            L->plan_matrix_elems += total;
            for (int p = 0; p < nparts; p++) plan_matrix_dtype(L, &parts[p]);
        } else
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
    const void *src = L->host;
    if (st == 0 && store == BM_STORE_F16) {
        st = narrow_parts(L, parts, nparts, sizes, total);
        src = L->host16;
    }
    const size_t bytes = total * bm_store_bytes(store);
    if (st == 0) st = bm_alloc(L->m->rt, bytes, out);
    if (st == 0) st = bm_upload(L->m->rt, *out, 0, src, bytes);
    if (st == 0) {
        L->m->n_params += total;
        L->m->weight_bytes += bytes;
    }
    return st;
}

int bm_load_parts_tf(bm_loader *L, const bm_load_part *parts, int nparts, void (*transform)(float *, size_t), cl_mem *out)
{
    return load_buffer(L, parts, nparts, transform, BM_STORE_F32, 0, out);
}

int bm_load_matrix_parts(bm_loader *L, const bm_load_part *parts, int nparts, bm_wmat *out)
{
    out->store = L->m->matrix_store;
    return load_buffer(L, parts, nparts, NULL, out->store, 1, &out->buf);
}

int bm_load_matrix1(bm_loader *L, const char *name, int64_t d0, int64_t d1, bm_init_kind init, size_t fan_in,
                    bm_wmat *out)
{
    bm_load_part p = {name, 2, {d0, d1, 0}, init, fan_in};
    return bm_load_matrix_parts(L, &p, 1, out);
}

int bm_load_parts(bm_loader *L, const bm_load_part *parts, int nparts, cl_mem *out)
{
    return bm_load_parts_tf(L, parts, nparts, NULL, out);
}

int bm_load1(bm_loader *L, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, bm_init_kind init,
             size_t fan_in, cl_mem *out)
{
    bm_load_part p = {name, ndim, {d0, d1, d2}, init, fan_in};
    return bm_load_parts(L, &p, 1, out);
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
static int check_unused(const bm_loader *L)
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
static int load_all(bm_loader *L, unsigned flags)
{
    bm_model *m = L->m;
    bm_config *c = &m->cfg;
    const bm_st_set *st_set = L->st;
    int64_t V = c->vocab_size, d = c->d_model;
    int st = bm_load_matrix1(L, c->embed_name, V, d, BM_INIT_EMBED, 0, &m->embed);
    for (int i = 0; st == 0 && i < c->n_layers; i++) {
        const bm_layer_cfg *lc = &c->layers[i];
        bm_layer_weights *w = &m->layers[i];
        const bm_layer_kind *kind = bm_layer_kind_of(lc->type);
        char nm[256];
        /* every later use of the kind's table (state, forward, describe) relies on this check */
        if (!kind) st = bm_fail(BMOJO_ECONFIG, "unknown sublayer kind %d", (int)lc->type);
        if (!st) st = bm_config_tensor_name(c, i, "norm.weight", nm, sizeof nm);
        if (!st) st = bm_load1(L, nm, 1, d, 0, 0, BM_INIT_ONES, 0, &w->norm);
        if (!st) st = kind->load(L, i, lc, w);
        if (st) st = bm_fail_context(st, "layers[%d] (%s)", i, bm_layer_type_name(lc->type));
    }
    if (!st) st = bm_load1(L, c->norm_f_name, 1, d, 0, 0, BM_INIT_ONES, 0, &m->norm_f);
    if (!st) {
        /* lm_head: the checkpoint's when present, else tied to the embedding (contract 1). */
        const bm_st_file *head_file = NULL;
        int has_head = st_set && bm_st_set_find(st_set, c->lm_head_name, &head_file);
        if (has_head) st = bm_load_matrix1(L, c->lm_head_name, V, d, BM_INIT_FANIN, (size_t)d, &m->lm_head);
        else if (c->tie_embeddings) m->lm_head = m->embed;
        else if (!st_set) st = bm_load_matrix1(L, c->lm_head_name, V, d, BM_INIT_FANIN, (size_t)d, &m->lm_head);
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
    bm_loader plan = {.m = m, .st = st_set, .plan_only = 1};
    int st = load_all(&plan, flags);
    if (st) return st;
    /* The matrices' storage: as asked, else (auto) f16 when a checkpoint holds them all as F16 or
     * BF16 (what llama.cpp does with an F16 GGUF: the file's precision is kept), fp32 otherwise. */
    if (flags & BMOJO_LOAD_WEIGHTS_F16) m->matrix_store = BM_STORE_F16;
    else if (flags & BMOJO_LOAD_WEIGHTS_F32) m->matrix_store = BM_STORE_F32;
    else
        m->matrix_store = plan.plan_matrices > 0 && plan.plan_matrices_half == plan.plan_matrices ? BM_STORE_F16
                                                                                                 : BM_STORE_F32;
    const uint64_t bytes = plan.plan_bytes + plan.plan_matrix_elems * bm_store_bytes(m->matrix_store) +
                           (m->matrix_store == BM_STORE_F16 ? plan.plan_bytes_if_f16 : 0);
    const uint64_t staging = (uint64_t)plan.plan_largest * (sizeof(float) + (m->matrix_store == BM_STORE_F16 ? 2 : 0));
    st = bm_mem_check(m->rt, "the weights", bytes, bytes, staging);
    if (st) return st;
    bm_loader L = {.m = m, .st = st_set, .rng = seed ? seed * 0x9E3779B97F4A7C15ull | 1 : 0x2545F4914F6CDD1Dull};
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
    free(L.host16);
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
#define RELEASE_MATRIX(f) bm_release(w->f.buf);
            BM_LAYER_WEIGHT_MATRICES(RELEASE_MATRIX)
#undef RELEASE_MATRIX
        }
        free(m->layers);
        m->layers = NULL;
    }
    if (m->lm_head.buf != m->embed.buf) bm_release(m->lm_head.buf);
    bm_release(m->embed.buf);
    bm_release(m->norm_f);
    m->embed.buf = m->lm_head.buf = m->norm_f = NULL;
}
