/* state.c — bmojo_state: the recurrent memory of B sequences (Mamba conv/SSM states, attention
 * K/V caches, B'MOJO memories), its workspace of activations, reset, memory accounting, and
 * save/restore to memory or a file. Memory per sequence is constant in the number of tokens for
 * every kind except full attention, whose cache grows by doubling. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "mem_budget.h"
#include "file_write.h"
#include "file_read.h"
#include "layer_kind.h"
#include "model.h"

#define STATE_MAGIC "BMOJOST1"

/* The state buffers of a layer, in a fixed order (save/restore walks them). */
#define LAYER_STATE_FIELDS(X)                                                                                          \
    X(conv) X(ssm) X(k_cache) X(v_cache) X(y_hist) X(win_k) X(win_v) X(fade_k) X(fade_v) X(cand_eps) X(cand_pos)       \
        X(mem)

static size_t mem_size(cl_mem m)
{
    size_t n = 0;
    if (m && clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof n, &n, NULL) != CL_SUCCESS) n = 0;
    return n;
}

/* The memory budget plans with the code that allocates (layer_kind.h). */
int bm_sizer_take(bm_sizer *z, size_t bytes, cl_mem *out)
{
    z->bytes += bytes;
    return z->plan_only ? 0 : bm_alloc(z->rt, bytes, out);
}

/* The buffers of each kind are its table's business (loading refused a layer without a kind). */
static int layer_state_alloc(bm_state *s, int i, bm_sizer *z)
{
    return bm_layer_kind_of(s->m->cfg.layers[i].type)->state_alloc(s->m, i, s->B, &s->layers[i], z);
}

/* Whether sublayer i's state grows with the context (full attention's cache). */
static int state_grows(const bm_state *s, int i, const bm_layer_kind **kind)
{
    const bm_layer_cfg *l = &s->m->cfg.layers[i];
    *kind = bm_layer_kind_of(l->type);
    return (*kind)->state_grows && (*kind)->state_grows(l);
}

static void layer_state_release(bm_layer_state *ls)
{
#define REL(f) bm_release(ls->f); ls->f = NULL;
    LAYER_STATE_FIELDS(REL)
#undef REL
}

static void workspace_release(bm_workspace *ws)
{
    cl_mem *bufs[] = {&ws->ids, &ws->x,  &ws->h,  &ws->xz,  &ws->u,           &ws->xdbl,
                      &ws->ys, &ws->y,  &ws->qkv, &ws->kvf, &ws->att,         &ws->gu,
                      &ws->act, &ws->hf, &ws->logits, &ws->mix_scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        bm_release(*bufs[i]);
        *bufs[i] = NULL;
    }
    ws->rows = ws->logits_rows = ws->mix_scratch_bytes = 0;
    ws->bytes = 0;
}

/* The activations for N rows (B * T), allocated or (plan_only) added up. */
static int workspace_alloc(bm_state *s, size_t N, bm_sizer *z)
{
    bm_workspace *ws = &s->ws;
    bm_model_dims dm;
    bm_model_dims_get(s->m, &dm);
    size_t d = (size_t)s->m->cfg.d_model;
    struct {
        cl_mem *buf;
        size_t cols;
    } plan[] = {{&ws->ids, 1},  {&ws->x, d},          {&ws->h, d},   {&ws->xz, dm.hproj},
                {&ws->u, dm.di}, {&ws->xdbl, dm.xdbl}, {&ws->ys, dm.di}, {&ws->y, d},
                {&ws->qkv, dm.qkv}, {&ws->kvf, dm.kvf}, {&ws->att, dm.att}, {&ws->gu, 2 * dm.f}, {&ws->act, dm.f},
                {&ws->hf, d}};
    int st = 0;
    for (size_t i = 0; st == 0 && i < sizeof plan / sizeof plan[0]; i++)
        if (plan[i].cols) st = bm_sizer_take(z, N * plan[i].cols * 4, plan[i].buf);
    return st;
}

