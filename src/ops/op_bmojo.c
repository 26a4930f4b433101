/* op_bmojo.c — host launcher of the B'MOJO mixer's attention part (ops_bmojo.h): innovation,
 * eidetic selection, chunk memory, attention over [fading | eidetic | window] and the state
 * updates, all enqueued in order on rt->queue (kernels in cl/bmojo_*.cl; the order of the
 * launches is what makes the in-place state updates safe, see bm_bmojo_mix).
 * Two paths: prefill (T > 1: per-chunk selection and memory in scratch, 6 launches whatever T;
 * one more, a combine, where a short prefill's attention is split over keys on a GPU, see
 * bmojo_prefill_split) and decoding (T = 1: bm_bmojo_step, then the attention reading the
 * state memory in place — 2 launches, no copies, no scratch, the same work at every position;
 * on GPUs with few kv heads * sequences the attention is split over its keys, partial results
 * on the runtime's scratch stack, plus a combine launch: see bmojo_auto_split). */
#include "ops.h"
#include "ops_bmojo.h"
#include "ops/op_scan.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops/attention_split.h"

/* Scratch regions, in 4-byte elements from the start of the scratch buffer. */
typedef struct {
    size_t eps, top_eps, top_pos, sel, work_eps, work_pos, work_src, memk, memv;
    size_t total;
} bmojo_scratch_plan;

/* Chunks a call of T tokens can touch whatever pos0 is: floor((pos0%w + T-1)/w) + 1. */
static size_t bmojo_nc_max(int T, int w) { return ((size_t)T + (size_t)w - 2) / (size_t)w + 1; }

static size_t bmojo_round(size_t n) { return (n + 63) & ~(size_t)63; } /* 256-byte aligned regions */

static void bmojo_plan(const bm_bmojo_args *a, size_t NC, bmojo_scratch_plan *p)
{
    const size_t B = (size_t)a->B, T = (size_t)(a->T > 0 ? a->T : 1), me = (size_t)a->m_e;
    const size_t M = (size_t)a->m_f + me, kv = (size_t)a->Hkv * (size_t)a->dh;
    size_t at = 0;
#define BMOJO_REGION(field, n) (p->field = at, at += bmojo_round(n))
    BMOJO_REGION(eps, B * T);
    BMOJO_REGION(top_eps, B * NC * me);
    BMOJO_REGION(top_pos, B * NC * me);
    BMOJO_REGION(sel, B * NC * me);
    BMOJO_REGION(work_eps, B * 2 * me);
    BMOJO_REGION(work_pos, B * 2 * me);
    BMOJO_REGION(work_src, B * 2 * me);
    BMOJO_REGION(memk, B * NC * kv * M);
    BMOJO_REGION(memv, B * NC * kv * M);
#undef BMOJO_REGION
    p->total = at;
}

void bm_bmojo_state_layout(const bm_bmojo_args *a, bm_bmojo_state_sizes *o)
{
    const size_t B = (size_t)a->B, f = sizeof(float), kv = (size_t)a->Hkv * (size_t)a->dh;
    const size_t mf = (size_t)(a->m_f > 0 ? a->m_f : 1), me = (size_t)(a->m_e > 0 ? a->m_e : 1);
    const size_t M = (size_t)(a->m_f + a->m_e > 0 ? a->m_f + a->m_e : 1);
    o->y_hist = B * (size_t)a->n_taps * (size_t)a->d * f;
    o->win_k = o->win_v = B * kv * (size_t)a->window * f;
    o->fade_k = o->fade_v = B * kv * mf * f;
    o->cand_eps = B * me * f;
    o->cand_pos = B * me * sizeof(int32_t);
    o->mem = 2 * B * kv * M * f; /* candidate rows live in mem and the window ring */
    o->attention_kv = o->win_k + o->win_v;
    o->eidetic = o->y_hist + o->fade_k + o->fade_v + o->cand_eps + o->cand_pos + o->mem;
    o->total = o->attention_kv + o->eidetic;
}

size_t bm_bmojo_scratch_bytes(const bm_bmojo_args *a)
{
    bmojo_scratch_plan p;
    bmojo_plan(a, bmojo_nc_max(a->T > 0 ? a->T : 1, a->window > 0 ? a->window : 1), &p);
    return p.total * sizeof(float);
}

static int bmojo_check(const bm_bmojo_args *a)
{
    if (a->B < 1 || a->T < 0 || a->d < 1) return bm_fail(BMOJO_EINVAL, "bmojo mix: bad sizes B=%d T=%d d=%d", a->B, a->T, a->d);
    if (a->H < 1 || a->Hkv < 1 || a->H % a->Hkv || a->dh < 1)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: bad heads H=%d Hkv=%d dh=%d", a->H, a->Hkv, a->dh);
    if (a->window < 1) return bm_fail(BMOJO_EINVAL, "bmojo mix: window must be >= 1 (got %d)", a->window);
    if (a->m_f < 0 || a->m_e < 0)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: fading_tokens=%d / eidetic_tokens=%d must be >= 0", a->m_f, a->m_e);
    if (a->n_taps < 1 || a->n_taps > BM_BMOJO_MAX_TAPS || !a->taps)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: predictor needs 1..%d taps (got %d)", BM_BMOJO_MAX_TAPS, a->n_taps);
    if (a->pos0 < 0 || a->pos0 + a->T >= INT_MAX)
        return bm_fail(BMOJO_ERANGE, "bmojo mix: position %lld + %d out of range", (long long)a->pos0, a->T);
    if (!a->y || !a->q || !a->kx || !a->vx || !a->kf || !a->vf || !a->out)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: an input/output buffer (y, q, kx, vx, kf, vf, out) is NULL");
    if (a->train_sets && a->pos0 != 0)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: a training forward (train_sets) starts at position 0, not %lld",
                       (long long)a->pos0);
    if (a->train_lse && !a->train_sets)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: train_lse is for a training forward (train_sets is NULL)");
    if (!a->y_hist || !a->cand_eps || !a->cand_pos)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: a state buffer (y_hist, cand_eps, cand_pos) is NULL");
    if ((!a->train_sets || a->T == 1) && (!a->win_k || !a->win_v || !a->fade_k || !a->fade_v || !a->mem))
        return bm_fail(BMOJO_EINVAL, "bmojo mix: a state buffer (win_k, win_v, fade_k, fade_v, mem) is NULL");
    return 0;
}

/* Attention tile targets: query rows (tokens x heads of one kv head) and keys per tile.
 * Measured on an H200 (B=2, T=4096, H/Hkv=16/4, dh=64, w=128, m_f=16, m_e=32): rows 32 with
 * keys 8 / 16 / 32 per tile took 3.3 / 4.3 / 6.9 ms (the per-row softmax update is serial in
 * the keys of a tile, and smaller tiles leave more local memory for concurrent groups); rows 64
 * did not help. */
#ifndef BM_BMOJO_ATTN_ROWS
#define BM_BMOJO_ATTN_ROWS 32
#endif
#ifndef BM_BMOJO_ATTN_KT
#define BM_BMOJO_ATTN_KT 8
#endif
/* Decoding (T = 1) walks the token's key list (memory + window, up to m_f + m_e + w keys) in
 * blocks of up to this many keys, one key per work-item (cl/bmojo_attention.cl's decoding body;
 * at most the group size, and less where local memory is short). */
#ifndef BM_BMOJO_ATTN_DECODE_KT
#define BM_BMOJO_ATTN_DECODE_KT 64
#endif
/* Decoding split over keys (bmojo_auto_split): where the Hkv*B work-groups are fewer than
 * BM_BMOJO_SPLIT_PER_CU per compute unit, the key list is split into ranges of at least
 * BM_BMOJO_SPLIT_KEYS keys, at least BM_BMOJO_DECODE_MIN_SPLIT and at most
 * BM_BMOJO_DECODE_MAX_SPLIT of them. o_proj's launch merges the
 * splits (each of its work-groups reads every split's rows), so splits cost there what they save
 * in the attention. Measured on the H200 by skipping parts of the fused launches (bmojo-130m,
 * tokens/s at depth 0 / 4096, builds for measurement only): everything 614 / 543, without the
 * attention's groups 675 / 630, without the merge 633 / 597, without any B'MOJO work 845 / 848,
 * with 16-key splits (up to 24 splits, 32-key blocks). Before that, with the per-float4 merge,
 * BMOJO_BMOJO_SPLIT 12 / 16 / 24 / 35 splits gave 562 / 570 / 550 / 520 at depth 4096. Now a
 * split is one block of 64 keys: 548 keys (w 512, m_f 4, m_e 32) -> 9 splits, 36 work-groups. */
