/* file_write.c — bm_atomic_*: temporary file, fsync, rename, fsync of the folder. Used for every
 * file the runtime writes (kernel cache entries, saved states, safetensors outputs). */
#include "file_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

static void af_reset(bm_atomic_file *af)
{
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    af->fd = -1;
    af->end = 0;
}

int bm_atomic_open(bm_atomic_file *af, const char *path, mode_t mode)
{
    af->fd = -1;
    af->end = 0;
    af->path = af->tmp = NULL;
    if (!path || !path[0]) return bm_fail(BMOJO_EINVAL, "cannot write a file with an empty name");
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp = malloc(n + 24);
    if (!af->path || !af->tmp) {
        af_reset(af);
        return bm_fail(BMOJO_ENOMEM, "writing %s: out of host memory", path);
    }
    memcpy(af->path, path, n + 1);
    /* Our own unique name rather than mkstemp's: open() with O_EXCL applies the caller's mode
     * less the umask itself (mkstemp makes 0600, and reading the umask means setting it, which
     * races with other threads). */
    static _Atomic unsigned counter;
    int e = EEXIST;
    for (int attempt = 0; af->fd < 0 && e == EEXIST && attempt < 100; attempt++) {
        /* splitmix64 of pid, time, a per-process counter and the caller's stack address */
        uint64_t r = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL) * 0xBF58476D1CE4E5B9ull ^
                     (uint64_t)counter++ * 0x94D049BB133111EBull ^ (uint64_t)(uintptr_t)af;
        r ^= r >> 30;
        r *= 0xBF58476D1CE4E5B9ull;
        r ^= r >> 27;
        r *= 0x94D049BB133111EBull;
        r ^= r >> 31;
        snprintf(af->tmp, n + 24, "%s.tmp.%012llx", path, (unsigned long long)(r & 0xffffffffffffull));
        af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (af->fd < 0) e = errno;
    }
    if (af->fd < 0) {
        af_reset(af);
        return bm_fail(BMOJO_EIO, "cannot create a temporary file beside %s: %s", path, strerror(e));
    }
    return 0;
}

int bm_atomic_pwrite(bm_atomic_file *af, const void *data, size_t n, uint64_t off)
{
    const char *p = data;
    while (n > 0) {
        size_t piece = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t w = pwrite(af->fd, p, piece, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return bm_fail(BMOJO_EIO, "cannot write %s: %s", af->path, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int bm_atomic_write(bm_atomic_file *af, const void *data, size_t n)
{
    int st = bm_atomic_pwrite(af, data, n, af->end);
    if (!st) af->end += n;
    return st;
}

/* Makes the rename itself durable. Best effort: some file systems refuse fsync on a folder. */
static void sync_parent(const char *path)
{
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir) d = "/";
    else if (slash) {
        *slash = 0;
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int bm_atomic_commit(bm_atomic_file *af)
{
    if (af->fd < 0) return bm_fail(BMOJO_EINVAL, "bm_atomic_commit: the file is not open");
    int st = 0;
    /* EINVAL / EROFS: the file system has no fsync (a pipe-backed or read-only mount); the data
     * is as durable as that file system allows */
    if (fsync(af->fd) != 0 && errno != EINVAL && errno != EROFS)
        st = bm_fail(BMOJO_EIO, "cannot flush %s to disk: %s", af->tmp, strerror(errno));
    int fd = af->fd;
    af->fd = -1;
    if (close(fd) != 0 && !st) st = bm_fail(BMOJO_EIO, "cannot write %s: %s", af->tmp, strerror(errno));
    if (!st && rename(af->tmp, af->path) != 0)
        st = bm_fail(BMOJO_EIO, "cannot rename %s to %s: %s", af->tmp, af->path, strerror(errno));
    if (st) unlink(af->tmp);
    else sync_parent(af->path);
    af_reset(af);
    return st;
}

void bm_atomic_abort(bm_atomic_file *af)
{
    if (af->fd >= 0) {
        close(af->fd);
        unlink(af->tmp);
    }
    af_reset(af);
}

int bm_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    bm_atomic_file af;
    int st = bm_atomic_open(&af, path, mode);
    if (st) return st;
    st = bm_atomic_write(&af, data, n);
    if (st) {
        bm_atomic_abort(&af);
        return st;
    }
    return bm_atomic_commit(&af);
}
