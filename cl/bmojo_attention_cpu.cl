/* bmojo_attention_cpu.cl — the B'MOJO attention (model.md 2.5) for CPU devices (POCL): query t
 * attends, in one softmax, over [F(s(t)) | E(s(t)) | W(t)], the memory rows of its chunk and its
 * window. Launcher: src/ops/op_bmojo.c (bmojo_attention_cpu; the choice on CPUs for every T,
 * BMOJO_BMOJO_ATTN=cpu anywhere); the same arguments as bm_bmojo_attn's views
 * (cl/bmojo_attention.cl, read its top comment for the layout: q, kx/vx, the win_k/v rings, the
 * chunk memories memk/memv [B, NC, Hkv, M, dh] at element offsets of scr, out, lse).
 *
 * Shape of the work: one work-item per (BM_BATC_TQ consecutive queries, query head, sequence), a
 * CPU thread's job, as cl/attention_cpu.cl does for the plain attention: each query runs its M
 * memory slots, then its window, in blocks of 16 keys with an online softmax (per block 16 scores,
 * one vector exp, one rescale of o), q and o held as dh / 16 float16 chunks in private memory. An
 * invalid memory slot (a fading position before 0, an eidetic entry past min(m_e, s)) is a -inf
 * score, as in the GPU kernels; a block of only such slots is skipped (its max would be -inf).
 * dh not a multiple of 16 takes the scalar form of the same loop. The softmax steps are
 * cl/attention_cpu.cl's (bm_attc_block16, bm_attc_key1), which comes first in the program.
 *
 * Why: the GPU kernels (bm_bmojo_attn_tiled*, bm_bmojo_attn) share K/V tiles in local memory
 * between work-items and step through barriers, which POCL runs as loops over the work-items with
 * the tiles in memory: 698 ms, 37 % of a bmojo-130m pp512 on the 2-core development machine
 * (docs/performance.md). Not for GPUs (one item per query block and head leaves a GPU idle).
 * Tunables: BM_BATC_TQ (8) queries per work-item, as cl/attention_cpu.cl's; BM_BATC_MAXC (16) the
 * most float16 chunks of a head (dh <= 256; the launcher refuses larger).
 */
#ifndef BM_BATC_TQ
#define BM_BATC_TQ 8
#endif
#ifndef BM_BATC_MAXC
#define BM_BATC_MAXC 16
#endif

/* Offset of key i of query position P's list (its chunk's M memory slots, then its window from
 * lo), in the buffer *src says: 0 the chunk memory (memk / memv), 1 the new rows (kx / vx, before
 * their column), 2 the window ring (win_k / win_v); -1 for an invalid memory slot. */
static inline long bm_batc_key(int i, int P, int lo, int b, int g, int T, int Hkv, int dh, int w, int m_f, int M,
                               int pos0, int NC, long x_ld, int *src)
{
    if (i < M) {
        const int s = (P / w) * w, c = P / w - pos0 / w;
        const int ok = i < m_f ? s - m_f + i >= 0 : i - m_f < s;
        *src = ok ? 0 : -1;
        return ((((long)b * NC + c) * Hkv + g) * M + i) * dh;
    }
    const int p = lo + (i - M);
    if (p >= pos0) {
        *src = 1;
        return ((long)b * T + (p - pos0)) * x_ld + (long)g * dh;
    }
    *src = 2;
    return (((long)b * Hkv + g) * w + p % w) * dh;
}

static inline __global const float *bm_batc_row(int src, long off, __global const float *mem,
                                                __global const float *x, long x_col, __global const float *ring)
{
    return src == 0 ? mem + off : src == 1 ? x + off + x_col : ring + off;
}

