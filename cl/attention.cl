/* attention.cl — causal (full or sliding-window) GQA attention of T new queries per sequence,
 * continuing from a ring K/V cache, flash-attention style (online softmax, no T x T scores).
 *
 * Layout (row-major fp32; see bm_attn_args in src/ops.h):
 *   q      [B*T, q_ld]   query head h of token t of sequence b at (b*T+t)*q_ld + q_col + h*dh
 *   k, v   [B*T, kv_ld]  kv head g at k_col + g*dh / v_col + g*dh (new tokens)
 *   kc, vc [B, Hkv, cap, dh]  position p < pos0 in slot p % cap
 *   out    [B*T, out_ld] head h at columns h*dh
 * Token t has absolute position pos0 + t; it sees keys max(0, pos - window + 1) .. pos
 * (window 0: all of 0 .. pos); query head h reads kv head h / (H / Hkv).
 *
 * Work decomposition: one work-group per (b, kv head g, tile of BR "rows"), where the rows of
 * (b, g) are the G = H/Hkv query heads of the group times the T tokens, ordered token-major
 * (row = t*G + j, query head g*G + j). A key/value tile is therefore loaded into local memory
 * once and serves all G query heads of the group (GQA sharing), and the rows of a tile have
 * consecutive positions, so the key range of a tile is [max(0, first_pos - window + 1),
 * last_pos]: keys outside it are never visited (a small window costs O(window) per tile, not
 * O(pos)). Per key tile of BK keys:
 *   1. K, V tile -> local (from the cache for p < pos0, from k/v otherwise; zeros past the range)
 *   2. S = Q K^T for BR x BK (Q pre-scaled, held in local for the whole work-group), masked
 *   3. per row: running max m, rescale factor alpha, running sum l, S := exp(S - m)
 *   4. O = alpha * O + S V, O in private accumulators: work-item i owns the elements
 *      e = i + k*L (k < BM_ATT_ACC) of the BR x dh output tile, so dh is a runtime argument
 *      (any dh with BR*dh <= BM_ATT_ACC*L works; the launcher picks BR) with no rebuild per model.
 * BR, BK and the work-group size L are runtime arguments chosen by the launcher
 * (src/ops/op_attention.c) to fit the device's local memory; local arrays are kernel arguments.
 * Q and K rows in local memory are padded to dh+1 floats so that the QK^T phase (work-items
 * walking different key rows) does not hit one bank.
 * Masked scores are -INFINITY; a row with no visible key in a tile yet keeps m = -INF and gets
 * alpha = 1, p = 0 (explicit checks avoid exp(-inf - -inf) = NaN). Every real query sees at
 * least itself, so l > 0 at the end.
 *
 * Split over keys (decoding): with few work-groups (T = 1 gives only B*Hkv of them) and a long
 * key range, the launcher splits each tile's key range into nsplit parts (3rd NDRange
 * dimension); each writes its unnormalized O and (m, l) per row to a scratch buffer `part`, and
 * bm_attn_combine merges them. On an H200 (NVIDIA OpenCL), decoding one token over 4096 cached
 * positions (32/8 heads, dh 128) took 2.9 ms unsplit (8 work-groups on 132 SMs), 0.12 ms with
 * the automatic split; over 32768 positions 26.5 ms -> 1.0 ms.
 *
 * Considered: one work-group per (b, query head) (simpler, but K/V loaded G times with GQA);
 * one work-item per query with the whole dh in private memory (needs dh at compile time and
 * spills at dh=128). Softmax statistics are computed by one work-item per row (BK serial
 * steps) — cheap next to the QK^T and PV phases. Prefill measured on an H200 (fp32, 32/8 heads,
 * dh 128, T 4096, full causal): 34 ms, ~4 TFLOP/s.
 *
 * Two kernels share this layout, rows and key ranges (the launcher picks one per call):
 *  - bm_attn_fwd (above description): per-element loops through local memory, any dh, small
 *    row tiles; kept for decoding (T = 1: G rows per kv head, with the key split) and as the
 *    fallback for dh > 128 or devices whose local memory does not fit the tiled kernel.
 *  - bm_attn_tiled2 / bm_attn_tiled4 (prefill, >= 16 rows per kv head): register tiles, see
 *    "Register-tiled prefill kernels" below.
 * Prefill measurements, H200 (NVIDIA OpenCL, fp32), `bmojo bench --ops`: T 2048, window 512,
 * 12/4 heads of 64, B 1 (2.8 GFLOP useful):
 *   bm_attn_fwd (32 rows x 32 keys, 128 work-items)              1017.5 us   2.8 TFLOP/s
 *   tiled, 4 rows x 4 keys per item, 128 items, 64 rows x 32 keys  206.6 us  13.6 TFLOP/s (4.9x)
 *   tiled, 2 rows x 4 keys per item, 256 items (more warps)        320.9 us
 *   tiled, 4 x 4 per item, 32 rows per work-group (2x the groups)  259.7 us
 *   tiled 4 x 4, plus the next K/V tile prefetched into registers  283.3 us (register
 *     pressure: +32 registers on ~170, spills; global latency was not the limit)
 * Decoding (T 1 @ 4096, window 512) is unchanged: 44.5 us. POCL (2-core CPU, T 256): the tiled
 * kernel is also faster there (24 % -> 58-65 % of the CPU's SGEMM rate, noisy machine).
 * What limits the tiled kernel now: local-memory load bandwidth (~224 float4 loads per 2048
 * FMAs per work-item and key tile) and the 4 barriers per 32-key tile; larger register tiles
 * need more than the 48 KiB of local memory NVIDIA's OpenCL gives a work-group.
 */
