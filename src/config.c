/* config.c — the parts of the model configuration shared by both loaders: validation with
 * bounds, Mamba defaults, checkpoint tensor naming, loading a model folder, freeing. */
#include "config_internal.h"

#include "error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *bm_layer_type_name(bm_layer_type t)
{
    switch (t) {
    case BM_LAYER_MAMBA: return "mamba";
    case BM_LAYER_ATTENTION: return "attention";
    case BM_LAYER_MLP: return "mlp";
    case BM_LAYER_BMOJO: return "bmojo";
    }
    return "unknown";
}

void bm_config_free(bm_config *c)
{
    if (!c)
        return;
    free(c->layers);
    memset(c, 0, sizeof *c);
}

void bm_config_mamba_defaults(bm_mamba_cfg *m, int d_model)
{
    memset(m, 0, sizeof *m);
    m->expand = 2;
    m->d_state = 16;
    m->d_conv = 4;
    m->dt_rank = d_model > 0 ? (d_model + 15) / 16 : 1;
    m->dt_bc_norm = false;
    m->conv_bias = true;
    m->proj_bias = false;
}

void bm_config_native_names(bm_config *c)
{
    for (int i = 0; i < c->n_layers; i++) {
        bm_layer_cfg *l = &c->layers[i];
        snprintf(l->norm_name, sizeof l->norm_name, "layers.%d.norm.weight", i);
        snprintf(l->mamba_prefix, sizeof l->mamba_prefix, "layers.%d.mamba.", i);
        snprintf(l->attn_prefix, sizeof l->attn_prefix, "layers.%d.attn.", i);
        snprintf(l->mlp_prefix, sizeof l->mlp_prefix, "layers.%d.mlp.", i);
    }
    snprintf(c->embed_name, sizeof c->embed_name, "embed.weight");
    snprintf(c->norm_f_name, sizeof c->norm_f_name, "norm_f.weight");
    snprintf(c->lm_head_name, sizeof c->lm_head_name, "lm_head.weight");
}

/* ---- validation ---- */

/* The name of a native key as the loaded file spells it. */
static const char *key_name(const char *const *keymap, const char *native)
{
    for (int i = 0; keymap && keymap[i] && keymap[i + 1]; i += 2)
        if (strcmp(keymap[i], native) == 0)
            return keymap[i + 1];
    return native;
}

/* "PATH: layers[i] (type): <message>" */
static int layer_fail(const char *path, int i, bm_layer_type t, const char *fmt, ...) BM_PRINTF(4, 5);
static int layer_fail(const char *path, int i, bm_layer_type t, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bm_fail(BMOJO_ECONFIG, "%s: layers[%d] (%s): %s", path, i, bm_layer_type_name(t), msg);
}

/* lo <= v <= hi, else an error naming the key and the allowed range. */
#define CHECK_RANGE(v, lo, hi, native)                                                         \
    do {                                                                                       \
        if ((v) < (lo) || (v) > (hi))                                                          \
            return layer_fail(path, i, l->type, "%s (%d) must be in [%d, %d]",                 \
                              key_name(keymap, native), (int)(v), (int)(lo), (int)(hi));       \
    } while (0)

static int validate_mamba(bm_config *c, int i, const char *path, const char *const *keymap)
{
    bm_layer_cfg *l = &c->layers[i];
    bm_mamba_cfg *m = &l->mamba;
    CHECK_RANGE(m->d_state, 1, BM_MAX_D_STATE, "d_state");
    CHECK_RANGE(m->d_conv, 1, BM_MAX_D_CONV, "d_conv");
    CHECK_RANGE(m->expand, 1, BM_MAX_EXPAND, "expand");
    CHECK_RANGE(m->dt_rank, 1, BM_MAX_DT_RANK, "dt_rank");
    long long di = (long long)m->expand * c->d_model;
    if (di > BM_MAX_D_INNER)
        return layer_fail(path, i, l->type, "%s (%d) * d_model (%d) = %lld exceeds %d",
                          key_name(keymap, "expand"), m->expand, c->d_model, di, BM_MAX_D_INNER);
    m->d_inner = (int)di;
    return 0;
}

