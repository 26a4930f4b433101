/* train_run.c — a training run (train_run.h): options checked, steps with gradient accumulation,
 * evaluation, and checkpoint folders written atomically and read back for a resume. */
#include "train_run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "file_read.h"
#include "file_write.h"
#include "json.h"

#define STATE_FILE "train_state.json"
#define OPTIM_FILE "optimizer.safetensors"
#define STATE_FORMAT "bmojo-train-state"
#define STATE_VERSION 1

static int check_opts(const bm_train_opts *o, int vocab)
{
    (void)vocab;
    if (o->batch < 1) return bm_fail(BMOJO_EINVAL, "batch size %d: must be >= 1", o->batch);
    if (o->micro_batch < 1 || o->micro_batch > o->batch || o->batch % o->micro_batch)
        return bm_fail(BMOJO_EINVAL, "micro-batch %d: must divide the batch size %d", o->micro_batch, o->batch);
    if (o->seq < 1) return bm_fail(BMOJO_EINVAL, "sequence length %d: must be >= 1", o->seq);
    if (o->steps < 1) return bm_fail(BMOJO_EINVAL, "steps %lld: must be >= 1", (long long)o->steps);
    if (!(o->lr > 0) || !isfinite(o->lr)) return bm_fail(BMOJO_EINVAL, "learning rate %g: must be > 0", o->lr);
    if (!(o->min_lr >= 0) || o->min_lr > o->lr)
        return bm_fail(BMOJO_EINVAL, "minimum learning rate %g: must be in [0, lr = %g]", o->min_lr, o->lr);
    if (o->warmup < 0) return bm_fail(BMOJO_EINVAL, "warm-up %lld: must be >= 0", (long long)o->warmup);
    if (!(o->beta1 >= 0 && o->beta1 < 1)) return bm_fail(BMOJO_EINVAL, "beta1 %g: must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1)) return bm_fail(BMOJO_EINVAL, "beta2 %g: must be in [0, 1)", o->beta2);
    if (!(o->eps > 0) || !isfinite(o->eps)) return bm_fail(BMOJO_EINVAL, "eps %g: must be > 0", o->eps);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return bm_fail(BMOJO_EINVAL, "weight decay %g: must be >= 0", o->weight_decay);
    if (!isfinite(o->clip)) return bm_fail(BMOJO_EINVAL, "gradient clip %g: must be finite (0: off)", o->clip);
    return 0;
}

int bm_train_run_open(bm_train_run *r, bm_trainer *tr, const bm_train_opts *o)
{
    memset(r, 0, sizeof *r);
    if (!tr || !o) return bm_fail(BMOJO_EINVAL, "bm_train_run_open: NULL argument");
    int st = check_opts(o, tr->cfg.vocab_size);
    if (st) return st;
    r->rt = tr->rt;
    r->tr = tr;
    r->o = *o;
    if ((st = bm_data_open(&r->data, o->data, tr->cfg.vocab_size, o->seed))) return bm_fail_context(st, "--data");
    const int fixed = bm_data_seq(&r->data);
    if (fixed && fixed != o->seq) {
        bm_data_close(&r->data);
        return bm_fail(BMOJO_EINVAL, "sequence length %d: the data fixes it at %d (its seq=)", o->seq, fixed);
    }
    /* the spec as the data source understood it, every default filled in: what a resume reopens */
    if (bm_data_describe(&r->data, r->o.data, sizeof r->o.data) >= (int)sizeof r->o.data) {
        bm_data_close(&r->data);
        return bm_fail(BMOJO_EINVAL, "--data: the spec is longer than %d bytes", BM_TRAIN_SPEC_MAX - 1);
    }
    size_t n = (size_t)o->batch * (size_t)o->seq;
    r->ids = malloc(n * sizeof *r->ids);
    r->targets = malloc(n * sizeof *r->targets);
    r->hits = malloc(n * sizeof *r->hits);
    if (!r->ids || !r->targets || !r->hits) {
        bm_train_run_close(r);
        return bm_fail(BMOJO_ENOMEM, "out of host memory for a batch of %d x %d", o->batch, o->seq);
    }
    if ((st = bm_optim_init(&r->opt, r->rt, &tr->params))) {
        bm_train_run_close(r);
        return bm_fail_context(st, "the optimizer state");
    }
    return 0;
}

void bm_train_run_close(bm_train_run *r)
{
    if (!r) return;
    bm_optim_free(&r->opt);
    bm_data_close(&r->data);
    free(r->ids);
    free(r->targets);
    free(r->hits);
    r->ids = r->targets = r->hits = NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bm_train_run_step(bm_train_run *r, bm_train_step_info *info)
{
    const double t_start = now_s();
    const bm_train_opts *o = &r->o;
    const int micro = o->micro_batch, accum = o->batch / o->micro_batch, T = o->seq;
    const size_t per = (size_t)micro * (size_t)T;
    /* the whole step's data first: its scored count weights every micro-batch's gradient */
    int st = 0;
    for (int k = 0; k < accum && !st; k++)
        st = bm_data_batch(&r->data, (uint64_t)r->step * (uint64_t)accum + (uint64_t)k, micro, T, r->ids + k * per,
                           r->targets + k * per);
    if (st) return bm_fail_context(st, "data of step %lld", (long long)r->step + 1);
    const double t_data = now_s();
    const uint64_t scored = bm_data_scored(r->targets, (size_t)accum * per);
    if (scored == 0) return bm_fail(BMOJO_EINVAL, "step %lld: the batch has no target to score", (long long)r->step + 1);
    if ((st = bm_params_zero_grads(&r->tr->params, r->rt))) return st;
    double loss_sum = 0;
    for (int k = 0; k < accum && !st; k++) {
        bm_train_stats s;
        st = bm_trainer_pass(r->tr, r->ids + k * per, r->targets + k * per, micro, T, 1, 1.0 / (double)scored, &s, NULL);
        loss_sum += s.loss_sum;
    }
    if (st) return bm_fail_context(st, "step %lld", (long long)r->step + 1);
    const double t_pass = now_s(); /* the loss sums were read back: the passes are done */
    const double loss = loss_sum / (double)scored;
    if (!isfinite(loss))
        return bm_fail(BMOJO_ERANGE, "the loss is %g at step %lld (learning rate %g): training diverged", loss,
                       (long long)r->step + 1, bm_lr_schedule(&(bm_lr_sched){o->lr, o->min_lr, o->warmup, o->steps}, r->step));
    const bm_lr_sched sched = {o->lr, o->min_lr, o->warmup, o->steps};
    const double lr = bm_lr_schedule(&sched, r->step);
    bm_adamw_args hp = {.lr = lr, .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps, .weight_decay = o->weight_decay,
                        .t = r->step + 1};
    float norm = 0;
    if ((st = bm_optim_step(&r->opt, &r->tr->params, &hp, (float)o->clip)) || (st = bm_optim_grad_norm(&r->opt, &norm)))
        return bm_fail_context(st, "optimizer step %lld", (long long)r->step + 1);
    if (!isfinite(norm))
        return bm_fail(BMOJO_ERANGE, "the gradient norm is %g at step %lld (loss %g): training diverged", (double)norm,
                       (long long)r->step + 1, loss);
    r->step++;
    r->tokens += (uint64_t)o->batch * (uint64_t)T;
    const double t_end = now_s(); /* the norm was read back: the optimizer is done */
    if (info) *info = (bm_train_step_info){loss, lr, norm, scored, t_data - t_start, t_pass - t_data, t_end - t_pass};
    return 0;
}

/* The evaluation loop over caller-provided host buffers of [B, T]. */
static int eval_rows(bm_trainer *tr, const bm_data_source *data, int B, int T, uint64_t max_rows, int32_t *ids,
                     int32_t *targets, int32_t *hits, bm_train_eval_info *info)
{
    uint64_t rows = bm_data_eval_rows(data, T);
    if (max_rows && rows > max_rows) rows = max_rows;
    if (rows == 0) return bm_fail(BMOJO_EINVAL, "evaluation: no rows of %d tokens in the evaluation data", T);
    bm_data_accuracy acc = {0};
    double loss_sum = 0;
    int st = 0;
    for (uint64_t b = 0; (uint64_t)b * (uint64_t)B < rows && !st; b++) {
        int real = 0;
        if ((st = bm_data_eval_batch(data, b, B, T, ids, targets, &real))) break;
        /* rows past max_rows score nothing (the batch keeps its shape, so the arena is reused) */
        uint64_t left = rows - b * (uint64_t)B;
        if ((uint64_t)real > left) real = (int)left;
        for (size_t i = (size_t)real * (size_t)T; i < (size_t)B * (size_t)T; i++) targets[i] = -1;
        bm_train_stats s;
        if ((st = bm_trainer_pass(tr, ids, targets, B, T, 0, 0.0, &s, hits))) break;
        loss_sum += s.loss_sum;
        bm_data_accuracy_add(&acc, targets, hits, real, T);
    }
    if (st) return bm_fail_context(st, "evaluation");
    if (acc.scored == 0) return bm_fail(BMOJO_EINVAL, "evaluation: nothing to score");
    const double loss = loss_sum / (double)acc.scored;
    *info = (bm_train_eval_info){loss, exp(loss), (double)acc.correct / (double)acc.scored,
                                 acc.examples ? (double)acc.examples_correct / (double)acc.examples : 0.0, rows,
                                 acc.scored};
    return 0;
}

int bm_train_evaluate(bm_trainer *tr, const bm_data_source *data, int B, int T, uint64_t max_rows,
                      bm_train_eval_info *info)
{
    if (!tr || !data || !info) return bm_fail(BMOJO_EINVAL, "bm_train_evaluate: NULL argument");
    if (B < 1 || T < 1) return bm_fail(BMOJO_EINVAL, "evaluation: batch %d x %d tokens (each must be >= 1)", B, T);
    size_t n = (size_t)B * (size_t)T;
    int32_t *ids = malloc(n * sizeof *ids), *targets = malloc(n * sizeof *targets), *hits = malloc(n * sizeof *hits);
    int st = ids && targets && hits ? eval_rows(tr, data, B, T, max_rows, ids, targets, hits, info)
                                    : bm_fail(BMOJO_ENOMEM, "out of host memory for a batch of %d x %d", B, T);
    free(ids);
    free(targets);
    free(hits);
    return st;
}

int bm_train_run_eval(bm_train_run *r, uint64_t max_rows, bm_train_eval_info *info)
{
    return eval_rows(r->tr, &r->data, r->o.micro_batch, r->o.seq, max_rows, r->ids, r->targets, r->hits, info);
}


/* ---- checkpoints ---- */

int bm_train_dir_check(const char *run_dir)
{
    if (!run_dir || !*run_dir) return bm_fail(BMOJO_EINVAL, "no output folder given");
    /* mkdir -p: the folders above it too */
    char part[4096];
    if (strlen(run_dir) >= sizeof part) return bm_fail(BMOJO_EINVAL, "the run folder's path is too long");
    for (size_t i = 1; run_dir[i]; i++) {
        if (run_dir[i] != '/') continue;
        memcpy(part, run_dir, i);
        part[i] = 0;
        if (mkdir(part, 0755) != 0 && errno != EEXIST)
            return bm_fail(BMOJO_EIO, "cannot create the run folder %s (at %s): %s", run_dir, part, strerror(errno));
    }
    if (mkdir(run_dir, 0755) != 0 && errno != EEXIST)
        return bm_fail(BMOJO_EIO, "cannot create the run folder %s: %s", run_dir, strerror(errno));
    struct stat sb;
    if (stat(run_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return bm_fail(BMOJO_EIO, "the run folder %s is not a folder", run_dir);
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/.bmojo-write-check.%ld", run_dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return bm_fail(BMOJO_EIO, "cannot write in the run folder %s: %s", run_dir, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

/* Removes a checkpoint folder of ours: its files (and any temporary left by an interrupted write),
 * then the folder; anything else found there stays, with the folder. */
static void remove_checkpoint(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
        int ours = !strcmp(n, "config.yaml") || !strcmp(n, "model.safetensors") || !strcmp(n, OPTIM_FILE) ||
                   !strcmp(n, STATE_FILE) || strstr(n, ".tmp.");
        if (!ours) continue;
        snprintf(path, sizeof path, "%s/%s", dir, n);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int is_step_name(const char *n, long long *step)
{
    if (strncmp(n, "step-", 5) != 0) return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(n + 5, &end, 10);
    if (errno || end == n + 5 || *end || v < 0) return 0;
    *step = v;
    return 1;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Removes all but the newest `keep` step folders (never `current`). */
static void prune(const char *run_dir, int keep, long long current)
{
    DIR *d = opendir(run_dir);
    if (!d) return;
    long long *steps = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        if (!is_step_name(e->d_name, &s)) continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            long long *p = realloc(steps, nc * sizeof *p);
            if (!p) break;
            steps = p;
            cap = nc;
        }
        steps[n++] = s;
    }
    closedir(d);
    if (n > (size_t)keep) {
        qsort(steps, n, sizeof *steps, cmp_ll);
        char path[4096];
        for (size_t i = 0; i + (size_t)keep < n; i++) {
            if (steps[i] == current) continue;
            snprintf(path, sizeof path, "%s/step-%08lld", run_dir, steps[i]);
            remove_checkpoint(path);
        }
    }
    free(steps);
}

/* A failure injected by the tests where no real one can be provoked portably (a disk filling up
 * half-way through a checkpoint): BMOJO_TEST_FAULT names the point. */
static int injected_fault(const char *point)
{
    const char *f = getenv("BMOJO_TEST_FAULT");
    return f && !strcmp(f, point);
}

static int write_state(const bm_train_run *r, const char *path, double elapsed_s, const char *extra_json)
{
    const bm_train_opts *o = &r->o;
    /* the data spec is ours (bm_data_describe): keys, numbers and a path; escape quotes and
     * backslashes so any path survives */
    char spec[2 * BM_TRAIN_SPEC_MAX];
    size_t k = 0;
    for (const char *p = o->data; *p && k + 2 < sizeof spec; p++) {
        if (*p == '"' || *p == '\\') spec[k++] = '\\';
        spec[k++] = *p;
    }
    spec[k] = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    fprintf(f,
            "{\"format\": \"%s\", \"version\": %d,\n \"step\": %lld, \"tokens\": %llu, \"elapsed_s\": %.17g,\n"
            " \"data\": \"%s\", \"batch\": %d, \"micro_batch\": %d, \"seq\": %d, \"steps\": %lld,\n"
            " \"lr\": %.17g, \"min_lr\": %.17g, \"warmup\": %lld, \"beta1\": %.17g, \"beta2\": %.17g, \"eps\": %.17g,\n"
            " \"weight_decay\": %.17g, \"clip\": %.17g, \"seed\": %llu,\n \"commit\": \"%s\"%s}\n",
            STATE_FORMAT, STATE_VERSION, (long long)r->step, (unsigned long long)r->tokens, elapsed_s, spec, o->batch,
            o->micro_batch, o->seq, (long long)o->steps, o->lr, o->min_lr, (long long)o->warmup, o->beta1, o->beta2,
            o->eps, o->weight_decay, o->clip, (unsigned long long)o->seed, bmojo_build_commit(),
            extra_json ? extra_json : "");
    if (fclose(f) != 0) {
        free(buf);
        return bm_fail(BMOJO_ENOMEM, "out of host memory");
    }
    int st = bm_write_file_atomic(path, buf, len, 0644);
    free(buf);
    return st;
}

int bm_train_run_save(bm_train_run *r, const char *run_dir, int keep, double elapsed_s, const char *extra_json,
                      char *out_path, size_t out_len)
{
    if (keep < 1) keep = 1;
    int st = bm_train_dir_check(run_dir);
    if (st) return st;
    char name[64], tmp[4096], final[4096], old[4096], path[4096 + 64];
    snprintf(name, sizeof name, "step-%08lld", (long long)r->step);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", run_dir, name, (long)getpid());
    snprintf(final, sizeof final, "%s/%s", run_dir, name);
    snprintf(old, sizeof old, "%s/.%s.old.%ld", run_dir, name, (long)getpid());
    remove_checkpoint(tmp); /* a leftover of an earlier attempt of this process id */
    if (mkdir(tmp, 0755) != 0)
        return bm_fail(BMOJO_EIO, "cannot create the checkpoint folder %s: %s", tmp, strerror(errno));
    st = bmojo_trainer_save(r->tr, tmp);
    if (!st && injected_fault("checkpoint-after-model"))
        st = bm_fail(BMOJO_EIO, "injected failure after the model file (BMOJO_TEST_FAULT=checkpoint-after-model)");
    if (!st) {
        snprintf(path, sizeof path, "%s/%s", tmp, OPTIM_FILE);
        st = bm_optim_save(&r->opt, r->rt, &r->tr->params, path);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/%s", tmp, STATE_FILE);
        st = write_state(r, path, elapsed_s, extra_json);
    }
    if (st) {
        remove_checkpoint(tmp);
        return bm_fail_context(st, "writing checkpoint %s", final);
    }
    fsync_dir(tmp);
    /* a checkpoint of this step already there (a resume saving again) goes aside first, and only
     * after the new one is in place is it removed */
    int had_old = rename(final, old) == 0;
    if (rename(tmp, final) != 0) {
        int e = errno;
        if (had_old) rename(old, final);
        remove_checkpoint(tmp);
        return bm_fail(BMOJO_EIO, "cannot move checkpoint %s into place: %s", final, strerror(e));
    }
    fsync_dir(run_dir);
    if (had_old) remove_checkpoint(old);
    /* latest -> step-N, replaced atomically */
    char link_tmp[4096], link_final[4096];
    snprintf(link_tmp, sizeof link_tmp, "%s/.latest.tmp.%ld", run_dir, (long)getpid());
    snprintf(link_final, sizeof link_final, "%s/latest", run_dir);
    unlink(link_tmp);
    if (symlink(name, link_tmp) != 0 || rename(link_tmp, link_final) != 0) {
        int e = errno;
        unlink(link_tmp);
        return bm_fail(BMOJO_EIO, "cannot point %s at %s: %s", link_final, name, strerror(e));
    }
    fsync_dir(run_dir);
    prune(run_dir, keep, (long long)r->step);
    if (out_path) snprintf(out_path, out_len, "%s", final);
    return 0;
}

int bm_train_checkpoint_resolve(const char *dir, char *out, size_t n)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE);
    if (stat(path, &sb) == 0) {
        snprintf(out, n, "%s", dir);
        return 0;
    }
    snprintf(path, sizeof path, "%s/latest/%s", dir, STATE_FILE);
    if (stat(path, &sb) == 0) {
        snprintf(out, n, "%s/latest", dir);
        return 0;
    }
    return bm_fail(BMOJO_EIO, "%s is not a checkpoint (no %s) nor a run folder with one (no latest/%s)", dir,
                   STATE_FILE, STATE_FILE);
}

/* A member that must be a number (integer when `integer`), in [lo, hi]. */
static int get_num(const bm_json *root, const char *path, const char *key, int integer, double lo, double hi,
                   double *out)
{
    const bm_json *v = bm_json_get(root, key);
    if (!v || v->type != BM_JSON_NUMBER || (integer && !v->is_integer) || !(v->number >= lo && v->number <= hi))
        return bm_fail(BMOJO_EFORMAT, "%s: \"%s\" is missing or not %s in [%g, %g]", path, key,
                       integer ? "an integer" : "a number", lo, hi);
    *out = v->number;
    return 0;
}

int bm_train_checkpoint_read(const char *ckpt, bm_train_opts *o, int64_t *step, uint64_t *tokens, double *elapsed_s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ckpt, STATE_FILE);
    char *text = NULL;
    size_t len = 0;
    int st = bm_read_file(path, 1 << 20, &text, &len);
    if (st) return st;
    bm_json *root = NULL;
    char err[256];
    st = bm_json_parse(text, len, &root, err, sizeof err);
    free(text);
    if (st) {
        bm_json_free(root);
        return bm_fail(BMOJO_EFORMAT, "%s: %s", path, err);
    }
    const bm_json *fmt = bm_json_get(root, "format"), *data = bm_json_get(root, "data");
    double v[16];
    memset(o, 0, sizeof *o);
    if (root->type != BM_JSON_OBJECT || !fmt || fmt->type != BM_JSON_STRING || strcmp(fmt->string, STATE_FORMAT))
        st = bm_fail(BMOJO_EFORMAT, "%s: not a bmojo training state (\"format\": \"%s\")", path, STATE_FORMAT);
    else if ((st = get_num(root, path, "version", 1, STATE_VERSION, STATE_VERSION, &v[0])))
        ;
    else if (!data || data->type != BM_JSON_STRING || data->string_len >= sizeof o->data ||
             strlen(data->string) != data->string_len)
        st = bm_fail(BMOJO_EFORMAT, "%s: \"data\" is missing or not a data spec", path);
    else if (!(st = get_num(root, path, "step", 1, 0, 9e15, &v[1])) &&
             !(st = get_num(root, path, "tokens", 1, 0, 9e15, &v[2])) &&
             !(st = get_num(root, path, "elapsed_s", 0, 0, 1e12, &v[3])) &&
             !(st = get_num(root, path, "batch", 1, 1, 1 << 30, &v[4])) &&
             !(st = get_num(root, path, "micro_batch", 1, 1, 1 << 30, &v[5])) &&
             !(st = get_num(root, path, "seq", 1, 1, 1 << 30, &v[6])) &&
             !(st = get_num(root, path, "steps", 1, 1, 9e15, &v[7])) &&
             !(st = get_num(root, path, "lr", 0, 0, 1e30, &v[8])) &&
             !(st = get_num(root, path, "min_lr", 0, 0, 1e30, &v[9])) &&
             !(st = get_num(root, path, "warmup", 1, 0, 9e15, &v[10])) &&
             !(st = get_num(root, path, "beta1", 0, 0, 1, &v[11])) &&
             !(st = get_num(root, path, "beta2", 0, 0, 1, &v[12])) &&
             !(st = get_num(root, path, "eps", 0, 0, 1, &v[13])) &&
             !(st = get_num(root, path, "weight_decay", 0, 0, 1e30, &v[14])) &&
             !(st = get_num(root, path, "clip", 0, -1e30, 1e30, &v[15]))) {
        const bm_json *seed = bm_json_get(root, "seed");
        if (!seed || seed->type != BM_JSON_NUMBER || !seed->is_integer || seed->integer < 0)
            st = bm_fail(BMOJO_EFORMAT, "%s: \"seed\" is missing or not a non-negative integer", path);
        else {
            snprintf(o->data, sizeof o->data, "%s", data->string);
            *step = (int64_t)v[1];
            *tokens = (uint64_t)v[2];
            *elapsed_s = v[3];
            o->batch = (int)v[4];
            o->micro_batch = (int)v[5];
            o->seq = (int)v[6];
            o->steps = (int64_t)v[7];
            o->lr = v[8];
            o->min_lr = v[9];
            o->warmup = (int64_t)v[10];
            o->beta1 = v[11];
            o->beta2 = v[12];
            o->eps = v[13];
            o->weight_decay = v[14];
            o->clip = v[15];
            o->seed = (uint64_t)seed->integer;
        }
    }
    bm_json_free(root);
    return st;
}

int bm_train_run_restore(bm_train_run *r, const char *ckpt, int64_t step, uint64_t tokens, double elapsed_s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ckpt, OPTIM_FILE);
    int st = bm_optim_load(&r->opt, r->rt, &r->tr->params, path);
    if (st) return st;
    if (r->opt.step != step)
        return bm_fail(BMOJO_EFORMAT, "%s: the optimizer is at step %lld but %s says %lld (files of different checkpoints)",
                       ckpt, (long long)r->opt.step, STATE_FILE, (long long)step);
    r->step = step;
    r->tokens = tokens;
    r->elapsed_s = elapsed_s;
    return 0;
}