/* Sizes the activations for N rows (B * T). */
static int workspace_reserve(bm_state *s, size_t N)
{
    bm_workspace *ws = &s->ws;
    if (ws->rows >= N) return 0;
    workspace_release(ws);
    bm_sizer z = {.rt = s->m->rt};
    int st = workspace_alloc(s, N, &z);
    ws->bytes += z.bytes;
    if (st) {
        workspace_release(ws);
        return bm_fail_context(st, "allocating activations for %zu rows", N);
    }
    ws->rows = N;
    return 0;
}

/* Sizes the head's output for `rows` rows of V logits: B for the last position of each sequence,
 * B * T only when every position's logits are asked for (a 2048-token prefill of a 32000-word
 * vocabulary would otherwise hold 250 MiB it never fills). */
static int logits_reserve(bm_state *s, size_t rows)
{
    bm_workspace *ws = &s->ws;
    if (ws->logits && ws->logits_rows >= rows) return 0;
    size_t V = (size_t)s->m->cfg.vocab_size;
    if (ws->logits) ws->bytes -= ws->logits_rows * V * 4;
    bm_release(ws->logits);
    ws->logits = NULL;
    ws->logits_rows = 0;
    int st = bm_alloc(s->m->rt, rows * V * 4, &ws->logits);
    if (st) return bm_fail_context(st, "allocating logits for %zu rows", rows);
    ws->logits_rows = rows;
    ws->bytes += rows * V * 4;
    return 0;
}

/* The capacity a growing state (full attention's cache) grows to for `need` positions
 * (doubling), 0 when it needs no growth; bytes: of the new buffers together. */
static int64_t grown_cap(const bm_state *s, int i, int64_t need, uint64_t *bytes)
{
    const bm_layer_state *ls = &s->layers[i];
    const bm_layer_kind *kind;
    *bytes = 0;
    if (!state_grows(s, i, &kind) || need <= ls->cap) return 0;
    int64_t cap = ls->cap;
    while (cap < need) cap *= 2;
    *bytes = kind->state_cap_bytes(&s->m->cfg.layers[i], s->B, cap);
    return cap;
}

/* Grows a growing state to hold `need` positions, keeping what it holds. */
static int grow_cache(bm_state *s, int i, int64_t need)
{
    uint64_t bytes;
    int64_t cap = grown_cap(s, i, need, &bytes);
    if (cap == 0) return 0;
    if (cap > (int64_t)1 << 30) return bm_fail(BMOJO_ERANGE, "context of %lld tokens is too long", (long long)need);
    return bm_layer_kind_of(s->m->cfg.layers[i].type)->state_recap(s, i, cap, 1);
}

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

/* Device bytes the state holds now: its layers' buffers (not the workspace). */
static uint64_t layer_state_bytes(const bm_state *s)
{
    bmojo_state_memory o;
    bmojo_state_get_memory(s, &o);
    return o.ssm + o.attention_kv + o.eidetic;
}

/* The memory budget of what bm_state_reserve is about to grow, checked before anything is
 * released or allocated: the run then holds the weights, the state, the activations of one chunk
 * and its logits (a growing full-attention cache briefly holds its old and new buffers). */
static int reserve_check(bm_state *s, size_t rows, int64_t need_pos, size_t logits_rows)
{
    bm_workspace *ws = &s->ws;
    bm_model *m = s->m;
    uint64_t V = (uint64_t)m->cfg.vocab_size;
    uint64_t act = ws->bytes - (uint64_t)ws->logits_rows * V * 4, act_new = act;
    uint64_t logits = (uint64_t)ws->logits_rows * V * 4, logits_new = logits;
    if (ws->rows < rows) {
        bm_sizer z = {.rt = m->rt, .plan_only = 1};
        workspace_alloc(s, rows, &z);
        act_new = z.bytes;
    }
    if (logits_rows && (!ws->logits || ws->logits_rows < logits_rows)) logits_new = (uint64_t)logits_rows * V * 4;
    uint64_t cache_new = 0;
    for (int i = 0; i < m->cfg.n_layers; i++) {
        uint64_t b;
        if (grown_cap(s, i, need_pos, &b)) cache_new += b;
    }
    if (act_new == act && logits_new == logits && cache_new == 0) return 0;
    uint64_t state = layer_state_bytes(s);
    uint64_t total = m->weight_bytes + state + cache_new + act_new + logits_new + ws->mix_scratch_bytes;
    uint64_t more = cache_new + (act_new - act) + (logits_new - logits);
    char what[256];
    snprintf(what, sizeof what,
             "a forward pass (weights %.2f GiB, state %.2f GiB%s, activations of %zu rows %.2f GiB, logits of %zu "
             "rows %.2f GiB)",
             gib(m->weight_bytes), gib(state + cache_new), cache_new ? " with the attention caches grown" : "",
             rows > ws->rows ? rows : ws->rows, gib(act_new), logits_rows > ws->logits_rows ? logits_rows : ws->logits_rows,
             gib(logits_new));
    return bm_mem_check(m->rt, what, total, more, 0);
}

