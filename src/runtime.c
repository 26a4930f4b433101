/* runtime.c — bmojo_runtime: context and in-order profiling queue on the selected device, the
 * kernel program (embedded cl/<name>.cl sources concatenated with #line markers, built with -D
 * tunables from device queries, cached on disk), kernel lookup by name, launches and buffers. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "runtime.h"
#include "mem_budget.h"

/* After runtime.h, which fixes CL_TARGET_OPENCL_VERSION before any CL header. */
#include <clblast_c.h>

/* Live runtimes; CLBlast's process-wide kernel cache is cleared when the last one goes, so its
 * programs (which hold our contexts) are not leaked, while other live runtimes keep theirs. */
static atomic_int live_runtimes;
/* bm_alloc'ed buffers not yet released (bm_live_buffers, for leak tests). */
static atomic_long live_buffers;

/* Concatenation of every embedded source, each preceded by `#line 1 "<name>"` so compiler
 * messages name the original file and line. */
static char *concat_sources(void)
{
    size_t total = 1;
    for (int i = 0; i < bm_cl_source_count; i++)
        total += strlen(bm_cl_sources[i]) + strlen(bm_cl_source_names[i]) + 32;
    char *src = malloc(total);
    if (!src) return NULL;
    size_t used = 0;
    for (int i = 0; i < bm_cl_source_count; i++) {
        int w = snprintf(src + used, total - used, "#line 1 \"%s\"\n%s\n", bm_cl_source_names[i], bm_cl_sources[i]);
        if (w < 0 || (size_t)w >= total - used) {
            free(src);
            return NULL;
        }
        used += (size_t)w;
    }
    src[used] = 0;
    return src;
}

/* The build log of a failed build, in the detail message (head kept: the first errors matter;
 * the detail buffer holds about 8 KiB). */
static int build_failure(bm_rt *rt, cl_program prog, cl_int err, const char *options)
{
    size_t size = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size) == CL_SUCCESS && size > 0) {
        log = calloc(1, size + 1);
        if (log && clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, size, log, NULL) != CL_SUCCESS)
            log[0] = 0;
    }
    const size_t keep = 6000;
    size_t len = log ? strlen(log) : 0;
    int st = bm_fail(BMOJO_EBUILD, "building the kernels for %s with \"%s\" failed: %s (%d); build log%s:\n%.*s%s",
                     rt->desc.name, options, bm_cl_error_name(err), (int)err, len > keep ? " (truncated)" : "",
                     (int)(len > keep ? keep : len), log ? log : "(none)", len > keep ? "\n..." : "");
    free(log);
    return st;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const bm_kernel_entry *)a)->name, ((const bm_kernel_entry *)b)->name);
}

/* The program's compile-time tunables (cl/program_config.cl) into rt->config: one tiny launch and
 * read here, so that no forward pass waits on one. */
static int read_program_config(bm_rt *rt)
{
    cl_kernel k = bm_kernel(rt, "bm_program_config");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "program config");
    cl_mem out = NULL;
    size_t one = 1;
    int st = bm_alloc(rt, sizeof rt->config, &out);
    if (!st) st = bm_args_check(BM_ARG(k, 0, out), "bm_program_config");
    if (!st) st = bm_launch(rt, k, "bm_program_config", 1, &one, &one);
    if (!st) st = bm_download(rt, out, 0, rt->config, sizeof rt->config);
    bm_release(out);
    for (int i = 0; !st && i < BM_PROGRAM_CONFIG_INTS; i++)
        if (rt->config[i] < 1) st = bm_fail(BMOJO_EBUILD, "the kernels report tunable %d as %d", i, rt->config[i]);
    return st;
}

