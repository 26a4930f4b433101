/* op_scan.c — host launcher of the Mamba-1 selective scan (contract: bm_op_scan in ops.h).
 * Two kernels (rt->scan_variant: BMOJO_SCAN=auto|chunked|lanes at start-up):
 *   - lanes (cl/scan_lanes.cl): one pass over time, a work-item per (sequence, channel, group of
 *     BM_SCANL_SPL states), only when forced (BMOJO_SCAN=lanes): it needs one exp per (t, channel,
 *     state) where the chunked kernel needs two, but measured 221 us against the chunked kernel's
 *     99 on the H200 (T 2048, di 1536, n 16; docs/performance.md) and is slower on POCL too.
 *   - chunked (cl/scan.cl): a work-item per (sequence, channel, time chunk) with the states in
 *     registers; the launcher picks the time-chunk length and work-group size from device facts
 *     (rt->lim), then enqueues either one pass (one chunk: short sequences, decoding, or enough
 *     channels to fill the device) or three: chunk end states from zero, a sequential combine
 *     over chunks, and the final recurrence of every chunk from its true initial state. CPUs
 *     (POCL) always use it: one pass, whole channels per work-item, no barriers.
 *   Forcing `lanes` falls back to chunked only where the lanes kernel does not fit (large n).
 *   T = 1 with dt_proj always takes the fused decoding step (bm_scan_step).
 * Sweeping the lanes kernel on a GPU (the "scan" row of `bmojo bench --ops`: B 1, T 2048,
 * d_inner 1536, d_state 16): BMOJO_SCAN=chunked|lanes, BMOJO_SCAN_LANES_CH=N (channels per
 * work-group), BMOJO_CL_DEFINES="-DBM_SCANL_SPL=1|2|4 -DBM_SCANL_TT=16|32|64". */
#include <stdint.h>

#include "error.h"
#include "ops.h"
#include "ops/op_scan.h"

/* Tunables (compile with -D to change). */
#ifndef BM_SCAN_CHUNK
#define BM_SCAN_CHUNK 32            /* shortest time chunk worth a separate work-item */
#endif
#ifndef BM_SCAN_GPU_WI_PER_CU
#define BM_SCAN_GPU_WI_PER_CU 384   /* work-items per compute unit to aim for on GPUs */
#endif
#ifndef BM_SCAN_GPU_CHUNK_MAX
#define BM_SCAN_GPU_CHUNK_MAX 64    /* longest chunk on GPUs: a step is latency-bound there, so
                                       shorter chunks win until the scratch traffic grows (H200:
                                       B=4, T=2048: L=64 285 us, L=228 315 us) */
#endif
#ifndef BM_SCAN_WG_MAX
#define BM_SCAN_WG_MAX 128          /* channels per work-group (caps rt->lim.wg) */
#endif
#ifndef BM_SCAN_LOCAL_BYTES
#define BM_SCAN_LOCAL_BYTES 8192    /* B_t/C_t staging tile per work-group */
#endif
#ifndef BM_SCANL_WG_TARGET
#define BM_SCANL_WG_TARGET 64       /* lanes kernel: work-items per group to aim for (nl * channels) */
#endif
#ifndef BM_SCANL_GROUPS_PER_CU
#define BM_SCANL_GROUPS_PER_CU 2    /* lanes kernel on GPUs: narrower groups (fewer channels) until
                                       every compute unit gets this many; B=1, di=1536, n=16 on
                                       132 CUs: 4 channels of 16 lanes, 384 groups */
#endif

