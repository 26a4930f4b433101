/* optim.h — the optimizer of `bmojo train`: AdamW (PyTorch's torch.optim.AdamW) over the
 * parameter table's flat buffers, with the global gradient-norm clip, both on the device
 * (ops_optim.h), its state saved and loaded with checkpoints, and the learning-rate schedule.
 * One step is a handful of launches enqueued without waiting; nothing crosses to the host but
 * the gradient norm, and only when asked for (logging). docs/training.md, "Optimizer". */
#ifndef BM_OPTIM_H
#define BM_OPTIM_H

#include <stdint.h>

#include "ops_optim.h"
#include "params.h"
#include "runtime.h"

/* Indices into bm_optim.clip. */
enum { BM_OPTIM_SUMSQ = 0, BM_OPTIM_NORM = 1, BM_OPTIM_SCALE = 2, BM_OPTIM_CLIP_FLOATS = 4 };

typedef struct {
    bm_rt *rt;
    int n;           /* tensors of the table it was made for */
    size_t bytes;    /* of each flat buffer (the table's) */
    int *decay;      /* per tensor: weight decay applies (bm_param.decay at init) */
    cl_mem m, v;     /* exp_avg and exp_avg_sq, fp32, the table's layout (gaps zero) */
    cl_mem clip;     /* BM_OPTIM_CLIP_FLOATS floats: the last step's sum of squares, norm, scale */
    int64_t step;    /* steps taken (Adam's t of the next step is step + 1) */
} bm_optim;

/* Zeroed state for table t (allocated: bm_params_alloc done), decay flags copied from it. */
int bm_optim_init(bm_optim *o, bm_rt *rt, const bm_param_table *t);
/* One step, enqueued: the global norm of all gradients, the clip scale (max_grad_norm <= 0: no
 * clipping), then AdamW with t = o->step + 1 (hp->t is ignored) over each maximal run of
 * consecutive tensors with the same decay flag (weight decay hp->weight_decay or none); the
 * gaps between tensors are zero in every buffer and stay zero, so a run is one launch. */
int bm_optim_step(bm_optim *o, bm_param_table *t, const bm_adamw_args *hp, float max_grad_norm);
/* The global gradient norm of the last step, before clipping (0 before the first); blocks. */
int bm_optim_grad_norm(bm_optim *o, float *norm);
/* The state as safetensors (atomically): per tensor `<native>.exp_avg` and `<native>.exp_avg_sq`
 * (F32, its shape), metadata "step". */
int bm_optim_save(const bm_optim *o, bm_rt *rt, const bm_param_table *t, const char *path);
/* Reads a file of bm_optim_save back into o (made for t by bm_optim_init): every tensor's name,
 * dtype and shape checked, no tensor missing or extra, a valid step; on any error (which names
 * the tensor) o is unchanged. */
int bm_optim_load(bm_optim *o, bm_rt *rt, const bm_param_table *t, const char *path);
void bm_optim_free(bm_optim *o);

/* The learning rate at step `step` (0-based: the step about to be taken, bm_optim.step before it):
 * linear warm-up lr * (step + 1) / warmup for step < warmup (nanoGPT's rule: the first step is
 * not 0, the last warm-up step reaches lr), then cosine decay from lr at step warmup to min_lr at
 * step total, min_lr from there on. */
typedef struct {
    double lr, min_lr;
    int64_t warmup, total;
} bm_lr_sched;
double bm_lr_schedule(const bm_lr_sched *s, int64_t step);

#endif