/* Global (ceil(T / BM_BATC_TQ), H, B), local (1, 1, 1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_bmojo_attn_cpu(__global const float *q, const ulong q_ld, const ulong q_col, __global const float *kx,
                  __global const float *vx, const ulong x_ld, const ulong kx_col, const ulong vx_col,
                  __global const float *win_k, __global const float *win_v, __global const float *scr,
                  const ulong memk_off, const ulong memv_off, __global float *out, const ulong out_ld,
                  __global float *lse, const int T, const int H, const int Hkv, const int dh, const int w, const int m_f, const int m_e,
                  const int pos0, const int NC, const float scale)
{
    const int t0 = (int)get_global_id(0) * BM_BATC_TQ, h = (int)get_global_id(1), b = (int)get_global_id(2);
    const int g = h / (H / Hkv), nc = dh / 16, vec = dh % 16 == 0, M = m_f + m_e;
    __global const float *memk = scr + memk_off, *memv = scr + memv_off;
    float16 qv[BM_BATC_MAXC], o[BM_BATC_MAXC];
    for (int t = t0; t < min(t0 + BM_BATC_TQ, T); t++) {
        const int P = pos0 + t, lo = max(0, P - w + 1), nkeys = M + (P - lo + 1);
        __global const float *qr = q + ((long)b * T + t) * q_ld + q_col + (long)h * dh;
        __global float *orow = out + ((long)b * T + t) * out_ld + (long)h * dh;
        float m = -INFINITY, l = 0.0f;
        if (vec) {
            for (int c = 0; c < nc; c++) qv[c] = vload16(c, qr) * scale, o[c] = 0.0f;
            for (int i0 = 0; i0 < nkeys; i0 += 16) {
                const int nk = min(16, nkeys - i0);
                float sa[16];
                int srcs[16];
                long offs[16];
                for (int j = 0; j < 16; j++) {
                    srcs[j] = -1;
                    sa[j] = -INFINITY;
                    if (j < nk) {
                        offs[j] = bm_batc_key(i0 + j, P, lo, b, g, T, Hkv, dh, w, m_f, M, pos0, NC, (long)x_ld, &srcs[j]);
                        if (srcs[j] >= 0) {
                            __global const float *kr = bm_batc_row(srcs[j], offs[j], memk, kx, (long)kx_col, win_k);
                            float16 sv = qv[0] * vload16(0, kr);
                            for (int c = 1; c < nc; c++) sv = fma(qv[c], vload16(c, kr), sv);
                            sa[j] = bm_hsum16(sv);
                        }
                    }
                }
                float pa[16];
                if (!bm_attc_block16(vload16(0, sa), &m, &l, o, nc, pa)) continue; /* only invalid memory slots */
                for (int j = 0; j < nk; j++) {
                    if (srcs[j] < 0) continue;
                    __global const float *vr = bm_batc_row(srcs[j], offs[j], memv, vx, (long)vx_col, win_v);
                    for (int c = 0; c < nc; c++) o[c] = fma((float16)pa[j], vload16(c, vr), o[c]);
                }
            }
            const float inv = 1.0f / l;
            for (int c = 0; c < nc; c++) vstore16(o[c] * inv, c, orow);
        } else {
            float of[BM_BATC_MAXC * 16];
            for (int d = 0; d < dh; d++) of[d] = 0.0f;
            for (int i = 0; i < nkeys; i++) {
                int src;
                const long off = bm_batc_key(i, P, lo, b, g, T, Hkv, dh, w, m_f, M, pos0, NC, (long)x_ld, &src);
                if (src < 0) continue;
                __global const float *kr = bm_batc_row(src, off, memk, kx, (long)kx_col, win_k);
                __global const float *vr = bm_batc_row(src, off, memv, vx, (long)vx_col, win_v);
                float s = 0.0f;
                for (int d = 0; d < dh; d++) s = fma(qr[d], kr[d], s);
                bm_attc_key1(s * scale, vr, dh, &m, &l, of);
            }
            const float inv = 1.0f / l;
            for (int d = 0; d < dh; d++) orow[d] = of[d] * inv;
        }
        if (lse) lse[((long)b * T + t) * H + h] = m + log(l);
    }
}
