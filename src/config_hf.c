/* config_hf.c — imports a Hugging Face config.json (MambaForCausalLM, MistralForCausalLM,
 * JambaForCausalLM with one expert) onto the flat native list of sublayers, with the map from
 * native tensor names to the checkpoint's names. Each HF decoder layer that has a mixer and an
 * MLP becomes two native sublayers (2l: the mixer, 2l+1: the MLP), each with its own norm. */
#include "config_internal.h"

#include "error.h"
#include "file_read.h"
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HF_MAX_FILE (16u << 20) /* a config.json is a few KiB; refuse absurd files */

typedef struct {
    const char *path;
    const bm_json *root;
} hf_t;

static int is_null_or_absent(const bm_json *v) { return !v || v->type == BM_JSON_NULL; }

/* An integer member; absent or null -> def (or an error when required). */
static int hf_int(const hf_t *h, const char *key, int required, int def, int *out)
{
    const bm_json *v = bm_json_get(h->root, key);
    if (is_null_or_absent(v)) {
        if (required)
            return bm_fail(BMOJO_ECONFIG, "%s: missing key %s", h->path, key);
        *out = def;
        return 0;
    }
    if (v->type != BM_JSON_NUMBER || !v->is_integer)
        return bm_fail(BMOJO_ECONFIG, "%s: %s: expected an integer", h->path, key);
    if (v->integer < INT_MIN || v->integer > INT_MAX)
        return bm_fail(BMOJO_ECONFIG, "%s: %s (%lld) is out of range", h->path, key, (long long)v->integer);
    *out = (int)v->integer;
    return 0;
}

static int hf_num(const hf_t *h, const bm_json *obj, const char *key, double def, double *out)
{
    const bm_json *v = bm_json_get(obj, key);
    if (is_null_or_absent(v)) {
        *out = def;
        return 0;
    }
    if (v->type != BM_JSON_NUMBER || !isfinite(v->number))
        return bm_fail(BMOJO_ECONFIG, "%s: %s: expected a number", h->path, key);
    *out = v->number;
    return 0;
}

static int hf_bool(const hf_t *h, const char *key, bool def, bool *out)
{
    const bm_json *v = bm_json_get(h->root, key);
    if (is_null_or_absent(v)) {
        *out = def;
        return 0;
    }
    if (v->type != BM_JSON_BOOL)
        return bm_fail(BMOJO_ECONFIG, "%s: %s: expected true or false", h->path, key);
    *out = v->boolean != 0;
    return 0;
}

/* A dt rank: an integer or "auto" (ceil(hidden / 16)); absent means "auto". */
static int hf_dt_rank(const hf_t *h, const char *key, int hidden, int *out)
{
    const bm_json *v = bm_json_get(h->root, key);
    if (is_null_or_absent(v) || (v->type == BM_JSON_STRING && !strcmp(v->string, "auto"))) {
        *out = (hidden + 15) / 16;
        return 0;
    }
    if (v->type == BM_JSON_STRING)
        return bm_fail(BMOJO_ECONFIG, "%s: %s: expected an integer or \"auto\", got \"%.60s\"", h->path, key, v->string);
    return hf_int(h, key, 1, 0, out);
}

/* The MLPs and mixers here use SiLU; another activation would silently compute something else. */
static int hf_check_act(const hf_t *h, const char *key)
{
    const bm_json *v = bm_json_get(h->root, key);
    if (is_null_or_absent(v))
        return 0;
    if (v->type != BM_JSON_STRING)
        return bm_fail(BMOJO_ECONFIG, "%s: %s: expected a string", h->path, key);
    if (strcmp(v->string, "silu") && strcmp(v->string, "swish"))
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: %s \"%.60s\" is not supported (only silu)", h->path, key, v->string);
    return 0;
}

/* Allocates n native sublayers, after checking n against the bound. */
static int hf_alloc_layers(const hf_t *h, bm_config *c, int hf_layers, int per_layer)
{
    if (hf_layers < 1 || hf_layers > BM_MAX_LAYERS / per_layer)
        return bm_fail(BMOJO_ECONFIG, "%s: num_hidden_layers (%d) must be in [1, %d]", h->path, hf_layers,
                       BM_MAX_LAYERS / per_layer);
    c->n_layers = hf_layers * per_layer;
    c->layers = calloc((size_t)c->n_layers, sizeof *c->layers);
    if (!c->layers)
        return bm_fail(BMOJO_ENOMEM, "%s: out of memory for %d layers", h->path, c->n_layers);
    return 0;
}