#ifndef BM_ATT_ACC
#define BM_ATT_ACC 32     /* private output accumulators per work-item (launcher mirrors it) */
#endif

/* The keys a query tile sees, [max(0, first - window + 1), last] (window 0: from 0), cut into
 * nsplit parts of whole BK-key tiles; this split's part is [*lo, *hi] (empty when *lo > *hi). */
static inline void bm_attn_split_range(long pos_first, long pos_last, int window, int nsplit, int split, int BK,
                                       long *lo, long *hi)
{
    const long t_lo = window > 0 ? max(0L, pos_first - window + 1) : 0L;
    const long per = ((pos_last - t_lo + nsplit) / nsplit + BK - 1) / BK * BK;
    *lo = t_lo + split * per;
    *hi = min(pos_last, *lo + per - 1);
}

__kernel void bm_attn_fwd(const int T, const int H, const int Hkv, const int dh,
                          __global const float *q, const long q_ld, const long q_col,
                          __global const float *k, __global const float *v, const long kv_ld,
                          const long k_col, const long v_col,
                          __global const float *kc, __global const float *vc, const int cap,
                          const long pos0, const int window, const float scale,
                          __global float *out, const long out_ld,
                          const int BR, const int BK, const int nsplit, __global float *part,
                          __local float *qs, __local float *ks, __local float *vs,
                          __local float *ss, __local float *stat)
{
    const int lid = (int)get_local_id(0);
    const int L = (int)get_local_size(0);
    const int tile = (int)get_group_id(0);
    const int bg = (int)get_group_id(1);
    const int split = (int)get_group_id(2);
    const int b = bg / Hkv, g = bg % Hkv;
    const int G = H / Hkv;
    const int nrows = G * T;
    const int r0 = tile * BR;
    const int rend = min(r0 + BR, nrows);
    const int ldp = dh + 1;
    __local float *m_run = stat, *l_run = stat + BR, *alpha = stat + 2 * BR;

    /* key range of this tile, then this split's part of it (whole tiles of BK keys) */
    const long pos_first = pos0 + r0 / G, pos_last = pos0 + (rend - 1) / G;
    long lo, hi; /* lo > hi: an empty split */
    bm_attn_split_range(pos_first, pos_last, window, nsplit, split, BK, &lo, &hi);

    /* Q tile (pre-scaled) */
    for (int e = lid; e < BR * dh; e += L) {
        const int r = e / dh, d = e - r * dh;
        const int row = r0 + r;
        float val = 0.0f;
        if (row < nrows) {
            const int t = row / G, h = g * G + (row - t * G);
            val = scale * q[(long)(b * T + t) * q_ld + q_col + (long)h * dh + d];
        }
        qs[r * ldp + d] = val;
    }
    for (int r = lid; r < BR; r += L) {
        m_run[r] = -INFINITY;
        l_run[r] = 0.0f;
    }

    const int n_acc = (BR * dh + L - 1) / L;
    float acc[BM_ATT_ACC];
    for (int i = 0; i < BM_ATT_ACC; i++) acc[i] = 0.0f;

    const long cache_base = (long)(b * Hkv + g) * cap * dh;
    for (long kb = lo; kb <= hi; kb += BK) {
        const int nk = (int)min((long)BK, hi - kb + 1);
        barrier(CLK_LOCAL_MEM_FENCE); /* previous tile's ks/vs/ss are no longer read */
        for (int e = lid; e < BK * dh; e += L) {
            const int c = e / dh, d = e - c * dh;
            const long p = kb + c;
            float kval = 0.0f, vval = 0.0f;
            if (c < nk) {
                if (p < pos0) {
                    const long off = cache_base + (p % cap) * dh + d;
                    kval = kc[off];
                    vval = vc[off];
                } else {
                    const long row = (long)b * T + (p - pos0);
                    kval = k[row * kv_ld + k_col + (long)g * dh + d];
                    vval = v[row * kv_ld + v_col + (long)g * dh + d];
                }
            }
            ks[c * ldp + d] = kval;
            vs[c * dh + d] = vval;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < BR * BK; e += L) {
            const int r = e / BK, c = e - r * BK;
            const int row = r0 + r;
            const long p = kb + c;
            const long qp = pos0 + row / G;
            float s = -INFINITY;
            if (row < nrows && c < nk && p <= qp && (window == 0 || p > qp - window)) {
                __local const float *qr = qs + r * ldp;
                __local const float *kr = ks + c * ldp;
                float dot = 0.0f;
                for (int d = 0; d < dh; d++) dot += qr[d] * kr[d];
                s = dot;
            }
            ss[e] = s;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = lid; r < BR; r += L) {
            __local float *sr = ss + r * BK;
            const float m_old = m_run[r];
            float m_new = m_old;
            for (int c = 0; c < nk; c++) m_new = fmax(m_new, sr[c]);
            float a = 1.0f, sum = 0.0f;
            if (m_new == -INFINITY) {
                for (int c = 0; c < BK; c++) sr[c] = 0.0f;
            } else {
                a = exp(m_old - m_new); /* exp(-inf) = 0 when m_old is still -inf */
                for (int c = 0; c < BK; c++) {
                    const float pc = c < nk ? exp(sr[c] - m_new) : 0.0f;
                    sr[c] = pc;
                    sum += pc;
                }
            }
            m_run[r] = m_new;
            l_run[r] = l_run[r] * a + sum;
            alpha[r] = a;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < BM_ATT_ACC; i++) {
            const int e = lid + i * L;
            if (i < n_acc && e < BR * dh) {
                const int r = e / dh, d = e - r * dh;
                __local const float *pr = ss + r * BK;
                float o = acc[i] * alpha[r];
                for (int c = 0; c < nk; c++) o += pr[c] * vs[c * dh + d];
                acc[i] = o;
            }
        }
    }

    barrier(CLK_LOCAL_MEM_FENCE); /* row statistics final (also when the loop was empty) */
    if (nsplit > 1) {
        /* partial results for bm_attn_combine: unnormalized O, then (m, l) per row */
        const long prow = ((long)split * (long)get_num_groups(1) + bg) * nrows + r0;
        for (int i = 0; i < BM_ATT_ACC; i++) {
            const int e = lid + i * L;
            if (i < n_acc && e < BR * dh && r0 + e / dh < nrows) part[prow * dh + e] = acc[i];
        }
        __global float *pstat = part + (long)nsplit * (long)get_num_groups(1) * nrows * dh;
        for (int r = lid; r < BR && r0 + r < nrows; r += L) {
            pstat[(prow + r) * 2] = m_run[r];
            pstat[(prow + r) * 2 + 1] = l_run[r];
        }
        return;
    }
    for (int i = 0; i < BM_ATT_ACC; i++) {
        const int e = lid + i * L;
        if (i < n_acc && e < BR * dh) {
            const int r = e / dh, d = e - r * dh;
            const int row = r0 + r;
            if (row < nrows) {
                const int t = row / G, h = g * G + (row - t * G);
                out[(long)(b * T + t) * out_ld + (long)h * dh + d] = acc[i] / l_run[r];
            }
        }
    }
}

