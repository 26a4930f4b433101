/* optim_args.h — AdamW's hyperparameters and the fp32 scalars its kernel takes, shared by the
 * launcher (ops/op_optim.c) and the reference (ref/ref_optim.c) so both round them identically.
 * No OpenCL here: the reference library includes it. */
#ifndef BM_OPTIM_ARGS_H
#define BM_OPTIM_ARGS_H

#include <math.h>
#include <stdint.h>

/* torch.optim.AdamW's names. t is Adam's step count, from 1 (the bias corrections 1 - beta^t);
 * lr is this step's learning rate (after the schedule). */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t t;
} bm_adamw_args;

/* What PyTorch computes as Python floats (fp64) before they meet the fp32 tensors, rounded once. */
typedef struct {
    float decay_mul;   /* 1 - lr * wd (1 exactly when wd == 0) */
    float w1;          /* 1 - beta1: lerp's weight */
    float beta2, omb2; /* beta2, 1 - beta2 */
    float neg_step;    /* -(lr / (1 - beta1^t)) */
    float bc2_sqrt;    /* (1 - beta2^t)^(1/2) */
    float eps;
} bm_adamw_scalars;

static inline void bm_adamw_scalars_make(const bm_adamw_args *a, bm_adamw_scalars *s)
{
    double t = (double)a->t;
    s->decay_mul = (float)(1.0 - a->lr * a->weight_decay);
    s->w1 = (float)(1.0 - a->beta1);
    s->beta2 = (float)a->beta2;
    s->omb2 = (float)(1.0 - a->beta2);
    s->neg_step = (float)-(a->lr / (1.0 - pow(a->beta1, t)));
    s->bc2_sqrt = (float)sqrt(1.0 - pow(a->beta2, t));
    s->eps = (float)a->eps;
}

#endif
