/* bench_ops.c — `bmojo bench --ops`: times each kernel launcher at the shapes of a 130M-scale
 * model (batch 1, T tokens of prefill and one decoding step) and reports the achieved rate next
 * to the device's limits measured in the same run: the copy kernel's bandwidth and CLBlast's
 * SGEMM rate. Bandwidth-bound ops count the bytes that must move (each input read once, each
 * output written once, state read and written); prefill attention and the GEMMs count FLOPs.
 *
 * Timing is on the host: bm_finish before and after each run. OpenCL profiling events were
 * considered, but the launchers enqueue several kernels and hand back no events, so host timing
 * is the one measure that covers a whole op; it includes launch overhead, which is real cost.
 * Each op gets one warm-up, then at least `reps` runs and more until ~20 ms were timed (short ops
 * get more samples, long ones stay bounded so the whole run fits a slow CPU device). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "ops.h"
#include "ops_backward.h"
#include "ops_bmojo.h"
#include "runtime.h"

#define OPS_MIN_TIMED_S 0.02
#define OPS_MAX_REPS 200

typedef struct {
    bm_rt *rt;
    uint64_t rng;
    int reps, verbose;
    const char *filter;         /* only ops whose name contains this (NULL: all) */
    bench_writer *w;
    double copy_gbps, sgemm_gflops;
    size_t copy_bytes;          /* the size of each of the copy probe's two buffers */
    size_t sgemm_size;          /* the size the limit was measured at */
    cl_mem bufs[96]; /* everything allocated for the ops, released at the end */
    int n_bufs;
} ops_ctx;

typedef enum { K_COPY, K_GEMM, K_GEMM_EX, K_EMBED, K_RMSNORM, K_ADD, K_SWIGLU, K_CONV, K_SCAN, K_ROPE, K_ATTN, K_MIX } op_kind;

/* One op, ready to launch again and again. */
typedef struct {
    op_kind kind;
    cl_mem a, b, c;
    size_t n, M, N, K, ld;
    int ta, tb;  /* K_GEMM_EX: transposes (dense operands; lda/ldb follow from them) */
    bm_store b_store; /* K_GEMM: how b (W) is stored (f16: the --weights f16 kernels) */
    size_t b_copies, b_next; /* K_GEMM: b holds b_copies copies of W, one after another; each run reads
                                the next (decoding: W streamed from memory, not from a cache) */
    float beta;  /* K_GEMM_EX */
    int rows, cols, nh, dh;
    int64_t pos0;
    bm_conv_args conv;
    bm_scan_args scan;
    bm_attn_args attn;
    bm_bmojo_args mix;
    cl_mem scratch;
    int advance; /* decoding steps: each run continues one position further */
    cl_mem *zero; /* state buffers cleared (untimed) before each run: a prefill from position 0 */
    size_t *zero_bytes;
    int n_zero;
} op_desc;

static uint64_t ops_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int track(ops_ctx *c, cl_mem m)
{
    if (c->n_bufs == (int)(sizeof c->bufs / sizeof c->bufs[0])) {
        bm_release(m);
        fprintf(stderr, "bmojo: bench --ops: too many buffers\n");
        return CLI_FAIL;
    }
    c->bufs[c->n_bufs++] = m;
    return 0;
}

static int zeros(ops_ctx *c, size_t bytes, cl_mem *out)
{
    int st = bm_alloc(c->rt, bytes ? bytes : 4, out);
    if (st) return cli_status_error(st, "bench --ops: allocating a buffer");
    return track(c, *out);
}

/* A buffer of n floats uniform in [lo, hi]: a 1 Mi-float random block is generated once per call
 * and uploaded tile by tile (contents only need to be realistic, not unique). */
static int random_floats(ops_ctx *c, size_t n, float lo, float hi, cl_mem *out)
{
    int rc = zeros(c, n * sizeof(float), out);
    if (rc) return rc;
    size_t blk = n < ((size_t)1 << 20) ? n : ((size_t)1 << 20);
    float *h = malloc(blk * sizeof *h);
    if (!h) {
        fprintf(stderr, "bmojo: out of host memory\n");
        return CLI_FAIL;
    }
    for (size_t i = 0; i < blk; i++) h[i] = lo + (hi - lo) * (float)((ops_rng(&c->rng) >> 40) * (1.0 / 16777216.0));
    int st = 0;
    for (size_t off = 0; off < n && !st; off += blk) {
        size_t len = n - off < blk ? n - off : blk;
        st = bm_upload(c->rt, *out, off * sizeof(float), h, len * sizeof(float));
    }
    free(h);
    return st ? cli_status_error(st, "bench --ops: uploading random data") : 0;
}

static int random_ids(ops_ctx *c, size_t n, int vocab, cl_mem *out)
{
    int rc = zeros(c, n * sizeof(int32_t), out);
    if (rc) return rc;
    int32_t *h = malloc(n * sizeof *h);
    if (!h) {
        fprintf(stderr, "bmojo: out of host memory\n");
        return CLI_FAIL;
    }
    for (size_t i = 0; i < n; i++) h[i] = (int32_t)(ops_rng(&c->rng) % (uint64_t)vocab);
    int st = bm_upload(c->rt, *out, 0, h, n * sizeof *h);
    free(h);
    return st ? cli_status_error(st, "bench --ops: uploading token ids") : 0;
}

