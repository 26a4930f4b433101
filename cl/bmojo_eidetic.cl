/* bmojo_eidetic.cl — B'MOJO eidetic selection and chunk memory (model.md 2.4): for every chunk
 * start s met by this call, E(s) = the m_e positions j < s with the largest eps_j (ties: smaller
 * j), and the memory rows [F(s) | E(s)] gathered once per chunk; plus the state updates of the
 * running top-m_e candidates and of the frozen memory.
 *
 * Positions are absolute ints (the launcher checks pos0 + T < INT_MAX). The call covers
 * positions pos0 .. pos0+T-1, i.e. the chunks c = 0 .. NC-1 starting at s_c = sfirst + c*w,
 * sfirst = floor(pos0/w)*w. Segment c = the new positions of chunk c: max(pos0, s_c) ..
 * min(s_c+w, pos0+T)-1.
 * Scratch regions arrive as one base pointer plus element offsets (so the scratch may be any
 * buffer, sub-buffers included); int regions share the 4-byte slots.
 * Layout (scratch unless noted; M = m_f + m_e; "order" = eps descending, then position
 * ascending — a total order, so every list below is unique):
 *   eps      [B*T]                 from bm_bmojo_innovation
 *   top_eps, top_pos [B, NC, m_e]  best min(m_e, |segment c|) of segment c, in order
 *   sel      [B, NC, m_e] int      E(s_c) for chunks with s_c >= pos0: entry e = source of the
 *                                  e-th best position < s_c: >= 0: new row (position - pos0);
 *                                  < 0: old candidate slot -(src+1) of the state
 *   work_*   [B, 2, m_e]           the running list (double buffer) of the merge
 *   fin_src  [B, m_e] int          sources of the new candidate list (same encoding)
 *   memk/v   [B, NC, Hkv, M, dh]   chunk memory, slot layout as the state's mem_k (ops_bmojo.h):
 *                                  j < m_f: fading position s-m_f+j, zero row when < 0;
 *                                  m_f+e: e-th eidetic, zero row when e >= min(m_e, s)
 *   state cand_eps/cand_pos [B, m_e] (rw), cand_k/v [B, Hkv, m_e, dh], mem_k/v [B, Hkv, M, dh],
 *   fade_k/v [B, Hkv, m_f, dh] ring.
 *
 * Design (selection cost O(T*m_e), never T^2):
 *  1. bm_bmojo_chunk_top, one work-group per (chunk, b), parallel over chunks: m_e rounds, each
 *     an argmax over the segment of the best element strictly worse (in the order) than the
 *     previous round's pick — no "taken" marks needed because the order is total. Work
 *     m_e * (w/WG + log WG) per chunk. Considered a per-item insertion list (serial in w) and
 *     rank-by-counting (w^2 per chunk); the rounds are parallel and linear in w*m_e.
 *  2. bm_bmojo_merge, one work-group per sequence, sequential over the NC chunks of the call
 *     (T/w steps): the running top-m_e R (initialised from the state's candidates) is
 *     E(s_c) when s_c >= pos0, then R <- top-m_e(R ∪ top_c) by a parallel merge-by-rank (each
 *     element's output slot = its index + the number of elements of the other list that beat
 *     it, found by binary search). Lists live in global scratch (any m_e fits; a global fence
 *     barrier suffices inside one work-group). At the end R is the new candidate list.
 *  3. bm_bmojo_gather_mem: memory rows of every chunk into scratch, read through the index
 *     lists from the new Kf/Vf/Kx/Vx views, the fade ring and the OLD candidate rows (or, for a
 *     first chunk entered mid-way, copied from the frozen state memory). Then
 *     bm_bmojo_gather_cand collects the new candidates' K/V into scratch (old candidate slots
 *     are sources, so writing the state in place would race) and the launcher copies them
 *     back; bm_bmojo_mem_save freezes the last chunk's memory into the state. */

#ifndef BM_BMOJO_SEL_WG
#define BM_BMOJO_SEL_WG BM_WG
#endif

/* a better than b in the eidetic order */
static inline int bm_bmojo_better(float ea, int pa, float eb, int pb) { return ea > eb || (ea == eb && pa < pb); }

