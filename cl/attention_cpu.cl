/* attention_cpu.cl — causal GQA attention over a ring K/V cache for CPU devices (POCL):
 * bm_op_attention's contract (src/ops.h), launcher src/ops/op_attention.c (variant BM_ATTN_CPU,
 * the choice on CPUs for every T; key splits do not apply).
 *
 * Layout as cl/attention.cl: q [B*T, q_ld] (head h at q_col + h*dh), k / v [B*T, kv_ld] (kv head g
 * at k_col / v_col + g*dh) for positions pos0 .. pos0+T-1, caches [B, Hkv, cap, dh] (position p <
 * pos0 in slot p % cap), out [B*T, out_ld] (head h at h*dh). Query head h reads kv head
 * h / (H / Hkv); query t (position pos0 + t) sees keys max(0, pos - window + 1) .. pos (window 0:
 * from 0).
 *
 * Shape of the work: one work-item per (BM_ATTC_TQ consecutive queries, query head, sequence), a
 * CPU thread's job; each query runs its keys in blocks of 16 with an online softmax (running max
 * m and sum l; per block 16 scores, one vector exp and one rescale of o), its q and o held as
 * dh / 16 float16 chunks in private memory, the keys' rows read 16 floats at a time (score: the
 * chunks' products summed, then folded once).
 * The keys of the BM_ATTC_TQ queries overlap, so they come from L1/L2. dh not a multiple of 16
 * takes the scalar form of the same loops.
 *
 * Why: the register-tiled kernel of cl/attention.cl is built around local-memory tiles and
 * barriers, which POCL runs as loops over work-items with the tiles in memory: 304 ms of a
 * swa-130m pp512 (34 %) on the 2-core development machine; this form is the CPU's natural one.
 * Not for GPUs (one item per query block and head leaves a GPU idle).
 * Tunables: BM_ATTC_TQ (8) queries per work-item; BM_ATTC_MAXC (16) the most float16 chunks of a
 * head (dh <= 256; the launcher refuses larger).
 */
#ifndef BM_ATTC_TQ
#define BM_ATTC_TQ 8
#endif
#ifndef BM_ATTC_MAXC
#define BM_ATTC_MAXC 16
#endif

/* Row of key / value position p of kv head g, sequence b: the new rows or the ring cache. */
static inline __global const float *bm_attc_row(long p, long pos0, int b, int T, int g, int Hkv, int dh,
                                         __global const float *x, long ld, long col, __global const float *cache,
                                         int cap)
{
    if (p >= pos0) return x + ((long)b * T + (p - pos0)) * ld + col + (long)g * dh;
    return cache + (((long)b * Hkv + g) * cap + p % cap) * dh;
}

/* The online softmax of the CPU attention kernels (this file's and cl/bmojo_attention_cpu.cl's),
 * one block of 16 scores (-inf where there is no key): the running max *m and sum *l move to the
 * block, the output chunks o[0 .. nc) are rescaled, the block's weights are stored to pa. Returns
 * 0, changing nothing, for a block of -inf only. */
static inline int bm_attc_block16(const float16 s16, float *m, float *l, float16 *o, const int nc, float *pa)
{
    const float8 m8 = fmax(s16.lo, s16.hi);
    const float4 m4 = fmax(m8.lo, m8.hi);
    const float mb = fmax(fmax(m4.x, m4.y), fmax(m4.z, m4.w));
    if (mb == -INFINITY) return 0;
    const float mn = fmax(*m, mb), corr = exp(*m - mn); /* 0 on the first block (m = -inf) */
    const float16 pw = exp(s16 - mn);
    *l = *l * corr + bm_hsum16(pw);
    *m = mn;
    for (int c = 0; c < nc; c++) o[c] *= corr;
    vstore16(pw, 0, pa);
    return 1;
}