#ifndef BM_BMOJO_SPLIT_PER_CU
#define BM_BMOJO_SPLIT_PER_CU 2
#endif
#ifndef BM_BMOJO_SPLIT_KEYS
#define BM_BMOJO_SPLIT_KEYS 64
#endif
#ifndef BM_BMOJO_DECODE_MAX_SPLIT
#define BM_BMOJO_DECODE_MAX_SPLIT 24
#endif
/* ... and at least this many (short lists: the attention's groups set the launch's length).
 * With the staged 64-key blocks (H200, bmojo-130m, tokens/s at depth 0 / 4096, two rounds):
 * automatic (1-3 splits at depth 0, 9 at 4096) 682 / 661 and 621 / 598; BMOJO_BMOJO_SPLIT=4
 * 717 / 500 and 724 / 510; 9: 698 / 584 and 707 / 629; 16: 560 / 519 and 688 / 647. */
#ifndef BM_BMOJO_DECODE_MIN_SPLIT
#define BM_BMOJO_DECODE_MIN_SPLIT 4
#endif

/* Eidetic ranking (bm_bmojo_chunk_top, cl/bmojo_eidetic.cl): compares per work-item; a
 * candidate's count over its segment of n <= w elements is split over the fewest work-items
 * (a power of two) that keep each at most this many (bmojo-130m, T 512: 16 items per
 * candidate, 32 work-groups of 256). */
#ifndef BM_BMOJO_RANK_KEYS
#define BM_BMOJO_RANK_KEYS 32
#endif

/* Prefill split over keys (bmojo_prefill_split, GPUs only): the register-tiled kernel has
 * ntiles * Hkv * B work-groups of ~w + M keys each (18 tiles of 32 keys for bmojo-130m), i.e.
 * only 100 groups at T 512 on a 132-CU H200 (182 us, about what 392 groups take at T 2048:
 * the walk over the key tiles, not the device, sets the time). With fewer than
 * BM_BMOJO_PREFILL_FULL_PER_CU groups per compute unit the key list of every tile is split so
 * that there are about BM_BMOJO_PREFILL_SPLIT_PER_CU groups per compute unit, each split keeping
 * at least BM_BMOJO_PREFILL_SPLIT_TILES key tiles (bmojo-130m on an H200: T 512 -> 4 splits,
 * 400 groups; T 1024 -> 3; T 2048 -> 1, unchanged). The environment variable BMOJO_BMOJO_SPLIT
 * (a count 1 .. BM_BMOJO_MAX_SPLIT, or "auto") overrides the choice for measurements. */
#ifndef BM_BMOJO_PREFILL_FULL_PER_CU
#define BM_BMOJO_PREFILL_FULL_PER_CU 2
#endif
#ifndef BM_BMOJO_PREFILL_SPLIT_PER_CU
#define BM_BMOJO_PREFILL_SPLIT_PER_CU 3
#endif
#ifndef BM_BMOJO_PREFILL_SPLIT_TILES
#define BM_BMOJO_PREFILL_SPLIT_TILES 2
#endif

/* Local floats of bm_bmojo_attn's Ks and Vs arguments: K/V tiles of KT x dh for the generic body
 * (T > 1); for the decoding body (T = 1, cl/bmojo_attention.cl) K and V rows at stride dh + 1,
 * the K rows' space then holding the trees' R x KT. */
static size_t bmojo_attn_ks_floats(int T, size_t R, int dh, int KT)
{
    if (T != 1) return (size_t)KT * (size_t)dh;
    return (size_t)KT * ((size_t)dh + 1 > R ? (size_t)dh + 1 : R);
}
static size_t bmojo_attn_vs_floats(int T, int dh, int KT) { return (size_t)KT * ((size_t)dh + (T == 1)); }

/* Attention tiles: QT query tokens (times rep heads) and KT keys, as large as local memory
 * allows; returns the local bytes or 0 when even 1 x 1 does not fit. */
static size_t bmojo_attn_tiles(const bm_rt *rt, const bm_bmojo_args *a, int *qt, int *kt)
{
    const int rep = a->H / a->Hkv;
    int QT = BM_BMOJO_ATTN_ROWS / rep > 1 ? BM_BMOJO_ATTN_ROWS / rep : 1;
    int KT = a->T == 1 ? BM_BMOJO_ATTN_DECODE_KT : BM_BMOJO_ATTN_KT;
    if (QT > a->window) QT = a->window; /* a tile then spans at most 2 chunks */
    if (QT > a->T) QT = a->T;
    uint64_t budget = rt->lim.local_mem > 2048 ? rt->lim.local_mem - 1024 : rt->lim.local_mem;
    if (a->T == 1) { /* decoding: the fused launch's GEMV shares the groups' local memory */
        const size_t gemv = bm_op_gemv_fused_local(rt, (size_t)a->B, rt->lim.wg);
        budget = budget > gemv ? budget - gemv : 0;
        if ((size_t)KT > rt->lim.wg) KT = (int)rt->lim.wg; /* a key per work-item */
    }
    for (;;) {
        size_t R = (size_t)QT * rep;
        size_t bytes = sizeof(float) * (2 * R * a->dh + bmojo_attn_ks_floats(a->T, R, a->dh, KT) +
                                        bmojo_attn_vs_floats(a->T, a->dh, KT) + R * KT + 3 * R);
        if (bytes <= budget) {
            *qt = QT;
            *kt = KT;
            return bytes;
        }
        if (KT > 4) KT /= 2;
        else if (QT > 1) QT = (QT + 1) / 2;
        else if (KT > 1) KT /= 2;
        else return 0;
    }
}

static int bmojo_launch1(bm_rt *rt, cl_kernel k, const char *name, size_t n)
{
    size_t g = n, l = rt->lim.wg;
    return bm_launch(rt, k, name, 1, &g, &l);
}

/* Element offset of the V rows in the state's mem ([2, B, Hkv, max(M,1), dh]). */
static cl_ulong bmojo_mem_v_off(const bm_bmojo_args *a)
{
    const int M = a->m_f + a->m_e;
    return (cl_ulong)a->B * (cl_ulong)a->Hkv * (cl_ulong)(M > 0 ? M : 1) * (cl_ulong)a->dh;
}

static void bmojo_taps(const bm_bmojo_args *a, cl_float16 *taps)
{
    for (int j = 0; j < 16; j++) taps->s[j] = j < a->n_taps ? a->taps[j] : 0.0f;
}

/* Work-group size for a simple one-item-per-element kernel. */
static size_t bmojo_kernel_wg(const bm_rt *rt, cl_kernel k)
{
    size_t wg = rt->lim.wg, kwg = 0;
    if (clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL) == CL_SUCCESS &&
        kwg > 0 && kwg < wg)
        wg = kwg;
    if (rt->lim.max_wi[0] < wg) wg = rt->lim.max_wi[0];
    return wg ? wg : 1;
}

/* Merges the partial (O, m, l) rows of a split attention (bm_attn_combine, whose layout
 * bm_bmojo_attn and bm_bmojo_attn_tiled* write). */