static int validate_attn(bm_config *c, int i, const char *path, const char *const *keymap)
{
    bm_layer_cfg *l = &c->layers[i];
    bm_attn_cfg *a = &l->attn;
    CHECK_RANGE(a->heads, 1, BM_MAX_HEADS, "heads");
    CHECK_RANGE(a->kv_heads, 1, BM_MAX_HEADS, "kv_heads");
    if (a->heads % a->kv_heads != 0)
        return layer_fail(path, i, l->type, "%s (%d) is not a multiple of %s (%d)",
                          key_name(keymap, "heads"), a->heads, key_name(keymap, "kv_heads"), a->kv_heads);
    CHECK_RANGE(a->head_dim, 1, BM_MAX_ATTN_WIDTH, "head_dim");
    if ((long long)a->heads * a->head_dim > BM_MAX_ATTN_WIDTH)
        return layer_fail(path, i, l->type, "%s (%d) * %s (%d) exceeds %d", key_name(keymap, "heads"),
                          a->heads, key_name(keymap, "head_dim"), a->head_dim, BM_MAX_ATTN_WIDTH);
    if (l->type == BM_LAYER_BMOJO)
        CHECK_RANGE(a->window, 1, BM_MAX_WINDOW, "window");
    else
        CHECK_RANGE(a->window, 0, BM_MAX_WINDOW, "window");
    if (!isfinite(a->rope_theta) || a->rope_theta < 0.0f)
        return layer_fail(path, i, l->type, "%s (%g) must be a finite number >= 0",
                          key_name(keymap, "rope_theta"), (double)a->rope_theta);
    if (a->rope_theta > 0.0f && a->head_dim % 2 != 0)
        return layer_fail(path, i, l->type, "%s (%d) must be even for RoPE (%s %g)",
                          key_name(keymap, "head_dim"), a->head_dim, key_name(keymap, "rope_theta"),
                          (double)a->rope_theta);
    return 0;
}

int bm_config_validate(bm_config *c, const char *path, const char *const *keymap)
{
    if (c->vocab_size < 1 || c->vocab_size > BM_MAX_VOCAB)
        return bm_fail(BMOJO_ECONFIG, "%s: %s (%d) must be in [1, %d]", path, key_name(keymap, "vocab_size"),
                       c->vocab_size, BM_MAX_VOCAB);
    if (c->d_model < 1 || c->d_model > BM_MAX_D_MODEL)
        return bm_fail(BMOJO_ECONFIG, "%s: %s (%d) must be in [1, %d]", path, key_name(keymap, "d_model"),
                       c->d_model, BM_MAX_D_MODEL);
    if (!isfinite(c->norm_eps) || !(c->norm_eps > 0.0f) || c->norm_eps > 1.0f)
        return bm_fail(BMOJO_ECONFIG, "%s: %s (%g) must be in (0, 1]", path, key_name(keymap, "norm_eps"),
                       (double)c->norm_eps);
    if (c->n_layers < 1 || !c->layers)
        return bm_fail(BMOJO_ECONFIG, "%s: %s: a model needs at least one layer", path, key_name(keymap, "layers"));
    if (c->n_layers > BM_MAX_LAYERS)
        return bm_fail(BMOJO_ECONFIG, "%s: %s: %d layers, at most %d", path, key_name(keymap, "layers"),
                       c->n_layers, BM_MAX_LAYERS);
    for (int i = 0; i < c->n_layers; i++) {
        bm_layer_cfg *l = &c->layers[i];
        int st = 0;
        switch (l->type) {
        case BM_LAYER_MAMBA:
            st = validate_mamba(c, i, path, keymap);
            break;
        case BM_LAYER_ATTENTION:
            st = validate_attn(c, i, path, keymap);
            break;
        case BM_LAYER_MLP:
            CHECK_RANGE(l->intermediate, 1, BM_MAX_INTERMEDIATE, "intermediate");
            break;
        case BM_LAYER_BMOJO:
            st = validate_mamba(c, i, path, keymap);
            if (!st)
                st = validate_attn(c, i, path, keymap);
            if (st)
                break;
            CHECK_RANGE(l->fading_tokens, 0, BM_MAX_MEMORY, "fading_tokens");
            CHECK_RANGE(l->eidetic_tokens, 0, BM_MAX_MEMORY, "eidetic_tokens");
            CHECK_RANGE(l->n_taps, 1, BM_MAX_TAPS, "predictor");
            for (int k = 0; k < l->n_taps; k++)
                if (!isfinite(l->taps[k]))
                    return layer_fail(path, i, l->type, "%s[%d] is not a finite number",
                                      key_name(keymap, "predictor"), k);
            break;
        default:
            return bm_fail(BMOJO_ECONFIG, "%s: layers[%d]: unknown layer type %d", path, i, (int)l->type);
        }
        if (st)
            return st;
    }
    return 0;
}

