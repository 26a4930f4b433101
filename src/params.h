/* params.h — the parameter table of a model being trained: one entry per checkpoint tensor (its
 * name in the checkpoint, shape, and where its values and its gradient live on the device). The
 * values of all tensors are one flat fp32 buffer and the gradients another with the same layout,
 * so an optimizer step is one pass over two buffers; each entry also has sub-buffer handles for
 * the ops. Training owns exactly the checkpoint's tensors (A_log, not A; q/k/v unfused); derived
 * forms are recomputed from them (train.c). Each layer kind lists its tensors (train_<kind>.c);
 * nothing else knows tensor names. */
#ifndef BM_PARAMS_H
#define BM_PARAMS_H

#include "config.h"
#include "runtime.h"
#include "safetensors.h"
#include "weights_loader.h" /* bm_init_kind: random weights drawn as the inference loader draws them */


typedef struct {
    char name[256];     /* the checkpoint's name (bm_config_tensor_name for sublayer tensors) */
    char native[160];   /* the native name (model contract section 3): what a saved model uses */
    int ndim;
    int64_t shape[3];
    size_t numel;
    size_t offset;      /* bytes into the flat buffers (a multiple of the device's base alignment) */
    bm_init_kind init;
    size_t fan_in;
    int decay;          /* AdamW's weight decay applies: set for ndim >= 2 (matrices, embeddings,
                           conv kernels) by bm_params_add; a kind clears it for exceptions
                           (Mamba's A_log, as its reference implementation does) */
    cl_mem value, grad; /* sub-buffers of bm_param_table.values / .grads */
} bm_param;

typedef struct {
    int n, cap;
    bm_param *p;
    size_t bytes;       /* of each flat buffer */
    cl_mem values, grads;
} bm_param_table;

/* Appends a tensor: `native` is a sublayer suffix ("mamba.A_log") when layer >= 0, else
 * "embed.weight", "norm_f.weight" or "lm_head.weight". *index is its index in the table. */
int bm_params_add(bm_param_table *t, const bm_config *c, int layer, const char *native, int ndim, int64_t d0,
                  int64_t d1, int64_t d2, bm_init_kind init, size_t fan_in, int *index);
/* Allocates the flat value and gradient buffers (zeroed) and the sub-buffers. */
int bm_params_alloc(bm_param_table *t, bm_rt *rt);
/* Every tensor from a checkpoint (names and shapes checked; F16/BF16 widened; every checkpoint
 * tensor must be one of the table's unless allow_unused). */
int bm_params_load(bm_param_table *t, bm_rt *rt, const bm_st_set *set, int allow_unused);
/* Seeded random values (each tensor's bm_init_kind). */
int bm_params_randomize(bm_param_table *t, bm_rt *rt, uint64_t seed);
/* Writes every value under its native name to path (F32 safetensors, atomically). */
int bm_params_save(const bm_param_table *t, bm_rt *rt, const char *path);
int bm_params_zero_grads(bm_param_table *t, bm_rt *rt);
void bm_params_free(bm_param_table *t);


#endif
