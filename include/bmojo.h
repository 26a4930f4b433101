/* bmojo.h — public C API of the bmojo runtime: B'MOJO, Mamba, Transformer and hybrid
 * layer stacks on any OpenCL device.
 *
 * Handles are opaque. Every function that can fail returns a bmojo status (0 or a negative
 * BMOJO_E* code); bmojo_last_error() gives the detail of the last failure on this thread.
 * The library never exits the process and never prints, except kernel build logs, which are
 * part of the detail message.
 */
#ifndef BMOJO_H
#define BMOJO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes, written once: X(NAME, value, message). */
#define BMOJO_STATUS_MAP(X)                                                    \
    X(OK, 0, "success")                                                        \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(EIO, -3, "I/O error")                                                    \
    X(EFORMAT, -4, "malformed file")                                           \
    X(ECONFIG, -5, "invalid model configuration")                              \
    X(ETENSOR, -6, "missing, unused or mis-shaped tensor")                      \
    X(ERANGE, -7, "value out of range")                                        \
    X(ENODEV, -8, "no such OpenCL device")                                     \
    X(EOPENCL, -9, "OpenCL call failed")                                       \
    X(EBUILD, -10, "OpenCL kernel build failed")                               \
    X(EUNSUPPORTED, -11, "not supported")                                      \
    X(EGEMM, -12, "CLBlast GEMM failed")

enum bmojo_status {
#define BMOJO_STATUS_ENUM(name, value, msg) BMOJO_##name = (value),
    BMOJO_STATUS_MAP(BMOJO_STATUS_ENUM)
#undef BMOJO_STATUS_ENUM
};

/* The fixed message of a status code ("unknown status" for others). */
const char *bmojo_strerror(int status);
/* The detail of the last failure on this thread (names the file, key, tensor or call). */
const char *bmojo_last_error(void);
/* The library version, "MAJOR.MINOR.PATCH". */
const char *bmojo_version(void);
/* The source commit it was built from (`git describe --always --dirty`; "unknown" outside git). */
const char *bmojo_build_commit(void);

typedef struct bmojo_runtime bmojo_runtime; /* one OpenCL device, its context, queue, kernels */
typedef struct bmojo_model bmojo_model;     /* a config and its weights on the device */
typedef struct bmojo_state bmojo_state;     /* the recurrent state of B sequences */

/* ---- devices ---- */

typedef struct bmojo_device_desc {
    int platform_index, device_index;
    char platform_name[128], platform_version[128];
    char name[128], vendor[128], driver_version[64], device_version[64];
    int is_gpu;
    uint64_t global_mem_bytes, max_alloc_bytes, local_mem_bytes;
    uint64_t max_work_group_size;
    uint32_t compute_units, max_clock_mhz;
} bmojo_device_desc;

/* Lists every OpenCL device; writes up to cap descriptions and the total count. */
int bmojo_devices_list(bmojo_device_desc *out, int cap, int *count);

/* Opens a device: spec is "P:D", a case-insensitive part of the device name, or NULL
 * (then BMOJO_DEVICE, else the first GPU, else the first CPU device). Builds the kernels. */
int bmojo_runtime_create(const char *device_spec, bmojo_runtime **out);
/* Releases a runtime (NULL is fine). Free models and states first. */
void bmojo_runtime_free(bmojo_runtime *rt);
/* The runtime's device. */
int bmojo_runtime_device(const bmojo_runtime *rt, bmojo_device_desc *out);
/* The options the kernels were built with (for offline checks and bug reports). */
const char *bmojo_runtime_build_options(const bmojo_runtime *rt);
/* A problem met while opening the runtime that did not stop it (today: the kernel cache folder or
 * an entry was ignored, being another user's, writable by group or others, or a symlink), or
 * NULL. The library does not print it; callers show it once. */
const char *bmojo_runtime_warning(const bmojo_runtime *rt);

/* ---- models ---- */

/* Loads a model folder: config.yaml or config.json, model.safetensors or its shards. Every
 * tensor the config needs must be in the checkpoint with its shape, and every checkpoint tensor
 * must be one the config uses (a checkpoint with more layers than the config, or a misspelled
 * name, is BMOJO_ETENSOR naming them), except known harmless extras such as RoPE's
 * `rotary_emb.inv_freq`. */
int bmojo_model_load(bmojo_runtime *rt, const char *dir, bmojo_model **out);

/* Flags of bmojo_model_load_flags, or-ed.
 * Weight storage: the weight matrices (every projection the GEMMs read, the embedding table, the
 * head) are stored on the device as fp32 (BMOJO_LOAD_WEIGHTS_F32) or as IEEE half
 * (BMOJO_LOAD_WEIGHTS_F16: half the memory and the bytes a decoding step streams; arithmetic
 * stays fp32, so only the weights' rounding differs); norms, biases, conv, A_log, D, dt_proj stay
 * fp32. Neither flag (auto): f16 when the checkpoint holds every one of those matrices as F16 or
 * BF16, as llama.cpp keeps an F16 GGUF in F16; fp32 otherwise and for random weights. BF16 and
 * F32 values beyond f16's range (65504) cannot be stored as f16: BMOJO_ETENSOR names the tensor.
 * Both flags together are BMOJO_EINVAL. The trainer keeps fp32 (BMOJO_LOAD_WEIGHTS_F16 refused). */
