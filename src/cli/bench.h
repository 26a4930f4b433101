/* bench.h — shared pieces of `bmojo bench`: the result records of the model benchmark
 * (cmd_bench.c) and of the kernel benchmark (bench_ops.c), and their writers in markdown, JSON
 * and JSON-lines (bench_output.c). Field names follow llama-bench's JSON output so existing
 * tooling can read ours; the extra fields (ttft_ms, mem_*) are additions. */
#ifndef BM_CLI_BENCH_H
#define BM_CLI_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "bmojo.h"

typedef enum { BENCH_MD, BENCH_JSON, BENCH_JSONL } bench_format;

/* What every record repeats: where and with what it ran. */
typedef struct {
    const char *build_commit; /* $BMOJO_COMMIT, else the commit built from (bmojo_build_commit) */
    const char *version;      /* bmojo_version() */
    char device[160];         /* device name */
    char driver[256];         /* platform name and driver version */
} bench_env;

/* One model test: pp (n_gen == 0) or tg (n_prompt == 0), at a depth and a batch size. */
typedef struct {
    const char *model_filename; /* -m folder or --config file */
    const char *model_type;     /* the model's name from its config */
    uint64_t model_size, model_n_params;
    int n_batch, n_prompt, n_gen, n_depth;
    char test_time[32];         /* ISO 8601, UTC, when the test started */
    int n_samples;
    double *samples_ns, *samples_ts; /* n_samples each (owned by the caller) */
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    double ttft_ms;             /* mean over repetitions */
    uint64_t mem_weights, mem_attention_kv, mem_eidetic, mem_ssm, mem_scratch;
} bench_result;

/* One kernel of `--ops`, or one of the two device limits (copy bandwidth, SGEMM rate). */
typedef struct {
    char op[48];
    char shape[96];
    int is_limit;               /* 1 for the copy / sgemm reference rows */
    int compute_bound;          /* rate in GFLOP/s vs the SGEMM rate; else GB/s vs copy */
    int is_launch;              /* the launch-latency row: rate in launches/s, no limit */
    int reps;
    double avg_us, stddev_us;   /* one launch of the op and a finish, per run */
    double stream_us;           /* per run within a stream of back-to-back runs and one finish, as
                                   a forward pass enqueues them (0: not measured) */
    double bytes, flops;        /* per run */
    double rate;                /* GB/s or GFLOP/s */
    double pct_of_limit;
} bench_op_result;

/* Streaming writers: begin, one call per record, end. State lives in the writer. */
typedef struct {
    FILE *f;
    bench_format fmt;
    const bench_env *env;
    int n_written;
} bench_writer;

void bench_writer_init(bench_writer *w, FILE *f, bench_format fmt, const bench_env *env);
void bench_model_begin(bench_writer *w);
void bench_model_row(bench_writer *w, const bench_result *r);
void bench_model_end(bench_writer *w);
void bench_ops_begin(bench_writer *w);
void bench_ops_row(bench_writer *w, const bench_op_result *r);
void bench_ops_end(bench_writer *w);

/* Writes s as a JSON string literal (quotes included), escaping what RFC 8259 requires. */
void bench_json_string(FILE *f, const char *s);
/* Now as ISO 8601 UTC ("2024-01-02T03:04:05Z"). */
void bench_iso_time(char *buf, size_t n);
/* Mean and sample standard deviation (0 for one sample). */
void bench_mean_std(const double *x, int n, double *mean, double *std);

/* `bmojo bench --ops`: times the kernels on rt's device; small != 0 picks CI-sized shapes; filter
 * (may be NULL) keeps only the ops whose name contains it (the limits are always measured).
 * reps: timed repetitions per op (after one warm-up; at least 5). Returns a CLI exit code. */
int bench_ops_run(bmojo_runtime *rt, int small, const char *filter, int reps, uint64_t seed, bench_writer *w,
                  int verbose);

/* `bmojo bench --grad`: training-pass speed of tr for every batch x length; profile: the kernels'
 * forward / backward split on stderr (rt must have profiling on). Returns a CLI exit code. */
int bench_grad_run(bmojo_runtime *rt, bmojo_trainer *tr, const char *model_name, const int *batches, int nb,
                   const int *lengths, int nl, int reps, uint64_t seed, int profile, bench_format fmt,
                   const bench_env *env);

#endif
