/* op_attention.c — launchers of causal GQA attention over a ring K/V cache (cl/attention.cl)
 * and of the cache append (cl/kv_cache.cl).
 *
 * Kernel and tiling are chosen here per call. CPUs: cl/attention_cpu.cl for every T (dh <= 256).
 * GPUs: prefill (>= 16 rows per kv head, dh <= 128):
 * the register-tiled bm_attn_tiled2/4 with bm_attn_tiled_choose's plan (64 rows per work-group
 * of 128 work-items, fewer when local memory or the rows are short; also used by the B'MOJO
 * launcher). Otherwise (decoding, big dh, small local memory) bm_attn_fwd: work-group size L
 * (<= the device's and the kernel's limits, <= 128), BR rows (query head x token pairs of one
 * kv-head group) per work-group such that the BR x dh output tile fits BM_ATT_ACC private
 * accumulators per work-item, and BK keys per tile; BR and BK are shrunk until the local arrays
 * (Q and K padded to dh+1, V, scores, row statistics) fit the device's local memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "ops/attention_split.h"

/* Defaults of the kernel's -D tunables (cl/attention.cl); an override in the build options
 * is read back from rt->build_options so that launcher and kernel agree. */
#define ATTN_ACC_DEFAULT 32
#define ATTN_MAX_L 128
#define ATTN_MAX_BR 32
#define ATTN_MAX_BK 32
#define ATTN_MAX_SPLIT 64
/* Register-tiled kernels (bm_attn_tiled*, bm_bmojo_attn_tiled*): rows per work-item
 * (BM_ATT_TR), work-items across a key tile (BM_ATT_NX in the kernel), target rows per
 * work-group, and the fewest rows (query heads x tokens per kv head) that use them. */
#define ATTN_TILED_TR 4
#define ATTN_TILED_NX 8
#define ATTN_TILED_ROWS 64
#define ATTN_TILED_MIN_ROWS 16
/* The CPU kernel (cl/attention_cpu.cl): queries per work-item (BM_ATTC_TQ) and the largest head
 * (16 float16 chunks, BM_ATTC_MAXC). */
#define ATTN_CPU_TQ 8
#define ATTN_CPU_MAX_DH 256

/* Work-group size limit of a kernel on this device (register pressure may lower it). */
static size_t attn_kernel_wg(bm_rt *rt, cl_kernel k)
{
    size_t wg = rt->lim.max_wg;
    size_t kwg = 0;
    if (clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && kwg < wg)
        wg = kwg;
    if (rt->lim.max_wi[0] < wg) wg = rt->lim.max_wi[0];
    return wg;
}

static size_t attn_local_bytes(int BR, int BK, int dh)
{
    return sizeof(float) * ((size_t)(BR + BK) * (size_t)(dh + 1) + (size_t)BK * dh + (size_t)BR * BK + 3u * BR);
}

static int attn_check(const bm_attn_args *a, const char *what)
{
    if (!a) return bm_fail(BMOJO_EINVAL, "%s: NULL arguments", what);
    if (a->B < 0 || a->T < 0 || a->H < 1 || a->Hkv < 1 || a->dh < 1 || a->H % a->Hkv != 0)
        return bm_fail(BMOJO_EINVAL, "%s: bad shape B=%d T=%d H=%d Hkv=%d dh=%d (H must be a multiple of Hkv)", what,
                       a->B, a->T, a->H, a->Hkv, a->dh);
    if (a->window < 0 || a->pos0 < 0 || a->cap < 0)
        return bm_fail(BMOJO_EINVAL, "%s: negative window %d, pos0 %lld or cap %d", what, a->window,
                       (long long)a->pos0, a->cap);
    if (!a->k || !a->v) return bm_fail(BMOJO_EINVAL, "%s: NULL k or v buffer", what);
    if (a->kv_ld < a->k_col + (size_t)a->Hkv * a->dh || a->kv_ld < a->v_col + (size_t)a->Hkv * a->dh)
        return bm_fail(BMOJO_EINVAL, "%s: kv_ld %zu too small for k_col %zu / v_col %zu + %d heads of %d", what,
                       a->kv_ld, a->k_col, a->v_col, a->Hkv, a->dh);
    return 0;
}

int bm_op_attention(bm_rt *rt, const bm_attn_args *a) { return bm_op_attention_variant(rt, a, 0, BM_ATTN_AUTO); }

int bm_op_attention_nsplit(bm_rt *rt, const bm_attn_args *a, int nsplit)
{
    return bm_op_attention_variant(rt, a, nsplit, BM_ATTN_AUTO);
}

