/* runtime.h — the OpenCL side of a bmojo_runtime: device selection, context and queue, the
 * kernel program (embedded cl/<name>.cl sources, built at start-up with -D tunables from device
 * queries, cached on disk), kernel lookup, launching, buffers and CLBlast GEMM. */
#ifndef BM_RUNTIME_H
#define BM_RUNTIME_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#include "bmojo.h"
#include "profile.h"
#include "scratch.h"

/* Device facts the kernels and launchers size themselves by. */
typedef struct {
    size_t max_wg;          /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    size_t max_wi[3];       /* CL_DEVICE_MAX_WORK_ITEM_SIZES */
    uint64_t local_mem;     /* CL_DEVICE_LOCAL_MEM_SIZE */
    uint64_t global_mem, max_alloc;
    uint32_t compute_units;
    int is_gpu;
    int host_memory;        /* device buffers come from host RAM (CPU devices, integrated GPUs) */
    int local_mem_is_global;/* CL_GLOBAL local memory type (CPU devices) */
    size_t wg;              /* the work-group size kernels are built for (BM_WG, a power of 2) */
    size_t base_align;      /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes: a sub-buffer's origin alignment */
} bm_device_limits;

typedef struct {
    const char *name;
    cl_kernel kernel;
} bm_kernel_entry;

/* A prefill runs in chunks of about this many rows (B * tokens), the state carried across, so
 * its activations are bounded whatever T is (16384 rows of bmojo-130m: 0.73 GiB). On the H200 a
 * 16384-token prefill of bmojo-130m ran at 88,953 tokens/s in one pass and 84,601 in two chunks
 * of 8192 (docs/performance.md), so chunks are no smaller than that. */
#define BM_PREFILL_CHUNK_ROWS 16384
/* Device buffers from this size up are checked against the host's free memory on host-memory
 * devices (bm_alloc's backstop to the budget). */
#define BM_ALLOC_CHECK_BYTES (16u << 20)
/* A zero fill whose range ends past this many bytes of its buffer goes in pieces of this size,
 * each through a sub-buffer (runtime.c fill_zero_pieces: NVIDIA fails fills ending at 8 GiB). */
#define BM_FILL_PIECE_BYTES ((size_t)1 << 30)

/* Which skinny-GEMM kernel decoding uses (cl/gemv.cl): auto = float4 whenever aligned. */
enum { BM_GEMV_VARIANT_AUTO = 0, BM_GEMV_VARIANT_SCALAR = 1, BM_GEMV_VARIANT_VEC4 = 2 };

/* Which kernel bm_gemm sends more than BM_GEMV_MAX_ROWS rows to (BMOJO_GEMM at start-up): auto (the
 * rule in gemm.c's use_own_gemm), CLBlast, or our own cl/gemm_nt.cl with automatic, big or thin
 * tiles. */
enum {
    BM_GEMM_MODE_AUTO = 0,
    BM_GEMM_MODE_CLBLAST = 1,
    BM_GEMM_MODE_OWN = 2,
    BM_GEMM_MODE_OWN_BIG = 3,
    BM_GEMM_MODE_OWN_THIN = 4,
    BM_GEMM_MODE_OWN_CPU = 5
};
/* Which selective-scan kernel bm_op_scan uses: auto = the chunked one (cl/scan.cl) on GPUs, the CPU
 * one (cl/scan_cpu.cl) on CPUs where d_state fits it; lanes = the one-pass cl/scan_lanes.cl for
 * T > 1 where it fits (measured slower; kept for measurements); cpu = cl/scan_cpu.cl anywhere it fits. */
/* Which RoPE kernel: auto = one work-item per (row, head, pair) on GPUs, per position on CPUs. */
enum { BM_ROPE_FORM_AUTO = 0, BM_ROPE_FORM_PAIRS = 1, BM_ROPE_FORM_POSITIONS = 2 };
/* Which form of an op with a CPU kernel (rt->bmojo_attn_form, rmsnorm_form, xent_form,
 * attn_bwd_form, bmojo_bwd_form, scan_bwd_form, conv_bwd_form, bmojo_innov_form): auto = the GPU form on GPUs, the CPU form on CPUs (each launcher says where else
 * it keeps the GPU form); tests force each on every device. */
enum { BM_FORM_AUTO = 0, BM_FORM_GPU = 1, BM_FORM_CPU = 2 };

/* How the B'MOJO attention's backward gets dS for dq (rt->bmojo_bwd_mode, BMOJO_BBWD): recompute
 * = bm_bmojo_bwd_q_tiled recomputes S and dP itself; store = the key kernels store dS and
 * bm_bmojo_bwd_dq_tiled reads it (cl/bmojo_backward.cl, "The store path"). */
