/* attention_backward_cpu.cl — the CPU form of the causal GQA attention backward
 * (cl/attention_backward.cl; same contract, layout and `stats` scratch), launcher
 * src/ops/op_attention_backward.c, for head dims that are multiples of 16 (at most
 * 16 * BM_ATTC_MAXC; the launcher keeps the GPU form for others).
 *
 * With P = exp(scale q.k - L), dP = dout . v, D = dout . o and dS = P (dP - D):
 * dq = scale sum_k dS k, dk = scale sum_rows dS q, dv = sum_rows P dout.
 *
 * Shape of the work, as cl/attention_cpu.cl's forward: one work-item (a CPU thread's job) per
 *  bm_attn_bwd_dq_cpu: BM_ATTBC_TQ consecutive queries of one query head and sequence. Per query,
 *    q (pre-scaled), dout and the dq accumulator as dh / 16 float16 chunks; pass 1 runs the keys
 *    in blocks of 16 with the forward's online softmax (bm_attc_block16) for L = m + log l, and
 *    D = dout . o; both go to `stats`. Pass 2: per block of 16 keys, 16 scores and 16 dP, one
 *    vector exp for P, dS = P (dP - D), then dq += dS k key by key.
 *  bm_attn_bwd_dkv_cpu: BM_ATTBC_TK consecutive keys of one kv head and sequence. Per key, k, v
 *    and the dk, dv accumulators as chunks; the (query, head) rows that see the key (tokens p ..
 *    p + window - 1, the G heads of the group) in blocks of 16: scores, dP, L and D of the block,
 *    one vector exp, then dv += P dout and dk += dS q row by row.
 * Neighbouring work-items' rows overlap, so Q, dO, K and V come from L1/L2.
 *
 * Why: the GPU form's work-groups of up to 128 items share local-memory tiles between barriers,
 * which POCL runs as loops over the items: on a 2-layer MQAR attention model (d 64, vocabulary
 * 8192, batch 16 x 256) bm_attn_bwd_dq and _dkv took 30.5 and 20.2 us per token, 84 % of the
 * backward's kernel time on 2 cores. Not for GPUs (one item per block of queries or keys).
 * Tunables: BM_ATTBC_TQ (8) queries per dq item, BM_ATTBC_TK (8) keys per dk/dv item. */
#ifndef BM_ATTBC_TQ
#define BM_ATTBC_TQ 8
#endif
#ifndef BM_ATTBC_TK
#define BM_ATTBC_TK 8
#endif

/* dot of nc float16 chunks held in a (private) with the row r (global) */
static inline float bm_attbc_dot(const float16 *a, __global const float *r, const int nc)
{
    float16 s = a[0] * vload16(0, r);
    for (int c = 1; c < nc; c++) s = fma(a[c], vload16(c, r), s);
    return bm_hsum16(s);
}

/* acc[c] += w * r (nc chunks of the global row r) */
static inline void bm_attbc_axpy(float16 *acc, const float w, __global const float *r, const int nc)
{
    for (int c = 0; c < nc; c++) acc[c] = fma((float16)(w), vload16(c, r), acc[c]);
}

/* Global (ceil(T / BM_ATTBC_TQ), H, B), local (1, 1, 1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_attn_bwd_dq_cpu(const int T, const int H, const int Hkv, const int dh, __global const float *q, const long q_ld,
                   const long q_col, __global const float *k, __global const float *v, const long kv_ld,
                   const long k_col, const long v_col, __global const float *o, __global const float *dout,
                   const long o_ld, const int window, const float scale, __global float *dq, const long dq_ld,
                   const long dq_col, __global float *stats, const long nstat)
{
    const int t0 = (int)get_global_id(0) * BM_ATTBC_TQ, h = (int)get_global_id(1), b = (int)get_global_id(2);
    const int G = H / Hkv, g = h / G, nc = dh / 16;
    const long bg = (long)b * Hkv + g, nrows = (long)G * T;
    __global const float *kb = k + (long)b * T * kv_ld + k_col + (long)g * dh;
    __global const float *vb = v + (long)b * T * kv_ld + v_col + (long)g * dh;
    float16 qv[BM_ATTC_MAXC], dov[BM_ATTC_MAXC], acc[BM_ATTC_MAXC];
    for (int t = t0; t < min(t0 + BM_ATTBC_TQ, T); t++) {
        const long tok = (long)b * T + t;
        __global const float *qr = q + tok * q_ld + q_col + (long)h * dh;
        __global const float *dor = dout + tok * o_ld + (long)h * dh, *orow = o + tok * o_ld + (long)h * dh;
        float16 dd = 0.0f;
        for (int c = 0; c < nc; c++) {
            qv[c] = vload16(c, qr) * scale;
            dov[c] = vload16(c, dor);
            dd = fma(dov[c], vload16(c, orow), dd);
            acc[c] = 0.0f;
        }
        const float D = bm_hsum16(dd);
        const int lo = window > 0 ? max(0, t - window + 1) : 0;
        /* pass 1: L = m + log l over the keys lo .. t */
        float m = -INFINITY, l = 0.0f;
        for (int p0 = lo; p0 <= t; p0 += 16) {
            const int nk = min(16, t - p0 + 1);
            float sa[16], pa[16];
            for (int j = 0; j < 16; j++) sa[j] = j < nk ? bm_attbc_dot(qv, kb + (long)(p0 + j) * kv_ld, nc) : -INFINITY;
            bm_attc_block16(vload16(0, sa), &m, &l, acc, 0, pa); /* no output chunks to rescale */
        }
        const float L = m + log(l);
        stats[bg * nrows + (long)t * G + (h - g * G)] = L;
        stats[nstat + bg * nrows + (long)t * G + (h - g * G)] = D;
        /* pass 2: dS of 16 keys at a time, dq += dS k */
        for (int p0 = lo; p0 <= t; p0 += 16) {
            const int nk = min(16, t - p0 + 1);
            float sa[16], dpa[16], dsa[16];
            for (int j = 0; j < 16; j++) {
                sa[j] = j < nk ? bm_attbc_dot(qv, kb + (long)(p0 + j) * kv_ld, nc) : -INFINITY;
                dpa[j] = j < nk ? bm_attbc_dot(dov, vb + (long)(p0 + j) * kv_ld, nc) : 0.0f;
            }
            const float16 P = exp(vload16(0, sa) - L); /* 0 past the keys */
            vstore16(P * (vload16(0, dpa) - D), 0, dsa);
            for (int j = 0; j < nk; j++) bm_attbc_axpy(acc, dsa[j], kb + (long)(p0 + j) * kv_ld, nc);
        }
        __global float *dqr = dq + tok * dq_ld + dq_col + (long)h * dh;
        for (int c = 0; c < nc; c++) vstore16(acc[c] * scale, c, dqr);
    }
}

