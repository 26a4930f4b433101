/* config.h — the model configuration: a flat list of sublayers (model contract section 4),
 * loaded from config.yaml or imported from a Hugging Face config.json, validated, and the map
 * from each sublayer's native tensor names to the names in the checkpoint. */
#ifndef BM_CONFIG_H
#define BM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { BM_LAYER_MAMBA, BM_LAYER_ATTENTION, BM_LAYER_MLP, BM_LAYER_BMOJO } bm_layer_type;

#define BM_MAX_TAPS 16

typedef struct {
    int d_state, d_conv, expand, d_inner, dt_rank; /* d_inner = expand * d_model */
    bool dt_bc_norm;   /* RMSNorm on dt, B, C after x_proj (Jamba), eps = model norm_eps */
    bool conv_bias;    /* default true */
    bool proj_bias;    /* in_proj / out_proj biases, default false */
} bm_mamba_cfg;

typedef struct {
    int heads, kv_heads, head_dim;
    int window;        /* 0: full causal attention */
    float rope_theta;  /* 0: no positional encoding */
} bm_attn_cfg;

typedef struct {
    bm_layer_type type;
    bm_mamba_cfg mamba;     /* mamba, bmojo */
    bm_attn_cfg attn;       /* attention, bmojo (bmojo: rope_theta is 0, window > 0) */
    int intermediate;       /* mlp */
    int fading_tokens;      /* bmojo: m_f */
    int eidetic_tokens;     /* bmojo: m_e (0 = B'MOJO-F) */
    int n_taps;             /* bmojo: predictor length k (default 4) */
    float taps[BM_MAX_TAPS];/* bmojo: c_1..c_k (default 1/k each) */
    /* Checkpoint naming: native suffix "mamba.x" maps to mamba_prefix + "x", "attn.x" to
     * attn_prefix + "x", "mlp.x" to mlp_prefix + "x", "norm.weight" to norm_name. */
    char norm_name[128], mamba_prefix[128], attn_prefix[128], mlp_prefix[128];
} bm_layer_cfg;

typedef enum { BM_SOURCE_YAML, BM_SOURCE_HF_MAMBA, BM_SOURCE_HF_MISTRAL, BM_SOURCE_HF_JAMBA } bm_config_source;

typedef struct {
    char name[128];
    bm_config_source source;
    int vocab_size, d_model;
    float norm_eps;
    bool tie_embeddings;    /* true: lm_head is embed (also when lm_head is absent) */
    bool has_eos;           /* config.json named an eos_token_id (config.yaml has no such key) */
    int eos_token_id;       /* config.json's eos_token_id, the first of a list */
    int n_layers;
    bm_layer_cfg *layers;   /* n_layers entries */
    char embed_name[128], norm_f_name[128], lm_head_name[128]; /* checkpoint names */
} bm_config;

/* Parses and validates a config.yaml (contract section 4). Errors (BMOJO_ECONFIG, BMOJO_EIO)
 * name the file, the layer index and the key. */
int bm_config_load_yaml(const char *path, bm_config *out);
/* Imports a Hugging Face config.json: MambaForCausalLM, MistralForCausalLM (sliding_window
 * null = full; rope_theta at top level or in rope_parameters), JambaForCausalLM with one expert
 * (more: BMOJO_EUNSUPPORTED). */
int bm_config_load_hf(const char *path, bm_config *out);
/* The config as config.yaml text (every key written, native names; reads back to the same
 * config). *text is malloc'ed. Imported Hugging Face configs are written the same way. */
int bm_config_write_yaml(const bm_config *c, char **text);
/* dir/config.yaml if present, else dir/config.json. */
int bm_config_load_dir(const char *dir, bm_config *out);
void bm_config_free(bm_config *c);

/* Checkpoint name of a sublayer's tensor given its native suffix after "layers.{i}."
 * ("mamba.in_proj.weight", "attn.q_proj.weight", "mlp.up_proj.weight", "norm.weight").
 * Returns 0, or BMOJO_EINVAL if the suffix does not belong to that layer's kind. */
int bm_config_tensor_name(const bm_config *c, int layer, const char *native_suffix, char *buf, size_t n);

/* Short name of a layer type ("mamba", ...). */
const char *bm_layer_type_name(bm_layer_type t);

#endif