enum { BM_BBWD_RECOMPUTE = 0, BM_BBWD_STORE = 1 };

enum { BM_SCAN_VARIANT_AUTO = 0, BM_SCAN_VARIANT_CHUNKED = 1, BM_SCAN_VARIANT_LANES = 2, BM_SCAN_VARIANT_CPU = 3 };

/* The ints cl/program_config.cl reports: our GEMM's big tiles (BM, BN, BK, TM, TN), then its thin
 * tiles in the same order, the lanes scan's states per item and steps per tile, the float4
 * GEMV's rows per group, and the CPU GEMM's macro tile (rows of A, rows of W). */
enum {
    BM_CFG_GEMM_BIG = 0,
    BM_CFG_GEMM_THIN = 5,
    BM_CFG_SCANL_SPL = 10,
    BM_CFG_SCANL_TT = 11,
    BM_CFG_GEMV4_NB = 12,
    BM_CFG_GEMMC_MB = 13,
    BM_CFG_GEMMC_NB = 14,
    BM_PROGRAM_CONFIG_INTS = 15
};

struct bmojo_runtime {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue queue;   /* in-order; profiling enabled only while rt->profile.enabled */
    bmojo_device_desc desc;
    bm_device_limits lim;
    cl_program program;
    char *build_options;      /* -D tunables passed to clBuildProgram */
    int n_kernels;
    bm_kernel_entry *kernels; /* every kernel of the program, sorted by name */
    int gemv_variant;         /* BM_GEMV_VARIANT_*: from BMOJO_GEMV at start-up (tests set it) */
    int gemv_wg;              /* float4 GEMV items per group (0: automatic); BMOJO_GEMV_WG, for sweeps */
    int prefill_chunk_rows;   /* rows (B * tokens) of one prefill chunk; BMOJO_PREFILL_CHUNK */
    int bmojo_split;          /* B'MOJO attention key splits, prefill and decoding (0: automatic); BMOJO_BMOJO_SPLIT */
    int fuse_decode;          /* decoding fusions that trade memory or device work for fewer
                                 launches (bmojo's folded y|K|V out_proj): GPUs by default;
                                 BMOJO_DECODE_FUSION=on|off */
    int gemm_mode;            /* BM_GEMM_MODE_*: from BMOJO_GEMM at start-up */
    int gemm_split_k;         /* BMOJO_GEMM_SPLITK: 0 = automatic, else the number of K splits */
    int gemm_ex_cpu_kchunk;   /* rows of K per pass of bm_gemm_ex's CPU path (0: automatic; tests set it) */
    int config[BM_PROGRAM_CONFIG_INTS]; /* the program's compile-time tunables (cl/program_config.cl),
                                           read once at creation; indices BM_CFG_* */
    int scan_variant;         /* BM_SCAN_VARIANT_*: from BMOJO_SCAN at start-up (tests set it) */
    int rope_form;            /* BM_ROPE_FORM_*: auto (0, calloc) unless a test sets it */
    int bmojo_attn_form;      /* BM_FORM_*: the B'MOJO attention's; auto (0, calloc) unless a test sets it */
    int rmsnorm_form;         /* BM_FORM_*: RMSNorm's; auto (0, calloc) unless a test sets it */
    int xent_form;            /* BM_FORM_*: the cross-entropy's; auto (0, calloc) unless a test sets it */
    int attn_bwd_form;        /* BM_FORM_*: the attention backward's; auto (0, calloc) unless a test sets it */
    int bmojo_bwd_form;       /* BM_FORM_*: the B'MOJO attention backward's (op_bmojo_backward.c); auto (0, calloc) unless a test sets it */
    int bmojo_innov_form;     /* BM_FORM_*: the B'MOJO innovation's (op_bmojo_innovation.c); auto (0, calloc) unless a test sets it */
    int conv_bwd_form;        /* BM_FORM_*: the conv1d backward's (op_conv1d_backward.c); auto (0, calloc) unless a test sets it */
    int scan_bwd_form;        /* BM_FORM_*: the selective scan backward's (op_scan_backward.c); auto (0, calloc) unless a test sets it */
    int bmojo_bwd_mode;       /* BM_BBWD_*: from BMOJO_BBWD at start-up (tests set it) */
    int sync_launches;        /* BMOJO_SYNC=1: clFinish after every kernel, fill and copy (names a failing command) */
    int arena_separate;       /* BMOJO_ARENA_SEPARATE=1: one allocation per arena take (arena.h, debugging) */
    int compact_head;         /* BMOJO_COMPACT_HEAD=0: training's head runs every row, not only the scored ones */
    int stack_linear;         /* BMOJO_STACK_LINEAR=0: training runs side-by-side projections one GEMM each
                                 (bm_train_linear_stack; to measure and test the stacked path against) */
    int scan_lanes_ch;        /* channels per work-group of the lanes scan: BMOJO_SCAN_LANES_CH, 0 = auto */
    bm_profile profile;       /* per-kernel device time when BMOJO_PROFILE=1 */
    bm_scratch_stack scratch; /* ops' temporaries (scratch.h) */
    char warning[1400];       /* a problem met while opening that did not stop it (the kernel cache
                                 ignored, and why), for the caller to show once; "" when none */
};