static int launch(bm_rt *rt, op_desc *o)
{
    int st = 0;
    switch (o->kind) {
    case K_COPY: st = bm_op_copy(rt, o->a, o->b, o->n); break;
    case K_GEMM: {
        bm_wmat w = {o->b, o->b_store};
        size_t w_off = 0;
        if (o->b_copies > 1) {
            w_off = o->b_next * o->N * o->K;
            o->b_next = (o->b_next + 1) % o->b_copies;
        }
        st = bm_gemm(rt, o->M, o->N, o->K, o->a, 0, o->K, w, w_off, o->K, 0.0f, o->c, 0, o->N);
        break;
    }
    case K_GEMM_EX:
        st = bm_gemm_ex(rt, o->ta, o->tb, o->M, o->N, o->K, o->a, 0, o->ta ? o->M : o->K, o->b, 0, o->tb ? o->K : o->N,
                        o->beta, o->c, 0, o->N);
        break;
    case K_EMBED: st = bm_op_embed(rt, o->a, bm_wf32(o->b), o->c, o->rows, o->cols); break;
    case K_RMSNORM:
        st = bm_op_rmsnorm(rt, o->a, (size_t)o->cols, 0, o->b, o->c, (size_t)o->cols, 0, o->rows, o->cols, 1e-5f);
        break;
    case K_ADD: st = bm_op_add(rt, o->a, o->b, o->n); break;
    case K_SWIGLU: st = bm_op_swiglu(rt, o->a, 2 * (size_t)o->cols, 0, (size_t)o->cols, o->c, o->rows, o->cols); break;
    case K_CONV: st = bm_op_conv1d(rt, &o->conv); break;
    case K_SCAN: st = bm_op_scan(rt, &o->scan); break;
    case K_ROPE: st = bm_op_rope(rt, o->a, o->ld, 0, 1, o->rows, o->nh, o->dh, o->pos0, 10000.0f); break;
    case K_ATTN:
        st = bm_op_attention(rt, &o->attn);
        if (o->advance) o->attn.pos0++;
        break;
    case K_MIX:
        st = bm_bmojo_mix(rt, &o->mix, o->scratch);
        if (o->advance) o->mix.pos0++;
        break;
    }
    return st;
}

static int prep(bm_rt *rt, const op_desc *o)
{
    int st = 0;
    for (int i = 0; i < o->n_zero && !st; i++) st = bm_fill_zero(rt, o->zero[i], 0, o->zero_bytes[i]);
    return st;
}

/* One warm-up, then timed runs: fills r's avg_us, stddev_us, reps. min_reps/min_time bound it. */
static int time_op(ops_ctx *c, op_desc *o, const char *what, int min_reps, bench_op_result *r)
{
    double samples[OPS_MAX_REPS], total = 0;
    int n = 0, st = prep(c->rt, o);
    if (!st) st = launch(c->rt, o);
    if (!st) st = bm_finish(c->rt);
    while (!st && n < OPS_MAX_REPS && (n < min_reps || total < OPS_MIN_TIMED_S)) {
        st = prep(c->rt, o);
        if (!st) st = bm_finish(c->rt);
        if (st) break;
        double t0 = cli_now();
        st = launch(c->rt, o);
        if (!st) st = bm_finish(c->rt);
        double t = cli_now() - t0;
        samples[n++] = t;
        total += t;
    }
    /* The same op n times back to back and one finish: its cost inside a forward pass, where
     * launches overlap each other's latency (the state it updates just keeps advancing). */
    double stream = 0;
    if (!st) st = prep(c->rt, o);
    if (!st) st = bm_finish(c->rt);
    if (!st) {
        double t0 = cli_now();
        for (int i = 0; i < n && !st; i++) st = launch(c->rt, o);
        if (!st) st = bm_finish(c->rt);
        stream = (cli_now() - t0) / (n > 0 ? n : 1);
    }
    if (st) return cli_status_error(st, what);
    double mean, sd;
    bench_mean_std(samples, n, &mean, &sd);
    if (mean <= 0) mean = 1e-9; /* clock granularity: keep rates finite */
    r->stream_us = stream * 1e6;
    r->reps = n;
    r->avg_us = mean * 1e6;
    r->stddev_us = sd * 1e6;
    return 0;
}