static int bmojo_combine(bm_rt *rt, const bm_bmojo_args *a, int nsplit, cl_mem part)
{
    cl_kernel kc = bm_kernel(rt, "bm_attn_combine");
    if (!kc) return bm_fail_context(BMOJO_EBUILD, "bmojo mix: attention combine");
    const cl_int B = a->B, T = a->T, H = a->H, Hkv = a->Hkv, cdh = a->dh, cns = nsplit;
    const cl_long out_ld = (cl_long)a->out_ld;
    cl_int err = 0;
    int i = 0;
    err |= BM_ARG(kc, i++, B);
    err |= BM_ARG(kc, i++, T);
    err |= BM_ARG(kc, i++, H);
    err |= BM_ARG(kc, i++, Hkv);
    err |= BM_ARG(kc, i++, cdh);
    err |= BM_ARG(kc, i++, cns);
    err |= BM_ARG(kc, i++, part);
    err |= BM_ARG(kc, i++, a->out);
    err |= BM_ARG(kc, i++, out_ld);
    int st = bm_args_check(err, "bm_attn_combine");
    if (st) return st;
    const size_t g = (size_t)a->B * a->T * a->H * a->dh, l = bmojo_kernel_wg(rt, kc);
    return bm_launch(rt, kc, "bm_attn_combine", 1, &g, &l);
}

/* Prefill split count of the tiled attention (see BM_BMOJO_PREFILL_SPLIT_PER_CU): 1 on CPUs
 * (their few compute units are busy with the unsplit groups, and the combine would be extra
 * work) and wherever the groups already fill the device; else enough splits for the target,
 * no more than the longest key list has pairs of key tiles. BMOJO_BMOJO_SPLIT overrides. */
static int bmojo_prefill_split(const bm_rt *rt, const bm_bmojo_args *a, size_t groups, int QT, int BK)
{
    if (rt->bmojo_split > 0) return rt->bmojo_split; /* BMOJO_BMOJO_SPLIT, read at start-up */
    const size_t cus = rt->lim.compute_units ? rt->lim.compute_units : 1u;
    if (!rt->lim.is_gpu || groups >= (size_t)BM_BMOJO_PREFILL_FULL_PER_CU * cus) return 1;
    size_t n = ((size_t)BM_BMOJO_PREFILL_SPLIT_PER_CU * cus + groups - 1) / groups;
    /* keys of the longest list: the memories of 2 chunks and a window of w + QT - 1 positions */
    const int64_t span = a->pos0 + a->T < a->window + QT - 1 ? a->pos0 + a->T : a->window + QT - 1;
    const size_t most = ((size_t)2 * (a->m_f + a->m_e) + (size_t)span) / ((size_t)BM_BMOJO_PREFILL_SPLIT_TILES * BK);
    if (n > most) n = most;
    if (n > BM_BMOJO_MAX_SPLIT) n = BM_BMOJO_MAX_SPLIT;
    return n < 2 ? 1 : (int)n;
}

/* The arguments both attention kernels (bm_bmojo_attn, bm_bmojo_attn_tiled*) start with: the
 * views of q, K/V and the rings, the memory, the output and the sizes, from index *i on (which
 * advances past them). */
static cl_int bmojo_attn_view_args(cl_kernel kn, cl_uint *ip, const bm_bmojo_args *a, cl_mem mem, cl_ulong mk,
                                   cl_ulong mv, int NC)
{
    cl_int cT = a->T, cH = a->H, cHkv = a->Hkv, cdh = a->dh, cw = a->window, cmf = a->m_f, cme = a->m_e;
    cl_int cpos0 = (cl_int)a->pos0, cNC = NC, err = 0;
    cl_ulong q_ld = a->q_ld, q_col = a->q_col, x_ld = a->x_ld, kx_col = a->kx_col, vx_col = a->vx_col;
    cl_ulong out_ld = a->out_ld;
    cl_float scale = a->scale;
    cl_uint i = *ip;
    err |= BM_ARG(kn, i++, a->q);
    err |= BM_ARG(kn, i++, q_ld);
    err |= BM_ARG(kn, i++, q_col);
    err |= BM_ARG(kn, i++, a->kx);
    err |= BM_ARG(kn, i++, a->vx);
    err |= BM_ARG(kn, i++, x_ld);
    err |= BM_ARG(kn, i++, kx_col);
    err |= BM_ARG(kn, i++, vx_col);
    err |= BM_ARG(kn, i++, a->win_k);
    err |= BM_ARG(kn, i++, a->win_v);
    err |= BM_ARG(kn, i++, mem);
    err |= BM_ARG(kn, i++, mk);
    err |= BM_ARG(kn, i++, mv);
    err |= BM_ARG(kn, i++, a->out);
    err |= BM_ARG(kn, i++, out_ld);
    err |= BM_ARG(kn, i++, a->train_lse); /* NULL: not written */
    err |= BM_ARG(kn, i++, cT);
    err |= BM_ARG(kn, i++, cH);
    err |= BM_ARG(kn, i++, cHkv);
    err |= BM_ARG(kn, i++, cdh);
    err |= BM_ARG(kn, i++, cw);
    err |= BM_ARG(kn, i++, cmf);
    err |= BM_ARG(kn, i++, cme);
    err |= BM_ARG(kn, i++, cpos0);
    err |= BM_ARG(kn, i++, cNC);
    err |= BM_ARG(kn, i++, scale);
    *ip = i;
    return err;
}

/* The register-tiled attention (bm_bmojo_attn_tiled*, cl/bmojo_attention.cl; tile plan shared
 * with op_attention.c) for prefill: 3-4x faster on an H200 than bm_bmojo_attn, which stays for
 * few rows (decoding) and head dims or devices it does not fit. Arguments as bm_bmojo_attn's
 * up to QT; nsplit key splits (0: bmojo_prefill_split), partial results on the scratch
 * stack (the caller releases them) and bm_attn_combine when > 1. Returns 1 (nothing launched) where it does not
 * suit, else a status. */
static int bmojo_attention_tiled(bm_rt *rt, const bm_bmojo_args *a, cl_mem mem, cl_ulong mk, cl_ulong mv, int NC,
                                 int nsplit)
{
    const int rep = a->H / a->Hkv;
    const long rows = (long)(a->T < a->window ? a->T : a->window) * rep; /* most rows of one tile */
    if ((long)a->T * rep < 16) return 1;
    bm_attn_tiled_plan p;
    int st = bm_attn_tiled_choose(rt, "bm_bmojo_attn_tiled", a->dh, rows, &p);
    if (st <= 0) return st < 0 ? st : 1;
    int QT = p.BR / rep;
    if (QT < 1) return 1;
    if (QT > a->window) QT = a->window; /* a tile then spans at most 2 chunks */
    if (QT > a->T) QT = a->T;
    const size_t ntiles = ((size_t)a->T + QT - 1) / QT;
    if (nsplit == 0) nsplit = bmojo_prefill_split(rt, a, ntiles * a->Hkv * (size_t)a->B, QT, p.BK);
    cl_mem part = a->out; /* unused without a split */
    if (nsplit > 1) {
        const size_t bytes = sizeof(float) * (size_t)nsplit * a->B * a->H * (size_t)a->T * (size_t)(a->dh + 2);
        if ((st = bm_scratch_take(rt, bytes, &part)))
            return bm_fail_context(st, "bmojo mix: prefill attention with %d key splits", nsplit);
    }
    cl_kernel kn = p.kernel;
    cl_int cQT = QT, cns = nsplit;
    cl_uint i = 0;
    cl_int err = bmojo_attn_view_args(kn, &i, a, mem, mk, mv, NC);
    err |= BM_ARG(kn, i++, cQT);
    err |= BM_ARG(kn, i++, cns);
    err |= BM_ARG(kn, i++, part);
    err |= BM_ARG_LOCAL(kn, i++, p.local_q);
    err |= BM_ARG_LOCAL(kn, i++, p.local_kp);
    err |= BM_ARG_LOCAL(kn, i++, p.local_v);
    err |= BM_ARG_LOCAL(kn, i++, p.local_red);
    if ((st = bm_args_check(err, p.name))) return st;
    size_t g[3] = {p.L * ntiles * (size_t)nsplit, (size_t)a->Hkv, (size_t)a->B}, l[3] = {p.L, 1, 1};
    if ((st = bm_launch(rt, kn, p.name, 3, g, l))) return st;
    return nsplit > 1 ? bmojo_combine(rt, a, nsplit, part) : 0;
}

/* Keys of a decoding token's list (T = 1, one chunk): its chunk's M memory slots (masked ones
 * included) and its window, positions max(0, pos0-w+1) .. pos0 — bm_bmojo_attn's Nk. */
