/* bmojo_attention.cl — B'MOJO attention (model.md 2.5): query t attends, in one softmax, over
 * [F(s(t)) | E(s(t)) | W(t)]: the memory rows of its chunk (gathered once per chunk by
 * bm_bmojo_gather_mem) and its window, read in place; plus the prefill's state save (rings,
 * frozen memory, y history: bm_bmojo_state_save).
 *
 * Layout (fp32, row-major; M = m_f + m_e; NC chunks touched by the call, chunk c starts at
 * s_c = floor(pos0/w)*w + c*w):
 *   q      [B*T, q_ld], head h at q_col + h*dh
 *   kx, vx [B*T, x_ld], kv head g at kx_col/vx_col + g*dh (the new tokens' window keys/values)
 *   win_k/v [B, Hkv, w, dh] ring: position p < pos0 in slot p % w (the window's older part)
 *   memk/v [B, NC, Hkv, M, dh] chunk memory (a scratch region: base + element offset); slot j < m_f valid iff s_c - m_f + j >= 0, slot
 *          m_f+e valid iff e < min(m_e, s_c); invalid slots are masked (their rows are zero)
 *   out    [B*T, out_ld], head h at columns h*dh
 *   lse    NULL, or [B*T, H]: row t's log-sum-exp over its keys of the scaled scores, m + log l
 *          (training's forward hands it to the backward: cl/bmojo_backward.cl); written by every
 *          body when unsplit (the launcher does not split a call that asks for it)
 *
 * Design: one work-group per (query tile of QT tokens, kv head g, sequence b) that serves all
 * rep = H/Hkv query heads of g, so each K/V tile loaded into local memory is used by R = QT*rep
 * query rows (GQA sharing). The keys of the group are the concatenation of the memories of
 * the chunks its tokens lie in (usually 1, at most a few) and the union of their windows
 * (positions max(0, P0-w+1) .. P1, contiguous); a per-(row, key) mask applies each row's own
 * chunk and window. Keys go in tiles of KT through an online softmax (running max m, sum l,
 * rescale alpha), so nothing is ever T x T and work per query is O(M + w + QT). The score tile
 * S [R, KT] is shared: items compute dot products over (row, key) pairs, then R items update
 * the row statistics, then items update O over (row, dim) pairs — every phase uses the whole
 * group whatever dh is. dh is a runtime argument (up to 256 or more): QT and KT are chosen by
 * the launcher so that Q, O, K, V and S tiles fit the device's local memory (passed as
 * __local arguments). Considered: one work-item per query with private O[dh] (no local
 * memory, but dh up to 256 floats per item spills registers on GPUs and gives no GQA reuse);
 * copying memory and window into one interleaved key list per chunk as in the paper's layout
 * (simpler masks but writes O(T*(w+M)) extra data); the per-row masks on a shared key union
 * cost at most (QT-1) extra masked keys per window tile. Tile sizes: see op_bmojo.c (small key
 * tiles, 8, measured fastest on an H200: 2x faster than 32).
 *
 * Prefill uses bm_bmojo_attn_tiled2/4 instead (same keys and masks, the register-tiled phases of
 * cl/attention.cl: each work-item owns 4 rows x 4 keys of S and 4 rows x 8 columns of O in
 * registers, float4 local loads, row max/sum exchanged through a small local array; launcher:
 * bmojo_attention_tiled in op_bmojo.c with bm_attn_tiled_choose's plan); bm_bmojo_attn stays for
 * decoding (rep rows) and dh > 128. Measured on an H200 (NVIDIA OpenCL, fp32), bench --ops
 * bmojo_mix (T 2048, w 512, m_f 4, m_e 32, 12/4 heads of 64; attention is most of it):
 * bm_bmojo_attn 1985.9 us -> tiled 332.1 us (6.0x); tiled with 2 rows per work-item and 256
 * work-items 427.4 us, with 32 rows per work-group 452.3 us, with the next K/V tile prefetched
 * into registers 428.0 us (spills). Decoding unchanged (generic kernel).
 *
 * Decoding split over keys (T = 1): one query tile of rep rows per (kv head, sequence) is only
 * Hkv*B work-groups, each walking its ~M + w keys tile after tile (an H200 with 4 groups and 548
 * keys: 174 us, almost all of the decoding step). bm_bmojo_attn therefore also takes nsplit and
 * KS: group id 0 = tile * nsplit + split, and split s walks keys [s*KS, (s+1)*KS) of the list
 * (the last split the rest; splits past the end are empty), then writes its unnormalized O rows
 * and (m, l) to `part` in bm_attn_combine's layout (cl/attention.cl), which merges the splits
 * as for the plain attention. Chosen over a separate decode kernel because the per-split work is
 * exactly the existing tile loop over a sub-range (same masks, same key list); the split count
 * comes from the device's compute units and the key count (op_bmojo.c, bmojo_auto_split).
 *
 * Prefill split over keys (small T): the tiled kernel has ceil(T/QT) * Hkv * B work-groups,
 * QT = 64 rows / rep heads (21 tokens for bmojo-130m, 12/4 heads of 64), and each walks its
 * whole key list, ~M + w + QT keys = 18 tiles of 32 at w 512, M 36. At T 512 that is 100
 * work-groups for an H200's 132 compute units, and a prefill of 512 tokens took 182 us per
 * layer, about what 392 groups take at T 2048 (205 us): the serial walk over the key tiles, not
 * the device's throughput, set the time. So bm_bmojo_attn_tiled2/4 also take nsplit and part:
 * group id 0 = tile * nsplit + split, split s walks keys [s*per, (s+1)*per) of the tile's list,
 * per = ceil(Nk/nsplit) rounded up to whole BK-key tiles (the tiles are then those of the
 * unsplit walk; splits past the end are empty and report m = -inf), and writes unnormalized O
 * and (m, l) for bm_attn_combine exactly as bm_bmojo_attn does. The launcher (op_bmojo.c,
 * bmojo_prefill_split) splits only on GPUs with fewer than 2 groups per compute unit, aiming at
 * 3 per unit with at least 2 key tiles per split: bmojo-130m on an H200, T 512 -> 4 splits (400
 * groups of ~5 tiles, plus a combine over 4 partial rows: ~6.5 MB through memory, a few us);
 * T 2048 -> no split, no extra launch; CPUs -> no split (the groups already outnumber the
 * cores). Smaller query tiles were the other option: they also add groups, but cut the K/V
 * reuse per loaded tile (64 -> 32 rows was 26 % slower at T 2048, see cl/attention.cl) and do
 * not shorten the walk (a tile of any QT still sees its whole window of w keys). */