/* The same for one key of score s and value row vr (the scalar form, dh not a multiple of 16). */
static inline void bm_attc_key1(const float s, __global const float *vr, const int dh, float *m, float *l, float *of)
{
    if (s > *m) {
        const float corr = exp(*m - s);
        *l *= corr;
        for (int d = 0; d < dh; d++) of[d] *= corr;
        *m = s;
    }
    const float pw = exp(s - *m);
    *l += pw;
    for (int d = 0; d < dh; d++) of[d] = fma(pw, vr[d], of[d]);
}

/* Global (ceil(T / BM_ATTC_TQ), H, B), local (1, 1, 1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_attn_cpu(const int T, const int H, const int Hkv, const int dh, __global const float *q, const long q_ld,
            const long q_col, __global const float *k, __global const float *v, const long kv_ld, const long k_col,
            const long v_col, __global const float *kc, __global const float *vc, const int cap, const long pos0,
            const int window, const float scale, __global float *out, const long out_ld)
{
    const int t0 = (int)get_global_id(0) * BM_ATTC_TQ, h = (int)get_global_id(1), b = (int)get_global_id(2);
    const int g = h / (H / Hkv), nc = dh / 16, vec = dh % 16 == 0;
    float16 qv[BM_ATTC_MAXC], o[BM_ATTC_MAXC];
    for (int t = t0; t < min(t0 + BM_ATTC_TQ, T); t++) {
        const long pos = pos0 + t, lo = window > 0 ? max(0L, pos - window + 1) : 0L;
        __global const float *qr = q + ((long)b * T + t) * q_ld + q_col + (long)h * dh;
        __global float *orow = out + ((long)b * T + t) * out_ld + (long)h * dh;
        float m = -INFINITY, l = 0.0f;
        if (vec) {
            for (int c = 0; c < nc; c++) qv[c] = vload16(c, qr) * scale, o[c] = 0.0f;
            /* keys in blocks of 16: 16 scores, one vector exp, one rescale per block */
            for (long p0 = lo; p0 <= pos; p0 += 16) {
                const int nk = (int)min(16L, pos - p0 + 1);
                float sa[16];
                for (int j = 0; j < 16; j++) {
                    if (j < nk) {
                        __global const float *kr = bm_attc_row(p0 + j, pos0, b, T, g, Hkv, dh, k, kv_ld, k_col, kc, cap);
                        float16 sv = qv[0] * vload16(0, kr);
                        for (int c = 1; c < nc; c++) sv = fma(qv[c], vload16(c, kr), sv);
                        sa[j] = bm_hsum16(sv);
                    } else {
                        sa[j] = -INFINITY;
                    }
                }
                float pa[16];
                bm_attc_block16(vload16(0, sa), &m, &l, o, nc, pa); /* every block holds a key */
                for (int j = 0; j < nk; j++) {
                    __global const float *vr = bm_attc_row(p0 + j, pos0, b, T, g, Hkv, dh, v, kv_ld, v_col, vc, cap);
                    for (int c = 0; c < nc; c++) o[c] = fma((float16)pa[j], vload16(c, vr), o[c]);
                }
            }
            const float inv = 1.0f / l;
            for (int c = 0; c < nc; c++) vstore16(o[c] * inv, c, orow);
        } else {
            float of[BM_ATTC_MAXC * 16];
            for (int d = 0; d < dh; d++) of[d] = 0.0f;
            for (long p = lo; p <= pos; p++) {
                __global const float *kr = bm_attc_row(p, pos0, b, T, g, Hkv, dh, k, kv_ld, k_col, kc, cap);
                float s = 0.0f;
                for (int d = 0; d < dh; d++) s = fma(qr[d], kr[d], s);
                __global const float *vr = bm_attc_row(p, pos0, b, T, g, Hkv, dh, v, kv_ld, v_col, vc, cap);
                bm_attc_key1(s * scale, vr, dh, &m, &l, of);
            }
            const float inv = 1.0f / l;
            for (int d = 0; d < dh; d++) orow[d] = of[d] * inv;
        }
    }
}
