/* ids_file.h — the token ids file of `bmojo logits` (model contract section 5): the tensor
 * `input_ids` ([T] or [B, T], I32 or I64) of a safetensors file. The file is untrusted input, so it
 * is checked in two steps: its form when opened (before the model is loaded, so a bad file fails
 * fast), and every value against the model's vocabulary when read. Failures return a bmojo status
 * with a detail message naming the file (bmojo_last_error); nothing is printed. */
#ifndef BM_CLI_IDS_FILE_H
#define BM_CLI_IDS_FILE_H

#include <stdint.h>

#include "safetensors.h"

/* Limits on the shape of input_ids (the message names them). */
#define CLI_IDS_MAX_T (1 << 22) /* tokens per sequence */
#define CLI_IDS_MAX_B 65536     /* sequences */

typedef struct {
    bm_st_file f;
    const bm_st_tensor *t; /* input_ids */
    int B, T, ndim;        /* ndim 1: [T] (B = 1); ndim 2: [B, T] */
} cli_ids_file;

/* Opens path and checks input_ids' dtype and shape. On failure *out needs no close. */
int cli_ids_open(const char *path, cli_ids_file *out);
/* Writes the B*T ids (row-major) into out, each checked to lie in [0, vocab): the first that does
 * not is reported with its own value and its position. */
int cli_ids_read(const cli_ids_file *x, int64_t vocab, int32_t *out);
void cli_ids_close(cli_ids_file *x);

#endif
