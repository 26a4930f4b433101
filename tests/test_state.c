/* test_state.c — the decoding path and the state: for every kind of model (golden fixtures and
 * the tiny configs with random weights), a prefill of T tokens followed by k decoding steps must
 * give the logits of one prefill of T + k tokens (crossing window, chunk and cache-growth
 * boundaries); prefills split into pieces must too; a saved and restored state (in memory or in a
 * file, into the same or a fresh state) must continue bit for bit; bad saved states are refused;
 * saving to a file replaces it whole or not at all; a state file that is a FIFO, a folder or a
 * device is refused by name without blocking. */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

#define TOL 1e-5

static uint64_t rng = 88172645463325252ull;
static int32_t rand_id(int V)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int32_t)(rng % (uint64_t)V);
}

static void check_model(bmojo_runtime *rt, const char *name, bmojo_model *m, int B)
{
    bmojo_model_info info;
    bmojo_model_get_info(m, &info);
    const int T = 37, K = 113, N = T + K; /* N = 150 > 2 * 64: full-attention caches grow twice */
    size_t V = (size_t)info.vocab_size;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * N), *col = malloc(sizeof(int32_t) * (size_t)B);
    float *full = malloc(sizeof(float) * (size_t)B * N * V), *step = malloc(sizeof(float) * (size_t)B * V);
    float *stepped = malloc(sizeof(float) * (size_t)B * K * V), *again = malloc(sizeof(float) * (size_t)B * K * V);
    bmojo_state *s = NULL, *s2 = NULL;
    void *saved = NULL;
    size_t saved_n = 0;
    char path[256];
    snprintf(path, sizeof path, "/tmp/bmojo-test-state-%d.bin", (int)getpid());
    if (!ids || !col || !full || !step || !stepped || !again) goto done;
    for (int i = 0; i < B * N; i++) ids[i] = rand_id((int)V);
    if (!tu_status(bmojo_state_create(m, B, &s), "state") || !tu_status(bmojo_state_create(m, B, &s2), "state"))
        goto done;
    if (!tu_status(bmojo_forward(m, s, ids, N, BMOJO_LOGITS_ALL, full), "prefill")) goto done;
    /* full[b, t] is at (b * N + t) * V */

    /* 1. prefill of T, then K single steps */
    int32_t *pre = malloc(sizeof(int32_t) * (size_t)B * T);
    if (!pre) goto done;
    for (int b = 0; b < B; b++) memcpy(pre + (size_t)b * T, ids + (size_t)b * N, sizeof(int32_t) * T);
    bmojo_state_reset(s);
    int st = bmojo_forward(m, s, pre, T, BMOJO_LOGITS_LAST, step);
    free(pre);
    double worst = 0;
    for (int k = 0; st == 0 && k < K; k++) {
        for (int b = 0; b < B; b++) col[b] = ids[(size_t)b * N + T + k];
        st = bmojo_forward(m, s, col, 1, BMOJO_LOGITS_LAST, step);
        for (int b = 0; st == 0 && b < B; b++) {
            memcpy(stepped + ((size_t)b * K + k) * V, step + (size_t)b * V, V * sizeof(float));
            double e = tu_rel_err(step + (size_t)b * V, full + ((size_t)b * N + T + k) * V, V);
            if (e > worst) worst = e;
        }
    }
    if (tu_status(st, "decode"))
        tu_check(worst <= TOL, "%s B=%d: prefill %d + %d decoding steps == prefill %d, worst rel err %.2e", name, B, T, K, N, worst);
    tu_check(bmojo_state_position(s) == N, "%s: position %lld after %d tokens", name, (long long)bmojo_state_position(s), N);

    /* 2. a prefill in uneven pieces */
    const int pieces[] = {1, 16, 3, 33, 64, 33};
    bmojo_state_reset(s);
    int at = 0;
    worst = 0;
    st = 0;
    float *piece = malloc(sizeof(float) * (size_t)B * 64 * V);
    int32_t *pid = malloc(sizeof(int32_t) * (size_t)B * 64);
    for (size_t p = 0; piece && pid && st == 0 && p < sizeof pieces / sizeof pieces[0]; p++) {
        int n = pieces[p];
        for (int b = 0; b < B; b++) memcpy(pid + (size_t)b * n, ids + (size_t)b * N + at, sizeof(int32_t) * n);
        st = bmojo_forward(m, s, pid, n, BMOJO_LOGITS_ALL, piece);
        for (int b = 0; st == 0 && b < B; b++) {
            double e = tu_rel_err(piece + (size_t)b * n * V, full + ((size_t)b * N + at) * V, (size_t)n * V);
            if (e > worst) worst = e;
        }
        at += n;
    }
    free(piece);
    free(pid);
    if (tu_status(st, "pieces")) tu_check(at == N && worst <= TOL, "%s B=%d: prefill in pieces 1+16+3+33+64+33 == one prefill, worst rel err %.2e", name, B, worst);

    /* 3. save after T tokens, continue, restore, continue again: bit for bit */
    pre = malloc(sizeof(int32_t) * (size_t)B * T);
    if (!pre) goto done;
    for (int b = 0; b < B; b++) memcpy(pre + (size_t)b * T, ids + (size_t)b * N, sizeof(int32_t) * T);
    bmojo_state_reset(s);
    st = bmojo_forward(m, s, pre, T, BMOJO_LOGITS_NONE, NULL);
    free(pre);
    if (st == 0) st = bmojo_state_save(s, &saved, &saved_n);
    if (st == 0) st = bmojo_state_save_file(s, path);
    for (int pass = 0; pass < 3 && st == 0; pass++) {
        bmojo_state *target = pass == 2 ? s2 : s;
        if (pass == 1) st = bmojo_state_restore(s, saved, saved_n);
        if (pass == 2) st = bmojo_state_restore_file(s2, path);
        for (int k = 0; st == 0 && k < K; k++) {
            for (int b = 0; b < B; b++) col[b] = ids[(size_t)b * N + T + k];
            st = bmojo_forward(m, target, col, 1, BMOJO_LOGITS_LAST, step);
            for (int b = 0; st == 0 && b < B; b++)
                memcpy((pass == 0 ? stepped : again) + ((size_t)b * K + k) * V, step + (size_t)b * V, V * sizeof(float));
        }
        if (pass > 0 && st == 0)
            tu_check(!memcmp(stepped, again, sizeof(float) * (size_t)B * K * V), "%s B=%d: restored state (%s) continues bit for bit",
                     name, B, pass == 1 ? "memory" : "file, fresh state");
    }
    tu_status(st, "save/restore");
    /* a state saved small (a fresh state after T tokens: full-attention caches at their first
     * capacity) restored into one whose caches have grown (s ran N more tokens) */
    if (st == 0) {
        bmojo_state *fresh = NULL;
        void *small = NULL;
        size_t small_n = 0;
        int32_t *pre2 = malloc(sizeof(int32_t) * (size_t)B * T);
        st = pre2 && tu_status(bmojo_state_create(m, B, &fresh), "state") ? 0 : BMOJO_ENOMEM;
        for (int b = 0; st == 0 && b < B; b++) memcpy(pre2 + (size_t)b * T, ids + (size_t)b * N, sizeof(int32_t) * T);
        if (st == 0) st = bmojo_forward(m, fresh, pre2, T, BMOJO_LOGITS_NONE, NULL);
        if (st == 0) st = bmojo_state_save(fresh, &small, &small_n);
        if (st == 0) st = bmojo_forward(m, s, ids, N, BMOJO_LOGITS_NONE, NULL); /* grow s */
        if (st == 0) st = bmojo_state_restore(s, small, small_n);
        for (int k = 0; st == 0 && k < K; k++) {
            for (int b = 0; b < B; b++) col[b] = ids[(size_t)b * N + T + k];
            st = bmojo_forward(m, s, col, 1, BMOJO_LOGITS_LAST, step);
            for (int b = 0; st == 0 && b < B; b++)
                memcpy(again + ((size_t)b * K + k) * V, step + (size_t)b * V, V * sizeof(float));
        }
        if (tu_status(st, "restore into a grown state"))
            tu_check(!memcmp(stepped, again, sizeof(float) * (size_t)B * K * V),
                     "%s B=%d: a state saved after %d tokens, restored into a state grown by %d more, continues bit for bit",
                     name, B, T, N);
        free(pre2);
        free(small);
        bmojo_state_free(fresh);
    }
    /* 4. bad saved states */
    if (saved && saved_n > 16) {
        st = bmojo_state_restore(s, saved, saved_n - 1);
        tu_check(st == BMOJO_EFORMAT, "%s: truncated saved state refused (%s)", name, bmojo_last_error());
        ((char *)saved)[0] ^= 1;
        st = bmojo_state_restore(s, saved, saved_n);
        tu_check(st == BMOJO_EFORMAT, "%s: saved state with a bad magic refused (%s)", name, bmojo_last_error());
        ((char *)saved)[0] ^= 1;
        bmojo_state *other = NULL;
        if (tu_status(bmojo_state_create(m, B + 1, &other), "state")) {
            st = bmojo_state_restore(other, saved, saved_n);
            tu_check(st == BMOJO_EINVAL, "%s: saved state of another batch size refused (%s)", name, bmojo_last_error());
            bmojo_state_free(other);
        }
    }
