/* weights_loader.h — the loader machinery of weights.c that each sublayer kind's loader
 * (layer_*.c, through its bm_layer_kind.load) builds on: reading one named tensor of a checked
 * shape, or seeded random values, into a device buffer made of stacked tensors; the planning pass
 * that only adds sizes up (the memory budget); the marks the unused-tensor check reads. A kind's
 * loader only describes its tensors (names, shapes, initialization, which ones share a buffer);
 * the order of its uploads is the order the random weights are drawn in, so it must not change. */
#ifndef BM_WEIGHTS_LOADER_H
#define BM_WEIGHTS_LOADER_H

#include "model.h"

/* Initialization of a tensor when there is no checkpoint (random weights). */
typedef enum {
    BM_INIT_FANIN,    /* uniform in +-1/sqrt(fan_in) */
    BM_INIT_ONES,
    BM_INIT_ZEROS,
    BM_INIT_A_LOG,    /* log(1..n) along the last dimension: A = -(1..n) */
    BM_INIT_DT_BIAS,  /* softplus^-1 of dt log-uniform in [1e-3, 1e-1] */
    BM_INIT_EMBED,    /* uniform in +-0.05 */
    BM_INIT_CONV      /* uniform in +-1/sqrt(fan_in) */
} bm_init_kind;

/* n random values of a tensor whose last dimension is cols, drawn from the xorshift state *rng
 * (the loader's and the training parameter table's random weights: one definition). */
void bm_weights_fill_random(uint64_t *rng, float *dst, size_t n, int64_t cols, bm_init_kind init, size_t fan_in);
/* Whether a checkpoint tensor no config reads may be ignored (rotary_emb.inv_freq). */
int bm_weights_harmless_extra(const char *name);

typedef struct bm_loader {
    bm_model *m;
    const bm_st_set *st;  /* NULL: random */
    unsigned char **used; /* per file of st, per tensor: 1 once the config has read it */
    uint64_t rng;
    float *host;          /* staging buffer */
    size_t host_cap;
    uint16_t *host16;     /* the staging buffer narrowed to f16 (f16 matrix storage) */
    size_t host16_cap;
    /* planning pass: nothing is read or allocated, the sizes are added up (the memory budget) */
    int plan_only;
    uint64_t plan_bytes;  /* device bytes of every fp32 weight buffer */
    uint64_t plan_matrix_elems; /* elements of every matrix (bm_load_matrix_*): their bytes depend
                                   on the storage, decided after the planning pass */
    uint64_t plan_bytes_if_f16; /* bytes a kind adds only under f16 storage (layer_bmojo.c's fold) */
    size_t plan_largest;  /* floats of the largest buffer: the host staging buffer */
    int plan_matrices, plan_matrices_half; /* checkpoint tensors of the matrices, and how many of
                                              them are F16 or BF16 (BMOJO_LOAD_WEIGHTS_AUTO) */
} bm_loader;

/* One tensor of a device buffer made of tensors stacked along the first dimension. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[3];
    bm_init_kind init;
    size_t fan_in;
} bm_load_part;

#define BM_LOAD_MAX_PARTS 4

/* One device buffer from nparts (<= BM_LOAD_MAX_PARTS) tensors; transform: NULL, or applied to
 * the host values before they go up (A_log -> A). With L->plan_only only the sizes are added. */
int bm_load_parts_tf(bm_loader *L, const bm_load_part *parts, int nparts, void (*transform)(float *, size_t),
                     cl_mem *out);
int bm_load_parts(bm_loader *L, const bm_load_part *parts, int nparts, cl_mem *out);
/* One device buffer from one tensor of shape [d0] / [d0, d1] / [d0, d1, d2] (ndim 1..3). */
int bm_load1(bm_loader *L, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, bm_init_kind init,
             size_t fan_in, cl_mem *out);
/* The same for a weight matrix that only the GEMM kernels (bm_gemm, the skinny kernels of ops.h)
 * or the embedding gather read: stored as the model's matrix_store says (fp32, or f16 narrowed
 * with round-to-nearest-even; a value beyond f16's range is BMOJO_ETENSOR naming the tensor).
 * This is THE place where a kind says which of its tensors may be f16: a buffer that any other
 * kernel reads (dt_proj: the scan applies it) must go through bm_load1 / bm_load_parts. */
int bm_load_matrix_parts(bm_loader *L, const bm_load_part *parts, int nparts, bm_wmat *out);
int bm_load_matrix1(bm_loader *L, const char *name, int64_t d0, int64_t d1, bm_init_kind init, size_t fan_in,
                    bm_wmat *out);

/* The checkpoint name of sublayer i's tensor `suffix` into char array buf, once st is still 0
 * (the first failure is kept); evaluates to buf. */
#define BM_LOAD_NAME(st, cfg, i, suffix, buf)                                                                          \
    ((st) = (st) ? (st) : bm_config_tensor_name((cfg), (i), (suffix), (buf), sizeof(buf)), (buf))

#endif