/* global (BM_WG*NC, B), local (BM_WG, 1). */
__kernel void bm_bmojo_chunk_top(__global float *scr, const ulong eps_off, const ulong top_eps_off,
                                 const ulong top_pos_off, const int T, const int w, const int m_e,
                                 const int pos0, const int NC)
{
    __global const float *eps = scr + eps_off;
    __global float *top_eps = scr + top_eps_off;
    __global int *top_pos = (__global int *)(scr + top_pos_off);
    __local float le[BM_BMOJO_SEL_WG];
    __local int lp[BM_BMOJO_SEL_WG];
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int c = (int)get_group_id(0), b = (int)get_global_id(1);
    const int s = pos0 / w * w + c * w;
    const int a0 = max(pos0, s), a1 = min(s + w, pos0 + T);
    const int n = min(m_e, a1 - a0);
    __global const float *e_row = eps + (size_t)b * T - pos0; /* indexed by absolute position */
    float pe = 0.0f;
    int pp = -1; /* previous pick; -1: none yet */
    for (int r = 0; r < n; r++) {
        float be = 0.0f;
        int bp = -1;
        for (int p = a0 + lid; p < a1; p += lsz) {
            float e = e_row[p];
            if (pp >= 0 && !bm_bmojo_better(pe, pp, e, p)) continue;
            if (bp < 0 || bm_bmojo_better(e, p, be, bp)) {
                be = e;
                bp = p;
            }
        }
        le[lid] = be;
        lp[lid] = bp;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int off = lsz / 2; off > 0; off >>= 1) {
            if (lid < off) {
                int op = lp[lid + off];
                if (op >= 0 && (lp[lid] < 0 || bm_bmojo_better(le[lid + off], op, le[lid], lp[lid]))) {
                    le[lid] = le[lid + off];
                    lp[lid] = op;
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        pe = le[0];
        pp = lp[0];
        if (lid == 0) {
            top_eps[((size_t)b * NC + c) * m_e + r] = pe;
            top_pos[((size_t)b * NC + c) * m_e + r] = pp;
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* le/lp are rewritten by the next round */
    }
}

/* Number of the first n entries of a list (in order) that beat (e, p): they form a prefix. */
static inline int bm_bmojo_count_better(__global const float *le, __global const int *lp, int n, float e, int p)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (bm_bmojo_better(le[mid], lp[mid], e, p)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* global (BM_WG, B), local (BM_WG, 1): one group per sequence. */
__kernel void bm_bmojo_merge(__global float *scr, const ulong top_eps_off, const ulong top_pos_off,
                             __global float *cand_eps, __global int *cand_pos, const ulong sel_off,
                             const ulong fin_off, const ulong work_eps_off, const ulong work_pos_off,
                             const ulong work_src_off, const int T, const int w, const int m_e,
                             const int pos0, const int NC)
{
    __global const float *top_eps = scr + top_eps_off;
    __global const int *top_pos = (__global const int *)(scr + top_pos_off);
    __global int *sel = (__global int *)(scr + sel_off);
    __global int *fin_src = (__global int *)(scr + fin_off);
    __global float *work_eps = scr + work_eps_off;
    __global int *work_pos = (__global int *)(scr + work_pos_off);
    __global int *work_src = (__global int *)(scr + work_src_off);
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int b = (int)get_global_id(1);
    __global float *we = work_eps + (size_t)b * 2 * m_e;
    __global int *wp = work_pos + (size_t)b * 2 * m_e;
    __global int *ws = work_src + (size_t)b * 2 * m_e;
    int na = min(m_e, pos0);
    for (int e = lid; e < na; e += lsz) {
        we[e] = cand_eps[(size_t)b * m_e + e];
        wp[e] = cand_pos[(size_t)b * m_e + e];
        ws[e] = -(e + 1);
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
    int cur = 0;
    const int sfirst = pos0 / w * w;
    for (int c = 0; c < NC; c++) {
        const int s = sfirst + c * w;
        const int a0 = max(pos0, s), a1 = min(s + w, pos0 + T);
        const int nb = min(m_e, a1 - a0);
        __global const float *ae = we + cur * m_e;
        __global const int *ap = wp + cur * m_e;
        __global const int *as = ws + cur * m_e;
        __global float *oe = we + (1 - cur) * m_e;
        __global int *op = wp + (1 - cur) * m_e;
        __global int *os = ws + (1 - cur) * m_e;
        __global const float *be = top_eps + ((size_t)b * NC + c) * m_e;
        __global const int *bp = top_pos + ((size_t)b * NC + c) * m_e;
        if (s >= pos0) /* a chunk start in this call: its eidetic memory is R now */
            for (int e = lid; e < na; e += lsz) sel[((size_t)b * NC + c) * m_e + e] = as[e];
        for (int i = lid; i < na; i += lsz) {
            int r = i + bm_bmojo_count_better(be, bp, nb, ae[i], ap[i]);
            if (r < m_e) {
                oe[r] = ae[i];
                op[r] = ap[i];
                os[r] = as[i];
            }
        }
        for (int j = lid; j < nb; j += lsz) {
            int r = j + bm_bmojo_count_better(ae, ap, na, be[j], bp[j]);
            if (r < m_e) {
                oe[r] = be[j];
                op[r] = bp[j];
                os[r] = bp[j] - pos0;
            }
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
        cur = 1 - cur;
        na = min(m_e, na + nb);
    }
    for (int e = lid; e < na; e += lsz) {
        cand_eps[(size_t)b * m_e + e] = we[cur * m_e + e];
        cand_pos[(size_t)b * m_e + e] = wp[cur * m_e + e];
        fin_src[(size_t)b * m_e + e] = ws[cur * m_e + e];
    }
}

/* global (B*NC*Hkv*M*dh): memory rows of every chunk of the call. */
__kernel void bm_bmojo_gather_mem(__global const float *kf, __global const float *vf, const ulong f_ld,
                                  const ulong kf_col, const ulong vf_col,
                                  __global const float *kx, __global const float *vx, const ulong x_ld,
                                  const ulong kx_col, const ulong vx_col,
                                  __global const float *fade_k, __global const float *fade_v,
                                  __global const float *cand_k, __global const float *cand_v,
                                  __global const float *smem_k, __global const float *smem_v,
                                  __global float *scr, const ulong sel_off, const ulong memk_off,
                                  const ulong memv_off, const int B, const int T, const int Hkv,
                                  const int dh, const int w, const int m_f, const int m_e, const int pos0,
                                  const int NC)
{
    __global const int *sel = (__global const int *)(scr + sel_off);
    __global float *memk = scr + memk_off, *memv = scr + memv_off;
    const int M = m_f + m_e;
    const size_t gid = get_global_id(0);
    if (gid >= (size_t)B * NC * Hkv * M * dh) return;
    const int x = (int)(gid % dh);
    const size_t row = gid / dh; /* ((b*NC + c)*Hkv + g)*M + j */
    const int j = (int)(row % M);
    const int g = (int)((row / M) % Hkv);
    const int c = (int)((row / ((size_t)M * Hkv)) % NC);
    const int b = (int)(row / ((size_t)M * Hkv * NC));
    const int s = pos0 / w * w + c * w;
    float kval = 0.0f, vval = 0.0f;
    if (s < pos0) { /* the chunk pos0 falls in mid-way: its memory is frozen in the state */
        size_t src = (((size_t)b * Hkv + g) * M + j) * dh + x;
        kval = smem_k[src];
        vval = smem_v[src];
    } else if (j < m_f) {
        int p = s - m_f + j;
        if (p >= pos0) {
            size_t r = (size_t)b * T + (p - pos0);
            kval = kf[r * f_ld + kf_col + (size_t)g * dh + x];
            vval = vf[r * f_ld + vf_col + (size_t)g * dh + x];
        } else if (p >= 0) {
            size_t src = (((size_t)b * Hkv + g) * m_f + p % m_f) * dh + x;
            kval = fade_k[src];
            vval = fade_v[src];
        }
    } else {
        int e = j - m_f;
        if (e < s) { /* e < min(m_e, s) */
            int src = sel[((size_t)b * NC + c) * m_e + e];
            if (src >= 0) {
                size_t r = (size_t)b * T + src;
                kval = kx[r * x_ld + kx_col + (size_t)g * dh + x];
                vval = vx[r * x_ld + vx_col + (size_t)g * dh + x];
            } else {
                size_t o = (((size_t)b * Hkv + g) * m_e + (-src - 1)) * dh + x;
                kval = cand_k[o];
                vval = cand_v[o];
            }
        }
    }
    memk[gid] = kval;
    memv[gid] = vval;
}

/* global (B*Hkv*m_e*dh): K/V of the new candidate list into scratch (copied back by the host). */
__kernel void bm_bmojo_gather_cand(__global const float *kx, __global const float *vx, const ulong x_ld,
                                   const ulong kx_col, const ulong vx_col,
                                   __global const float *cand_k, __global const float *cand_v,
                                   __global float *scr, const ulong fin_off, const ulong nk_off,
                                   const ulong nv_off, const int B, const int T, const int Hkv, const int dh,
                                   const int m_e, const int count)
{
    __global const int *fin_src = (__global const int *)(scr + fin_off);
    __global float *nk = scr + nk_off, *nv = scr + nv_off;
    const size_t gid = get_global_id(0);
    if (gid >= (size_t)B * Hkv * m_e * dh) return;
    const int x = (int)(gid % dh);
    const size_t row = gid / dh; /* (b*Hkv + g)*m_e + e */
    const int e = (int)(row % m_e);
    const int g = (int)((row / m_e) % Hkv);
    const int b = (int)(row / ((size_t)m_e * Hkv));
    float kval = 0.0f, vval = 0.0f;
    if (e < count) {
        int src = fin_src[(size_t)b * m_e + e];
        if (src >= 0) {
            size_t r = (size_t)b * T + src;
            kval = kx[r * x_ld + kx_col + (size_t)g * dh + x];
            vval = vx[r * x_ld + vx_col + (size_t)g * dh + x];
        } else {
            size_t o = (((size_t)b * Hkv + g) * m_e + (-src - 1)) * dh + x;
            kval = cand_k[o];
            vval = cand_v[o];
        }
    }
    nk[gid] = kval;
    nv[gid] = vval;
}

/* global (B*Hkv*M*dh): state mem <- memory of chunk c of the call (the chunk of the last token). */
__kernel void bm_bmojo_mem_save(__global const float *scr, const ulong memk_off, const ulong memv_off,
                                __global float *smem_k, __global float *smem_v, const int B,
                                const int Hkv, const int M, const int dh, const int NC, const int c)
{
    __global const float *memk = scr + memk_off, *memv = scr + memv_off;
    const size_t gid = get_global_id(0);
    const size_t per = (size_t)Hkv * M * dh;
    if (gid >= (size_t)B * per) return;
    const size_t b = gid / per, rest = gid % per;
    smem_k[gid] = memk[(b * NC + c) * per + rest];
    smem_v[gid] = memv[(b * NC + c) * per + rest];
}