static int bmojo_decode_keys(const bm_bmojo_args *a)
{
    const int64_t plo = a->pos0 - a->window + 1 > 0 ? a->pos0 - a->window + 1 : 0;
    return a->m_f + a->m_e + (int)(a->pos0 - plo + 1);
}

/* Keys per split KS (a multiple of 8) for nsplit splits of a key list: the splits take
 * consecutive ranges of KS keys, the last one the rest; with more splits than ranges of 8
 * keys, the trailing splits are empty (they report m = -inf, which the combine skips).
 * Decoding: the token's list. Prefill (a forced split of the generic kernel, tiles of QT
 * tokens): the longest list of a tile (memories of 2 chunks, a window of w + QT - 1 positions);
 * shorter lists leave their last splits empty. */
static int bmojo_split_keys(const bm_bmojo_args *a, int nsplit, int QT)
{
    int Nk = bmojo_decode_keys(a);
    if (a->T > 1) {
        const int64_t span = a->pos0 + a->T < a->window + QT - 1 ? a->pos0 + a->T : a->window + QT - 1;
        Nk = 2 * (a->m_f + a->m_e) + (int)span;
    }
    const int per = (Nk + nsplit - 1) / nsplit;
    return (per + 7) & ~7;
}

/* Automatic split count for decoding: only where the Hkv*B work-groups leave a GPU mostly idle
 * (the walk over the ~w + M keys of one work-group is serial in its key blocks). Aims at
 * BM_BMOJO_SPLIT_PER_CU work-groups per compute unit with at least BM_BMOJO_SPLIT_KEYS keys per
 * split, within [BM_BMOJO_DECODE_MIN_SPLIT, BM_BMOJO_DECODE_MAX_SPLIT] (short lists may leave
 * trailing splits empty: they report m = -inf, which the merge skips). CPU devices keep one
 * work-group per (kv head, sequence): their few compute units are already busy with those, and
 * the merge costs more than it saves there. */
static int bmojo_auto_split(const bm_rt *rt, const bm_bmojo_args *a)
{
    if (a->T != 1 || !rt->lim.is_gpu) return 1;
    const size_t groups = (size_t)a->B * a->Hkv;
    const size_t target = (size_t)BM_BMOJO_SPLIT_PER_CU * (rt->lim.compute_units ? rt->lim.compute_units : 1u);
    if (groups * 2 > target) return 1;
    const int Nk = bmojo_decode_keys(a);
    size_t per = ((size_t)Nk * groups + target - 1) / target; /* keys per split that reach the target */
    if (per < BM_BMOJO_SPLIT_KEYS) per = BM_BMOJO_SPLIT_KEYS;
    per = (per + 7) & ~(size_t)7;
    size_t n = ((size_t)Nk + per - 1) / per;
    if (n > BM_BMOJO_DECODE_MAX_SPLIT) n = BM_BMOJO_DECODE_MAX_SPLIT;
    if (n < BM_BMOJO_DECODE_MIN_SPLIT) n = BM_BMOJO_DECODE_MIN_SPLIT;
    return (int)n;
}

/* The generic attention kernel's launch plan: tiles, key split, the partial results' buffer. */
typedef struct {
    int QT, KT, KS, nsplit;
    cl_mem part;
    size_t ntiles;
} bmojo_attn_plan;

static int bmojo_attn_plan_make(bm_rt *rt, const bm_bmojo_args *a, int nsplit, bmojo_attn_plan *p)
{
    if (nsplit == 0) nsplit = a->T != 1 ? 1 : rt->bmojo_split > 0 ? rt->bmojo_split : bmojo_auto_split(rt, a);
    int QT = 1, KT = 1;
    size_t lbytes = bmojo_attn_tiles(rt, a, &QT, &KT);
    if (!lbytes)
        return bm_fail(BMOJO_EUNSUPPORTED, "bmojo mix: head_dim %d with %d query heads per kv head does not fit "
                       "the device's %llu bytes of local memory", a->dh, a->H / a->Hkv,
                       (unsigned long long)rt->lim.local_mem);
    int KS = 0;
    if (nsplit > 1) {
        KS = bmojo_split_keys(a, nsplit, QT);
        if (KT > KS) KT = KS; /* smaller tiles fit too: one tile per split when KS <= 64 */
    }
    if (a->T == 1) {
        /* the decoding body's key blocks are a power of two (its trees), at most one key per
         * work-item, no larger than a split's keys need (or the whole list's) */
        const int keys = nsplit > 1 ? KS : bmojo_decode_keys(a);
        int pw = 1;
        while (pw < KT && pw < keys && (size_t)pw * 2 <= rt->lim.wg) pw *= 2;
        KT = pw;
    }
    /* part: unused without a split (bmojo_attn_take_parts gives it one) */
    *p = (bmojo_attn_plan){QT, KT, KS, nsplit, a->out, ((size_t)a->T + QT - 1) / QT};
    return 0;
}

/* The key splits' partial results (o, m, l per row and split) on the scratch stack: the caller
 * releases them after whatever merges them. Nothing taken without a split. */
static int bmojo_attn_take_parts(bm_rt *rt, const bm_bmojo_args *a, bmojo_attn_plan *p)
{
    if (p->nsplit <= 1) return 0;
    const size_t bytes = sizeof(float) * (size_t)p->nsplit * a->B * a->H * (size_t)a->T * (size_t)(a->dh + 2);
    int st = bm_scratch_take(rt, bytes, &p->part);
    return st ? bm_fail_context(st, "bmojo mix: attention with %d key splits", p->nsplit) : 0;
}

/* bm_bmojo_attn's arguments (or a fused kernel's, from index `first`). */
#define BM_BMOJO_ATTN_NARGS 37 /* their number: cl/bmojo_attention.cl's BM_BMOJO_ATTN_PARAMS */
static cl_int bmojo_attn_set_args(cl_kernel kn, cl_uint first, const bm_bmojo_args *a, cl_mem mem, cl_ulong mk,
                                  cl_ulong mv, int NC, const bmojo_attn_plan *p)
{
    const size_t R = (size_t)p->QT * (a->H / a->Hkv);
    cl_int cQT = p->QT, cKT = p->KT, cns = p->nsplit, cKS = p->KS;
    cl_uint i = first;
    cl_int err = bmojo_attn_view_args(kn, &i, a, mem, mk, mv, NC);
    err |= BM_ARG(kn, i++, cQT);
    err |= BM_ARG(kn, i++, cKT);
    err |= BM_ARG(kn, i++, cns);
    err |= BM_ARG(kn, i++, cKS);
    err |= BM_ARG(kn, i++, p->part);
    err |= BM_ARG_LOCAL(kn, i++, sizeof(float) * R * a->dh);
    err |= BM_ARG_LOCAL(kn, i++, sizeof(float) * R * a->dh);
    err |= BM_ARG_LOCAL(kn, i++, sizeof(float) * bmojo_attn_ks_floats(a->T, R, a->dh, p->KT));
    err |= BM_ARG_LOCAL(kn, i++, sizeof(float) * bmojo_attn_vs_floats(a->T, a->dh, p->KT));
    err |= BM_ARG_LOCAL(kn, i++, sizeof(float) * R * p->KT);
    err |= BM_ARG_LOCAL(kn, i++, sizeof(float) * 3 * R);
    return err;
}

/* The attention over [memory | window]: the memory rows of the NC chunks are read from mem at
 * element offsets mk / mv (the prefill's scratch, or the state memory when decoding). nsplit > 1
 * (decoding only): bm_bmojo_attn split over the key list (groups (split, kv head, sequence)),
 * partial results on the scratch stack, then bm_attn_combine. */
