/* bmojo_backward_cpu.cl — the CPU form of the B'MOJO attention backward's recompute path
 * (cl/bmojo_backward.cl: same contract, views, sets and scratch; read its top comment for the
 * layout). Launcher: src/ops/op_bmojo_backward.c (rt->bmojo_bwd_form: the CPU form on CPUs, or
 * forced; for head dims that are multiples of 16, at most 16 * BM_ATTC_MAXC; else, and on the
 * store path, the kernels of cl/bmojo_backward.cl). Order: bm_bmojo_bwd_dq_cpu (dq, lse, D), then
 * bm_bmojo_bwd_mem_cpu (the memory slots' sums, 16 slots per item: below), then
 * bm_bmojo_bwd_keys_cpu (dk, dv of every position).
 *
 * Query t of chunk c (start s = c*w) attends over [F(s) | E(s) | W(t)]: the fading rows s-nF ..
 * s-1 of Kf/Vf (nF = min(m_f, s)), the eidetic entries e < min(m_e, s) of the chunk's set, a key
 * iff 0 <= sets[e] < s (rows of Kx/Vx), and the window max(0, t-w+1) .. t of Kx/Vx; a position in
 * both E(s) and W(t) is two keys. With P = exp(scale q.k - lse), dP = dO.v, D = dO.O and
 * dS = P (dP - D): dq = scale sum dS k; a window key's dk = scale sum dS q, dv = sum P dO over the
 * rows that see it, plus the memory slots' sums (dmk, dmv of bm_bmojo_bwd_mem) of the slots that
 * hold it.
 *
 * Shape of the work, as cl/attention_backward_cpu.cl: one work-item (a CPU thread's job) per
 *  bm_bmojo_bwd_dq_cpu: BM_BBC_TQ consecutive queries of one query head and sequence, all inside
 *    one chunk (a chunk's queries are split into ceil(min(w, T) / TQ) blocks, the last one short
 *    where TQ does not divide w or T), so they share F(s) and E(s) and their rows stay in L1. Per
 *    query, q (times scale), dO and the dq accumulator as dh / 16 float16 chunks; pass 1 walks the
 *    key list in blocks of 16 with the forward's online softmax (bm_attc_block16; an eidetic
 *    entry without a key is a -inf score) for lse = m + log l; lse and D go to the scratch where
 *    the GPU kernels put them (bm_bmojo_bwd_mem and _keys_cpu read them). Pass 2: per block of
 *    16 keys, 16 scores and 16 dP, one vector exp for P, dS = P (dP - D), then dq += dS k key by
 *    key.
 *  bm_bmojo_bwd_keys_cpu: BM_BBC_TK consecutive positions of one kv head and sequence. Per
 *    position p, k (times scale), v and the dk, dv accumulators as chunks; the (query, head) rows
 *    that see p through their window (tokens p .. p+w-1, the rep heads of the kv head) in blocks
 *    of 16: scores, dP, lse and D, one vector exp, then dv += P dO and dk += dS q row by row. Then
 *    the gathers of bm_bmojo_bwd_keys_tiled, in its order: the eidetic slots holding p in the
 *    chunks after p's (ascending; the first entry equal to p), added to dk, dv of Kx/Vx; the
 *    fading slots p - c*w + m_f of the chunks c in (p/w, (p+m_f)/w] summed into dk, dv of Kf/Vf.
 * Every sum runs in a fixed order and no item writes what another writes: deterministic, no
 * atomics. No local memory, no barriers (local size 1).
 *
 * Why: the GPU form's tiled kernels (bm_bmojo_bwd_q_tiled, _keys_tiled) share local-memory tiles
 * between barriers, which POCL runs as loops over the work-items with the tiles in memory. Not
 * for GPUs (one item per block of queries or positions leaves a GPU idle).
 * Measured on POCL 3.1, 2 cores of an AMD EPYC, the branch point cccbc8c (GPU form's kernels)
 * against c118dbb (this form), runs interleaved base/new twice:
 *  - `bmojo bench --grad --config configs/mqar/bmojo-2l.yaml -p 256 -b 16 -r 2 --profile` (dh 16,
 *    w 8, m_f 4, m_e 8, 2 heads): q_tiled 39.8 / 36.4 -> dq_cpu 0.97 / 0.95 us/token, keys_tiled
 *    30.6 / 29.7 -> keys_cpu 0.73 / 0.76, the per-row mem 3.7 either way; the backward's kernel
 *    time 107.9 / 101.6 -> 37.6 / 37.7 us/token; 7,009 / 7,436 -> 14,125 / 14,464 tokens/s.
 *  - `bmojo bench --grad --config configs/bmojo-130m.yaml -p 2048 -b 1 -r 1 --profile` (once
 *    each): keys_tiled 13,979 -> keys_cpu 1,725 us/token, q_tiled 8,682 -> dq_cpu 1,650, mem
 *    1,346 / 1,228; backward 185.7 -> 136.8 s, 10.65 -> 14.28 tokens/s.
 * Tried: only this shape (cl/attention_backward_cpu.cl's, which works); TQ and TK not tuned: after
 * it dq_cpu + keys_cpu are 3.3 % (MQAR) and 12.9 % (130M) of the pass's kernel time, against
 * bm_scan_bwd_main's 52 and 62 %.
 *
 * Tunables: BM_BBC_TQ (8) queries per dq item, BM_BBC_TK (8) positions per dk/dv item (the
 * launcher reads both back from the build options). The float16 chunks of a head: BM_ATTC_MAXC of
 * cl/attention_cpu.cl, which comes first in the program, as do bm_attc_block16 and bm_hsum16. */