enum bmojo_load_flags {
    BMOJO_LOAD_ALLOW_UNUSED_TENSORS = 1u << 0, /* ignore checkpoint tensors the config does not use */
    BMOJO_LOAD_WEIGHTS_F32 = 1u << 1,          /* weight matrices as fp32 */
    BMOJO_LOAD_WEIGHTS_F16 = 1u << 2           /* weight matrices as f16 (fp32 arithmetic) */
};
/* bmojo_model_load with flags (0 is bmojo_model_load); an unknown flag is BMOJO_EINVAL. */
int bmojo_model_load_flags(bmojo_runtime *rt, const char *dir, unsigned flags, bmojo_model **out);
/* Builds a model from a config.yaml with seeded random weights (benchmarks, tests). */
int bmojo_model_random(bmojo_runtime *rt, const char *config_yaml, uint64_t seed, bmojo_model **out);
/* The same with BMOJO_LOAD_WEIGHTS_* flags (the other flags are BMOJO_EINVAL here). */
int bmojo_model_random_flags(bmojo_runtime *rt, const char *config_yaml, uint64_t seed, unsigned flags,
                             bmojo_model **out);
/* Releases a model (NULL is fine). */
void bmojo_model_free(bmojo_model *m);

typedef struct bmojo_model_info {
    const char *name;
    int vocab_size, d_model, n_layers;
    int n_mamba, n_attention, n_mlp, n_bmojo; /* sublayers of each kind */
    uint64_t n_params, weight_bytes;          /* weight_bytes: device memory of the weights */
    int weights_f16;                          /* 1: the weight matrices are stored as f16 */
    int eos_token_id;                         /* a Hugging Face config.json's eos_token_id; -1: none */
} bmojo_model_info;

/* Fills info (pointers stay valid while the model lives). */
int bmojo_model_get_info(const bmojo_model *m, bmojo_model_info *info);
/* Writes a one-line-per-sublayer summary into buf (truncated to n bytes, always terminated). */
int bmojo_model_describe(const bmojo_model *m, char *buf, size_t n);

/* What one sequence keeps of its past to predict the next token, in floats, counted the way the
 * B'MOJO paper's recall study does (docs/bmojo.md, "Recurrent memory"); no device is needed. */
typedef struct bmojo_recurrent_memory {
    uint64_t ssm;        /* Mamba SSM states of mamba and bmojo sublayers: d_inner * d_state each */
    uint64_t window_kv;  /* K and V of sliding windows (windowed attention, bmojo): 2 * window rows */
    uint64_t context_kv; /* K and V of full attention: 2 * context rows */
    uint64_t fading_kv;  /* bmojo: K and V of the fading tokens */
    uint64_t eidetic_kv; /* bmojo: K and V of the eidetic tokens */
    uint64_t total;      /* the sum of the five above */
    uint64_t conv;       /* Mamba convolution tails, d_inner * (d_conv - 1): held, not in total */
} bmojo_recurrent_memory;
/* The recurrent memory of the model a config describes (config.yaml, a Hugging Face config.json
 * or a model folder) at a context of `context` tokens (>= 1; only full attention depends on it). */
int bmojo_config_recurrent_memory(const char *config_path, int64_t context, bmojo_recurrent_memory *out);

/* ---- tokenizer (a Hugging Face tokenizer.json with a BPE model; docs/architecture.md) ---- */

typedef struct bmojo_tokenizer bmojo_tokenizer;
/* Loads a tokenizer.json; an unsupported component is BMOJO_EUNSUPPORTED naming it. */
int bmojo_tokenizer_load(const char *path, bmojo_tokenizer **out);
/* Releases a tokenizer (NULL is fine). */
void bmojo_tokenizer_free(bmojo_tokenizer *t);
/* 1 + the largest token id (vocabulary and added tokens). */
int32_t bmojo_tokenizer_vocab_size(const bmojo_tokenizer *t);
/* The ids of text[0..len) (valid UTF-8, else BMOJO_EINVAL naming the byte) as Hugging Face's
 * encode(text, add_special_tokens) gives them; *ids is malloc'ed (free() it). */
int bmojo_tokenizer_encode(const bmojo_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                           size_t *n);
/* The end-of-sequence id: the first special added token among </s>, <|endoftext|>, <|im_end|>,
 * <|eot_id|>, <|end_of_text|>; -1 when there is none. */