/* Row pointer of key kk of the group's key list (memory segments first, then the window). */
static inline size_t bm_bmojo_key_off(int kk, int nmem, int M, int c0, int plo, int b, int g, int T, int Hkv,
                               int dh, int w, int pos0, int NC, size_t x_ld, int *is_new)
{
    if (kk < nmem) {
        int c = c0 + kk / M, j = kk % M;
        *is_new = 0;
        return ((((size_t)b * NC + c) * Hkv + g) * M + j) * dh;
    }
    int p = plo + (kk - nmem);
    if (p >= pos0) {
        *is_new = 1;
        return ((size_t)b * T + (p - pos0)) * x_ld + (size_t)g * dh; /* + the K or V column */
    }
    *is_new = 2;
    return (((size_t)b * Hkv + g) * w + p % w) * dh;
}

/* The work of group (grp, g, b) of bm_bmojo_attn (grp = query tile x split, g = kv head, b =
 * sequence of B); also run by the fused decoding launch in cl/gemv.cl. */
/* bm_bmojo_attn's parameters, shared with its body and with the fused decoding launch in
 * cl/gemv.cl. */
#define BM_BMOJO_ATTN_PARAMS                                                                                  \
    __global const float *q, const ulong q_ld, const ulong q_col, __global const float *kx,                  \
        __global const float *vx, const ulong x_ld, const ulong kx_col, const ulong vx_col,                   \
        __global const float *win_k, __global const float *win_v, __global const float *scr,                  \
        const ulong memk_off, const ulong memv_off, __global float *out, const ulong out_ld,                   \
        __global float *lse, const int T, const int H, const int Hkv, const int dh, const int w, const int m_f, \
        const int m_e, const int pos0, const int NC, const float scale, const int QT, const int KT,            \
        const int nsplit, const int KS,                                                                        \
        __global float *part, __local float *Qs, __local float *Os, __local float *Ks, __local float *Vs,     \
        __local float *S, __local float *st
#define BM_BMOJO_ATTN_ARGS                                                                                    \
    q, q_ld, q_col, kx, vx, x_ld, kx_col, vx_col, win_k, win_v, scr, memk_off, memv_off, out, out_ld, lse, T, H, \
        Hkv, dh, w, m_f, m_e, pos0, NC, scale, QT, KT, nsplit, KS, part, Qs, Os, Ks, Vs, S, st