#ifndef BM_BBC_TQ
#define BM_BBC_TQ 8
#endif
#ifndef BM_BBC_TK
#define BM_BBC_TK 8
#endif

/* dot of nc float16 chunks held in a (private) with the row r (global) */
static inline float bm_bbc_dot(const float16 *a, __global const float *r, const int nc)
{
    float16 s = a[0] * vload16(0, r);
    for (int c = 1; c < nc; c++) s = fma(a[c], vload16(c, r), s);
    return bm_hsum16(s);
}

/* acc[c] += w * r (nc chunks of the global row r) */
static inline void bm_bbc_axpy(float16 *acc, const float w, __global const float *r, const int nc)
{
    for (int c = 0; c < nc; c++) acc[c] = fma((float16)(w), vload16(c, r), acc[c]);
}

/* acc[c] += r (nc chunks of the global row r) */
static inline void bm_bbc_add(float16 *acc, __global const float *r, const int nc)
{
    for (int c = 0; c < nc; c++) acc[c] += vload16(c, r);
}

/* Key i of a query's list [F(s) | E(s) | W from lo] (nF fading keys, nE eidetic entries of the
 * chunk's set): its position, -1 for an eidetic entry that holds no key; *fade: 1 for a row of
 * Kf/Vf, 0 for a row of Kx/Vx. */
static inline int bm_bbc_key_pos(const int i, const int s, const int nF, const int nE, const int lo,
                                 __global const int *set, int *fade)
{
    *fade = i < nF;
    if (i < nF) return s - nF + i;
    if (i < nF + nE) {
        const int p = set[i - nF];
        return p >= 0 && p < s ? p : -1;
    }
    return lo + (i - nF - nE);
}

