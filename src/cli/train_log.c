/* train_log.c — `bmojo train`'s progress display and JSONL log (train_log.h). */
#include "train_log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"


int bm_train_log_open(bm_train_log *l, const char *path, int progress, int log_every)
{
    memset(l, 0, sizeof *l);
    l->f = fopen(path, "a");
    if (!l->f) return bm_fail(BMOJO_EIO, "cannot open the log %s: %s", path, strerror(errno));
    l->progress = progress;
    l->tty = isatty(STDERR_FILENO);
    l->log_every = log_every > 0 ? log_every : 10;
    return 0;
}

void bm_train_log_end_line(bm_train_log *l)
{
    if (l->bar_open) {
        fputc('\n', stderr);
        l->bar_open = 0;
    }
}

void bm_train_log_start(bm_train_log *l, const bm_train_run *r, bmojo_runtime *rt, int argc, char **argv,
                        const char *model)
{
    const bm_train_opts *o = &r->o;
    bmojo_device_desc dd;
    memset(&dd, 0, sizeof dd);
    bmojo_runtime_device(rt, &dd);
    char cmd[4096];
    cli_command_line(argc, argv, cmd, sizeof cmd);
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    FILE *f = l->f;
    fprintf(f, "{\"event\": \"start\", \"time\": \"%s\", \"step\": %lld, \"command\": ", when, (long long)r->step);
    cli_json_string(f, cmd);
    fputs(", \"commit\": ", f);
    cli_json_string(f, bmojo_build_commit());
    fputs(", \"device\": ", f);
    cli_json_string(f, dd.name);
    fputs(", \"driver\": ", f);
    cli_json_string(f, dd.driver_version);
    fputs(", \"model\": ", f);
    cli_json_string(f, model ? model : "");
    fputs(", \"data\": ", f);
    cli_json_string(f, o->data);
    fprintf(f,
            ", \"params\": %zu, \"batch\": %d, \"micro_batch\": %d, \"seq\": %d, \"steps\": %lld, \"lr\": %.9g, "
            "\"min_lr\": %.9g, \"warmup\": %lld, \"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, \"weight_decay\": %.9g, "
            "\"clip\": %.9g, \"seed\": %llu}\n",
            (size_t)r->tr->params.bytes / 4, o->batch, o->micro_batch, o->seq, (long long)o->steps, o->lr, o->min_lr,
            (long long)o->warmup, o->beta1, o->beta2, o->eps, o->weight_decay, o->clip, (unsigned long long)o->seed);
    fflush(f);
    if (l->progress)
        printf("training on %s: %s, %d x %d tokens per step, %lld steps from step %lld, commit %s\n", dd.name, o->data,
               o->batch, o->seq, (long long)o->steps, (long long)r->step, bmojo_build_commit());
    fflush(stdout);
    l->last_time = -1;
    l->last_tokens = r->tokens;
}

static void eta_str(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e8) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void bm_train_log_step(bm_train_log *l, const bm_train_run *r, const bm_train_step_info *s, double elapsed_s,
                       int64_t steps_here, double secs_here)
{
    /* tokens/s over the window since the last display, which smooths single steps */
    if (l->last_time < 0) {
        l->last_time = elapsed_s - secs_here;
        l->last_tokens = r->tokens - (uint64_t)steps_here * (uint64_t)r->o.batch * (uint64_t)r->o.seq;
    }
    double dt = elapsed_s - l->last_time;
    const int show_line = l->progress && !l->tty && (r->step % l->log_every == 0 || r->step == r->o.steps);
    const int redraw = l->progress && l->tty && dt >= 0.2;
    if (show_line || redraw || r->step == r->o.steps || dt >= 1.0) {
        if (dt > 0) l->tok_s = (double)(r->tokens - l->last_tokens) / dt;
        l->last_time = elapsed_s;
        l->last_tokens = r->tokens;
    }
    fprintf(l->f,
            "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %llu, "
            "\"tokens_per_s\": %.1f, \"elapsed_s\": %.3f, \"data_ms\": %.3f, \"pass_ms\": %.3f, \"optim_ms\": %.3f}\n",
            (long long)r->step, s->loss, s->lr, s->grad_norm, (unsigned long long)r->tokens, l->tok_s, elapsed_s,
            1e3 * s->data_s, 1e3 * s->pass_s, 1e3 * s->optim_s);
    fflush(l->f);
    if (!l->progress) return;
    char eta[32];
    eta_str(steps_here > 0 ? secs_here / (double)steps_here * (double)(r->o.steps - r->step) : -1, eta, sizeof eta);
    if (redraw || (l->tty && r->step == r->o.steps)) {
        const int width = 24, fill = (int)((double)width * (double)r->step / (double)r->o.steps);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  eta %s\x1b[K", bar, (long long)r->step,
                (long long)r->o.steps, s->loss, s->lr, l->tok_s, eta);
        fflush(stderr);
        l->bar_open = 1;
    } else if (show_line) {
        printf("step %lld/%lld | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | %.1f s | eta %s\n",
               (long long)r->step, (long long)r->o.steps, s->loss, s->lr, s->grad_norm, l->tok_s, elapsed_s, eta);
        fflush(stdout);
    }
}

void bm_train_log_eval(bm_train_log *l, const bm_train_run *r, const bm_train_eval_info *e, double elapsed_s)
{
    fprintf(l->f,
            "{\"step\": %lld, \"eval_loss\": %.9g, \"eval_ppl\": %.9g, \"eval_accuracy\": %.9g, \"eval_exact\": %.9g, "
            "\"eval_rows\": %llu, \"eval_scored\": %llu, \"elapsed_s\": %.3f}\n",
            (long long)r->step, e->loss, e->ppl, e->accuracy, e->exact, (unsigned long long)e->rows,
            (unsigned long long)e->scored, elapsed_s);
    fflush(l->f);
    if (!l->progress) return;
    bm_train_log_end_line(l);
    printf("eval at step %lld: loss %.4f | ppl %.3f | accuracy %.4f | exact %.4f (%llu rows, %llu scored)\n",
           (long long)r->step, e->loss, e->ppl, e->accuracy, e->exact, (unsigned long long)e->rows,
           (unsigned long long)e->scored);
    fflush(stdout);
}

void bm_train_log_checkpoint(bm_train_log *l, const bm_train_run *r, const char *path)
{
    fprintf(l->f, "{\"step\": %lld, \"checkpoint\": ", (long long)r->step);
    cli_json_string(l->f, path);
    fputs("}\n", l->f);
    fflush(l->f);
    if (!l->progress) return;
    bm_train_log_end_line(l);
    printf("checkpoint: %s\n", path);
    fflush(stdout);
}

static void log_note_line(bm_train_log *l, const char *msg)
{
    if (!l->f) return;
    fputs("{\"note\": ", l->f);
    cli_json_string(l->f, msg);
    fputs("}\n", l->f);
    fflush(l->f);
}

void bm_train_log_failure(bm_train_log *l, const char *doing, const char *detail)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "failed while %s: %s", doing, detail);
    log_note_line(l, msg);
}

void bm_train_log_note(bm_train_log *l, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_note_line(l, msg);
    bm_train_log_end_line(l);
    printf("%s\n", msg);
    fflush(stdout);
}

void bm_train_log_close(bm_train_log *l)
{
    bm_train_log_end_line(l);
    if (l->f) fclose(l->f);
    l->f = NULL;
}
