/* train.h — the training pass: a model's parameter table, one forward over a batch that saves
 * what each sublayer's backward reads, the loss fused with the head, and the backward into the
 * table's gradients. Each sublayer kind provides its forward and backward side by side in
 * src/train_<kind>.c through a bm_train_kind table; train.c runs the stack (embedding, the
 * pre-norms and residual stream, the final norm and head) and knows no tensor names. The pass is
 * its own code path: no decoding fusions, no state carried between calls. docs/training.md has
 * what each kind saves and recomputes and the derivations. */
#ifndef BM_TRAIN_H
#define BM_TRAIN_H

#include "arena.h"
#include "config.h"
#include "params.h"
#include "runtime.h"

#define BM_TRAIN_MAX_PARAMS 20 /* tensors of one sublayer */
#define BM_TRAIN_MAX_SAVED 24  /* saved activations and per-pass buffers of one sublayer */
#define BM_TRAIN_TEMPS 16      /* temporaries shared by all sublayers (each sized by the largest use) */

typedef struct bmojo_trainer bm_trainer;
typedef struct bm_train_layer bm_train_layer;

/* A sublayer kind's part of the training pass. */
typedef struct bm_train_kind {
    /* Adds sublayer i's checkpoint tensors to tr->params, recording their indices in l->p
     * (-1 for an absent optional tensor). */
    int (*params)(bm_trainer *tr, int i, bm_train_layer *l);
    /* Takes l->saved[] (per sublayer) from tr->arena and declares its temporaries
     * (bm_train_temp_need); called once planning, once for real with the same takes. */
    int (*reserve)(bm_trainer *tr, int i, bm_train_layer *l);
    /* Derived forms of the tensors (A = -exp(A_log)), after every change of the values. NULL: none. */
    int (*derive)(bm_trainer *tr, int i, bm_train_layer *l);
    /* h [N, d]: the normed input; adds the sublayer's output into out [N, d]; saves l->saved[]. */
    int (*forward)(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem out);
    /* h as in forward (recomputed by the caller), dout [N, d] the gradient of the output: writes
     * dh [N, d] and accumulates the sublayer's tensors' gradients. */
    int (*backward)(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem dout, cl_mem dh);
    /* After a pass: the positions the eidetic memory held at each chunk start, sets[b][c][e] for
     * b < B, c < *chunks, e < *per_chunk (-1: an empty slot), chunk c starting at c * *chunk_len;
     * sets NULL: only the sizes. NULL for kinds without eidetic memory. */
    int (*eidetic_sets)(bm_trainer *tr, int i, bm_train_layer *l, int32_t *sets, int *chunks, int *per_chunk,
                        int *chunk_len);
} bm_train_kind;

/* Each kind's table, referenced from its bm_layer_kind (layer_kind.h). */
extern const bm_train_kind bm_train_mamba, bm_train_attention, bm_train_mlp, bm_train_bmojo;

struct bm_train_layer {
    const bm_train_kind *kind;
    int p_norm;                     /* the pre-norm's weight (the stack's, not the kind's) */
    int p[BM_TRAIN_MAX_PARAMS];     /* parameter table indices, kind-specific order */
    cl_mem saved[BM_TRAIN_MAX_SAVED];
    cl_mem derived[2];              /* owned buffers of derived forms (A) */
};