static int create_kernels(bm_rt *rt)
{
    cl_uint n = 0;
    cl_int err = clCreateKernelsInProgram(rt->program, 0, NULL, &n);
    if (err != CL_SUCCESS) return bm_cl_check(err, "clCreateKernelsInProgram");
    if (n == 0) return 0; /* only placeholders so far: a program without kernels is fine */
    cl_kernel *ks = calloc(n, sizeof *ks);
    rt->kernels = calloc(n, sizeof *rt->kernels);
    if (!ks || !rt->kernels) {
        free(ks);
        return bm_fail(BMOJO_ENOMEM, "creating %u kernels: out of host memory", n);
    }
    err = clCreateKernelsInProgram(rt->program, n, ks, NULL);
    if (err != CL_SUCCESS) {
        free(ks);
        return bm_cl_check(err, "clCreateKernelsInProgram");
    }
    int st = 0;
    for (cl_uint i = 0; i < n; i++) {
        /* Entries own their kernels from here on, so runtime_free releases them on any path. */
        rt->kernels[rt->n_kernels].kernel = ks[i];
        rt->kernels[rt->n_kernels].name = NULL;
        rt->n_kernels++;
        if (st) continue;
        size_t size = 0;
        err = clGetKernelInfo(ks[i], CL_KERNEL_FUNCTION_NAME, 0, NULL, &size);
        char *name = err == CL_SUCCESS ? calloc(1, size + 1) : NULL;
        if (err == CL_SUCCESS && !name) st = bm_fail(BMOJO_ENOMEM, "kernel names: out of host memory");
        else if (err == CL_SUCCESS) err = clGetKernelInfo(ks[i], CL_KERNEL_FUNCTION_NAME, size, name, NULL);
        if (!st && err != CL_SUCCESS) st = bm_cl_check(err, "clGetKernelInfo(CL_KERNEL_FUNCTION_NAME)");
        if (st) free(name);
        else rt->kernels[i].name = name;
    }
    free(ks);
    if (st) return st;
    qsort(rt->kernels, (size_t)rt->n_kernels, sizeof *rt->kernels, cmp_entry);
    for (int i = 1; i < rt->n_kernels; i++)
        if (!strcmp(rt->kernels[i - 1].name, rt->kernels[i].name))
            return bm_fail(BMOJO_EBUILD, "kernel name %s is defined twice", rt->kernels[i].name);
    return 0;
}

/* Releases the kernels and the program (a cached program that failed, before the rebuild; the
 * runtime's end). */
static void drop_program(bm_rt *rt)
{
    for (int i = 0; i < rt->n_kernels; i++) {
        if (rt->kernels[i].kernel) clReleaseKernel(rt->kernels[i].kernel);
        free((char *)rt->kernels[i].name);
    }
    free(rt->kernels);
    rt->kernels = NULL;
    rt->n_kernels = 0;
    if (rt->program) clReleaseProgram(rt->program);
    rt->program = NULL;
}

/* The program, its kernels and its compile-time tunables: from the cache when its entry works
 * (the program built, every kernel created, the config kernel ran; only then does the entry go
 * back into the cache), else built from source, and then stored. */
static int build_program(bm_rt *rt)
{
    char *src = concat_sources();
    if (!src) return bm_fail(BMOJO_ENOMEM, "concatenating the kernel sources: out of host memory");
    bm_program_cache_key key;
    bm_program_cache_key_make(rt, src, rt->build_options, &key);
    rt->program = bm_program_cache_load(rt, &key, rt->build_options);
    if (rt->program) {
        int st = create_kernels(rt);
        if (!st) st = read_program_config(rt);
        bm_program_cache_release(&key, st == 0);
        if (!st) {
            free(src);
            return 0;
        }
        drop_program(rt); /* the entry is gone; the source decides whether the run can go on */
        bm_error_clear();
    }
    cl_int err = CL_SUCCESS;
    const char *srcs[1] = {src};
    cl_program prog = clCreateProgramWithSource(rt->ctx, 1, srcs, NULL, &err);
    free(src);
    if (err != CL_SUCCESS) return bm_cl_check(err, "clCreateProgramWithSource");
    err = clBuildProgram(prog, 1, &rt->device, rt->build_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        int st = build_failure(rt, prog, err, rt->build_options);
        clReleaseProgram(prog);
        return st;
    }
    rt->program = prog;
    int st = create_kernels(rt);
    if (!st) st = read_program_config(rt);
    if (!st) bm_program_cache_store(rt, &key, prog);
    return st;
}

/* An integer tunable from the environment: def when unset or "auto"; else lo..hi, and a power of
 * two when pow2. */
static int int_from_env(const char *name, int def, int lo, int hi, int pow2, int *out)
{
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v || !strcmp(v, "auto")) return 0;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi || (pow2 && (n & (n - 1))))
        return bm_fail(BMOJO_EINVAL, "%s=%s: expected auto or %s from %d to %d", name, v,
                       pow2 ? "a power of two" : "an integer", lo, hi);
    *out = (int)n;
    return 0;
}

