/* layers.h — the forward pass of each sublayer kind. Each reads its normed input through `in`
 * (s->ws.h, or for a decoding step of at most 8 rows the residual stream x with the sublayer's
 * RMSNorm applied inside its first GEMM), adds its output into the residual stream s->ws.x (its
 * last GEMM runs with beta = 1, so the residual add costs no extra pass) and advances its own
 * state by T tokens; all enqueued, nothing read back. */
#ifndef BM_LAYERS_H
#define BM_LAYERS_H

#include "model.h"
#include "ops.h"
#include "ops_bmojo.h"

/* Mamba-1 mixer: out = beta * out + mixer(in) ([N, d]). The forward pass calls it with out = x,
 * beta = 1. */
int bm_layer_mamba(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in, cl_mem out, float beta);
/* in_proj of sublayer i into s->ws.xz (ncols columns: x | z [| more rows of a fused weight]);
 * when decoding allows it the conv step runs inside the same GEMV (writes s->ws.u, advances the
 * conv state) and *conv_done is set. */
int bm_layer_mamba_in_proj(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in, size_t ncols, int *conv_done);
/* The rest after in_proj: its output is already in s->ws.xz with leading dimension xz_ld (x in
 * columns 0..di-1, z in di..2*di-1); conv_done: the conv step already ran (see above). out NULL:
 * stop at the gated scan output s->ws.ys (the caller applies out_proj). bmojo_pre (B'MOJO decoding,
 * see bm_bmojo_decode_fused_ok): the scan step's launch also runs that sublayer's pre-attention
 * state update. */
int bm_layer_mamba_mixer(bm_model *m, bm_state *s, int i, int T, size_t xz_ld, int conv_done, cl_mem out, float beta,
                         const bm_bmojo_args *bmojo_pre);
int bm_layer_attention(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in);
int bm_layer_mlp(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in);
int bm_layer_bmojo(bm_model *m, bm_state *s, int i, int T, const bm_gemv_input *in);
/* Byte sizes of a bmojo sublayer's state buffers for B sequences. */
void bm_layer_bmojo_state_sizes(const bm_model *m, int i, int B, bm_bmojo_state_sizes *out);

#endif
