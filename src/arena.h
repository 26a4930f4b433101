/* arena.h — a pass's device memory carved from a few large allocations: the training pass takes
 * every saved activation and temporary from one arena instead of growing buffers one by one, so
 * its whole footprint is known (and budgeted) before anything is allocated. Use it twice with the
 * same sequence of takes: first planning (nothing allocated, sizes added up), then for real. */
#ifndef BM_ARENA_H
#define BM_ARENA_H

#include "runtime.h"

#define BM_ARENA_MAX_BLOCKS 64

typedef struct {
    bm_rt *rt;
    int planning;                  /* 1: bm_arena_take only adds up */
    size_t block_cap;              /* largest block: the device's maximum allocation */
    int n_blocks;
    size_t block_used[BM_ARENA_MAX_BLOCKS]; /* planned bytes per block */
    cl_mem blocks[BM_ARENA_MAX_BLOCKS];
    int cur;                       /* block being filled */
    size_t off;                    /* bytes used in it */
    uint64_t total;                /* planned bytes, all blocks */
    int too_many;                  /* the plan needs more than BM_ARENA_MAX_BLOCKS blocks */
    int separate;                  /* rt->arena_separate: every take its own allocation */
    int n_subs, cap_subs;
    cl_mem *subs;                  /* every sub-buffer handed out, released by bm_arena_free */
} bm_arena;

/* Starts planning. With BMOJO_ARENA_SEPARATE=1 (read at runtime creation; a debugging aid)
 * every take after planning is its own allocation of exactly its size instead of a sub-buffer,
 * so an access past a buffer's end leaves the allocation: valgrind sees it on POCL, a GPU may
 * fault. */
void bm_arena_plan(bm_arena *a, bm_rt *rt);
/* Ends planning: allocates the blocks (zero-filled) for the takes that follow. */
int bm_arena_alloc(bm_arena *a);
/* A buffer of `bytes` (aligned for sub-buffers); planning: *out = NULL, only counted. */
int bm_arena_take(bm_arena *a, size_t bytes, cl_mem *out);
/* Floats helper: bm_arena_take(a, n * 4, out). */
int bm_arena_floats(bm_arena *a, size_t n, cl_mem *out);
/* Releases everything (the arena may be planned again). */
void bm_arena_free(bm_arena *a);

#endif