/* BMOJO_GEMV picks the decoding GEMM kernel (a tunable for measurements): auto, scalar, vec4. */
static int gemv_variant_from_env(int *out)
{
    const char *v = getenv("BMOJO_GEMV");
    *out = BM_GEMV_VARIANT_AUTO;
    if (!v || !*v || !strcmp(v, "auto")) return 0;
    if (!strcmp(v, "scalar")) *out = BM_GEMV_VARIANT_SCALAR;
    else if (!strcmp(v, "vec4")) *out = BM_GEMV_VARIANT_VEC4;
    else return bm_fail(BMOJO_EINVAL, "BMOJO_GEMV=%s: expected auto, scalar or vec4", v);
    return 0;
}

/* BMOJO_SCAN picks the selective-scan kernel (a tunable for measurements): auto, chunked, lanes.
 * BMOJO_SCAN_LANES_CH sets the lanes kernel's channels per work-group (1..1024; unset = auto). */
static int scan_variant_from_env(int *variant, int *lanes_ch)
{
    const char *v = getenv("BMOJO_SCAN");
    *variant = BM_SCAN_VARIANT_AUTO;
    if (v && *v && strcmp(v, "auto") != 0) {
        if (!strcmp(v, "chunked")) *variant = BM_SCAN_VARIANT_CHUNKED;
        else if (!strcmp(v, "lanes")) *variant = BM_SCAN_VARIANT_LANES;
        else if (!strcmp(v, "cpu")) *variant = BM_SCAN_VARIANT_CPU;
        else return bm_fail(BMOJO_EINVAL, "BMOJO_SCAN=%s: expected auto, chunked, lanes or cpu", v);
    }
    return int_from_env("BMOJO_SCAN_LANES_CH", 0, 1, 1024, 0, lanes_ch);
}

/* BMOJO_CL_DEFINES (e.g. "-DBM_GEMV4_NB=4") is appended to the kernels' build options: the way to
 * sweep a kernel's -D tunables on a device without rebuilding bmojo. Only -D and -U options are
 * accepted, so that it cannot change the language version or the math (fp32 results must match
 * the references). The program cache key includes the options. */
static int append_extra_defines(const char *opts, char **out)
{
    const char *extra = getenv("BMOJO_CL_DEFINES");
    if (!extra) extra = "";
    for (const char *p = extra; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        if (p[0] != '-' || (p[1] != 'D' && p[1] != 'U') || !p[2] || p[2] == ' ')
            return bm_fail(BMOJO_EINVAL, "BMOJO_CL_DEFINES=\"%s\": expected -DNAME[=VALUE] or -UNAME options only", extra);
        while (*p && *p != ' ') p++;
    }
    size_t n = strlen(opts) + 1 + strlen(extra) + 1;
    char *s = malloc(n);
    if (!s) return bm_fail(BMOJO_ENOMEM, "build options: out of memory");
    snprintf(s, n, "%s%s%s", opts, *extra ? " " : "", extra);
    *out = s;
    return 0;
}

/* Turns per-kernel profiling on or off; the queue is recreated (after a finish) when its
 * profiling property has to change. */
