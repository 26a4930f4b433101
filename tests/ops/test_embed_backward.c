/* test_embed_backward.c — bm_op_embed_backward (with the host sort bm_embed_rows_by_id) against
 * bm_ref_embed_backward, and the reference against a plain scatter-add over the ids in double
 * (the op is linear, so that is its exact gradient): ids with repeats, ids no row uses, V = 1,
 * n = 1, d not a multiple of the work-group, and dtable pre-filled so += is checked over the
 * whole table (rows of unused ids must keep their values). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "op_test.h"
#include "ops_backward.h"
#include "ref/ref_backward.h"

/* The sort's contract: start is a prefix of counts, order lists each id's rows increasing. */
static int sort_ok(const int32_t *ids, int n, int V, const int32_t *order, const int32_t *start)
{
    if (start[0] != 0 || start[V] != n) return 0;
    for (int v = 0; v < V; v++) {
        if (start[v] > start[v + 1]) return 0;
        for (int i = start[v]; i < start[v + 1]; i++) {
            if (order[i] < 0 || order[i] >= n || ids[order[i]] != v) return 0;
            if (i > start[v] && order[i] <= order[i - 1]) return 0;
        }
    }
    return 1;
}

/* used: how many distinct ids the rows draw from (the first `used` of a shuffled set), so some ids
 * repeat and others never appear. */
static void embed_bwd_case(bm_test_ctx *t, int n, int d, int V, int used)
{
    int32_t *ids = bm_test_alloc((size_t)n * sizeof(int32_t));
    int32_t *pool = bm_test_alloc((size_t)V * sizeof(int32_t));
    for (int v = 0; v < V; v++) pool[v] = v;
    for (int v = V - 1; v > 0; v--) {
        int k = (int)bm_test_randint(t, (uint32_t)v + 1);
        int32_t tmp = pool[v];
        pool[v] = pool[k];
        pool[k] = tmp;
    }
    for (int r = 0; r < n; r++) ids[r] = pool[bm_test_randint(t, (uint32_t)used)];
    int32_t *order = bm_test_alloc((size_t)n * sizeof(int32_t));
    int32_t *start = bm_test_alloc((size_t)(V + 1) * sizeof(int32_t));
    bm_embed_rows_by_id(ids, n, V, order, start);
    char what[96];
    snprintf(what, sizeof what, "embed_backward n=%d d=%d V=%d used=%d", n, d, V, used);
    char w2[128];
    snprintf(w2, sizeof w2, "%s sort", what);
    bm_test_true(t, sort_ok(ids, n, V, order, start), w2);

    size_t tn = (size_t)V * (size_t)d, yn = (size_t)n * (size_t)d;
    float *dy = bm_test_alloc(yn * sizeof(float));
    float *table0 = bm_test_alloc(tn * sizeof(float));
    float *want = bm_test_alloc(tn * sizeof(float));
    float *got = bm_test_alloc(tn * sizeof(float));
    bm_test_fill(t, dy, yn, -1.0f, 1.0f);
    bm_test_fill(t, table0, tn, -3.0f, 3.0f); /* accumulate: the old values must stay in the sum */
    for (size_t i = 0; i < tn; i++) want[i] = table0[i];
    bm_ref_embed_backward(order, start, dy, want, n, d, V);

    /* The reference against the scatter-add by ids, in double. */
    double *exact = calloc(tn ? tn : 1, sizeof(double));
    float *exactf = bm_test_alloc(tn * sizeof(float));
    for (int r = 0; r < n; r++)
        for (int j = 0; j < d; j++) exact[(size_t)ids[r] * d + j] += dy[(size_t)r * d + j];
    for (size_t i = 0; i < tn; i++) exactf[i] = (float)(table0[i] + exact[i]);
    snprintf(w2, sizeof w2, "%s ref vs scatter", what);
    bm_test_close(t, w2, want, exactf, tn, 1e-6);

    cl_mem m_order = bm_test_buffer(t, order, (size_t)n * sizeof(int32_t));
    cl_mem m_start = bm_test_buffer(t, start, (size_t)(V + 1) * sizeof(int32_t));
    cl_mem m_dy = bm_test_buffer(t, dy, yn * sizeof(float));
    cl_mem m_tab = bm_test_buffer(t, table0, tn * sizeof(float));
    int st = bm_op_embed_backward(t->rt, m_order, m_start, m_dy, m_tab, n, d, V);
    if (bm_test_status(t, st, what)) {
        bm_test_read(t, m_tab, got, tn * sizeof(float));
        bm_test_close(t, what, got, want, tn, 1e-6);
    }
    bm_release(m_order);
    bm_release(m_start);
    bm_release(m_dy);
    bm_release(m_tab);
    free(exact);
    free(exactf);
    free(ids);
    free(pool);
    free(order);
    free(start);
    free(dy);
    free(table0);
    free(want);
    free(got);
}

void test_op_embed_backward(bm_test_ctx *t)
{
    embed_bwd_case(t, 1, 1, 1, 1);      /* V = 1, n = 1 */
    embed_bwd_case(t, 9, 5, 1, 1);      /* V = 1: every row on one id */
    embed_bwd_case(t, 1, 64, 40, 1);    /* n = 1, 39 ids unused */
    embed_bwd_case(t, 37, 7, 11, 4);    /* heavy repeats, 7 ids unused */
    embed_bwd_case(t, 130, 257, 50, 50);
    embed_bwd_case(t, 300, 33, 1000, 200);
    embed_bwd_case(t, 64, 100, 3, 3);

    /* Ids outside [0, V) land in no id's list and never write out of bounds. */
    int32_t ids[4] = {1, 7, -2, 1}, order[4] = {-9, -9, -9, -9}, start[3] = {-9, -9, -9};
    bm_embed_rows_by_id(ids, 4, 2, order, start);
    bm_test_true(t, start[0] == 0 && start[1] == 0 && start[2] == 2 && order[0] == 0 && order[1] == 3 &&
                        order[2] >= 0 && order[3] >= 0,
                 "embed_backward sort skips out-of-range ids");

    bm_test_true(t, bm_op_embed_backward(t->rt, NULL, NULL, NULL, NULL, 2, -1, 4) == BMOJO_EINVAL,
                 "embed_backward d<0 refused");
    bm_test_true(t, bm_op_embed_backward(t->rt, NULL, NULL, NULL, NULL, 0, 4, 4) == 0, "embed_backward n=0 no-op");
    cl_mem m = bm_test_buffer(t, NULL, 64);
    bm_test_true(t, bm_op_embed_backward(t->rt, m, NULL, m, m, 2, 2, 2) == BMOJO_EINVAL,
                 "embed_backward NULL start refused");
    bm_release(m);
}
