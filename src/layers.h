/* layers.h — the forward pass of each sublayer kind. Each reads s->ws.h (the normed input,
 * [B*T, d]), writes s->ws.out ([B*T, d]) and advances its own state by T tokens; all enqueued,
 * nothing read back. The caller does the norm and the residual add. */
#ifndef BM_LAYERS_H
#define BM_LAYERS_H

#include "model.h"
#include "ops_bmojo.h"

/* Mamba-1 mixer on `in` ([N, d]), output into `out` ([N, d]). bmojo reuses it for its fading stream. */
int bm_layer_mamba(bm_model *m, bm_state *s, int i, int T, cl_mem in, cl_mem out);
int bm_layer_attention(bm_model *m, bm_state *s, int i, int T);
int bm_layer_mlp(bm_model *m, bm_state *s, int i, int T);
int bm_layer_bmojo(bm_model *m, bm_state *s, int i, int T);
/* Byte sizes of a bmojo sublayer's state buffers for B sequences. */
int bm_layer_bmojo_state_sizes(const bm_model *m, int i, int B, bm_bmojo_state_sizes *out);

#endif