int bm_runtime_set_profiling(bm_rt *rt, int on)
{
    if (!rt) return bm_fail(BMOJO_EINVAL, "bm_runtime_set_profiling: NULL runtime");
    on = on != 0;
    cl_command_queue_properties props = 0;
    cl_int err = clGetCommandQueueInfo(rt->queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    int st = bm_cl_check(err, "clGetCommandQueueInfo(CL_QUEUE_PROPERTIES)");
    if (st) return st;
    if (!!(props & CL_QUEUE_PROFILING_ENABLE) != on) {
        st = bm_finish(rt);
        if (st) return st;
        cl_command_queue q = clCreateCommandQueue(rt->ctx, rt->device, on ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
        st = bm_cl_check(err, "clCreateCommandQueue");
        if (st) return st;
        clReleaseCommandQueue(rt->queue);
        rt->queue = q;
    }
    rt->profile.enabled = on;
    return 0;
}

/* BMOJO_DECODE_FUSION=on|off overrides where decoding uses the fusions that cost memory or device
 * work to save launches (bmojo's folded Wk|Wv . out_proj weight, 3 MiB per layer at the 130M
 * scale). Default: GPUs, where a launch costs 4-7 us of host time and several us of device time;
 * CPUs launch cheaply. Tests force "on" with POCL to cover the model path. -1: automatic.
 * (A fused x_proj + dt_proj + scan decoding kernel was measured and dropped: each work-group had
 * to stream all of x_proj through one SM, 46-74 us per step on the H200 against ~15 us for the
 * two launches.) */
static int decode_fusion_from_env(int *out)
{
    const char *v = getenv("BMOJO_DECODE_FUSION");
    *out = -1;
    if (!v || !*v || !strcmp(v, "auto")) return 0;
    if (!strcmp(v, "on")) *out = 1;
    else if (!strcmp(v, "off")) *out = 0;
    else return bm_fail(BMOJO_EINVAL, "BMOJO_DECODE_FUSION=%s: expected auto, on or off", v);
    return 0;
}

/* BMOJO_BBWD picks how the B'MOJO attention's backward gets dS for dq (BM_BBWD_*): recompute
 * (the default until store is measured on a GPU) or store (B*T*H*(window+memory) more floats of
 * scratch; cl/bmojo_backward.cl, "The store path"). */
static int bmojo_bwd_mode_from_env(int *out)
{
    const char *v = getenv("BMOJO_BBWD");
    *out = BM_BBWD_RECOMPUTE;
    if (!v || !*v || !strcmp(v, "recompute")) return 0;
    if (!strcmp(v, "store")) *out = BM_BBWD_STORE;
    else return bm_fail(BMOJO_EINVAL, "BMOJO_BBWD=%s: expected recompute or store", v);
    return 0;
}

/* BMOJO_GEMM picks the GEMM kernel for more than BM_GEMV_MAX_ROWS rows: auto, clblast, own (our
 * cl/gemm_nt.cl, tiles chosen per shape), own-big, own-thin (one tile configuration for all
 * shapes), own-cpu (cl/gemm_nt_cpu.cl, the CPU kernel, on any device). BMOJO_GEMM_SPLITK: auto or the number of K splits of the own kernel (1 = none). */
static int gemm_mode_from_env(int *mode, int *split_k)
{
    static const char *const names[] = {"auto", "clblast", "own", "own-big", "own-thin", "own-cpu"};
    const char *v = getenv("BMOJO_GEMM");
    *mode = BM_GEMM_MODE_AUTO;
    if (v && *v) {
        int found = -1;
        for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
            if (!strcmp(v, names[i])) found = i;
        if (found < 0) return bm_fail(BMOJO_EINVAL, "BMOJO_GEMM=%s: expected auto, clblast, own, own-big, own-thin or own-cpu", v);
        *mode = found; /* names[] is in BM_GEMM_MODE_* order */
    }
    return int_from_env("BMOJO_GEMM_SPLITK", 0, 1, 64, 0, split_k);
}

int bmojo_runtime_create(const char *device_spec, bmojo_runtime **out)
{
    if (!out) return bm_fail(BMOJO_EINVAL, "bmojo_runtime_create: out is NULL");
    *out = NULL;
    bm_rt *rt = calloc(1, sizeof *rt);
    if (!rt) return bm_fail(BMOJO_ENOMEM, "bmojo_runtime_create: out of host memory");
    atomic_fetch_add(&live_runtimes, 1);
    int st = gemv_variant_from_env(&rt->gemv_variant);
    if (!st) st = decode_fusion_from_env(&rt->fuse_decode);
    if (!st) st = int_from_env("BMOJO_GEMV_WG", 0, 1, 1024, 1, &rt->gemv_wg);
    if (!st) st = gemm_mode_from_env(&rt->gemm_mode, &rt->gemm_split_k);
    if (!st) st = scan_variant_from_env(&rt->scan_variant, &rt->scan_lanes_ch);
    if (!st) st = bmojo_bwd_mode_from_env(&rt->bmojo_bwd_mode);
    if (!st) st = int_from_env("BMOJO_BMOJO_SPLIT", 0, 1, 64, 0, &rt->bmojo_split); /* B'MOJO attention key splits */
    if (!st) st = int_from_env("BMOJO_PREFILL_CHUNK", BM_PREFILL_CHUNK_ROWS, 1, 1 << 22, 0, &rt->prefill_chunk_rows);
    /* BMOJO_SYNC=1: wait after every kernel, fill and copy, so a command failing on the device is named */
    if (!st) st = int_from_env("BMOJO_SYNC", 0, 0, 1, 0, &rt->sync_launches);
    /* BMOJO_ARENA_SEPARATE=1: the training arena hands out one allocation per take (arena.h) */
    if (!st) st = int_from_env("BMOJO_ARENA_SEPARATE", 0, 0, 1, 0, &rt->arena_separate);
    /* BMOJO_STACK_LINEAR=0: training's side-by-side projections (Q|K|V, gate|up) one GEMM each */
    if (!st) st = int_from_env("BMOJO_STACK_LINEAR", 1, 0, 1, 0, &rt->stack_linear);
    /* BMOJO_COMPACT_HEAD=0: training's head, loss and their gradients over every row of a batch */
    if (!st) st = int_from_env("BMOJO_COMPACT_HEAD", 1, 0, 1, 0, &rt->compact_head);
    const char *prof = getenv("BMOJO_PROFILE");
    rt->profile.enabled = prof && *prof && strcmp(prof, "0") != 0;
    if (!st) st = bm_device_select(device_spec, &rt->platform, &rt->device, &rt->desc);
    if (!st) st = bm_device_limits_query(rt->device, &rt->lim);
    if (!st && rt->fuse_decode < 0) rt->fuse_decode = rt->lim.is_gpu;
    if (!st) {
        cl_int err = CL_SUCCESS;
        cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt->platform, 0};
        rt->ctx = clCreateContext(props, 1, &rt->device, NULL, NULL, &err);
        st = bm_cl_check(err, "clCreateContext");
        if (!st) {
            /* Profiling only when asked: on the H200 (NVIDIA OpenCL) a profiling queue costs every
             * launch a pair of timestamps. */
            rt->queue = clCreateCommandQueue(rt->ctx, rt->device, rt->profile.enabled ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
            st = bm_cl_check(err, "clCreateCommandQueue");
        }
    }
    if (!st) {
        char opts[256];
        st = bm_build_options_for(&rt->lim, opts, sizeof opts);
        if (!st) st = append_extra_defines(opts, &rt->build_options);
    }
    if (!st) st = build_program(rt);
    if (st) {
        bm_fail_context(st, "opening OpenCL device%s%s", device_spec ? " " : "", device_spec ? device_spec : "");
        bmojo_runtime_free(rt);
        return st;
    }
    *out = rt;
    return 0;
}

void bmojo_runtime_free(bmojo_runtime *rt)
{
    if (!rt) return;
    if (rt->queue) clFinish(rt->queue);
    bm_profile_free(&rt->profile);
    bm_scratch_free(&rt->scratch);
    drop_program(rt);
    if (rt->queue) clReleaseCommandQueue(rt->queue);
    if (rt->ctx) clReleaseContext(rt->ctx);
    free(rt->build_options);
    free(rt);
    if (atomic_fetch_sub(&live_runtimes, 1) == 1) CLBlastClearCache();
}

int bmojo_runtime_device(const bmojo_runtime *rt, bmojo_device_desc *out)
{
    if (!rt || !out) return bm_fail(BMOJO_EINVAL, "bmojo_runtime_device: NULL argument");
    *out = rt->desc;
    return 0;
}

const char *bmojo_runtime_build_options(const bmojo_runtime *rt) { return rt && rt->build_options ? rt->build_options : ""; }

const char *bmojo_runtime_warning(const bmojo_runtime *rt) { return rt && rt->warning[0] ? rt->warning : NULL; }

cl_kernel bm_kernel(bm_rt *rt, const char *name)
{
    if (!rt || !name) {
        bm_fail(BMOJO_EINVAL, "bm_kernel: NULL argument");
        return NULL;
    }
    int lo = 0, hi = rt->n_kernels - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(rt->kernels[mid].name, name);
        if (c == 0) return rt->kernels[mid].kernel;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    bm_fail(BMOJO_EINVAL, "no kernel named %s in the program (%d kernels built)", name, rt->n_kernels);
    return NULL;
}

int bm_launch(bm_rt *rt, cl_kernel k, const char *name, cl_uint dims, const size_t *global, const size_t *local)
{
    if (!name) name = "?";
    if (!rt || !k || !global || dims < 1 || dims > 3)
        return bm_fail(BMOJO_EINVAL, "launching kernel %s: NULL kernel/global or %u dimensions", name, dims);
    size_t g[3] = {1, 1, 1};
    size_t wg_total = 1;
    for (cl_uint i = 0; i < dims; i++) {
        if (global[i] == 0) return 0; /* nothing to do (OpenCL 1.2 rejects empty ranges) */
        g[i] = global[i];
        if (local) {
            if (local[i] == 0 || local[i] > rt->lim.max_wi[i])
                return bm_fail(BMOJO_EINVAL, "launching kernel %s: local size %zu in dimension %u (device max %zu)",
                               name, local[i], i, rt->lim.max_wi[i]);
            wg_total *= local[i];
            g[i] = (g[i] + local[i] - 1) / local[i] * local[i];
        }
    }
    if (local && wg_total > rt->lim.max_wg)
        return bm_fail(BMOJO_EINVAL, "launching kernel %s: work-group of %zu items exceeds the device maximum %zu",
                       name, wg_total, rt->lim.max_wg);
    cl_event ev = NULL;
    cl_int err = clEnqueueNDRangeKernel(rt->queue, k, dims, NULL, g, local, 0, NULL, rt->profile.enabled ? &ev : NULL);
    if (ev) bm_profile_record(&rt->profile, name, ev);
    if (err == CL_SUCCESS && rt->sync_launches) {
        cl_int fe = clFinish(rt->queue);
        if (fe != CL_SUCCESS)
            return bm_fail(BMOJO_EOPENCL, "kernel %s (global %zu,%zu,%zu local %zu) failed on the device: %s (%d)", name,
                           g[0], g[1], g[2], local ? local[0] : 0, bm_cl_error_name(fe), (int)fe);
    }
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "launching kernel %s (global %zu,%zu,%zu local %zu,%zu,%zu): %s (%d)", name, g[0],
                   g[1], g[2], local ? local[0] : 0, local && dims > 1 ? local[1] : 0, local && dims > 2 ? local[2] : 0,
                   bm_cl_error_name(err), (int)err);
}

/* The widest fill pattern (4, 2 or 1 bytes) that offset and size are multiples of, as
 * clEnqueueFillBuffer requires. */
static size_t fill_pattern_size(size_t off, size_t bytes)
{
    if (off % 4 == 0 && bytes % 4 == 0) return 4;
    if (off % 2 == 0 && bytes % 2 == 0) return 2;
    return 1;
}

/* Enqueues zeros over [off, off + bytes) of m. NVIDIA's driver 580 fails a fill whose range ends
 * at 8 GiB or more into its buffer (H100: one fill of 7.9 GiB worked, of 8.1 GiB broke the queue
 * with CL_INVALID_COMMAND_QUEUE at the next clFinish, and a 10.6 GiB training arena's zero fill
 * did the same), while fills of sub-buffers at origins up to 16 GiB work. So a range ending past
 * BM_FILL_PIECE_BYTES is filled in pieces of at most that size, each through its own sub-buffer
 * of m's root buffer (its origin rounded down to the base alignment, the fill starting `lead`
 * bytes in). The queue is waited for before the pieces are released. Under BMOJO_SYNC every fill
 * is waited for. */
static cl_int fill_zero_pieces(bm_rt *rt, cl_mem m, size_t off, size_t bytes)
{
    static const cl_uint zero = 0;
    cl_int err = CL_SUCCESS;
    if (off + bytes <= BM_FILL_PIECE_BYTES) {
        err = clEnqueueFillBuffer(rt->queue, m, &zero, fill_pattern_size(off, bytes), off, bytes, 0, NULL, NULL);
        if (err == CL_SUCCESS && rt->sync_launches) err = clFinish(rt->queue);
        return err;
    }
    cl_mem root = NULL;
    size_t base = 0, align = rt->lim.base_align ? rt->lim.base_align : 1;
    err = clGetMemObjectInfo(m, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof root, &root, NULL);
    if (err == CL_SUCCESS && root) err = clGetMemObjectInfo(m, CL_MEM_OFFSET, sizeof base, &base, NULL);
    if (err != CL_SUCCESS) return err;
    if (!root) root = m;
    while (bytes > 0 && err == CL_SUCCESS) {
        size_t n = bytes > BM_FILL_PIECE_BYTES ? BM_FILL_PIECE_BYTES : bytes;
        size_t at = base + off, origin = at - at % align, lead = at - origin;
        cl_buffer_region region = {origin, lead + n};
        cl_mem piece = clCreateSubBuffer(root, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
        if (err == CL_SUCCESS)
            err = clEnqueueFillBuffer(rt->queue, piece, &zero, fill_pattern_size(lead, n), lead, n, 0, NULL, NULL);
        /* wait before the release: the NVIDIA driver has crashed releasing sub-buffers in use */
        cl_int fe = clFinish(rt->queue);
        if (err == CL_SUCCESS) err = fe;
        if (piece) clReleaseMemObject(piece);
        off += n;
        bytes -= n;
    }
    return err;
}

int bm_fill_zero(bm_rt *rt, cl_mem m, size_t offset_bytes, size_t bytes)
{
    if (bytes == 0) return 0;
    cl_int err = fill_zero_pieces(rt, m, offset_bytes, bytes);
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "clEnqueueFillBuffer of %zu bytes at offset %zu failed: %s (%d)", bytes, offset_bytes,
                   bm_cl_error_name(err), (int)err);
}

static int alloc_failure(cl_int err, size_t bytes)
{
    int st = (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY ||
              err == CL_INVALID_BUFFER_SIZE) ? BMOJO_ENOMEM : BMOJO_EOPENCL;
    return bm_fail(st, "allocating a device buffer of %zu bytes (%.1f MiB) failed: %s (%d)", bytes,
                   (double)bytes / 1048576.0, bm_cl_error_name(err), (int)err);
}

int bm_alloc(bm_rt *rt, size_t bytes, cl_mem *out)
{
    if (!rt || !out) return bm_fail(BMOJO_EINVAL, "bm_alloc: NULL argument");
    *out = NULL;
    if (bytes == 0) bytes = 4; /* OpenCL forbids empty buffers; a tiny one keeps callers simple */
    if (rt->lim.max_alloc && bytes > rt->lim.max_alloc)
        return bm_fail(BMOJO_ENOMEM, "allocating a device buffer of %zu bytes (%.1f MiB): larger than the device's "
                       "maximum allocation of %llu bytes", bytes, (double)bytes / 1048576.0,
                       (unsigned long long)rt->lim.max_alloc);
    /* The callers budget whole runs (mem_budget.h); this is the backstop for buffers they do not
     * plan (scratch), where host RAM backs the device: its zero fill would otherwise meet the
     * kernel's OOM killer rather than an error. */
    if (rt->lim.host_memory && bytes >= BM_ALLOC_CHECK_BYTES) {
        int st = bm_mem_check(rt, "a device buffer", 0, bytes, 0);
        if (st) return st;
    }
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(rt->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS || !m) {
        if (m) clReleaseMemObject(m);
        return alloc_failure(err != CL_SUCCESS ? err : CL_MEM_OBJECT_ALLOCATION_FAILURE, bytes);
    }
    /* Zero-filled, so state buffers and padding never hold garbage. Enqueued on the in-order
     * queue, so every later command sees zeros. */
    err = fill_zero_pieces(rt, m, 0, bytes);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(m);
        return alloc_failure(err, bytes);
    }
    atomic_fetch_add(&live_buffers, 1);
    *out = m;
    return 0;
}