/* ---- Register-tiled prefill kernels (bm_attn_tiled2 / bm_attn_tiled4) and their shared phases,
 * also used by bm_bmojo_attn_tiled* (cl/bmojo_attention.cl comes later in the program). ----
 * Work-group: L = NX * NY work-items seen as an NY x NX grid (ty = lid / NX, tx = lid % NX).
 * Work-item (ty, tx) owns query rows r_i = ty + NY*i (i < TR) of the BR = TR*NY rows, the score
 * columns c_j = tx + NX*j (j < TC) of a key tile of BK = TC*NX keys, and the float4 columns
 * q_jj = tx + NX*jj (jj < ND) of the O accumulator of its rows, all in registers. Local memory
 * (floats; dq = dh rounded up to 4): Q [BR][dq] pre-scaled, K [BK][ldk] (ldk = dq+4 or dq:
 * an odd number of float4s, so that the 8 work-items of a quarter-warp reading 8 different K
 * rows as float4 hit 8 different bank groups), P [BR][BK+8] aliasing the K tile once scores
 * are done, V [BK][dq], red [BR][NX] for the row-maximum and row-sum exchange. Per key tile:
 * load K, V | S = Q K^T (float4 local loads: TR + TC of them per TR*TC*4 FMAs) and mask |
 * partial row maxima -> red | row max from NX partials, P = exp(S - m), each work-item keeps
 * its own partial row sum (same m for the whole row, so partial sums are reduced only once at
 * the end), O *= alpha | O += P V (TR + 4*ND float4 loads per 16*TR*ND FMAs): 4 barriers.
 * Bank use (32 banks, float4 loads served 8 work-items at a time): Q and P reads are
 * broadcasts within a row of the grid, K rows read by 8 work-items start 4 banks apart
 * (odd float4 stride), V reads and P/red writes are consecutive. dh is a runtime argument;
 * the two variants differ in TC/ND only (dh <= 64: 4 keys x 2 float4 columns, BK 32; dh <= 128:
 * 2 keys x 4 float4 columns, BK 16 so that 32 rows of Q still fit 48 KiB). Loops over TC/ND run
 * to compile-time maxima with a guard, and the helpers are always inlined: otherwise clang
 * keeps the register arrays on the stack (checked with clang -> PTX -> ptxas -v for sm_90). */
