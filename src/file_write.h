/* file_write.h — writing a file atomically: the data goes to a temporary name in the target's
 * folder, is fsynced, and is renamed over the target only when complete, so a reader (or a later
 * run after a crash) sees the old file or the whole new one, never a part. */
#ifndef BM_FILE_WRITE_H
#define BM_FILE_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    int fd;     /* -1 when closed */
    char *path; /* the target */
    char *tmp;  /* the temporary name (target + ".tmp." + 12 hex digits) */
    uint64_t end; /* where bm_atomic_write appends */
} bm_atomic_file;

/* Creates the temporary file with the given permission bits (before the umask). Errors name the
 * path: BMOJO_EIO, BMOJO_ENOMEM. On failure nothing is left behind and af is closed. */
int bm_atomic_open(bm_atomic_file *af, const char *path, mode_t mode);
/* Appends n bytes after the last appended ones (retrying short writes and EINTR). */
int bm_atomic_write(bm_atomic_file *af, const void *data, size_t n);
/* Writes n bytes at offset off (the file grows as needed). */
int bm_atomic_pwrite(bm_atomic_file *af, const void *data, size_t n, uint64_t off);
/* fsync, close, rename over the target, fsync the folder. On failure the temporary file is
 * removed and the target is untouched. af is closed either way. */
int bm_atomic_commit(bm_atomic_file *af);
/* Closes and removes the temporary file (a closed af is fine). */
void bm_atomic_abort(bm_atomic_file *af);

/* The whole file in one call: open, write, commit. */
int bm_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);

#endif