long bm_build_tunable(const bm_rt *rt, const char *name, long def)
{
    if (!rt->build_options) return def;
    char key[64];
    snprintf(key, sizeof key, "-D%s=", name);
    const char *p = strstr(rt->build_options, key);
    if (!p) return def;
    long v = strtol(p + strlen(key), NULL, 10);
    return v > 0 ? v : def;
}

int bm_sub_buffer(bm_rt *rt, cl_mem parent, size_t offset, size_t bytes, cl_mem *out)
{
    if (!rt || !parent || !out) return bm_fail(BMOJO_EINVAL, "bm_sub_buffer: NULL argument");
    *out = NULL;
    if (bytes == 0) bytes = 4;
    if (rt->lim.base_align && offset % rt->lim.base_align)
        return bm_fail(BMOJO_EINVAL, "bm_sub_buffer: offset %zu is not a multiple of the device's %zu-byte alignment",
                       offset, rt->lim.base_align);
    cl_buffer_region region = {offset, bytes};
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
    if (err != CL_SUCCESS || !m) {
        if (m) clReleaseMemObject(m);
        return bm_cl_check(err != CL_SUCCESS ? err : CL_INVALID_VALUE, "clCreateSubBuffer");
    }
    atomic_fetch_add(&live_buffers, 1);
    *out = m;
    return 0;
}

