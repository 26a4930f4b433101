/* bpe.c — the BPE vocabulary, merges and word encoding (bpe.h). */
#include "tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

void bm_bpe_free(bm_bpe *b)
{
    for (int32_t i = 0; b->strings && i < b->n_ids; i++) free(b->strings[i]);
    free(b->strings);
    free(b->lengths);
    free(b->slots);
    free(b->merge_keys);
    free(b->merge_rank);
    free(b->merge_id);
    memset(b, 0, sizeof *b);
}

int32_t bm_bpe_find(const bm_bpe *b, const char *s, size_t n)
{
    if (!b->n_slots) return -1;
    for (size_t i = hash_bytes(s, n) & (b->n_slots - 1);; i = (i + 1) & (b->n_slots - 1)) {
        const int32_t id = b->slots[i];
        if (id < 0) return -1;
        if (b->lengths[id] == n && !memcmp(b->strings[id], s, n)) return id;
    }
}

static void slot_insert(int32_t *slots, size_t n_slots, uint64_t h, int32_t id)
{
    size_t i = h & (n_slots - 1);
    while (slots[i] >= 0) i = (i + 1) & (n_slots - 1);
    slots[i] = id;
}

int bm_bpe_add_token(bm_bpe *b, const char *s, size_t n, int32_t id)
{
    if (id < 0) return -2;
    if (id >= b->n_ids) { /* grow the id arrays */
        int32_t cap = id + 1 > 2 * b->n_ids ? id + 1 : 2 * b->n_ids;
        char **st = realloc(b->strings, (size_t)cap * sizeof *st);
        if (!st) return -1;
        b->strings = st;
        size_t *ln = realloc(b->lengths, (size_t)cap * sizeof *ln);
        if (!ln) return -1;
        b->lengths = ln;
        for (int32_t i = b->n_ids; i < cap; i++) b->strings[i] = NULL, b->lengths[i] = 0;
        b->n_ids = cap;
    }
    if (b->strings[id] || bm_bpe_find(b, s, n) >= 0) return -2;
    const size_t used = b->n_tokens;
    if ((used + 1) * 2 > b->n_slots) { /* rehash at half load */
        size_t ns = b->n_slots ? b->n_slots * 2 : 1024;
        while ((used + 1) * 2 > ns) ns *= 2;
        int32_t *sl = malloc(ns * sizeof *sl);
        if (!sl) return -1;
        for (size_t i = 0; i < ns; i++) sl[i] = -1;
        for (int32_t i = 0; i < b->n_ids; i++)
            if (b->strings[i]) slot_insert(sl, ns, hash_bytes(b->strings[i], b->lengths[i]), i);
        free(b->slots);
        b->slots = sl, b->n_slots = ns;
    }
    char *copy = malloc(n + 1);
    if (!copy) return -1;
    memcpy(copy, s, n);
    copy[n] = 0;
    b->strings[id] = copy, b->lengths[id] = n;
    b->n_tokens++;
    slot_insert(b->slots, b->n_slots, hash_bytes(s, n), id);
    return 0;
}

/* The slot of key, or of the empty slot where it would go. */
static size_t merge_slot(const bm_bpe *b, uint64_t key)
{
    size_t i = hash_pair(key) & (b->n_merge_slots - 1);
    while (b->merge_keys[i] != UINT64_MAX && b->merge_keys[i] != key) i = (i + 1) & (b->n_merge_slots - 1);
    return i;
}

