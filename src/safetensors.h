/* safetensors.h — reading and writing the safetensors format (Hugging Face), with every rule of
 * the format enforced, and sharded models through model.safetensors.index.json. */
#ifndef BM_SAFETENSORS_H
#define BM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "file_write.h"

typedef enum { BM_DT_F32, BM_DT_F16, BM_DT_BF16, BM_DT_F64, BM_DT_I64, BM_DT_I32, BM_DT_I16, BM_DT_I8,
               BM_DT_U8, BM_DT_BOOL, BM_DT_COUNT } bm_dtype;

#define BM_ST_MAX_DIMS 8

typedef struct {
    char *name;
    bm_dtype dtype;
    int ndim;
    int64_t shape[BM_ST_MAX_DIMS];
    uint64_t nelem;
    uint64_t begin, end;  /* byte range inside the data section */
} bm_st_tensor;

typedef struct {
    char *path;
    int n;                 /* tensors, sorted by name */
    bm_st_tensor *tensors;
    char *metadata_json;   /* the __metadata__ object as JSON text, or NULL */
    uint8_t *file;         /* the whole file (mmap'ed or read) */
    size_t file_size;
    const uint8_t *data;   /* start of the data section */
    int mapped;
} bm_st_file;

/* Size in bytes of one element, 0 for an invalid dtype. */
size_t bm_dtype_size(bm_dtype t);
const char *bm_dtype_name(bm_dtype t);

/* Opens and validates one file. Errors name the file and the rule broken (BMOJO_EFORMAT,
 * BMOJO_EIO). */
int bm_st_open(const char *path, bm_st_file *out);
void bm_st_close(bm_st_file *f);
/* Tensor by name or NULL. */
const bm_st_tensor *bm_st_find(const bm_st_file *f, const char *name);
/* Raw bytes of a tensor. */
const void *bm_st_data(const bm_st_file *f, const bm_st_tensor *t);
/* Converts a F32/F16/BF16 tensor to f32 (dst holds t->nelem floats). Other dtypes: EFORMAT. */
int bm_st_to_f32(const bm_st_file *f, const bm_st_tensor *t, float *dst);

/* A model's weights: model.safetensors, or the shards of model.safetensors.index.json. */
typedef struct {
    const char *name;
    int file;                    /* index into files */
    const bm_st_tensor *tensor;
} bm_st_set_entry;

typedef struct {
    int n_files;
    bm_st_file *files;
    size_t n_names;              /* sharded sets: every tensor of every shard, sorted by name, */
    bm_st_set_entry *by_name;    /* so a lookup is one binary search however many shards */
} bm_st_set;

int bm_st_set_open(const char *dir, bm_st_set *out);
void bm_st_set_close(bm_st_set *s);
/* Tensor by name across shards; *file is set to its shard. NULL if absent. */
const bm_st_tensor *bm_st_set_find(const bm_st_set *s, const char *name, const bm_st_file **file);

/* Writing. */
typedef struct {
    const char *name;
    bm_dtype dtype;
    int ndim;
    int64_t shape[BM_ST_MAX_DIMS];
    const void *data;      /* nelem * dtype size bytes */
} bm_st_out;

/* Writes tensors (any order; stored sorted by name, 8-byte aligned header) atomically
 * (temporary file, fsync, rename: file_write.h). metadata: NULL or pairs of strings,
 * NULL-terminated. */
int bm_st_write(const char *path, const bm_st_out *tensors, int n, const char *const *metadata);

/* The same file written piece by piece, for outputs too large to hold in memory (`bmojo logits`):
 * open writes the header (the tensors' data pointers are not read), put writes n bytes of
 * tensor `index` (in the caller's order) at byte `offset` inside it, commit makes the file
 * appear under its name. Bytes never put read as zeros. */
typedef struct {
    bm_atomic_file af;
    int n;
    uint64_t *begin, *bytes; /* each tensor's place in the data section */
    uint64_t data_start, data_size;
} bm_st_writer;

int bm_st_writer_open(bm_st_writer *w, const char *path, const bm_st_out *tensors, int n,
                      const char *const *metadata);
int bm_st_writer_put(bm_st_writer *w, int index, uint64_t offset, const void *data, size_t n);
int bm_st_writer_commit(bm_st_writer *w);
/* Removes the temporary file; the target is untouched. */
void bm_st_writer_abort(bm_st_writer *w);

#endif
