/* test_file_write.c — bm_atomic_* and bm_write_file_atomic (src/file_write.c): a commit gives the
 * whole content with the asked mode less the umask; appends and writes at offsets compose; an
 * abort or a failing open or commit leaves the old target as it was and no temporary file; a
 * symlink at the target is replaced, not followed. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bmojo.h"
#include "file_write.h"

static int n_pass, n_fail;

/* One line per check ("ok" / "FAIL" and what it checks); returns ok. */
__attribute__((format(printf, 2, 3))) static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s  ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok) n_pass++;
    else n_fail++;
    return ok;
}

static int finish(void)
{
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

/* The permission bits of path, or -1. */
static int mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

static char dir[] = "/tmp/bmojo-test-file-write-XXXXXX";

/* Entries of the test folder (temporary files left behind show up here). */
static int entries(void)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static int has_content(const char *path, const char *want)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(want) && !memcmp(buf, want, n);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int main(void)
{
    if (!check(mkdtemp(dir) != NULL, "a temporary folder")) return finish();
    char path[200], link_target[200], sub[200], missing[200];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    snprintf(link_target, sizeof link_target, "%s/target", dir);
    snprintf(sub, sizeof sub, "%s/folder", dir);
    snprintf(missing, sizeof missing, "%s/no-such-folder/out.bin", dir);
    umask(022);
    struct stat sb;

    /* write + commit: the content and the mode less the umask */
    bm_atomic_file af;
    int st = bm_atomic_open(&af, path, 0666);
    if (!st) st = bm_atomic_write(&af, "abc", 3);
    if (!st) st = bm_atomic_pwrite(&af, "Z", 1, 1); /* at an offset: appends go on after "abc" */
    if (!st) st = bm_atomic_write(&af, "de", 2);
    check(!st && entries() == 1 && stat(path, &sb) != 0, "before the commit only the temporary file exists");
    if (!st) st = bm_atomic_commit(&af);
    int mode = mode_of(path);
    check(!st && has_content(path, "aZcde") && mode == 0644 && entries() == 1,
          "commit: content aZcde, mode 0666 & ~022 = 0644 (got %03o), no temporary file", (unsigned)mode);
    check(af.fd == -1 && !af.tmp && !af.path, "commit closes the handle");
    check(bm_write_file_atomic(path, "xy", 2, 0600) == 0 && has_content(path, "xy") && mode_of(path) == 0600 &&
              entries() == 1,
          "bm_write_file_atomic replaces the file whole, mode 0600");

    /* abort: the old target untouched, no temporary file */
    st = bm_atomic_open(&af, path, 0644);
    if (!st) st = bm_atomic_write(&af, "new content", 11);
    if (!st) bm_atomic_abort(&af);
    check(!st && has_content(path, "xy") && entries() == 1 && af.fd == -1, "abort: old file untouched, no temporary file");
    bm_atomic_abort(&af); /* a closed handle is fine */
    check(bm_atomic_commit(&af) == BMOJO_EINVAL, "commit of a closed handle: EINVAL");

    /* a failing commit: the target is a folder */
    check(mkdir(sub, 0700) == 0, "mkdir %s", sub);
    st = bm_atomic_open(&af, sub, 0644);
    if (!st) st = bm_atomic_write(&af, "data", 4);
    if (!st) st = bm_atomic_commit(&af);
    check(st == BMOJO_EIO && strstr(bmojo_last_error(), sub) && entries() == 2 && stat(sub, &sb) == 0 &&
          S_ISDIR(sb.st_mode) && af.fd == -1,
          "commit onto a folder: EIO naming it (%s), the folder as it was, no temporary file", bmojo_last_error());

    /* a failing open: the folder does not exist */
    st = bm_atomic_open(&af, missing, 0644);
    check(st == BMOJO_EIO && strstr(bmojo_last_error(), missing) && af.fd == -1 && !af.tmp && entries() == 2,
          "open in a missing folder: EIO naming the path (%s), nothing left", bmojo_last_error());
    check(bm_atomic_open(&af, "", 0644) == BMOJO_EINVAL && af.fd == -1, "an empty name: EINVAL");

    /* a symlink at the target is replaced, its target untouched */
    put(link_target, "keep");
    unlink(path);
    check(symlink(link_target, path) == 0, "symlink %s", path);
    check(bm_write_file_atomic(path, "fresh", 5, 0644) == 0 && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
          has_content(path, "fresh") && has_content(link_target, "keep"),
          "a symlink at the target is replaced by the file, its target untouched");

    unlink(path);
    unlink(link_target);
    rmdir(sub);
    check(rmdir(dir) == 0, "nothing else left in %s", dir);
    return finish();
}
