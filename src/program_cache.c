/* program_cache.c — on-disk cache of built kernel programs, so a second start skips the
 * OpenCL compiler. Key: two 64-bit FNV-1a hashes (different seeds) over everything that changes
 * the binary: source, build options, device name, driver, device and platform versions.
 * File: <dir>/<32 hex>.bin = header (magic, binary length, binary checksum) + binary. Writes go
 * to a temp file in the same folder and are renamed into place (atomic for concurrent starts).
 * Any unusable entry is deleted and the caller builds from source: the cache never fails. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"

#define CACHE_MAGIC "BMOJOCL1"     /* bump when the file layout changes */
#define CACHE_MAX_BYTES (1ull << 30) /* a program binary above 1 GiB is surely garbage */

typedef struct {
    char magic[8];
    uint64_t length;   /* bytes of binary after the header */
    uint64_t checksum; /* FNV-1a of the binary: catches corruption, not only truncation */
} cache_header;

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Hashes a string and its terminating zero, so field boundaries are part of the key. */
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv1a(h, s ? s : "", strlen(s ? s : "") + 1); }

static int cache_dir(char *buf, size_t n)
{
    const char *dir = getenv("BMOJO_CACHE_DIR");
    if (dir && dir[0]) return snprintf(buf, n, "%s", dir) < (int)n;
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0]) return snprintf(buf, n, "%s/bmojo", xdg) < (int)n;
    const char *home = getenv("HOME");
    if (home && home[0]) return snprintf(buf, n, "%s/.cache/bmojo", home) < (int)n;
    return 0;
}

/* mkdir -p; existing folders are fine. */
static int make_dirs(const char *path)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

void bm_program_cache_key_make(const bm_rt *rt, const char *source, const char *options, bm_program_cache_key *key)
{
    memset(key, 0, sizeof *key);
    const char *off = getenv("BMOJO_CACHE");
    if (off && !strcmp(off, "0")) return;
    char dir[900];
    if (!cache_dir(dir, sizeof dir)) return;
    uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    for (int i = 0; i < 2; i++) {
        h[i] = fnv_str(h[i], CACHE_MAGIC);
        h[i] = fnv_str(h[i], source);
        h[i] = fnv_str(h[i], options);
        h[i] = fnv_str(h[i], rt->desc.name);
        h[i] = fnv_str(h[i], rt->desc.vendor);
        h[i] = fnv_str(h[i], rt->desc.driver_version);
        h[i] = fnv_str(h[i], rt->desc.device_version);
        h[i] = fnv_str(h[i], rt->desc.platform_name);
        h[i] = fnv_str(h[i], rt->desc.platform_version);
    }
    if (snprintf(key->path, sizeof key->path, "%s/%016llx%016llx.bin", dir, (unsigned long long)h[0],
                 (unsigned long long)h[1]) >= (int)sizeof key->path)
        return;
    key->enabled = 1;
}

/* Reads and validates a cache file; returns the binary (malloc'ed) or NULL. */
static unsigned char *read_entry(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *bin = NULL;
    cache_header h;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size <= (off_t)sizeof h || (uint64_t)sb.st_size > CACHE_MAX_BYTES ||
        fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CACHE_MAGIC, 8) != 0 || h.length == 0 ||
        h.length != (uint64_t)sb.st_size - sizeof h)
        goto bad;
    bin = malloc((size_t)h.length);
    if (!bin || fread(bin, 1, (size_t)h.length, f) != (size_t)h.length ||
        fnv1a(0xcbf29ce484222325ull, bin, (size_t)h.length) != h.checksum)
        goto bad;
    fclose(f);
    *len = (size_t)h.length;
    return bin;
bad:
    free(bin);
    fclose(f);
    return NULL;
}

cl_program bm_program_cache_load(bm_rt *rt, const bm_program_cache_key *key, const char *options)
{
    if (!key || !key->enabled) return NULL;
    if (access(key->path, F_OK) != 0) return NULL;
    size_t len = 0;
    unsigned char *bin = read_entry(key->path, &len);
    cl_program prog = NULL;
    if (bin) {
        cl_int err = CL_SUCCESS, bstatus = CL_SUCCESS;
        const unsigned char *bins[1] = {bin};
        prog = clCreateProgramWithBinary(rt->ctx, 1, &rt->device, &len, bins, &bstatus, &err);
        if (err != CL_SUCCESS || bstatus != CL_SUCCESS) {
            if (prog) clReleaseProgram(prog);
            prog = NULL;
        } else if (clBuildProgram(prog, 1, &rt->device, options, NULL, NULL) != CL_SUCCESS) {
            clReleaseProgram(prog);
            prog = NULL;
        }
        free(bin);
    }
    /* Unusable (truncated, corrupt, from another driver build): drop it, the caller rebuilds. */
    if (!prog) unlink(key->path);
    return prog;
}

void bm_program_cache_store(bm_rt *rt, const bm_program_cache_key *key, cl_program prog)
{
    (void)rt;
    if (!key || !key->enabled || !prog) return;
    cl_uint ndev = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS || ndev != 1) return;
    size_t len = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS || len == 0 ||
        len >= CACHE_MAX_BYTES)
        return;
    unsigned char *bin = malloc(len);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) {
        free(bin);
        return;
    }
    char dir[1024], tmp[1100];
    snprintf(dir, sizeof dir, "%s", key->path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if ((slash && dir[0] && make_dirs(dir) != 0) ||
        snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", key->path) >= (int)sizeof tmp) {
        free(bin);
        return;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(bin);
        return;
    }
    fchmod(fd, 0644); /* like any cache file; mkstemp makes it private */
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(bin);
        return;
    }
    cache_header h;
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.length = len;
    h.checksum = fnv1a(0xcbf29ce484222325ull, bin, len);
    int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(bin, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    free(bin);
    if (!ok || rename(tmp, key->path) != 0) unlink(tmp);
}