done:
    remove(path);
    free(saved);
    free(ids);
    free(col);
    free(full);
    free(step);
    free(stepped);
    free(again);
    bmojo_state_free(s);
    bmojo_state_free(s2);
    (void)rt;
}

/* Files in dir other than the names given (temporary files left behind), or -1. */
static int stray_files(const char *dir, const char *a, const char *b)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, a) && strcmp(e->d_name, b)) n++;
    closedir(d);
    return n;
}

static int file_equals(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char *buf = malloc(n + 1);
    int ok = buf && fread(buf, 1, n + 1, f) == n && !memcmp(buf, data, n);
    free(buf);
    fclose(f);
    return ok;
}

/* bmojo_state_save_file writes a temporary name of its own and renames it: a file or symlink at
 * "<path>.tmp" is not written through, and a failing save (the disk full: a file-size limit here,
 * which works for root too; the target a folder) leaves the old file whole and no temporary file. */
static void check_save_file_atomic(bmojo_model *m)
{
    char dir[] = "/tmp/bmojo-test-save-XXXXXX", path[300], tmp[320], victim[320], sub[320];
    bmojo_state *s = NULL;
    void *old = NULL, *now = NULL;
    size_t old_n = 0, now_n = 0;
    int32_t ids[5] = {1, 2, 3, 4, 5};
    if (!tu_check(mkdtemp(dir) != NULL, "save: a temporary folder")) return;
    snprintf(path, sizeof path, "%s/state.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(sub, sizeof sub, "%s/folder", dir);
    FILE *f = fopen(victim, "wb");
    if (f) {
        fputs("keep", f);
        fclose(f);
    }
    int st = tu_status(bmojo_state_create(m, 1, &s), "state") ? 0 : -1;
    if (!st) st = bmojo_forward(m, s, ids, 2, BMOJO_LOGITS_NONE, NULL);
    if (!st) st = bmojo_state_save_file(s, path);
    if (!st) st = bmojo_state_save(s, &old, &old_n);
    if (!st) st = bmojo_forward(m, s, ids + 2, 3, BMOJO_LOGITS_NONE, NULL);
    if (!st) st = bmojo_state_save(s, &now, &now_n);
    if (!tu_status(st, "save: states to compare")) goto done;
    tu_check(file_equals(path, old, old_n), "save_file writes what bmojo_state_save gives");

    /* a symlink at the old fixed temporary name */
    if (symlink(victim, tmp) != 0) tu_check(0, "save: symlink %s", tmp);
    st = bmojo_state_save_file(s, path);
    struct stat sb;
    tu_check(st == 0 && file_equals(path, now, now_n) && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
                 file_equals(victim, "keep", 4) && lstat(tmp, &sb) == 0 && S_ISLNK(sb.st_mode),
             "save_file with a symlink at <path>.tmp: the state file replaced, the symlink and its target untouched");

    /* a save that fails midway (file-size limit below the state's size, SIGXFSZ ignored: EFBIG) */
    if (!tu_status(bmojo_state_restore(s, old, old_n), "save: restore")) goto done;
    struct rlimit lim, small;
    getrlimit(RLIMIT_FSIZE, &lim);
    small = lim;
    small.rlim_cur = old_n / 2;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &small);
    st = bmojo_state_save_file(s, path);
    setrlimit(RLIMIT_FSIZE, &lim);
    signal(SIGXFSZ, prev);
    tu_check(st == BMOJO_EIO && file_equals(path, now, now_n) && stray_files(dir, "state.bin", "state.bin.tmp") == 1,
             "a save_file that fails writing (file-size limit %zu < %zu bytes) fails with EIO (%d), the old file whole, "
             "no temporary file left (%s)", old_n / 2, old_n, st, bmojo_last_error());

    /* the target a folder: the rename fails */
    if (mkdir(sub, 0700) != 0) tu_check(0, "save: mkdir %s", sub);
    st = bmojo_state_save_file(s, sub);
    tu_check(st == BMOJO_EIO && stray_files(dir, "state.bin", "state.bin.tmp") == 2,
             "save_file onto a folder fails with EIO (%d), no temporary file left: %s", st, bmojo_last_error());
done:
    free(old);
    free(now);
    bmojo_state_free(s);
    unlink(path);
    unlink(tmp);
    unlink(victim);
    rmdir(sub);
    rmdir(dir);
}

