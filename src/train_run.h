/* train_run.h — a training run: the trainer (train.h), the optimizer (optim.h) and the data
 * (data_source.h) stepped together, evaluated, and saved to / resumed from checkpoint folders.
 * The CLI (`bmojo train`, src/cli/cmd_train.c) adds the progress display, the log and signals.
 * Everything a step depends on (weights, AdamW moments, the step count, the data position = the
 * step) is in a checkpoint, bit for bit, so a resumed run continues exactly as an uninterrupted
 * one on the same device. docs/training.md, "Training runs". */
#ifndef BM_TRAIN_RUN_H
#define BM_TRAIN_RUN_H

#include <stdint.h>

#include "data_source.h"
#include "optim.h"
#include "train.h"

#define BM_TRAIN_SPEC_MAX 1024

/* The options of a run; saved in its checkpoints (train_state.json), so a resume needs none. */
typedef struct {
    char data[BM_TRAIN_SPEC_MAX]; /* the --data spec, every default filled in (bm_data_describe) */
    int batch;          /* sequences per optimizer step */
    int micro_batch;    /* sequences per pass (batch is a multiple): gradient accumulation */
    int seq;            /* tokens per sequence */
    int64_t steps;      /* optimizer steps of the whole run (the schedule's end) */
    double lr, min_lr;  /* peak and final learning rate */
    int64_t warmup;     /* linear warm-up steps */
    double beta1, beta2, eps, weight_decay;
    double clip;        /* max global gradient norm; <= 0: no clipping */
    uint64_t seed;      /* the data's seed (and the random init's, chosen by the caller) */
} bm_train_opts;

typedef struct {
    bm_rt *rt;
    bm_trainer *tr;      /* not owned */
    bm_optim opt;
    bm_data_source data;
    bm_train_opts o;
    int64_t step;        /* optimizer steps done (== opt.step) */
    uint64_t tokens;     /* tokens trained on (batch * seq per step) */
    double elapsed_s;    /* training time of the earlier processes of this run (resumes add up) */
    int32_t *ids, *targets, *hits; /* host, [batch, seq] */
} bm_train_run;

/* What one step measured. */
typedef struct {
    double loss;        /* mean -log p(target) over the step's scored positions */
    double lr;          /* the learning rate the step used */
    double grad_norm;   /* global gradient norm before clipping */
    uint64_t scored;    /* positions with a target */
    /* wall time of the step's parts: the host making the data, the passes (zeroed gradients,
     * uploads, forward and backward of every micro-batch, until the loss is read back) and the
     * optimizer (norm, clipping and AdamW, until the norm is read back) */
    double data_s, pass_s, optim_s;
} bm_train_step_info;

/* What an evaluation measured. */
typedef struct {
    double loss;        /* mean over scored positions */
    double ppl;         /* exp(loss) */
    double accuracy;    /* positions whose target was the argmax / scored */
    double exact;       /* rows with every target right / rows with a target (MQAR: whole examples) */
    uint64_t rows, scored;
} bm_train_eval_info;

/* Checks the options (each error names the option), opens the data (the model's vocabulary),
 * makes the optimizer and the host batch buffers. tr must outlive the run. */
int bm_train_run_open(bm_train_run *r, bm_trainer *tr, const bm_train_opts *o);
void bm_train_run_close(bm_train_run *r);

/* One optimizer step: zero the gradients, the micro-batches of data batch `step` (each scored
 * position weighted 1 / the step's scored count, so accumulation gives the whole batch's mean),
 * the global norm, clipping and AdamW at the schedule's learning rate. A loss or gradient norm
 * that is not finite fails with BMOJO_ERANGE naming the step, the weights untouched by it. */
int bm_train_run_step(bm_train_run *r, bm_train_step_info *info);

/* Loss, perplexity and accuracy on the evaluation set (MQAR's test set, the val= file's windows;
 * at most max_rows rows, 0: all), in batches of micro_batch rows. Gradients untouched. */
int bm_train_run_eval(bm_train_run *r, uint64_t max_rows, bm_train_eval_info *info);

/* The same evaluation for any trainer and data source (`bmojo eval`), in batches of B x T. */
int bm_train_evaluate(bm_trainer *tr, const bm_data_source *data, int B, int T, uint64_t max_rows,
                      bm_train_eval_info *info);

/* Saves a checkpoint as run_dir/step-NNNNNNNN (config.yaml, model.safetensors, optimizer.safetensors,
 * train_state.json), written in a hidden temporary folder and renamed into place only when
 * complete (a checkpoint already there is replaced whole, never left half-written); then points
 * run_dir/latest at it and removes all but the newest `keep` (>= 1) step folders. extra_json:
 * more members for train_state.json (",\"key\": value", may be NULL). path (may be NULL) gets the
 * folder written. */
int bm_train_run_save(bm_train_run *r, const char *run_dir, int keep, double elapsed_s, const char *extra_json,
                      char *path, size_t path_len);

/* Creates run_dir if missing and checks that files can be created in it (before a run spends
 * time training): BMOJO_EIO naming the folder and the reason. */
int bm_train_dir_check(const char *run_dir);

/* The checkpoint folder a --resume argument names: DIR itself when it holds train_state.json,
 * else DIR/latest. */
int bm_train_checkpoint_resolve(const char *dir, char *out, size_t n);
/* Reads a checkpoint's train_state.json: the options, step, tokens and elapsed time. */
int bm_train_checkpoint_read(const char *ckpt, bm_train_opts *o, int64_t *step, uint64_t *tokens, double *elapsed_s);
/* After bm_train_run_open on a trainer loaded from ckpt: the optimizer state and the position. */
int bm_train_run_restore(bm_train_run *r, const char *ckpt, int64_t step, uint64_t tokens, double elapsed_s);

#endif
