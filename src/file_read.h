/* file_read.h — opening untrusted input files without ever blocking, and reading a whole small
 * file (JSON indexes, configs, saved states) into memory. */
#ifndef BM_FILE_READ_H
#define BM_FILE_READ_H

#include <stddef.h>

/* Opens path read-only for a reader of untrusted input. The open itself never blocks (O_NONBLOCK,
 * so a FIFO without a writer or a device does not wait), and anything that is not a regular file
 * (a FIFO, a folder, a character or block device, a socket) is refused with BMOJO_EIO and a
 * message naming the file and its kind; `what` (e.g. "safetensors file", may be NULL) is put
 * before the path in messages. On success *fd is a blocking descriptor (O_CLOEXEC) for the
 * caller to close. */
int bm_open_regular(const char *path, const char *what, int *fd);

/* Reads path (opened through bm_open_regular) into a malloc'ed, NUL-terminated buffer (*len
 * excludes the NUL). Files larger than max_bytes (at most SIZE_MAX / 2) are refused with
 * BMOJO_EFORMAT; open/read failures are BMOJO_EIO, all naming path. */
int bm_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

#endif
