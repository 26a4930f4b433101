/* train_log.h — what `bmojo train` shows and records: a progress bar on a terminal (plain lines
 * when stderr is not one), and a JSONL log with one object per step, evaluation, checkpoint and
 * note, after a first object that records the command, commit, device and every option (so a run
 * can be reproduced and plotted: tools/plot_train.py). */
#ifndef BM_TRAIN_LOG_H
#define BM_TRAIN_LOG_H

#include <stdio.h>

#include "bmojo.h"
#include "train_run.h"

typedef struct {
    FILE *f;          /* the JSONL log (appended to) */
    int progress;     /* show progress at all */
    int tty;          /* stderr is a terminal: a bar redrawn in place */
    int log_every;    /* plain lines every N steps */
    int bar_open;     /* a bar is on the terminal's current line */
    double last_time; /* for tokens/s over the last window */
    uint64_t last_tokens;
    double tok_s;
} bm_train_log;

/* Opens (appends to) the log; creates nothing else. */
int bm_train_log_open(bm_train_log *l, const char *path, int progress, int log_every);
void bm_train_log_start(bm_train_log *l, const bm_train_run *r, bmojo_runtime *rt, int argc, char **argv,
                        const char *model);
/* After a step: steps_here and secs_here count this process's steps and time (for the ETA). */
void bm_train_log_step(bm_train_log *l, const bm_train_run *r, const bm_train_step_info *s, double elapsed_s,
                       int64_t steps_here, double secs_here);
void bm_train_log_eval(bm_train_log *l, const bm_train_run *r, const bm_train_eval_info *e, double elapsed_s);
void bm_train_log_checkpoint(bm_train_log *l, const bm_train_run *r, const char *path);
/* A message for the user (printed, and logged as {"note": ...}). */
void bm_train_log_note(bm_train_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Why the run ended in an error, logged as {"note": "failed while DOING: DETAIL"} (not printed: the
 * CLI prints the error itself), so that a log records how its run ended, e.g. a diverged loss. */
void bm_train_log_failure(bm_train_log *l, const char *doing, const char *detail);
/* Ends a progress bar's line (before an error message). */
void bm_train_log_end_line(bm_train_log *l);
void bm_train_log_close(bm_train_log *l);

#endif
