/* bmojo_eidetic.cl — B'MOJO eidetic selection and chunk memory (model.md 2.4): for every chunk
 * start s met by a call, E(s) = the m_e positions j < s with the largest eps_j (ties: smaller
 * j), and the memory rows [F(s) | E(s)]; plus the state updates: the running top-m_e candidate
 * list and the frozen memory. bm_bmojo_step is the whole state update of a decoding step.
 *
 * Positions are absolute ints (the launcher checks pos0 + T < INT_MAX). A call covers
 * positions pos0 .. pos0+T-1, i.e. the chunks c = 0 .. NC-1 starting at s_c = sfirst + c*w,
 * sfirst = floor(pos0/w)*w. Segment c = the new positions of chunk c: max(pos0, s_c) ..
 * min(s_c+w, pos0+T)-1.
 * Where a candidate's Kx/Vx row lives (no candidate K/V store in the state): the state's mem
 * holds the memory of the chunk containing pos0-1, which starts at R = floor((pos0-1)/w)*w, so
 * its eidetic rows are E(R). The candidates (top-m_e of positions < pos0) at positions < R are
 * a prefix of E(R) in the same order (whatever beats one of them is older than R too, so it is
 * a candidate as well): the i-th of them, in list order, is mem row m_f + i. The others are at
 * positions R .. pos0-1, all inside the window ring (R >= pos0 - w): slot p % w.
 * Scratch regions arrive as one base pointer plus element offsets (so the scratch may be any
 * buffer, sub-buffers included); int regions share the 4-byte slots.
 * Layout (scratch unless noted; M = m_f + m_e; "order" = eps descending, then position
 * ascending — a total order, so every list below is unique):
 *   eps      [B*T]                 from bm_bmojo_innovation
 *   top_eps, top_pos [B, NC, m_e]  best min(m_e, |segment c|) of segment c, in order
 *   sel      [B, NC, m_e] int      E(s_c) for chunks with s_c >= pos0: entry e = source of the
 *                                  e-th best position < s_c: >= 0: that position (a new row
 *                                  when >= pos0, else the window ring); < 0: state mem
 *                                  eidetic row -(src+1)
 *   work_*   [B, 2, m_e]           the running list (double buffer) of the merge
 *   memk/v   [B, NC, Hkv, M, dh]   chunk memory, slot layout as the state's mem (ops_bmojo.h):
 *                                  j < m_f: fading position s-m_f+j, zero row when < 0;
 *                                  m_f+e: e-th eidetic, zero row when e >= min(m_e, s)
 *   state cand_eps/cand_pos [B, m_e] (rw); mem [2, B, Hkv, M, dh] (K rows, then V rows at
 *   element mem_v_off); fade_k/v [B, Hkv, m_f, dh] ring; win_k/v [B, Hkv, w, dh] ring.
 *
 * Prefill (T > 1; selection cost O(T*m_e), never T^2):
 *  1. bm_bmojo_chunk_top: rank by counting. Element i of a segment has rank = the number of
 *     elements of the segment that beat it (the order is total, so ranks are unique) and goes
 *     to slot rank when rank < m_e. The counts of one candidate are split over nparts work-items
 *     (the launcher aims at BM_BMOJO_RANK_KEYS compares per item), so the grid is
 *     ~n*nparts/L groups per chunk and the longest serial loop is ~BM_BMOJO_RANK_KEYS compares,
 *     whatever T and m_e. Work n^2 compares per chunk of n <= w new positions, i.e. T*w per
 *     call, next to the attention's T*w*H*dh*4 FLOPs: negligible on any device. Replaced m_e
 *     rounds of a group-wide argmax (one work-group per chunk, m_e * (w/WG + log WG) serial
 *     steps with barriers: at T 512, w 512, m_e 32, one group on a 132-CU H200 took 49 us).
 *     Also considered: a per-item insertion list (serial in w) and a two-level top-k (per-part
 *     top-m_e lists, then a merge: O(n*m_e) work but two launches or a serial merge).
 *  2. bm_bmojo_merge, one work-group per sequence, sequential over the NC chunks of the call
 *     (T/w steps): the running top-m_e R (initialised from the state's candidates, with their
 *     row sources as above) is E(s_c) when s_c >= pos0, then R <- top-m_e(R ∪ top_c) by a
 *     parallel merge-by-rank (each element's output slot = its index + the number of elements
 *     of the other list that beat it, found by binary search). Lists live in global scratch
 *     (any m_e fits; a global fence barrier suffices inside one work-group). At the end R is
 *     the new candidate list (eps and positions only: rows never move).
 *  3. bm_bmojo_gather_mem: memory rows of every chunk into scratch, read through the sources
 *     from the new Kf/Vf/Kx/Vx views, the fade and window rings and the old state memory (a
 *     first chunk entered mid-way is copied from the state memory); the attention reads them;
 *     bm_bmojo_state_save then freezes the last chunk's memory into the state (a training mix
 *     instead copies every E(s_c) out with bm_bmojo_sets_fill and saves no state).
 * Decoding (T = 1): bm_bmojo_step, one work-group per sequence, is the whole state update in
 * one launch (then the attention reads the state memory in place): at a chunk start it
 * rebuilds the memory from the rings and the old memory (w-1 of every w steps skip that), then
 * eps and the y history shift, the ring appends, and the insertion of the token into the
 * candidate list (eps/positions only: O(m_e) small moves, no K/V rows). Considered: deferring
 * the selection to the chunk start (needs w eps of state and a top-m_e of w at the boundary;
 * the insertion is cheaper than the launch it would save) and a separate boundary kernel (one
 * more launch; the rebuild must read the candidate list before the insertion rewrites it, which
 * one work-group per sequence orders with a barrier). */