/* Splits over keys when the work-groups are too few to fill the device (decoding) and each has
 * a long key range: aims at per_cu work-groups per compute unit, >= 2 key tiles per split. */
static int attn_auto_split(const bm_rt *rt, const bm_attn_args *a, size_t groups, int BK, unsigned per_cu)
{
    const size_t target = per_cu * (rt->lim.compute_units ? rt->lim.compute_units : 1u);
    if (groups >= target) return 1;
    int64_t span = a->pos0 + a->T;
    if (a->window > 0 && span > a->window) span = a->window;
    int64_t by_keys = span / (2 * BK);
    int64_t n = (int64_t)((target + groups - 1) / groups);
    if (n > by_keys) n = by_keys;
    if (n > ATTN_MAX_SPLIT) n = ATTN_MAX_SPLIT;
    return n < 2 ? 1 : (int)n;
}

static size_t attn_tiled_bytes(int BR, int BK, int dh, size_t *lq, size_t *lkp, size_t *lv, size_t *lred)
{
    const size_t dq = ((size_t)dh + 3) & ~(size_t)3, ldk = 4 * ((dq / 4) | 1u), pld = (size_t)BK + 8;
    const size_t k = (size_t)BK * ldk, pm = (size_t)BR * pld;
    *lq = sizeof(float) * (size_t)BR * dq;
    *lkp = sizeof(float) * (k > pm ? k : pm);
    *lv = sizeof(float) * (size_t)BK * dq;
    *lred = sizeof(float) * (size_t)BR * ATTN_TILED_NX;
    return *lq + *lkp + *lv + *lred;
}

int bm_attn_tiled_choose(bm_rt *rt, const char *prefix, int dh, long max_br, bm_attn_tiled_plan *p)
{
    memset(p, 0, sizeof *p);
    const int tr = (int)bm_build_tunable(rt, "BM_ATT_TR", ATTN_TILED_TR);
    const int dq = (dh + 3) & ~3;
    const int nd = (dq / 4 + ATTN_TILED_NX - 1) / ATTN_TILED_NX; /* float4 columns per work-item */
    if (dh < 1 || nd > 4 || max_br < 1) return 0;
    const int variant = nd <= 2 ? 2 : 4, tc = nd <= 2 ? 4 : 2;
    snprintf(p->name, sizeof p->name, "%s%d", prefix, variant);
    cl_kernel k = bm_kernel(rt, p->name);
    if (!k) return bm_fail_context(BMOJO_EBUILD, "attention");
    size_t wgmax = attn_kernel_wg(rt, k);
    if (rt->lim.wg > 0 && rt->lim.wg < wgmax) wgmax = rt->lim.wg;
    /* NY: 64 rows per work-group (16 x 4) by default, fewer when there are fewer rows */
    long ny0 = bm_build_tunable(rt, "BM_ATT_ROWS", ATTN_TILED_ROWS) / tr;
    long need = 1;
    while (need * tr < max_br && need < ny0) need *= 2;
    if (ny0 > need) ny0 = need;
    if (ny0 < 1) ny0 = 1;
    long ny = ny0;
    const int bk = tc * ATTN_TILED_NX;
    size_t lq = 0, lkp = 0, lv = 0, lred = 0;
    while (ny > 1 && ((size_t)ny * ATTN_TILED_NX > wgmax ||
                      attn_tiled_bytes((int)ny * tr, bk, dh, &lq, &lkp, &lv, &lred) > rt->lim.local_mem))
        ny /= 2;
    if ((size_t)ny * ATTN_TILED_NX > wgmax || attn_tiled_bytes((int)ny * tr, bk, dh, &lq, &lkp, &lv, &lred) >
                                                  rt->lim.local_mem)
        return 0;
    if (ny < ny0 && ny * tr < 32) return 0; /* too few rows per work-group to beat the generic kernel */
    p->kernel = k;
    p->L = (size_t)ny * ATTN_TILED_NX;
    p->BR = (int)ny * tr;
    p->BK = bk;
    p->local_q = lq;
    p->local_kp = lkp;
    p->local_v = lv;
    p->local_red = lred;
    return 1;
}