int bm_scan_chunk_len(const bm_rt *rt, int B, int di, int T)
{
    if (T <= BM_SCAN_CHUNK || B <= 0 || di <= 0) return T > 0 ? T : 1;
    /* A work-item owns (sequence, channel, chunk): split time until the device is full. CPUs
     * are full with one work-group per core, and a second pass only costs them work; on GPUs a
     * step is latency-bound, so chunks also stay short (BM_SCAN_GPU_CHUNK_MAX). */
    size_t cu = rt->lim.compute_units ? rt->lim.compute_units : 1;
    size_t target = cu * (rt->lim.is_gpu ? (size_t)BM_SCAN_GPU_WI_PER_CU : (rt->lim.wg ? rt->lim.wg : 64));
    size_t lanes = (size_t)B * (size_t)di;
    if (lanes >= target && !rt->lim.is_gpu) return T;
    size_t nc = (target + lanes - 1) / lanes;
    size_t L = ((size_t)T + nc - 1) / nc;
    if (rt->lim.is_gpu && L > BM_SCAN_GPU_CHUNK_MAX) L = BM_SCAN_GPU_CHUNK_MAX;
    if (L < BM_SCAN_CHUNK) L = BM_SCAN_CHUNK;
    return L >= (size_t)T ? T : (int)L;
}

/* Work-group size for a kernel: a power of two <= every device/kernel limit, no wider than the
 * (power-of-two rounded) channel count. */
static int scan_wg(bm_rt *rt, cl_kernel k, int di, size_t *wg_out)
{
    size_t kwg = 0;
    cl_int err = clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL);
    if (err != CL_SUCCESS) return bm_cl_check(err, "clGetKernelWorkGroupInfo(scan, CL_KERNEL_WORK_GROUP_SIZE)");
    size_t cap = rt->lim.wg ? rt->lim.wg : 64;
    if (cap > BM_SCAN_WG_MAX) cap = BM_SCAN_WG_MAX;
    if (rt->lim.max_wg && cap > rt->lim.max_wg) cap = rt->lim.max_wg;
    if (rt->lim.max_wi[0] && cap > rt->lim.max_wi[0]) cap = rt->lim.max_wi[0];
    if (kwg && cap > kwg) cap = kwg;
    size_t wg = 1;
    while (wg * 2 <= cap && wg < (size_t)di) wg *= 2;
    *wg_out = wg;
    return 0;
}

static int scan_check_args(const bm_scan_args *a)
{
    if (a->B < 0 || a->T < 0 || a->di < 0 || a->n < 1)
        return bm_fail(BMOJO_EINVAL, "scan: bad size (B=%d T=%d di=%d must be >= 0, d_state n=%d >= 1)", a->B, a->T,
                       a->di, a->n);
    if (!a->u || !a->dt || !a->dt_bias || !a->A || !a->bc || !a->D || !a->z || !a->state || !a->y)
        return bm_fail(BMOJO_EINVAL, "scan: NULL buffer (u, dt, dt_bias, A, bc, D, z, state and y are all required)");
    size_t n = (size_t)a->n, di = (size_t)a->di;
    if (a->dt_ld < di || a->z_ld < a->z_col + di || a->bc_ld < a->b_col + n || a->bc_ld < a->c_col + n)
        return bm_fail(BMOJO_EINVAL,
                       "scan: views do not fit their rows (dt_ld=%zu, z_ld=%zu z_col=%zu, bc_ld=%zu b_col=%zu c_col=%zu; di=%d n=%d)",
                       a->dt_ld, a->z_ld, a->z_col, a->bc_ld, a->b_col, a->c_col, a->di, a->n);
    if (a->dt_ld > UINT32_MAX || a->z_ld > UINT32_MAX || a->bc_ld > UINT32_MAX)
        return bm_fail(BMOJO_ERANGE, "scan: leading dimension over 2^32 (dt_ld=%zu z_ld=%zu bc_ld=%zu)", a->dt_ld, a->z_ld, a->bc_ld);
    return 0;
}

#define SCAN_STEP_QPC 4 /* mirrors BM_SCAN_STEP_QPC in cl/scan.cl: work-items per channel */

/* The decoding step with dt_proj fused (cl/scan.cl: bm_scan_step). */
static int scan_step_fused(bm_rt *rt, const bm_scan_args *a)
{
    cl_kernel k = bm_kernel(rt, "bm_scan_step");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "scan step");
    size_t g[2], l[2];
    int st = bm_scan_step_setup(rt, k, a, g, l);
    if (!st) st = bm_launch(rt, k, "bm_scan_step", 2, g, l);
    return st;
}