static int bmojo_attention_generic(bm_rt *rt, const bm_bmojo_args *a, cl_mem mem, cl_ulong mk, cl_ulong mv, int NC,
                                   int nsplit)
{
    bmojo_attn_plan p;
    int st = bmojo_attn_plan_make(rt, a, nsplit, &p);
    if (!st) st = bmojo_attn_take_parts(rt, a, &p);
    if (st) return st;
    cl_kernel kn = bm_kernel(rt, "bm_bmojo_attn");
    if (!kn) return BMOJO_EBUILD;
    st = bm_args_check(bmojo_attn_set_args(kn, 0, a, mem, mk, mv, NC, &p), "bm_bmojo_attn");
    if (st) return st;
    size_t g[3] = {rt->lim.wg * p.ntiles * (size_t)p.nsplit, (size_t)a->Hkv, (size_t)a->B}, l[3] = {rt->lim.wg, 1, 1};
    if ((st = bm_launch(rt, kn, "bm_bmojo_attn", 3, g, l))) return st;
    return p.nsplit > 1 ? bmojo_combine(rt, a, p.nsplit, p.part) : 0;
}

/* The CPU kernel (cl/bmojo_attention_cpu.cl): a work-item per (BMOJO_ATTN_CPU_TQ queries, query
 * head, sequence), no split, no local memory. */
#define BMOJO_ATTN_CPU_TQ 8       /* the kernel's BM_BATC_TQ */
#define BMOJO_ATTN_CPU_MAX_DH 256 /* its BM_BATC_MAXC float16 chunks */
static int bmojo_attention_cpu(bm_rt *rt, const bm_bmojo_args *a, cl_mem mem, cl_ulong mk, cl_ulong mv, int NC)
{
    if (a->dh > BMOJO_ATTN_CPU_MAX_DH)
        return bm_fail(BMOJO_EUNSUPPORTED, "bmojo mix (CPU attention kernel): head_dim %d is over %d", a->dh,
                       BMOJO_ATTN_CPU_MAX_DH);
    cl_kernel kn = bm_kernel(rt, "bm_bmojo_attn_cpu");
    if (!kn) return bm_fail_context(BMOJO_EBUILD, "bmojo mix (CPU attention kernel)");
    cl_uint i = 0;
    int st = bm_args_check(bmojo_attn_view_args(kn, &i, a, mem, mk, mv, NC), "bm_bmojo_attn_cpu");
    if (st) return st;
    const size_t g[3] = {((size_t)a->T + BMOJO_ATTN_CPU_TQ - 1) / BMOJO_ATTN_CPU_TQ, (size_t)a->H, (size_t)a->B};
    const size_t l[3] = {1, 1, 1};
    return bm_launch(rt, kn, "bm_bmojo_attn_cpu", 3, g, l);
}

/* The CPU kernel where the runtime's form says so, or on CPUs (auto) for an unsplit attention
 * whose head fits it: measured in docs/performance.md (POCL). */
static int bmojo_use_cpu_attention(const bm_rt *rt, const bm_bmojo_args *a, int nsplit)
{
    if (rt->bmojo_attn_form == BM_FORM_CPU) return 1;
    return rt->bmojo_attn_form == BM_FORM_AUTO && !rt->lim.is_gpu && nsplit <= 1 &&
           a->dh <= BMOJO_ATTN_CPU_MAX_DH;
}

/* The attention over [memory | window]: the CPU kernel (above), or the register-tiled kernel for
 * prefill where it suits, else the generic one; the key splits' partial results are released
 * before returning. */
static int bmojo_attention(bm_rt *rt, const bm_bmojo_args *a, cl_mem mem, cl_ulong mk, cl_ulong mv, int NC,
                           int nsplit)
{
    if (bmojo_use_cpu_attention(rt, a, nsplit)) return bmojo_attention_cpu(rt, a, mem, mk, mv, NC);
    int mark = bm_scratch_mark(rt);
    int st = 1;
    if (a->T > 1) st = bmojo_attention_tiled(rt, a, mem, mk, mv, NC, nsplit);
    if (st == 1) st = bmojo_attention_generic(rt, a, mem, mk, mv, NC, nsplit);
    bm_scratch_release(rt, mark);
    return st;
}

/* Arguments of bm_bmojo_step_pre from index `first` (bm_bmojo_step, bm_scan_step_bmojo_pre). */
#define BM_BMOJO_PRE_NARGS 19 /* the length of cl/bmojo_eidetic.cl's BM_BMOJO_PRE_PARAMS */
static cl_int set_pre_args(cl_kernel k, cl_uint first, const bm_bmojo_args *a)
{
    cl_int cHkv = a->Hkv, cdh = a->dh, cw = a->window, cmf = a->m_f, cme = a->m_e, cpos0 = (cl_int)a->pos0, err = 0;
    cl_ulong x_ld = a->x_ld, kx_col = a->kx_col, vx_col = a->vx_col, mv = bmojo_mem_v_off(a);
    cl_uint i = first;
    err |= BM_ARG(k, i++, a->kx);
    err |= BM_ARG(k, i++, a->vx);
    err |= BM_ARG(k, i++, x_ld);
    err |= BM_ARG(k, i++, kx_col);
    err |= BM_ARG(k, i++, vx_col);
    err |= BM_ARG(k, i++, a->win_k);
    err |= BM_ARG(k, i++, a->win_v);
    err |= BM_ARG(k, i++, a->fade_k);
    err |= BM_ARG(k, i++, a->fade_v);
    err |= BM_ARG(k, i++, a->cand_eps);
    err |= BM_ARG(k, i++, a->cand_pos);
    err |= BM_ARG(k, i++, a->mem);
    err |= BM_ARG(k, i++, mv);
    err |= BM_ARG(k, i++, cHkv);
    err |= BM_ARG(k, i++, cdh);
    err |= BM_ARG(k, i++, cw);
    err |= BM_ARG(k, i++, cmf);
    err |= BM_ARG(k, i++, cme);
    err |= BM_ARG(k, i++, cpos0);
    return err;
}

#define BM_BMOJO_POST_NARGS 19 /* the length of cl/bmojo_eidetic.cl's BM_BMOJO_POST_PARAMS */
/* Arguments of bm_bmojo_step_post from index `first` (bm_bmojo_step, bm_gemv4_bmojo_post); ctx is
 * the bm_bmojo_args. */
static int set_post_args(cl_kernel k, cl_uint first, void *ctx)
{
    const bm_bmojo_args *a = ctx;
    cl_float16 taps;
    bmojo_taps(a, &taps);
    cl_int cd = a->d, ck = a->n_taps, cHkv = a->Hkv, cdh = a->dh, cmf = a->m_f, cme = a->m_e;
    cl_int cpos0 = (cl_int)a->pos0, err = 0;
    cl_ulong f_ld = a->f_ld, kf_col = a->kf_col, vf_col = a->vf_col;
    cl_uint i = first;
    err |= BM_ARG(k, i++, a->y);
    err |= BM_ARG(k, i++, a->y_hist);
    err |= BM_ARG(k, i++, cd);
    err |= BM_ARG(k, i++, ck);
    err |= BM_ARG(k, i++, taps);
    err |= BM_ARG(k, i++, a->kf);
    err |= BM_ARG(k, i++, a->vf);
    err |= BM_ARG(k, i++, f_ld);
    err |= BM_ARG(k, i++, kf_col);
    err |= BM_ARG(k, i++, vf_col);
    err |= BM_ARG(k, i++, a->fade_k);
    err |= BM_ARG(k, i++, a->fade_v);
    err |= BM_ARG(k, i++, a->cand_eps);
    err |= BM_ARG(k, i++, a->cand_pos);
    err |= BM_ARG(k, i++, cHkv);
    err |= BM_ARG(k, i++, cdh);
    err |= BM_ARG(k, i++, cmf);
    err |= BM_ARG(k, i++, cme);
    err |= BM_ARG(k, i++, cpos0);
    return bm_args_check(err, "bm_gemv4_bmojo_post");
}

/* Decoding, T = 1: the whole state update in one launch (bm_bmojo_step: the memory rebuild at a
 * chunk start, eps and the y history, the ring appends, the candidate insertion), then the
 * attention reading the state memory of the token's chunk in place (NC = 1, so its chunk
 * memory layout is the state's), split over keys as nsplit says (0: bmojo_auto_split). Nothing
 * here depends on pos0 but the kernels' arguments (and the automatic split count, which grows
 * with the key count until the window is full). */