int bm_state_reserve(bm_state *s, int T, int64_t T_total, size_t logits_rows)
{
    size_t rows = (size_t)s->B * (size_t)T;
    int st = reserve_check(s, rows, s->pos + T_total, logits_rows);
    if (!st) st = workspace_reserve(s, rows);
    if (!st && logits_rows) st = logits_reserve(s, logits_rows);
    for (int i = 0; st == 0 && i < s->m->cfg.n_layers; i++) st = grow_cache(s, i, s->pos + T_total);
    return st;
}

int bmojo_state_create(bmojo_model *m, int batch, bmojo_state **out)
{
    if (!m || !out) return bm_fail(BMOJO_EINVAL, "bmojo_state_create: NULL argument");
    *out = NULL;
    if (batch < 1 || batch > 65536) return bm_fail(BMOJO_EINVAL, "batch size %d is out of range [1, 65536]", batch);
    bm_state *s = calloc(1, sizeof *s);
    if (!s) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    s->m = m;
    s->B = batch;
    s->layers = calloc((size_t)m->cfg.n_layers, sizeof *s->layers);
    int st = s->layers ? 0 : bm_fail(BMOJO_ENOMEM, "out of host memory");
    /* the memory budget first: B sequences of a large model can need more than the device has */
    bm_sizer plan = {.rt = m->rt, .plan_only = 1};
    for (int i = 0; st == 0 && i < m->cfg.n_layers; i++) st = layer_state_alloc(s, i, &plan);
    if (!st) {
        char what[96];
        snprintf(what, sizeof what, "the state of %d sequence%s (%.2f GiB, with the weights' %.2f GiB)", batch,
                 batch == 1 ? "" : "s", gib(plan.bytes), gib(m->weight_bytes));
        st = bm_mem_check(m->rt, what, m->weight_bytes + plan.bytes, plan.bytes, 0);
    }
    bm_sizer real = {.rt = m->rt};
    for (int i = 0; st == 0 && i < m->cfg.n_layers; i++) st = layer_state_alloc(s, i, &real);
    if (st) {
        bmojo_state_free(s);
        return st;
    }
    *out = s;
    return 0;
}

void bmojo_state_free(bmojo_state *s)
{
    if (!s) return;
    if (s->layers)
        for (int i = 0; i < s->m->cfg.n_layers; i++) layer_state_release(&s->layers[i]);
    free(s->layers);
    workspace_release(&s->ws);
    free(s);
}

int bmojo_state_reset(bmojo_state *s)
{
    if (!s) return bm_fail(BMOJO_EINVAL, "bmojo_state_reset: NULL state");
    int st = 0;
    for (int i = 0; st == 0 && i < s->m->cfg.n_layers; i++) {
        bm_layer_state *ls = &s->layers[i];
#define ZERO(f) if (st == 0 && ls->f) st = bm_fill_zero(s->m->rt, ls->f, 0, mem_size(ls->f));
        LAYER_STATE_FIELDS(ZERO)
#undef ZERO
    }
    if (st == 0) st = bm_finish(s->m->rt);
    if (st == 0) s->pos = 0;
    return st;
}

int64_t bmojo_state_position(const bmojo_state *s) { return s ? s->pos : 0; }
int bmojo_state_batch(const bmojo_state *s) { return s ? s->B : 0; }

