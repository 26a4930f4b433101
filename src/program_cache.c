/* program_cache.c — on-disk cache of built kernel programs, so a second start skips the
 * OpenCL compiler. Key: two 64-bit FNV-1a hashes (different seeds) over everything that changes
 * the binary: source, build options, device name, driver, device and platform versions.
 * File: <dir>/<32 hex>.bin, format in cache_entry.h (magic, length, checksum, driver binary).
 *
 * The cache is untrusted input and never fails the run:
 * - the folder is created 0700; a folder or entry owned by another user or writable by group or
 *   others, an entry that is a symlink or not a regular file, is ignored (not read, nothing
 *   written into such a folder) with one warning on the runtime (bmojo_runtime_warning);
 * - an entry is taken out of the cache (renamed to <key>.bin.claimed.<pid>.<n>) before its binary
 *   goes to the driver, and put back only once the program built and its kernels were created and
 *   ran (bm_program_cache_release). A driver that crashes on a damaged binary (header and checksum
 *   valid, the binary cut short) thus crashes one run, not every later one; claimed names of dead
 *   processes, or older than an hour, are deleted when the cache is opened, as are temporary files
 *   of writers that died;
 * - an unusable entry (bad header, length or checksum, refused by the driver) is deleted and the
 *   caller builds from source; entries are written atomically (bm_atomic_*, mode 0600). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_entry.h"
#include "error.h"
#include "file_write.h"
#include "runtime.h"

/* A claimed entry or a temporary file this old is from a process that died or hung. */
#define CACHE_STALE_SECONDS 3600
#define KEY_HEX 32 /* hex digits of an entry's name before ".bin" */

/* Makes claimed names unique among the runtimes of one process. */
static atomic_uint claim_counter;

/* The runtime's warning (the first one only: the caller shows one line). */
BM_PRINTF(2, 3) static void warn(bm_rt *rt, const char *fmt, ...)
{
    if (rt->warning[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->warning, sizeof rt->warning, fmt, ap);
    va_end(ap);
}

/* Hashes a string and its terminating zero, so field boundaries are part of the key. */
static uint64_t fnv_str(uint64_t h, const char *s) { return bm_fnv1a(h, s ? s : "", strlen(s ? s : "") + 1); }

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

/* mkdir -p, private (0700) folders; existing folders are fine. */
static int make_dirs(const char *path)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Whether a file's owner and mode let us trust it: ours, not writable by group or others. */
static int trusted(bm_rt *rt, const char *path, const struct stat *sb, const char *what)
{
    if (sb->st_uid != geteuid()) {
        warn(rt, "kernel cache %s %s is owned by uid %u, not by this user (uid %u): ignored", what, path,
             (unsigned)sb->st_uid, (unsigned)geteuid());
        return 0;
    }
    if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
        warn(rt, "kernel cache %s %s is writable by group or others (mode %03o): ignored", what, path,
             (unsigned)(sb->st_mode & 0777));
        return 0;
    }
    return 1;
}

/* The cache folder: 1 if usable (a folder we trust, or absent when may_be_absent), else 0 (a
 * warning says why when it exists but is not trusted). Symlinks to the folder are fine (~/.cache
 * often is one); its owner and mode are what count. */
static int dir_usable(bm_rt *rt, const char *dir, int may_be_absent)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) return errno == ENOENT && may_be_absent;
    if (!S_ISDIR(sb.st_mode)) {
        warn(rt, "kernel cache folder %s is not a folder: ignored", dir);
        return 0;
    }
    return trusted(rt, dir, &sb, "folder");
}

static int process_dead(const char *pid_text)
{
    char *end = NULL;
    long pid = strtol(pid_text, &end, 10);
    if (end == pid_text || *end != '.' || pid <= 0) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Deletes what crashed processes left: claimed entries (whose process is gone, or older than
 * CACHE_STALE_SECONDS) and temporary files older than that. Only names of our own pattern
 * (<32 hex>.bin.claimed.* / .bin.tmp.*) are considered, since the folder is the user's choice. */
static void remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strspn(name, "0123456789abcdef") != KEY_HEX || strncmp(name + KEY_HEX, ".bin.", 5) != 0) continue;
        const char *rest = name + KEY_HEX + 5;
        int claimed = !strncmp(rest, "claimed.", 8), tmp = !strncmp(rest, "tmp.", 4);
        if (!claimed && !tmp) continue;
        char path[1400];
        struct stat sb;
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path || lstat(path, &sb) != 0) continue;
        time_t changed = claimed ? sb.st_ctime : sb.st_mtime; /* a rename sets the ctime */
        int old = now - changed > CACHE_STALE_SECONDS;
        if (old || (claimed && process_dead(rest + 8))) unlink(path);
    }
    closedir(d);
}