cl_int bm_scan_step_args(cl_kernel k, const bm_scan_args *a)
{
    cl_int di = a->di, n = a->n, R = a->dt_rank;
    cl_uint bc_ld = (cl_uint)a->bc_ld, b_col = (cl_uint)a->b_col, c_col = (cl_uint)a->c_col;
    cl_uint z_ld = (cl_uint)a->z_ld, z_col = (cl_uint)a->z_col;
    return BM_ARG(k, 0, di) | BM_ARG(k, 1, n) | BM_ARG(k, 2, R) | BM_ARG(k, 3, a->u) | BM_ARG(k, 4, a->bc) |
           BM_ARG(k, 5, bc_ld) | BM_ARG(k, 6, b_col) | BM_ARG(k, 7, c_col) | BM_ARG(k, 8, a->dt_proj) |
           BM_ARG(k, 9, a->dt_bias) | BM_ARG(k, 10, a->A) | BM_ARG(k, 11, a->D) | BM_ARG(k, 12, a->z) |
           BM_ARG(k, 13, z_ld) | BM_ARG(k, 14, z_col) | BM_ARG(k, 15, a->state) | BM_ARG(k, 16, a->y);
}

int bm_scan_step_setup(bm_rt *rt, cl_kernel k, const bm_scan_args *a, size_t global[2], size_t local[2])
{
    cl_int err = bm_scan_step_args(k, a);
    /* items per group: a power of two of at least QPC, at most 256 (and the device's limits) */
    size_t wg = rt->lim.wg < 256 ? rt->lim.wg : 256, kwg = 0;
    if (clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && wg > kwg)
        wg = kwg;
    while (wg & (wg - 1)) wg &= wg - 1;
    if (wg < SCAN_STEP_QPC)
        return bm_fail(BMOJO_EUNSUPPORTED, "scan step: work-groups of %zu items are fewer than %d", wg, SCAN_STEP_QPC);
    err |= BM_ARG_LOCAL(k, 17, wg * sizeof(float));
    const size_t per_group = wg / SCAN_STEP_QPC;
    global[0] = ((size_t)a->di + per_group - 1) / per_group * wg;
    global[1] = (size_t)a->B;
    local[0] = wg;
    local[1] = 1;
    return bm_args_check(err, "bm_scan_step");
}

/* Geometry of one lanes launch (cl/scan_lanes.cl: bm_scan_lanes). */
typedef struct {
    int nl, chs, part_ld;       /* lanes per channel, channels per group, row of the partial sums */
    size_t wg;                  /* nl * chs */
    size_t l_dd, l_sg, l_bc, l_part; /* local bytes of ldd, lsg, lbc, part */
} scan_lanes_plan;

/* 0 with the plan when the lanes kernel runs these sizes on this device; 1 when it does not fit
 * (n needs more lanes than a work-group has, or more local memory); < 0 on an error. */