typedef struct bmojo_runtime bm_rt;

/* Whether an op whose form is `form` (BM_FORM_*, one of the rt->*_form fields) runs its CPU kernel:
 * forced, or auto on a device that is not a GPU. */
static inline int bm_form_cpu(const bm_rt *rt, int form)
{
    return form == BM_FORM_CPU || (form == BM_FORM_AUTO && !rt->lim.is_gpu);
}

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *bm_cl_error_name(cl_int err);
/* If err != CL_SUCCESS: sets the detail "OpenCL call `what` failed: CL_... (err)" and returns
 * BMOJO_EOPENCL; else returns 0. */
int bm_cl_check(cl_int err, const char *what);

/* Per-kernel profiling (events on every launch) on or off; recreates the queue when needed. */
int bm_runtime_set_profiling(bm_rt *rt, int on);

/* The value of a -DNAME=V tunable the program was built with (positive integers only; def when
 * absent): launchers size their launches by what the kernels were compiled with. */
long bm_build_tunable(const bm_rt *rt, const char *name, long def);

/* Kernel by name; NULL (and the detail set) if the program has none. */
cl_kernel bm_kernel(bm_rt *rt, const char *name);

/* Sets kernel arguments: BM_ARG(k, index, value) for scalars and cl_mem,
 * BM_ARG_LOCAL(k, index, bytes) for local memory. Both evaluate to a cl_int. */
#define BM_ARG(k, i, v) clSetKernelArg((k), (cl_uint)(i), sizeof(v), &(v))
#define BM_ARG_LOCAL(k, i, bytes) clSetKernelArg((k), (cl_uint)(i), (size_t)(bytes), NULL)

/* Enqueues an NDRange (global rounded up to a multiple of local when local is given; local may
 * be NULL). `name` is used in error messages. Never blocks. */
int bm_launch(bm_rt *rt, cl_kernel k, const char *name, cl_uint dims, const size_t *global, const size_t *local);

/* Sets a cl_int setter status aside: returns BMOJO_EOPENCL with the kernel name and argument
 * index if any clSetKernelArg failed. Use: err |= BM_ARG(...); ... bm_args_check(err, "scan"). */
int bm_args_check(cl_int err, const char *kernel_name);

/* Device buffers. bm_alloc zero-fills. bm_release accepts NULL. */
int bm_alloc(bm_rt *rt, size_t bytes, cl_mem *out);
void bm_release(cl_mem m);
int bm_upload(bm_rt *rt, cl_mem dst, size_t offset_bytes, const void *src, size_t bytes);   /* blocking */
int bm_download(bm_rt *rt, cl_mem src, size_t offset_bytes, void *dst, size_t bytes);       /* blocking */
int bm_copy(bm_rt *rt, cl_mem src, size_t src_off, cl_mem dst, size_t dst_off, size_t bytes); /* enqueued */
/* `rows` rows of `width` bytes, each `src_pitch` / `dst_pitch` bytes apart (a column block of a
 * row-major matrix): device to host, blocking. */
int bm_download_rows(bm_rt *rt, cl_mem src, size_t src_off, size_t src_pitch, void *dst, size_t dst_pitch,
                     size_t width, size_t rows);
/* Host to device, enqueued without waiting: src must stay valid until the queue is finished. */
int bm_upload_rows_async(bm_rt *rt, const void *src, size_t src_pitch, cl_mem dst, size_t dst_off, size_t dst_pitch,
                         size_t width, size_t rows);
int bm_fill_zero(bm_rt *rt, cl_mem m, size_t offset_bytes, size_t bytes);                  /* enqueued */
/* A buffer that is bytes [offset, offset + bytes) of parent (offset a multiple of
 * rt->lim.base_align); counted and released like bm_alloc's (release it before the parent). */
int bm_sub_buffer(bm_rt *rt, cl_mem parent, size_t offset, size_t bytes, cl_mem *out);
int bm_finish(bm_rt *rt);
/* Device buffers made by bm_alloc and not yet released, over all runtimes (leak checks). */
long bm_live_buffers(void);

/* How the elements of a weight matrix are stored on the device: fp32, or IEEE half (f16) that
 * every kernel reading it widens to fp32 as it loads (`--weights f16`; arithmetic stays fp32).
 * Only the operand W of the GEMMs (bm_gemm, the skinny kernels of ops.h) and the embedding table
 * (bm_op_embed) may be f16; everything else the kernels read is fp32. */