static inline void bm_bmojo_attn_body(const int grp, const int g, const int b, const int B,
                                      BM_BMOJO_ATTN_PARAMS)
{
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int tile = grp / nsplit, split = grp - tile * nsplit;
    const int rep = H / Hkv, R = QT * rep, M = m_f + m_e;
    const int t0 = tile * QT, t1 = min(T, t0 + QT) - 1;
    const int P0 = pos0 + t0, P1 = pos0 + t1;
    const int cbase = pos0 / w;
    const int c0 = P0 / w - cbase, c1 = P1 / w - cbase;
    const int nmem = M > 0 ? (c1 - c0 + 1) * M : 0;
    const int plo = max(0, P0 - w + 1);
    const int Nk = nmem + (P1 - plo + 1);
    /* this split's keys [kbeg, kend) of the list (the last split takes the rest) */
    const int kbeg = min(Nk, split * KS), kend = split == nsplit - 1 ? Nk : min(Nk, kbeg + KS);
    __global const float *memk = scr + memk_off, *memv = scr + memv_off;
    __local float *mrow = st, *lrow = st + R, *arow = st + 2 * R;

    for (int i = lid; i < R * dh; i += lsz) {
        int r = i / dh, x = i - r * dh;
        int t = t0 + r % QT, h = g * rep + r / QT;
        Qs[i] = t < T ? q[((size_t)b * T + t) * q_ld + q_col + (size_t)h * dh + x] : 0.0f;
        Os[i] = 0.0f;
    }
    for (int r = lid; r < R; r += lsz) {
        mrow[r] = -INFINITY;
        lrow[r] = 0.0f;
    }

    for (int kt = kbeg; kt < kend; kt += KT) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < KT * dh; i += lsz) {
            int jj = i / dh, x = i - jj * dh, kk = kt + jj;
            float kv = 0.0f, vv = 0.0f;
            if (kk < kend) {
                int src;
                size_t o = bm_bmojo_key_off(kk, nmem, M, c0, plo, b, g, T, Hkv, dh, w, pos0, NC, x_ld, &src);
                if (src == 0) {
                    kv = memk[o + x];
                    vv = memv[o + x];
                } else if (src == 1) {
                    kv = kx[o + kx_col + x];
                    vv = vx[o + vx_col + x];
                } else {
                    kv = win_k[o + x];
                    vv = win_v[o + x];
                }
            }
            Ks[i] = kv;
            Vs[i] = vv;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < R * KT; i += lsz) {
            int r = i / KT, jj = i - r * KT, kk = kt + jj;
            int t = t0 + r % QT;
            int P = pos0 + t;
            int ok = t < T && kk < kend;
            if (ok) {
                if (kk < nmem) {
                    int c = c0 + kk / M, j = kk % M;
                    int s = (cbase + c) * w;
                    ok = (P / w - cbase) == c && (j < m_f ? (s - m_f + j >= 0) : (j - m_f < s));
                } else {
                    int p = plo + (kk - nmem);
                    ok = p <= P && p > P - w;
                }
            }
            float sc = -INFINITY;
            if (ok) {
                float dot = 0.0f;
                for (int x = 0; x < dh; x++) dot += Qs[r * dh + x] * Ks[jj * dh + x];
                sc = dot * scale;
            }
            S[i] = sc;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = lid; r < R; r += lsz) {
            float mx = -INFINITY;
            for (int jj = 0; jj < KT; jj++) mx = fmax(mx, S[r * KT + jj]);
            float m_old = mrow[r], m_new = fmax(m_old, mx);
            float alpha = 1.0f, sum = 0.0f;
            if (m_new == -INFINITY) {
                for (int jj = 0; jj < KT; jj++) S[r * KT + jj] = 0.0f;
            } else {
                alpha = exp(m_old - m_new);
                for (int jj = 0; jj < KT; jj++) {
                    float p = exp(S[r * KT + jj] - m_new);
                    S[r * KT + jj] = p;
                    sum += p;
                }
            }
            mrow[r] = m_new;
            lrow[r] = lrow[r] * alpha + sum;
            arow[r] = alpha;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < R * dh; i += lsz) {
            int r = i / dh, x = i - r * dh;
            float acc = Os[i] * arow[r];
            for (int jj = 0; jj < KT; jj++) acc += S[r * KT + jj] * Vs[jj * dh + x];
            Os[i] = acc;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (nsplit > 1) {
        /* partial results in bm_attn_combine's layout (cl/attention.cl): unnormalized O rows
         * [nsplit, B*Hkv, rep*T, dh], then (m, l) pairs; row t*rep + (h - g*rep) of group b*Hkv+g.
         * A split that saw no key of a row leaves m = -inf there, which the combine skips. */
        const size_t nbg = (size_t)B * Hkv, nrows = (size_t)rep * T;
        const size_t pbase = ((size_t)split * nbg + (size_t)b * Hkv + g) * nrows;
        __global float *pstat = part + (size_t)nsplit * nbg * nrows * dh;
        for (int i = lid; i < R * dh; i += lsz) {
            int r = i / dh, x = i - r * dh, t = t0 + r % QT;
            if (t < T) part[(pbase + (size_t)t * rep + r / QT) * dh + x] = Os[i];
        }
        for (int r = lid; r < R; r += lsz) {
            int t = t0 + r % QT;
            if (t < T) {
                const size_t pr = pbase + (size_t)t * rep + r / QT;
                pstat[pr * 2] = mrow[r];
                pstat[pr * 2 + 1] = lrow[r];
            }
        }
        return;
    }
    for (int i = lid; i < R * dh; i += lsz) {
        int r = i / dh, x = i - r * dh;
        int t = t0 + r % QT, h = g * rep + r / QT;
        if (t < T) out[((size_t)b * T + t) * out_ld + (size_t)h * dh + x] = Os[i] / lrow[r];
    }
    if (lse)
        for (int r = lid; r < R; r += lsz) {
            const int t = t0 + r % QT;
            if (t < T) lse[((size_t)b * T + t) * H + (size_t)(g * rep + r / QT)] = mrow[r] + log(lrow[r]);
        }
}