int bmojo_state_get_memory(const bmojo_state *s, bmojo_state_memory *o)
{
    if (!s || !o) return bm_fail(BMOJO_EINVAL, "bmojo_state_get_memory: NULL argument");
    memset(o, 0, sizeof *o);
    for (int i = 0; i < s->m->cfg.n_layers; i++) {
        const bm_layer_state *ls = &s->layers[i];
        o->ssm += mem_size(ls->conv) + mem_size(ls->ssm);
        o->attention_kv += mem_size(ls->k_cache) + mem_size(ls->v_cache) + mem_size(ls->win_k) + mem_size(ls->win_v);
        o->eidetic += mem_size(ls->y_hist) + mem_size(ls->fade_k) + mem_size(ls->fade_v) + mem_size(ls->cand_eps) +
                      mem_size(ls->cand_pos) + mem_size(ls->mem);
    }
    o->scratch = s->ws.bytes + s->ws.mix_scratch_bytes;
    return 0;
}

/* ---- save / restore ---- */

typedef struct {
    char magic[8];
    uint32_t n_layers, d_model, vocab_size, batch;
    int64_t pos;
} state_header;

int bmojo_state_save(const bmojo_state *s, void **buf, size_t *size)
{
    if (!s || !buf || !size) return bm_fail(BMOJO_EINVAL, "bmojo_state_save: NULL argument");
    *buf = NULL;
    *size = 0;
    size_t total = sizeof(state_header);
    for (int i = 0; i < s->m->cfg.n_layers; i++) {
        const bm_layer_state *ls = &s->layers[i];
        total += sizeof(int32_t);
#define SZ(f) total += sizeof(uint64_t) + mem_size(ls->f);
        LAYER_STATE_FIELDS(SZ)
#undef SZ
    }
    uint8_t *p = malloc(total);
    if (!p) return bm_fail(BMOJO_ENOMEM, "out of host memory saving a %zu-byte state", total);
    state_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, STATE_MAGIC, 8);
    h.n_layers = (uint32_t)s->m->cfg.n_layers;
    h.d_model = (uint32_t)s->m->cfg.d_model;
    h.vocab_size = (uint32_t)s->m->cfg.vocab_size;
    h.batch = (uint32_t)s->B;
    h.pos = s->pos;
    size_t off = 0;
    memcpy(p, &h, sizeof h);
    off += sizeof h;
    int st = 0;
    for (int i = 0; st == 0 && i < s->m->cfg.n_layers; i++) {
        const bm_layer_state *ls = &s->layers[i];
        int32_t cap = ls->cap;
        memcpy(p + off, &cap, sizeof cap);
        off += sizeof cap;
#define PUT(f)                                                                                                         \
    if (st == 0) {                                                                                                     \
        uint64_t n = mem_size(ls->f);                                                                                  \
        memcpy(p + off, &n, sizeof n);                                                                                 \
        off += sizeof n;                                                                                               \
        if (n) st = bm_download(s->m->rt, ls->f, 0, p + off, n);                                                       \
        off += n;                                                                                                      \
    }
        LAYER_STATE_FIELDS(PUT)
#undef PUT
    }
    if (st) {
        free(p);
        return st;
    }
    *buf = p;
    *size = total;
    return 0;
}

