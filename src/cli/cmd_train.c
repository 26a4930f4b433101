/* cmd_train.c — `bmojo train`: a training run on a YAML stack (random init) or a model folder,
 * with a progress bar on a terminal (plain lines otherwise), a JSONL log, periodic evaluation,
 * checkpoints every N steps and at the end, --resume, and Ctrl-C that saves and stops. The loop's
 * pieces are in the library (src/train_run.h); this file is the command around them. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "train_log.h"
#include "train_run.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
    /* a second Ctrl-C stops at once */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

static int usage(void)
{
    printf("usage: bmojo train --config STACK.yaml | -m MODEL_DIR | --resume RUN_DIR  [options]\n"
           "  --data SPEC          mqar[:vocab=,seq=,pairs=,power_a=,seed=,test_seed=,test=]\n"
           "                       or tokens:TRAIN.bin[,val=VAL.bin,seed=N] (docs/training.md)\n"
           "  -o, --out DIR        run folder: checkpoints DIR/step-N, DIR/latest, log DIR/train.jsonl\n"
           "  -b, --batch N        sequences per optimizer step (default 32)\n"
           "  --micro-batch N      sequences per pass; the batch accumulates N at a time (default: batch)\n"
           "  -T, --seq N          tokens per sequence (default: MQAR's seq, else 256)\n"
           "  --steps N | --tokens N   length of the run (optimizer steps, or tokens rounded up to steps)\n"
           "  --lr X               peak learning rate (default 1e-3)\n"
           "  --min-lr X           final learning rate of the cosine decay (default lr / 10)\n"
           "  --warmup N           linear warm-up steps (default 0)\n"
           "  --weight-decay X     AdamW's decoupled decay on matrices and embeddings (default 0.1)\n"
           "  --beta1 X --beta2 X --eps X   AdamW (defaults 0.9, 0.95, 1e-8)\n"
           "  --clip X             clip the global gradient norm at X (default 1; 0: off)\n"
           "  --seed N             data seed, and the random init's with --config (default 1)\n"
           "  --eval-every N       evaluate every N steps (default 0: at the end only)\n"
           "  --eval-rows N        at most N evaluation rows (default 0: the whole set)\n"
           "  --stop-accuracy X    stop after an evaluation reaching accuracy X (0..1)\n"
           "  --save-every N       checkpoint every N steps (default 0: at the end only)\n"
           "  --keep N             step folders kept in the run folder (default 2)\n"
           "  --log FILE           JSONL log (default RUN_DIR/train.jsonl; appended to)\n"
           "  --log-every N        a plain progress line every N steps when not on a terminal (default 10)\n"
           "  --no-progress        no progress bar or lines (the log is still written)\n"
           "  --device SPEC        OpenCL device\n" CLI_MODEL_OPTIONS_HELP
           "With --resume, the options come from the checkpoint; only --steps (a longer run changes the\n"
           "schedule), --eval-*, --stop-accuracy, --save-every, --keep, --log*, -o and --device may be given.\n"
           "Ctrl-C saves a checkpoint and exits with status 130; a loss that is not finite stops the run.\n");
    return CLI_OK;
}

typedef struct {
    const char *flag;
    int given;
} flag_seen;