typedef enum { BM_STORE_F32 = 0, BM_STORE_F16 = 1 } bm_store;
/* A weight operand: its buffer and its storage (offsets and leading dimensions count elements). */
typedef struct {
    cl_mem buf;
    bm_store store;
} bm_wmat;
/* An fp32 operand (activations, the training pass's parameters, dt_proj). */
static inline bm_wmat bm_wf32(cl_mem buf)
{
    bm_wmat w = {buf, BM_STORE_F32};
    return w;
}
/* Bytes per element of a storage. */
static inline size_t bm_store_bytes(bm_store s) { return s == BM_STORE_F16 ? 2 : 4; }

/* Row-major GEMM through our kernels or CLBlast (BMOJO_GEMM; few rows: bm_op_gemv): C[M,N] =
 * A[M,K] * W[N,K]^T + beta * C, with leading dimensions and element offsets; W fp32 or f16 (an f16
 * W always takes our kernels: CLBlast has no f16-storage, fp32-arithmetic GEMM). Enqueued, never
 * blocks. */
int bm_gemm(bm_rt *rt, size_t M, size_t N, size_t K,
            cl_mem A, size_t a_off, size_t lda,
            bm_wmat W, size_t w_off, size_t ldw,
            float beta, cl_mem C, size_t c_off, size_t ldc);
/* C[M,N] = A[M,K] * B[K,N] (both row-major, no transpose, beta 0) through CLBlast: for weight
 * products at load time (bmojo's folded Wk|Wv . out_proj). */
int bm_gemm_nn(bm_rt *rt, size_t M, size_t N, size_t K, cl_mem A, size_t a_off, size_t lda, cl_mem Bm, size_t b_off,
               size_t ldb, cl_mem C, size_t c_off, size_t ldc);

/* Embedded kernel sources (generated from cl/<name>.cl at build time, in file order). */
extern const int bm_cl_source_count;
extern const char *const bm_cl_source_names[];
extern const char *const bm_cl_sources[];

/* Program cache (program_cache.c). Key: a hash of source, options, device name, driver and
 * platform versions. Location: $BMOJO_CACHE_DIR, else $XDG_CACHE_HOME/bmojo, else
 * ~/.cache/bmojo; BMOJO_CACHE=0 disables it. Untrusted: folders and entries of other users or
 * writable by others are ignored (rt->warning says so), an entry is taken out of the cache while
 * the driver loads it. Writes are atomic (temp file, fsync, rename). */
typedef struct {
    char path[1024];    /* <dir>/<32 hex>.bin */
    char claimed[1100]; /* the entry's name while this process holds it ("" when none) */
    int enabled;
} bm_program_cache_key;
/* Also deletes what crashed processes left in the folder (claimed entries, temporary files). */
void bm_program_cache_key_make(bm_rt *rt, const char *source, const char *options, bm_program_cache_key *key);
/* Claims the entry (takes it out of the cache), loads and builds its binary; NULL if absent,
 * disabled, ignored or unusable (never an error; an unusable entry is deleted). On success the
 * entry stays claimed until bm_program_cache_release. */
cl_program bm_program_cache_load(bm_rt *rt, bm_program_cache_key *key, const char *options);
/* Puts a claimed entry back when usable (its program built, kernels created and ran), else
 * deletes it. Nothing to do when nothing is claimed. */
void bm_program_cache_release(bm_program_cache_key *key, int usable);
/* Stores the binary of a built program; failures are ignored (the cache is an optimization). */
void bm_program_cache_store(bm_rt *rt, const bm_program_cache_key *key, cl_program prog);

/* ---- Device enumeration and set-up (devices.c; used by runtime.c and the CLI) ---- */

/* Picks a device by spec ("P:D", a case-insensitive part of the device name, or NULL/"" for
 * $BMOJO_DEVICE, else the first GPU, else the first device) and describes it. BMOJO_ENODEV
 * with the list of devices in the detail when nothing matches. */
int bm_device_select(const char *spec, cl_platform_id *platform, cl_device_id *device, bmojo_device_desc *desc);
/* Queries the limits kernels and launchers size themselves by (fills lim->wg too). */
int bm_device_limits_query(cl_device_id device, bm_device_limits *lim);
/* The clBuildProgram options for a device ("-cl-std=CL1.2 -DBM_WG=.. -DBM_LOCAL_MEM=..
 * -DBM_IS_GPU=.."); derived here only. Writes into buf (n bytes); BMOJO_EINVAL if too small. */
int bm_build_options_for(const bm_device_limits *lim, char *buf, size_t n);

#endif