/* Decoding (T = 1) body: the same keys, masks, online softmax and outputs as bm_bmojo_attn_body
 * with QT = 1, organised for one query row per head instead of a tile of tokens. The generic
 * body spends a key tile in four phases where few work-items work: R * KT items each walk a
 * dot product of dh through local memory (same bank for every key of a warp), R items walk the
 * tile's keys serially for the softmax statistics, and every element of the K/V tiles looks up
 * its key's source with integer divisions. Measured on the H200 (12/4 heads of 64, 548 keys,
 * one work-group per kv head): 16 us per tile of 64 keys. Here, per block of KT keys (a power
 * of two <= the group size):
 *   1. the block's K and V rows into local memory, the group's items on consecutive columns
 *      (coalesced; the row's source found without divisions), row stride dh + 1; then item j
 *      computes key j's R scores from its K row (no bank conflict across keys; q is read by every
 *      item at one address: a broadcast). Reading each K row from global memory in its own item
 *      made every load instruction of a warp touch 32 rows: with 128-key blocks the launch took
 *      22-34 us on the H200 instead of ~10;
 *   2. the row maxima and the sums of exp(s - m) as trees over the block (log2 KT steps);
 *   3. item (r, x) updates O[r, x] over the block's keys (V read across x: consecutive banks).
 * Local arrays (the PARAMS' names): Qs, Os [R, dh]; Ks: the K rows [KT, dh + 1], then the trees'
 * R x KT; Vs [KT, dh + 1]; S [R, KT]; st: m, l, alpha per row. The launcher (op_bmojo.c) takes blocks of up to 128 keys
 * and splits the list into one block per work-group only where the groups would be too few.
 * Measured on the H200 (bmojo-130m decoding, tokens/s at depth 0 / 4096): with 16-key splits and
 * 32-key blocks this body gave 616 / 520 against the generic body's 594 / 504 (same run). */

/* Reduces the rows of S [R, KT] (KT a power of two) into red[r * KT]: their maxima (is_max) or
 * sums. Whole work-group; S is left as it is. */