/* Common top-level keys: hidden_size, vocab_size, eos_token_id (an integer or a list of them: the
 * first; absent or null: none). */
static int hf_common(const hf_t *h, bm_config *c)
{
    int st = hf_int(h, "hidden_size", 1, 0, &c->d_model);
    if (!st)
        st = hf_int(h, "vocab_size", 1, 0, &c->vocab_size);
    if (st)
        return st;
    const bm_json *eos = bm_json_get(h->root, "eos_token_id");
    if (eos && eos->type == BM_JSON_ARRAY && eos->count > 0) eos = &eos->items[0];
    if (!is_null_or_absent(eos) && !(eos->type == BM_JSON_ARRAY && eos->count == 0)) {
        if (eos->type != BM_JSON_NUMBER || !eos->is_integer || eos->integer < 0 || eos->integer >= c->vocab_size)
            return bm_fail(BMOJO_ECONFIG, "%s: eos_token_id: expected a token id in [0, vocab_size) (or a list of them)", h->path);
        c->has_eos = true;
        c->eos_token_id = (int)eos->integer;
    }
    if (c->d_model < 1 || c->d_model > BM_MAX_D_MODEL)
        return bm_fail(BMOJO_ECONFIG, "%s: hidden_size (%d) must be in [1, %d]", h->path, c->d_model, BM_MAX_D_MODEL);
    return 0;
}

/* ---- MambaForCausalLM ---- */

static const char *const mamba_keymap[] = {
    "d_model", "hidden_size", "vocab_size", "vocab_size", "d_state", "state_size", "d_conv", "conv_kernel",
    "expand", "expand", "dt_rank", "time_step_rank", "norm_eps", "layer_norm_epsilon", "layers",
    "num_hidden_layers", NULL};

static int load_mamba(const hf_t *h, bm_config *c)
{
    int st = hf_common(h, c);
    int n = 0, inter = 0;
    double eps = 0;
    bm_mamba_cfg m;
    bm_config_mamba_defaults(&m, c->d_model);
    if (!st) st = hf_int(h, "num_hidden_layers", 1, 0, &n);
    if (!st) st = hf_int(h, "state_size", 0, 16, &m.d_state);
    if (!st) st = hf_int(h, "conv_kernel", 0, 4, &m.d_conv);
    if (!st) st = hf_int(h, "expand", 0, 2, &m.expand);
    if (!st) st = hf_dt_rank(h, "time_step_rank", c->d_model, &m.dt_rank);
    if (!st) st = hf_bool(h, "use_bias", false, &m.proj_bias);
    if (!st) st = hf_bool(h, "use_conv_bias", true, &m.conv_bias);
    if (!st) st = hf_num(h, h->root, "layer_norm_epsilon", 1e-5, &eps);
    if (!st) st = hf_bool(h, "tie_word_embeddings", true, &c->tie_embeddings);
    if (!st) st = hf_check_act(h, "hidden_act");
    if (!st) st = hf_int(h, "intermediate_size", 0, 0, &inter);
    if (st)
        return st;
    if (inter != 0 && (long long)inter != (long long)m.expand * c->d_model)
        return bm_fail(BMOJO_ECONFIG, "%s: intermediate_size (%d) must equal expand (%d) * hidden_size (%d)",
                       h->path, inter, m.expand, c->d_model);
    c->norm_eps = (float)eps;
    st = hf_alloc_layers(h, c, n, 1);
    if (st)
        return st;
    for (int i = 0; i < n; i++) {
        bm_layer_cfg *l = &c->layers[i];
        l->type = BM_LAYER_MAMBA;
        l->mamba = m;
        snprintf(l->norm_name, sizeof l->norm_name, "backbone.layers.%d.norm.weight", i);
        snprintf(l->mamba_prefix, sizeof l->mamba_prefix, "backbone.layers.%d.mixer.", i);
    }
    snprintf(c->embed_name, sizeof c->embed_name, "backbone.embeddings.weight");
    snprintf(c->norm_f_name, sizeof c->norm_f_name, "backbone.norm_f.weight");
    snprintf(c->lm_head_name, sizeof c->lm_head_name, "lm_head.weight");
    return bm_config_validate(c, h->path, mamba_keymap);
}

/* ---- attention keys shared by Mistral and Jamba ---- */

