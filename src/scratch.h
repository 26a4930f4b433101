/* scratch.h — the runtime's scratch stack: temporary device memory for an op's intermediate
 * results (split-K partial sums, row statistics, per-block partials). An op marks the stack,
 * takes what it needs, and releases back to its mark before it returns; an op that calls another
 * op (the scan calls the GEMM) nests naturally, so no two live temporaries can share memory.
 * Ops run one after another on the in-order queue, so memory released by one op is reused by the
 * next without waiting. Memory comes from a few large chunks that grow to the largest depth seen
 * and are then reused: the hot path neither allocates nor creates sub-buffers once warm. */
#ifndef BM_SCRATCH_H
#define BM_SCRATCH_H

#include <stddef.h>

#include <CL/cl.h> /* included through runtime.h, which sets the target version */

typedef struct bmojo_runtime bm_rt;

#define BM_SCRATCH_MAX_DEPTH 16 /* live temporaries at once, over all nested ops */
#define BM_SCRATCH_MAX_CHUNKS 8

typedef struct {
    int chunk;      /* which chunk */
    size_t offset;  /* bytes into it */
    size_t bytes;   /* rounded to the sub-buffer alignment */
    cl_mem sub;     /* the sub-buffer: kept after release and reused by the next take at this depth
                       with the same chunk, offset and size (exactly: sub-buffers passed to one
                       kernel must not overlap) */
    size_t sub_bytes;
} bm_scratch_entry;

typedef struct {
    int depth;                                   /* live entries */
    bm_scratch_entry e[BM_SCRATCH_MAX_DEPTH];
    int n_chunks;
    cl_mem chunk[BM_SCRATCH_MAX_CHUNKS];
    size_t chunk_bytes[BM_SCRATCH_MAX_CHUNKS];
    size_t live_bytes, high_water;               /* bytes taken now / at most since the last regrouping */
} bm_scratch_stack;

/* The current top of the stack, to release back to. */
int bm_scratch_mark(bm_rt *rt);
/* A temporary of at least `bytes` (contents undefined), valid until the stack is released below
 * it; never release the buffer itself. */
int bm_scratch_take(bm_rt *rt, size_t bytes, cl_mem *out);
/* Releases every temporary taken since `mark`. When the stack empties and its memory was split
 * over several chunks, the next take regroups it into one chunk of the largest depth seen. */
void bm_scratch_release(bm_rt *rt, int mark);
/* Live temporaries (0 between ops: tests check it). */
int bm_scratch_depth(const bm_rt *rt);
/* Frees everything (runtime teardown). */
void bm_scratch_free(bm_scratch_stack *s);

#endif
