/* scratch.c — the runtime's scratch stack (scratch.h): chunks, sub-buffers cached per depth,
 * regrouping into one chunk when the stack empties. */
#include "runtime.h" /* first: it sets the OpenCL target version before CL/cl.h */

#include "error.h"
#include "scratch.h"

static void drop_subs(bm_scratch_stack *s)
{
    for (int d = 0; d < BM_SCRATCH_MAX_DEPTH; d++) {
        bm_release(s->e[d].sub);
        s->e[d].sub = NULL;
        s->e[d].sub_bytes = 0;
    }
}

static void drop_chunks(bm_scratch_stack *s)
{
    drop_subs(s); /* sub-buffers go before their parents */
    for (int c = 0; c < s->n_chunks; c++) {
        /* kernels still queued on the old memory keep it alive until they finish (OpenCL's
         * deferred release), so this needs no wait */
        bm_release(s->chunk[c]);
        s->chunk[c] = NULL;
        s->chunk_bytes[c] = 0;
    }
    s->n_chunks = 0;
}

int bm_scratch_mark(bm_rt *rt) { return rt ? rt->scratch.depth : 0; }

int bm_scratch_depth(const bm_rt *rt) { return rt ? rt->scratch.depth : 0; }

int bm_scratch_take(bm_rt *rt, size_t bytes, cl_mem *out)
{
    if (!rt || !out) return bm_fail(BMOJO_EINVAL, "bm_scratch_take: NULL argument");
    *out = NULL;
    bm_scratch_stack *s = &rt->scratch;
    if (s->depth == BM_SCRATCH_MAX_DEPTH)
        return bm_fail(BMOJO_EINVAL, "scratch: more than %d temporaries live at once (an op that does not release?)",
                       BM_SCRATCH_MAX_DEPTH);
    size_t align = rt->lim.base_align ? rt->lim.base_align : 256;
    size_t r = ((bytes ? bytes : 1) + align - 1) / align * align;
    int c = 0;
    size_t off = 0;
    if (s->depth > 0) {
        const bm_scratch_entry *top = &s->e[s->depth - 1];
        c = top->chunk;
        off = top->offset + top->bytes;
    }
    while (c < s->n_chunks && off + r > s->chunk_bytes[c]) {
        c++;
        off = 0;
    }
    if (c == s->n_chunks) {
        if (s->n_chunks == BM_SCRATCH_MAX_CHUNKS)
            return bm_fail(BMOJO_ENOMEM, "scratch: %d chunks in use and %zu more bytes wanted", BM_SCRATCH_MAX_CHUNKS,
                           bytes);
        /* The first chunk is sized for the deepest use seen so far (so after a regrouping one
         * chunk holds it all); later ones leave room to grow by half again. */
        size_t want = r + r / 2;
        if (c == 0 && s->high_water > want) want = s->high_water;
        size_t cap = rt->lim.max_alloc;
        if (cap && want > cap) want = cap > r ? cap : r;
        int st = bm_alloc(rt, want, &s->chunk[c]);
        if (st) return bm_fail_context(st, "scratch memory (%zu bytes)", want);
        s->chunk_bytes[c] = want;
        s->n_chunks++;
    }
    bm_scratch_entry *e = &s->e[s->depth];
    if (!e->sub || e->chunk != c || e->offset != off || e->sub_bytes != r) {
        bm_release(e->sub);
        e->sub = NULL;
        e->sub_bytes = 0;
        int st = bm_sub_buffer(rt, s->chunk[c], off, r, &e->sub);
        if (st) return bm_fail_context(st, "scratch memory");
        e->sub_bytes = r;
    }
    e->chunk = c;
    e->offset = off;
    e->bytes = r;
    s->depth++;
    s->live_bytes += r;
    if (s->live_bytes > s->high_water) s->high_water = s->live_bytes;
    *out = e->sub;
    return 0;
}

void bm_scratch_release(bm_rt *rt, int mark)
{
    if (!rt) return;
    bm_scratch_stack *s = &rt->scratch;
    if (mark < 0) mark = 0;
    while (s->depth > mark) {
        s->depth--;
        s->live_bytes -= s->e[s->depth].bytes;
    }
    if (s->depth == 0 && s->n_chunks > 1) drop_chunks(s);
}

void bm_scratch_free(bm_scratch_stack *s)
{
    drop_chunks(s);
    s->depth = 0;
    s->live_bytes = s->high_water = 0;
}
