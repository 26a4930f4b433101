/* scratch.h — the runtime's scratch stack: temporary device memory for an op's intermediate
 * results (split-K partial sums, row statistics, per-block partials). An op marks the stack,
 * takes what it needs, and releases back to its mark before it returns; an op that calls another
 * op (the scan calls the GEMM) nests naturally, so no two live temporaries can share memory.
 * Ops run one after another on the in-order queue, so memory released by one op is reused by the
 * next without waiting. Each depth of the stack owns one buffer that grows to the largest size
 * taken at that depth and is then reused: the hot path does not allocate once warm.
 * Why whole buffers per depth and not sub-buffers of one arena: on the NVIDIA 580 driver,
 * releasing scratch sub-buffers whose region was re-carved crashed inside clReleaseMemObject
 * (test_ops scan_backward, H100, 2026-12-06); plain buffers are what the driver handles well. */
#ifndef BM_SCRATCH_H
#define BM_SCRATCH_H

#include <stddef.h>

#include <CL/cl.h> /* included through runtime.h, which sets the target version */

typedef struct bmojo_runtime bm_rt;

#define BM_SCRATCH_MAX_DEPTH 16 /* live temporaries at once, over all nested ops */

typedef struct {
    int depth;                               /* live temporaries */
    cl_mem buf[BM_SCRATCH_MAX_DEPTH];        /* the buffer of each depth, kept after release */
    size_t bytes[BM_SCRATCH_MAX_DEPTH];
} bm_scratch_stack;

/* The current top of the stack, to release back to. */
int bm_scratch_mark(bm_rt *rt);
/* A temporary of at least `bytes` (contents undefined), valid until the stack is released below
 * it; never release the buffer itself. */
int bm_scratch_take(bm_rt *rt, size_t bytes, cl_mem *out);
/* Releases every temporary taken since `mark` (their memory stays for the next takes). */
void bm_scratch_release(bm_rt *rt, int mark);
/* Live temporaries (0 between ops: tests check it). */
int bm_scratch_depth(const bm_rt *rt);
/* Frees everything (runtime teardown). */
void bm_scratch_free(bm_scratch_stack *s);

#endif