static int bmojo_decode(bm_rt *rt, const bm_bmojo_args *a, int nsplit)
{
    /* the state update: a work-group per sequence, or on CPUs (the innovation's form: the step
     * sums eps as the innovation does) a work-item per sequence (cl/bmojo_step_cpu.cl) */
    const int cpu = bm_form_cpu(rt, rt->bmojo_innov_form);
    const char *name = cpu ? "bm_bmojo_step_cpu" : "bm_bmojo_step";
    cl_kernel kn = bm_kernel(rt, name);
    if (!kn) return BMOJO_EBUILD;
    /* the kernel takes the two halves' parameter lists one after the other */
    int st = bm_args_check(set_pre_args(kn, 0, a), name);
    if (!st) st = set_post_args(kn, BM_BMOJO_PRE_NARGS, (void *)a);
    if (st) return st;
    const size_t wg = cpu ? 1 : rt->lim.wg;
    size_t g[2] = {wg, (size_t)a->B}, l[2] = {wg, 1};
    if ((st = bm_launch(rt, kn, name, 2, g, l))) return st;
    return bmojo_attention(rt, a, a->mem, 0, bmojo_mem_v_off(a), 1, nsplit);
}

/* ---- Decoding fused with the rest of the sublayer (bm_bmojo_decode_*, ops_bmojo.h) ---- */

int bm_bmojo_decode_fused_ok(bm_rt *rt, const bm_bmojo_args *a, const bm_scan_args *sa)
{
    /* shapes only: the launchers check the arguments themselves (and name what is wrong) */
    if (!rt || !a || !sa || !rt->fuse_decode || a->T != 1 || sa->T != 1 || a->B != sa->B || a->B < 1 ||
        a->B > BM_GEMV_MAX_ROWS || !sa->dt_proj || !a->out)
        return 0;
    bm_gemv_input att = {BM_GEMV_PLAIN, a->out, 0, a->out_ld, NULL, 0.0f, 0};
    /* the fused launches run BM_WG items per group (the post half's eps tree must be the
     * prefill's), so their GEMV reduction arrays must fit with that size */
    return bm_op_gemv_fused_ok(rt, &att, (size_t)a->B, (size_t)a->H * a->dh, 0, (size_t)a->H * a->dh) &&
           bm_op_gemv_fused_local(rt, (size_t)a->B, rt->lim.wg) <= rt->lim.local_mem / 2;
}

int bm_bmojo_decode_scan_pre(bm_rt *rt, const bm_scan_args *sa, const bm_bmojo_args *a)
{
    int cst = a ? bmojo_check(a) : bm_fail(BMOJO_EINVAL, "bmojo decode: NULL arguments");
    if (cst) return cst;
    if (!bm_bmojo_decode_fused_ok(rt, a, sa))
        return bm_fail(BMOJO_EINVAL, "bmojo decode: the fused scan step does not apply (check bm_bmojo_decode_fused_ok)");
    cl_kernel k = bm_kernel(rt, "bm_scan_step_bmojo_pre");
    if (!k) return bm_fail_context(BMOJO_EBUILD, "bmojo decode");
    size_t g[2], l[2];
    int st = bm_scan_step_setup(rt, k, sa, g, l);
    if (!st) st = bm_args_check(set_pre_args(k, 18, a), "bm_scan_step_bmojo_pre");
    g[0] += l[0]; /* one more group: the pre-attention state update of sequence get_group_id(1) */
    if (!st) st = bm_launch(rt, k, "bm_scan_step_bmojo_pre", 2, g, l);
    return st;
}

int bm_bmojo_decode_attention(bm_rt *rt, const bm_bmojo_args *a)
{
    int st = bmojo_check(a);
    if (st) return st;
    if (a->T != 1) return bm_fail(BMOJO_EINVAL, "bmojo decode: attention of %d tokens (decoding is 1)", a->T);
    return bmojo_attention(rt, a, a->mem, 0, bmojo_mem_v_off(a), 1, 0);
}

/* Whether o_proj's launch (bm_gemv4_bmojo_post) merges the decoding attention's key splits,
 * saving the combine's launch: its float4 reads must stay inside one head. */
/* Local bytes of o_proj's merge table for nsplit splits (cl/gemv.cl, bm_gemv_parts_weights): a
 * weight per (sequence, head, split), and as much room to build it. */
static size_t bmojo_merge_table_bytes(const bm_bmojo_args *a, int nsplit)
{
    return 2 * sizeof(float) * (size_t)a->B * (size_t)a->H * (size_t)(nsplit > 0 ? nsplit : 1);
}

static int bmojo_merge_in_oproj(const bm_rt *rt, const bm_bmojo_args *a, const bmojo_attn_plan *p)
{
    return p->nsplit > 1 && a->dh % 4 == 0 && bmojo_merge_table_bytes(a, p->nsplit) <= rt->lim.local_mem / 4;
}

/* The split-output GEMV's extra arguments and the attention's, for bm_gemv4_split_bmojo_attn. */
typedef struct {
    const bm_bmojo_args *a;
    const bmojo_attn_plan *p;
    cl_int n_split;
    cl_mem C2;
    cl_ulong ldc2;
} kv_attn_ctx;

static int set_kv_attn_args(cl_kernel k, cl_uint first, void *ctx)
{
    const kv_attn_ctx *c = ctx;
    cl_ulong zero = 0;
    cl_int B = c->a->B, ts = (cl_int)(c->p->ntiles * (size_t)c->p->nsplit);
    cl_int err = BM_ARG(k, first, c->n_split) | BM_ARG(k, first + 1, c->C2) | BM_ARG(k, first + 2, zero) |
                 BM_ARG(k, first + 3, c->ldc2);
    err |= bmojo_attn_set_args(k, first + 4, c->a, c->a->mem, 0, bmojo_mem_v_off(c->a), 1, c->p);
    err |= BM_ARG(k, first + 4 + BM_BMOJO_ATTN_NARGS, B) | BM_ARG(k, first + 5 + BM_BMOJO_ATTN_NARGS, ts);
    return bm_args_check(err, "bm_gemv4_split_bmojo_attn");
}

int bm_bmojo_decode_kv_attention(bm_rt *rt, const bm_bmojo_args *a, const bm_gemv_input *ys, size_t K, bm_wmat W,
                                 cl_mem y, size_t d, cl_mem kvf, size_t kv, cl_mem *parts)
{
    if (!parts) return bm_fail(BMOJO_EINVAL, "bmojo decode: NULL parts");
    *parts = NULL;
    int st = bmojo_check(a);
    if (st) return st;
    if (a->T != 1) return bm_fail(BMOJO_EINVAL, "bmojo decode: attention of %d tokens (decoding is 1)", a->T);
    bmojo_attn_plan p;
    st = bmojo_attn_plan_make(rt, a, 0, &p);
    if (!st) st = bmojo_attn_take_parts(rt, a, &p);
    if (st) return st;
    if (p.nsplit > 1) *parts = p.part;
    kv_attn_ctx c = {a, &p, (cl_int)d, kvf, kv};
    bm_gemv_fused f = {.kernel = "bm_gemv4_split_bmojo_attn",
                       .extra_groups = p.ntiles * (size_t)p.nsplit * (size_t)a->Hkv * (size_t)a->B,
                       .L = rt->lim.wg, .split_at = d, .set_args = set_kv_attn_args, .ctx = &c};
    st = bm_op_gemv_fused(rt, ys, (size_t)a->B, d + kv, K, W, 0, K, 0.0f, y, 0, d, &f);
    /* split over keys: bm_bmojo_decode_out_post merges the splits (or the combine runs here) */
    return !st && p.nsplit > 1 && !bmojo_merge_in_oproj(rt, a, &p) ? bmojo_combine(rt, a, p.nsplit, p.part) : st;
}

/* bm_gemv4_bmojo_post's arguments: the post half's, then the attention splits to merge (0: the
 * attention output is in a->out already) and where the merged rows go. */
typedef struct {
    const bm_bmojo_args *a;
    cl_int n_parts, part_cols;
} out_post_ctx;