/* Global (NC * tpc, H, B), local (1, 1, 1); tpc = ceil(min(w, T) / BM_BBC_TQ) blocks per chunk:
 * item (c*tpc + k, h, b) takes the queries c*w + k*TQ .. min(c*w + (k+1)*TQ, c*w + w, T) - 1. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_bmojo_bwd_dq_cpu(BM_BMOJO_BWD_VIEWS, __global float *dq, const ulong dq_ld, const ulong dq_col,
                    __global float *scr, const ulong lse_off, const ulong dd_off, __global const float *lse_in,
                    const int tpc)
{
    const int blk = (int)get_global_id(0), h = (int)get_global_id(1), b = (int)get_global_id(2);
    const int c = blk / tpc, s = c * w, t0 = s + (blk - c * tpc) * BM_BBC_TQ;
    const int tend = min(min(t0 + BM_BBC_TQ, s + w), T);
    const int g = h / (H / Hkv), nc = dh / 16;
    const int nF = min(m_f, s), nE = min(m_e, s);
    __global const int *set = sets + ((size_t)b * NC + c) * max(m_e, 1);
    const size_t bT = (size_t)b * T;
    __global const float *kxb = kx + kx_col + (size_t)g * dh, *vxb = vx + vx_col + (size_t)g * dh;
    __global const float *kfb = kf + kf_col + (size_t)g * dh, *vfb = vf + vf_col + (size_t)g * dh;
    float16 qv[BM_ATTC_MAXC], dov[BM_ATTC_MAXC], acc[BM_ATTC_MAXC];
    for (int t = t0; t < tend; t++) {
        const size_t row = bT + t;
        __global const float *qr = q + row * q_ld + q_col + (size_t)h * dh;
        __global const float *dor = dout + row * o_ld + (size_t)h * dh, *orow = o + row * o_ld + (size_t)h * dh;
        float16 dd = 0.0f;
        for (int x = 0; x < nc; x++) {
            qv[x] = vload16(x, qr) * scale;
            dov[x] = vload16(x, dor);
            dd = fma(dov[x], vload16(x, orow), dd);
            acc[x] = 0.0f;
        }
        const float D = bm_hsum16(dd);
        const int lo = max(0, t - w + 1), n = nF + nE + (t - lo + 1);
        /* pass 1: lse = m + log l over the key list (t's own key is in it: l > 0); given: the
         * forward's */
        float m = -INFINITY, l = 0.0f;
        for (int i0 = 0; i0 < n && !lse_in; i0 += 16) {
            const int nk = min(16, n - i0);
            float sa[16], pa[16];
            for (int j = 0; j < 16; j++) {
                int fade;
                const int p = j < nk ? bm_bbc_key_pos(i0 + j, s, nF, nE, lo, set, &fade) : -1;
                sa[j] = -INFINITY;
                if (p >= 0) sa[j] = bm_bbc_dot(qv, fade ? kfb + (bT + p) * f_ld : kxb + (bT + p) * x_ld, nc);
            }
            bm_attc_block16(vload16(0, sa), &m, &l, acc, 0, pa); /* no output chunks to rescale */
        }
        const float lse = lse_in ? lse_in[row * H + h] : m + log(l);
        /* pass 2: dS of 16 keys at a time, dq += dS k */
        for (int i0 = 0; i0 < n; i0 += 16) {
            const int nk = min(16, n - i0);
            float sa[16], dpa[16], dsa[16];
            __global const float *kr[16];
            for (int j = 0; j < 16; j++) {
                int fade;
                const int p = j < nk ? bm_bbc_key_pos(i0 + j, s, nF, nE, lo, set, &fade) : -1;
                sa[j] = -INFINITY;
                dpa[j] = 0.0f;
                kr[j] = 0;
                if (p >= 0) {
                    kr[j] = fade ? kfb + (bT + p) * f_ld : kxb + (bT + p) * x_ld;
                    sa[j] = bm_bbc_dot(qv, kr[j], nc);
                    dpa[j] = bm_bbc_dot(dov, fade ? vfb + (bT + p) * f_ld : vxb + (bT + p) * x_ld, nc);
                }
            }
            const float16 P = exp(vload16(0, sa) - lse); /* 0 where there is no key */
            vstore16(P * (vload16(0, dpa) - D), 0, dsa);
            for (int j = 0; j < nk; j++)
                if (kr[j]) bm_bbc_axpy(acc, dsa[j], kr[j], nc);
        }
        __global float *dqr = dq + row * dq_ld + dq_col + (size_t)h * dh;
        for (int x = 0; x < nc; x++) vstore16(acc[x] * scale, x, dqr);
        scr[lse_off + row * H + h] = lse;
        scr[dd_off + row * H + h] = D;
    }
}

