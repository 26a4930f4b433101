/* layers.h — what one sublayer kind's file shares with another: the B'MOJO kind (layer_bmojo.c)
 * runs its fading stream through the Mamba kind's pieces and describes its attention like the
 * attention kind. Everything else about a kind is reached through its table (layer_kind.h).
 * A forward reads the sublayer's normed input through `in` (s->ws.h, or in BM_PASS_DECODE the
 * residual stream x with the sublayer's RMSNorm applied inside its first GEMM), adds its output
 * into the residual stream s->ws.x (its last GEMM runs with beta = 1, so the residual add costs
 * no extra pass) and advances its own state by T tokens; all enqueued, nothing read back. */
#ifndef BM_LAYERS_H
#define BM_LAYERS_H

#include "layer_kind.h"
#include "model.h"
#include "ops.h"
#include "ops_bmojo.h"

struct bm_loader;

/* in_proj of sublayer i into s->ws.xz (ncols columns: x | z [| more rows of a fused weight]);
 * when decoding allows it (BM_PASS_DECODE, T == 1) the conv step runs inside the same GEMV
 * (writes s->ws.u, advances the conv state) and *conv_done is set. */
int bm_layer_mamba_in_proj(bm_model *m, bm_state *s, int i, int T, bm_pass pass, const bm_gemv_input *in,
                           size_t ncols, int *conv_done);
/* The rest after in_proj: its output is already in s->ws.xz with leading dimension xz_ld (x in
 * columns 0..di-1, z in di..2*di-1); conv_done: the conv step already ran (see above). out NULL:
 * stop at the gated scan output s->ws.ys (the caller applies out_proj). bmojo_pre (B'MOJO decoding,
 * see bm_bmojo_decode_fused_ok): the scan step's launch also runs that sublayer's pre-attention
 * state update. */
int bm_layer_mamba_mixer(bm_model *m, bm_state *s, int i, int T, size_t xz_ld, int conv_done, cl_mem out, float beta,
                         const bm_bmojo_args *bmojo_pre);
/* The Mamba weights of sublayer i; n_extra (<= 3) tensors named by the native suffixes extra[],
 * of extra_rows[] rows and d columns, are stacked under in_proj's rows into one weight (and
 * w->wqkv_row set to 2*d_inner): B'MOJO's q|k|v, so that one GEMM computes both. */
int bm_layer_mamba_load(struct bm_loader *L, int i, const bm_layer_cfg *lc, bm_layer_weights *w,
                        const char *const *extra, const int64_t *extra_rows, int n_extra);
/* Workspace sizes of the Mamba part; extra_cols: more columns of the in_proj output. */
void bm_layer_mamba_dims(const bm_layer_cfg *l, size_t extra_cols, bm_model_dims *o);
/* The conv and SSM states of sublayer i for B sequences. */
int bm_layer_mamba_state_alloc(const bm_model *m, int i, int B, bm_layer_state *ls, bm_sizer *z);
/* The description of l->mamba / l->attn (bm_layer_kind.describe). */
size_t bm_layer_mamba_describe(const bm_layer_cfg *l, char *buf, size_t n);
size_t bm_layer_attention_describe(const bm_layer_cfg *l, char *buf, size_t n);
/* The recurrent memory of the Mamba mixer (SSM state, conv tail) and of an attention's K/V
 * (window rows, or the context's under full attention): shared with the bmojo kind. */
void bm_layer_mamba_recurrent_memory(const bm_layer_cfg *l, int64_t context, bmojo_recurrent_memory *o);
void bm_layer_attention_recurrent_memory(const bm_layer_cfg *l, int64_t context, bmojo_recurrent_memory *o);

#endif