static int scan_lanes_plan_make(bm_rt *rt, const bm_scan_args *a, scan_lanes_plan *p)
{
    cl_kernel k = bm_kernel(rt, "bm_scan_lanes");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "scan lanes");
    size_t kwg = 0;
    cl_int err = clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL);
    if (err != CL_SUCCESS) return bm_cl_check(err, "clGetKernelWorkGroupInfo(bm_scan_lanes, CL_KERNEL_WORK_GROUP_SIZE)");
    size_t cap = rt->lim.max_wg ? rt->lim.max_wg : 64;
    if (rt->lim.max_wi[0] && cap > rt->lim.max_wi[0]) cap = rt->lim.max_wi[0];
    if (kwg && cap > kwg) cap = kwg;
    const int spl = rt->config[BM_CFG_SCANL_SPL], tt = rt->config[BM_CFG_SCANL_TT]; /* compiled in (-D) */
    const int nl = (a->n + spl - 1) / spl;
    if ((size_t)nl > cap) return 1;
    size_t chs;
    if (rt->scan_lanes_ch > 0) {
        chs = (size_t)rt->scan_lanes_ch;   /* BMOJO_SCAN_LANES_CH, for sweeps */
    } else {
        size_t target = BM_SCANL_WG_TARGET < cap ? BM_SCANL_WG_TARGET : cap;
        chs = 1;
        while ((chs * 2) * (size_t)nl <= target) chs *= 2;
        while (chs > 1 && chs / 2 >= (size_t)a->di) chs /= 2;   /* no wider than the channels */
        /* Narrower groups spread B=1 over more compute units, but below 2n work-items the B/C
         * staging loses its fixed-column prefetch (cl/scan_lanes.cl): stop there. */
        size_t cu = rt->lim.compute_units ? rt->lim.compute_units : 1;
        size_t chs_min = (2 * (size_t)a->n + nl - 1) / nl;
        while (rt->lim.is_gpu && chs > 1 && chs / 2 >= chs_min &&
               (size_t)a->B * (((size_t)a->di + chs - 1) / chs) < (size_t)BM_SCANL_GROUPS_PER_CU * cu)
            chs /= 2;
    }
    if (chs * (size_t)nl > cap) chs = cap / (size_t)nl;
    /* Rows of 4k floats with k odd: the float4 reads of 8 consecutive rows (the reduction) hit
     * 8 different groups of 4 banks (32 banks of 4 bytes on NVIDIA and AMD). */
    int part_ld = (nl + 3) / 4 * 4;
    if ((part_ld / 4) % 2 == 0) part_ld += 4;
    const size_t ld = (size_t)(tt | 1);   /* BM_SCANL_LD: rows of ldd and lbc */
    for (;;) {
        p->l_dd = ld * chs * 2 * sizeof(float);
        p->l_sg = (size_t)tt * chs * 2 * sizeof(float);
        p->l_bc = ld * nl * spl * 2 * sizeof(float);
        p->l_part = (size_t)tt * chs * part_ld * sizeof(float);
        if (p->l_dd + p->l_sg + p->l_bc + p->l_part <= rt->lim.local_mem) break;
        if (chs == 1) return 1;
        chs /= 2;
    }
    p->nl = nl;
    p->chs = (int)chs;
    p->part_ld = part_ld;
    p->wg = chs * (size_t)nl;
    return 0;
}

int bm_op_scan_lanes(bm_rt *rt, const bm_scan_args *a)
{
    int st = scan_check_args(a);
    if (st) return st;
    if (a->B == 0 || a->T == 0 || a->di == 0) return 0;
    scan_lanes_plan p;
    st = scan_lanes_plan_make(rt, a, &p);
    if (st < 0) return st;
    if (st > 0)
        return bm_fail(BMOJO_EUNSUPPORTED, "scan lanes: d_state %d does not fit a work-group of this device (%llu bytes of local memory)",
                       a->n, (unsigned long long)rt->lim.local_mem);
    cl_kernel k = bm_kernel(rt, "bm_scan_lanes");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "scan lanes");
    cl_int T = a->T, di = a->di, n = a->n, nl = p.nl, chs = p.chs, part_ld = p.part_ld;
    cl_uint dt_ld = (cl_uint)a->dt_ld, bc_ld = (cl_uint)a->bc_ld, b_col = (cl_uint)a->b_col, c_col = (cl_uint)a->c_col;
    cl_uint z_ld = (cl_uint)a->z_ld, z_col = (cl_uint)a->z_col;
    cl_int err = 0;
    err |= BM_ARG(k, 0, T);
    err |= BM_ARG(k, 1, di);
    err |= BM_ARG(k, 2, n);
    err |= BM_ARG(k, 3, nl);
    err |= BM_ARG(k, 4, chs);
    err |= BM_ARG(k, 5, part_ld);
    err |= BM_ARG(k, 6, a->u);
    err |= BM_ARG(k, 7, a->dt);
    err |= BM_ARG(k, 8, dt_ld);
    err |= BM_ARG(k, 9, a->dt_bias);
    err |= BM_ARG(k, 10, a->A);
    err |= BM_ARG(k, 11, a->bc);
    err |= BM_ARG(k, 12, bc_ld);
    err |= BM_ARG(k, 13, b_col);
    err |= BM_ARG(k, 14, c_col);
    err |= BM_ARG(k, 15, a->D);
    err |= BM_ARG(k, 16, a->z);
    err |= BM_ARG(k, 17, z_ld);
    err |= BM_ARG(k, 18, z_col);
    err |= BM_ARG(k, 19, a->state);
    err |= BM_ARG(k, 20, a->y);
    err |= BM_ARG_LOCAL(k, 21, p.l_dd);
    err |= BM_ARG_LOCAL(k, 22, p.l_sg);
    err |= BM_ARG_LOCAL(k, 23, p.l_bc);
    err |= BM_ARG_LOCAL(k, 24, p.l_part);
    if ((st = bm_args_check(err, "bm_scan_lanes"))) return st;
    size_t groups = ((size_t)a->di + p.wg / p.nl - 1) / (p.wg / p.nl);
    size_t g[2] = {groups * p.wg, (size_t)a->B}, l[2] = {p.wg, 1};
    return bm_launch(rt, k, "bm_scan_lanes", 2, g, l);
}