/* num_attention_heads, num_key_value_heads (default heads), head_dim (default hidden / heads,
 * which must then divide), sliding_window (null or absent: full attention). */
static int hf_attention(const hf_t *h, const bm_config *c, bool head_dim_key, bm_attn_cfg *a)
{
    int st = hf_int(h, "num_attention_heads", 1, 0, &a->heads);
    if (!st) st = hf_int(h, "num_key_value_heads", 0, a->heads, &a->kv_heads);
    if (!st) st = hf_int(h, "sliding_window", 0, 0, &a->window);
    if (st)
        return st;
    if (a->heads < 1 || a->heads > BM_MAX_HEADS)
        return bm_fail(BMOJO_ECONFIG, "%s: num_attention_heads (%d) must be in [1, %d]", h->path, a->heads, BM_MAX_HEADS);
    if (a->kv_heads < 1 || a->heads % a->kv_heads != 0)
        return bm_fail(BMOJO_ECONFIG, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                       h->path, a->heads, a->kv_heads);
    const bm_json *hd = head_dim_key ? bm_json_get(h->root, "head_dim") : NULL;
    if (is_null_or_absent(hd)) {
        if (c->d_model % a->heads != 0)
            return bm_fail(BMOJO_ECONFIG, "%s: head_dim is absent and hidden_size (%d) is not a multiple of "
                           "num_attention_heads (%d)", h->path, c->d_model, a->heads);
        a->head_dim = c->d_model / a->heads;
    } else {
        st = hf_int(h, "head_dim", 1, 0, &a->head_dim);
        if (st)
            return st;
    }
    if (a->window < 0)
        return bm_fail(BMOJO_ECONFIG, "%s: sliding_window (%d) must be >= 0 or null", h->path, a->window);
    return 0;
}

/* RoPE base: rope_parameters {rope_theta, rope_type} (transformers 5), else top-level
 * rope_theta (older), else 10000. Only the plain ("default") RoPE is implemented. */
static int hf_rope(const hf_t *h, float *theta)
{
    double t = 10000.0;
    int st = hf_num(h, h->root, "rope_theta", t, &t);
    if (st)
        return st;
    const char *const obj_keys[] = {"rope_parameters", "rope_scaling"};
    for (int k = 0; k < 2; k++) {
        const bm_json *rp = bm_json_get(h->root, obj_keys[k]);
        if (is_null_or_absent(rp))
            continue;
        if (rp->type != BM_JSON_OBJECT)
            return bm_fail(BMOJO_ECONFIG, "%s: %s: expected an object", h->path, obj_keys[k]);
        const char *tkey = "rope_type"; /* older files write "type" */
        const bm_json *type = bm_json_get(rp, tkey);
        if (is_null_or_absent(type))
            type = bm_json_get(rp, tkey = "type");
        if (!is_null_or_absent(type)) {
            if (type->type != BM_JSON_STRING)
                return bm_fail(BMOJO_ECONFIG, "%s: %s.%s: expected a string", h->path, obj_keys[k], tkey);
            if (strcmp(type->string, "default"))
                return bm_fail(BMOJO_EUNSUPPORTED, "%s: %s.%s \"%.60s\" is not supported (only \"default\")",
                               h->path, obj_keys[k], tkey, type->string);
        }
        st = hf_num(h, rp, "rope_theta", t, &t);
        if (st)
            return bm_fail_context(st, "%s", obj_keys[k]);
    }
    if (!(t > 0.0) || t > 3.0e38)
        return bm_fail(BMOJO_ECONFIG, "%s: rope_theta (%g) must be > 0", h->path, t);
    *theta = (float)t;
    return 0;
}

static const char *const attn_keymap[] = {
    "d_model", "hidden_size", "vocab_size", "vocab_size", "heads", "num_attention_heads", "kv_heads",
    "num_key_value_heads", "window", "sliding_window", "intermediate", "intermediate_size", "norm_eps",
    "rms_norm_eps", "layers", "num_hidden_layers", "d_state", "mamba_d_state", "d_conv", "mamba_d_conv",
    "expand", "mamba_expand", "dt_rank", "mamba_dt_rank", NULL};

/* ---- MistralForCausalLM ---- */