int cmd_train(int argc, char **argv)
{
    cli_model_opts mo = {0};
    const char *resume = NULL, *out = NULL, *log_path = NULL, *data = NULL;
    long long batch = 32, micro = 0, seq = 0, steps = 0, tokens = 0, warmup = 0, seed = 1;
    long long eval_every = 0, eval_rows = 0, save_every = 0, keep = 2, log_every = 10;
    double lr = 1e-3, min_lr = -1, wd = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, clip = 1.0, stop_acc = -1;
    int progress = 1;
    const char *hyper_flag = NULL; /* a training option given (refused with --resume) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_option(&mo, argc, argv, &i);
        if (r < 0) return CLI_USAGE;
        if (r > 0) {
            if (strcmp(a, "--device")) hyper_flag = a;
            continue;
        }
        const char *v = NULL;
#define VALUE() \
    if (!(v = cli_value(argc, argv, &i))) return CLI_USAGE
#define INT_OPT(name, var, lo, hi, hyper)                                  \
    else if (!strcmp(a, name)) {                                           \
        VALUE();                                                           \
        if (cli_parse_int(a, v, (lo), (hi), &(var))) return CLI_USAGE;     \
        if (hyper) hyper_flag = a;                                         \
    }
#define FLOAT_OPT(name, var, lo, hi)                                       \
    else if (!strcmp(a, name)) {                                           \
        VALUE();                                                           \
        if (cli_parse_float(a, v, (lo), (hi), &(var))) return CLI_USAGE;   \
        hyper_flag = a;                                                    \
    }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage();
        else if (!strcmp(a, "--resume")) {
            VALUE();
            resume = v;
        } else if (!strcmp(a, "--data")) {
            VALUE();
            data = v;
            hyper_flag = a;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            VALUE();
            out = v;
        } else if (!strcmp(a, "--log")) {
            VALUE();
            log_path = v;
        } else if (!strcmp(a, "--no-progress"))
            progress = 0;
        else if (!strcmp(a, "--micro-batch")) {
            VALUE();
            if (cli_parse_int(a, v, 1, 1 << 24, &micro)) return CLI_USAGE;
            hyper_flag = a;
        }
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            VALUE();
            if (cli_parse_int(a, v, 1, 1 << 24, &batch)) return CLI_USAGE;
            hyper_flag = a;
        } else if (!strcmp(a, "-T") || !strcmp(a, "--seq")) {
            VALUE();
            if (cli_parse_int(a, v, 1, 1 << 24, &seq)) return CLI_USAGE;
            hyper_flag = a;
        }
        INT_OPT("--steps", steps, 1, (long long)1 << 50, 0)
        INT_OPT("--tokens", tokens, 1, (long long)1 << 60, 1)
        INT_OPT("--warmup", warmup, 0, (long long)1 << 50, 1)
        INT_OPT("--seed", seed, 0, (long long)1 << 62, 1)
        INT_OPT("--eval-every", eval_every, 0, (long long)1 << 50, 0)
        INT_OPT("--eval-rows", eval_rows, 0, (long long)1 << 50, 0)
        INT_OPT("--save-every", save_every, 0, (long long)1 << 50, 0)
        INT_OPT("--keep", keep, 1, 1 << 20, 0)
        INT_OPT("--log-every", log_every, 1, (long long)1 << 50, 0)
        FLOAT_OPT("--lr", lr, -1e30, 1e30)
        FLOAT_OPT("--min-lr", min_lr, -1e30, 1e30)
        FLOAT_OPT("--weight-decay", wd, -1e30, 1e30)
        FLOAT_OPT("--beta1", beta1, -1e30, 1e30)
        FLOAT_OPT("--beta2", beta2, -1e30, 1e30)
        FLOAT_OPT("--eps", eps, -1e30, 1e30)
        FLOAT_OPT("--clip", clip, 0, 1e30)
        else if (!strcmp(a, "--stop-accuracy")) {
            VALUE();
            if (cli_parse_float(a, v, 0, 1, &stop_acc)) return CLI_USAGE;
        } else return cli_usage_error("train: unknown option '%s'", a);
#undef VALUE
#undef INT_OPT
#undef FLOAT_OPT
    }
    if (cli_refuse_f16_weights(&mo, "train")) return CLI_USAGE;
    if (resume) {
        if (hyper_flag)
            return cli_usage_error("train: %s cannot be given with --resume (the checkpoint holds the run's options)",
                                   hyper_flag);
    } else {
        if (!mo.model_dir == !mo.config)
            return cli_usage_error("train: give exactly one of --config STACK.yaml, -m MODEL_DIR or --resume RUN_DIR");
        if (!data) return cli_usage_error("train: --data SPEC is required (e.g. --data mqar or --data tokens:train.bin)");
        if (!out) return cli_usage_error("train: -o RUN_DIR is required (checkpoints and the log go there)");
        if (!steps == !tokens) return cli_usage_error("train: give exactly one of --steps N or --tokens N");
        if (!(lr > 0)) return cli_usage_error("train: --lr %g: the learning rate must be > 0", lr);
        if (micro == 0) micro = batch;
        if (micro > batch || batch % micro)
            return cli_usage_error("train: --micro-batch %lld must divide the batch size %lld", micro, batch);
    }

    int rc = CLI_FAIL, st = 0;
    const char *doing = "opening the OpenCL device";
    bmojo_runtime *rt = NULL;
    bmojo_trainer *tr = NULL;
    bm_train_run run;
    int run_open = 0;
    bm_train_log lg = {0};
    char ckpt[4096] = "", run_dir[4096] = "", saved[4096] = "";
    bm_train_opts o = {0};
    int64_t r_step = 0;
    uint64_t r_tokens = 0;
    double r_elapsed = 0;
    if (resume) {
        doing = "reading the checkpoint";
        if ((st = bm_train_checkpoint_resolve(resume, ckpt, sizeof ckpt)) ||
            (st = bm_train_checkpoint_read(ckpt, &o, &r_step, &r_tokens, &r_elapsed)))
            goto fail;
        if (steps) o.steps = steps;
        /* the run folder: -o, else the one holding the checkpoint */
        if (out) snprintf(run_dir, sizeof run_dir, "%s", out);
        else {
            snprintf(run_dir, sizeof run_dir, "%s", ckpt);
            char *slash = strrchr(run_dir, '/');
            if (slash && slash != run_dir) *slash = 0;
            else snprintf(run_dir, sizeof run_dir, ".");
        }
    } else {
        snprintf(o.data, sizeof o.data, "%s", data);
        o.batch = (int)batch;
        o.micro_batch = (int)micro;
        o.seq = (int)seq;
        o.lr = lr;
        o.min_lr = min_lr >= 0 ? min_lr : lr / 10;
        o.warmup = warmup;
        o.beta1 = beta1;
        o.beta2 = beta2;
        o.eps = eps;
        o.weight_decay = wd;
        o.clip = clip;
        o.seed = (uint64_t)seed;
        snprintf(run_dir, sizeof run_dir, "%s", out);
    }
    doing = "the run folder";
    if ((st = bm_train_dir_check(run_dir))) goto fail;
    doing = "opening the OpenCL device";
    if ((st = cli_open_runtime(mo.device, &rt))) goto fail;
    doing = resume ? "loading the checkpoint's model" : mo.model_dir ? "loading the model for training"
                                                                     : "building the model from its config";
    st = resume         ? bmojo_trainer_load(rt, ckpt, 0, &tr)
         : mo.model_dir ? bmojo_trainer_load(rt, mo.model_dir, mo.load_flags, &tr)
                        : bmojo_trainer_random(rt, mo.config, (uint64_t)seed, &tr);
    if (st) goto fail;
    if (!resume) {
        /* the sequence length: MQAR fixes it (probe the spec), token files default to 256 */
        if (o.seq == 0) {
            bm_data_source probe;
            doing = "--data";
            if ((st = bm_data_open(&probe, o.data, tr->cfg.vocab_size, o.seed))) goto fail;
            o.seq = bm_data_seq(&probe) ? bm_data_seq(&probe) : 256;
            bm_data_close(&probe);
        }
        const uint64_t per_step = (uint64_t)o.batch * (uint64_t)o.seq;
        o.steps = steps ? steps : (int64_t)((tokens + per_step - 1) / per_step);
    }
    doing = "setting up the run";
    if ((st = bm_train_run_open(&run, tr, &o))) goto fail;
    run_open = 1;
    if (resume) {
        doing = "restoring the optimizer";
        if ((st = bm_train_run_restore(&run, ckpt, r_step, r_tokens, r_elapsed))) goto fail;
        if (run.step >= run.o.steps) {
            fprintf(stderr, "bmojo: the checkpoint is at step %lld of %lld: nothing to do (give --steps N to go on)\n",
                    (long long)run.step, (long long)run.o.steps);
            rc = CLI_USAGE;
            goto done;
        }
    }
    char log_default[4200];
    snprintf(log_default, sizeof log_default, "%s/train.jsonl", run_dir);
    doing = "opening the log";
    if ((st = bm_train_log_open(&lg, log_path ? log_path : log_default, progress, (int)log_every))) goto fail;
    bm_train_log_start(&lg, &run, rt, argc, argv, mo.config ? mo.config : mo.model_dir ? mo.model_dir : ckpt);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const double t_start = cli_now();
    const int64_t first_step = run.step;
    int evaluated_at_end = 0, stopped_early = 0;
    char extra[256];
    while (run.step < run.o.steps && !interrupted) {
        bm_train_step_info si;
        doing = "training";
        if ((st = bm_train_run_step(&run, &si))) goto fail;
        const double elapsed = run.elapsed_s + (cli_now() - t_start);
        bm_train_log_step(&lg, &run, &si, elapsed, run.step - first_step, cli_now() - t_start);
        const int last = run.step == run.o.steps;
        if (eval_every && (run.step % eval_every == 0 || last)) {
            bm_train_eval_info ei;
            doing = "evaluating";
            if ((st = bm_train_run_eval(&run, (uint64_t)eval_rows, &ei))) goto fail;
            bm_train_log_eval(&lg, &run, &ei, run.elapsed_s + (cli_now() - t_start));
            evaluated_at_end = last;
            if (stop_acc >= 0 && ei.accuracy >= stop_acc) {
                bm_train_log_note(&lg, "step %lld: accuracy %.4f reached --stop-accuracy %g: stopping",
                                  (long long)run.step, ei.accuracy, stop_acc);
                stopped_early = 1;
                evaluated_at_end = 1;
                break;
            }
        }
        if (save_every && run.step % save_every == 0 && !last) {
            doing = "saving a checkpoint";
            if ((st = bm_train_run_save(&run, run_dir, (int)keep, run.elapsed_s + (cli_now() - t_start), NULL, saved,
                                        sizeof saved)))
                goto fail;
            bm_train_log_checkpoint(&lg, &run, saved);
        }
    }
    if (!interrupted && !evaluated_at_end) {
        bm_train_eval_info ei;
        doing = "evaluating";
        if ((st = bm_train_run_eval(&run, (uint64_t)eval_rows, &ei))) goto fail;
        bm_train_log_eval(&lg, &run, &ei, run.elapsed_s + (cli_now() - t_start));
    }
    doing = "saving the checkpoint";
    snprintf(extra, sizeof extra, ", \"stopped\": \"%s\"",
             interrupted ? "interrupted" : stopped_early ? "stop-accuracy" : "end");
    if ((st = bm_train_run_save(&run, run_dir, (int)keep, run.elapsed_s + (cli_now() - t_start), extra, saved,
                                sizeof saved)))
        goto fail;
    bm_train_log_checkpoint(&lg, &run, saved);
    if (interrupted) {
        bm_train_log_note(&lg, "interrupted at step %lld: checkpoint %s (continue with --resume %s)",
                          (long long)run.step, saved, run_dir);
        rc = 130;
    } else {
        bm_train_log_note(&lg, "done: %lld steps, checkpoint %s", (long long)run.step, saved);
        rc = CLI_OK;
    }
    goto done;
fail:
    bm_train_log_end_line(&lg);
    bm_train_log_failure(&lg, doing, *bmojo_last_error() ? bmojo_last_error() : bmojo_strerror(st));
    rc = cli_status_error(st, doing);
    if (run_open && run.step > 0 && st == BMOJO_ERANGE)
        fprintf(stderr, "bmojo: the last checkpoint is in %s (nothing was saved from the failing step)\n", run_dir);
done:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    bm_train_log_close(&lg);
    if (run_open) bm_train_run_close(&run);
    bmojo_trainer_free(tr);
    bmojo_runtime_free(rt);
    return rc;
}