/* Whether the CPU kernels (cl/scan_cpu.cl) run this scan: forced (BMOJO_SCAN=cpu), or auto on a
 * CPU device, when d_state fits them. */
static int use_cpu_scan(const bm_rt *rt, const bm_scan_args *a)
{
    const int v = rt->scan_variant;
    return (v == BM_SCAN_VARIANT_CPU || (v == BM_SCAN_VARIANT_AUTO && !rt->lim.is_gpu)) && bm_scan_cpu_fits(a);
}

/* bm_op_scan without dt_proj: the lanes or the chunked kernel (see the top of this file). */
static int scan_select(bm_rt *rt, const bm_scan_args *a)
{
    int v = rt->scan_variant;
    /* auto: the chunked kernel on GPUs, the CPU kernel on CPUs where d_state fits it (mamba-130m
     * pp512 on POCL, 2 cores: see cl/scan_cpu.cl). The lanes kernel measured 221 us against the
     * chunked kernel's 99 on the H200 (T 2048, di 1536, n 16: 384 groups of 64 items, each tile of
     * 32 steps three barrier-separated phases; too few warps per SM to hide them) and is slower on
     * POCL. */
    if (use_cpu_scan(rt, a)) {
        int st = scan_check_args(a);
        return st ? st : bm_op_scan_cpu(rt, a);
    }
    if (v == BM_SCAN_VARIANT_LANES) {
        int st = scan_check_args(a);
        if (st || a->B == 0 || a->T == 0 || a->di == 0) return st;
        scan_lanes_plan p;
        st = scan_lanes_plan_make(rt, a, &p);
        if (st < 0) return st;
        if (st == 0) return bm_op_scan_lanes(rt, a);
    }
    return bm_op_scan_chunked(rt, a, 0);
}

static int scan_launch(bm_rt *rt, const bm_scan_args *a)
{
    if (!a || !rt) return bm_fail(BMOJO_EINVAL, "scan: NULL argument");
    if (!a->dt_proj) return scan_select(rt, a);
    /* dt_proj fused: validate the dt view that the op derives itself */
    if (a->dt_rank < 1 || (size_t)a->dt_rank > a->bc_ld)
        return bm_fail(BMOJO_EINVAL, "scan: dt_rank %d does not fit the x_proj rows (bc_ld %zu)", a->dt_rank, a->bc_ld);
    bm_scan_args b = *a;
    b.dt_proj = NULL;
    b.dt_ld = (size_t)a->di;
    if (a->T == 1) {
        b.dt = a->u; /* any valid buffer for the shape checks: the step kernel derives dt from bc */
        int st = scan_check_args(&b);
        if (st || a->B == 0 || a->di == 0) return st;
        if (use_cpu_scan(rt, a)) return bm_op_scan_step_cpu(rt, a);
        return scan_step_fused(rt, a);
    }
    size_t N = (size_t)a->B * (size_t)a->T;
    int st = bm_scratch_take(rt, N * (size_t)a->di * sizeof(float), &b.dt);
    if (!st) st = bm_gemm(rt, N, (size_t)a->di, (size_t)a->dt_rank, a->bc, 0, a->bc_ld, bm_wf32(a->dt_proj), 0, (size_t)a->dt_rank,
                          0.0f, b.dt, 0, (size_t)a->di);
    return st ? st : scan_select(rt, &b);
}

