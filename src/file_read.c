/* file_read.c — bm_read_file: a whole small file into memory, with a size limit. */
#include "file_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int bm_read_file(const char *path, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return bm_fail(BMOJO_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    int st = buf ? 0 : bm_fail(BMOJO_ENOMEM, "reading %s: out of memory", path);
    while (st == 0) {
        if (n == cap) {
            if (cap >= max_bytes) {
                st = bm_fail(BMOJO_EFORMAT, "%s is larger than %zu bytes", path, max_bytes);
                break;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                st = bm_fail(BMOJO_ENOMEM, "reading %s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (st == 0 && ferror(f)) st = bm_fail(BMOJO_EIO, "cannot read %s: %s", path, strerror(errno));
    if (st == 0 && n > max_bytes) st = bm_fail(BMOJO_EFORMAT, "%s is larger than %zu bytes", path, max_bytes);
    fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