/* Restoring from a path that is not a regular file fails with a message naming it and its kind;
 * an open that blocks (a FIFO without a writer) ends the test through SIGALRM instead of hanging. */
static void check_restore_special(bmojo_model *m)
{
    bmojo_state *s = NULL;
    if (!tu_status(bmojo_state_create(m, 1, &s), "state")) return;
    char dir[128], fifo[160];
    snprintf(dir, sizeof dir, "/tmp/bmojo-test-state-special-%d", (int)getpid());
    snprintf(fifo, sizeof fifo, "%s/state.fifo", dir);
    if (tu_check(mkdir(dir, 0700) == 0 && mkfifo(fifo, 0600) == 0, "making a FIFO in %s", dir)) {
        const struct {
            const char *path, *kind;
        } cases[] = {{fifo, "is a FIFO"}, {dir, "is a folder"}, {"/dev/zero", "is a character device"}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            alarm(60);
            int st = bmojo_state_restore_file(s, cases[i].path);
            alarm(0);
            const char *e = bmojo_last_error();
            tu_check(st == BMOJO_EIO && strstr(e, cases[i].path) && strstr(e, cases[i].kind),
                     "state file %s: refused, \"%s\" (%s)", cases[i].path, cases[i].kind, e);
        }
    }
    remove(fifo);
    rmdir(dir);
    bmojo_state_free(s);
}