int bm_op_scan(bm_rt *rt, const bm_scan_args *a)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = scan_launch(rt, a);
    bm_scratch_release(rt, mark);
    return st;
}

static int scan_chunked_launch(bm_rt *rt, const bm_scan_args *a, int L)
{
    int st = scan_check_args(a);
    if (st) return st;
    if (a->B == 0 || a->T == 0 || a->di == 0) return 0;   /* nothing to compute or update */

    const int B = a->B, T = a->T, di = a->di, n = a->n;
    if (L <= 0) L = bm_scan_chunk_len(rt, B, di, T);
    if (L > T) L = T;
    int nc = (T + L - 1) / L;

    /* The B/C staging tile (local memory, a kernel argument so that its size follows the device). */
    uint64_t lbytes = rt->lim.local_mem / 2;
    if (lbytes > BM_SCAN_LOCAL_BYTES) lbytes = BM_SCAN_LOCAL_BYTES;
    /* The kernels' tile needs >= 2*BM_SCAN_NS floats (cl/scan.cl; NS = 16 by default): 1 KB covers any NS <= 128. */
    uint64_t lneed = 2 * sizeof(float) * (uint64_t)n;
    if (lneed < 1024) lneed = 1024;
    if (lbytes < lneed)
        return bm_fail(BMOJO_EUNSUPPORTED, "scan: d_state %d needs %llu bytes of local memory, the device has %llu", n,
                       (unsigned long long)lneed, (unsigned long long)rt->lim.local_mem);
    cl_int lcap = (cl_int)(lbytes / sizeof(float));

    cl_kernel kf = bm_kernel(rt, "bm_scan_chunk_fwd");
    if (!kf) return BMOJO_EOPENCL;
    size_t wg;
    if ((st = scan_wg(rt, kf, di, &wg))) return st;
    size_t gdim0 = ((size_t)di + wg - 1) / wg * wg;

    cl_uint dt_ld = (cl_uint)a->dt_ld, bc_ld = (cl_uint)a->bc_ld, b_col = (cl_uint)a->b_col, c_col = (cl_uint)a->c_col;
    cl_uint z_ld = (cl_uint)a->z_ld, z_col = (cl_uint)a->z_col;
    cl_int Ti = T, dii = di, ni = n, Li = L, Bi = B, nci = nc, one = 1;

    cl_mem hs = NULL, sd = NULL;
    cl_mem init = a->state;
    cl_ulong i_sk = 0, i_sb = (cl_ulong)di * n;
    cl_uint i_sc = (cl_uint)n, i_sj = 1;

    if (nc > 1) {
        cl_kernel k1 = bm_kernel(rt, "bm_scan_chunk_state");
        cl_kernel k2 = bm_kernel(rt, "bm_scan_chunk_combine");
        if (!k1 || !k2) return BMOJO_EOPENCL;
        size_t wg1, wg2;
        if ((st = scan_wg(rt, k1, di, &wg1)) || (st = scan_wg(rt, k2, di, &wg2))) return st;
        size_t slot = (size_t)B * n * di;
        /* the runtime's scratch stack: no allocation per call once warm, and no zero fill (every element is
         * written by a pass before any pass reads it) */
        if ((st = bm_scratch_take(rt, (size_t)nc * slot * sizeof(float), &hs))) return st;
        if ((st = bm_scratch_take(rt, (size_t)(nc - 1) * B * di * sizeof(float), &sd))) return st;
        /* Pass 1: end states from zero of chunks 0..nc-2 (the last one's comes out of pass 3). */
        cl_int err = 0;
        err |= BM_ARG(k1, 0, Ti);
        err |= BM_ARG(k1, 1, dii);
        err |= BM_ARG(k1, 2, ni);
        err |= BM_ARG(k1, 3, Li);
        err |= BM_ARG(k1, 4, Bi);
        err |= BM_ARG(k1, 5, a->u);
        err |= BM_ARG(k1, 6, a->dt);
        err |= BM_ARG(k1, 7, dt_ld);
        err |= BM_ARG(k1, 8, a->dt_bias);
        err |= BM_ARG(k1, 9, a->A);
        err |= BM_ARG(k1, 10, a->bc);
        err |= BM_ARG(k1, 11, bc_ld);
        err |= BM_ARG(k1, 12, b_col);
        err |= BM_ARG(k1, 13, hs);
        err |= BM_ARG(k1, 14, sd);
        err |= BM_ARG_LOCAL(k1, 15, (size_t)lcap * sizeof(float));
        err |= BM_ARG(k1, 16, lcap);
        if ((st = bm_args_check(err, "bm_scan_chunk_state"))) goto done;
        size_t g1[3] = {((size_t)di + wg1 - 1) / wg1 * wg1, (size_t)(nc - 1), (size_t)B};
        size_t l1[3] = {wg1, 1, 1};
        if ((st = bm_launch(rt, k1, "bm_scan_chunk_state", 3, g1, l1))) goto done;

        /* Pass 2: initial state of every chunk, in place over the end states. */
        err = 0;
        err |= BM_ARG(k2, 0, dii);
        err |= BM_ARG(k2, 1, ni);
        err |= BM_ARG(k2, 2, Bi);
        err |= BM_ARG(k2, 3, nci);
        err |= BM_ARG(k2, 4, a->A);
        err |= BM_ARG(k2, 5, sd);
        err |= BM_ARG(k2, 6, hs);
        err |= BM_ARG(k2, 7, a->state);
        if ((st = bm_args_check(err, "bm_scan_chunk_combine"))) goto done;
        size_t g2[3] = {((size_t)di + wg2 - 1) / wg2 * wg2, (size_t)n, (size_t)B};
        size_t l2[3] = {wg2, 1, 1};
        if ((st = bm_launch(rt, k2, "bm_scan_chunk_combine", 3, g2, l2))) goto done;

        init = hs;
        i_sk = slot;
        i_sb = (cl_ulong)n * di;
        i_sc = 1;
        i_sj = (cl_uint)di;
    }

    {
        /* Final pass (the whole op when nc == 1): y, and the final state from the last chunk. */
        cl_int err = 0;
        err |= BM_ARG(kf, 0, Ti);
        err |= BM_ARG(kf, 1, dii);
        err |= BM_ARG(kf, 2, ni);
        err |= BM_ARG(kf, 3, Li);
        err |= BM_ARG(kf, 4, a->u);
        err |= BM_ARG(kf, 5, a->dt);
        err |= BM_ARG(kf, 6, dt_ld);
        err |= BM_ARG(kf, 7, a->dt_bias);
        err |= BM_ARG(kf, 8, a->A);
        err |= BM_ARG(kf, 9, a->bc);
        err |= BM_ARG(kf, 10, bc_ld);
        err |= BM_ARG(kf, 11, b_col);
        err |= BM_ARG(kf, 12, c_col);
        err |= BM_ARG(kf, 13, a->D);
        err |= BM_ARG(kf, 14, a->z);
        err |= BM_ARG(kf, 15, z_ld);
        err |= BM_ARG(kf, 16, z_col);
        err |= BM_ARG(kf, 17, init);
        err |= BM_ARG(kf, 18, i_sk);
        err |= BM_ARG(kf, 19, i_sb);
        err |= BM_ARG(kf, 20, i_sc);
        err |= BM_ARG(kf, 21, i_sj);
        err |= BM_ARG(kf, 22, a->state);
        err |= BM_ARG(kf, 23, one);
        err |= BM_ARG(kf, 24, a->y);
        err |= BM_ARG_LOCAL(kf, 25, (size_t)lcap * sizeof(float));
        err |= BM_ARG(kf, 26, lcap);
        if ((st = bm_args_check(err, "bm_scan_chunk_fwd"))) goto done;
        size_t g[3] = {gdim0, (size_t)nc, (size_t)B};
        size_t l[3] = {wg, 1, 1};
        st = bm_launch(rt, kf, "bm_scan_chunk_fwd", 3, g, l);
    }

done:
    return st;
}

int bm_op_scan_chunked(bm_rt *rt, const bm_scan_args *a, int L)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = scan_chunked_launch(rt, a, L);
    bm_scratch_release(rt, mark);
    return st;
}