/* Global (ceil(T / BM_ATTBC_TK), Hkv, B), local (1, 1, 1). Reads `stats` as bm_attn_bwd_dq_cpu
 * (or the GPU form's bm_attn_bwd_dq) left it. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_attn_bwd_dkv_cpu(const int T, const int H, const int Hkv, const int dh, __global const float *q, const long q_ld,
                    const long q_col, __global const float *k, __global const float *v, const long kv_ld,
                    const long k_col, const long v_col, __global const float *dout, const long o_ld, const int window,
                    const float scale, __global float *dk, __global float *dv, const long dkv_ld, const long dk_col,
                    const long dv_col, __global const float *stats, const long nstat)
{
    const int p0 = (int)get_global_id(0) * BM_ATTBC_TK, g = (int)get_global_id(1), b = (int)get_global_id(2);
    const int G = H / Hkv, nc = dh / 16;
    const long bg = (long)b * Hkv + g, nrows = (long)G * T;
    __global const float *Ls = stats + bg * nrows, *Ds = stats + nstat + bg * nrows;
    /* row u of the group (token u / G, query head g*G + u % G) */
    __global const float *qb = q + (long)b * T * q_ld + q_col + (long)g * G * dh;
    __global const float *dob = dout + (long)b * T * o_ld + (long)g * G * dh;
    float16 kv[BM_ATTC_MAXC], vv[BM_ATTC_MAXC], dka[BM_ATTC_MAXC], dva[BM_ATTC_MAXC];
    for (int p = p0; p < min(p0 + BM_ATTBC_TK, T); p++) {
        const long tok = (long)b * T + p;
        __global const float *kr = k + tok * kv_ld + k_col + (long)g * dh, *vr = v + tok * kv_ld + v_col + (long)g * dh;
        for (int c = 0; c < nc; c++) {
            kv[c] = vload16(c, kr) * scale;
            vv[c] = vload16(c, vr);
            dka[c] = dva[c] = 0.0f;
        }
        const int thi = window > 0 ? min(T - 1, p + window - 1) : T - 1;
        const long u_lo = (long)p * G, u_hi = (long)(thi + 1) * G; /* the rows that see key p */
        for (long u0 = u_lo; u0 < u_hi; u0 += 16) {
            const int n = (int)min(16L, u_hi - u0);
            float sa[16], dpa[16], la[16], da[16], pa[16], dsa[16];
            for (int i = 0; i < 16; i++) {
                if (i < n) {
                    const long u = u0 + i, t = u / G, jh = u - t * G;
                    sa[i] = bm_attbc_dot(kv, qb + t * q_ld + jh * dh, nc);
                    dpa[i] = bm_attbc_dot(vv, dob + t * o_ld + jh * dh, nc);
                    la[i] = Ls[u];
                    da[i] = Ds[u];
                } else {
                    sa[i] = -INFINITY;
                    dpa[i] = la[i] = da[i] = 0.0f;
                }
            }
            const float16 P = exp(vload16(0, sa) - vload16(0, la)); /* 0 past the rows */
            vstore16(P, 0, pa);
            vstore16(P * (vload16(0, dpa) - vload16(0, da)), 0, dsa);
            for (int i = 0; i < n; i++) {
                const long u = u0 + i, t = u / G, jh = u - t * G;
                bm_attbc_axpy(dva, pa[i], dob + t * o_ld + jh * dh, nc);
                bm_attbc_axpy(dka, dsa[i], qb + t * q_ld + jh * dh, nc);
            }
        }
        __global float *dkr = dk + tok * dkv_ld + dk_col + (long)g * dh, *dvr = dv + tok * dkv_ld + dv_col + (long)g * dh;
        for (int c = 0; c < nc; c++) {
            vstore16(dka[c] * scale, c, dkr);
            vstore16(dva[c], c, dvr);
        }
    }
}