void bm_release(cl_mem m)
{
    if (!m) return;
    clReleaseMemObject(m);
    atomic_fetch_sub(&live_buffers, 1);
}

long bm_live_buffers(void) { return atomic_load(&live_buffers); }

int bm_upload(bm_rt *rt, cl_mem dst, size_t offset_bytes, const void *src, size_t bytes)
{
    if (bytes == 0) return 0;
    cl_int err = clEnqueueWriteBuffer(rt->queue, dst, CL_TRUE, offset_bytes, bytes, src, 0, NULL, NULL);
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "uploading %zu bytes at offset %zu (clEnqueueWriteBuffer) failed: %s (%d)", bytes,
                   offset_bytes, bm_cl_error_name(err), (int)err);
}

int bm_download(bm_rt *rt, cl_mem src, size_t offset_bytes, void *dst, size_t bytes)
{
    if (bytes == 0) return 0;
    cl_int err = clEnqueueReadBuffer(rt->queue, src, CL_TRUE, offset_bytes, bytes, dst, 0, NULL, NULL);
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "downloading %zu bytes at offset %zu (clEnqueueReadBuffer) failed: %s (%d)", bytes,
                   offset_bytes, bm_cl_error_name(err), (int)err);
}

int bm_copy(bm_rt *rt, cl_mem src, size_t src_off, cl_mem dst, size_t dst_off, size_t bytes)
{
    if (bytes == 0) return 0;
    cl_int err = clEnqueueCopyBuffer(rt->queue, src, dst, src_off, dst_off, bytes, 0, NULL, NULL);
    if (err == CL_SUCCESS && rt->sync_launches) err = clFinish(rt->queue);
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "copying %zu bytes (offsets %zu -> %zu, clEnqueueCopyBuffer) failed: %s (%d)", bytes,
                   src_off, dst_off, bm_cl_error_name(err), (int)err);
}

