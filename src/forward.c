/* forward.c — bmojo_forward: T tokens of B sequences through the layer stack, continuing from
 * the state, in chunks of bounded size (BM_PREFILL_CHUNK_ROWS) so that scratch memory does not
 * grow with T. Within a chunk every op is enqueued on one in-order queue with no host round trip
 * in between, and only the requested logits come back. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "layer_kind.h"
#include "ops.h"

#define BM_MAX_TOKENS_PER_CALL (1 << 22)

int bm_forward_device(bm_model *m, bm_state *s, int T, int logits_mode)
{
    bm_rt *rt = m->rt;
    bm_workspace *ws = &s->ws;
    size_t N = (size_t)s->B * (size_t)T, d = (size_t)m->cfg.d_model, V = (size_t)m->cfg.vocab_size;
    float eps = m->cfg.norm_eps;

    int st = bm_op_embed(rt, ws->ids, m->embed, ws->x, (int)N, (int)d);
    /* The pass, chosen here once for every sublayer (layer_kind.h): a decoding step (at most
     * BM_GEMV_MAX_ROWS rows) applies each sublayer's RMSNorm inside its first GEMM and takes the
     * decoding fusions; a prefill writes h once and its GEMMs read it. */
    const bm_pass pass = N <= BM_GEMV_MAX_ROWS ? BM_PASS_DECODE : BM_PASS_PREFILL;
    for (int i = 0; st == 0 && i < m->cfg.n_layers; i++) {
        const bm_layer_kind *kind = bm_layer_kind_of(m->cfg.layers[i].type);
        bm_gemv_input in = {.mode = BM_GEMV_PLAIN, .A = ws->h, .a_off = 0, .lda = d};
        if (!kind) st = bm_fail(BMOJO_ECONFIG, "layers[%d]: unknown sublayer kind", i);
        else if (pass == BM_PASS_DECODE) {
            in.mode = BM_GEMV_RMSNORM;
            in.A = ws->x;
            in.norm_w = m->layers[i].norm;
            in.eps = eps;
        } else
            st = bm_op_rmsnorm(rt, ws->x, d, 0, m->layers[i].norm, ws->h, d, 0, (int)N, (int)d, eps);
        if (!st) st = kind->forward(m, s, i, T, pass, &in);
        if (st) return bm_fail_context(st, "layers[%d] (%s)", i, bm_layer_type_name(m->cfg.layers[i].type));
    }
    if (logits_mode == BMOJO_LOGITS_LAST) {
        /* the last row of each sequence: rows b*T + T-1, i.e. a stride of T*d from column (T-1)*d */
        if (s->B <= BM_GEMV_MAX_ROWS) { /* the final norm inside the head's skinny GEMM */
            bm_gemv_input in = {.mode = BM_GEMV_RMSNORM, .A = ws->x, .a_off = (size_t)(T - 1) * d, .lda = (size_t)T * d,
                                .norm_w = m->norm_f, .eps = eps};
            st = bm_op_gemv_in(rt, &in, (size_t)s->B, V, d, m->lm_head, 0, d, 0.0f, ws->logits, 0, V);
        } else {
            st = bm_op_rmsnorm(rt, ws->x, (size_t)T * d, (size_t)(T - 1) * d, m->norm_f, ws->hf, d, 0, s->B, (int)d, eps);
            if (!st) st = bm_gemm(rt, (size_t)s->B, V, d, ws->hf, 0, d, m->lm_head, 0, d, 0.0f, ws->logits, 0, V);
        }
    } else if (logits_mode == BMOJO_LOGITS_ALL) {
        st = bm_op_rmsnorm(rt, ws->x, d, 0, m->norm_f, ws->hf, d, 0, (int)N, (int)d, eps);
        if (!st) st = bm_gemm(rt, N, V, d, ws->hf, 0, d, m->lm_head, 0, d, 0.0f, ws->logits, 0, V);
    }
    return st ? bm_fail_context(st, "output head") : 0;
}