static int load_mistral(const hf_t *h, bm_config *c)
{
    int st = hf_common(h, c);
    int n = 0, inter = 0;
    double eps = 0;
    bm_attn_cfg a = {0};
    if (!st) st = hf_int(h, "num_hidden_layers", 1, 0, &n);
    if (!st) st = hf_int(h, "intermediate_size", 1, 0, &inter);
    if (!st) st = hf_num(h, h->root, "rms_norm_eps", 1e-6, &eps);
    if (!st) st = hf_bool(h, "tie_word_embeddings", false, &c->tie_embeddings);
    if (!st) st = hf_check_act(h, "hidden_act");
    if (!st) st = hf_attention(h, c, true, &a);
    if (!st) st = hf_rope(h, &a.rope_theta);
    if (!st) st = hf_alloc_layers(h, c, n, 2);
    if (st)
        return st;
    c->norm_eps = (float)eps;
    for (int l = 0; l < n; l++) {
        bm_layer_cfg *at = &c->layers[2 * l], *ml = &c->layers[2 * l + 1];
        at->type = BM_LAYER_ATTENTION;
        at->attn = a;
        snprintf(at->norm_name, sizeof at->norm_name, "model.layers.%d.input_layernorm.weight", l);
        snprintf(at->attn_prefix, sizeof at->attn_prefix, "model.layers.%d.self_attn.", l);
        ml->type = BM_LAYER_MLP;
        ml->intermediate = inter;
        snprintf(ml->norm_name, sizeof ml->norm_name, "model.layers.%d.post_attention_layernorm.weight", l);
        snprintf(ml->mlp_prefix, sizeof ml->mlp_prefix, "model.layers.%d.mlp.", l);
    }
    snprintf(c->embed_name, sizeof c->embed_name, "model.embed_tokens.weight");
    snprintf(c->norm_f_name, sizeof c->norm_f_name, "model.norm.weight");
    snprintf(c->lm_head_name, sizeof c->lm_head_name, "lm_head.weight");
    return bm_config_validate(c, h->path, attn_keymap);
}

/* ---- JambaForCausalLM ---- */

static int load_jamba(const hf_t *h, bm_config *c)
{
    int st = hf_common(h, c);
    int n = 0, inter = 0, experts = 1, period = 8, offset = 4;
    double eps = 0;
    bm_attn_cfg a = {0};
    bm_mamba_cfg m;
    bm_config_mamba_defaults(&m, c->d_model);
    m.dt_bc_norm = true;
    if (!st) st = hf_int(h, "num_experts", 0, 1, &experts);
    if (!st && experts != 1)
        return bm_fail(BMOJO_EUNSUPPORTED, "%s: num_experts: mixture of experts (num_experts = %d) is not supported",
                       h->path, experts);
    if (!st) st = hf_int(h, "num_hidden_layers", 1, 0, &n);
    if (!st) st = hf_int(h, "intermediate_size", 1, 0, &inter);
    if (!st) st = hf_num(h, h->root, "rms_norm_eps", 1e-6, &eps);
    if (!st) st = hf_bool(h, "tie_word_embeddings", false, &c->tie_embeddings);
    if (!st) st = hf_check_act(h, "hidden_act");
    if (!st) st = hf_int(h, "attn_layer_period", 0, 8, &period);
    if (!st) st = hf_int(h, "attn_layer_offset", 0, 4, &offset);
    if (!st) st = hf_int(h, "mamba_d_state", 0, 16, &m.d_state);
    if (!st) st = hf_int(h, "mamba_d_conv", 0, 4, &m.d_conv);
    if (!st) st = hf_int(h, "mamba_expand", 0, 2, &m.expand);
    if (!st) st = hf_dt_rank(h, "mamba_dt_rank", c->d_model, &m.dt_rank);
    if (!st) st = hf_bool(h, "mamba_conv_bias", true, &m.conv_bias);
    if (!st) st = hf_bool(h, "mamba_proj_bias", false, &m.proj_bias);
    if (!st) st = hf_attention(h, c, false, &a);
    if (st)
        return st;
    if (period < 1 || offset < 0 || offset >= period)
        return bm_fail(BMOJO_ECONFIG, "%s: attn_layer_offset (%d) must be in [0, attn_layer_period (%d))", h->path,
                       offset, period);
    a.rope_theta = 0.0f; /* Jamba attention has no positional encoding: the Mamba layers order tokens */
    st = hf_alloc_layers(h, c, n, 2);
    if (st)
        return st;
    c->norm_eps = (float)eps;
    for (int l = 0; l < n; l++) {
        bm_layer_cfg *mx = &c->layers[2 * l], *ml = &c->layers[2 * l + 1];
        snprintf(mx->norm_name, sizeof mx->norm_name, "model.layers.%d.input_layernorm.weight", l);
        if (l % period == offset) {
            mx->type = BM_LAYER_ATTENTION;
            mx->attn = a;
            snprintf(mx->attn_prefix, sizeof mx->attn_prefix, "model.layers.%d.self_attn.", l);
        } else {
            mx->type = BM_LAYER_MAMBA;
            mx->mamba = m;
            snprintf(mx->mamba_prefix, sizeof mx->mamba_prefix, "model.layers.%d.mamba.", l);
        }
        ml->type = BM_LAYER_MLP;
        ml->intermediate = inter;
        snprintf(ml->norm_name, sizeof ml->norm_name, "model.layers.%d.pre_ff_layernorm.weight", l);
        snprintf(ml->mlp_prefix, sizeof ml->mlp_prefix, "model.layers.%d.feed_forward.", l);
    }
    snprintf(c->embed_name, sizeof c->embed_name, "model.embed_tokens.weight");
    snprintf(c->norm_f_name, sizeof c->norm_f_name, "model.final_layernorm.weight");
    snprintf(c->lm_head_name, sizeof c->lm_head_name, "lm_head.weight");
    return bm_config_validate(c, h->path, attn_keymap);
}