void bm_program_cache_key_make(bm_rt *rt, const char *source, const char *options, bm_program_cache_key *key)
{
    memset(key, 0, sizeof *key);
    const char *off = getenv("BMOJO_CACHE");
    if (off && !strcmp(off, "0")) return;
    char dir[900];
    if (!cache_dir(dir, sizeof dir)) return;
    if (!dir_usable(rt, dir, 1)) return;
    uint64_t h[2] = {BM_FNV1A_SEED, 0x84222325cbf29ce4ull};
    for (int i = 0; i < 2; i++) {
        h[i] = fnv_str(h[i], BM_CACHE_ENTRY_MAGIC);
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
    remove_stale(dir);
    key->enabled = 1;
}

/* Whether an entry (lstat'ed or fstat'ed) may be read: a regular file we trust. */
static int entry_usable(bm_rt *rt, const char *path, const struct stat *sb)
{
    if (!S_ISREG(sb->st_mode)) {
        warn(rt, "kernel cache entry %s is %s: ignored", path, S_ISLNK(sb->st_mode) ? "a symlink" : "not a regular file");
        return 0;
    }
    return trusted(rt, path, sb, "entry");
}

/* Reads a whole claimed entry (already open) into a malloc'ed buffer; NULL if it cannot be an
 * entry (size) or cannot be read. */
static unsigned char *read_all(int fd, size_t size)
{
    unsigned char *buf = malloc(size);
    if (!buf) return NULL;
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)r;
    }
    return buf;
}

/* The claimed entry's program, built; NULL if unusable (the caller then deletes the entry). */
static cl_program program_from_entry(bm_rt *rt, int fd, const char *options)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size <= BM_CACHE_ENTRY_HEADER || (uint64_t)sb.st_size > BM_CACHE_ENTRY_MAX)
        return NULL;
    unsigned char *data = read_all(fd, (size_t)sb.st_size);
    const unsigned char *bin = NULL;
    size_t len = 0;
    cl_program prog = NULL;
    if (data && bm_cache_entry_parse(data, (size_t)sb.st_size, &bin, &len) == 0) {
        cl_int err = CL_SUCCESS, bstatus = CL_SUCCESS;
        prog = clCreateProgramWithBinary(rt->ctx, 1, &rt->device, &len, &bin, &bstatus, &err);
        if (err != CL_SUCCESS || bstatus != CL_SUCCESS) {
            if (prog) clReleaseProgram(prog);
            prog = NULL;
        } else if (clBuildProgram(prog, 1, &rt->device, options, NULL, NULL) != CL_SUCCESS) {
            clReleaseProgram(prog);
            prog = NULL;
        }
    }
    free(data);
    return prog;
}

cl_program bm_program_cache_load(bm_rt *rt, bm_program_cache_key *key, const char *options)
{
    if (!key) return NULL;
    key->claimed[0] = 0;
    if (!key->enabled) return NULL;
    struct stat sb;
    if (lstat(key->path, &sb) != 0 || !entry_usable(rt, key->path, &sb)) return NULL;
    /* Claim it: from here on the entry is not in the cache, so if the driver crashes on it, the
     * next run builds from source. A failed rename (another start took it first, or the folder
     * is read-only, when the entry could not be taken out) means: build from source. */
    char claimed[sizeof key->claimed];
    if (snprintf(claimed, sizeof claimed, "%s.claimed.%ld.%u", key->path, (long)getpid(),
                 atomic_fetch_add(&claim_counter, 1)) >= (int)sizeof claimed ||
        rename(key->path, claimed) != 0)
        return NULL;
    int fd = open(claimed, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0 || !entry_usable(rt, key->path, &sb)) {
        /* replaced between the lstat and the rename by something we do not read: left as it was */
        if (fd >= 0) close(fd);
        rename(claimed, key->path);
        return NULL;
    }
    cl_program prog = program_from_entry(rt, fd, options);
    close(fd);
    /* Unusable (truncated, corrupt, from another driver build): dropped, the caller rebuilds. */
    if (!prog) unlink(claimed);
    else memcpy(key->claimed, claimed, sizeof claimed);
    return prog;
}

void bm_program_cache_release(bm_program_cache_key *key, int usable)
{
    if (!key || !key->claimed[0]) return;
    if (!usable || rename(key->claimed, key->path) != 0) unlink(key->claimed);
    key->claimed[0] = 0;
}

void bm_program_cache_store(bm_rt *rt, const bm_program_cache_key *key, cl_program prog)
{
    if (!key || !key->enabled || !prog) return;
    cl_uint ndev = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS || ndev != 1) return;
    size_t len = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS || len == 0 ||
        len > BM_CACHE_ENTRY_MAX - BM_CACHE_ENTRY_HEADER)
        return;
    char dir[sizeof key->path];
    memcpy(dir, key->path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        /* created here if absent; checked again, since another process may have made it */
        if (make_dirs(dir) != 0 || !dir_usable(rt, dir, 0)) return;
    }
    unsigned char *bin = malloc(len);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        unsigned char header[BM_CACHE_ENTRY_HEADER];
        bm_cache_entry_header(bin, len, header);
        bm_atomic_file af;
        if (bm_atomic_open(&af, key->path, 0600) == 0) {
            if (bm_atomic_write(&af, header, sizeof header) == 0 && bm_atomic_write(&af, bin, len) == 0)
                bm_atomic_commit(&af);
            else bm_atomic_abort(&af);
        }
        /* a cache that cannot be written is no error of the run */
        bm_error_clear();
    }
    free(bin);
}
