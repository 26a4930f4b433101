/* file_read.h — reading a whole small file (JSON indexes and configs) into memory. */
#ifndef BM_FILE_READ_H
#define BM_FILE_READ_H

#include <stddef.h>

/* Reads path into a malloc'ed, NUL-terminated buffer (*len excludes the NUL). Files larger than
 * max_bytes are refused with BMOJO_EFORMAT; open/read failures are BMOJO_EIO, all naming path. */
int bm_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

#endif