/* Global (ceil(T / BM_BBC_TK), Hkv, B), local (1, 1, 1). Reads lse and D as bm_bmojo_bwd_dq_cpu
 * left them, the slot sums dmk, dmv as bm_bmojo_bwd_mem left them (not read when m_f + m_e is 0:
 * the launcher runs no mem then, and no chunk after p's has a slot). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_bmojo_bwd_keys_cpu(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off, const ulong dd_off,
                      const ulong dmk_off, const ulong dmv_off, __global float *dkx, __global float *dvx,
                      const ulong dx_ld, const ulong dkx_col, const ulong dvx_col, __global float *dkf,
                      __global float *dvf, const ulong df_ld, const ulong dkf_col, const ulong dvf_col)
{
    const int p0 = (int)get_global_id(0) * BM_BBC_TK, g = (int)get_global_id(1), b = (int)get_global_id(2);
    const int rep = H / Hkv, M = m_f + m_e, nc = dh / 16;
    const size_t bT = (size_t)b * T;
    __global const float *lse = scr + lse_off, *Dv = scr + dd_off;
    __global const float *dmk = scr + dmk_off, *dmv = scr + dmv_off;
    /* row u of the kv head's rows (token u / rep, query head g*rep + u % rep) */
    __global const float *qb = q + bT * q_ld + q_col + (size_t)g * rep * dh;
    __global const float *dob = dout + bT * o_ld + (size_t)g * rep * dh;
    float16 kv[BM_ATTC_MAXC], vv[BM_ATTC_MAXC], dka[BM_ATTC_MAXC], dva[BM_ATTC_MAXC];
    for (int p = p0; p < min(p0 + BM_BBC_TK, T); p++) {
        const size_t r = bT + p;
        __global const float *kr = kx + r * x_ld + kx_col + (size_t)g * dh;
        __global const float *vr = vx + r * x_ld + vx_col + (size_t)g * dh;
        for (int x = 0; x < nc; x++) {
            kv[x] = vload16(x, kr) * scale;
            vv[x] = vload16(x, vr);
            dka[x] = dva[x] = 0.0f;
        }
        /* the window: the rows of tokens p .. min(p+w, T)-1 */
        const int thi = min(T - 1, p + w - 1);
        const int u_lo = p * rep, u_hi = (thi + 1) * rep;
        for (int u0 = u_lo; u0 < u_hi; u0 += 16) {
            const int nu = min(16, u_hi - u0);
            float sa[16], dpa[16], la[16], da[16], pa[16], dsa[16];
            for (int i = 0; i < 16; i++) {
                sa[i] = -INFINITY;
                dpa[i] = la[i] = da[i] = 0.0f;
                if (i < nu) {
                    const int u = u0 + i, t = u / rep, jh = u - t * rep;
                    const size_t ri = (bT + t) * H + (size_t)(g * rep + jh);
                    sa[i] = bm_bbc_dot(kv, qb + (size_t)t * q_ld + (size_t)jh * dh, nc);
                    dpa[i] = bm_bbc_dot(vv, dob + (size_t)t * o_ld + (size_t)jh * dh, nc);
                    la[i] = lse[ri];
                    da[i] = Dv[ri];
                }
            }
            const float16 P = exp(vload16(0, sa) - vload16(0, la)); /* 0 past the rows */
            vstore16(P, 0, pa);
            vstore16(P * (vload16(0, dpa) - vload16(0, da)), 0, dsa);
            for (int i = 0; i < nu; i++) {
                const int u = u0 + i, t = u / rep, jh = u - t * rep;
                bm_bbc_axpy(dva, pa[i], dob + (size_t)t * o_ld + (size_t)jh * dh, nc);
                bm_bbc_axpy(dka, dsa[i], qb + (size_t)t * q_ld + (size_t)jh * dh, nc);
            }
        }
        for (int x = 0; x < nc; x++) dka[x] *= scale;
        /* the eidetic slots that hold p: the chunks after p's, ascending, the first entry equal to p */
        for (int c = p / w + 1; c < NC && m_e > 0; c++) {
            __global const int *set = sets + ((size_t)b * NC + c) * m_e;
            const int ne = min(m_e, c * w);
            int hit = -1;
            for (int e = 0; e < ne && hit < 0; e++)
                if (set[e] == p) hit = e;
            if (hit < 0) continue;
            const size_t o = ((((size_t)b * NC + c) * Hkv + g) * M + m_f + hit) * dh;
            bm_bbc_add(dka, dmk + o, nc);
            bm_bbc_add(dva, dmv + o, nc);
        }
        __global float *dkr = dkx + r * dx_ld + dkx_col + (size_t)g * dh;
        __global float *dvr = dvx + r * dx_ld + dvx_col + (size_t)g * dh;
        for (int x = 0; x < nc; x++) {
            vstore16(dka[x], x, dkr);
            vstore16(dva[x], x, dvr);
        }
        /* the fading slots p - c*w + m_f of the chunks c*w in (p, p + m_f] */
        const int c1 = min((p + m_f) / w, NC - 1);
        for (int x = 0; x < nc; x++) dka[x] = dva[x] = 0.0f;
        for (int c = p / w + 1; c <= c1; c++) {
            const size_t o = ((((size_t)b * NC + c) * Hkv + g) * M + (p - c * w + m_f)) * dh;
            bm_bbc_add(dka, dmk + o, nc);
            bm_bbc_add(dva, dmv + o, nc);
        }
        __global float *dkfr = dkf + r * df_ld + dkf_col + (size_t)g * dh;
        __global float *dvfr = dvf + r * df_ld + dvf_col + (size_t)g * dh;
        for (int x = 0; x < nc; x++) {
            vstore16(dka[x], x, dkfr);
            vstore16(dva[x], x, dvfr);
        }
    }
}