/* Arguments shared by bm_attn_fwd and bm_attn_tiled* (0 .. 19). */
static cl_int attn_common_args(cl_kernel k, const bm_attn_args *a, cl_mem kc, cl_mem vc)
{
    const cl_int T = a->T, H = a->H, Hkv = a->Hkv, cdh = a->dh, cap = a->cap, window = a->window;
    const cl_long q_ld = (cl_long)a->q_ld, q_col = (cl_long)a->q_col, kv_ld = (cl_long)a->kv_ld,
                  k_col = (cl_long)a->k_col, v_col = (cl_long)a->v_col, out_ld = (cl_long)a->out_ld,
                  pos0 = (cl_long)a->pos0;
    const cl_float scale = a->scale;
    cl_int err = 0;
    int i = 0;
    err |= BM_ARG(k, i++, T);
    err |= BM_ARG(k, i++, H);
    err |= BM_ARG(k, i++, Hkv);
    err |= BM_ARG(k, i++, cdh);
    err |= BM_ARG(k, i++, a->q);
    err |= BM_ARG(k, i++, q_ld);
    err |= BM_ARG(k, i++, q_col);
    err |= BM_ARG(k, i++, a->k);
    err |= BM_ARG(k, i++, a->v);
    err |= BM_ARG(k, i++, kv_ld);
    err |= BM_ARG(k, i++, k_col);
    err |= BM_ARG(k, i++, v_col);
    err |= BM_ARG(k, i++, kc);
    err |= BM_ARG(k, i++, vc);
    err |= BM_ARG(k, i++, cap);
    err |= BM_ARG(k, i++, pos0);
    err |= BM_ARG(k, i++, window);
    err |= BM_ARG(k, i++, scale);
    err |= BM_ARG(k, i++, a->out);
    err |= BM_ARG(k, i++, out_ld);
    return err;
}

