/* data_source.h — the data a training run reads: built-in MQAR or token files, behind one
 * interface, opened from the `--data` option string. Every batch is a pure function of its index,
 * so the data position of a run is one integer (the index of the next batch) and a resumed run
 * continues exactly. Syntax and determinism: data_source.c and docs/training.md. */
#ifndef BM_DATA_SOURCE_H
#define BM_DATA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "data_mqar.h"
#include "data_tokens.h"

typedef enum { BM_DATA_MQAR = 1, BM_DATA_TOKENS = 2 } bm_data_kind;

typedef struct {
    bm_data_kind kind;
    uint64_t seed;           /* the training stream */
    /* MQAR */
    bm_mqar mqar;
    uint64_t test_seed;      /* the test set's stream, != seed */
    uint64_t test_examples;  /* the test set's size */
    uint64_t train_examples; /* MQAR train=N: a fixed training set seen in shuffled epochs (0: unbounded) */
    /* token files */
    bm_tokens train;
    bm_tokens val;           /* when has_val */
    int has_val;
} bm_data_source;

/* Parses spec and opens the source:
 *   mqar[:key=value,...]     keys vocab, seq, pairs, power_a, seed, test_seed, test
 *   tokens:PATH[,key=value,...]   keys train (= PATH), val, seed
 * vocab: the model's vocabulary (> 0): token files are checked against it, and MQAR's vocab
 * defaults to it (and may not exceed it); seed: the seed when the spec has no seed=.
 * Errors (BMOJO_EINVAL, or the token file's own) name the bad key or value. */
int bm_data_open(bm_data_source *src, const char *spec, int64_t vocab, uint64_t seed);
void bm_data_close(bm_data_source *src);

/* The sequence length the source fixes (MQAR's seq), or 0 when any T works (token files). */
int bm_data_seq(const bm_data_source *src);

/* Training batch `batch`: rows r = 0 .. B-1 are examples batch * B + r of the training stream
 * (MQAR example, or token window, see data_mqar.h / data_tokens.h), each a pure function of
 * (seed, example index): the same whatever B or the machine. ids and targets are [B, T]; a target
 * of -1 scores nothing. With gradient accumulation, number the micro-batches (step * accum + k). */
int bm_data_batch(const bm_data_source *src, uint64_t batch, int B, int T, int32_t *ids, int32_t *targets);

/* Whether the source has held-out data: MQAR's test set, or a token source's val= file. Without
 * it, evaluation reads the training file itself (what `bmojo eval --data tokens:FILE` wants). */
int bm_data_has_heldout(const bm_data_source *src);

/* The evaluation set's rows at sequence length T: MQAR's test examples, or the consecutive windows
 * of the val= file (else the training file) that score each of its tokens once. */
uint64_t bm_data_eval_rows(const bm_data_source *src, int T);
/* Evaluation batch `batch`: rows batch * B .. of the evaluation set; *rows gets how many are real
 * (the last batch may be short: the other rows get ids 0 and targets -1). */
int bm_data_eval_batch(const bm_data_source *src, uint64_t batch, int B, int T, int32_t *ids, int32_t *targets,
                       int *rows);

/* The source with every default filled in, as a spec bm_data_open accepts (for logs and
 * checkpoints). Returns the length snprintf would; truncated output when it is >= n. */
int bm_data_describe(const bm_data_source *src, char *buf, size_t n);

/* Accuracy bookkeeping on the host: the device reports, per position, whether the target is the
 * argmax of the logits (hit: 1 or 0, the loss kernel's by-product); positions with target -1 do
 * not count. */
typedef struct {
    uint64_t scored;           /* positions with a target */
    uint64_t correct;          /* of those, predicted right: accuracy = correct / scored */
    uint64_t examples;         /* rows with at least one target */
    uint64_t examples_correct; /* of those, every target right */
} bm_data_accuracy;
void bm_data_accuracy_add(bm_data_accuracy *acc, const int32_t *targets, const int32_t *hit, int B, int T);
/* The number of scored positions (targets >= 0) in n targets. */
uint64_t bm_data_scored(const int32_t *targets, size_t n);

#endif