/* Times o and writes its row: the rate from bytes (or flops when compute_bound) per run. */
static int report(ops_ctx *c, op_desc *o, const char *op, const char *shape, double bytes, double flops,
                  int compute_bound)
{
    if (c->filter && !strstr(op, c->filter)) return 0;
    bench_op_result r = {0};
    snprintf(r.op, sizeof r.op, "%s", op);
    snprintf(r.shape, sizeof r.shape, "%s", shape);
    if (c->verbose) fprintf(stderr, "bench --ops: %s %s\n", op, shape);
    int rc = time_op(c, o, op, c->reps, &r);
    if (rc) return rc;
    r.bytes = bytes;
    r.flops = flops;
    r.compute_bound = compute_bound;
    double s = r.avg_us * 1e-6;
    r.rate = (compute_bound ? flops : bytes) / s / 1e9;
    double lim = compute_bound ? c->sgemm_gflops : c->copy_gbps;
    r.pct_of_limit = lim > 0 ? 100.0 * r.rate / lim : 0;
    bench_ops_row(c->w, &r);
    return 0;
}

/* The copy bandwidth: bm_op_copy over two large buffers (read + write bytes). */
static int measure_copy(ops_ctx *c, int small)
{
    uint64_t cap = small ? ((uint64_t)32 << 20) : ((uint64_t)256 << 20);
    if (c->rt->lim.max_alloc / 2 < cap) cap = c->rt->lim.max_alloc / 2;
    if (c->rt->lim.global_mem / 8 < cap) cap = c->rt->lim.global_mem / 8;
    size_t n = (size_t)(cap / sizeof(float));
    if (n < 1024) n = 1024;
    c->copy_bytes = n * sizeof(float);
    op_desc o = {.kind = K_COPY, .n = n};
    cl_mem src = NULL, dst = NULL;
    int st = bm_alloc(c->rt, n * sizeof(float), &src);
    if (!st) st = bm_alloc(c->rt, n * sizeof(float), &dst);
    int rc = st ? cli_status_error(st, "bench --ops: allocating the copy buffers") : 0;
    bench_op_result r = {0};
    if (!rc) {
        o.a = src;
        o.b = dst;
        rc = time_op(c, &o, "copy", c->reps, &r);
    }
    bm_release(src);
    bm_release(dst);
    if (rc) return rc;
    snprintf(r.op, sizeof r.op, "copy");
    snprintf(r.shape, sizeof r.shape, "%.0f MiB -> %.0f MiB", n * 4.0 / 1048576, n * 4.0 / 1048576);
    r.is_limit = 1;
    r.bytes = 2.0 * (double)n * sizeof(float);
    r.rate = c->copy_gbps = r.bytes / (r.avg_us * 1e-6) / 1e9;
    r.pct_of_limit = 100;
    bench_ops_row(c->w, &r);
    return 0;
}

/* The cost of one kernel launch in a stream of them: LAUNCHES back-to-back launches of a
 * one-element add (enqueued without waiting, as a forward pass does), then one finish. This bounds
 * decoding, which is hundreds of small launches per token. */
#define LAUNCHES 500
static int measure_launch(ops_ctx *c)
{
    cl_mem x = NULL, y = NULL;
    int st = bm_alloc(c->rt, 4, &x);
    if (!st) st = bm_alloc(c->rt, 4, &y);
    double samples[8], host = 0;
    int n = 0;
    for (int rep = 0; !st && rep < 9; rep++) {
        double t0 = cli_now();
        for (int i = 0; !st && i < LAUNCHES; i++) st = bm_op_add(c->rt, x, y, 1);
        double t1 = cli_now(); /* the host's side alone: enqueueing (the device may lag behind) */
        if (!st) st = bm_finish(c->rt);
        if (rep > 0) {  /* rep 0 warms up */
            samples[n++] = (cli_now() - t0) / LAUNCHES;
            host += (t1 - t0) / LAUNCHES;
        }
    }
    /* The host's cost of one clSetKernelArg (a launcher sets 3-30 per launch), a scalar (the add
     * kernel's element count) and a buffer; bm_op_add sets them all again afterwards. */
    double setarg = 0, setarg_buf = 0;
    cl_kernel ka = st ? NULL : bm_kernel(c->rt, "bm_add_f32");
    if (ka) {
        const int calls = 20000;
        double t0 = cli_now();
        for (int i = 0; i < calls; i++) {
            cl_ulong v = (cl_ulong)(i & 1) + 1;
            clSetKernelArg(ka, 2, sizeof v, &v);
        }
        setarg = (cli_now() - t0) / calls;
        t0 = cli_now();
        for (int i = 0; i < calls; i++) clSetKernelArg(ka, 0, sizeof(cl_mem), (i & 1) ? &x : &y);
        setarg_buf = (cli_now() - t0) / calls;
        st = bm_op_add(c->rt, x, y, 1); /* resets the arguments */
        if (!st) st = bm_finish(c->rt);
    }
    bm_release(x);
    bm_release(y);
    if (st) return cli_status_error(st, "bench --ops: timing launches");
    bench_op_result r = {0};
    double mean, sd;
    bench_mean_std(samples, n, &mean, &sd);
    snprintf(r.op, sizeof r.op, "launch");
    snprintf(r.shape, sizeof r.shape, "%d x add(1); enqueue %.1f, arg %.2f/%.2f us", LAUNCHES, n ? host / n * 1e6 : 0.0,
             setarg * 1e6, setarg_buf * 1e6);
    r.is_limit = 1;
    r.is_launch = 1;
    r.reps = n;
    r.avg_us = mean * 1e6;
    r.stddev_us = sd * 1e6;
    r.rate = 1.0 / mean;
    r.pct_of_limit = 100;
    bench_ops_row(c->w, &r);
    return 0;
}

