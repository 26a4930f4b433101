/* bench_output.c — writers of `bmojo bench` results: a markdown table (llama-bench's columns plus
 * time to first token and the memory split), one JSON array, or JSON lines. Rows are written as
 * each test finishes (streaming) so a long sweep shows progress and a crash keeps what was done;
 * markdown columns therefore have fixed widths instead of being sized to the data. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"

void bench_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            /* Other control characters must be escaped; bytes >= 0x80 pass through (UTF-8). */
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* JSON has no NaN or infinity: write null for them rather than an unparsable token. */
static void json_num(FILE *f, const char *fmt, double v)
{
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

void bench_iso_time(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void bench_mean_std(const double *x, int n, double *mean, double *std)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += x[i];
    double m = n > 0 ? s / n : 0;
    for (int i = 0; i < n; i++) q += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(q / (n - 1)) : 0;
}

void bench_writer_init(bench_writer *w, FILE *f, bench_format fmt, const bench_env *env)
{
    w->f = f;
    w->fmt = fmt;
    w->env = env;
    w->n_written = 0;
}

static void md_env_line(bench_writer *w)
{
    fprintf(w->f, "device: %s | driver: %s | bmojo %s (build %s)\n\n", w->env->device, w->env->driver,
            w->env->version, w->env->build_commit);
}

static void json_begin(bench_writer *w)
{
    if (w->fmt == BENCH_JSON) fputs("[", w->f);
}

/* Before a record: the array separator (JSON) or nothing (JSON lines starts each on its own line). */
static void json_sep(bench_writer *w)
{
    if (w->fmt == BENCH_JSON) fputs(w->n_written ? ",\n  " : "\n  ", w->f);
}

static void json_end(bench_writer *w)
{
    if (w->fmt == BENCH_JSON) fputs(w->n_written ? "\n]\n" : "]\n", w->f);
}

static void json_common(bench_writer *w)
{
    fputs("\"build_commit\": ", w->f);
    bench_json_string(w->f, w->env->build_commit);
    fputs(", \"bmojo_version\": ", w->f);
    bench_json_string(w->f, w->env->version);
    fputs(", \"device\": ", w->f);
    bench_json_string(w->f, w->env->device);
    fputs(", \"driver\": ", w->f);
    bench_json_string(w->f, w->env->driver);
}

/* ---- model tests ---- */

void bench_model_begin(bench_writer *w)
{
    if (w->fmt == BENCH_MD) {
        md_env_line(w);
        fprintf(w->f, "| %-20s | %10s | %9s | %-32s | %5s | %-18s | %20s | %10s | %10s | %10s | %10s | %10s | %10s |\n",
                "model", "size", "params", "device", "batch", "test", "t/s", "ttft ms", "weights", "K/V", "eidetic",
                "SSM", "scratch");
        fprintf(w->f, "| -------------------- | ---------: | --------: | -------------------------------- | ----: | "
                      "------------------ | -------------------: | ---------: | ---------: | ---------: | "
                      "---------: | ---------: | ---------: |\n");
    } else
        json_begin(w);
    fflush(w->f);
}

static void test_name(const bench_result *r, char *buf, size_t n)
{
    int k = r->n_prompt ? snprintf(buf, n, "pp%d", r->n_prompt) : snprintf(buf, n, "tg%d", r->n_gen);
    if (r->n_depth && k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, " @ d%d", r->n_depth);
}

void bench_model_row(bench_writer *w, const bench_result *r)
{
    FILE *f = w->f;
    if (w->fmt == BENCH_MD) {
        char name[64], size[32], params[32], ts[48], b[5][32];
        test_name(r, name, sizeof name);
        snprintf(params, sizeof params, "%.2f M", (double)r->model_n_params / 1e6);
        snprintf(ts, sizeof ts, "%.2f ± %.2f", r->avg_ts, r->stddev_ts);
        fprintf(f, "| %-20s | %10s | %9s | %-32.32s | %5d | %-18s | %21s | %10.2f | %10s | %10s | %10s | %10s | %10s |\n",
                r->model_type, cli_bytes(r->model_size, size, sizeof size), params, w->env->device, r->n_batch, name,
                ts, r->ttft_ms, cli_bytes(r->mem_weights, b[0], sizeof b[0]),
                cli_bytes(r->mem_attention_kv, b[1], sizeof b[1]), cli_bytes(r->mem_eidetic, b[2], sizeof b[2]),
                cli_bytes(r->mem_ssm, b[3], sizeof b[3]), cli_bytes(r->mem_scratch, b[4], sizeof b[4]));
    } else {
        json_sep(w);
        fputc('{', f);
        json_common(w);
        fputs(", \"model_filename\": ", f);
        bench_json_string(f, r->model_filename);
        fputs(", \"model_type\": ", f);
        bench_json_string(f, r->model_type);
        fprintf(f, ", \"model_size\": %llu, \"model_n_params\": %llu", (unsigned long long)r->model_size,
                (unsigned long long)r->model_n_params);
        fprintf(f, ", \"n_batch\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d", r->n_batch, r->n_prompt,
                r->n_gen, r->n_depth);
        fputs(", \"test_time\": ", f);
        bench_json_string(f, r->test_time);
        fputs(", \"avg_ns\": ", f);
        json_num(f, "%.0f", r->avg_ns);
        fputs(", \"stddev_ns\": ", f);
        json_num(f, "%.0f", r->stddev_ns);
        fputs(", \"avg_ts\": ", f);
        json_num(f, "%.6f", r->avg_ts);
        fputs(", \"stddev_ts\": ", f);
        json_num(f, "%.6f", r->stddev_ts);
        fputs(", \"samples_ns\": [", f);
        for (int i = 0; i < r->n_samples; i++) {
            if (i) fputs(", ", f);
            json_num(f, "%.0f", r->samples_ns[i]);
        }
        fputs("], \"samples_ts\": [", f);
        for (int i = 0; i < r->n_samples; i++) {
            if (i) fputs(", ", f);
            json_num(f, "%.6f", r->samples_ts[i]);
        }
        fputs("], \"ttft_ms\": ", f);
        json_num(f, "%.4f", r->ttft_ms);
        fprintf(f, ", \"mem_weights\": %llu, \"mem_attention_kv\": %llu, \"mem_eidetic\": %llu, \"mem_ssm\": %llu, "
                   "\"mem_scratch\": %llu}",
                (unsigned long long)r->mem_weights, (unsigned long long)r->mem_attention_kv,
                (unsigned long long)r->mem_eidetic, (unsigned long long)r->mem_ssm,
                (unsigned long long)r->mem_scratch);
        if (w->fmt == BENCH_JSONL) fputc('\n', f);
    }
    w->n_written++;
    fflush(f);
}

void bench_model_end(bench_writer *w)
{
    if (w->fmt != BENCH_MD) json_end(w);
    fflush(w->f);
}

/* ---- kernels ---- */

void bench_ops_begin(bench_writer *w)
{
    if (w->fmt == BENCH_MD) {
        md_env_line(w);
        fprintf(w->f, "| %-22s | %-40s | %4s | %12s | %10s | %16s | %10s | %12s |\n", "op", "shape", "reps", "time us",
                "± us", "rate", "% of limit", "in stream us");
        fprintf(w->f, "| ---------------------- | ---------------------------------------- | ---: | -----------: "
                      "| ---------: | ---------------: | ---------: | -----------: |\n");
    } else
        json_begin(w);
    fflush(w->f);
}

void bench_ops_row(bench_writer *w, const bench_op_result *r)
{
    FILE *f = w->f;
    const char *unit = r->is_launch ? "launch/s" : r->compute_bound ? "GFLOP/s" : "GB/s";
    if (w->fmt == BENCH_MD) {
        char rate[32], op[64];
        if (r->is_launch) snprintf(rate, sizeof rate, "%.0f %s", r->rate, unit);
        else snprintf(rate, sizeof rate, "%.2f %s", r->rate, unit);
        snprintf(op, sizeof op, "%s%s", r->op, r->is_limit ? " (limit)" : "");
        char stream[32] = "";
        if (r->stream_us > 0) snprintf(stream, sizeof stream, "%.1f", r->stream_us);
        fprintf(f, "| %-22s | %-40s | %4d | %12.1f | %10.1f | %16s | %9.1f%% | %12s |\n", op, r->shape, r->reps,
                r->avg_us, r->stddev_us, rate, r->pct_of_limit, stream);
    } else {
        char when[32];
        bench_iso_time(when, sizeof when);
        json_sep(w);
        fputc('{', f);
        json_common(w);
        fputs(", \"test_time\": ", f);
        bench_json_string(f, when);
        fputs(", \"op\": ", f);
        bench_json_string(f, r->op);
        fputs(", \"shape\": ", f);
        bench_json_string(f, r->shape);
        fprintf(f, ", \"is_limit\": %s, \"kind\": \"%s\", \"reps\": %d", r->is_limit ? "true" : "false",
                r->is_launch ? "launch" : r->compute_bound ? "compute" : "bandwidth", r->reps);
        fputs(", \"avg_us\": ", f);
        json_num(f, "%.3f", r->avg_us);
        fputs(", \"stddev_us\": ", f);
        json_num(f, "%.3f", r->stddev_us);
        if (r->stream_us > 0) {
            fputs(", \"stream_us\": ", f);
            json_num(f, "%.3f", r->stream_us);
        }
        fputs(", \"bytes\": ", f);
        json_num(f, "%.0f", r->bytes);
        fputs(", \"flops\": ", f);
        json_num(f, "%.0f", r->flops);
        fprintf(f, ", \"unit\": \"%s\", \"rate\": ", unit);
        json_num(f, "%.4f", r->rate);
        fputs(r->is_launch ? ", \"launches_per_s\": " : r->compute_bound ? ", \"gflops\": " : ", \"gbps\": ", f);
        json_num(f, "%.4f", r->rate);
        fputs(", \"pct_of_limit\": ", f);
        json_num(f, "%.2f", r->pct_of_limit);
        fputc('}', f);
        if (w->fmt == BENCH_JSONL) fputc('\n', f);
    }
    w->n_written++;
    fflush(f);
}

void bench_ops_end(bench_writer *w)
{
    if (w->fmt != BENCH_MD) json_end(w);
    fflush(w->f);
}