#ifndef BM_ATT_TR
#define BM_ATT_TR 4       /* query rows per work-item (launcher mirrors it) */
#endif
#define BM_ATT_NX 8       /* work-items across a key tile and across the head dimension */
#define BM_ATT_TCMAX 4    /* key columns per work-item: 4 (dh <= 64) or 2 (dh <= 128) */
#define BM_ATT_NDMAX 4    /* float4 output columns per work-item: 2 or 4 */
/* The register arrays passed to these helpers stay in registers only once inlined with
 * constant TC/ND (compilers otherwise keep big bodies out of line, arrays on the stack). */
#define BM_ATT_INLINE inline __attribute__((always_inline))

/* S[i][j] = Q[r_i] . K[c_j] over dq4 float4s. */
static BM_ATT_INLINE void bm_attn_t_scores(__local const float4 *qs4, __local const float4 *ks4, const int dq4,
                                    const int ldk4, const int ty, const int tx, const int NY, const int TC,
                                    float s[BM_ATT_TR][BM_ATT_TCMAX])
{
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++)
        #pragma unroll
        for (int j = 0; j < BM_ATT_TCMAX; j++) if (j < TC) s[i][j] = 0.0f;
    for (int d4 = 0; d4 < dq4; d4++) {
        float4 qv[BM_ATT_TR], kv[BM_ATT_TCMAX];
        #pragma unroll
        for (int i = 0; i < BM_ATT_TR; i++) qv[i] = qs4[(ty + NY * i) * dq4 + d4];
        #pragma unroll
        for (int j = 0; j < BM_ATT_TCMAX; j++) if (j < TC) kv[j] = ks4[(tx + BM_ATT_NX * j) * ldk4 + d4];
        #pragma unroll
        for (int i = 0; i < BM_ATT_TR; i++)
            #pragma unroll
            for (int j = 0; j < BM_ATT_TCMAX; j++) if (j < TC) {
                float a = s[i][j];
                a += qv[i].x * kv[j].x;
                a += qv[i].y * kv[j].y;
                a += qv[i].z * kv[j].z;
                a += qv[i].w * kv[j].w;
                s[i][j] = a;
            }
    }
}

