/* model.h — what a bmojo_model and a bmojo_state hold on the device, shared by the loader
 * (model.c, weights.c), the state (state.c) and the forward pass (forward.c, layer_*.c). */
#ifndef BM_MODEL_H
#define BM_MODEL_H

#include "config.h"
#include "runtime.h"
#include "safetensors.h"

/* Weights of one sublayer on the device. Projections are stored [out, in] (row-major, as in the
 * checkpoint); ones used side by side are fused so one GEMM computes them. The matrices that only
 * the GEMM kernels read (bm_wmat) are stored as the model's weight storage says (fp32, or f16 with
 * `--weights f16`); every cl_mem field is fp32 (norms, biases, conv, A, D, and dt_proj, which the
 * scan kernels apply themselves). NULL = unused. */
typedef struct {
    cl_mem norm;                     /* [d] pre-norm of the residual sublayer */
    /* mamba / bmojo fading stream */
    bm_wmat in_proj;                 /* [2*di, d]; bmojo: [2*di + (H + 2*Hkv)*dh, d], the in_proj rows
                                        followed by q_proj, k_proj, v_proj rows */
    cl_mem in_proj_b;                /* [2*di] */
    cl_mem conv_w, conv_b;           /* [di, d_conv], [di] */
    bm_wmat x_proj;                  /* [dt_rank + 2*n, di] */
    cl_mem dt_proj, dt_bias;         /* [di, dt_rank], [di] */
    cl_mem A;                        /* [di, n] = -exp(A_log), computed at load */
    cl_mem D;                        /* [di] */
    bm_wmat out_proj;                /* [d, di] */
    cl_mem out_proj_b;               /* [d] */
    cl_mem dt_norm, b_norm, c_norm;  /* [dt_rank], [n], [n] (dt_bc_norm) */
    /* attention / bmojo */
    bm_wmat wqkv;                    /* attention: [(H + 2*Hkv) * dh, d]: q_proj, k_proj, v_proj rows;
                                        bmojo: NULL (they are rows wqkv_row.. of in_proj) */
    size_t wqkv_row;
    size_t out_kv_rows;              /* bmojo with decoding fusion: out_proj has this many extra rows
                                        after its d: (Wk|Wv) . out_proj, so that one decoding GEMV
                                        gives y and its fading K/V; 0 otherwise */
    bm_wmat wo;                      /* [d, H * dh] */
    /* mlp */
    bm_wmat w_gate_up;               /* [2 * f, d]: gate_proj rows, then up_proj rows */
    bm_wmat w_down;                  /* [d, f] */
} bm_layer_weights;

/* Every fp32 buffer field of bm_layer_weights, and every matrix field, for code that walks them all. */
#define BM_LAYER_WEIGHT_BUFFERS(X)                                                                                     \
    X(norm) X(in_proj_b) X(conv_w) X(conv_b) X(dt_proj) X(dt_bias) X(A) X(D) X(out_proj_b) X(dt_norm) X(b_norm)        \
        X(c_norm)
#define BM_LAYER_WEIGHT_MATRICES(X) X(in_proj) X(x_proj) X(out_proj) X(wqkv) X(wo) X(w_gate_up) X(w_down)

struct bmojo_model {
    bm_rt *rt;
    bm_config cfg;
    bm_wmat embed;                   /* [V, d] */
    cl_mem norm_f;                   /* [d] */
    bm_wmat lm_head;                 /* [V, d]; the same buffer as embed when tied */
    bm_layer_weights *layers;        /* cfg.n_layers */
    bm_store matrix_store;           /* the storage of every bm_wmat above (bm_weights_load decides) */
    uint64_t n_params, weight_bytes;
};
typedef struct bmojo_model bm_model;

/* Per-sublayer recurrent state; buffers hold B sequences. NULL = unused by the kind. */
typedef struct {
    cl_mem conv;                     /* mamba: [B, di, d_conv - 1] */
    cl_mem ssm;                      /* mamba: [B, di, n] */
    cl_mem k_cache, v_cache;         /* attention: [B, Hkv, cap, dh] */
    int cap;                         /* window, or the grown capacity of full attention */
    /* bmojo (layout in ops_bmojo.h) */
    cl_mem y_hist, win_k, win_v, fade_k, fade_v, cand_eps, cand_pos, mem;
} bm_layer_state;

/* Activations of one forward pass over N = B * T rows; grown on demand, reused across calls.
 * Each sublayer writes its intermediates here, so they stay addressable until the next layer. */
typedef struct {
    size_t rows;                     /* N the buffers were sized for */
    size_t logits_rows;
    cl_mem ids;                      /* int32 [N] */
    cl_mem x;                        /* [N, d] residual stream */
    cl_mem h;                        /* [N, d] normed input of the current sublayer */
    cl_mem xz;                       /* [N, 2*di] in_proj output; bmojo: [N, 2*di + qkv] (x|z|q|k|v) */
    cl_mem u;                        /* [N, di] conv + SiLU output */
    cl_mem xdbl;                     /* [N, dt_rank + 2*n] x_proj output */
    cl_mem ys;                       /* [N, di] gated scan output */
    cl_mem y;                        /* [N, d] bmojo fading-stream output */
    cl_mem qkv;                      /* [N, (H + 2*Hkv) * dh] */
    cl_mem kvf;                      /* [N, 2 * Hkv * dh] bmojo fading keys and values */
    cl_mem att;                      /* [N, H * dh] attention output before o_proj */
    cl_mem gu;                       /* [N, 2 * f] */
    cl_mem act;                      /* [N, f] */
    cl_mem mix_scratch;              /* bmojo launcher scratch */
    size_t mix_scratch_bytes;
    cl_mem hf;                       /* [N, d] final-normed rows for the head */
    cl_mem logits;                   /* [logits_rows, V]: B rows, or N when all are asked for */
    uint64_t bytes;
} bm_workspace;

struct bmojo_state {
    bm_model *m;
    int B;
    int64_t pos;
    bm_layer_state *layers;
    bm_workspace ws;
};
typedef struct bmojo_state bm_state;

/* Largest sizes over the layers, for the workspace. */
typedef struct {
    size_t di, hproj, xdbl, qkv, kvf, att, f; /* hproj: columns of the in_proj output */
} bm_model_dims;
void bm_model_dims_get(const bm_model *m, bm_model_dims *out);

/* weights.c: uploads every tensor of the config from a checkpoint (checking names and shapes, and
 * that the config reads every checkpoint tensor unless flags has BMOJO_LOAD_ALLOW_UNUSED_TENSORS),
 * or fills them with seeded random values (seed != 0, st == NULL). */
int bm_weights_load(bm_model *m, const bm_st_set *st /* NULL: random */, uint64_t seed, unsigned flags);
void bm_weights_free(bm_model *m);

/* state.c */
/* Grows the workspace for a chunk of T tokens per sequence, the caches for T_total more tokens
 * and the logits to logits_rows rows, after checking the memory budget (mem_budget.h). */
int bm_state_reserve(bm_state *s, int T, int64_t T_total, size_t logits_rows);

/* forward.c: runs T tokens of ids (already on the device in ws.ids) through the stack. */
int bm_forward_device(bm_model *m, bm_state *s, int T, int logits_mode);

#endif
