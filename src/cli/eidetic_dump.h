/* eidetic_dump.h — `bmojo eval --eidetic FILE.jsonl` (eidetic_dump.c). */
#ifndef BM_CLI_EIDETIC_DUMP_H
#define BM_CLI_EIDETIC_DUMP_H

#include <stdint.h>

#include "bmojo.h"
#include "data_source.h"

/* Runs the first max_rows evaluation rows (0: all) of src through tr in batches of B x T and writes
 * a first object {"event": "start", command, commit, device, data, rows}, then one JSON object per
 * (row, sublayer with eidetic memory) to path; a summary line per sublayer on
 * stdout. BMOJO_EINVAL when the model has no such sublayer, BMOJO_EIO when path cannot be written. */
int cli_eidetic_dump(bmojo_trainer *tr, const bm_data_source *src, int B, int T, uint64_t max_rows, const char *path,
                     const char *command, const char *device);

#endif