/* CLBlast's SGEMM rate at M=N=K=S, S doubled from 256 until one run takes >= 100 ms (or S reaches
 * the cap), so a slow device is measured at a size it finishes quickly. (At 50 ms a 2-core CPU
 * stopped at S=1024, which ran below its rate on the model's own 2048-row GEMMs.) The limit is
 * CLBlast's whatever BMOJO_GEMM says (it is the reference rate the targets are stated in); when
 * bm_gemm uses our own kernel, a second row times that at the same size. */
static int measure_sgemm_clblast(ops_ctx *c, int small);
static int measure_sgemm(ops_ctx *c, int small)
{
    const int mode = c->rt->gemm_mode;
    c->rt->gemm_mode = BM_GEMM_MODE_CLBLAST;
    int rc = measure_sgemm_clblast(c, small);
    c->rt->gemm_mode = mode;
    return rc;
}

static int measure_sgemm_clblast(ops_ctx *c, int small)
{
    size_t S = 256, cap = small ? 1024 : 4096;
    int rc = 0;
    bench_op_result r = {0};
    for (;;) {
        cl_mem a = NULL, b = NULL, out = NULL;
        size_t n = S * S;
        int st = bm_alloc(c->rt, n * sizeof(float), &a);
        if (!st) st = bm_alloc(c->rt, n * sizeof(float), &b);
        if (!st) st = bm_alloc(c->rt, n * sizeof(float), &out);
        if (st) rc = cli_status_error(st, "bench --ops: allocating the SGEMM buffers");
        /* random inputs: zeros could take a fast path in some BLAS */
        float *h = rc ? NULL : malloc(n * sizeof *h);
        if (!rc && !h) {
            fprintf(stderr, "bmojo: out of host memory\n");
            rc = CLI_FAIL;
        }
        if (!rc) {
            for (size_t i = 0; i < n; i++) h[i] = (float)((ops_rng(&c->rng) >> 40) * (1.0 / 16777216.0)) - 0.5f;
            st = bm_upload(c->rt, a, 0, h, n * sizeof *h);
            if (!st) st = bm_upload(c->rt, b, 0, h, n * sizeof *h);
            if (st) rc = cli_status_error(st, "bench --ops: uploading the SGEMM inputs");
        }
        free(h);
        op_desc o = {.kind = K_GEMM, .a = a, .b = b, .c = out, .M = S, .N = S, .K = S};
        double one = 0;
        if (!rc) {
            /* a single probe run (after a warm-up) decides whether to grow */
            bench_op_result probe = {0};
            rc = time_op(c, &o, "sgemm", 1, &probe);
            one = probe.avg_us * 1e-6;
        }
        int grow = !rc && one < 0.1 && S < cap;
        if (!rc && !grow) rc = time_op(c, &o, "sgemm", c->reps, &r);
        bm_release(a);
        bm_release(b);
        bm_release(out);
        if (rc) return rc;
        if (!grow) break;
        S *= 2;
    }
    snprintf(r.op, sizeof r.op, "sgemm");
    snprintf(r.shape, sizeof r.shape, "M=N=K=%zu, CLBlast", S);
    c->sgemm_size = S;
    r.is_limit = 1;
    r.compute_bound = 1;
    r.flops = 2.0 * (double)S * (double)S * (double)S;
    r.rate = c->sgemm_gflops = r.flops / (r.avg_us * 1e-6) / 1e9;
    r.pct_of_limit = 100;
    bench_ops_row(c->w, &r);
    return 0;
}

/* The model's shapes (130M scale: d 768, d_inner 1536, d_state 16, 12/4 heads of 64, window 512,
 * vocab 32000, SwiGLU 2048), T tokens of prefill, decoding at position P. */
#define D_MODEL 768
#define D_INNER 1536
#define D_STATE 16
#define D_CONV 4
#define DT_RANK 48
#define HEADS 12
#define KV_HEADS 4
#define HEAD_DIM 64
#define WINDOW 512
#define OPS_M_F 4
#define OPS_M_E 32
#define VOCAB 32000
#define FFN 2048

/* Keys seen by T queries from position 0 with a window (each sees min(t+1, w) keys) plus extra. */
static double keys_seen(int T, int w, int extra)
{
    double s = 0;
    for (int t = 0; t < T; t++) s += (t + 1 < w ? t + 1 : w) + extra;
    return s;
}

