/* scratch.c — the runtime's scratch stack (scratch.h): one buffer per depth, grown on demand. */
#include "runtime.h" /* first: it sets the OpenCL target version before CL/cl.h */

#include "error.h"
#include "scratch.h"

int bm_scratch_mark(bm_rt *rt) { return rt ? rt->scratch.depth : 0; }

int bm_scratch_depth(const bm_rt *rt) { return rt ? rt->scratch.depth : 0; }

int bm_scratch_take(bm_rt *rt, size_t bytes, cl_mem *out)
{
    if (!rt || !out) return bm_fail(BMOJO_EINVAL, "bm_scratch_take: NULL argument");
    *out = NULL;
    bm_scratch_stack *s = &rt->scratch;
    const int d = s->depth;
    if (d == BM_SCRATCH_MAX_DEPTH)
        return bm_fail(BMOJO_EINVAL, "scratch: more than %d temporaries live at once (an op that does not release?)",
                       BM_SCRATCH_MAX_DEPTH);
    if (!s->buf[d] || s->bytes[d] < bytes) {
        /* Releasing a buffer that enqueued kernels still use is safe: OpenCL keeps it alive until
         * they finish. Grow by half again (within the device's largest allocation) so that a
         * series of slightly larger takes does not reallocate each time. */
        size_t want = bytes + bytes / 2;
        if (rt->lim.max_alloc && want > rt->lim.max_alloc) want = bytes > rt->lim.max_alloc ? bytes : rt->lim.max_alloc;
        bm_release(s->buf[d]);
        s->buf[d] = NULL;
        s->bytes[d] = 0;
        int st = bm_alloc(rt, want, &s->buf[d]);
        if (st) return bm_fail_context(st, "scratch memory (%zu bytes at depth %d)", want, d);
        s->bytes[d] = want;
    }
    s->depth = d + 1;
    *out = s->buf[d];
    return 0;
}

void bm_scratch_release(bm_rt *rt, int mark)
{
    if (!rt) return;
    if (mark < 0) mark = 0;
    if (mark < rt->scratch.depth) rt->scratch.depth = mark;
}

void bm_scratch_free(bm_scratch_stack *s)
{
    for (int d = 0; d < BM_SCRATCH_MAX_DEPTH; d++) {
        bm_release(s->buf[d]);
        s->buf[d] = NULL;
        s->bytes[d] = 0;
    }
    s->depth = 0;
}
