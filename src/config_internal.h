/* config_internal.h — what config.c shares with the two loaders (config_yaml.c, config_hf.c):
 * the validation every loaded config goes through, defaults, and upper bounds. */
#ifndef BM_CONFIG_INTERNAL_H
#define BM_CONFIG_INTERNAL_H

#include "config.h"

/* Upper bounds: a huge value is an error at load time, not an integer overflow later. */
#define BM_MAX_VOCAB      (1 << 24)
#define BM_MAX_D_MODEL    65536
#define BM_MAX_ATTN_WIDTH 65536   /* heads * head_dim, kv_heads * head_dim */
#define BM_MAX_HEADS      4096
#define BM_MAX_WINDOW     (1 << 20)
#define BM_MAX_MEMORY     4096    /* fading_tokens, eidetic_tokens */
#define BM_MAX_D_STATE    1024
#define BM_MAX_D_CONV     64
#define BM_MAX_EXPAND     64
#define BM_MAX_D_INNER    (1 << 20)
#define BM_MAX_DT_RANK    65536
#define BM_MAX_INTERMEDIATE (1 << 20)
#define BM_MAX_LAYERS     4096

/* Fills the Mamba defaults of the contract: expand 2, d_state 16, d_conv 4,
 * dt_rank ceil(d_model / 16), conv bias on, projection biases off, no dt/B/C norm. */
void bm_config_mamba_defaults(bm_mamba_cfg *m, int d_model);

/* Checks every value of c (contract section 4) and computes mamba.d_inner. path names the file
 * in messages; keymap is NULL or a NULL-terminated list of {native key, name in the file} pairs
 * so that messages about an imported file use that file's key names. Returns 0 or
 * BMOJO_ECONFIG with a message "PATH: layers[i] (type): KEY ...". */
int bm_config_validate(bm_config *c, const char *path, const char *const *keymap);

/* Sets the native checkpoint names (contract section 3) of every layer and the model. */
void bm_config_native_names(bm_config *c);

#endif