static int run_ops(ops_ctx *c, int small)
{
    const int T = small ? 256 : 2048, P = small ? 1024 : 4096;
    const size_t d = D_MODEL, di = D_INNER, n = D_STATE, R = DT_RANK, xd = R + 2 * n;
    const size_t H = HEADS, G = KV_HEADS, dh = HEAD_DIM, qkv_ld = (H + 2 * G) * dh, f = FFN;
    const double F = sizeof(float), Td = T;
    char shape[96];
    int rc;

    /* ---- elementwise-like ops ---- */
    cl_mem ids, table, x, y, w, out, gu, act;
    if ((rc = random_ids(c, (size_t)T, VOCAB, &ids)) || (rc = random_floats(c, (size_t)VOCAB * d, -1, 1, &table)) ||
        (rc = random_floats(c, (size_t)T * d, -1, 1, &x)) || (rc = random_floats(c, (size_t)T * d, -1, 1, &y)) ||
        (rc = random_floats(c, d, 0.5f, 1.5f, &w)) || (rc = zeros(c, (size_t)T * d * sizeof(float), &out)) ||
        (rc = random_floats(c, (size_t)T * 2 * f, -2, 2, &gu)) || (rc = zeros(c, (size_t)T * f * sizeof(float), &act)))
        return rc;
    op_desc o = {.kind = K_EMBED, .a = ids, .b = table, .c = out, .rows = T, .cols = (int)d};
    snprintf(shape, sizeof shape, "%d ids of [%d, %zu]", T, VOCAB, d);
    if ((rc = report(c, &o, "embed", shape, Td * 4 + 2 * Td * d * F, 0, 0))) return rc;
    o = (op_desc){.kind = K_RMSNORM, .a = x, .b = w, .c = out, .rows = T, .cols = (int)d};
    snprintf(shape, sizeof shape, "[%d, %zu]", T, d);
    if ((rc = report(c, &o, "rmsnorm", shape, (2 * Td * d + d) * F, 0, 0))) return rc;
    o = (op_desc){.kind = K_ADD, .a = x, .b = y, .n = (size_t)T * d};
    if ((rc = report(c, &o, "add (residual)", shape, 3 * Td * d * F, 0, 0))) return rc;
    o = (op_desc){.kind = K_SWIGLU, .a = gu, .c = act, .rows = T, .cols = (int)f};
    snprintf(shape, sizeof shape, "[%d, 2 x %zu] -> [%d, %zu]", T, f, T, f);
    if ((rc = report(c, &o, "swiglu", shape, 3 * Td * f * F, 0, 0))) return rc;

    /* ---- Mamba: conv1d and selective scan, prefill and one decoding step ---- */
    cl_mem xz, conv_w, conv_b, conv_st, u, dt, dt_b, A, xdbl, D, ssm, ys;
    if ((rc = random_floats(c, (size_t)T * 2 * di, -1, 1, &xz)) || (rc = random_floats(c, di * D_CONV, -0.5f, 0.5f, &conv_w)) ||
        (rc = random_floats(c, di, -0.1f, 0.1f, &conv_b)) || (rc = zeros(c, di * (D_CONV - 1) * sizeof(float), &conv_st)) ||
        (rc = zeros(c, (size_t)T * di * sizeof(float), &u)) || (rc = random_floats(c, (size_t)T * di, -1, 1, &dt)) ||
        (rc = random_floats(c, di, -4, -2, &dt_b)) || (rc = random_floats(c, di * n, -16, -1, &A)) ||
        (rc = random_floats(c, (size_t)T * xd, -1, 1, &xdbl)) || (rc = random_floats(c, di, -1, 1, &D)) ||
        (rc = zeros(c, di * n * sizeof(float), &ssm)) || (rc = zeros(c, (size_t)T * di * sizeof(float), &ys)))
        return rc;
    for (int dec = 0; dec < 2; dec++) {
        int Tn = dec ? 1 : T;
        double t = Tn;
        o = (op_desc){.kind = K_CONV};
        o.conv = (bm_conv_args){1, Tn, (int)di, D_CONV, xz, 2 * di, conv_w, conv_b, conv_st, u};
        snprintf(shape, sizeof shape, "T %d, d_inner %zu, k %d", Tn, di, D_CONV);
        double bytes = (t * di + di * D_CONV + di + 2.0 * di * (D_CONV - 1) + t * di) * F;
        if ((rc = report(c, &o, dec ? "conv1d decode" : "conv1d", shape, bytes, 0, 0))) return rc;
    }
    for (int dec = 0; dec < 2; dec++) {
        int Tn = dec ? 1 : T;
        double t = Tn;
        o = (op_desc){.kind = K_SCAN};
        o.scan = (bm_scan_args){.B = 1, .T = Tn, .di = (int)di, .n = (int)n, .u = u, .dt = dt, .dt_ld = di,
                                .dt_bias = dt_b, .A = A, .bc = xdbl, .bc_ld = xd, .b_col = R, .c_col = R + n,
                                .D = D, .z = xz, .z_ld = 2 * di, .z_col = di, .state = ssm, .y = ys};
        snprintf(shape, sizeof shape, "T %d, d_inner %zu, d_state %zu", Tn, di, n);
        /* u, dt, B|C, z in; y out; A, D, dt_bias; the state read and written */
        double bytes = (3 * t * di + t * 2 * n + t * di + di * n + 2 * di + 2.0 * di * n) * F;
        if ((rc = report(c, &o, dec ? "scan decode" : "scan", shape, bytes, 0, 0))) return rc;
    }

    /* ---- attention: RoPE, windowed GQA prefill, one decoding step over the K/V ring ---- */
    cl_mem qkv, kc, vc, att;
    if ((rc = random_floats(c, (size_t)T * qkv_ld, -1, 1, &qkv)) ||
        (rc = random_floats(c, G * WINDOW * dh, -1, 1, &kc)) || (rc = random_floats(c, G * WINDOW * dh, -1, 1, &vc)) ||
        (rc = zeros(c, (size_t)T * H * dh * sizeof(float), &att)))
        return rc;
    o = (op_desc){.kind = K_ROPE, .a = qkv, .ld = qkv_ld, .rows = T, .nh = (int)(H + G), .dh = (int)dh};
    snprintf(shape, sizeof shape, "T %d, %zu q + %zu k heads of %zu", T, H, G, dh);
    if ((rc = report(c, &o, "rope", shape, 2 * Td * (H + G) * dh * F, 0, 0))) return rc;
    bm_attn_args aa = {.B = 1, .T = T, .H = (int)H, .Hkv = (int)G, .dh = (int)dh, .q = qkv, .q_ld = qkv_ld,
                       .q_col = 0, .k = qkv, .v = qkv, .kv_ld = qkv_ld, .k_col = H * dh, .v_col = (H + G) * dh,
                       .k_cache = kc, .v_cache = vc, .cap = WINDOW, .pos0 = 0, .window = WINDOW,
                       .scale = 1.0f / sqrtf((float)dh), .out = att, .out_ld = H * dh};
    o = (op_desc){.kind = K_ATTN, .attn = aa};
    snprintf(shape, sizeof shape, "T %d, w %d, %zu/%zu heads of %zu", T, WINDOW, H, G, dh);
    /* QK^T and PV: 2 multiply-adds per (query head, key, channel) */
    if ((rc = report(c, &o, "attention", shape, 0, 4.0 * H * dh * keys_seen(T, WINDOW, 0), 1))) return rc;
    o.attn.T = 1;
    o.attn.pos0 = P;
    o.advance = 1;
    snprintf(shape, sizeof shape, "T 1 @ %d, w %d, %zu/%zu heads of %zu", P, WINDOW, H, G, dh);
    if ((rc = report(c, &o, "attention decode", shape,
                     (2.0 * H * dh + 2.0 * G * dh + 2.0 * G * (WINDOW - 1) * dh) * F, 0, 0)))
        return rc;

    /* ---- B'MOJO mix: prefill from an empty state, then decoding at position P ---- */
    static const float taps[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    cl_mem yf, kvf;
    if ((rc = random_floats(c, (size_t)T * d, -1, 1, &yf)) || (rc = random_floats(c, (size_t)T * 2 * G * dh, -1, 1, &kvf)))
        return rc;
    bm_bmojo_args ma = {.B = 1, .T = T, .d = (int)d, .H = (int)H, .Hkv = (int)G, .dh = (int)dh, .window = WINDOW,
                        .m_f = OPS_M_F, .m_e = OPS_M_E, .n_taps = 4, .taps = taps, .pos0 = 0,
                        .scale = 1.0f / sqrtf((float)dh), .y = yf, .q = qkv, .q_ld = qkv_ld, .q_col = 0,
                        .kx = qkv, .vx = qkv, .x_ld = qkv_ld, .kx_col = H * dh, .vx_col = (H + G) * dh,
                        .kf = kvf, .vf = kvf, .f_ld = 2 * G * dh, .kf_col = 0, .vf_col = G * dh,
                        .out = att, .out_ld = H * dh};
    bm_bmojo_state_sizes ss;
    bm_bmojo_state_layout(&ma, &ss);
    enum { MIX_STATE_BUFFERS = 8 };
    cl_mem *slots[MIX_STATE_BUFFERS] = {&ma.y_hist, &ma.win_k, &ma.win_v, &ma.fade_k, &ma.fade_v, &ma.cand_eps,
                         &ma.cand_pos, &ma.mem};
    size_t sizes[MIX_STATE_BUFFERS] = {ss.y_hist, ss.win_k, ss.win_v, ss.fade_k, ss.fade_v, ss.cand_eps,
                        ss.cand_pos, ss.mem};
    cl_mem zero_list[MIX_STATE_BUFFERS];
    for (int i = 0; i < MIX_STATE_BUFFERS; i++) {
        if ((rc = zeros(c, sizes[i], slots[i]))) return rc;
        zero_list[i] = *slots[i];
    }
    cl_mem scratch;
    if ((rc = zeros(c, bm_bmojo_scratch_bytes(&ma), &scratch))) return rc;
    o = (op_desc){.kind = K_MIX, .mix = ma, .scratch = scratch, .zero = zero_list, .zero_bytes = sizes, .n_zero = MIX_STATE_BUFFERS};
    snprintf(shape, sizeof shape, "T %d, w %d, m_f %d, m_e %d, %zu/%zu x %zu", T, WINDOW, OPS_M_F, OPS_M_E, H, G, dh);
    if ((rc = report(c, &o, "bmojo_mix", shape, 0, 4.0 * H * dh * keys_seen(T, WINDOW, OPS_M_F + OPS_M_E), 1))) return rc;
    /* Bring the state to position P with real prefills (untimed), then decode from there. */
    int st = 0;
    for (int i = 0; i < MIX_STATE_BUFFERS && !st; i++) st = bm_fill_zero(c->rt, zero_list[i], 0, sizes[i]);
    for (int64_t p = 0; p < P && !st; p += T) {
        bm_bmojo_args step = ma;
        step.pos0 = p;
        st = bm_bmojo_mix(c->rt, &step, scratch);
    }
    if (!st) st = bm_finish(c->rt);
    if (st) return cli_status_error(st, "bench --ops: preparing the B'MOJO decoding state");
    o = (op_desc){.kind = K_MIX, .mix = ma, .scratch = scratch, .advance = 1};
    o.mix.T = 1;
    o.mix.pos0 = P;
    snprintf(shape, sizeof shape, "T 1 @ %d, w %d, m_f %d, m_e %d", P, WINDOW, OPS_M_F, OPS_M_E);
    /* the whole per-layer state is read (and partly rewritten); the token's y, q, Kx|Vx, Kf|Vf in, o out */
    double mix_bytes = (double)ss.total + (d + 2.0 * H * dh + 4.0 * G * dh) * F;
    if ((rc = report(c, &o, "bmojo_mix decode", shape, mix_bytes, 0, 0))) return rc;

    /* ---- the model's GEMMs (prefill) and GEMVs (decoding) ---- */
    struct {
        const char *name;
        size_t N, K;
    } g[] = {{"in_proj", 2 * di, d}, {"x_proj", xd, di}, {"dt_proj", di, R}, {"out_proj", d, di},
             {"q|k|v", qkv_ld, d}, {"kf|vf", 2 * G * dh, d}, {"o_proj", d, H * dh}, {"mlp gate|up", 2 * f, d},
             {"mlp down", d, f}, {"lm_head", VOCAB, d}};
    cl_mem ga, gw, gc;
    const size_t n_g = sizeof g / sizeof g[0];
    size_t maxK = 0, maxNK = 0, maxMN = VOCAB; /* the head runs for one row only */
    for (size_t i = 0; i < n_g; i++) {
        if (g[i].K > maxK) maxK = g[i].K;
        if (i + 1 < n_g && (size_t)T * g[i].N > maxMN) maxMN = (size_t)T * g[i].N;
        if (g[i].N * g[i].K > maxNK) maxNK = g[i].N * g[i].K;
    }
    /* W's pool: as large as the copy probe's buffers, so that the decoding rows, which read the next
     * copy of W each run, stream it from memory as a model's GEMVs do (one copy, reread, sat in the
     * caches: 2-3x the copy bandwidth on a 2-core EPYC for the 130M shapes) */
    size_t pool = c->copy_bytes / sizeof(float);
    if (pool < maxNK) pool = maxNK;
    if ((rc = random_floats(c, (size_t)T * maxK, -1, 1, &ga)) || (rc = random_floats(c, pool, -0.05f, 0.05f, &gw)) ||
        (rc = zeros(c, maxMN * sizeof(float), &gc)))
        return rc;
    /* the same weights stored as f16 (--weights f16): the "gemm f16" / "gemv f16" rows, whose bytes
     * count W at 2 bytes an element */
    cl_mem gw16;
    if ((rc = zeros(c, pool * 2, &gw16))) return rc;
    int cst = bm_op_f16_narrow(c->rt, gw, 0, gw16, pool, "bench --ops weights");
    if (cst) return cli_status_error(cst, "bench --ops: f16 weights");
    for (int half = 0; half < 2; half++)
        for (int dec = 0; dec < 2; dec++) {
            for (size_t i = 0; i < n_g; i++) {
                size_t M = dec ? 1 : (size_t)T, N = g[i].N, K = g[i].K;
                if (!dec && i + 1 == n_g) continue; /* prefill computes the head of one row only */
                char name[48];
                snprintf(name, sizeof name, "%s%s %s", dec ? "gemv" : "gemm", half ? " f16" : "", g[i].name);
                snprintf(shape, sizeof shape, "M %zu, N %zu, K %zu", M, N, K);
                o = (op_desc){.kind = K_GEMM, .a = ga, .b = half ? gw16 : gw, .c = gc, .M = M, .N = N, .K = K,
                              .b_store = half ? BM_STORE_F16 : BM_STORE_F32, .b_copies = dec ? pool / (N * K) : 1};
                if (dec) snprintf(shape + strlen(shape), sizeof shape - strlen(shape), ", %zu copies", o.b_copies);
                double bytes = ((double)M * K + (double)M * N) * F + (double)N * K * (half ? 2 : F);
                if ((rc = report(c, &o, name, shape, bytes, 2.0 * M * N * K, !dec))) return rc;
            }
        }

    /* ---- the training pass's GEMMs (bm_gemm_ex): dX = dY W (NN) and dW += dY^T X (TN, K = the
     * T rows) of in_proj (W [2 d_inner, d]) and of the thin x_proj (W [dt_rank + 2 d_state, d_inner]) ---- */
    cl_mem dy, xx, dw;
    size_t dw_n = 2 * di * d > (size_t)T * d ? 2 * di * d : (size_t)T * d; /* dW in_proj or dX in_proj */
    if ((rc = random_floats(c, (size_t)T * 2 * di, -1, 1, &dy)) || (rc = random_floats(c, (size_t)T * di, -1, 1, &xx)) ||
        (rc = random_floats(c, dw_n > xd * di ? dw_n : xd * di, -1, 1, &dw)))
        return rc;
    struct {
        const char *name;
        int ta;
        size_t M, N, K;
        cl_mem a, b;
        float beta;
    } tr[] = {{"gemm_nn dX in_proj", 0, (size_t)T, d, 2 * di, dy, gw, 0.0f},
              {"gemm_tn dW in_proj", 1, 2 * di, d, (size_t)T, dy, xx, 1.0f},
              {"gemm_tn dW x_proj", 1, xd, di, (size_t)T, dy, xx, 1.0f}};
    for (size_t i = 0; i < sizeof tr / sizeof tr[0]; i++) {
        snprintf(shape, sizeof shape, "M %zu, N %zu, K %zu%s", tr[i].M, tr[i].N, tr[i].K, tr[i].beta != 0 ? ", +=" : "");
        o = (op_desc){.kind = K_GEMM_EX, .a = tr[i].a, .b = tr[i].b, .c = dw, .M = tr[i].M, .N = tr[i].N,
                      .K = tr[i].K, .ta = tr[i].ta, .beta = tr[i].beta};
        double bytes = ((double)tr[i].M * tr[i].K + (double)tr[i].N * tr[i].K +
                        (tr[i].beta != 0 ? 2.0 : 1.0) * tr[i].M * tr[i].N) * F;
        if ((rc = report(c, &o, tr[i].name, shape, bytes, 2.0 * tr[i].M * tr[i].N * tr[i].K, 1))) return rc;
    }
    return 0;
}

/* bm_gemm as the model runs it (BMOJO_GEMM: our own kernel on GPUs) at the size of the CLBlast
 * limit, as a fraction of it. */
static int measure_gemm_square(ops_ctx *c)
{
    const size_t S = c->sgemm_size;
    cl_mem a = NULL, b = NULL, out = NULL;
    int rc = random_floats(c, S * S, -0.5f, 0.5f, &a);
    if (!rc) rc = random_floats(c, S * S, -0.5f, 0.5f, &b);
    if (!rc) rc = zeros(c, S * S * sizeof(float), &out);
    if (rc) return rc;
    op_desc o = {.kind = K_GEMM, .a = a, .b = b, .c = out, .M = S, .N = S, .K = S};
    char shape[96];
    snprintf(shape, sizeof shape, "M=N=K=%zu, bm_gemm", S);
    rc = report(c, &o, "gemm square", shape, 3.0 * (double)S * S * sizeof(float), 2.0 * (double)S * S * S, 1);
    /* The training pass's layouts at the same size (bm_gemm_ex: NN dX = dY W, TN dW = dY^T X), to
     * set against the NT row above. */
    static const struct {
        const char *name;
        int ta;
    } tr[] = {{"gemm_nn square", 0}, {"gemm_tn square", 1}};
    for (size_t i = 0; i < sizeof tr / sizeof tr[0] && !rc; i++) {
        o = (op_desc){.kind = K_GEMM_EX, .a = a, .b = b, .c = out, .M = S, .N = S, .K = S, .ta = tr[i].ta};
        snprintf(shape, sizeof shape, "M=N=K=%zu, bm_gemm_ex", S);
        rc = report(c, &o, tr[i].name, shape, 3.0 * (double)S * S * sizeof(float), 2.0 * (double)S * S * S, 1);
    }
    return rc;
}

int bench_ops_run(bmojo_runtime *rt, int small, const char *filter, int reps, uint64_t seed, bench_writer *w,
                  int verbose)
{
    ops_ctx c = {.rt = rt, .rng = seed * 0x9E3779B97F4A7C15ull + 12345, .reps = reps, .verbose = verbose, .w = w,
                 .filter = filter && *filter ? filter : NULL};
    bench_ops_begin(w);
    int rc = measure_copy(&c, small);
    if (!rc) rc = measure_sgemm(&c, small);
    if (!rc) rc = measure_gemm_square(&c);
    if (!rc) rc = measure_launch(&c);
    if (!rc) rc = run_ops(&c, small);
    bench_ops_end(w);
    bm_finish(rt); /* nothing may still use the buffers when they are released */
    for (int i = 0; i < c.n_bufs; i++) bm_release(c.bufs[i]);
    return rc;
}