int bm_bpe_add_merge(bm_bpe *b, const char *left, size_t ln, const char *right, size_t rn)
{
    const int32_t l = bm_bpe_find(b, left, ln), r = bm_bpe_find(b, right, rn);
    if (l < 0 || r < 0) return -2;
    char *both = malloc(ln + rn + 1);
    if (!both) return -1;
    memcpy(both, left, ln);
    memcpy(both + ln, right, rn);
    const int32_t m = bm_bpe_find(b, both, ln + rn);
    free(both);
    if (m < 0) return -2;
    if ((b->n_merges + 1) * 2 > b->n_merge_slots) {
        size_t ns = b->n_merge_slots ? b->n_merge_slots * 2 : 1024;
        uint64_t *k = malloc(ns * sizeof *k);
        int32_t *rk = malloc(ns * sizeof *rk), *id = malloc(ns * sizeof *id);
        if (!k || !rk || !id) {
            free(k), free(rk), free(id);
            return -1;
        }
        for (size_t i = 0; i < ns; i++) k[i] = UINT64_MAX;
        bm_bpe old = *b;
        b->merge_keys = k, b->merge_rank = rk, b->merge_id = id, b->n_merge_slots = ns;
        for (size_t i = 0; i < old.n_merge_slots; i++)
            if (old.merge_keys[i] != UINT64_MAX) {
                const size_t s = merge_slot(b, old.merge_keys[i]);
                k[s] = old.merge_keys[i], rk[s] = old.merge_rank[i], id[s] = old.merge_id[i];
            }
        free(old.merge_keys), free(old.merge_rank), free(old.merge_id);
    }
    const uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    const size_t s = merge_slot(b, key);
    if (b->merge_keys[s] == key) return -3;
    b->merge_keys[s] = key, b->merge_rank[s] = (int32_t)b->n_merges++, b->merge_id[s] = m;
    return 0;
}

/* rank and merged id of (l, r); rank -1 when they do not merge */
static int32_t lookup(const bm_bpe *b, int32_t l, int32_t r, int32_t *merged)
{
    if (!b->n_merge_slots) return -1;
    const uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    const size_t s = merge_slot(b, key);
    if (b->merge_keys[s] != key) return -1;
    *merged = b->merge_id[s];
    return b->merge_rank[s];
}

typedef struct {
    int32_t rank;
    int32_t pos;
} cand;

static int cand_less(cand a, cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(cand *h, size_t *n, cand c)
{
    size_t i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) h[i] = h[(i - 1) / 2], i = (i - 1) / 2;
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c], i = c;
    }
    if (*n) h[i] = last;
    return top;
}

int bm_bpe_merge_word(const bm_bpe *b, int32_t *ids, size_t *n)
{
    const size_t m = *n;
    if (m < 2) return 0;
    int32_t *next = malloc(m * sizeof *next), *prev = malloc(m * sizeof *prev);
    cand *heap = malloc(3 * m * sizeof *heap); /* m - 1 pairs at first, then at most 2 per merge */
    if (!next || !prev || !heap) {
        free(next), free(prev), free(heap);
        return -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i < m; i++) {
        next[i] = i + 1 < m ? (int32_t)(i + 1) : -1;
        prev[i] = (int32_t)i - 1;
        int32_t merged = -1;
        const int32_t r = i + 1 < m ? lookup(b, ids[i], ids[i + 1], &merged) : -1;
        if (r >= 0) heap_push(heap, &hn, (cand){r, (int32_t)i});
    }
    /* removed symbols get id -1; a popped candidate is stale when its pair changed since */
    while (hn) {
        const cand c = heap_pop(heap, &hn);
        const int32_t p = c.pos, q = next[p];
        int32_t merged = -1;
        if (ids[p] < 0 || q < 0 || lookup(b, ids[p], ids[q], &merged) != c.rank) continue;
        ids[p] = merged;
        ids[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0) {
            const int32_t r = lookup(b, ids[prev[p]], ids[p], &merged);
            if (r >= 0) heap_push(heap, &hn, (cand){r, prev[p]});
        }
        if (next[p] >= 0) {
            const int32_t r = lookup(b, ids[p], ids[next[p]], &merged);
            if (r >= 0) heap_push(heap, &hn, (cand){r, p});
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < m; i++)
        if (ids[i] >= 0) ids[w++] = ids[i];
    *n = w;
    free(next), free(prev), free(heap);
    return 0;
}
