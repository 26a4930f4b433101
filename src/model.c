/* model.c — bmojo_model: loading a model folder or a config with random weights, and describing
 * it (parameter count, per-sublayer summary). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "layer_kind.h"
#include "model.h"

static int model_new(bmojo_runtime *rt, bmojo_model **out, bm_model **m)
{
    if (!rt || !out) return bm_fail(BMOJO_EINVAL, "bmojo_model: runtime and output must not be NULL");
    *out = NULL;
    *m = calloc(1, sizeof **m);
    if (!*m) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    (*m)->rt = rt;
    return 0;
}

/* At most one weight storage. */
static int weight_flags_ok(unsigned flags)
{
    return (flags & (BMOJO_LOAD_WEIGHTS_F32 | BMOJO_LOAD_WEIGHTS_F16)) != (BMOJO_LOAD_WEIGHTS_F32 | BMOJO_LOAD_WEIGHTS_F16);
}

int bmojo_model_load(bmojo_runtime *rt, const char *dir, bmojo_model **out)
{
    return bmojo_model_load_flags(rt, dir, 0, out);
}

int bmojo_model_load_flags(bmojo_runtime *rt, const char *dir, unsigned flags, bmojo_model **out)
{
    const unsigned known = BMOJO_LOAD_ALLOW_UNUSED_TENSORS | BMOJO_LOAD_WEIGHTS_F32 | BMOJO_LOAD_WEIGHTS_F16;
    bm_model *m = NULL;
    int st = model_new(rt, out, &m);
    if (st) return st;
    if (!dir || (flags & ~known) || !weight_flags_ok(flags)) {
        free(m);
        if (!dir) return bm_fail(BMOJO_EINVAL, "bmojo_model_load: no model folder given");
        if (!weight_flags_ok(flags))
            return bm_fail(BMOJO_EINVAL, "bmojo_model_load_flags: both BMOJO_LOAD_WEIGHTS_F32 and _F16 given");
        return bm_fail(BMOJO_EINVAL, "bmojo_model_load_flags: unknown flags 0x%x", flags & ~known);
    }
    st = bm_config_load_dir(dir, &m->cfg);
    if (st) {
        free(m);
        return st;
    }
    bm_st_set set;
    memset(&set, 0, sizeof set);
    st = bm_st_set_open(dir, &set);
    if (!st) {
        st = bm_weights_load(m, &set, 0, flags);
        bm_st_set_close(&set);
        if (st) st = bm_fail_context(st, "%s", dir);
    }
    if (st) {
        bmojo_model_free(m);
        return st;
    }
    *out = m;
    return 0;
}

int bmojo_model_random(bmojo_runtime *rt, const char *config_yaml, uint64_t seed, bmojo_model **out)
{
    return bmojo_model_random_flags(rt, config_yaml, seed, 0, out);
}

int bmojo_model_random_flags(bmojo_runtime *rt, const char *config_yaml, uint64_t seed, unsigned flags,
                             bmojo_model **out)
{
    const unsigned known = BMOJO_LOAD_WEIGHTS_F32 | BMOJO_LOAD_WEIGHTS_F16;
    bm_model *m = NULL;
    int st = model_new(rt, out, &m);
    if (st) return st;
    if (!config_yaml || (flags & ~known) || !weight_flags_ok(flags)) {
        free(m);
        if (!config_yaml) return bm_fail(BMOJO_EINVAL, "bmojo_model_random: no config given");
        return bm_fail(BMOJO_EINVAL, "bmojo_model_random_flags: bad flags 0x%x (only one BMOJO_LOAD_WEIGHTS_*)", flags);
    }
    st = bm_config_load_yaml(config_yaml, &m->cfg);
    if (st) {
        free(m);
        return st;
    }
    st = bm_weights_load(m, NULL, seed ? seed : 1, flags);
    if (st) {
        bmojo_model_free(m);
        return st;
    }
    *out = m;
    return 0;
}

void bmojo_model_free(bmojo_model *m)
{
    if (!m) return;
    bm_weights_free(m);
    bm_config_free(&m->cfg);
    free(m);
}

int bmojo_model_get_info(const bmojo_model *m, bmojo_model_info *info)
{
    if (!m || !info) return bm_fail(BMOJO_EINVAL, "bmojo_model_get_info: NULL argument");
    memset(info, 0, sizeof *info);
    info->name = m->cfg.name;
    info->vocab_size = m->cfg.vocab_size;
    info->d_model = m->cfg.d_model;
    info->n_layers = m->cfg.n_layers;
    /* the loader refused any layer without a kind */
    for (int i = 0; i < m->cfg.n_layers; i++) bm_layer_kind_of(m->cfg.layers[i].type)->count(info);
    info->n_params = m->n_params;
    info->weight_bytes = m->weight_bytes;
    info->weights_f16 = m->matrix_store == BM_STORE_F16;
    info->eos_token_id = m->cfg.has_eos ? m->cfg.eos_token_id : -1;
    return 0;
}

int bmojo_model_describe(const bmojo_model *m, char *buf, size_t n)
{
    if (!m || !buf || !n) return bm_fail(BMOJO_EINVAL, "bmojo_model_describe: NULL argument");
    const bm_config *c = &m->cfg;
    size_t off = 0;
#define PUT(...)                                                                                                       \
    do {                                                                                                               \
        if (off < n) off += (size_t)snprintf(buf + off, n - off, __VA_ARGS__);                                         \
    } while (0)
    PUT("%s: vocab %d, d_model %d, %d sublayers, %.2fM parameters, %s head, %s weights\n", c->name, c->vocab_size,
        c->d_model, c->n_layers, (double)m->n_params / 1e6, m->lm_head.buf == m->embed.buf ? "tied" : "untied",
        m->matrix_store == BM_STORE_F16 ? "f16" : "f32");
    for (int i = 0; i < c->n_layers; i++) {
        const bm_layer_cfg *l = &c->layers[i];
        PUT("  %2d %-9s", i, bm_layer_type_name(l->type));
        if (off < n) off += bm_layer_kind_of(l->type)->describe(l, buf + off, n - off);
        PUT("\n");
    }
#undef PUT
    return 0;
}

void bm_model_dims_get(const bm_model *m, bm_model_dims *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < m->cfg.n_layers; i++) bm_layer_kind_of(m->cfg.layers[i].type)->dims(&m->cfg.layers[i], o);
}