/* ---- tensor names ---- */

/* Jamba spells the dt/B/C norms of its Mamba mixer differently from the native names. */
static const char *jamba_mamba_suffix(const char *rest)
{
    static const char *const map[][2] = {
        {"dt_norm.weight", "dt_layernorm.weight"},
        {"b_norm.weight", "b_layernorm.weight"},
        {"c_norm.weight", "c_layernorm.weight"},
    };
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (strcmp(rest, map[k][0]) == 0)
            return map[k][1];
    return rest;
}

int bm_config_tensor_name(const bm_config *c, int layer, const char *native_suffix, char *buf, size_t n)
{
    if (!c || !native_suffix || !buf || n == 0)
        return bm_fail(BMOJO_EINVAL, "bm_config_tensor_name: NULL argument");
    if (layer < 0 || layer >= c->n_layers)
        return bm_fail(BMOJO_EINVAL, "bm_config_tensor_name: layer %d out of range [0, %d)", layer, c->n_layers);
    const bm_layer_cfg *l = &c->layers[layer];
    const char *prefix = NULL, *rest = NULL;
    if (strcmp(native_suffix, "norm.weight") == 0) {
        prefix = l->norm_name;
        rest = "";
    } else if (strncmp(native_suffix, "mamba.", 6) == 0 &&
               (l->type == BM_LAYER_MAMBA || l->type == BM_LAYER_BMOJO)) {
        prefix = l->mamba_prefix;
        rest = native_suffix + 6;
        if (c->source == BM_SOURCE_HF_JAMBA)
            rest = jamba_mamba_suffix(rest);
    } else if (strncmp(native_suffix, "attn.", 5) == 0 &&
               (l->type == BM_LAYER_ATTENTION || l->type == BM_LAYER_BMOJO)) {
        prefix = l->attn_prefix;
        rest = native_suffix + 5;
    } else if (strncmp(native_suffix, "mlp.", 4) == 0 && l->type == BM_LAYER_MLP) {
        prefix = l->mlp_prefix;
        rest = native_suffix + 4;
    }
    if (!prefix || (rest != NULL && rest[0] == 0 && prefix != l->norm_name))
        return bm_fail(BMOJO_EINVAL, "bm_config_tensor_name: layers.%d.%s does not belong to a %s layer", layer,
                       native_suffix, bm_layer_type_name(l->type));
    int w = snprintf(buf, n, "%s%s", prefix, rest);
    if (w < 0 || (size_t)w >= n)
        return bm_fail(BMOJO_EINVAL, "bm_config_tensor_name: name of layers.%d.%s does not fit in %zu bytes",
                       layer, native_suffix, n);
    return 0;
}

/* ---- folders ---- */

/* Present under that name, whatever its kind: a config.yaml that is a FIFO or a folder must be
 * refused by its loader (naming it), not skipped in favour of a config.json beside it. */
static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int bm_config_load_dir(const char *dir, bm_config *out)
{
    if (!dir || !out)
        return bm_fail(BMOJO_EINVAL, "bm_config_load_dir: NULL argument");
    memset(out, 0, sizeof *out);
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/config.yaml", dir);
    if (w < 0 || (size_t)w >= sizeof path)
        return bm_fail(BMOJO_EINVAL, "%s: path too long", dir);
    if (exists(path))
        return bm_config_load_yaml(path, out);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (exists(path))
        return bm_config_load_hf(path, out);
    /* a `bmojo train -o DIR` folder: its checkpoints are the models, DIR/latest the newest */
    snprintf(path, sizeof path, "%s/latest", dir);
    if (exists(path))
        return bm_fail(BMOJO_EIO,
                       "%s: no config.yaml or config.json in this folder; it is a training run's: its newest "
                       "checkpoint is %s",
                       dir, path);
    return bm_fail(BMOJO_EIO, "%s: no config.yaml or config.json in this folder", dir);
}