/* Online-softmax update with the masked scores s (-INFINITY = masked) of one key tile, then
 * O += P V. m_run is the row's running maximum (identical in the NX work-items of a row),
 * l_run this work-item's partial running sum. Rows whose keys are all masked so far keep
 * m = -inf, alpha = 1 and p = 0 (no exp(-inf - -inf) = NaN). pl aliases the K tile: every
 * work-item has finished its scores when it passes the first barrier. */
static BM_ATT_INLINE void bm_attn_t_update(float s[BM_ATT_TR][BM_ATT_TCMAX], float m_run[BM_ATT_TR],
                                    float l_run[BM_ATT_TR], float4 acc[BM_ATT_TR][BM_ATT_NDMAX], const int ND,
                                    const int TC, __local float *red, __local float *pl,
                                    __local const float4 *vs4, const int dq4, const int ty, const int tx,
                                    const int NY)
{
    const int pld = TC * BM_ATT_NX + 8;
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) {
        float mx = s[i][0];
        #pragma unroll
        for (int j = 1; j < BM_ATT_TCMAX; j++) if (j < TC) mx = fmax(mx, s[i][j]);
        red[(ty + NY * i) * BM_ATT_NX + tx] = mx;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) {
        const int r = ty + NY * i;
        float mt = red[r * BM_ATT_NX];
        #pragma unroll
        for (int x = 1; x < BM_ATT_NX; x++) mt = fmax(mt, red[r * BM_ATT_NX + x]);
        const float m_old = m_run[i], m_new = fmax(m_old, mt);
        const float alpha = m_new == m_old ? 1.0f : exp(m_old - m_new);
        float sum = 0.0f;
        #pragma unroll
        for (int j = 0; j < BM_ATT_TCMAX; j++) if (j < TC) {
            const float p = s[i][j] == -INFINITY ? 0.0f : exp(s[i][j] - m_new);
            pl[r * pld + tx + BM_ATT_NX * j] = p;
            sum += p;
        }
        l_run[i] = l_run[i] * alpha + sum;
        m_run[i] = m_new;
        #pragma unroll
        for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND) acc[i][jj] *= alpha;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    __local const float4 *pl4 = (__local const float4 *)pl;
    const int pld4 = pld / 4;
    for (int c4 = 0; c4 < TC * BM_ATT_NX / 4; c4++) {
        float4 pv[BM_ATT_TR];
        #pragma unroll
        for (int i = 0; i < BM_ATT_TR; i++) pv[i] = pl4[(ty + NY * i) * pld4 + c4];
        #pragma unroll
        for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND) {
            /* columns past dh (small dh) read a valid column; their sums are never stored */
            const int qc = min(tx + BM_ATT_NX * jj, dq4 - 1);
            const float4 v0 = vs4[(4 * c4) * dq4 + qc], v1 = vs4[(4 * c4 + 1) * dq4 + qc];
            const float4 v2 = vs4[(4 * c4 + 2) * dq4 + qc], v3 = vs4[(4 * c4 + 3) * dq4 + qc];
            #pragma unroll
            for (int i = 0; i < BM_ATT_TR; i++) {
                float4 o = acc[i][jj];
                o += pv[i].x * v0;
                o += pv[i].y * v1;
                o += pv[i].z * v2;
                o += pv[i].w * v3;
                acc[i][jj] = o;
            }
        }
    }
}