static int set_out_post_args(cl_kernel k, cl_uint first, void *ctx)
{
    const out_post_ctx *c = ctx;
    int st = set_post_args(k, first, (void *)c->a);
    if (st) return st;
    const cl_uint i = first + BM_BMOJO_POST_NARGS;
    const cl_ulong merged_ld = c->a->out_ld;
    const size_t wts = bmojo_merge_table_bytes(c->a, c->n_parts);
    cl_int err = BM_ARG(k, i, c->n_parts) | BM_ARG(k, i + 1, c->part_cols) | BM_ARG_LOCAL(k, i + 2, wts) |
                 BM_ARG(k, i + 3, c->a->out) | BM_ARG(k, i + 4, merged_ld);
    return bm_args_check(err, "bm_gemv4_bmojo_post");
}

int bm_bmojo_decode_out_post(bm_rt *rt, const bm_bmojo_args *a, cl_mem parts, bm_wmat wo, cl_mem x, size_t x_ld)
{
    int cst = a ? bmojo_check(a) : bm_fail(BMOJO_EINVAL, "bmojo decode: NULL arguments");
    if (cst) return cst;
    if (a->T != 1) return bm_fail(BMOJO_EINVAL, "bmojo decode: o_proj of %d tokens (decoding is 1)", a->T);
    const size_t hd = (size_t)a->H * a->dh;
    /* the attention's plan, as bm_bmojo_decode_kv_attention made it (the same arguments give the
     * same split count); its partial results are `parts` */
    bmojo_attn_plan p;
    int st = bmojo_attn_plan_make(rt, a, 0, &p);
    if (st) return st;
    if (p.nsplit > 1) {
        if (!parts) return bm_fail(BMOJO_EINVAL, "bmojo decode: %d key splits but no partial results", p.nsplit);
        p.part = parts;
    }
    const int merge = bmojo_merge_in_oproj(rt, a, &p);
    bm_gemv_input att = {BM_GEMV_PLAIN, a->out, 0, a->out_ld, NULL, 0.0f, 0};
    if (merge) att = (bm_gemv_input){BM_GEMV_PARTS, p.part, 0, hd, NULL, 0.0f, 0};
    out_post_ctx c = {a, merge ? p.nsplit : 0, a->dh};
    /* BM_WG items per group: the post half's eps tree must match the prefill's */
    bm_gemv_fused f = {.kernel = "bm_gemv4_bmojo_post", .extra_groups = (size_t)a->B, .L = rt->lim.wg,
                       .reads_parts = 1, .set_args = set_out_post_args, .ctx = &c};
    return bm_op_gemv_fused(rt, &att, (size_t)a->B, (size_t)a->d, hd, wo, 0, hd, 1.0f, x, 0, x_ld, &f);
}

int bm_bmojo_mix(bm_rt *rt, const bm_bmojo_args *a, cl_mem scratch) { return bm_bmojo_mix_nsplit(rt, a, scratch, 0); }

/* A training forward's sets (a->train_sets) from the merge's E(s_c) in the scratch's sel (not
 * read where there is none: T = 1, m_e = 0), -1 pads (bm_bmojo_sets_fill). */
static int bmojo_train_sets(bm_rt *rt, const bm_bmojo_args *a, cl_mem scratch, cl_ulong sel_off, int NC)
{
    cl_kernel kn = bm_kernel(rt, "bm_bmojo_sets_fill");
    if (!kn) return BMOJO_EBUILD;
    cl_int err = 0, cB = a->B, cNC = NC, cw = a->window, cme = a->m_e;
    cl_uint i = 0;
    err |= BM_ARG(kn, i++, scratch);
    err |= BM_ARG(kn, i++, sel_off);
    err |= BM_ARG(kn, i++, a->train_sets);
    err |= BM_ARG(kn, i++, cB);
    err |= BM_ARG(kn, i++, cNC);
    err |= BM_ARG(kn, i++, cw);
    err |= BM_ARG(kn, i++, cme);
    int st = bm_args_check(err, "bm_bmojo_sets_fill");
    if (st) return st;
    return bmojo_launch1(rt, kn, "bm_bmojo_sets_fill", (size_t)a->B * (size_t)NC * (size_t)(a->m_e > 0 ? a->m_e : 1));
}

