/* arena.c — see arena.h. Blocks are filled in order; a take that does not fit the rest of a block
 * opens the next one, so planning and allocation (the same takes in the same order) agree on
 * every offset. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "error.h"

void bm_arena_plan(bm_arena *a, bm_rt *rt)
{
    bm_arena_free(a);
    memset(a, 0, sizeof *a);
    a->rt = rt;
    a->planning = 1;
    a->block_cap = rt->lim.max_alloc ? (size_t)rt->lim.max_alloc : ((size_t)1 << 30);
    a->cur = -1;
    a->separate = rt->arena_separate;
}

static size_t round_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

/* room for one more handed-out buffer in a->subs; 0 when the host is out of memory */
static int subs_room(bm_arena *a)
{
    if (a->n_subs < a->cap_subs) return 1;
    int cap = a->cap_subs ? 2 * a->cap_subs : 64;
    cl_mem *p = realloc(a->subs, (size_t)cap * sizeof *p);
    if (!p) return 0;
    a->subs = p;
    a->cap_subs = cap;
    return 1;
}

int bm_arena_take(bm_arena *a, size_t bytes, cl_mem *out)
{
    size_t align = a->rt->lim.base_align ? a->rt->lim.base_align : 256;
    size_t need = round_up(bytes ? bytes : 4, align);
    if (out) *out = NULL;
    if (a->separate && !a->planning) {
        if (!subs_room(a)) return bm_fail(BMOJO_ENOMEM, "out of host memory");
        int st = bm_alloc(a->rt, bytes, out);
        if (!st) a->subs[a->n_subs++] = *out;
        return st;
    }
    if (need > a->block_cap)
        return bm_fail(BMOJO_ENOMEM, "one activation buffer of %.1f MiB is larger than the device's maximum "
                       "allocation of %.1f MiB", (double)need / 1048576.0, (double)a->block_cap / 1048576.0);
    if (a->cur < 0 || a->off + need > (a->planning ? a->block_cap : a->block_used[a->cur])) {
        if (a->cur + 1 >= BM_ARENA_MAX_BLOCKS) {
            /* planning goes on adding up, so the budget can say how much the pass needs */
            if (!a->planning)
                return bm_fail(BMOJO_ENOMEM, "the pass needs more than %d blocks of device memory", BM_ARENA_MAX_BLOCKS);
            a->too_many = 1;
            a->total += need;
            return 0;
        }
        a->cur++;
        a->off = 0;
        if (a->planning) a->n_blocks = a->cur + 1;
        else if (a->cur >= a->n_blocks)
            return bm_fail(BMOJO_EINVAL, "bm_arena_take: more takes than were planned");
    }
    size_t at = a->off;
    a->off += need;
    if (a->planning) {
        a->block_used[a->cur] = a->off;
        a->total += need;
        return 0;
    }
    if (!subs_room(a)) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    int st = bm_sub_buffer(a->rt, a->blocks[a->cur], at, need, out);
    if (!st) a->subs[a->n_subs++] = *out;
    return st;
}

int bm_arena_floats(bm_arena *a, size_t n, cl_mem *out)
{
    return bm_arena_take(a, n * sizeof(float), out);
}

int bm_arena_alloc(bm_arena *a)
{
    if (a->too_many)
        return bm_fail(BMOJO_ENOMEM, "the pass needs %.1f GiB in more than %d blocks of %.1f GiB (the device's largest "
                       "allocation)", (double)a->total / 1073741824.0, BM_ARENA_MAX_BLOCKS,
                       (double)a->block_cap / 1073741824.0);
    a->planning = 0;
    for (int b = 0; b < a->n_blocks && !a->separate; b++) {
        int st = bm_alloc(a->rt, a->block_used[b], &a->blocks[b]);
        if (st) return bm_fail_context(st, "activation memory block %d of %d (%.1f MiB)", b + 1, a->n_blocks,
                                       (double)a->block_used[b] / 1048576.0);
    }
    a->cur = -1;
    a->off = 0;
    return 0;
}

void bm_arena_free(bm_arena *a)
{
    for (int i = 0; i < a->n_subs; i++) bm_release(a->subs[i]);
    free(a->subs);
    a->subs = NULL;
    a->n_subs = a->cap_subs = 0;
    for (int b = 0; b < BM_ARENA_MAX_BLOCKS; b++) {
        bm_release(a->blocks[b]);
        a->blocks[b] = NULL;
    }
    a->n_blocks = 0;
}