/* Turns each work-item's partial row sums into the full row sums (same order in every
 * work-item of a row, so all agree bit for bit). The last reads of red happened before the
 * last update's second barrier. */
static BM_ATT_INLINE void bm_attn_t_rowsum(float l_run[BM_ATT_TR], __local float *red, const int ty, const int tx,
                                    const int NY)
{
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) red[(ty + NY * i) * BM_ATT_NX + tx] = l_run[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) {
        const int r = ty + NY * i;
        float l = 0.0f;
        #pragma unroll
        for (int x = 0; x < BM_ATT_NX; x++) l += red[r * BM_ATT_NX + x];
        l_run[i] = l;
    }
}

/* Body of bm_attn_tiled<ND>: rows, key ranges, splits and the output as in bm_attn_fwd. */
static BM_ATT_INLINE void bm_attn_tiled_body(const int ND, const int TC, const int T, const int H, const int Hkv,
                                      const int dh, __global const float *q, const long q_ld, const long q_col,
                                      __global const float *k, __global const float *v, const long kv_ld,
                                      const long k_col, const long v_col, __global const float *kc,
                                      __global const float *vc, const int cap, const long pos0,
                                      const int window, const float scale, __global float *out,
                                      const long out_ld, const int nsplit, __global float *part,
                                      __local float4 *qs4, __local float4 *kp4, __local float4 *vs4,
                                      __local float *red)
{
    const int lid = (int)get_local_id(0);
    const int L = (int)get_local_size(0);
    const int NY = L / BM_ATT_NX, ty = lid / BM_ATT_NX, tx = lid - ty * BM_ATT_NX;
    const int BR = BM_ATT_TR * NY, BK = TC * BM_ATT_NX;
    const int tile = (int)get_group_id(0);
    const int bg = (int)get_group_id(1);
    const int split = (int)get_group_id(2);
    const int b = bg / Hkv, g = bg % Hkv;
    const int G = H / Hkv;
    const int nrows = G * T;
    const int r0 = tile * BR;
    const int rend = min(r0 + BR, nrows);
    const int dq = (dh + 3) & ~3, dq4 = dq / 4, ldk4 = dq4 | 1, ldk = 4 * ldk4;
    __local float *qs = (__local float *)qs4, *ks = (__local float *)kp4, *vs = (__local float *)vs4;

    const long pos_first = pos0 + r0 / G, pos_last = pos0 + (rend - 1) / G;
    long lo, hi; /* lo > hi: an empty split */
    bm_attn_split_range(pos_first, pos_last, window, nsplit, split, BK, &lo, &hi);

    for (int e = lid; e < BR * dq; e += L) {
        const int r = e / dq, d = e - r * dq;
        const int row = r0 + r;
        float val = 0.0f;
        if (row < nrows && d < dh) {
            const int t = row / G, h = g * G + (row - t * G);
            val = scale * q[(long)(b * T + t) * q_ld + q_col + (long)h * dh + d];
        }
        qs[e] = val;
    }

    /* this work-item's rows: position, and the key bound below which its window ends */
    int qp[BM_ATT_TR], qlo[BM_ATT_TR]; /* relative to pos0 (32-bit compares in the key loop) */
    float m_run[BM_ATT_TR], l_run[BM_ATT_TR];
    float4 acc[BM_ATT_TR][BM_ATT_NDMAX];
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) {
        const int row = r0 + ty + NY * i;
        qp[i] = row < nrows ? row / G : INT_MIN; /* an unused row sees no key */
        qlo[i] = row < nrows && window > 0 ? qp[i] - window : INT_MIN;
        m_run[i] = -INFINITY;
        l_run[i] = 0.0f;
        #pragma unroll
        for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND) acc[i][jj] = (float4)(0.0f);
    }

    /* K/V tile loading: element (c, d) of the [BK][dq] tile, walked in steps of L without
     * divisions; a cached position p (pos0 - cap <= p < pos0) is in slot p % cap = (p - pos0
     * + cap + pos0 % cap) mod cap */
    const int ldiv = L / dq, lmod = L - ldiv * dq, c_init = lid / dq, d_init = lid - c_init * dq;
    const long s0 = cap > 0 ? pos0 % cap : 0;
    const long cache_base = (long)(b * Hkv + g) * cap * dh;
    float s[BM_ATT_TR][BM_ATT_TCMAX];
    for (long kb = lo; kb <= hi; kb += BK) {
        const int nk = (int)min((long)BK, hi - kb + 1);
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile's P and V are no longer read */
        for (int c = c_init, d = d_init; c < BK;) {
            float kval = 0.0f, vval = 0.0f;
            if (c < nk && d < dh) {
                const long p = kb + c;
                if (p < pos0) {
                    long slot = p - pos0 + cap + s0;
                    if (slot >= cap) slot -= cap;
                    const long off = cache_base + slot * dh + d;
                    kval = kc[off];
                    vval = vc[off];
                } else {
                    const long row = (long)b * T + (p - pos0);
                    kval = k[row * kv_ld + k_col + (long)g * dh + d];
                    vval = v[row * kv_ld + v_col + (long)g * dh + d];
                }
            }
            ks[c * ldk + d] = kval;
            vs[c * dq + d] = vval;
            d += lmod;
            c += ldiv;
            if (d >= dq) {
                d -= dq;
                c++;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        bm_attn_t_scores(qs4, kp4, dq4, ldk4, ty, tx, NY, TC, s);
        const int kr = (int)(kb - pos0); /* key position relative to pos0 (>= -cap) */
        #pragma unroll
        for (int j = 0; j < BM_ATT_TCMAX; j++) if (j < TC) {
            const int c = tx + BM_ATT_NX * j, p = kr + c;
            #pragma unroll
            for (int i = 0; i < BM_ATT_TR; i++)
                if (!(c < nk && p <= qp[i] && p > qlo[i])) s[i][j] = -INFINITY;
        }
        bm_attn_t_update(s, m_run, l_run, acc, ND, TC, red, ks, vs4, dq4, ty, tx, NY);
    }
    bm_attn_t_rowsum(l_run, red, ty, tx, NY);

    if (nsplit > 1) {
        /* partial results for bm_attn_combine: unnormalized O, then (m, l) per row */
        const long prow = ((long)split * (long)get_num_groups(1) + bg) * nrows + r0;
        __global float *pstat = part + (long)nsplit * (long)get_num_groups(1) * nrows * dh;
        #pragma unroll
        for (int i = 0; i < BM_ATT_TR; i++) {
            const int r = ty + NY * i;
            if (r0 + r >= nrows) continue;
            #pragma unroll
            for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND) {
                const int d0 = 4 * (tx + BM_ATT_NX * jj);
                __global float *o = part + (prow + r) * dh + d0;
                const float4 a = acc[i][jj];
                if (d0 < dh) o[0] = a.x;
                if (d0 + 1 < dh) o[1] = a.y;
                if (d0 + 2 < dh) o[2] = a.z;
                if (d0 + 3 < dh) o[3] = a.w;
            }
            if (tx == 0) {
                pstat[(prow + r) * 2] = m_run[i];
                pstat[(prow + r) * 2 + 1] = l_run[i];
            }
        }
        return;
    }
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) {
        const int row = r0 + ty + NY * i;
        if (row >= nrows) continue;
        const int t = row / G, h = g * G + (row - t * G);
        const float inv = 1.0f / l_run[i];
        __global float *orow = out + (long)(b * T + t) * out_ld + (long)h * dh;
        #pragma unroll
        for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND) {
            const int d0 = 4 * (tx + BM_ATT_NX * jj);
            bm_store4_partial(orow, d0, dh, acc[i][jj] * inv);
        }
    }
}

