/* file_read.c — bm_open_regular (an open of untrusted input that never blocks and takes only
 * regular files) and bm_read_file (a whole small file into memory, with a size limit). */
#include "file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* The kind of a file that is not a regular file, as messages name it. */
static const char *kind_name(mode_t m)
{
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "a special file";
}

int bm_open_regular(const char *path, const char *what, int *fd)
{
    *fd = -1;
    const char *sp = what ? " " : "";
    what = what ? what : "";
    /* O_NONBLOCK: opening a FIFO with no writer, or some devices, would otherwise wait forever;
     * O_NOCTTY: a terminal device must not become our controlling terminal before it is refused. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) {
        int e = errno;
        struct stat st;
        /* A socket cannot be opened at all (ENXIO): say what it is rather than "no such device". */
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return bm_fail(BMOJO_EIO, "%s%s%s is %s, not a regular file", what, sp, path, kind_name(st.st_mode));
        return bm_fail(BMOJO_EIO, "cannot open %s%s%s: %s", what, sp, path, strerror(e));
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return bm_fail(BMOJO_EIO, "cannot stat %s%s%s: %s", what, sp, path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return bm_fail(BMOJO_EIO, "%s%s%s is %s, not a regular file", what, sp, path, kind_name(st.st_mode));
    }
    /* Reads of a regular file never wait anyway; clearing the flag keeps read() semantics plain. */
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return bm_fail(BMOJO_EIO, "cannot read %s%s%s: %s", what, sp, path, strerror(e));
    }
    *fd = f;
    return 0;
}

int bm_read_file(const char *path, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd;
    int st = bm_open_regular(path, NULL, &fd);
    if (st) return st;
    /* A file whose size is already too large is refused unread. Otherwise the size is only a
     * hint (files like those in /proc say 0 and still have content, a file may grow): the buffer
     * grows while reading, up to max_bytes + 1 bytes so a larger file is noticed. */
    struct stat sb;
    size_t cap = 4096;
    if (fstat(fd, &sb) != 0)
        sb.st_size = 0;
    if ((unsigned long long)sb.st_size > max_bytes) {
        close(fd);
        return bm_fail(BMOJO_EFORMAT, "%s is larger than %zu bytes", path, max_bytes);
    }
    if ((unsigned long long)sb.st_size >= cap)
        cap = (size_t)sb.st_size + 1;
    size_t n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) st = bm_fail(BMOJO_ENOMEM, "reading %s: out of memory", path);
    while (st == 0) {
        if (n == cap) {
            if (cap > max_bytes) {
                st = bm_fail(BMOJO_EFORMAT, "%s is larger than %zu bytes", path, max_bytes);
                break;
            }
            size_t nc = cap > (max_bytes - cap) ? max_bytes + 1 : cap * 2;
            char *nb = realloc(buf, nc + 1);
            if (!nb) {
                st = bm_fail(BMOJO_ENOMEM, "reading %s: out of memory", path);
                break;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = bm_fail(BMOJO_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (st == 0 && n > max_bytes) st = bm_fail(BMOJO_EFORMAT, "%s is larger than %zu bytes", path, max_bytes);
    close(fd);
    if (st) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