int main(void)
{
    const char *fx = tu_env("BMOJO_FIXTURES", "../shared/fixtures");
    const char *src = tu_env("BMOJO_SOURCE_ROOT", ".");
    bmojo_runtime *rt = NULL;
    if (!tu_status(bmojo_runtime_create(NULL, &rt), "opening the default device")) return tu_finish();
    const char *fixtures[] = {"hf/mamba-0", "hf/mistral-0", "hf/jamba-0", "bmojo/bmojo-small", "bmojo/bmojo-f-small"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", fx, fixtures[i]);
        bmojo_model *m = NULL;
        if (!tu_status(bmojo_model_load(rt, dir, &m), dir)) continue;
        check_model(rt, fixtures[i], m, i % 2 ? 2 : 1);
        if (i == 0) check_save_file_atomic(m);
        if (i == 0) check_restore_special(m);
        bmojo_model_free(m);
    }
    const char *configs[] = {"mamba-tiny", "swa-tiny", "jamba-tiny", "bmojo-tiny"};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/configs/%s.yaml", src, configs[i]);
        bmojo_model *m = NULL;
        if (!tu_status(bmojo_model_random(rt, path, 7 + i, &m), path)) continue;
        check_model(rt, configs[i], m, 3);
        bmojo_model_free(m);
    }
    bmojo_runtime_free(rt);
    tu_check_no_leaked_buffers();
    return tu_finish();
}