int bmojo_forward(bmojo_model *m, bmojo_state *s, const int32_t *ids, int T, int logits_mode, float *logits)
{
    if (!m || !s || !ids) return bm_fail(BMOJO_EINVAL, "bmojo_forward: model, state and ids must not be NULL");
    if (s->m != m) return bm_fail(BMOJO_EINVAL, "bmojo_forward: the state was created for another model");
    if (T < 1 || T > BM_MAX_TOKENS_PER_CALL)
        return bm_fail(BMOJO_EINVAL, "bmojo_forward: T = %d tokens is out of range [1, %d]", T, BM_MAX_TOKENS_PER_CALL);
    if (logits_mode < BMOJO_LOGITS_NONE || logits_mode > BMOJO_LOGITS_ALL)
        return bm_fail(BMOJO_EINVAL, "bmojo_forward: unknown logits mode %d", logits_mode);
    if (logits_mode != BMOJO_LOGITS_NONE && !logits)
        return bm_fail(BMOJO_EINVAL, "bmojo_forward: logits requested but the output pointer is NULL");
    size_t B = (size_t)s->B, N = B * (size_t)T;
    for (size_t r = 0; r < N; r++)
        if (ids[r] < 0 || ids[r] >= m->cfg.vocab_size)
            return bm_fail(BMOJO_ERANGE, "token id %d (sequence %zu, position %lld) is outside the vocabulary [0, %d)",
                           ids[r], r / (size_t)T, (long long)(s->pos + (int64_t)(r % (size_t)T)), m->cfg.vocab_size);
    if (s->pos + T > ((int64_t)1 << 31) - 1) return bm_fail(BMOJO_ERANGE, "sequence longer than 2^31 tokens");

    /* Chunks of Tc tokens per sequence (B * Tc rows), the state carried from one to the next
     * exactly as across calls: scratch is bounded by the chunk, not by T. */
    bm_rt *rt = m->rt;
    size_t chunk_rows = (size_t)rt->prefill_chunk_rows;
    int Tc = B * (size_t)T <= chunk_rows ? T : (int)(chunk_rows / B > 0 ? chunk_rows / B : 1);
    size_t V = (size_t)m->cfg.vocab_size;
    size_t logit_rows = logits_mode == BMOJO_LOGITS_ALL ? B * (size_t)Tc : logits_mode == BMOJO_LOGITS_LAST ? B : 0;
    int st = bm_state_reserve(s, Tc, T, logit_rows);
    for (int t0 = 0; st == 0 && t0 < T; t0 += Tc) {
        int n = T - t0 < Tc ? T - t0 : Tc;
        int mode = logits_mode == BMOJO_LOGITS_LAST && t0 + n < T ? BMOJO_LOGITS_NONE : logits_mode;
        /* ids [B, T] on the host, [B, n] on the device */
        st = bm_upload_rows_async(rt, ids + t0, (size_t)T * 4, s->ws.ids, 0, (size_t)n * 4, (size_t)n * 4, B);
        if (!st) st = bm_forward_device(m, s, n, mode);
        if (!st) s->pos += n;
        /* logits [B, n, V] on the device go to rows t0.. of each sequence's [T, V] */
        if (!st && mode == BMOJO_LOGITS_ALL)
            st = bm_download_rows(rt, s->ws.logits, 0, (size_t)n * V * 4, logits + (size_t)t0 * V, (size_t)T * V * 4,
                                  (size_t)n * V * 4, B);
    }
    if (!st && logits_mode == BMOJO_LOGITS_LAST) st = bm_download(rt, s->ws.logits, 0, logits, B * V * 4);
    else if (!st && logits_mode != BMOJO_LOGITS_ALL) st = bm_finish(rt);
    /* the uploads read `ids` until the queue has run them: a failure must not return earlier */
    if (st) bm_finish(rt);
    return st; /* the state is undefined after a failure: reset or restore it */
}