static int attention_variant_launch(bm_rt *rt, const bm_attn_args *a, int nsplit, int variant)
{
    int st = attn_check(a, "attention");
    if (st) return st;
    if (!a->q || !a->out) return bm_fail(BMOJO_EINVAL, "attention: NULL q or out buffer");
    if (a->q_ld < a->q_col + (size_t)a->H * a->dh || a->out_ld < (size_t)a->H * a->dh)
        return bm_fail(BMOJO_EINVAL, "attention: q_ld %zu (q_col %zu) or out_ld %zu too small for %d heads of %d",
                       a->q_ld, a->q_col, a->out_ld, a->H, a->dh);
    if (nsplit < 0 || nsplit > ATTN_MAX_SPLIT)
        return bm_fail(BMOJO_EINVAL, "attention: %d key splits (at most %d)", nsplit, ATTN_MAX_SPLIT);
    if (variant < BM_ATTN_AUTO || variant > BM_ATTN_CPU)
        return bm_fail(BMOJO_EINVAL, "attention: unknown kernel variant %d", variant);
    if (a->B == 0 || a->T == 0) return 0;
    /* Past positions a query may read: pos0 - 1 down to pos0 - needed. */
    const int64_t needed = a->window > 0 ? (a->pos0 < a->window - 1 ? a->pos0 : a->window - 1) : a->pos0;
    if (needed > 0 && (!a->k_cache || !a->v_cache || a->cap < needed))
        return bm_fail(BMOJO_EINVAL,
                       "attention: pos0 %lld with window %d reads %lld cached rows, but the cache %s (cap %d)",
                       (long long)a->pos0, a->window, (long long)needed,
                       (!a->k_cache || !a->v_cache) ? "is NULL" : "is too small", a->cap);
    /* Unused caches (nothing cached is read) are never dereferenced; pass a valid buffer anyway. */
    cl_mem kc = needed > 0 ? a->k_cache : a->k, vc = needed > 0 ? a->v_cache : a->v;
    const int dh = a->dh;
    /* CPUs: the CPU kernel for every T (cl/attention_cpu.cl; numbers in docs/performance.md). */
    if (variant == BM_ATTN_CPU || (variant == BM_ATTN_AUTO && !rt->lim.is_gpu && dh <= ATTN_CPU_MAX_DH)) {
        if (dh > ATTN_CPU_MAX_DH)
            return bm_fail(BMOJO_EUNSUPPORTED, "attention (CPU kernel): head_dim %d is over %d", dh, ATTN_CPU_MAX_DH);
        cl_kernel kcpu = bm_kernel(rt, "bm_attn_cpu");
        if (!kcpu) return bm_fail_context(BMOJO_EBUILD, "attention (CPU kernel)");
        cl_int errc = attn_common_args(kcpu, a, kc, vc);
        st = bm_args_check(errc, "bm_attn_cpu");
        const size_t gq[3] = {((size_t)a->T + ATTN_CPU_TQ - 1) / ATTN_CPU_TQ, (size_t)a->H, (size_t)a->B};
        const size_t lq[3] = {1, 1, 1};
        return st ? st : bm_launch(rt, kcpu, "bm_attn_cpu", 3, gq, lq);
    }
    const long nrows = (long)(a->H / a->Hkv) * a->T;

    /* The register-tiled kernel for prefill (many rows per kv head); the generic one for
     * decoding (a few rows: the tiled kernel's 32+ row tiles would be mostly empty). */
    bm_attn_tiled_plan plan;
    int tiled = 0;
    if (variant == BM_ATTN_TILED || (variant == BM_ATTN_AUTO && nrows >= ATTN_TILED_MIN_ROWS)) {
        tiled = bm_attn_tiled_choose(rt, "bm_attn_tiled", dh, nrows, &plan);
        if (tiled < 0) return tiled;
        if (!tiled && variant == BM_ATTN_TILED)
            return bm_fail(BMOJO_EUNSUPPORTED, "attention: the tiled kernel does not fit head_dim %d on this device",
                           dh);
    }

    cl_kernel k;
    size_t L;
    int BR, BK;
    cl_int err;
    int i;
    if (tiled) {
        k = plan.kernel;
        L = plan.L;
        BR = plan.BR;
        BK = plan.BK;
        err = attn_common_args(k, a, kc, vc);
        i = 22; /* nsplit and part, set below */
        err |= BM_ARG_LOCAL(k, i++, plan.local_q);
        err |= BM_ARG_LOCAL(k, i++, plan.local_kp);
        err |= BM_ARG_LOCAL(k, i++, plan.local_v);
        err |= BM_ARG_LOCAL(k, i++, plan.local_red);
        st = bm_args_check(err, plan.name);
        if (st) return st;
    } else {
        k = bm_kernel(rt, "bm_attn_fwd");
        if (!k) return bm_fail_context(BMOJO_EBUILD, "attention");
        const int acc = (int)bm_build_tunable(rt, "BM_ATT_ACC", ATTN_ACC_DEFAULT);
        L = attn_kernel_wg(rt, k);
        if (rt->lim.wg > 0 && rt->lim.wg < L) L = rt->lim.wg;
        if (L > ATTN_MAX_L) L = ATTN_MAX_L;
        long br = (long)acc * (long)L / dh;
        if (br > ATTN_MAX_BR) br = ATTN_MAX_BR;
        if (br > nrows) br = nrows;
        if (br < 1)
            return bm_fail(BMOJO_EUNSUPPORTED, "attention: head_dim %d exceeds %d accumulators x %zu work-items", dh,
                           acc, L);
        BR = (int)br;
        BK = (int)bm_build_tunable(rt, "BM_ATT_BK", ATTN_MAX_BK);
        while (attn_local_bytes(BR, BK, dh) > rt->lim.local_mem) {
            if (BK >= BR && BK > 1) BK = (BK + 1) / 2;
            else if (BR > 1) BR = (BR + 1) / 2;
            else
                return bm_fail(BMOJO_EUNSUPPORTED,
                               "attention: head_dim %d needs %zu bytes of local memory, device has %llu", dh,
                               attn_local_bytes(1, 1, dh), (unsigned long long)rt->lim.local_mem);
        }
        const cl_int cbr = BR, cbk = BK;
        err = attn_common_args(k, a, kc, vc);
        i = 20;
        err |= BM_ARG(k, i++, cbr);
        err |= BM_ARG(k, i++, cbk);
        i += 2; /* nsplit and part, set below */
        err |= BM_ARG_LOCAL(k, i++, sizeof(float) * (size_t)BR * (dh + 1));
        err |= BM_ARG_LOCAL(k, i++, sizeof(float) * (size_t)BK * (dh + 1));
        err |= BM_ARG_LOCAL(k, i++, sizeof(float) * (size_t)BK * dh);
        err |= BM_ARG_LOCAL(k, i++, sizeof(float) * (size_t)BR * BK);
        err |= BM_ARG_LOCAL(k, i++, sizeof(float) * 3u * BR);
        st = bm_args_check(err, "bm_attn_fwd");
        if (st) return st;
    }
    const char *kname = tiled ? plan.name : "bm_attn_fwd";
    const int split_arg = tiled ? 20 : 22;
    const size_t ntiles = (size_t)((nrows + BR - 1) / BR);
    const size_t groups = ntiles * (size_t)a->B * a->Hkv;
    /* the tiled kernel's work-groups are larger: 2 per compute unit already fill a GPU */
    if (nsplit == 0) nsplit = attn_auto_split(rt, a, groups, BK, tiled ? 2u : 4u);
    const cl_int cns = nsplit;
    err = BM_ARG(k, split_arg, cns);
    cl_mem part = NULL;
    if (nsplit > 1) {
        /* the partial results live in the runtime's scratch (no allocation once it has grown) */
        const size_t bytes = sizeof(float) * (size_t)nsplit * a->B * a->Hkv * (size_t)nrows * (size_t)(dh + 2);
        st = bm_scratch_take(rt, bytes, &part);
        if (st) return bm_fail_context(st, "attention with %d key splits", nsplit);
        err |= BM_ARG(k, split_arg + 1, part);
    } else {
        err |= BM_ARG(k, split_arg + 1, a->out); /* unused */
    }
    st = bm_args_check(err, kname);
    if (!st) {
        const size_t global[3] = {ntiles * L, (size_t)a->B * a->Hkv, (size_t)nsplit};
        const size_t local[3] = {L, 1, 1};
        st = bm_launch(rt, k, kname, 3, global, local);
    }
    if (!st && nsplit > 1) {
        cl_kernel kc2 = bm_kernel(rt, "bm_attn_combine");
        if (!kc2) {
            st = bm_fail_context(BMOJO_EBUILD, "attention");
        } else {
            const cl_int B = a->B, T = a->T, H = a->H, Hkv = a->Hkv, cdh = dh;
            const cl_long out_ld = (cl_long)a->out_ld;
            err = 0;
            i = 0;
            err |= BM_ARG(kc2, i++, B);
            err |= BM_ARG(kc2, i++, T);
            err |= BM_ARG(kc2, i++, H);
            err |= BM_ARG(kc2, i++, Hkv);
            err |= BM_ARG(kc2, i++, cdh);
            err |= BM_ARG(kc2, i++, cns);
            err |= BM_ARG(kc2, i++, part);
            err |= BM_ARG(kc2, i++, a->out);
            err |= BM_ARG(kc2, i++, out_ld);
            st = bm_args_check(err, "bm_attn_combine");
            if (!st) {
                size_t L2 = attn_kernel_wg(rt, kc2);
                if (rt->lim.wg > 0 && rt->lim.wg < L2) L2 = rt->lim.wg;
                const size_t global2[1] = {(size_t)a->B * a->T * a->H * dh};
                const size_t local2[1] = {L2};
                st = bm_launch(rt, kc2, "bm_attn_combine", 1, global2, local2);
            }
        }
    }
    return st;
}