int32_t bmojo_tokenizer_eos(const bmojo_tokenizer *t);
/* The text of ids as Hugging Face's decode(ids) gives it (special tokens kept); *text is malloc'ed
 * and NUL-terminated. An id outside the vocabulary is BMOJO_ERANGE. */
int bmojo_tokenizer_decode(const bmojo_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len);

/* ---- state and forward ---- */

/* A state for `batch` sequences, empty (position 0). */
int bmojo_state_create(bmojo_model *m, int batch, bmojo_state **out);
/* Releases a state (NULL is fine). */
void bmojo_state_free(bmojo_state *s);
/* Back to position 0, all memories cleared. */
int bmojo_state_reset(bmojo_state *s);
/* Tokens processed so far by each sequence. */
int64_t bmojo_state_position(const bmojo_state *s);
/* Batch size of the state. */
int bmojo_state_batch(const bmojo_state *s);

typedef struct bmojo_state_memory {
    uint64_t attention_kv; /* K/V ring buffers and caches */
    uint64_t eidetic;      /* eidetic candidates, frozen memory, fading K/V, y history */
    uint64_t ssm;          /* Mamba conv and SSM states */
    uint64_t scratch;      /* activations of the largest forward so far */
} bmojo_state_memory;
/* Device memory held by the state, by kind. */
int bmojo_state_get_memory(const bmojo_state *s, bmojo_state_memory *out);

/* Serializes the state into a malloc'ed buffer (free() it). */
int bmojo_state_save(const bmojo_state *s, void **buf, size_t *size);
/* Restores a state saved from the same model and batch size. */
int bmojo_state_restore(bmojo_state *s, const void *buf, size_t size);
/* The same, to and from a file. */
int bmojo_state_save_file(const bmojo_state *s, const char *path);
int bmojo_state_restore_file(bmojo_state *s, const char *path);

enum bmojo_logits_mode {
    BMOJO_LOGITS_NONE = 0, /* compute nothing on the head */
    BMOJO_LOGITS_LAST = 1, /* logits of the last position: [B, V] */
    BMOJO_LOGITS_ALL = 2   /* logits of every position: [B, T, V] */
};

/* Feeds T tokens of each of the state's B sequences (ids is [B, T], row-major), continuing
 * from the state: a prefill when the state is empty, a decoding step when T is 1. Token ids
 * must be in [0, vocab). Writes logits per mode into `logits` (host memory, may be NULL for
 * BMOJO_LOGITS_NONE). Blocks until the logits are on the host. */
int bmojo_forward(bmojo_model *m, bmojo_state *s, const int32_t *ids, int T, int logits_mode,
                  float *logits);

/* ---- Training: loss and gradients (docs/training.md, model contract section 6) ---- */

typedef struct bmojo_trainer bmojo_trainer;

/* A model folder opened for training: its config and every checkpoint tensor as an fp32
 * trainable parameter (flags: BMOJO_LOAD_*, as bmojo_model_load_flags). */
int bmojo_trainer_load(bmojo_runtime *rt, const char *dir, unsigned flags, bmojo_trainer **out);
/* A config.yaml with seeded random parameters (the inference loader's initialization). */
int bmojo_trainer_random(bmojo_runtime *rt, const char *config_yaml, uint64_t seed, bmojo_trainer **out);
void bmojo_trainer_free(bmojo_trainer *tr);
/* Sets every gradient to zero. */
int bmojo_trainer_zero_grad(bmojo_trainer *tr);
/* One batch: ids and targets [batch, T] (row-major; each sequence starts from an empty state;
 * a target of -1 scores nothing, at least one must be >= 0). *loss = the mean over the scored
 * positions of -log p(target); the gradients of that mean are added to the trainer's. */
int bmojo_trainer_grad(bmojo_trainer *tr, const int32_t *ids, const int32_t *targets, int batch, int T, double *loss);
/* The same loss without the backward pass (gradients untouched): evaluation. */
int bmojo_trainer_loss(bmojo_trainer *tr, const int32_t *ids, const int32_t *targets, int batch, int T, double *loss);

typedef struct {
    const char *name;  /* the checkpoint's name; valid while the trainer lives */
    int ndim;
    int64_t shape[3];
    size_t numel;
} bmojo_tensor_info;
/* The trainable tensors, in the order of the config (0 <= k < count). */
int bmojo_trainer_tensor_count(const bmojo_trainer *tr);
int bmojo_trainer_tensor(const bmojo_trainer *tr, int k, bmojo_tensor_info *info);
/* Copies tensor k's gradient (numel floats) to the host (waits for the device). */
int bmojo_trainer_read_grad(bmojo_trainer *tr, int k, float *dst);
/* Writes the model as a native folder: dir/config.yaml and dir/model.safetensors (native tensor
 * names, F32), each atomically; dir is created if missing. bmojo_model_load reads it back. */
int bmojo_trainer_save(bmojo_trainer *tr, const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* BMOJO_H */
