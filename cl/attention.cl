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
 */
#ifndef BM_ATT_ACC
#define BM_ATT_ACC 32     /* private output accumulators per work-item (launcher mirrors it) */
#endif

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
    const long t_lo = window > 0 ? max(0L, pos_first - window + 1) : 0L;
    const long per = ((pos_last - t_lo + nsplit) / nsplit + BK - 1) / BK * BK;
    const long lo = t_lo + split * per;
    const long hi = min(pos_last, lo + per - 1); /* lo > hi: an empty split */

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