static inline void bm_bmojo_rows_reduce(__local const float *S, __local float *red, const int R, const int KT,
                                        const int is_max, const int lid, const int lsz)
{
    if (KT == 1) {
        for (int r = lid; r < R; r += lsz) red[r] = S[r];
        barrier(CLK_LOCAL_MEM_FENCE);
        return;
    }
    __local const float *src = S;
    for (int span = KT / 2; span >= 1; span >>= 1) {
        for (int i = lid; i < R * span; i += lsz) {
            const int r = i / span, j = i - r * span;
            const float a = src[r * KT + j], c = src[r * KT + j + span];
            red[r * KT + j] = is_max ? fmax(a, c) : a + c;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        src = red;
    }
}

static inline void bm_bmojo_attn_decode_body(const int split, const int g, const int b, const int B,
                                             BM_BMOJO_ATTN_PARAMS)
{
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int R = H / Hkv, M = m_f + m_e, vld = dh + 1;
    const int s0 = pos0 / w * w; /* the token's chunk start: its memory is slots 0 .. M-1 */
    const int plo = max(0, pos0 - w + 1);
    const int Nk = M + (pos0 - plo + 1);
    const int kbeg = min(Nk, split * KS), kend = split == nsplit - 1 ? Nk : min(Nk, kbeg + KS);
    __global const float *memk = scr + memk_off, *memv = scr + memv_off;
    __local float *red = Ks, *mrow = st, *lrow = st + R, *arow = st + 2 * R;

    for (int i = lid; i < R * dh; i += lsz) {
        const int r = i / dh, x = i - r * dh;
        Qs[i] = q[(size_t)b * q_ld + q_col + (size_t)(g * R + r) * dh + x];
        Os[i] = 0.0f;
    }
    for (int r = lid; r < R; r += lsz) {
        mrow[r] = -INFINITY;
        lrow[r] = 0.0f;
    }

    const int s0w = pos0 % w;
    for (int k0 = kbeg; k0 < kend; k0 += KT) {
        barrier(CLK_LOCAL_MEM_FENCE); /* q loaded; the last block's S, K and V rows consumed */
        const int nb = min(KT, kend - k0);
        /* 1a. the block's K and V rows into local memory, consecutive items on consecutive
         * columns (coalesced); a row's source needs no division: memory slot kk, the new token,
         * or ring slot p % w = (p - pos0 + w + pos0 % w) mod w for pos0 - w < p < pos0 (the
         * tiled prefill body has the same lookup inline: one shared function made the T 512
         * prefill 0.4-1.2 % slower on the H200, three rounds) */
        for (int e = lid; e < nb * dh; e += lsz) {
            const int j = e / dh, x = e - j * dh, kk = k0 + j;
            float kv, vv;
            if (kk < M) {
                const size_t o = (((size_t)b * Hkv + g) * M + kk) * dh + x;
                kv = memk[o];
                vv = memv[o];
            } else {
                const int p = plo + (kk - M);
                if (p == pos0) {
                    const size_t o = (size_t)b * x_ld + (size_t)g * dh + x;
                    kv = kx[o + kx_col];
                    vv = vx[o + vx_col];
                } else {
                    int slot = p - pos0 + w + s0w;
                    if (slot >= w) slot -= w;
                    const size_t o = (((size_t)b * Hkv + g) * w + slot) * dh + x;
                    kv = win_k[o];
                    vv = win_v[o];
                }
            }
            Ks[j * vld + x] = kv;
            Vs[j * vld + x] = vv;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* 1b. item j: the scores of key j for the R rows (row stride dh + 1: no bank conflict
         * across keys; q is read at one address by all: a broadcast). A memory slot j is valid
         * for a fading position s0 - m_f + j >= 0, or the (j - m_f)-th of min(m_e, s0) eidetics
         * (a masked slot's row is zeros, so its p = 0 meets finite values in phase 3, which reads
         * only the block's nb rows). */
        if (lid < KT) {
            const int kk = k0 + lid;
            const int ok = lid < nb && (kk >= M || (kk < m_f ? s0 - m_f + kk >= 0 : kk - m_f < s0));
            for (int r = 0; r < R; r++) {
                float dot = 0.0f;
                if (ok)
                    for (int x = 0; x < dh; x++) dot += Qs[r * dh + x] * Ks[lid * vld + x];
                S[r * KT + lid] = ok ? dot * scale : -INFINITY;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        bm_bmojo_rows_reduce(S, red, R, KT, 1, lid, lsz);
        for (int r = lid; r < R; r += lsz) {
            const float m_old = mrow[r], m_new = fmax(m_old, red[r * KT]);
            arow[r] = m_new == -INFINITY ? 1.0f : exp(m_old - m_new);
            mrow[r] = m_new;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < R * KT; i += lsz) {
            const float m = mrow[i / KT];
            S[i] = m == -INFINITY ? 0.0f : exp(S[i] - m);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        bm_bmojo_rows_reduce(S, red, R, KT, 0, lid, lsz);
        for (int r = lid; r < R; r += lsz) lrow[r] = lrow[r] * arow[r] + red[r * KT];
        for (int i = lid; i < R * dh; i += lsz) {
            const int r = i / dh, x = i - r * dh;
            float acc = Os[i] * arow[r];
            for (int j = 0; j < nb; j++) acc += S[r * KT + j] * Vs[j * vld + x];
            Os[i] = acc;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (nsplit > 1) { /* bm_attn_combine's layout, as bm_bmojo_attn_body writes it (T = 1) */
        const size_t pbase = ((size_t)split * B * Hkv + (size_t)b * Hkv + g) * R;
        __global float *pstat = part + (size_t)nsplit * B * Hkv * R * dh;
        for (int i = lid; i < R * dh; i += lsz) part[pbase * dh + i] = Os[i];
        for (int r = lid; r < R; r += lsz) {
            pstat[(pbase + r) * 2] = mrow[r];
            pstat[(pbase + r) * 2 + 1] = lrow[r];
        }
        return;
    }
    for (int i = lid; i < R * dh; i += lsz) {
        const int r = i / dh, x = i - r * dh;
        out[(size_t)b * out_ld + (size_t)(g * R + r) * dh + x] = Os[i] / lrow[r];
    }
    if (lse)
        for (int r = lid; r < R; r += lsz) lse[(size_t)b * H + (size_t)(g * R + r)] = mrow[r] + log(lrow[r]);
}

/* The body for group (grp, g, b): the decoding one at T = 1 (the launcher sizes the local arrays
 * for it). */
static inline void bm_bmojo_attn_group(const int grp, const int g, const int b, const int B, BM_BMOJO_ATTN_PARAMS)
{
    if (T == 1)
        bm_bmojo_attn_decode_body(grp, g, b, B, BM_BMOJO_ATTN_ARGS);
    else
        bm_bmojo_attn_body(grp, g, b, B, BM_BMOJO_ATTN_ARGS);
}

/* global (ntiles*nsplit*BM_WG, Hkv, B), local (BM_WG, 1, 1). nsplit 1: results to out (part
 * unused); nsplit > 1: partial results to part, [nsplit, B*Hkv, rep*T, dh] then the (m, l)
 * pairs [nsplit, B*Hkv, rep*T, 2]. */
__kernel void bm_bmojo_attn(BM_BMOJO_ATTN_PARAMS)
{
    bm_bmojo_attn_group((int)get_group_id(0), (int)get_global_id(1), (int)get_global_id(2), (int)get_num_groups(2),
                        BM_BMOJO_ATTN_ARGS);
}

/* Register-tiled variant (the prefill path; see the top of this file): the shared phases of
 * cl/attention.cl (bm_attn_t_scores / _update / _rowsum) over the same key list and masks as
 * bm_bmojo_attn. Rows r < R = QT*rep of the work-group: token t0 + r % QT, head g*rep + r / QT.
 * The key list's source of key kk (memory slot of chunk c0 + cc, new token, or window ring)
 * is found without divisions: a tile spans few chunks (QT <= w), and a ring position p
 * (pos0 - w < p < pos0) is in slot (p - pos0 + w + pos0 % w) mod w. */
static BM_ATT_INLINE void bm_bmojo_attn_tiled_body(
    const int ND, const int TC, __global const float *q, const ulong q_ld, const ulong q_col,
    __global const float *kx, __global const float *vx, const ulong x_ld, const ulong kx_col, const ulong vx_col,
    __global const float *win_k, __global const float *win_v, __global const float *scr, const ulong memk_off,
    const ulong memv_off, __global float *out, const ulong out_ld, __global float *lse, const int T, const int H,
    const int Hkv, const int dh, const int w, const int m_f, const int m_e, const int pos0, const int NC,
    const float scale, const int QT, const int nsplit, __global float *part, __local float4 *qs4, __local float4 *kp4,
    __local float4 *vs4, __local float *red)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int NY = L / BM_ATT_NX, ty = lid / BM_ATT_NX, tx = lid - ty * BM_ATT_NX;
    const int BR = BM_ATT_TR * NY, BK = TC * BM_ATT_NX;
    const int tile = (int)get_group_id(0) / nsplit, split = (int)get_group_id(0) - tile * nsplit;
    const int g = (int)get_group_id(1), b = (int)get_group_id(2);
    const int rep = H / Hkv, R = QT * rep, M = m_f + m_e;
    const int t0 = tile * QT, t1 = min(T, t0 + QT) - 1;
    const int P0 = pos0 + t0, P1 = pos0 + t1;
    const int cbase = pos0 / w;
    const int c0 = P0 / w - cbase, c1 = P1 / w - cbase;
    const int nmem = M > 0 ? (c1 - c0 + 1) * M : 0;
    const int plo = max(0, P0 - w + 1);
    const int Nk = nmem + (P1 - plo + 1);
    /* this split's keys [kbeg, kend): whole BK-key tiles of the list, so that the tiles are the
     * unsplit kernel's (nsplit 1: all of it); splits past the end are empty */
    const int per = ((Nk + nsplit - 1) / nsplit + BK - 1) / BK * BK;
    const int kbeg = min(Nk, split * per), kend = min(Nk, kbeg + per);
    const int dq = (dh + 3) & ~3, dq4 = dq / 4, ldk4 = dq4 | 1, ldk = 4 * ldk4;
    const int s0w = pos0 % w;
    __global const float *memk = scr + memk_off, *memv = scr + memv_off;
    __local float *qs = (__local float *)qs4, *ks = (__local float *)kp4, *vs = (__local float *)vs4;

    for (int e = lid; e < BR * dq; e += L) {
        const int r = e / dq, d = e - r * dq;
        const int t = t0 + r % QT;
        float val = 0.0f;
        if (r < R && d < dh && t < T)
            val = scale * q[((size_t)b * T + t) * q_ld + q_col + (size_t)(g * rep + r / QT) * dh + d];
        qs[e] = val;
    }

    /* this work-item's rows: position and chunk (relative to cbase); unused rows match no key */
    int prow[BM_ATT_TR], crow[BM_ATT_TR];
    float m_run[BM_ATT_TR], l_run[BM_ATT_TR];
    float4 acc[BM_ATT_TR][BM_ATT_NDMAX];
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) {
        const int r = ty + NY * i, t = t0 + r % QT;
        const int ok = r < R && t < T;
        prow[i] = ok ? pos0 + t : INT_MIN;
        crow[i] = ok ? (pos0 + t) / w - cbase : -2;
        m_run[i] = -INFINITY;
        l_run[i] = 0.0f;
        #pragma unroll
        for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND) acc[i][jj] = (float4)(0.0f);
    }

    const int ldiv = L / dq, lmod = L - ldiv * dq, c_init = lid / dq, d_init = lid - c_init * dq;
    float s[BM_ATT_TR][BM_ATT_TCMAX];
    for (int kt = kbeg; kt < kend; kt += BK) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile's P and V are no longer read */
        for (int c = c_init, d = d_init; c < BK;) {
            const int kk = kt + c;
            float kval = 0.0f, vval = 0.0f;
            if (kk < kend && d < dh) {
                if (kk < nmem) {
                    int cc = 0, j = kk;
                    while (j >= M) {
                        j -= M;
                        cc++;
                    }
                    const size_t o = ((((size_t)b * NC + c0 + cc) * Hkv + g) * M + j) * dh + d;
                    kval = memk[o];
                    vval = memv[o];
                } else {
                    const int p = plo + (kk - nmem);
                    if (p >= pos0) {
                        const size_t o = ((size_t)b * T + (p - pos0)) * x_ld + (size_t)g * dh + d;
                        kval = kx[o + kx_col];
                        vval = vx[o + vx_col];
                    } else {
                        int slot = p - pos0 + w + s0w;
                        if (slot >= w) slot -= w;
                        const size_t o = (((size_t)b * Hkv + g) * w + slot) * dh + d;
                        kval = win_k[o];
                        vval = win_v[o];
                    }
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
        #pragma unroll
        for (int j = 0; j < BM_ATT_TCMAX; j++) if (j < TC) {
            const int kk = kt + tx + BM_ATT_NX * j;
            if (kk >= kend) {
                #pragma unroll
                for (int i = 0; i < BM_ATT_TR; i++) s[i][j] = -INFINITY;
            } else if (kk < nmem) {
                /* memory slot jm of chunk c0 + cc: seen by the rows of that chunk, if valid */
                int cc = 0, jm = kk;
                while (jm >= M) {
                    jm -= M;
                    cc++;
                }
                const int st = (cbase + c0 + cc) * w;
                const int valid = jm < m_f ? st - m_f + jm >= 0 : jm - m_f < st;
                const int kch = valid ? c0 + cc : -1;
                #pragma unroll
                for (int i = 0; i < BM_ATT_TR; i++)
                    if (crow[i] != kch) s[i][j] = -INFINITY;
            } else {
                const int p = plo + (kk - nmem);
                #pragma unroll
                for (int i = 0; i < BM_ATT_TR; i++)
                    if (!(p <= prow[i] && p > prow[i] - w)) s[i][j] = -INFINITY;
            }
        }
        bm_attn_t_update(s, m_run, l_run, acc, ND, TC, red, ks, vs4, dq4, ty, tx, NY);
    }
    bm_attn_t_rowsum(l_run, red, ty, tx, NY);

    if (nsplit > 1) {
        /* unnormalized O and (m, l) in bm_attn_combine's layout, as bm_bmojo_attn writes them:
         * row t*rep + j of group b*Hkv + g; a split that saw no key of a row leaves m = -inf */
        const size_t nbg = (size_t)get_num_groups(2) * Hkv, nrows = (size_t)rep * T;
        const size_t pbase = ((size_t)split * nbg + (size_t)b * Hkv + g) * nrows;
        __global float *pstat = part + (size_t)nsplit * nbg * nrows * dh;
        #pragma unroll
        for (int i = 0; i < BM_ATT_TR; i++) {
            const int r = ty + NY * i, t = t0 + r % QT;
            if (r >= R || t >= T) continue;
            const size_t pr = pbase + (size_t)t * rep + r / QT;
            #pragma unroll
            for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND)
                bm_store4_partial(part + pr * dh, 4 * (tx + BM_ATT_NX * jj), dh, acc[i][jj]);
            if (tx == 0) {
                pstat[pr * 2] = m_run[i];
                pstat[pr * 2 + 1] = l_run[i];
            }
        }
        return;
    }
    #pragma unroll
    for (int i = 0; i < BM_ATT_TR; i++) {
        const int r = ty + NY * i, t = t0 + r % QT;
        if (r >= R || t >= T) continue;
        const float inv = 1.0f / l_run[i];
        __global float *orow = out + ((size_t)b * T + t) * out_ld + (size_t)(g * rep + r / QT) * dh;
        #pragma unroll
        for (int jj = 0; jj < BM_ATT_NDMAX; jj++) if (jj < ND) {
            const int d0 = 4 * (tx + BM_ATT_NX * jj);
            bm_store4_partial(orow, d0, dh, acc[i][jj] * inv);
        }
        if (lse && tx == 0) lse[((size_t)b * T + t) * H + (size_t)(g * rep + r / QT)] = m_run[i] + log(l_run[i]);
    }
}

/* global (ntiles * nsplit * L, Hkv, B), local (L, 1, 1), group id 0 = tile * nsplit + split;
 * arguments as bm_bmojo_attn up to QT, nsplit and part (as bm_bmojo_attn's; unused when nsplit
 * is 1), then the four local arrays of bm_attn_tiled_choose's plan (op_attention.c). */
#define BM_BMOJO_TILED_PARAMS                                                                                 \
    __global const float *q, const ulong q_ld, const ulong q_col, __global const float *kx,                  \
        __global const float *vx, const ulong x_ld, const ulong kx_col, const ulong vx_col,                  \
        __global const float *win_k, __global const float *win_v, __global const float *scr,                 \
        const ulong memk_off, const ulong memv_off, __global float *out, const ulong out_ld,                 \
        __global float *lse, const int T, const int H, const int Hkv, const int dh, const int w, const int m_f, \
        const int m_e, const int pos0, const int NC, const float scale, const int QT, const int nsplit,      \
        __global float *part,                                                                                \
        __local float4 *qs4, __local float4 *kp4, __local float4 *vs4, __local float *red
#define BM_BMOJO_TILED_ARGS                                                                                   \
    q, q_ld, q_col, kx, vx, x_ld, kx_col, vx_col, win_k, win_v, scr, memk_off, memv_off, out, out_ld, lse, T, \
        H, Hkv, dh, w, m_f, m_e, pos0, NC, scale, QT, nsplit, part, qs4, kp4, vs4, red

__kernel void bm_bmojo_attn_tiled2(BM_BMOJO_TILED_PARAMS) { bm_bmojo_attn_tiled_body(2, 4, BM_BMOJO_TILED_ARGS); }
__kernel void bm_bmojo_attn_tiled4(BM_BMOJO_TILED_PARAMS) { bm_bmojo_attn_tiled_body(4, 2, BM_BMOJO_TILED_ARGS); }

/* Item gid < B*Hkv*n*dh, n = min(T, cap), of the prefill's state save: ring[b, g, p % cap] <-
 * row of position p for the last n new tokens (the window ring with Kx/Vx, the fading ring
 * with Kf/Vf). */
static inline void bm_bmojo_ring_save(size_t gid, __global const float *k, __global const float *v, const ulong ld,
                                      const ulong k_col, const ulong v_col, __global float *ring_k,
                                      __global float *ring_v, const int T, const int Hkv, const int dh,
                                      const int cap, const int pos0)
{
    const int n = min(T, cap);
    const int x = (int)(gid % dh);
    const size_t row = gid / dh; /* (b*Hkv + g)*n + i */
    const int i = (int)(row % n);
    const int g = (int)((row / n) % Hkv);
    const int b = (int)(row / ((size_t)n * Hkv));
    const int t = T - n + i, p = pos0 + t;
    const size_t r = (size_t)b * T + t;
    const size_t dst = (((size_t)b * Hkv + g) * cap + p % cap) * dh + x;
    ring_k[dst] = k[r * ld + k_col + (size_t)g * dh + x];
    ring_v[dst] = v[r * ld + v_col + (size_t)g * dh + x];
}

/* The prefill's state updates, one launch after the attention (they were four launches, two
 * ring appends, the memory save and the y history, of ~5 us each on an H200 for ~1 MB:
 * launch-bound). They write disjoint state buffers, and
 * every reader of the old state (innovation: y_hist; gather_mem: rings and mem; the attention:
 * the window ring) ran before. global (n_win + n_fade + n_mem + n_hist), in that order:
 *   n_win  = B*Hkv*min(T, w)*dh    window ring <- the last Kx/Vx rows
 *   n_fade = B*Hkv*min(T, m_f)*dh  fading ring <- the last Kf/Vf rows
 *   n_mem  = B*Hkv*M*dh            state mem <- the memory of the call's last chunk (scratch)
 *   n_hist = B*d                   y history <- the last k rows of y */
__kernel void bm_bmojo_state_save(__global const float *kx, __global const float *vx, const ulong x_ld,
                                  const ulong kx_col, const ulong vx_col,
                                  __global const float *kf, __global const float *vf, const ulong f_ld,
                                  const ulong kf_col, const ulong vf_col,
                                  __global float *win_k, __global float *win_v,
                                  __global float *fade_k, __global float *fade_v,
                                  __global const float *scr, const ulong memk_off, const ulong memv_off,
                                  __global float *mem, const ulong mem_v_off,
                                  __global const float *y, __global float *y_hist,
                                  const int B, const int T, const int d, const int k, const int Hkv,
                                  const int dh, const int w, const int m_f, const int M, const int pos0,
                                  const int NC)
{
    size_t gid = get_global_id(0);
    const size_t n_win = (size_t)B * Hkv * min(T, w) * dh, n_fade = (size_t)B * Hkv * min(T, m_f) * dh;
    const size_t n_mem = (size_t)B * Hkv * M * dh, n_hist = (size_t)B * d;
    if (gid < n_win) {
        bm_bmojo_ring_save(gid, kx, vx, x_ld, kx_col, vx_col, win_k, win_v, T, Hkv, dh, w, pos0);
        return;
    }
    gid -= n_win;
    if (gid < n_fade) {
        bm_bmojo_ring_save(gid, kf, vf, f_ld, kf_col, vf_col, fade_k, fade_v, T, Hkv, dh, m_f, pos0);
        return;
    }
    gid -= n_fade;
    if (gid < n_mem) {
        bm_bmojo_mem_save(gid, scr + memk_off, scr + memv_off, mem, mem_v_off, Hkv, M, dh, NC, NC - 1);
        return;
    }
    gid -= n_mem;
    if (gid < n_hist) bm_bmojo_yhist_save(gid, y, y_hist, T, d, k);
}