int bm_download_rows(bm_rt *rt, cl_mem src, size_t src_off, size_t src_pitch, void *dst, size_t dst_pitch,
                     size_t width, size_t rows)
{
    if (width == 0 || rows == 0) return 0;
    if (rows == 1) return bm_download(rt, src, src_off, dst, width);
    size_t bo[3] = {src_off, 0, 0}, ho[3] = {0, 0, 0}, region[3] = {width, rows, 1};
    cl_int err = clEnqueueReadBufferRect(rt->queue, src, CL_TRUE, bo, ho, region, src_pitch, 0, dst_pitch, 0, dst, 0,
                                         NULL, NULL);
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "downloading %zu rows of %zu bytes (clEnqueueReadBufferRect) failed: %s (%d)", rows,
                   width, bm_cl_error_name(err), (int)err);
}

int bm_upload_rows_async(bm_rt *rt, const void *src, size_t src_pitch, cl_mem dst, size_t dst_off, size_t dst_pitch,
                         size_t width, size_t rows)
{
    if (width == 0 || rows == 0) return 0;
    if (rows == 1) {
        cl_int err = clEnqueueWriteBuffer(rt->queue, dst, CL_FALSE, dst_off, width, src, 0, NULL, NULL);
        if (err == CL_SUCCESS) return 0;
        return bm_fail(BMOJO_EOPENCL, "uploading %zu bytes (clEnqueueWriteBuffer) failed: %s (%d)", width,
                       bm_cl_error_name(err), (int)err);
    }
    size_t bo[3] = {dst_off, 0, 0}, ho[3] = {0, 0, 0}, region[3] = {width, rows, 1};
    cl_int err = clEnqueueWriteBufferRect(rt->queue, dst, CL_FALSE, bo, ho, region, dst_pitch, 0, src_pitch, 0, src, 0,
                                          NULL, NULL);
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "uploading %zu rows of %zu bytes (clEnqueueWriteBufferRect) failed: %s (%d)", rows,
                   width, bm_cl_error_name(err), (int)err);
}

int bm_finish(bm_rt *rt)
{
    cl_int err = clFinish(rt->queue);
    if (err == CL_SUCCESS) return 0;
    return bm_fail(BMOJO_EOPENCL, "clFinish failed: %s (%d) (an earlier enqueued command failed on the device)",
                   bm_cl_error_name(err), (int)err);
}
