/* layer_kind.c — the map from a sublayer type to its kind's table (layer_kind.h); the tables
 * themselves live in each kind's file. */
#include "layer_kind.h"

static const bm_layer_kind *const kinds[] = {
    [BM_LAYER_MAMBA] = &bm_layer_kind_mamba,
    [BM_LAYER_ATTENTION] = &bm_layer_kind_attention,
    [BM_LAYER_MLP] = &bm_layer_kind_mlp,
    [BM_LAYER_BMOJO] = &bm_layer_kind_bmojo,
};

const bm_layer_kind *bm_layer_kind_of(bm_layer_type t)
{
    if ((int)t < 0 || (size_t)t >= sizeof kinds / sizeof kinds[0]) return NULL;
    return kinds[t];
}