/* ---- the file ---- */

static int read_file(const char *path, char **text, size_t *len)
{
    int st = bm_read_file(path, HF_MAX_FILE, text, len);
    /* a file too large to be a config.json is a configuration error */
    return st == BMOJO_EFORMAT ? bm_fail(BMOJO_ECONFIG, "%s: larger than %u bytes, not a config.json", path, HF_MAX_FILE)
                               : st;
}

/* The folder name for a config.json's model name ("mistral-0" for .../mistral-0/config.json). */
static void folder_name(const char *path, char *name, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(name, n, "%s", "model");
        return;
    }
    const char *start = slash;
    while (start > path && start[-1] != '/')
        start--;
    if (slash > start)
        snprintf(name, n, "%.*s", (int)(slash - start), start);
    else
        snprintf(name, n, "%s", "model");
}

int bm_config_load_hf(const char *path, bm_config *out)
{
    if (!path || !out)
        return bm_fail(BMOJO_EINVAL, "bm_config_load_hf: NULL argument");
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    int st = read_file(path, &text, &len);
    if (st)
        return st;
    bm_json *root = NULL;
    char err[256] = "";
    st = bm_json_parse(text, len, &root, err, sizeof err);
    free(text);
    if (st) {
        bm_json_free(root);
        return bm_fail(BMOJO_ECONFIG, "%s: not valid JSON: %s", path, err);
    }
    hf_t h = {.path = path, .root = root};
    const char *arch = NULL;
    const bm_json *archs = bm_json_get(root, "architectures");
    const bm_json *mt = bm_json_get(root, "model_type");
    if (root->type != BM_JSON_OBJECT) {
        st = bm_fail(BMOJO_ECONFIG, "%s: the top level must be a JSON object", path);
    } else if (archs && archs->type == BM_JSON_ARRAY && archs->count > 0 && archs->items[0].type == BM_JSON_STRING) {
        arch = archs->items[0].string;
    } else if (mt && mt->type == BM_JSON_STRING) {
        arch = mt->string;
    } else {
        st = bm_fail(BMOJO_ECONFIG, "%s: neither architectures nor model_type says what model this is", path);
    }
    if (!st) {
        if (!strcmp(arch, "MambaForCausalLM") || !strcmp(arch, "mamba")) {
            out->source = BM_SOURCE_HF_MAMBA;
            st = load_mamba(&h, out);
        } else if (!strcmp(arch, "MistralForCausalLM") || !strcmp(arch, "mistral")) {
            out->source = BM_SOURCE_HF_MISTRAL;
            st = load_mistral(&h, out);
        } else if (!strcmp(arch, "JambaForCausalLM") || !strcmp(arch, "jamba")) {
            out->source = BM_SOURCE_HF_JAMBA;
            st = load_jamba(&h, out);
        } else {
            st = bm_fail(BMOJO_EUNSUPPORTED,
                         "%s: architecture \"%.80s\" is not supported (MambaForCausalLM, MistralForCausalLM, "
                         "JambaForCausalLM)", path, arch);
        }
    }
    bm_json_free(root);
    if (st) {
        bm_config_free(out);
        return st;
    }
    folder_name(path, out->name, sizeof out->name);
    return 0;
}
