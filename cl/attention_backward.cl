/* attention_backward.cl — backward of causal GQA attention (full or sliding window) from
 * position 0 with no cache: the gradients dq, dk, dv of o = softmax(scale q k^T, masked) v,
 * flash-attention-2 style (the softmax is recomputed from q and k, never stored as T x T, and no
 * atomics: each output element has exactly one writer).
 *
 * Layout (row-major fp32; see bm_attn_bwd_args in src/ops_backward.h):
 *   q      [B*T, q_ld]   query head h of token t of sequence b at (b*T+t)*q_ld + q_col + h*dh
 *   k, v   [B*T, kv_ld]  kv head g at k_col + g*dh / v_col + g*dh
 *   o, dout [B*T, o_ld]  head h at h*dh (the forward's output and its gradient)
 *   dq     [B*T, dq_ld]  like q at dq_col;  dk, dv [B*T, dkv_ld] like k, v at dk_col / dv_col
 *   stats  [2, B*Hkv*G*T] scratch: the log-sum-exp L and D = dout . o of every row, written by
 *          bm_attn_bwd_dq and read by bm_attn_bwd_dkv.
 * Token t sees keys max(0, t - window + 1) .. t (window 0: 0 .. t); query head h reads kv head
 * g = h / G, G = H / Hkv. As in the forward (cl/attention.cl), the "rows" of (b, g) are its G
 * query heads times the T tokens, token-major (row = t*G + j, query head g*G + j), so one K/V
 * (or Q/dO) tile in local memory serves all G heads of the group and the rows of a tile have
 * consecutive positions (their key range is an interval; window limits bound every loop).
 *
 * With P = exp(scale q.k - L), dP = dout . v, D = dout . o = sum_k P dP (per row) and
 * dS = P (dP - D):  dq = scale sum_k dS k,  dk = scale sum_rows dS q,  dv = sum_rows P dout.
 *
 * bm_attn_bwd_dq: one work-group per (b, g, tile of BR rows). Pass 1 over the key tiles (BC keys)
 *   recomputes S = scale Q K^T and the row statistics with the online max/sum of the forward,
 *   giving L = m + log(l); D is a dh-long dot per row; both go to `stats`. Pass 2 over the same
 *   key tiles: S, then P, dP = dO V^T and dS into local memory, then dQ += dS K into private
 *   accumulators (work-item i owns the elements e = i + k*Lw, k < BM_ATTB_ACC, of the BR x dh
 *   tile, so dh is a runtime argument).
 * bm_attn_bwd_dkv: one work-group per (b, g, tile of BC keys). K and V tiles stay in local
 *   memory; the loop runs over the row tiles (BR rows) of the queries that see any of these
 *   keys, rows t*G from t = first key to last key + window - 1 (window 0: to T-1): loads Q
 *   (pre-scaled) and dO, L and D, computes P and dS (BC x BR) into local memory, then dV += P dO
 *   and dK += dS Q into two sets of private accumulators over the BC x dh tile.
 * Masked entries get P = 0 (exp never sees -inf). Every query sees itself, so l > 0.
 *
 * BR, BC and the work-group size are runtime arguments chosen by the launcher
 * (src/ops/op_attention_backward.c) to fit the device's local memory and work-group limits;
 * local arrays are kernel arguments. Rows of Q, dO, K, V in local memory are padded to dh+1
 * floats so that work-items walking different rows of one tile do not hit one bank.
 *
 * Considered: atomics-free single kernel with dK/dV accumulated per query tile into scratch
 * partials and reduced afterwards (memory T/BR x the size of dk/dv); the two-kernel split costs
 * one more QK^T recomputation (kernel 1 needs L before its pass 2) but no partials. The
 * per-element inner loops (one dot of dh per score, one sum of BR or BC per output element)
 * follow the generic forward kernel bm_attn_fwd; register tiling as in bm_attn_tiled* is the
 * next step if the backward becomes a bottleneck. Work: 8 matrix products of the forward's size
 * (kernel 1: S twice, dP, dS K; kernel 2: S, dP, P^T dO, dS^T Q) against the forward's 2.
 * Measured on POCL (2-core CPU, shared, noisy; H 8 / Hkv 2, B 1, defaults: 128 work-items,
 * 32 x 32 tiles at dh 64), forward = bm_op_attention (register-tiled prefill kernel):
 *   T 512, dh 64, full:      forward 187 ms, backward 1411 ms (7.5x)
 *   T 512, dh 64, window 64: forward  64 ms, backward  359 ms (5.6x)
 *   T 256, dh 128, full:     forward  79 ms, backward  685 ms (8.6x)
 * Not measured on a GPU yet.
 */