int bmojo_state_restore(bmojo_state *s, const void *buf, size_t size)
{
    if (!s || !buf) return bm_fail(BMOJO_EINVAL, "bmojo_state_restore: NULL argument");
    const uint8_t *p = buf;
    state_header h;
    if (size < sizeof h) return bm_fail(BMOJO_EFORMAT, "saved state is truncated (%zu bytes)", size);
    memcpy(&h, p, sizeof h);
    if (memcmp(h.magic, STATE_MAGIC, 8) != 0) return bm_fail(BMOJO_EFORMAT, "not a bmojo state (bad magic)");
    if (h.n_layers != (uint32_t)s->m->cfg.n_layers || h.d_model != (uint32_t)s->m->cfg.d_model ||
        h.vocab_size != (uint32_t)s->m->cfg.vocab_size)
        return bm_fail(BMOJO_EINVAL, "saved state belongs to another model (%u layers, d_model %u, vocab %u)",
                       h.n_layers, h.d_model, h.vocab_size);
    if (h.batch != (uint32_t)s->B)
        return bm_fail(BMOJO_EINVAL, "saved state has batch %u, this state %d", h.batch, s->B);
    if (h.pos < 0) return bm_fail(BMOJO_EFORMAT, "saved state has a negative position");
    size_t off = sizeof h;
    int st = 0;
    for (int i = 0; st == 0 && i < s->m->cfg.n_layers; i++) {
        bm_layer_state *ls = &s->layers[i];
        int32_t cap;
        if (off + sizeof cap > size) return bm_fail(BMOJO_EFORMAT, "saved state is truncated at layer %d", i);
        memcpy(&cap, p + off, sizeof cap);
        off += sizeof cap;
        if (cap != ls->cap) {
            /* a full-attention cache of another capacity: reallocate ours to exactly that size
             * (the contents are overwritten below) */
            const bm_layer_kind *kind;
            if (!state_grows(s, i, &kind) || cap < 1 || cap > (1 << 30) || cap < h.pos)
                return bm_fail(BMOJO_EFORMAT, "saved state: layer %d has cache capacity %d, expected %d", i, cap, ls->cap);
            st = kind->state_recap(s, i, cap, 0);
            if (st) return st;
        }
#define GET(f)                                                                                                         \
    if (st == 0) {                                                                                                     \
        uint64_t n;                                                                                                    \
        if (off + sizeof n > size) return bm_fail(BMOJO_EFORMAT, "saved state is truncated at layer %d", i);           \
        memcpy(&n, p + off, sizeof n);                                                                                 \
        off += sizeof n;                                                                                               \
        if (n != mem_size(ls->f) || n > size - off)                                                                    \
            return bm_fail(BMOJO_EFORMAT, "saved state: layer %d buffer %s has %llu bytes, expected %zu", i, #f,      \
                           (unsigned long long)n, mem_size(ls->f));                                                    \
        if (n) st = bm_upload(s->m->rt, ls->f, 0, p + off, n);                                                         \
        off += n;                                                                                                      \
    }
        LAYER_STATE_FIELDS(GET)
#undef GET
    }
    if (st == 0 && off != size) return bm_fail(BMOJO_EFORMAT, "saved state has %zu trailing bytes", size - off);
    if (st == 0) s->pos = h.pos;
    return st;
}

int bmojo_state_save_file(const bmojo_state *s, const char *path)
{
    if (!path) return bm_fail(BMOJO_EINVAL, "bmojo_state_save_file: NULL path");
    void *buf = NULL;
    size_t n = 0;
    int st = bmojo_state_save(s, &buf, &n);
    if (st) return st;
    /* a temporary name of its own, fsynced and renamed: an old state file is replaced whole or
     * not at all, and no fixed "<path>.tmp" (perhaps another file, or a symlink) is written */
    st = bm_write_file_atomic(path, buf, n, 0666);
    free(buf);
    return st;
}

int bmojo_state_restore_file(bmojo_state *s, const char *path)
{
    if (!path) return bm_fail(BMOJO_EINVAL, "bmojo_state_restore_file: NULL path");
    /* Never blocks on a FIFO or device; the size comes from fstat and the read must match it. */
    int fd;
    int st = bm_open_regular(path, "state file", &fd);
    if (st) return st;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0) st = bm_fail(BMOJO_EIO, "cannot read %s", path);
    else if ((unsigned long long)sb.st_size >= (unsigned long long)SIZE_MAX)
        st = bm_fail(BMOJO_EIO, "state file %s is too large for this address space", path);
    size_t n = st ? 0 : (size_t)sb.st_size;
    char *buf = st ? NULL : malloc(n + 1);
    if (!st && !buf) st = bm_fail(BMOJO_ENOMEM, "out of host memory reading %s", path);
    for (size_t got = 0; !st && got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) st = bm_fail(BMOJO_EIO, "cannot read %s: %s", path, r < 0 ? strerror(errno) : "file shrank while reading");
        else got += (size_t)r;
    }
    close(fd);
    if (!st) {
        st = bmojo_state_restore(s, buf, n);
        if (st) st = bm_fail_context(st, "%s", path);
    }
    free(buf);
    return st;
}
