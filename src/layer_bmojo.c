/* layer_bmojo.c — the B'MOJO mixer (being written). */
#include "error.h"
#include "layers.h"
int bm_layer_bmojo(bm_model *m, bm_state *s, int i, int T)
{
    (void)m; (void)s; (void)T;
    return bm_fail(BMOJO_EUNSUPPORTED, "layers[%d]: bmojo sublayer not wired yet", i);
}