struct bmojo_trainer {
    bm_rt *rt;
    bm_config cfg;
    bm_param_table params;
    int p_embed, p_norm_f, p_head;  /* p_head == p_embed when tied */
    bm_train_layer *layers;
    /* the batch of the current pass */
    int B, T;
    size_t N;                       /* B * T rows */
    bm_arena arena;
    int arena_B, arena_T;           /* the shape the arena was planned for */
    size_t temp_floats[BM_TRAIN_TEMPS];
    cl_mem temp[BM_TRAIN_TEMPS];
    cl_mem ids, targets, order, start; /* int32 [N], [N], [N], [V + 1] */
    cl_mem *x;                      /* n_layers + 1 residual streams [N, d]: x[i] enters sublayer i */
    cl_mem h, dx, dh;               /* [N, d] */
    cl_mem logits, row_loss, row_hit; /* [head_rows, V], [N], [N] (int32: target is the argmax) */
    cl_mem chunk_targets, chunk_loss, chunk_hit; /* [head_rows]: a head chunk's slice of targets / row_loss / row_hit */
    size_t head_rows;               /* rows of logits per head chunk */
    /* the head over the scored rows only (targets >= 0: MQAR scores a few positions a sequence):
     * their row indices, targets, the rows' normed inputs and gradients gathered [S, d], and the
     * scatter of those gradients back (order / start as bm_op_embed_backward takes them, over N) */
    cl_mem head_idx, head_targets, head_order, head_start, head_h, head_dh;
    size_t stacked_gemms;           /* GEMMs of stacked projections run so far (bm_train_linear_stack; tests) */
};

/* What a pass measured: the loss summed over the scored positions (rows in order, in double), how
 * many were scored, and at how many the target was the argmax. */
typedef struct {
    double loss_sum;
    size_t scored, correct;
} bm_train_stats;

/* One pass over a batch (bmojo_trainer_grad's checks): the loss, and with `backward` the
 * gradients of grad_scale * sum of -log p(target) added to the parameters' (grad_scale 0: 1 /
 * scored, the batch's mean; gradient accumulation over micro-batches passes 1 / the step's
 * scored count). hits (host, B*T, may be NULL): 1 where the target was the argmax. Blocks. */
int bm_trainer_pass(bm_trainer *tr, const int32_t *ids, const int32_t *targets, int B, int T, int backward,
                    double grad_scale, bm_train_stats *out, int32_t *hits);

/* A temporary of at least `floats` floats in slot `slot` (< BM_TRAIN_TEMPS); during reserve it
 * records the need, afterwards tr->temp[slot] holds it. Slots are shared by all sublayers. */
void bm_train_temp_need(bm_trainer *tr, int slot, size_t floats);
/* The parameter l->p[k]'s value / gradient buffers (NULL when absent). */
cl_mem bm_train_value(const bm_trainer *tr, const bm_train_layer *l, int k);
cl_mem bm_train_grad(const bm_trainer *tr, const bm_train_layer *l, int k);

/* Linear layers on row-major activations with W [out, in] as stored in checkpoints:
 * y (ldy, from column ycol) = beta * y + x W^T; and its backward: gW += dy^T x and
 * dx = beta_dx * dx + dy W (dx NULL: skipped). */
int bm_train_linear(bm_trainer *tr, cl_mem x, size_t x_col, size_t ldx, size_t in, cl_mem w, size_t out, cl_mem y,
                    size_t y_col, size_t ldy, float beta);
int bm_train_linear_backward(bm_trainer *tr, cl_mem x, size_t x_col, size_t ldx, size_t in, cl_mem w, cl_mem gw,
                             size_t out, cl_mem dy, size_t dy_col, size_t ldy, cl_mem dx, size_t dx_col, size_t lddx,
                             float beta_dx);
/* The same for n side-by-side projections of one input: the parameters l->p[k0 .. k0+n-1], each
 * [out_j, in], whose outputs are consecutive column ranges of y (dy) from y_col (dy_col). When
 * they lie back to back in the table's flat buffers (bm_params_add appends them in this order,
 * padded only to the device's base alignment) they are one stacked weight [sum out_j, in]: one
 * GEMM each way instead of n thinner ones (Q|K|V, gate|up); otherwise one projection at a time. */
int bm_train_linear_stack(bm_trainer *tr, const bm_train_layer *l, int k0, int n, cl_mem x, size_t x_col, size_t ldx,
                          size_t in, cl_mem y, size_t y_col, size_t ldy, float beta);
int bm_train_linear_stack_backward(bm_trainer *tr, const bm_train_layer *l, int k0, int n, cl_mem x, size_t x_col,
                                   size_t ldx, size_t in, cl_mem dy, size_t dy_col, size_t ldy, cl_mem dx, size_t dx_col,
                                   size_t lddx, float beta_dx);

#endif