int bm_op_attention_variant(bm_rt *rt, const bm_attn_args *a, int nsplit, int variant)
{
    /* the scratch the launch takes is released here, whichever way it returns */
    int mark = bm_scratch_mark(rt);
    int st = attention_variant_launch(rt, a, nsplit, variant);
    bm_scratch_release(rt, mark);
    return st;
}

int bm_op_kv_append(bm_rt *rt, const bm_attn_args *a)
{
    int st = attn_check(a, "kv_append");
    if (st) return st;
    const int n = a->T < a->cap ? a->T : a->cap;
    if (a->B == 0 || n == 0) return 0;
    if (!a->k_cache || !a->v_cache) return bm_fail(BMOJO_EINVAL, "kv_append: NULL k_cache or v_cache");
    cl_kernel k = bm_kernel(rt, "bm_kv_append");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "kv_append");
    const cl_int T = a->T, Hkv = a->Hkv, dh = a->dh, cn = n, cap = a->cap;
    const cl_long kv_ld = (cl_long)a->kv_ld, k_col = (cl_long)a->k_col, v_col = (cl_long)a->v_col,
                  pos0 = (cl_long)a->pos0, total = (cl_long)a->B * a->Hkv * n * a->dh;
    cl_int err = 0;
    int i = 0;
    err |= BM_ARG(k, i++, T);
    err |= BM_ARG(k, i++, Hkv);
    err |= BM_ARG(k, i++, dh);
    err |= BM_ARG(k, i++, cn);
    err |= BM_ARG(k, i++, a->k);
    err |= BM_ARG(k, i++, a->v);
    err |= BM_ARG(k, i++, kv_ld);
    err |= BM_ARG(k, i++, k_col);
    err |= BM_ARG(k, i++, v_col);
    err |= BM_ARG(k, i++, a->k_cache);
    err |= BM_ARG(k, i++, a->v_cache);
    err |= BM_ARG(k, i++, cap);
    err |= BM_ARG(k, i++, pos0);
    err |= BM_ARG(k, i++, total);
    st = bm_args_check(err, "bm_kv_append");
    if (st) return st;
    size_t L = attn_kernel_wg(rt, k);
    if (rt->lim.wg > 0 && rt->lim.wg < L) L = rt->lim.wg;
    const size_t global[1] = {(size_t)total};
    const size_t local[1] = {L};
    return bm_launch(rt, k, "bm_kv_append", 1, global, local);
}