int bm_bmojo_mix_nsplit(bm_rt *rt, const bm_bmojo_args *a, cl_mem scratch, int nsplit)
{
    int st = bmojo_check(a);
    if (st) return st;
    if (nsplit < 0 || nsplit > BM_BMOJO_MAX_SPLIT)
        return bm_fail(BMOJO_EINVAL, "bmojo mix: %d key splits (0 .. %d)", nsplit, BM_BMOJO_MAX_SPLIT);
    if (a->train_lse) { /* the attention writes lse only unsplit (no combine of statistics) */
        if (nsplit > 1) return bm_fail(BMOJO_EINVAL, "bmojo mix: train_lse with %d key splits", nsplit);
        nsplit = 1;
    }
    if (a->T == 0) return 0;
    if (!scratch) return bm_fail(BMOJO_EINVAL, "bmojo mix: scratch buffer is NULL");
    if (a->T == 1) {
        st = bmojo_decode(rt, a, nsplit);
        return st || !a->train_sets ? st : bmojo_train_sets(rt, a, scratch, 0, 1); /* E(0) is empty */
    }
    bm_bmojo_args stateless;
    if (a->train_sets) { /* the state buffers it leaves alone may be NULL: any buffer will do as their arguments */
        stateless = *a;
        cl_mem *unused[5] = {&stateless.win_k, &stateless.win_v, &stateless.fade_k, &stateless.fade_v, &stateless.mem};
        for (int u = 0; u < 5; u++)
            if (!*unused[u]) *unused[u] = a->y_hist;
        a = &stateless;
    }
    const int w = a->window, mf = a->m_f, me = a->m_e, M = mf + me;
    const int pos0 = (int)a->pos0, T = a->T;
    const int NC = (pos0 + T - 1) / w - pos0 / w + 1;
    bmojo_scratch_plan p;
    bmojo_plan(a, bmojo_nc_max(T, w), &p); /* the same offsets bm_bmojo_scratch_bytes sized */
    const size_t wg = rt->lim.wg;
    /* the gather and the state save take their CPU forms with the attention's */
    const int cpu_form = bm_form_cpu(rt, rt->bmojo_attn_form);
    cl_int err = 0;
    cl_int cB = a->B, cT = T, cd = a->d, ck = a->n_taps, cw = w, cmf = mf, cme = me, cpos0 = pos0, cNC = NC;
    cl_int cHkv = a->Hkv, cdh = a->dh, cM = M;
    cl_ulong o_eps = p.eps, o_te = p.top_eps, o_tp = p.top_pos, o_sel = p.sel;
    cl_ulong o_we = p.work_eps, o_wp = p.work_pos, o_ws = p.work_src, o_mk = p.memk, o_mv = p.memv;
    cl_ulong x_ld = a->x_ld, kx_col = a->kx_col, vx_col = a->vx_col;
    cl_ulong f_ld = a->f_ld, kf_col = a->kf_col, vf_col = a->vf_col, smv = bmojo_mem_v_off(a);
    cl_kernel kn;
    int i;

    /* 1. innovation eps (only the selection needs it; the y history moves on in step 5) */
    if (me > 0) {
        cl_float16 taps;
        bmojo_taps(a, &taps);
        if ((st = bm_bmojo_innovation_launch(rt, a->y, a->y_hist, scratch, o_eps, a->B, T, a->d, a->n_taps, &taps)))
            return st;
    }

    /* 2. eidetic selection: per-chunk tops (parallel over chunks), then the running merge,
     *    which also rewrites cand_eps/cand_pos in place (each sequence's group reads them first) */
    if (me > 0) {
        if (!(kn = bm_kernel(rt, "bm_bmojo_chunk_top"))) return BMOJO_EBUILD;
        i = 0;
        err |= BM_ARG(kn, i++, scratch);
        err |= BM_ARG(kn, i++, o_eps);
        err |= BM_ARG(kn, i++, o_te);
        err |= BM_ARG(kn, i++, o_tp);
        err |= BM_ARG(kn, i++, cT);
        err |= BM_ARG(kn, i++, cw);
        err |= BM_ARG(kn, i++, cme);
        err |= BM_ARG(kn, i++, cpos0);
        err |= BM_ARG(kn, i++, cNC);
        /* each candidate's compares split over nparts items, ~BM_BMOJO_RANK_KEYS each */
        const size_t seg = (size_t)(T < w ? T : w); /* longest segment */
        cl_int nparts = 1;
        while ((size_t)nparts < wg && (size_t)nparts * BM_BMOJO_RANK_KEYS < seg) nparts *= 2;
        err |= BM_ARG(kn, i++, nparts);
        if ((st = bm_args_check(err, "bm_bmojo_chunk_top"))) return st;
        /* groups no larger than a segment needs (short windows: a CPU runs every item of a group) */
        size_t lc = wg;
        while (lc / 2 >= (size_t)nparts && lc / 2 / (size_t)nparts >= seg) lc /= 2;
        const size_t per_group = lc / (size_t)nparts;
        size_t g[3] = {(seg + per_group - 1) / per_group * lc, (size_t)NC, (size_t)a->B}, l[3] = {lc, 1, 1};
        if ((st = bm_launch(rt, kn, "bm_bmojo_chunk_top", 3, g, l))) return st;

        if (!(kn = bm_kernel(rt, "bm_bmojo_merge"))) return BMOJO_EBUILD;
        i = 0;
        err |= BM_ARG(kn, i++, scratch);
        err |= BM_ARG(kn, i++, o_te);
        err |= BM_ARG(kn, i++, o_tp);
        err |= BM_ARG(kn, i++, a->cand_eps);
        err |= BM_ARG(kn, i++, a->cand_pos);
        err |= BM_ARG(kn, i++, o_sel);
        err |= BM_ARG(kn, i++, o_we);
        err |= BM_ARG(kn, i++, o_wp);
        err |= BM_ARG(kn, i++, o_ws);
        err |= BM_ARG(kn, i++, cT);
        err |= BM_ARG(kn, i++, cw);
        err |= BM_ARG(kn, i++, cme);
        err |= BM_ARG(kn, i++, cpos0);
        err |= BM_ARG(kn, i++, cNC);
        if ((st = bm_args_check(err, "bm_bmojo_merge"))) return st;
        size_t lm = 1; /* an item per list entry at most: the merge's steps are barriers of the whole group */
        while (lm < wg && lm < (size_t)me) lm *= 2;
        size_t g2[2] = {lm, (size_t)a->B}, l2[2] = {lm, 1};
        if ((st = bm_launch(rt, kn, "bm_bmojo_merge", 2, g2, l2))) return st;
    }

    /* 3. memory rows of every chunk of the call (reads the old fade/window rings and memory) */
    if (M > 0) {
        if (!(kn = bm_kernel(rt, "bm_bmojo_gather_mem"))) return BMOJO_EBUILD;
        i = 0;
        err |= BM_ARG(kn, i++, a->kf);
        err |= BM_ARG(kn, i++, a->vf);
        err |= BM_ARG(kn, i++, f_ld);
        err |= BM_ARG(kn, i++, kf_col);
        err |= BM_ARG(kn, i++, vf_col);
        err |= BM_ARG(kn, i++, a->kx);
        err |= BM_ARG(kn, i++, a->vx);
        err |= BM_ARG(kn, i++, x_ld);
        err |= BM_ARG(kn, i++, kx_col);
        err |= BM_ARG(kn, i++, vx_col);
        err |= BM_ARG(kn, i++, a->fade_k);
        err |= BM_ARG(kn, i++, a->fade_v);
        err |= BM_ARG(kn, i++, a->win_k);
        err |= BM_ARG(kn, i++, a->win_v);
        err |= BM_ARG(kn, i++, a->mem);
        err |= BM_ARG(kn, i++, smv);
        err |= BM_ARG(kn, i++, scratch);
        err |= BM_ARG(kn, i++, o_sel);
        err |= BM_ARG(kn, i++, o_mk);
        err |= BM_ARG(kn, i++, o_mv);
        err |= BM_ARG(kn, i++, cB);
        err |= BM_ARG(kn, i++, cT);
        err |= BM_ARG(kn, i++, cHkv);
        err |= BM_ARG(kn, i++, cdh);
        err |= BM_ARG(kn, i++, cw);
        err |= BM_ARG(kn, i++, cmf);
        err |= BM_ARG(kn, i++, cme);
        err |= BM_ARG(kn, i++, cpos0);
        err |= BM_ARG(kn, i++, cNC);
        const cl_int xper = cpu_form ? cdh : 1; /* columns per item (see the kernel): a row on CPUs */
        err |= BM_ARG(kn, i++, xper);
        if ((st = bm_args_check(err, "bm_bmojo_gather_mem"))) return st;
        size_t n = (size_t)a->B * NC * a->Hkv * (size_t)M * (size_t)((a->dh + xper - 1) / xper);
        if ((st = bmojo_launch1(rt, kn, "bm_bmojo_gather_mem", n))) return st;
    }

    /* 4. attention */
    if ((st = bmojo_attention(rt, a, scratch, o_mk, o_mv, NC, nsplit))) return st;
    if (a->train_sets) return bmojo_train_sets(rt, a, scratch, o_sel, NC); /* and no state */

    /* 5. state, one launch (bm_bmojo_state_save): the rings (after the attention and gather_mem
     *    read them), the frozen memory of the last chunk (gather_mem has read the old one) and
     *    the y history (the innovation has read it); with the CPU attention form a work-item per
     *    row (cl/bmojo_state_save_cpu.cl), else per element */
    const char *save_name = cpu_form ? "bm_bmojo_state_save_cpu" : "bm_bmojo_state_save";
    if (!(kn = bm_kernel(rt, save_name))) return BMOJO_EBUILD;
    i = 0;
    err |= BM_ARG(kn, i++, a->kx);
    err |= BM_ARG(kn, i++, a->vx);
    err |= BM_ARG(kn, i++, x_ld);
    err |= BM_ARG(kn, i++, kx_col);
    err |= BM_ARG(kn, i++, vx_col);
    err |= BM_ARG(kn, i++, a->kf);
    err |= BM_ARG(kn, i++, a->vf);
    err |= BM_ARG(kn, i++, f_ld);
    err |= BM_ARG(kn, i++, kf_col);
    err |= BM_ARG(kn, i++, vf_col);
    err |= BM_ARG(kn, i++, a->win_k);
    err |= BM_ARG(kn, i++, a->win_v);
    err |= BM_ARG(kn, i++, a->fade_k);
    err |= BM_ARG(kn, i++, a->fade_v);
    err |= BM_ARG(kn, i++, scratch);
    err |= BM_ARG(kn, i++, o_mk);
    err |= BM_ARG(kn, i++, o_mv);
    err |= BM_ARG(kn, i++, a->mem);
    err |= BM_ARG(kn, i++, smv);
    err |= BM_ARG(kn, i++, a->y);
    err |= BM_ARG(kn, i++, a->y_hist);
    err |= BM_ARG(kn, i++, cB);
    err |= BM_ARG(kn, i++, cT);
    err |= BM_ARG(kn, i++, cd);
    err |= BM_ARG(kn, i++, ck);
    err |= BM_ARG(kn, i++, cHkv);
    err |= BM_ARG(kn, i++, cdh);
    err |= BM_ARG(kn, i++, cw);
    err |= BM_ARG(kn, i++, cmf);
    err |= BM_ARG(kn, i++, cM);
    err |= BM_ARG(kn, i++, cpos0);
    err |= BM_ARG(kn, i++, cNC);
    if ((st = bm_args_check(err, save_name))) return st;
    const size_t kvrows = (size_t)a->B * a->Hkv * (size_t)((T < w ? T : w) + (T < mf ? T : mf) + M);
    if (cpu_form) {
        size_t g1 = kvrows + (size_t)a->B, l1 = 1;
        return bm_launch(rt, kn, save_name, 1, &g1, &l1);
    }
    return bmojo_launch1(rt, kn, save_name, kvrows * (size_t)a->dh + (size_t)a->B * a->d);
}