/* bm_bmojo_bwd_mem's sums (dmk = scale sum dS q, dmv = sum P dO over a chunk's (query, rep head)
 * uses of each memory slot, zero rows for slots without a key) for CPU devices: one work-item per
 * (16 slots, kv head, chunk, sequence). The 16 slots are the lanes: their K and V rows are held
 * transposed (kt[d], vt[d]: dimension d of the 16 slots), so per use the 16 scores and 16 dP are
 * dh vector FMAs each with q's and dO's elements broadcast, one vector exp gives P, and the
 * accumulators (ak[d], av[d], transposed too) take dS q and P dO by another 2 dh vector FMAs: no
 * horizontal sums. Uses in bm_bmojo_bwd_mem's order (query, then head). The per-slot GPU-form
 * kernel, run by POCL, walked a work-group of L uses per slot between barriers. Measured (POCL, 2
 * cores of an AMD EPYC, 5010922 and this kernel in turn; docs/performance.md): bmojo-2l MQAR 4.6-5.2
 * -> 0.27-0.45 us/token (four rounds), bmojo-130m T 2048 1,158 -> 208 (once). Slots without a key
 * get zero rows, as the GPU kernels give them; no kernel reads those rows (the tests cannot see
 * them). Global (NC * Hkv * ceil(M / 16), B). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_bmojo_bwd_mem_cpu(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off, const ulong dd_off,
                     const ulong dmk_off, const ulong dmv_off)
{
    const int M = m_f + m_e, rep = H / Hkv, nsb = (M + 15) / 16;
    const int it = (int)get_global_id(0), b = (int)get_global_id(1);
    const int sb = it % nsb, g = (it / nsb) % Hkv, c = it / (nsb * Hkv), s = c * w;
    const int j0 = sb * 16, nj = min(16, M - j0);
    __global const float *lse = scr + lse_off, *Dv = scr + dd_off;
    /* the slots' rows, transposed: kt[d] lane jj = K[slot j0 + jj][d] (zero without a key) */
    float16 kt[16 * BM_ATTC_MAXC], vt[16 * BM_ATTC_MAXC], ak[16 * BM_ATTC_MAXC], av[16 * BM_ATTC_MAXC];
    int valid[16];
    float kr[16], vr[16];
    for (int d = 0; d < dh; d++) ak[d] = av[d] = 0.0f;
    for (int d0 = 0; d0 < dh; d0 += 16) {
        float tk[16][16], tv[16][16];
        for (int jj = 0; jj < 16; jj++) {
            const int j = j0 + jj;
            int p = -1, fade = j < m_f;
            if (jj < nj) {
                if (fade) p = s - m_f + j;
                else if (j - m_f < min(m_e, s)) {
                    p = sets[((size_t)b * NC + c) * m_e + (j - m_f)];
                    if (p >= s) p = -1;
                }
            }
            valid[jj] = p >= 0;
            for (int x = 0; x < 16; x++) tk[jj][x] = tv[jj][x] = 0.0f;
            if (p >= 0) {
                const size_t r = (size_t)b * T + p;
                __global const float *krow = (fade ? kf + r * f_ld + kf_col : kx + r * x_ld + kx_col) + (size_t)g * dh;
                __global const float *vrow = (fade ? vf + r * f_ld + vf_col : vx + r * x_ld + vx_col) + (size_t)g * dh;
                for (int x = 0; x < 16; x++) tk[jj][x] = krow[d0 + x], tv[jj][x] = vrow[d0 + x];
            }
        }
        for (int x = 0; x < 16; x++) {
            for (int jj = 0; jj < 16; jj++) kr[jj] = tk[jj][x], vr[jj] = tv[jj][x];
            kt[d0 + x] = vload16(0, kr);
            vt[d0 + x] = vload16(0, vr);
        }
    }
    const int nt = min(s + w, T) - s;
    for (int u = 0; u < nt * rep; u++) {
        const size_t row = (size_t)b * T + s + u / rep;
        const int h = g * rep + u % rep;
        const size_t ri = row * H + h;
        __global const float *qr = q + row * q_ld + q_col + (size_t)h * dh, *orow = dout + row * o_ld + (size_t)h * dh;
        float16 sc = 0.0f, dp = 0.0f;
        for (int d = 0; d < dh; d++) {
            sc = fma((float16)qr[d], kt[d], sc);
            dp = fma((float16)orow[d], vt[d], dp);
        }
        const float16 P = exp(scale * sc - lse[ri]);
        const float16 dS = P * (dp - Dv[ri]);
        for (int d = 0; d < dh; d++) {
            ak[d] = fma(dS, (float16)qr[d], ak[d]);
            av[d] = fma(P, (float16)orow[d], av[d]);
        }
    }
    for (int d = 0; d < dh; d++) {
        vstore16(ak[d], 0, kr);
        vstore16(av[d], 0, vr);
        for (int jj = 0; jj < nj; jj++) {
            const size_t out = ((((size_t)b * NC + c) * Hkv + g) * M + j0 + jj) * dh + d;
            scr[dmk_off + out] = valid[jj] ? scale * kr[jj] : 0.0f;
            scr[dmv_off + out] = valid[jj] ? vr[jj] : 0.0f;
        }
    }
}