#ifndef BM_BMOJO_SEL_WG
#define BM_BMOJO_SEL_WG BM_WG
#endif

/* a better than b in the eidetic order */
static inline int bm_bmojo_better(float ea, int pa, float eb, int pb) { return ea > eb || (ea == eb && pa < pb); }

/* global (nblk * L, NC, B), local (L, 1, 1), L <= BM_BMOJO_SEL_WG, nparts a power of two
 * dividing L: work-group (blk, c, b) ranks the CB = L / nparts candidates blk*CB .. of segment
 * c; item lid counts, for candidate lid % CB, the better elements among part lid / CB of the
 * segment (nparts consecutive ranges), the parts' counts are summed in local memory, and a
 * candidate of rank r < m_e is written to slot r (the order is total: the ranks of a segment
 * are a permutation, so slots 0 .. min(m_e, n)-1 are each written once). */
__kernel void bm_bmojo_chunk_top(__global float *scr, const ulong eps_off, const ulong top_eps_off,
                                 const ulong top_pos_off, const int T, const int w, const int m_e,
                                 const int pos0, const int NC, const int nparts)
{
    __local int cnt[BM_BMOJO_SEL_WG];
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int CB = L / nparts, ci = lid % CB, part = lid / CB;
    const int c = (int)get_group_id(1), b = (int)get_group_id(2);
    const int s = pos0 / w * w + c * w;
    const int a0 = max(pos0, s), n = min(s + w, pos0 + T) - a0;
    const int i = (int)get_group_id(0) * CB + ci; /* the candidate: segment element i */
    __global const float *seg = scr + eps_off + (size_t)b * T + (a0 - pos0);
    const int per = (n + nparts - 1) / nparts, j0 = min(n, part * per), j1 = min(n, j0 + per);
    float ei = 0.0f;
    int rank = 0;
    if (i < n) {
        ei = seg[i];
        /* positions are a0 + index, so index order is position order */
        for (int j = j0; j < j1; j++) rank += bm_bmojo_better(seg[j], j, ei, i);
    }
    /* not skipped when nparts is 1: with this barrier under `if (nparts > 1)` (uniform, so
     * legal) POCL 3.1 (x86, LLVM 15) returned wrong ranks for nparts > 1 */
    cnt[lid] = rank;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (part == 0)
        for (int q = 1; q < nparts; q++) rank += cnt[q * CB + ci];
    if (part == 0 && i < n && rank < m_e) {
        __global float *top_eps = scr + top_eps_off;
        __global int *top_pos = (__global int *)(scr + top_pos_off);
        top_eps[((size_t)b * NC + c) * m_e + rank] = ei;
        top_pos[((size_t)b * NC + c) * m_e + rank] = a0 + i;
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

/* global (L, B), local (L, 1), L <= BM_WG: one group per sequence (the launcher: the least power of
 * two >= m_e, so no item waits at the barriers with nothing to do). */
__kernel void bm_bmojo_merge(__global float *scr, const ulong top_eps_off, const ulong top_pos_off,
                             __global float *cand_eps, __global int *cand_pos, const ulong sel_off,
                             const ulong work_eps_off, const ulong work_pos_off, const ulong work_src_off,
                             const int T, const int w, const int m_e, const int pos0, const int NC)
{
    __global const float *top_eps = scr + top_eps_off;
    __global const int *top_pos = (__global const int *)(scr + top_pos_off);
    __global int *sel = (__global int *)(scr + sel_off);
    __global float *work_eps = scr + work_eps_off;
    __global int *work_pos = (__global int *)(scr + work_pos_off);
    __global int *work_src = (__global int *)(scr + work_src_off);
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int b = (int)get_global_id(1);
    __global float *we = work_eps + (size_t)b * 2 * m_e;
    __global int *wp = work_pos + (size_t)b * 2 * m_e;
    __global int *ws = work_src + (size_t)b * 2 * m_e;
    __global const int *cp = cand_pos + (size_t)b * m_e;
    int na = min(m_e, pos0);
    const int R = pos0 > 0 ? (pos0 - 1) / w * w : 0; /* start of the chunk of pos0-1 */
    for (int e = lid; e < na; e += lsz) {
        const int p = cp[e];
        int src = p;
        if (p < R) { /* row i of the state memory's E(R), i = older-than-R entries before e */
            int i = 0;
            for (int f = 0; f < e; f++) i += cp[f] < R;
            src = -(i + 1);
        }
        we[e] = cand_eps[(size_t)b * m_e + e];
        wp[e] = p;
        ws[e] = src;
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
                os[r] = bp[j]; /* a new position: its row is in this call's Kx/Vx */
            }
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
        cur = 1 - cur;
        na = min(m_e, na + nb);
    }
    for (int e = lid; e < na; e += lsz) {
        cand_eps[(size_t)b * m_e + e] = we[cur * m_e + e];
        cand_pos[(size_t)b * m_e + e] = wp[cur * m_e + e];
    }
}

/* A training mix's sets (train_sets, in the layout cl/bmojo_backward.cl reads) from position 0:
 * bm_bmojo_merge left E(s_c) in the scratch's sel [B, NC, m_e]; entries past min(m_e, s) are -1
 * here. global (>= B*NC*max(m_e,1)). */
__kernel void bm_bmojo_sets_fill(__global const float *scr, const ulong sel_off, __global int *sets,
                                 const int B, const int NC, const int w, const int m_e)
{
    const int mec = max(m_e, 1);
    const size_t gid = get_global_id(0);
    if (gid >= (size_t)B * NC * mec) return;
    const int e = (int)(gid % mec);
    const size_t bc = gid / mec;
    const int s = (int)(bc % NC) * w;
    int v = -1;
    if (e < min(m_e, s)) v = ((__global const int *)(scr + sel_off))[bc * m_e + e];
    sets[gid] = v;
}

/* global (B*NC*Hkv*M * ceil(dh/xper)): memory rows of every chunk of the call, xper columns of
 * a row per item (the launcher: 1 on GPUs, where neighbouring items read neighbouring columns;
 * the whole row on CPUs, where an item per element spent its time on the row's index
 * arithmetic: 0.55 ms a launch for a 2-layer MQAR B'MOJO's 49,152 elements on POCL). mem: the
 * state memory, V rows at element mem_v_off. */
__kernel void bm_bmojo_gather_mem(__global const float *kf, __global const float *vf, const ulong f_ld,
                                  const ulong kf_col, const ulong vf_col,
                                  __global const float *kx, __global const float *vx, const ulong x_ld,
                                  const ulong kx_col, const ulong vx_col,
                                  __global const float *fade_k, __global const float *fade_v,
                                  __global const float *win_k, __global const float *win_v,
                                  __global const float *mem, const ulong mem_v_off,
                                  __global float *scr, const ulong sel_off, const ulong memk_off,
                                  const ulong memv_off, const int B, const int T, const int Hkv,
                                  const int dh, const int w, const int m_f, const int m_e, const int pos0,
                                  const int NC, const int xper)
{
    __global const int *sel = (__global const int *)(scr + sel_off);
    const int M = m_f + m_e, nxb = (dh + xper - 1) / xper;
    const size_t gid = get_global_id(0);
    if (gid >= (size_t)B * NC * Hkv * M * nxb) return;
    const int x0 = (int)(gid % nxb) * xper, x1 = min(dh, x0 + xper);
    const size_t row = gid / nxb; /* ((b*NC + c)*Hkv + g)*M + j */
    const int j = (int)(row % M);
    const int g = (int)((row / M) % Hkv);
    const int c = (int)((row / ((size_t)M * Hkv)) % NC);
    const int b = (int)(row / ((size_t)M * Hkv * NC));
    const int s = pos0 / w * w + c * w;
    const size_t mrow = ((size_t)b * Hkv + g) * M; /* row 0 of (b, g) in the state memory */
    /* the source row (k, v), or none: a zero row */
    __global const float *ks = 0, *vs = 0;
    if (s < pos0) { /* the chunk pos0 falls in mid-way: its memory is frozen in the state */
        ks = mem + (mrow + j) * dh;
        vs = mem + mem_v_off + (mrow + j) * dh;
    } else if (j < m_f) {
        int p = s - m_f + j;
        if (p >= pos0) {
            size_t r = (size_t)b * T + (p - pos0);
            ks = kf + r * f_ld + kf_col + (size_t)g * dh;
            vs = vf + r * f_ld + vf_col + (size_t)g * dh;
        } else if (p >= 0) {
            size_t o = (((size_t)b * Hkv + g) * m_f + p % m_f) * dh;
            ks = fade_k + o;
            vs = fade_v + o;
        }
    } else {
        int e = j - m_f;
        if (e < s) { /* e < min(m_e, s) */
            int src = sel[((size_t)b * NC + c) * m_e + e];
            if (src >= pos0) {
                size_t r = (size_t)b * T + (src - pos0);
                ks = kx + r * x_ld + kx_col + (size_t)g * dh;
                vs = vx + r * x_ld + vx_col + (size_t)g * dh;
            } else if (src >= 0) {
                size_t o = (((size_t)b * Hkv + g) * w + src % w) * dh;
                ks = win_k + o;
                vs = win_v + o;
            } else {
                size_t o = (mrow + m_f + (-src - 1)) * dh;
                ks = mem + o;
                vs = mem + mem_v_off + o;
            }
        }
    }
    __global float *mk = scr + memk_off + row * dh, *mv = scr + memv_off + row * dh;
    for (int x = x0; x < x1; x++) {
        mk[x] = ks ? ks[x] : 0.0f;
        mv[x] = vs ? vs[x] : 0.0f;
    }
}

/* Item gid < B*Hkv*M*dh of the prefill's state save (bm_bmojo_state_save): state mem <- memory
 * of chunk c of the call (the chunk of the last token). */
static inline void bm_bmojo_mem_save(size_t gid, __global const float *memk, __global const float *memv,
                                     __global float *mem, const ulong mem_v_off, const int Hkv, const int M,
                                     const int dh, const int NC, const int c)
{
    const size_t per = (size_t)Hkv * M * dh;
    const size_t b = gid / per, rest = gid % per;
    mem[gid] = memk[(b * NC + c) * per + rest];
    mem[mem_v_off + gid] = memv[(b * NC + c) * per + rest];
}

/* A decoding step's state update (T = 1, position pos0), in two halves so that a fused decoding
 * step can run each beside other work (src/ops/op_bmojo.c):
 *  pre (before the attention, which needs it; reads only what earlier tokens left):
 *   1. at a chunk start (pos0 % w == 0): the new chunk's memory into mem, from the fade ring
 *      (F(pos0): the last m_f positions), the window ring (candidates at positions >= pos0-w)
 *      and the old memory (the others: a prefix of its E(pos0-w), see the top of this file).
 *      The old rows a new row reads are never above it, so each column is rebuilt in place
 *      walking the rows downwards. Skipped mid-chunk: the memory stays as it is.
 *   2. the window ring gets the token's Kx/Vx (slot pos0 % w: position pos0-w, outside this
 *      step's window and already read by 1).
 *  post (after pre, which read the fade slot and the candidate list it changes):
 *   3. eps of the token and the y history shift (each item owns its channels).
 *   4. the fade ring gets the token's Kf/Vf (slot pos0 % m_f).
 *   5. the token joins the candidate list (eps and position) if it ranks in the top m_e: the
 *      entries below its rank move down one slot in blocks of the group size, top block first.
 * Each half is one work-group per sequence b (lid, lsz: its items); every ordering inside a half
 * is a barrier inside the group. post's eps is the same tree over the same group size as the
 * prefill's bm_bmojo_innovation (BM_WG items), so both paths select the same tokens. */
/* Parameters of the two halves, shared by the kernels that run them (bm_bmojo_step below,
 * bm_scan_step_bmojo_pre, and bm_gemv4_bmojo_post in cl/gemv.cl); pf is a name prefix, so that one
 * kernel can take both lists (the halves share some buffers). */
#define BM_BMOJO_PRE_PARAMS(pf)                                                                    \
    __global const float *pf##kx, __global const float *pf##vx, const ulong pf##x_ld, const ulong pf##kx_col,  \
        const ulong pf##vx_col, __global float *pf##win_k, __global float *pf##win_v,                          \
        __global const float *pf##fade_k, __global const float *pf##fade_v, __global const float *pf##cand_eps, \
        __global const int *pf##cand_pos, __global float *pf##mem, const ulong pf##mem_v_off, const int pf##Hkv, \
        const int pf##dh, const int pf##w, const int pf##m_f, const int pf##m_e, const int pf##pos0
#define BM_BMOJO_PRE_ARGS(pf)                                                                                  \
    pf##kx, pf##vx, pf##x_ld, pf##kx_col, pf##vx_col, pf##win_k, pf##win_v, pf##fade_k, pf##fade_v, pf##cand_eps, \
        pf##cand_pos, pf##mem, pf##mem_v_off, pf##Hkv, pf##dh, pf##w, pf##m_f, pf##m_e, pf##pos0
#define BM_BMOJO_POST_PARAMS(pf)                                                                   \
    __global const float *pf##y, __global float *pf##y_hist, const int pf##d, const int pf##k,              \
        const float16 pf##taps, __global const float *pf##kf, __global const float *pf##vf, const ulong pf##f_ld, \
        const ulong pf##kf_col, const ulong pf##vf_col, __global float *pf##fade_k, __global float *pf##fade_v, \
        __global float *pf##cand_eps, __global int *pf##cand_pos, const int pf##Hkv, const int pf##dh,          \
        const int pf##m_f, const int pf##m_e, const int pf##pos0
#define BM_BMOJO_POST_ARGS(pf)                                                                                 \
    pf##y, pf##y_hist, pf##d, pf##k, pf##taps, pf##kf, pf##vf, pf##f_ld, pf##kf_col, pf##vf_col, pf##fade_k,     \
        pf##fade_v, pf##cand_eps, pf##cand_pos, pf##Hkv, pf##dh, pf##m_f, pf##m_e, pf##pos0

static inline void bm_bmojo_step_pre(const int b, const int lid, const int lsz, BM_BMOJO_PRE_PARAMS())
{
    const int M = m_f + m_e, ncol = Hkv * dh;
    __global const int *cp = cand_pos + (size_t)b * m_e;
    const int na = min(m_e, pos0); /* valid candidates */
    (void)cand_eps;

    /* 1. chunk start */
    if (M > 0 && pos0 % w == 0) {
        const int R = pos0 - w; /* the old memory's chunk start (its rows are E(R)) */
        int nold_all = 0;
        for (int e = 0; e < na; e++) nold_all += cp[e] < R;
        for (int col = lid; col < ncol; col += lsz) {
            const int g = col / dh, x = col - g * dh;
            const size_t mrow = ((size_t)b * Hkv + g) * M;
            for (int j = 0; j < m_f; j++) {
                const int p = pos0 - m_f + j;
                float kv = 0.0f, vv = 0.0f;
                if (p >= 0) {
                    size_t o = (((size_t)b * Hkv + g) * m_f + p % m_f) * dh + x;
                    kv = fade_k[o];
                    vv = fade_v[o];
                }
                mem[(mrow + j) * dh + x] = kv;
                mem[mem_v_off + (mrow + j) * dh + x] = vv;
            }
            int nold = nold_all;
            for (int e = m_e - 1; e >= 0; e--) {
                float kv = 0.0f, vv = 0.0f;
                if (e < na) {
                    const int p = cp[e];
                    if (p >= R) {
                        size_t o = (((size_t)b * Hkv + g) * w + p % w) * dh + x;
                        kv = win_k[o];
                        vv = win_v[o];
                    } else {
                        nold--; /* = the number of older-than-R entries before e */
                        size_t o = (mrow + m_f + nold) * dh + x;
                        kv = mem[o];
                        vv = mem[mem_v_off + o];
                    }
                }
                mem[(mrow + m_f + e) * dh + x] = kv;
                mem[mem_v_off + (mrow + m_f + e) * dh + x] = vv;
            }
        }
    }

    /* 2. window ring append (the item that read a column's old slot in 1 writes it) */
    for (int col = lid; col < ncol; col += lsz) {
        const int g = col / dh, x = col - g * dh;
        const size_t o = (((size_t)b * Hkv + g) * w + pos0 % w) * dh + x;
        win_k[o] = kx[(size_t)b * x_ld + kx_col + col];
        win_v[o] = vx[(size_t)b * x_ld + vx_col + col];
    }
}

static inline void bm_bmojo_step_post(const int b, const int lid, const int lsz, __local float *part,
                                      BM_BMOJO_POST_PARAMS())
{
    const int ncol = Hkv * dh;
    __global float *ce = cand_eps + (size_t)b * m_e;
    __global int *cp = cand_pos + (size_t)b * m_e;
    const int na = min(m_e, pos0); /* valid candidates */
    /* The half is a chain of memory round trips in one work-group (it decides how long its launch
     * takes), so every load that does not wait on a result is issued first: the item's first
     * candidate entry here, the innovation's inputs next (their loop stores nothing). Before, the
     * y history shift stored inside the innovation loop (each channel's loads waited on the last
     * channel's stores) and the rank was a binary search (log2(m_e) dependent loads). */
    float held_e = 0.0f;
    int held_p = 0;
    if (lid < na) {
        held_e = ce[lid];
        held_p = cp[lid];
    }

    /* 3. innovation (per item over its channels in the prefill's order), then the y history shift */
    float c[16];
    vstore16(taps, 0, c);
    float sum = 0.0f;
    __global float *hist = y_hist + (size_t)b * k * d;
    if (m_e > 0)
        for (int ch = lid; ch < d; ch += lsz) {
            float prev[16];
            for (int i = 1; i <= k; i++) prev[i - 1] = hist[(size_t)(k - i) * d + ch];
            sum += bm_bmojo_innov_sq(y[(size_t)b * d + ch], prev, c, k);
        }
    for (int ch = lid; ch < d; ch += lsz) { /* the rows just read (cache hits), then the stores */
        __global float *h = hist + ch;
        float prev[16];
        for (int i = 1; i < k; i++) prev[i - 1] = h[(size_t)i * d];
        for (int i = 0; i + 1 < k; i++) h[(size_t)i * d] = prev[i];
        h[(size_t)(k - 1) * d] = y[(size_t)b * d + ch];
    }

    /* 4. fade ring append */
    if (m_f > 0)
        for (int col = lid; col < ncol; col += lsz) {
            const int g = col / dh, x = col - g * dh;
            const size_t of = (((size_t)b * Hkv + g) * m_f + pos0 % m_f) * dh + x;
            fade_k[of] = kf[(size_t)b * f_ld + kf_col + col];
            fade_v[of] = vf[(size_t)b * f_ld + vf_col + col];
        }

    /* 5. candidate list: the rank r = how many entries beat the token (a prefix of the sorted
     * list), counted in parallel and summed over the group (exact in float below 2^24) */
    if (m_e > 0) {
        const float eps = bm_bmojo_group_sum(part, sum);
        int cnt = lid < na ? bm_bmojo_better(held_e, held_p, eps, pos0) : 0;
        for (int i = lid + lsz; i < na; i += lsz) cnt += bm_bmojo_better(ce[i], cp[i], eps, pos0);
        const int r = (int)bm_bmojo_group_sum(part, (float)cnt);
        const int n = min(na, m_e - 1) - r; /* entries r .. r+n-1 move to r+1 .. r+n */
        barrier(CLK_GLOBAL_MEM_FENCE);      /* every item has read the list before it moves */
        if (na <= lsz) {                    /* one block: each item moves the entry it holds */
            if (lid >= r && lid < r + n) {
                ce[lid + 1] = held_e;
                cp[lid + 1] = held_p;
            }
        } else {                            /* longer lists move in blocks of lsz, top block first */
            for (int top = n; top > 0; top -= lsz) {
                const int i = top - 1 - lid;
                float ev = 0.0f;
                int pv = 0;
                if (i >= 0) {
                    ev = ce[r + i];
                    pv = cp[r + i];
                }
                barrier(CLK_GLOBAL_MEM_FENCE);
                if (i >= 0) {
                    ce[r + i + 1] = ev;
                    cp[r + i + 1] = pv;
                }
                barrier(CLK_GLOBAL_MEM_FENCE);
            }
        }
        if (lid == 0 && r < m_e) {
            ce[r] = eps;
            cp[r] = pos0;
        }
    }
}

/* The whole update in one launch (the two halves' parameter lists, the shared buffers passed to
 * both): global (BM_WG, B), local (BM_WG, 1). */
__kernel void bm_bmojo_step(BM_BMOJO_PRE_PARAMS(), BM_BMOJO_POST_PARAMS(post_))
{
    __local float part[BM_BMOJO_INNOV_WG];
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int b = (int)get_global_id(1);
    bm_bmojo_step_pre(b, lid, lsz, BM_BMOJO_PRE_ARGS());
    barrier(CLK_GLOBAL_MEM_FENCE); /* pre has read the candidate list and the fade slot */
    bm_bmojo_step_post(b, lid, lsz, part, BM_BMOJO_POST_ARGS(post_));
}

/* Decoding fusion (B'MOJO sublayer, T = 1): the Mamba scan step (cl/scan.cl) and the B'MOJO
 * pre-attention state update in one launch. They touch disjoint buffers, and the attention that
 * needs both comes in a later launch. Groups x < G run the scan step's channel groups, group x == G
 * the pre half of bm_bmojo_step for sequence y. global ((G + 1) * L, B), local (L, 1). */
__kernel void bm_scan_step_bmojo_pre(int di, int n, int R, __global const float *u,
                                     __global const float *bc, uint bc_ld, uint b_col, uint c_col,
                                     __global const float *Wdt, __global const float *dt_bias,
                                     __global const float *A, __global const float *Dv,
                                     __global const float *z, uint z_ld, uint z_col,
                                     __global float *state, __global float *y, __local float *part,
                                     BM_BMOJO_PRE_PARAMS())
{
    const int g = (int)get_group_id(0), G = (int)get_num_groups(0) - 1, b = (int)get_group_id(1);
    if (g < G)
        bm_scan_step_body(g, b, di, n, R, u, bc, bc_ld, b_col, c_col, Wdt, dt_bias, A, Dv, z, z_ld, z_col, state, y,
                          part);
    else
        bm_bmojo_step_pre(b, (int)get_local_id(0), (int)get_local_size(0), BM_BMOJO_PRE_ARGS());
}
