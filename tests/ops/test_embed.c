/* test_embed.c — bm_op_embed against bm_ref_embed: awkward n and d, ids at 0 and V-1, exact; with an
 * fp32 table and an f16 one (bm_embed_gather_w16: the reference gathers the rounded values). */
#include <stdio.h>
#include <stdlib.h>

#include "op_test.h"
#include "ops.h"
#include "ref/ref.h"

static void embed_case(bm_test_ctx *t, int V, int n, int d, bm_store store)
{
    size_t tn = (size_t)V * (size_t)d, on = (size_t)n * (size_t)d;
    float *table = bm_test_alloc(tn * sizeof(float));
    float *want = bm_test_alloc(on * sizeof(float));
    float *got = bm_test_alloc(on * sizeof(float));
    int32_t *ids = bm_test_alloc((size_t)n * sizeof(int32_t));
    bm_test_fill(t, table, tn, -3.0f, 3.0f);
    bm_test_fill(t, got, on, 100.0f, 200.0f); /* garbage the kernel must overwrite */
    for (int r = 0; r < n; r++) ids[r] = (int32_t)bm_test_randint(t, (uint32_t)V);
    ids[0] = 0;
    if (n > 1) ids[n - 1] = V - 1;
    if (n > 2) ids[1] = V - 1;

    cl_mem dids = bm_test_buffer(t, ids, (size_t)n * sizeof(int32_t));
    bm_wmat dtab = {bm_test_weights(t, table, tn, store), store};
    cl_mem dout = bm_test_buffer(t, got, on * sizeof(float));
    char what[96];
    snprintf(what, sizeof what, "embed%s V=%d n=%d d=%d", store == BM_STORE_F16 ? " f16" : "", V, n, d);
    if (bm_test_status(t, bm_op_embed(t->rt, dids, dtab, dout, n, d), what)) {
        bm_test_read(t, dout, got, on * sizeof(float));
        bm_ref_embed(ids, table, want, n, d);
        bm_test_close(t, what, got, want, on, 0.0);
    }
    bm_release(dids);
    bm_release(dtab.buf);
    bm_release(dout);
    free(table);
    free(want);
    free(got);
    free(ids);
}

void test_op_embed(bm_test_ctx *t)
{
    static const int ns[] = {1, 3, 37, 130};
    static const int ds[] = {1, 7, 64, 100, 257, 1536};
    static const int Vs[] = {1, 5, 301};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (size_t j = 0; j < sizeof ds / sizeof ds[0]; j++)
            for (int half = 0; half < 2; half++)
                embed_case(t, Vs[(i + j) % 3], ns[i], ds[j], half ? BM_STORE_F16 : BM_STORE_F32);
    /* n = 0 is a no-op that must succeed. */
    bm_test_status(t, bm_op_embed(t->rt, NULL, bm_wf32(NULL), NULL, 0, 8), "embed n=0");
}
