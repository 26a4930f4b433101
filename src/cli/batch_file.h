/* batch_file.h — the training batch file of `bmojo grad` (model contract section 6): `input_ids`
 * and `targets`, I32 (or I64), [B, T] (or [T]), the same shape; a target of -1 scores nothing.
 * Untrusted input: the form is checked when opened, every value against the vocabulary when
 * read; messages name the file, the tensor, the value and its position. */
#ifndef BM_CLI_BATCH_FILE_H
#define BM_CLI_BATCH_FILE_H

#include "ids_file.h"

typedef struct {
    cli_ids_file ids;          /* input_ids, and the file */
    const bm_st_tensor *targets;
} cli_batch_file;

int cli_batch_open(const char *path, cli_batch_file *out);
/* ids and targets: B*T each, row-major. */
int cli_batch_read(const cli_batch_file *b, int64_t vocab, int32_t *ids, int32_t *targets);
void cli_batch_close(cli_batch_file *b);

#endif
