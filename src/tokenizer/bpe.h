/* bpe.h — the BPE model of a tokenizer.json: the vocabulary (token string <-> id, strings as raw
 * bytes) and the merges (pair of ids -> rank and merged id), and the encoding of one pre-token
 * ("word") by repeatedly merging its lowest-ranked adjacent pair, leftmost first, as Hugging Face's
 * BPE does, in O(n log n) with a heap of candidate pairs (a 1 MB word takes milliseconds). */
#ifndef BM_TOKENIZER_BPE_H
#define BM_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* vocabulary: strings[id] (NULL where no token has that id), a hash of string -> id */
    char **strings;
    size_t *lengths;
    int32_t n_ids;                 /* the id arrays' length (> the largest id) */
    size_t n_tokens;               /* ids with a string */
    int32_t *slots;                /* open addressing over strings: id or -1 */
    size_t n_slots;
    /* merges: (left id, right id) -> rank (order in the file) and the merged token's id */
    uint64_t *merge_keys;          /* left << 32 | right, or UINT64_MAX for empty */
    int32_t *merge_rank, *merge_id;
    size_t n_merge_slots, n_merges;
} bm_bpe;

void bm_bpe_free(bm_bpe *b);
/* Sets id's string (a copy); grows the tables. 0, or -1 out of memory; -2 when the string or the
 * id is already taken. */
int bm_bpe_add_token(bm_bpe *b, const char *s, size_t n, int32_t id);
/* The id of s[0..n), or -1. */
int32_t bm_bpe_find(const bm_bpe *b, const char *s, size_t n);
/* Adds the merge (left, right) with the next rank: 0; -1 out of memory; -2 when a side or the
 * merged string is not in the vocabulary (the caller names it); -3 a repeated merge (ignored by
 * Hugging Face: the first rank stays). */
int bm_bpe_add_merge(bm_bpe *b, const char *left, size_t ln, const char *right, size_t rn);
/* Encodes a word given as symbol ids (in place; *n shrinks): merges until no adjacent pair has a
 * rank. 0, or -1 out of memory. */
int bm_bpe_merge_word(const bm_bpe *b, int32_t *ids, size_t *n);

#endif