#ifndef BM_ATTB_ACC
#define BM_ATTB_ACC 16    /* private accumulators per work-item and output (launcher mirrors it) */
#endif

/* Rows [r0, rend) of (b, g) see keys [max(0, t0 - window + 1), t1], t0 = r0/G, t1 = (rend-1)/G. */
__kernel void bm_attn_bwd_dq(const int T, const int H, const int Hkv, const int dh,
                             __global const float *q, const long q_ld, const long q_col,
                             __global const float *k, __global const float *v, const long kv_ld,
                             const long k_col, const long v_col,
                             __global const float *o, __global const float *dout, const long o_ld,
                             const int window, const float scale,
                             __global float *dq, const long dq_ld, const long dq_col,
                             __global float *stats, const long nstat,
                             const int BR, const int BC,
                             __local float *qs, __local float *dos, __local float *ks, __local float *vs,
                             __local float *ss, __local float *stat)
{
    const int lid = (int)get_local_id(0);
    const int Lw = (int)get_local_size(0);
    const int tile = (int)get_group_id(0);
    const int bg = (int)get_group_id(1);
    const int b = bg / Hkv, g = bg % Hkv;
    const int G = H / Hkv;
    const int nrows = G * T;
    const int r0 = tile * BR;
    const int rend = min(r0 + BR, nrows);
    const int ldp = dh + 1;
    __local float *m_run = stat, *l_run = stat + BR, *Ls = stat + 2 * BR, *Ds = stat + 3 * BR;

    const int t_first = r0 / G, t_last = (rend - 1) / G;
    const int lo = window > 0 ? max(0, t_first - window + 1) : 0;

    /* Q (pre-scaled) and dO tiles */
    for (int e = lid; e < BR * dh; e += Lw) {
        const int r = e / dh, d = e - r * dh;
        const int row = r0 + r;
        float qv = 0.0f, dov = 0.0f;
        if (row < nrows) {
            const int t = row / G, h = g * G + (row - t * G);
            const long tok = (long)b * T + t;
            qv = scale * q[tok * q_ld + q_col + (long)h * dh + d];
            dov = dout[tok * o_ld + (long)h * dh + d];
        }
        qs[r * ldp + d] = qv;
        dos[r * ldp + d] = dov;
    }
    for (int r = lid; r < BR; r += Lw) {
        m_run[r] = -INFINITY;
        l_run[r] = 0.0f;
        /* D = dout . o, straight from global memory */
        const int row = r0 + r;
        float dsum = 0.0f;
        if (row < nrows) {
            const int t = row / G, h = g * G + (row - t * G);
            const long base = ((long)b * T + t) * o_ld + (long)h * dh;
            for (int d = 0; d < dh; d++) dsum += dout[base + d] * o[base + d];
        }
        Ds[r] = dsum;
    }

    /* pass 1: the row statistics */
    for (int kb = lo; kb <= t_last; kb += BC) {
        const int nk = min(BC, t_last - kb + 1);
        barrier(CLK_LOCAL_MEM_FENCE); /* Q tile ready / previous ks, ss no longer read */
        for (int e = lid; e < BC * dh; e += Lw) {
            const int c = e / dh, d = e - c * dh;
            ks[c * ldp + d] = c < nk ? k[((long)b * T + kb + c) * kv_ld + k_col + (long)g * dh + d] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < BR * BC; e += Lw) {
            const int r = e / BC, c = e - r * BC;
            const int row = r0 + r, p = kb + c, qp = row / G;
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
        for (int r = lid; r < BR; r += Lw) {
            __local const float *sr = ss + r * BC;
            const float m_old = m_run[r];
            float m_new = m_old;
            for (int c = 0; c < nk; c++) m_new = fmax(m_new, sr[c]);
            if (m_new != -INFINITY) {
                float sum = 0.0f;
                for (int c = 0; c < nk; c++)
                    if (sr[c] != -INFINITY) sum += exp(sr[c] - m_new);
                l_run[r] = l_run[r] * exp(m_old - m_new) + sum; /* exp(-inf) = 0 while m_old = -inf */
                m_run[r] = m_new;
            }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int r = lid; r < BR; r += Lw) {
        const int row = r0 + r;
        const float L = row < nrows ? m_run[r] + log(l_run[r]) : 0.0f;
        Ls[r] = L;
        if (row < nrows) {
            stats[(long)bg * nrows + row] = L;
            stats[nstat + (long)bg * nrows + row] = Ds[r];
        }
    }

    /* pass 2: dS, then dQ += dS K */
    const int n_acc = (BR * dh + Lw - 1) / Lw;
    float acc[BM_ATTB_ACC];
    for (int i = 0; i < BM_ATTB_ACC; i++) acc[i] = 0.0f;
    for (int kb = lo; kb <= t_last; kb += BC) {
        const int nk = min(BC, t_last - kb + 1);
        barrier(CLK_LOCAL_MEM_FENCE); /* Ls ready / previous ks, vs, ss no longer read */
        for (int e = lid; e < BC * dh; e += Lw) {
            const int c = e / dh, d = e - c * dh;
            float kv = 0.0f, vv = 0.0f;
            if (c < nk) {
                const long row = ((long)b * T + kb + c) * kv_ld + (long)g * dh + d;
                kv = k[row + k_col];
                vv = v[row + v_col];
            }
            ks[c * ldp + d] = kv;
            vs[c * ldp + d] = vv;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < BR * BC; e += Lw) {
            const int r = e / BC, c = e - r * BC;
            const int row = r0 + r, p = kb + c, qp = row / G;
            float ds = 0.0f;
            if (row < nrows && c < nk && p <= qp && (window == 0 || p > qp - window)) {
                __local const float *qr = qs + r * ldp, *dr = dos + r * ldp;
                __local const float *kr = ks + c * ldp, *vr = vs + c * ldp;
                float s = 0.0f, dp = 0.0f;
                for (int d = 0; d < dh; d++) {
                    s += qr[d] * kr[d];
                    dp += dr[d] * vr[d];
                }
                ds = exp(s - Ls[r]) * (dp - Ds[r]);
            }
            ss[e] = ds;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < BM_ATTB_ACC; i++) {
            const int e = lid + i * Lw;
            if (i < n_acc && e < BR * dh) {
                const int r = e / dh, d = e - r * dh;
                __local const float *sr = ss + r * BC;
                float a = acc[i];
                for (int c = 0; c < nk; c++) a += sr[c] * ks[c * ldp + d];
                acc[i] = a;
            }
        }
    }
    for (int i = 0; i < BM_ATTB_ACC; i++) {
        const int e = lid + i * Lw;
        if (i < n_acc && e < BR * dh) {
            const int r = e / dh, d = e - r * dh;
            const int row = r0 + r;
            if (row < nrows) {
                const int t = row / G, h = g * G + (row - t * G);
                dq[((long)b * T + t) * dq_ld + dq_col + (long)h * dh + d] = scale * acc[i];
            }
        }
    }
}

/* Keys [c0, c0 + nk) of (b, g) are seen by tokens c0 .. c0 + nk - 1 + window - 1 (window 0: all
 * later tokens), rows t*G + j of those tokens. */
__kernel void bm_attn_bwd_dkv(const int T, const int H, const int Hkv, const int dh,
                              __global const float *q, const long q_ld, const long q_col,
                              __global const float *k, __global const float *v, const long kv_ld,
                              const long k_col, const long v_col,
                              __global const float *dout, const long o_ld,
                              const int window, const float scale,
                              __global float *dk, __global float *dv, const long dkv_ld,
                              const long dk_col, const long dv_col,
                              __global const float *stats, const long nstat,
                              const int BR, const int BC,
                              __local float *qs, __local float *dos, __local float *ks, __local float *vs,
                              __local float *ps, __local float *dss, __local float *stat)
{
    const int lid = (int)get_local_id(0);
    const int Lw = (int)get_local_size(0);
    const int tile = (int)get_group_id(0);
    const int bg = (int)get_group_id(1);
    const int b = bg / Hkv, g = bg % Hkv;
    const int G = H / Hkv;
    const int nrows = G * T;
    const int c0 = tile * BC;
    const int nk = min(BC, T - c0);
    const int ldp = dh + 1;
    __local float *Ls = stat, *Ds = stat + BR;

    /* the rows that see any key of the tile */
    const int t_end = window > 0 ? min(T, c0 + nk - 1 + window) : T; /* exclusive */
    const int row_lo = c0 * G, row_hi = t_end * G;

    for (int e = lid; e < BC * dh; e += Lw) {
        const int c = e / dh, d = e - c * dh;
        float kv = 0.0f, vv = 0.0f;
        if (c < nk) {
            const long row = ((long)b * T + c0 + c) * kv_ld + (long)g * dh + d;
            kv = k[row + k_col];
            vv = v[row + v_col];
        }
        ks[c * ldp + d] = kv;
        vs[c * ldp + d] = vv;
    }

    const int n_acc = (BC * dh + Lw - 1) / Lw;
    float acc_k[BM_ATTB_ACC], acc_v[BM_ATTB_ACC];
    for (int i = 0; i < BM_ATTB_ACC; i++) {
        acc_k[i] = 0.0f;
        acc_v[i] = 0.0f;
    }
    for (int rb = row_lo; rb < row_hi; rb += BR) {
        const int nr = min(BR, row_hi - rb);
        barrier(CLK_LOCAL_MEM_FENCE); /* previous qs, dos, ps, dss no longer read */
        for (int e = lid; e < BR * dh; e += Lw) {
            const int r = e / dh, d = e - r * dh;
            float qv = 0.0f, dov = 0.0f;
            if (r < nr) {
                const int row = rb + r, t = row / G, h = g * G + (row - t * G);
                const long tok = (long)b * T + t;
                qv = scale * q[tok * q_ld + q_col + (long)h * dh + d];
                dov = dout[tok * o_ld + (long)h * dh + d];
            }
            qs[r * ldp + d] = qv;
            dos[r * ldp + d] = dov;
        }
        for (int r = lid; r < BR; r += Lw) {
            Ls[r] = r < nr ? stats[(long)bg * nrows + rb + r] : 0.0f;
            Ds[r] = r < nr ? stats[nstat + (long)bg * nrows + rb + r] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < BC * BR; e += Lw) {
            const int c = e / BR, r = e - c * BR;
            const int p = c0 + c, qp = (rb + r) / G;
            float pv = 0.0f, ds = 0.0f;
            if (r < nr && c < nk && p <= qp && (window == 0 || p > qp - window)) {
                __local const float *qr = qs + r * ldp, *dr = dos + r * ldp;
                __local const float *kr = ks + c * ldp, *vr = vs + c * ldp;
                float s = 0.0f, dp = 0.0f;
                for (int d = 0; d < dh; d++) {
                    s += qr[d] * kr[d];
                    dp += dr[d] * vr[d];
                }
                pv = exp(s - Ls[r]);
                ds = pv * (dp - Ds[r]);
            }
            ps[e] = pv;
            dss[e] = ds;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < BM_ATTB_ACC; i++) {
            const int e = lid + i * Lw;
            if (i < n_acc && e < BC * dh) {
                const int c = e / dh, d = e - c * dh;
                __local const float *pr = ps + c * BR, *sr = dss + c * BR;
                float ak = acc_k[i], av = acc_v[i];
                for (int r = 0; r < nr; r++) {
                    av += pr[r] * dos[r * ldp + d];
                    ak += sr[r] * qs[r * ldp + d];
                }
                acc_k[i] = ak;
                acc_v[i] = av;
            }
        }
    }
    /* q was pre-scaled, so dK = sum dS (scale q) needs no further factor */
    for (int i = 0; i < BM_ATTB_ACC; i++) {
        const int e = lid + i * Lw;
        if (i < n_acc && e < BC * dh) {
            const int c = e / dh, d = e - c * dh;
            if (c < nk) {
                const long row = ((long)b * T + c0 + c) * dkv_ld + (long)g * dh + d;
                dk[row + dk_col] = acc_k[i];
                dv[row + dv_col] = acc_v[i];
            }
        }
    }
}
