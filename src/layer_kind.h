/* layer_kind.h — one table of functions per sublayer kind (mamba, attention, mlp, bmojo), each
 * defined in that kind's file (src/layer_<kind>.c): what the loader, the state, the workspace,
 * the forward pass and the model's description need to know about a kind. Code outside the
 * config parsers reaches a kind only through bm_layer_kind_of(type), never by switching over the
 * type, so that a kind (or its training pass) is added in one place. */
#ifndef BM_LAYER_KIND_H
#define BM_LAYER_KIND_H

#include "model.h"
#include "ops.h"

struct bm_loader;     /* weights_loader.h */
struct bm_train_kind; /* the training forward/backward of a kind (src/train_<kind>.c) */

/* The inference pass, chosen once per forward chunk (bm_forward_device) from its row count
 * N = B * T, and passed to every sublayer:
 *  - BM_PASS_DECODE: at most BM_GEMV_MAX_ROWS rows (a decoding step, or a prompt that short):
 *    every GEMM is the skinny kernel, the sublayer's RMSNorm rides on its first GEMM, and the
 *    decoding fusions may apply (each kind adds its own conditions: one token per sequence,
 *    rt->fuse_decode, the weights folded at load, ...);
 *  - BM_PASS_PREFILL: more rows: plain GEMMs over a normed copy h, no decoding fusion.
 * Training (a future BM_PASS_TRAIN) is a separate code path (bm_layer_kind.train) that never
 * calls the inference forward, so no fusion has to ask whether it is training. */
typedef enum { BM_PASS_PREFILL, BM_PASS_DECODE } bm_pass;

/* Allocates state buffers, or with plan_only only adds their sizes up: the memory budget plans
 * with the code that allocates, so the two cannot drift apart (state.c). */
typedef struct {
    bm_rt *rt;
    int plan_only;
    uint64_t bytes;
} bm_sizer;
/* Adds bytes and, unless planning, allocates *out. */
int bm_sizer_take(bm_sizer *z, size_t bytes, cl_mem *out);

typedef struct bm_layer_kind {
    bm_layer_type type;
    const char *name; /* as bm_layer_type_name */

    /* Loads (or, with L->plan_only, plans) the weights of sublayer i into w, after its pre-norm:
     * names and shapes checked, side-by-side projections fused. The order of the uploads is the
     * order random weights are drawn in. */
    int (*load)(struct bm_loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w);

    /* Widens o (the largest sizes over the layers) to what this sublayer's forward needs. */
    void (*dims)(const bm_layer_cfg *l, bm_model_dims *o);
    /* Appends the kind's parameters to a description line (bmojo_model_describe), snprintf-style:
     * returns the length of the whole text, writes at most n bytes. */
    size_t (*describe)(const bm_layer_cfg *l, char *buf, size_t n);
    /* Counts one sublayer of this kind in info (bmojo_model_get_info). */
    void (*count)(bmojo_model_info *info);
    /* Adds one sequence's recurrent memory of this sublayer, in floats, at a context of `context`
     * tokens (bmojo_config_recurrent_memory); NULL for a kind that keeps none. */
    void (*recurrent_memory)(const bm_layer_cfg *l, int64_t context, bmojo_recurrent_memory *o);

    /* Creates (or plans) the state buffers of sublayer i for B sequences, and ls->cap. */
    int (*state_alloc)(const bm_model *m, int i, int B, bm_layer_state *ls, bm_sizer *z);
    /* State that grows with the context (full attention's cache): NULL, or 0 for this config,
     * when the state has a fixed size. The next two are used only where it returns nonzero. */
    int (*state_grows)(const bm_layer_cfg *l);
    /* Bytes of the growing buffers at capacity cap for B sequences. */
    uint64_t (*state_cap_bytes)(const bm_layer_cfg *l, int B, int64_t cap);
    /* Replaces the growing buffers by ones of capacity cap (ls->cap = cap); keep: the rows held
     * move over (growing), else the new contents are undefined (a restore overwrites them). */
    int (*state_recap)(bm_state *s, int i, int64_t cap, int keep);

    /* Runs T tokens of the B sequences through sublayer i: reads its normed input through `in`
     * (see layers.h), adds its output into s->ws.x, advances its state; all enqueued. */
    int (*forward)(bm_model *m, bm_state *s, int i, int T, bm_pass pass, const bm_gemv_input *in);

    const struct bm_train_kind *train; /* training forward/backward (src/train_<kind>.c) */
} bm_layer_kind;

extern const bm_layer_kind bm_layer_kind_mamba;     /* layer_mamba.c */
extern const bm_layer_kind bm_layer_kind_attention; /* layer_attention.c */
extern const bm_layer_kind bm_layer_kind_mlp;       /* layer_mlp.c */
extern const bm_layer_kind bm_layer_kind_bmojo;     /* layer_bmojo.c */

/* The table of kind t; NULL for a value that is no kind (the loader refuses it, so every model's
 * layers have one). */
const bm_layer_kind *bm_layer_kind_of(bm_layer_type t);

#endif