/* global (ntiles * L, B*Hkv, nsplit), local (L, 1, 1), L = 8 * NY; local arrays sized by
 * the launcher (bm_attn_tiled_choose in op_attention.c). dh <= 64: 4 keys x 2 float4 columns
 * per work-item (BK 32); dh <= 128: 2 keys x 4 float4 columns (BK 16, so that 32 rows still
 * fit 48 KiB of local memory). */
#define BM_ATT_TILED_PARAMS                                                                         \
    const int T, const int H, const int Hkv, const int dh, __global const float *q, const long q_ld,  \
        const long q_col, __global const float *k, __global const float *v, const long kv_ld,        \
        const long k_col, const long v_col, __global const float *kc, __global const float *vc,      \
        const int cap, const long pos0, const int window, const float scale, __global float *out,    \
        const long out_ld, const int nsplit, __global float *part, __local float4 *qs4,              \
        __local float4 *kp4, __local float4 *vs4, __local float *red
#define BM_ATT_TILED_ARGS                                                                             \
    T, H, Hkv, dh, q, q_ld, q_col, k, v, kv_ld, k_col, v_col, kc, vc, cap, pos0, window, scale, out,  \
        out_ld, nsplit, part, qs4, kp4, vs4, red

__kernel void bm_attn_tiled2(BM_ATT_TILED_PARAMS) { bm_attn_tiled_body(2, 4, BM_ATT_TILED_ARGS); }
__kernel void bm_attn_tiled4(BM_ATT_TILED_PARAMS) { bm_attn_tiled_body(4, 2, BM_ATT_TILED_ARGS); }

/* Merges the nsplit partial results of bm_attn_fwd (split over keys): for each output element,
 * O = sum_s O_s e^(m_s - M) / sum_s l_s e^(m_s - M), M = max_s m_s; splits that saw no key of a
 * row (m_s = -inf) weigh 0. One work-item per (b, t, h, d), d fastest.
 * part: [nsplit, B*Hkv, G*T, dh] then [nsplit, B*Hkv, G*T, 2] (m, l); rows as in bm_attn_fwd. */
__kernel void bm_attn_combine(const int B, const int T, const int H, const int Hkv, const int dh,
                              const int nsplit, __global const float *part, __global float *out,
                              const long out_ld)
{
    const long e = (long)get_global_id(0);
    if (e >= (long)B * T * H * dh) return;
    const int d = (int)(e % dh);
    const long rest = e / dh;
    const int h = (int)(rest % H);
    const int bt = (int)(rest / H);
    const int b = bt / T, t = bt - b * T;
    const int G = H / Hkv, g = h / G;
    const long nrows = (long)G * T, nbg = (long)B * Hkv;
    const long row = ((long)b * Hkv + g) * nrows + (long)t * G + (h - g * G);
    __global const float *pstat = part + nsplit * nbg * nrows * dh;
    float M = -INFINITY;
    for (int s = 0; s < nsplit; s++) M = fmax(M, pstat[(s * nbg * nrows + row) * 2]);
    float l = 0.0f, o = 0.0f;
    for (int s = 0; s < nsplit; s++) {
        const long pr = s * nbg * nrows + row;
        const float m = pstat[pr * 2];
        if (m == -INFINITY) continue;
        const float w = exp(m - M);
        l += w * pstat[pr * 2 + 1];
        o += w * part[pr * dh + d];
    }
    out[(long)bt * out_ld + (long)h * dh + d] = o / l;
}
