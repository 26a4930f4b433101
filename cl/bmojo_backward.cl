/* bmojo_backward.cl — the backward of the B'MOJO attention over [fading | eidetic | window]
 * (model.md sections 2 and 6) for whole sequences from position 0, the eidetic sets held
 * constant (eps carries no gradient). Launchers: src/ops/op_bmojo_backward.c.
 *
 * Layout (fp32, row-major; rows r = b*T + t; M = m_f + m_e; NC = ceil(T/w) chunks, chunk c
 * starts at s = c*w; rep = H/Hkv, query head h uses kv head g = h/rep):
 *   q      [B*T, q_ld], head h at q_col + h*dh;   dq likewise at dq_col (written)
 *   kx, vx [B*T, x_ld], kv head g at kx_col / vx_col + g*dh;  dkx, dvx at dx_ld (written)
 *   kf, vf [B*T, f_ld], kv head g at kf_col / vf_col + g*dh;  dkf, dvf at df_ld (written)
 *   o, dout [B*T, o_ld], head h at h*dh (the forward's output and its gradient)
 *   sets   int [B, NC, max(m_e,1)]: E(s) best first, -1 pads (a training mix's). Entry e of
 *          chunk c is a key iff e < min(m_e, s) and 0 <= sets[e] < s (the same rule in every
 *          kernel and in the reference, so a malformed list is ignored consistently).
 *   scratch (base + element offsets): lse, D [B*T, H]; dmk, dmv [B, NC, Hkv, M, dh] — the
 *          gradient of each chunk's memory slot (slot j < m_f: fading position s-m_f+j; slot
 *          m_f+e: eidetic entry e), summed over the chunk's queries.
 * Query t's keys, one softmax: F(s) = Kf/Vf rows s-min(m_f,s) .. s-1; E(s) = Kx/Vx rows of the
 * set; W(t) = Kx/Vx rows max(0,t-w+1) .. t. A position in both E(s) and W(t) is two keys.
 *
 * Algorithm (no atomics; every sum in a fixed order, so results are deterministic):
 *  1. bm_bmojo_bwd_q, one work-group per (row, query head): walks the key list twice — the
 *     softmax statistics (per-item online max/sum, then tree reductions) giving
 *     lse = m + log l, then P_i = exp(s_i - lse), dS_i = P_i (dO.v_i - D) with D = dO.O, and
 *     dq = scale * sum_i dS_i k_i, keys in batches of L (items compute a key's P and dS, then
 *     each item owns columns of dq and adds the batch in key order). Saves lse and D.
 *  2. bm_bmojo_bwd_mem, one group per (sequence, chunk, kv head, memory slot): the slot's key is
 *     seen by the chunk's queries (<= w) of the rep heads; in batches of L (query, head) uses
 *     items recompute P and dS from lse and D, then column owners add dS q and P dO in use
 *     order: dmk = scale * sum dS q, dmv = sum P dO. Invalid slots get zero rows. (The tiled
 *     paths run bm_bmojo_bwd_mem_tiled instead: a tile of slots per group, below.)
 *  3. bm_bmojo_bwd_keys, one group per (sequence, position p, kv head): the window sum over the
 *     queries p .. p+w-1 as in 2, plus the eidetic slots that hold p (the sets of the chunks
 *     after p are scanned, L chunks per step, ascending), written to dkx/dvx; and dkf/dvf of p =
 *     the fading slots p - s + m_f of the chunks s in (p, p+m_f] (zero where none).
 * The work is that of the forward (twice the dot products): O(T (M + w) H dh).
 * Considered: per-(query) scatter into key gradients (needs float atomics or a T x keys
 * buffer); a single pass per key that recomputes the chunk memories' sums per position (a
 * position is in E of many chunks: the per-slot sums of 2 are shared by every position and
 * keep 3 a cheap gather). Work-group size L (a power of two) comes from the launcher
 * (BM_BMOJO_BWD_WG, default 64, at most BM_WG); every local array is a __local argument. Not
 * measured on a GPU yet: correctness first (training runs once per step, next to GEMMs that
 * cost far more at these sizes).
 *
 * The store path (BMOJO_BBWD=store; the default, recompute, is the tiled path below as it was):
 * bm_bmojo_bwd_q_tiled computes S and dP = dO V^T of every (query row, window key) pair twice
 * (pass 1 for lse, pass 2 for dS), and bm_bmojo_bwd_keys_tiled a third time; at bmojo-130m on
 * an H100 the three kernels cost keys 12.8 + q 8.9 + mem 8.0 us/token against the forward's
 * 2.7. On the store path the key kernels keep the dS they compute anyway: bm_bmojo_bwd_mem
 * writes dSm [B*T, H, M] (slot order as its groups: fading slots, then eidetic entries; zero
 * for a slot without a key), bm_bmojo_bwd_keys_tiled writes dSw [B*T, H, wv], wv = min(w, T)
 * (key p of row t at p - (t - wv + 1); entries of positions before 0 are never written nor
 * read), and bm_bmojo_bwd_dq_tiled computes dq = scale * dS K from them; lse and D come from
 * bm_bmojo_bwd_stats_tiled, q_tiled's pass 1 alone. S and dP are computed once per pair
 * instead of twice, for B*T*H*(wv + M) floats more scratch: 431 MB at bmojo-130m, batch 8,
 * T 2048 (8*2048*12*(512+36) floats; one scratch for all layers). Order: stats, mem, keys, dq.
 * Where the tiles do not fit (head_dim > NX*DCMAX, little local memory) both paths run the
 * per-row kernels. Measured on an H200 (32e537b, bmojo-130m, T 2048, us/token): recompute keys
 * 12.30 + q 9.11 + mem 8.27 = 29.68; store keys 14.09 + mem 8.95 + stats 2.43 + dq 4.71 = 30.18
 * (the dS stores, one float at a stride of the key count, give back what the recomputation
 * saved); `bmojo train` batch 8: +3.2 % with store. recompute stays the default. */

/* The views and sizes every backward kernel takes. */
#define BM_BMOJO_BWD_VIEWS                                                                                     \
    __global const float *q, const ulong q_ld, const ulong q_col, __global const float *kx,                   \
        __global const float *vx, const ulong x_ld, const ulong kx_col, const ulong vx_col,                  \
        __global const float *kf, __global const float *vf, const ulong f_ld, const ulong kf_col,            \
        const ulong vf_col, __global const float *o, __global const float *dout, const ulong o_ld,          \
        __global const int *sets, const int T, const int H, const int Hkv, const int dh, const int w,        \
        const int m_f, const int m_e, const int NC, const float scale

/* Tree reductions over the work-group (power-of-two size); every item gets the result. */
static inline float bm_bmojo_bwd_sum(__local float *red, float v)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int off = L / 2; off > 0; off >>= 1) {
        if (lid < off) red[lid] += red[lid + off];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

static inline float bm_bmojo_bwd_max(__local float *red, float v)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int off = L / 2; off > 0; off >>= 1) {
        if (lid < off) red[lid] = fmax(red[lid], red[lid + off]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

static inline float bm_bmojo_bwd_dot_lg(__local const float *a, __global const float *b, int n)
{
    float s = 0.0f;
    for (int x = 0; x < n; x++) s += a[x] * b[x];
    return s;
}

static inline float bm_bmojo_bwd_dot_gl(__global const float *a, __local const float *b, int n)
{
    float s = 0.0f;
    for (int x = 0; x < n; x++) s += a[x] * b[x];
    return s;
}

/* Key i of query t (chunk start s, set = its chunk's set row): returns 2*p for the Kx/Vx row
 * of position p, 2*p+1 for the Kf/Vf row, -1 for a masked eidetic entry. Order: F, E, W. */
static inline int bm_bmojo_bwd_key(int i, int t, int s, int nF, int nE, __global const int *set, int w)
{
    if (i < nF) return 2 * (s - nF + i) + 1;
    i -= nF;
    if (i < nE) {
        const int p = set[i];
        return p >= 0 && p < s ? 2 * p : -1;
    }
    return 2 * (max(0, t - w + 1) + (i - nE));
}

/* global (L * B*T, H), local (L, 1): group (row, h). Locals: qs, dos, acc [dh]; red, ds [L];
 * kc [L] (key codes). */
__kernel void bm_bmojo_bwd_q(BM_BMOJO_BWD_VIEWS, __global float *dq, const ulong dq_ld, const ulong dq_col,
                             __global float *scr, const ulong lse_off, const ulong dd_off,
                             __global const float *lse_in, __local float *qs,
                             __local float *dos, __local float *acc, __local float *red, __local float *ds,
                             __local int *kc)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int row = (int)get_group_id(0), h = (int)get_group_id(1);
    const int b = row / T, t = row - b * T, g = h / (H / Hkv);
    const int s = t / w * w, c = t / w;
    __global const int *set = sets + ((size_t)b * NC + c) * max(m_e, 1);
    __global const float *qrow = q + (size_t)row * q_ld + q_col + (size_t)h * dh;
    __global const float *orow = o + (size_t)row * o_ld + (size_t)h * dh;
    __global const float *dorow = dout + (size_t)row * o_ld + (size_t)h * dh;
    const size_t kxo = kx_col + (size_t)g * dh, vxo = vx_col + (size_t)g * dh;
    const size_t kfo = kf_col + (size_t)g * dh, vfo = vf_col + (size_t)g * dh;
    float dd = 0.0f;
    for (int x = lid; x < dh; x += L) {
        qs[x] = qrow[x];
        dos[x] = dorow[x];
        acc[x] = 0.0f;
        dd += dorow[x] * orow[x];
    }
    const float D = bm_bmojo_bwd_sum(red, dd); /* its barriers also publish qs, dos */
    const int nF = min(m_f, s), nE = min(m_e, s), n = nF + nE + (t - max(0, t - w + 1) + 1);

    /* pass 1: softmax statistics (given: the forward's) */
    float m = -INFINITY, l = 0.0f;
    for (int i = lid; i < n && !lse_in; i += L) {
        const int code = bm_bmojo_bwd_key(i, t, s, nF, nE, set, w);
        if (code < 0) continue;
        const size_t r = (size_t)b * T + (code >> 1);
        __global const float *krow = code & 1 ? kf + r * f_ld + kfo : kx + r * x_ld + kxo;
        const float sc = scale * bm_bmojo_bwd_dot_lg(qs, krow, dh);
        if (sc > m) {
            l = l * exp(m - sc) + 1.0f;
            m = sc;
        } else {
            l += exp(sc - m);
        }
    }
    /* the reductions' barriers stay unconditional (POCL 3.1 crashed on them inside a branch) */
    const float mx = bm_bmojo_bwd_max(red, m);
    const float lsum = bm_bmojo_bwd_sum(red, m == -INFINITY ? 0.0f : l * exp(m - mx));
    const float lse = lse_in ? lse_in[(size_t)row * H + h] : mx + log(lsum);

    /* pass 2: dq in batches of L keys */
    for (int base = 0; base < n; base += L) {
        const int i = base + lid;
        int code = -1;
        float dS = 0.0f;
        if (i < n) code = bm_bmojo_bwd_key(i, t, s, nF, nE, set, w);
        if (code >= 0) {
            const size_t r = (size_t)b * T + (code >> 1);
            __global const float *krow = code & 1 ? kf + r * f_ld + kfo : kx + r * x_ld + kxo;
            __global const float *vrow = code & 1 ? vf + r * f_ld + vfo : vx + r * x_ld + vxo;
            const float P = exp(scale * bm_bmojo_bwd_dot_lg(qs, krow, dh) - lse);
            dS = P * (bm_bmojo_bwd_dot_lg(dos, vrow, dh) - D);
        }
        ds[lid] = dS;
        kc[lid] = code;
        barrier(CLK_LOCAL_MEM_FENCE);
        const int cnt = min(L, n - base);
        for (int x = lid; x < dh; x += L) {
            float a = acc[x];
            for (int j = 0; j < cnt; j++) {
                const int cj = kc[j];
                if (cj < 0) continue;
                const size_t r = (size_t)b * T + (cj >> 1);
                a += ds[j] * (cj & 1 ? kf[r * f_ld + kfo + x] : kx[r * x_ld + kxo + x]);
            }
            acc[x] = a;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    __global float *dqrow = dq + (size_t)row * dq_ld + dq_col + (size_t)h * dh;
    for (int x = lid; x < dh; x += L) dqrow[x] = scale * acc[x];
    if (lid == 0) {
        scr[lse_off + (size_t)row * H + h] = lse;
        scr[dd_off + (size_t)row * H + h] = D;
    }
}

/* Row (b*T + t)*H + h of the [B*T, H] statistics for (query, head) use u of the queries from
 * t0 of sequence b and the rep heads of kv head g (heads fastest). */
static inline size_t bm_bmojo_bwd_use_row(const int b, const int T, const int H, const int rep, const int g,
                                          const int t0, const int u)
{
    return ((size_t)b * T + t0 + u / rep) * H + (size_t)(g * rep + u % rep);
}

/* The gradient sums of one key (ks, vs in local memory) over the queries t0 .. t0+nt-1 of
 * sequence b and the rep heads of kv head g, in batches of L (query, head) uses:
 * acck += sum dS q, accv += sum P dO (acck unscaled). Locals: pv, ds [L]; ur [L]. When ds_out
 * is not 0, each use's dS also goes to ds_out[row * ds_stride] (row: bm_bmojo_bwd_use_row). */
static inline void bm_bmojo_bwd_key_sums(__global const float *q, const ulong q_ld, const ulong q_col,
                                         __global const float *dout, const ulong o_ld, __global const float *lse,
                                         __global const float *Dv, const int b, const int T, const int H,
                                         const int rep, const int g, const int dh, const float scale, const int t0,
                                         const int nt, __local const float *ks, __local const float *vs,
                                         __local float *acck, __local float *accv, __local float *pv,
                                         __local float *ds, __local int *ur, __global float *ds_out,
                                         const int ds_stride)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int U = nt * rep;
    for (int base = 0; base < U; base += L) {
        const int u = base + lid;
        if (u < U) {
            const size_t ri = bm_bmojo_bwd_use_row(b, T, H, rep, g, t0, u), row = ri / H;
            const int h = (int)(ri - row * H);
            const float sc = scale * bm_bmojo_bwd_dot_gl(q + row * q_ld + q_col + (size_t)h * dh, ks, dh);
            const float P = exp(sc - lse[ri]);
            const float dp = bm_bmojo_bwd_dot_gl(dout + row * o_ld + (size_t)h * dh, vs, dh);
            const float dS = P * (dp - Dv[ri]);
            pv[lid] = P;
            ds[lid] = dS;
            ur[lid] = (int)ri;
            if (ds_out) ds_out[ri * ds_stride] = dS;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int cnt = min(L, U - base);
        for (int x = lid; x < dh; x += L) {
            float ak = acck[x], av = accv[x];
            for (int j = 0; j < cnt; j++) {
                const size_t ri = (size_t)ur[j], row = ri / H;
                const int h = (int)(ri - row * H);
                ak += ds[j] * q[row * q_ld + q_col + (size_t)h * dh + x];
                av += pv[j] * dout[row * o_ld + (size_t)h * dh + x];
            }
            acck[x] = ak;
            accv[x] = av;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* global (L * NC*Hkv*M, B), local (L, 1): group (slot ((c*Hkv + g)*M + j), b). Locals: ks, vs,
 * acck, accv [dh]; pv, ds [L]; ur [L]. With store_ds (the store path), also the dS of every
 * (query of the chunk, rep head) use of the slot into dSm [B*T, H, M] at scr + dsm_off (zero
 * for a slot without a key), for bm_bmojo_bwd_dq_tiled. */
__kernel void bm_bmojo_bwd_mem(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off, const ulong dd_off,
                               const ulong dmk_off, const ulong dmv_off, const int store_ds, const ulong dsm_off,
                               __local float *ks, __local float *vs, __local float *acck, __local float *accv,
                               __local float *pv, __local float *ds, __local int *ur)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int M = m_f + m_e, rep = H / Hkv;
    const int sl = (int)get_group_id(0), b = (int)get_group_id(1);
    const int j = sl % M, g = (sl / M) % Hkv, c = sl / (M * Hkv), s = c * w;
    const size_t out = ((((size_t)b * NC + c) * Hkv + g) * M + j) * dh;
    __global float *dmk = scr + dmk_off + out, *dmv = scr + dmv_off + out;
    int p = -1, fade = j < m_f;
    if (fade) {
        p = s - m_f + j;
    } else if (j - m_f < min(m_e, s)) {
        p = sets[((size_t)b * NC + c) * m_e + (j - m_f)];
        if (p >= s) p = -1;
    }
    const int nt = min(s + w, T) - s;
    __global float *dsm = store_ds ? scr + dsm_off + j : (__global float *)0;
    if (p < 0) { /* no key in this slot (uniform over the group) */
        for (int x = lid; x < dh; x += L) dmk[x] = dmv[x] = 0.0f;
        if (dsm)
            for (int u = lid; u < nt * rep; u += L) dsm[bm_bmojo_bwd_use_row(b, T, H, rep, g, s, u) * M] = 0.0f;
        return;
    }
    const size_t r = (size_t)b * T + p;
    __global const float *krow = fade ? kf + r * f_ld + kf_col : kx + r * x_ld + kx_col;
    __global const float *vrow = fade ? vf + r * f_ld + vf_col : vx + r * x_ld + vx_col;
    for (int x = lid; x < dh; x += L) {
        ks[x] = krow[(size_t)g * dh + x];
        vs[x] = vrow[(size_t)g * dh + x];
        acck[x] = accv[x] = 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    bm_bmojo_bwd_key_sums(q, q_ld, q_col, dout, o_ld, scr + lse_off, scr + dd_off, b, T, H, rep, g, dh, scale, s,
                          nt, ks, vs, acck, accv, pv, ds, ur, dsm, M);
    for (int x = lid; x < dh; x += L) {
        dmk[x] = scale * acck[x];
        dmv[x] = accv[x];
    }
}

/* global (L * T, Hkv, B), local (L, 1, 1): group (position p, kv head g, sequence b). Locals as
 * bm_bmojo_bwd_mem's. */
__kernel void bm_bmojo_bwd_keys(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off, const ulong dd_off,
                                const ulong dmk_off, const ulong dmv_off, __global float *dkx, __global float *dvx,
                                const ulong dx_ld, const ulong dkx_col, const ulong dvx_col, __global float *dkf,
                                __global float *dvf, const ulong df_ld, const ulong dkf_col, const ulong dvf_col,
                                __local float *ks, __local float *vs, __local float *acck, __local float *accv,
                                __local float *pv, __local float *ds, __local int *ur)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int M = m_f + m_e, rep = H / Hkv;
    const int p = (int)get_group_id(0), g = (int)get_group_id(1), b = (int)get_group_id(2);
    const size_t r = (size_t)b * T + p;
    for (int x = lid; x < dh; x += L) {
        ks[x] = kx[r * x_ld + kx_col + (size_t)g * dh + x];
        vs[x] = vx[r * x_ld + vx_col + (size_t)g * dh + x];
        acck[x] = accv[x] = 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* window: queries p .. p+w-1 */
    bm_bmojo_bwd_key_sums(q, q_ld, q_col, dout, o_ld, scr + lse_off, scr + dd_off, b, T, H, rep, g, dh, scale, p,
                          min(p + w, T) - p, ks, vs, acck, accv, pv, ds, ur, (__global float *)0, 0);
    for (int x = lid; x < dh; x += L) acck[x] *= scale;
    /* eidetic: the slots of the chunks after p's that hold p, L chunks per step */
    __global const float *dmk = scr + dmk_off, *dmv = scr + dmv_off;
    for (int cb = p / w + 1; cb < NC && m_e > 0; cb += L) {
        const int c = cb + lid;
        int hit = -1;
        if (c < NC) {
            __global const int *set = sets + ((size_t)b * NC + c) * m_e;
            const int ne = min(m_e, c * w);
            for (int e = 0; e < ne && hit < 0; e++)
                if (set[e] == p) hit = e;
        }
        ur[lid] = hit;
        barrier(CLK_LOCAL_MEM_FENCE);
        const int cnt = min(L, NC - cb);
        for (int x = lid; x < dh; x += L) {
            float ak = acck[x], av = accv[x];
            for (int i = 0; i < cnt; i++) {
                if (ur[i] < 0) continue;
                const size_t o = ((((size_t)b * NC + cb + i) * Hkv + g) * M + m_f + ur[i]) * dh + x;
                ak += dmk[o];
                av += dmv[o];
            }
            acck[x] = ak;
            accv[x] = av;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int x = lid; x < dh; x += L) {
        dkx[r * dx_ld + dkx_col + (size_t)g * dh + x] = acck[x];
        dvx[r * dx_ld + dvx_col + (size_t)g * dh + x] = accv[x];
    }
    /* fading: slot p - s + m_f of the chunks s = c*w in (p, p + m_f] */
    const int c1 = min((p + m_f) / w, NC - 1);
    for (int x = lid; x < dh; x += L) {
        float ak = 0.0f, av = 0.0f;
        for (int c = p / w + 1; c <= c1; c++) {
            const size_t o = ((((size_t)b * NC + c) * Hkv + g) * M + (p - c * w + m_f)) * dh + x;
            ak += dmk[o];
            av += dmv[o];
        }
        dkf[r * df_ld + dkf_col + (size_t)g * dh + x] = ak;
        dvf[r * df_ld + dvf_col + (size_t)g * dh + x] = av;
    }
}

/* ---- Tiled kernels (the launcher's default path) ------------------------------------------
 * bm_bmojo_bwd_q and bm_bmojo_bwd_keys above re-read every key (every query) of the window from
 * global memory for each (row, head): on an H200 at bmojo-130m, T 2048 they took 56 and 40 us
 * per token against the forward attention's 2.6. The two kernels below share tiles in local
 * memory across a block of consecutive rows and keep register tiles, flash-attention-2 style:
 *
 *  bm_bmojo_bwd_q_tiled, one group per (query tile of QT tokens of one chunk, kv head g,
 *    sequence b); rows r < R = QT*rep are (token t0 + r % QT, head g*rep + r / QT), as in the
 *    forward's tiled kernel, so a K/V tile serves all rep heads. Every row of the tile has the
 *    same chunk, so the key list is [F(s) | E(s) | window union max(0,t0-w+1) .. tend-1]; a row
 *    masks the window keys outside its own window (memory keys are seen by every valid row).
 *    Pass 1: per-item online (max, sum) over its keys, merged over the NX items of a row in a
 *    fixed order -> lse (and D = dO.O per row). Pass 2: S and dP = dO V^T in registers, dS into
 *    local memory, dq += dS K into registers. Writes dq, lse, D.
 *  bm_bmojo_bwd_keys_tiled, one group per (tile of BKK = NY*TR consecutive positions, g, b):
 *    K, V of the positions stay in local memory; the query rows (token-major, rep heads per
 *    token) of tokens p0 .. p0+np-2+w go in tiles of BRQ = NX*TC rows (Q pre-scaled, dO, lse,
 *    D in local memory); P and dS of (key, row) pairs in registers then local memory; dK += dS Q
 *    and dV += P dO into registers. Then the eidetic slots holding each position and the fading
 *    slots (the per-chunk sums of bm_bmojo_bwd_mem) are added as in bm_bmojo_bwd_keys.
 * Item (ty, tx) of L = NX*NY items owns rows/keys ty + NY*i (i < TR) and keys/rows tx + NX*j
 * (j < TC) of the score tile, and columns tx + NX*jj (jj < DCMAX, dh <= NX*DCMAX) of the
 * accumulated tile. NY is chosen by the launcher (local memory, work-group limits); NX, TR, TC,
 * DCMAX are -D tunables mirrored by the launcher. Local rows are padded to dh+1 floats and the
 * score tiles to BK+1 / BRQ+1 (odd strides: different ty of one warp hit different banks).
 * All sums run in fixed orders: deterministic, no atomics. */
#ifndef BM_BBT_NX
#define BM_BBT_NX 16
#endif
#ifndef BM_BBT_TR
#define BM_BBT_TR 4
#endif
#ifndef BM_BBT_TC
#define BM_BBT_TC 2
#endif
#ifndef BM_BBT_DCMAX
#define BM_BBT_DCMAX 8
#endif

/* Key tile [kt, kt + NX*TC) of a query tile's list [F(s) | E(s) | window plo ..] into ks (and
 * vs); masked or past-the-end keys are zero rows. */
static inline void bm_bbt_load_keys(__global const float *kx, __global const float *vx, const ulong x_ld,
                                    const size_t kxo, const size_t vxo, __global const float *kf,
                                    __global const float *vf, const ulong f_ld, const size_t kfo, const size_t vfo,
                                    __global const int *set, const int b, const int T, const int s, const int nF,
                                    const int nM, const int plo, const int Nk, const int kt, const int dh,
                                    const int withv, __local float *ks, __local float *vs)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0), ld = dh + 1;
    const int BK = BM_BBT_NX * BM_BBT_TC;
    for (int e = lid; e < BK * dh; e += L) {
        const int cc = e / dh, d = e - cc * dh, kk = kt + cc;
        float kval = 0.0f, vval = 0.0f;
        if (kk < Nk) {
            if (kk < nF) {
                const size_t r = ((size_t)b * T + s - nF + kk) * f_ld;
                kval = kf[r + kfo + d];
                if (withv) vval = vf[r + vfo + d];
            } else {
                int p = kk < nM ? set[kk - nF] : plo + (kk - nM);
                if (kk < nM && p >= s) p = -1;
                if (p >= 0) {
                    const size_t r = ((size_t)b * T + p) * x_ld;
                    kval = kx[r + kxo + d];
                    if (withv) vval = vx[r + vxo + d];
                }
            }
        }
        ks[cc * ld + d] = kval;
        if (withv) vs[cc * ld + d] = vval;
    }
}

/* Whether key kk of the list is seen by rows at positions prow (-1: no row): 1 memory key
 * (every row), 2 window key at *pp, 0 none. */
static inline int bm_bbt_key_kind(const int kk, const int nF, const int nM, const int Nk, const int plo, const int s,
                                  __global const int *set, int *pp)
{
    *pp = 0;
    if (kk < nF) return 1;
    if (kk < nM) {
        const int p = set[kk - nF];
        return p >= 0 && p < s ? 1 : 0;
    }
    if (kk < Nk) {
        *pp = plo + (kk - nM);
        return 2;
    }
    return 0;
}

/* The query tile of group (tile, g, b) of bm_bmojo_bwd_q_tiled, _stats_tiled and _dq_tiled:
 * tile = c*tpc + k covers tokens t0 = c*w + k*QT .. min(t0+QT, c*w+w, T)-1 of chunk c (start
 * s); its key list is [F(s) | E(s) | window union plo .. tend-1]: Nk keys, the first nF fading,
 * the first nM memory. Rows r < QT*rep with r % QT < ntok are valid: (token t0 + r % QT, head
 * g*rep + r / QT). A tile past the chunk's or sequence's end has no rows and no keys (no early
 * return before the barriers: POCL 3.1 mishandled it). */
typedef struct {
    int b, g, rep, s, t0, ntok, nF, nM, plo, Nk;
    __global const int *set;
} bm_bbt_qtile;

static inline bm_bbt_qtile bm_bbt_qtile_of(__global const int *sets, const int T, const int H, const int Hkv,
                                           const int w, const int m_f, const int m_e, const int NC, const int QT,
                                           const int tpc)
{
    bm_bbt_qtile z;
    const int tile = (int)get_group_id(0), c = tile / tpc;
    z.g = (int)get_group_id(1);
    z.b = (int)get_group_id(2);
    z.rep = H / Hkv;
    z.s = c * w;
    z.t0 = z.s + (tile - c * tpc) * QT;
    const int tend = min(min(z.t0 + QT, z.s + w), T);
    z.ntok = max(0, tend - z.t0);
    z.nF = min(m_f, z.s);
    z.nM = z.nF + min(m_e, z.s);
    z.plo = max(0, z.t0 - w + 1);
    z.Nk = z.ntok > 0 ? z.nM + (tend - z.plo) : 0;
    z.set = sets + ((size_t)z.b * NC + c) * max(m_e, 1);
    return z;
}

/* Row r's token, -1 when r is not a valid row of the tile. */
static inline int bm_bbt_qrow_token(const bm_bbt_qtile z, const int QT, const int r)
{
    return r < QT * z.rep && r % QT < z.ntok ? z.t0 + r % QT : -1;
}

/* Every row's token into rowt [BR] (-1: none). The items read their rows' tokens back from
 * local memory: computing validity inside the unrolled per-item loops was miscompiled by POCL
 * 3.1 / LLVM 15 (stores of invalid rows). */
static inline void bm_bbt_q_rowt(const bm_bbt_qtile z, const int QT, const int BR, __local int *rowt)
{
    for (int r = (int)get_local_id(0); r < BR; r += (int)get_local_size(0)) rowt[r] = bm_bbt_qrow_token(z, QT, r);
}

/* Rows r < BR of the tile from src (head h at col + h*dh), times mul, into dst [BR, dh+1]; rows
 * that are not valid are zero. */
static inline void bm_bbt_load_qrows(__global const float *src, const ulong src_ld, const ulong col, const float mul,
                                     const bm_bbt_qtile z, const int QT, const int T, const int dh, const int BR,
                                     __local float *dst)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    for (int e = lid; e < BR * dh; e += L) {
        const int r = e / dh, d = e - r * dh, t = bm_bbt_qrow_token(z, QT, r);
        float v = 0.0f;
        if (t >= 0) {
            const size_t row = (size_t)z.b * T + t, h = (size_t)(z.g * z.rep + r / QT);
            v = mul * src[row * src_ld + col + h * dh + d];
        }
        dst[r * (dh + 1) + d] = v;
    }
}

/* D = dO.O of every row into Ds [BR] (0 for rows that are not valid). */
static inline void bm_bbt_q_dd(__global const float *o, __global const float *dout, const ulong o_ld,
                               const bm_bbt_qtile z, const int QT, const int T, const int dh, const int BR,
                               __local float *Ds)
{
    for (int r = (int)get_local_id(0); r < BR; r += (int)get_local_size(0)) {
        const int t = bm_bbt_qrow_token(z, QT, r);
        float dd = 0.0f;
        if (t >= 0) {
            const size_t base = ((size_t)z.b * T + t) * o_ld + (size_t)(z.g * z.rep + r / QT) * dh;
            for (int d = 0; d < dh; d++) dd += dout[base + d] * o[base + d];
        }
        Ds[r] = dd;
    }
}

/* Pass 1 of a query tile (qs: its rows' scaled Q; Ds: their D; both published by a barrier):
 * per-item online (max, sum) over its keys, merged over the NX items of a row in tx order.
 * Gives each of the item's rows (prow: their tokens, -1 none) lse = max + log(sum) and Dr = D,
 * and stores both for the valid rows into the scratch. Uses ks (vs: not written), ss. With
 * lse_in (the forward's, [B*T, H]) no key is read: lse comes from there. */
static inline void bm_bbt_q_stats(__global const float *kx, __global const float *vx, const ulong x_ld,
                                  const size_t kxo, __global const float *kf, __global const float *vf,
                                  const ulong f_ld, const size_t kfo, const bm_bbt_qtile z, const int T, const int H,
                                  const int dh, const int w, const int QT, const int *prow, __local const float *qs,
                                  __local const float *Ds, __local float *ks, __local float *vs, __local float *ss,
                                  __global float *scr, const ulong lse_off, const ulong dd_off,
                                  __global const float *lse_in, float *lse, float *Dr)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0), NY = L / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX;
    const int BK = BM_BBT_NX * BM_BBT_TC, ld = dh + 1;
    float m_r[BM_BBT_TR], l_r[BM_BBT_TR];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) {
        m_r[i] = -INFINITY;
        l_r[i] = 0.0f;
    }
    const int nk = lse_in ? 0 : z.Nk; /* given: no pass over the keys (the barriers below stay unconditional) */
    for (int kt = 0; kt < nk; kt += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        bm_bbt_load_keys(kx, vx, x_ld, kxo, kxo, kf, vf, f_ld, kfo, kfo, z.set, z.b, T, z.s, z.nF, z.nM, z.plo, z.Nk,
                         kt, dh, 0, ks, vs);
        barrier(CLK_LOCAL_MEM_FENCE);
        float sc[BM_BBT_TR][BM_BBT_TC];
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++)
            #pragma unroll
            for (int j = 0; j < BM_BBT_TC; j++) sc[i][j] = 0.0f;
        for (int d = 0; d < dh; d++) {
            float qv[BM_BBT_TR], kv[BM_BBT_TC];
            #pragma unroll
            for (int i = 0; i < BM_BBT_TR; i++) qv[i] = qs[(ty + NY * i) * ld + d];
            #pragma unroll
            for (int j = 0; j < BM_BBT_TC; j++) kv[j] = ks[(tx + BM_BBT_NX * j) * ld + d];
            #pragma unroll
            for (int i = 0; i < BM_BBT_TR; i++)
                #pragma unroll
                for (int j = 0; j < BM_BBT_TC; j++) sc[i][j] += qv[i] * kv[j];
        }
        #pragma unroll
        for (int j = 0; j < BM_BBT_TC; j++) {
            int p;
            const int kind = bm_bbt_key_kind(kt + tx + BM_BBT_NX * j, z.nF, z.nM, z.Nk, z.plo, z.s, z.set, &p);
            #pragma unroll
            for (int i = 0; i < BM_BBT_TR; i++)
                if (!(prow[i] >= 0 && (kind == 1 || (kind == 2 && p <= prow[i] && p > prow[i] - w))))
                    sc[i][j] = -INFINITY;
        }
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++) {
            float mx = m_r[i];
            #pragma unroll
            for (int j = 0; j < BM_BBT_TC; j++) mx = fmax(mx, sc[i][j]);
            if (mx != -INFINITY) {
                float sum = l_r[i] * exp(m_r[i] - mx);
                #pragma unroll
                for (int j = 0; j < BM_BBT_TC; j++)
                    if (sc[i][j] != -INFINITY) sum += exp(sc[i][j] - mx);
                l_r[i] = sum;
                m_r[i] = mx;
            }
        }
    }
    /* merge the NX items of each row in tx order: the max, then the rescaled sums */
    barrier(CLK_LOCAL_MEM_FENCE);
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) ss[(ty + NY * i) * BM_BBT_NX + tx] = m_r[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    float mxr[BM_BBT_TR];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) {
        float mx = -INFINITY;
        for (int x = 0; x < BM_BBT_NX; x++) mx = fmax(mx, ss[(ty + NY * i) * BM_BBT_NX + x]);
        mxr[i] = mx;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++)
        ss[(ty + NY * i) * BM_BBT_NX + tx] = m_r[i] == -INFINITY ? 0.0f : l_r[i] * exp(m_r[i] - mxr[i]);
    barrier(CLK_LOCAL_MEM_FENCE);
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) {
        const int r = ty + NY * i;
        float sum = 0.0f;
        for (int x = 0; x < BM_BBT_NX; x++) sum += ss[r * BM_BBT_NX + x];
        const size_t ri = prow[i] >= 0 ? ((size_t)z.b * T + prow[i]) * H + (size_t)(z.g * z.rep + r / QT) : 0;
        lse[i] = prow[i] < 0 ? 0.0f : lse_in ? lse_in[ri] : mxr[i] + log(sum);
        Dr[i] = Ds[r];
        if (tx == 0 && prow[i] >= 0) {
            scr[lse_off + ri] = lse[i];
            scr[dd_off + ri] = Dr[i];
        }
    }
}

/* dq accumulation over one key tile: acc[i][jj] += sum over keys cc < cnt of dS (ss [BR, BK+1],
 * row ty + NY*i) times K (ks [BK, dh+1], column tx + NX*jj), keys in order. */
static inline void bm_bbt_acc_dsk(float acc[BM_BBT_TR][BM_BBT_DCMAX], __local const float *ss,
                                  __local const float *ks, const int cnt, const int dh)
{
    const int lid = (int)get_local_id(0), NY = (int)get_local_size(0) / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX, ld = dh + 1, lds = BM_BBT_NX * BM_BBT_TC + 1;
    for (int cc = 0; cc < cnt; cc++) {
        float a[BM_BBT_TR];
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++) a[i] = ss[(ty + NY * i) * lds + cc];
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) {
            const int col = tx + BM_BBT_NX * jj;
            if (col < dh) {
                const float kv = ks[cc * ld + col];
                #pragma unroll
                for (int i = 0; i < BM_BBT_TR; i++) acc[i][jj] += a[i] * kv;
            }
        }
    }
}

/* dq = scale * acc of the item's valid rows (prow: their tokens). */
static inline void bm_bbt_store_dq(float acc[BM_BBT_TR][BM_BBT_DCMAX], const int *prow, const bm_bbt_qtile z,
                                   const int QT, const int T, const int dh, const float scale, __global float *dq,
                                   const ulong dq_ld, const ulong dq_col)
{
    const int lid = (int)get_local_id(0), NY = (int)get_local_size(0) / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX;
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) {
        const int r = ty + NY * i;
        if (prow[i] >= 0) {
            __global float *dqrow =
                dq + ((size_t)z.b * T + prow[i]) * dq_ld + dq_col + (size_t)(z.g * z.rep + r / QT) * dh;
            #pragma unroll
            for (int jj = 0; jj < BM_BBT_DCMAX; jj++) {
                const int col = tx + BM_BBT_NX * jj;
                if (col < dh) dqrow[col] = scale * acc[i][jj];
            }
        }
    }
}

/* global (NX*NY * NC*tpc, Hkv, B), local (NX*NY, 1, 1); tiles: bm_bbt_qtile. Locals: qs, dos
 * [NY*TR, dh+1]; ks, vs [NX*TC, dh+1]; ss [NY*TR, NX*TC+1] (also the row merge, NY*TR*NX <=
 * its size); st [3*NY*TR]. */
__kernel void bm_bmojo_bwd_q_tiled(BM_BMOJO_BWD_VIEWS, __global float *dq, const ulong dq_ld, const ulong dq_col,
                                   __global float *scr, const ulong lse_off, const ulong dd_off,
                                   __global const float *lse_in, const int QT,
                                   const int tpc, __local float *qs, __local float *dos, __local float *ks,
                                   __local float *vs, __local float *ss, __local float *st)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0), NY = L / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX;
    const int BR = NY * BM_BBT_TR, BK = BM_BBT_NX * BM_BBT_TC, ld = dh + 1, lds = BK + 1;
    const bm_bbt_qtile z = bm_bbt_qtile_of(sets, T, H, Hkv, w, m_f, m_e, NC, QT, tpc);
    const size_t kxo = kx_col + (size_t)z.g * dh, vxo = vx_col + (size_t)z.g * dh;
    const size_t kfo = kf_col + (size_t)z.g * dh, vfo = vf_col + (size_t)z.g * dh;
    __local float *Ds = st + BR; /* st: [BR] unused (the layout the key kernel shares), D [BR], rowt [BR] */
    __local int *rowt = (__local int *)(st + 2 * BR);
    bm_bbt_load_qrows(q, q_ld, q_col, scale, z, QT, T, dh, BR, qs);
    bm_bbt_load_qrows(dout, o_ld, 0, 1.0f, z, QT, T, dh, BR, dos);
    bm_bbt_q_dd(o, dout, o_ld, z, QT, T, dh, BR, Ds);
    bm_bbt_q_rowt(z, QT, BR, rowt);
    barrier(CLK_LOCAL_MEM_FENCE);
    int prow[BM_BBT_TR];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) prow[i] = rowt[ty + NY * i];

    /* pass 1: lse (given: the forward's), D */
    float lse[BM_BBT_TR], Dr[BM_BBT_TR];
    bm_bbt_q_stats(kx, vx, x_ld, kxo, kf, vf, f_ld, kfo, z, T, H, dh, w, QT, prow, qs, Ds, ks, vs, ss, scr, lse_off,
                   dd_off, lse_in, lse, Dr);

    /* pass 2: dS = P (dP - D) into local memory, dq += dS K in registers */
    float acc[BM_BBT_TR][BM_BBT_DCMAX];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++)
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) acc[i][jj] = 0.0f;
    for (int kt = 0; kt < z.Nk; kt += BK) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile's ks, vs, ss (and the merge) are no longer read */
        bm_bbt_load_keys(kx, vx, x_ld, kxo, vxo, kf, vf, f_ld, kfo, vfo, z.set, z.b, T, z.s, z.nF, z.nM, z.plo, z.Nk,
                         kt, dh, 1, ks, vs);
        barrier(CLK_LOCAL_MEM_FENCE);
        float sc[BM_BBT_TR][BM_BBT_TC], dp[BM_BBT_TR][BM_BBT_TC];
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++)
            #pragma unroll
            for (int j = 0; j < BM_BBT_TC; j++) sc[i][j] = dp[i][j] = 0.0f;
        for (int d = 0; d < dh; d++) {
            float qv[BM_BBT_TR], ov[BM_BBT_TR], kv[BM_BBT_TC], vv[BM_BBT_TC];
            #pragma unroll
            for (int i = 0; i < BM_BBT_TR; i++) {
                qv[i] = qs[(ty + NY * i) * ld + d];
                ov[i] = dos[(ty + NY * i) * ld + d];
            }
            #pragma unroll
            for (int j = 0; j < BM_BBT_TC; j++) {
                kv[j] = ks[(tx + BM_BBT_NX * j) * ld + d];
                vv[j] = vs[(tx + BM_BBT_NX * j) * ld + d];
            }
            #pragma unroll
            for (int i = 0; i < BM_BBT_TR; i++)
                #pragma unroll
                for (int j = 0; j < BM_BBT_TC; j++) {
                    sc[i][j] += qv[i] * kv[j];
                    dp[i][j] += ov[i] * vv[j];
                }
        }
        #pragma unroll
        for (int j = 0; j < BM_BBT_TC; j++) {
            int p;
            const int kind = bm_bbt_key_kind(kt + tx + BM_BBT_NX * j, z.nF, z.nM, z.Nk, z.plo, z.s, z.set, &p);
            #pragma unroll
            for (int i = 0; i < BM_BBT_TR; i++) {
                const int ok = prow[i] >= 0 && (kind == 1 || (kind == 2 && p <= prow[i] && p > prow[i] - w));
                ss[(ty + NY * i) * lds + tx + BM_BBT_NX * j] = ok ? exp(sc[i][j] - lse[i]) * (dp[i][j] - Dr[i]) : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        bm_bbt_acc_dsk(acc, ss, ks, min(BK, z.Nk - kt), dh);
    }
    bm_bbt_store_dq(acc, prow, z, QT, T, dh, scale, dq, dq_ld, dq_col);
}

/* ---- The store path (BMOJO_BBWD=store; the launcher's order: stats, mem, keys, dq) ---------
 * bm_bmojo_bwd_q_tiled's two passes recompute S, and dP = dO V^T, of every (row, window key)
 * pair that bm_bmojo_bwd_keys_tiled computes again. Here the key kernels store the dS they
 * compute (bm_bmojo_bwd_mem: dSm [B*T, H, M], slot order as its groups; _keys_tiled: dSw
 * [B*T, H, wv], wv = min(w, T), position p of row t at p - (t - wv + 1)), and dq = scale * dS K
 * reads them back: S and dP once per pair instead of twice. */

/* The store path's first launch: bm_bmojo_bwd_q_tiled's pass 1 alone (lse and D into the
 * scratch). global and tiles as bm_bmojo_bwd_q_tiled's. Locals: qs [NY*TR, dh+1]; ks [NX*TC,
 * dh+1]; ss [NY*TR, NX*TC+1]; st [3*NY*TR] (as bm_bmojo_bwd_q_tiled's). */
__kernel void bm_bmojo_bwd_stats_tiled(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off,
                                       const ulong dd_off, __global const float *lse_in, const int QT,
                                       const int tpc, __local float *qs,
                                       __local float *ks, __local float *ss, __local float *st)
{
    const int lid = (int)get_local_id(0), NY = (int)get_local_size(0) / BM_BBT_NX, ty = lid / BM_BBT_NX;
    const int BR = NY * BM_BBT_TR;
    const bm_bbt_qtile z = bm_bbt_qtile_of(sets, T, H, Hkv, w, m_f, m_e, NC, QT, tpc);
    const size_t kxo = kx_col + (size_t)z.g * dh, kfo = kf_col + (size_t)z.g * dh;
    __local float *Ds = st + BR;
    __local int *rowt = (__local int *)(st + 2 * BR);
    bm_bbt_load_qrows(q, q_ld, q_col, scale, z, QT, T, dh, BR, qs);
    bm_bbt_q_dd(o, dout, o_ld, z, QT, T, dh, BR, Ds);
    bm_bbt_q_rowt(z, QT, BR, rowt);
    barrier(CLK_LOCAL_MEM_FENCE);
    int prow[BM_BBT_TR];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) prow[i] = rowt[ty + NY * i];
    float lse[BM_BBT_TR], Dr[BM_BBT_TR];
    bm_bbt_q_stats(kx, vx, x_ld, kxo, kf, vf, f_ld, kfo, z, T, H, dh, w, QT, prow, qs, Ds, ks, ks, ss, scr, lse_off,
                   dd_off, lse_in, lse, Dr); /* vs: ks, never written without V */
}

/* The stored dS of the tile's rows for keys kt .. kt+NX*TC-1 into ss [BR, NX*TC+1]: memory key
 * kk < nF is fading slot m_f - nF + kk of dsm [B*T, H, M], kk < nM eidetic slot m_f + kk - nF;
 * window key kk at position p = plo + kk - nM is dsw [B*T, H, wv] at p - (t - wv + 1) for row
 * token t when p is in t's window. Zero where there is no pair. Keys run fastest over the
 * items: a row's window entries are read side by side. */
static inline void bm_bbt_load_ds(__global const float *dsm, __global const float *dsw, const bm_bbt_qtile z,
                                  const int QT, const int T, const int H, const int w, const int wv, const int m_f,
                                  const int M, const int kt, const int BR, __local const int *rowt,
                                  __local float *ss)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int BK = BM_BBT_NX * BM_BBT_TC, lds = BK + 1;
    for (int e = lid; e < BR * BK; e += L) {
        const int r = e / BK, cc = e - r * BK, kk = kt + cc, t = rowt[r];
        float v = 0.0f;
        if (t >= 0 && kk < z.Nk) {
            const size_t ri = ((size_t)z.b * T + t) * H + (size_t)(z.g * z.rep + r / QT);
            if (kk < z.nM) {
                v = dsm[ri * M + (size_t)(kk < z.nF ? m_f - z.nF + kk : m_f + kk - z.nF)];
            } else {
                const int p = z.plo + (kk - z.nM);
                if (p <= t && p > t - w) v = dsw[ri * wv + (size_t)(p - (t - wv + 1))];
            }
        }
        ss[r * lds + cc] = v;
    }
}

/* The store path's last launch: dq = scale * (sum over memory slots dSm K_slot + sum over window
 * keys dSw K_p), from the dS that bm_bmojo_bwd_mem and _keys_tiled stored at scr + dsm_off and
 * scr + dsw_off; the groups, key tiles (K shared by the rep heads) and summation order of
 * bm_bmojo_bwd_q_tiled's pass 2. global as bm_bmojo_bwd_q_tiled's. Locals: ks [NX*TC, dh+1];
 * ss [NY*TR, NX*TC+1]; rowt [NY*TR]. */
__kernel void bm_bmojo_bwd_dq_tiled(BM_BMOJO_BWD_VIEWS, __global float *dq, const ulong dq_ld, const ulong dq_col,
                                    __global const float *scr, const ulong dsm_off, const ulong dsw_off,
                                    const int wv, const int QT, const int tpc, __local float *ks,
                                    __local float *ss, __local int *rowt)
{
    const int lid = (int)get_local_id(0), NY = (int)get_local_size(0) / BM_BBT_NX, ty = lid / BM_BBT_NX;
    const int BR = NY * BM_BBT_TR, BK = BM_BBT_NX * BM_BBT_TC;
    const bm_bbt_qtile z = bm_bbt_qtile_of(sets, T, H, Hkv, w, m_f, m_e, NC, QT, tpc);
    const size_t kxo = kx_col + (size_t)z.g * dh, kfo = kf_col + (size_t)z.g * dh;
    bm_bbt_q_rowt(z, QT, BR, rowt);
    barrier(CLK_LOCAL_MEM_FENCE);
    int prow[BM_BBT_TR];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) prow[i] = rowt[ty + NY * i];
    float acc[BM_BBT_TR][BM_BBT_DCMAX];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++)
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) acc[i][jj] = 0.0f;
    for (int kt = 0; kt < z.Nk; kt += BK) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile's ks, ss are no longer read */
        bm_bbt_load_keys(kx, vx, x_ld, kxo, kxo, kf, vf, f_ld, kfo, kfo, z.set, z.b, T, z.s, z.nF, z.nM, z.plo, z.Nk,
                         kt, dh, 0, ks, ks); /* vs: ks, never written without V */
        bm_bbt_load_ds(scr + dsm_off, scr + dsw_off, z, QT, T, H, w, wv, m_f, m_f + m_e, kt, BR, rowt, ss);
        barrier(CLK_LOCAL_MEM_FENCE);
        bm_bbt_acc_dsk(acc, ss, ks, min(BK, z.Nk - kt), dh);
    }
    bm_bbt_store_dq(acc, prow, z, QT, T, dh, scale, dq, dq_ld, dq_col);
}

/* One tile of BRQ = NX*TC query rows against a group's BKK = NY*TR keys (ks, vs [BKK, dh+1]),
 * shared by bm_bmojo_bwd_keys_tiled (keys: consecutive positions) and _mem_tiled (keys: a chunk's
 * memory slots). Rows u = ub + r < U are (token t0 + u / rep, head g*rep + u % rep); their Q
 * (times scale), dO, lse and D go into qs, dos [BRQ, dh+1] and Ls, Ds [BRQ], their tokens into
 * rowt [BRQ] (-1: none). S and dP of the item's (key, row) pairs in registers; P and dS into ps,
 * dss [BKK, BRQ+1]. A pair counts when the key exists (kp: the item's keys' positions, -1 none)
 * and, when windowed, the row's window holds the key's position (memory slots are seen by every
 * row of their chunk). Ends with a barrier: ps, dss and rowt are published. */
static inline void bm_bbt_rows_scores(__global const float *q, const ulong q_ld, const ulong q_col,
                                      __global const float *dout, const ulong o_ld, __global const float *lse,
                                      __global const float *Dv, const int b, const int T, const int H, const int rep,
                                      const int g, const int dh, const int w, const float scale, const int t0,
                                      const int ub, const int U, const int windowed, const int *kp,
                                      __local const float *ks, __local const float *vs, __local float *qs,
                                      __local float *dos, __local float *Ls, __local float *Ds, __local int *rowt,
                                      __local float *ps, __local float *dss)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0), NY = L / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX;
    const int BRQ = BM_BBT_NX * BM_BBT_TC, ld = dh + 1, ldp = BRQ + 1;
    barrier(CLK_LOCAL_MEM_FENCE); /* ks, vs ready / the previous tile no longer read */
    for (int e = lid; e < BRQ * dh; e += L) {
        const int r = e / dh, d = e - r * dh, u = ub + r;
        float qv = 0.0f, dv = 0.0f;
        if (u < U) {
            const int t = t0 + u / rep, h = g * rep + u % rep;
            const size_t row = (size_t)b * T + t;
            qv = scale * q[row * q_ld + q_col + (size_t)h * dh + d];
            dv = dout[row * o_ld + (size_t)h * dh + d];
        }
        qs[r * ld + d] = qv;
        dos[r * ld + d] = dv;
    }
    for (int r = lid; r < BRQ; r += L) {
        const int u = ub + r;
        float lv = 0.0f, dv = 0.0f;
        if (u < U) {
            const size_t ri = ((size_t)b * T + t0 + u / rep) * H + (size_t)(g * rep + u % rep);
            lv = lse[ri];
            dv = Dv[ri];
        }
        Ls[r] = lv;
        Ds[r] = dv;
        rowt[r] = u < U ? t0 + u / rep : -1;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float sc[BM_BBT_TR][BM_BBT_TC], dp[BM_BBT_TR][BM_BBT_TC];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++)
        #pragma unroll
        for (int j = 0; j < BM_BBT_TC; j++) sc[i][j] = dp[i][j] = 0.0f;
    for (int d = 0; d < dh; d++) {
        float kv[BM_BBT_TR], vv[BM_BBT_TR], qv[BM_BBT_TC], ov[BM_BBT_TC];
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++) {
            kv[i] = ks[(ty + NY * i) * ld + d];
            vv[i] = vs[(ty + NY * i) * ld + d];
        }
        #pragma unroll
        for (int j = 0; j < BM_BBT_TC; j++) {
            qv[j] = qs[(tx + BM_BBT_NX * j) * ld + d];
            ov[j] = dos[(tx + BM_BBT_NX * j) * ld + d];
        }
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++)
            #pragma unroll
            for (int j = 0; j < BM_BBT_TC; j++) {
                sc[i][j] += kv[i] * qv[j];
                dp[i][j] += vv[i] * ov[j];
            }
    }
    #pragma unroll
    for (int j = 0; j < BM_BBT_TC; j++) {
        const int r = tx + BM_BBT_NX * j, t = rowt[r];
        const float lv = Ls[r], dv = Ds[r];
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++) {
            const int ok = t >= 0 && kp[i] >= 0 && (!windowed || (kp[i] <= t && t < kp[i] + w));
            const float P = ok ? exp(sc[i][j] - lv) : 0.0f;
            ps[(ty + NY * i) * ldp + r] = P;
            dss[(ty + NY * i) * ldp + r] = P * (dp[i][j] - dv);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* The key gradients' sums over a row tile's first cnt rows, in row order: acck += dS Q (Q
 * already times scale), accv += P dO, for the item's keys ty + NY*i and columns tx + NX*jj. */
static inline void bm_bbt_rows_accumulate(float acck[BM_BBT_TR][BM_BBT_DCMAX], float accv[BM_BBT_TR][BM_BBT_DCMAX],
                                          __local const float *ps, __local const float *dss,
                                          __local const float *qs, __local const float *dos, const int cnt,
                                          const int dh)
{
    const int lid = (int)get_local_id(0), NY = (int)get_local_size(0) / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX;
    const int ld = dh + 1, ldp = BM_BBT_NX * BM_BBT_TC + 1;
    for (int r = 0; r < cnt; r++) {
        float pv[BM_BBT_TR], dv[BM_BBT_TR];
        #pragma unroll
        for (int i = 0; i < BM_BBT_TR; i++) {
            pv[i] = ps[(ty + NY * i) * ldp + r];
            dv[i] = dss[(ty + NY * i) * ldp + r];
        }
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) {
            const int col = tx + BM_BBT_NX * jj;
            if (col < dh) {
                const float qv = qs[r * ld + col], ov = dos[r * ld + col];
                #pragma unroll
                for (int i = 0; i < BM_BBT_TR; i++) {
                    acck[i][jj] += dv[i] * qv;
                    accv[i][jj] += pv[i] * ov;
                }
            }
        }
    }
}

/* The store path: the dS of a tile's (key, query row) pairs (dss [BKK, BRQ+1]; keyp: the keys'
 * positions, rowt: the rows' tokens, -1 none; rows from ub, heads fastest) into dsw [B*T, H, wv]
 * at p - (t - wv + 1) of row (t, h). Pairs outside a window are not written (their entries lie
 * outside the row's). Keys run fastest over the items: a row's entries are written side by side. */
static inline void bm_bbt_store_ds(__global float *dsw, __local const float *dss, __local const int *keyp,
                                   __local const int *rowt, const int BKK, const int BRQ, const int ub, const int b,
                                   const int g, const int rep, const int T, const int H, const int w, const int wv)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    for (int e = lid; e < BKK * BRQ; e += L) {
        const int r = e / BKK, k = e - r * BKK, t = rowt[r], p = keyp[k];
        if (t >= 0 && p >= 0 && p <= t && t < p + w) {
            const size_t ri = ((size_t)b * T + t) * H + (size_t)(g * rep + (ub + r) % rep);
            dsw[ri * wv + (size_t)(p - (t - wv + 1))] = dss[k * (BRQ + 1) + r];
        }
    }
}

/* global (NX*NY * ceil(T / (NY*TR)), Hkv, B), local (NX*NY, 1, 1). Locals: ks, vs
 * [NY*TR, dh+1]; qs, dos [NX*TC, dh+1]; ps, dss [NY*TR, NX*TC+1]; st [3*NX*TC + NY*TR].
 * With store_ds (the store path), also every (query row, window key) pair's dS into dSw at
 * scr + dsw_off (bm_bbt_store_ds), for bm_bmojo_bwd_dq_tiled. */
__kernel void bm_bmojo_bwd_keys_tiled(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off,
                                      const ulong dd_off, const ulong dmk_off, const ulong dmv_off,
                                      __global float *dkx, __global float *dvx, const ulong dx_ld,
                                      const ulong dkx_col, const ulong dvx_col, __global float *dkf,
                                      __global float *dvf, const ulong df_ld, const ulong dkf_col,
                                      const ulong dvf_col, const int store_ds, const ulong dsw_off, const int wv,
                                      __local float *ks, __local float *vs, __local float *qs,
                                      __local float *dos, __local float *ps, __local float *dss,
                                      __local float *st)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0), NY = L / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX;
    const int BKK = NY * BM_BBT_TR, BRQ = BM_BBT_NX * BM_BBT_TC, ld = dh + 1;
    const int rep = H / Hkv, M = m_f + m_e;
    const int g = (int)get_group_id(1), b = (int)get_group_id(2);
    const int p0 = (int)get_group_id(0) * BKK, np = min(BKK, T - p0);
    const size_t kxo = kx_col + (size_t)g * dh, vxo = vx_col + (size_t)g * dh;
    __global const float *lse = scr + lse_off, *Dv = scr + dd_off;
    __local float *Ls = st, *Ds = st + BRQ;
    /* as in bm_bmojo_bwd_q_tiled: the rows' tokens and the keys' positions (-1: none) come
     * through local memory, not from conditions inside the unrolled per-item loops */
    __local int *rowt = (__local int *)(st + 2 * BRQ), *keyp = rowt + BRQ;
    for (int cc = lid; cc < BKK; cc += L) keyp[cc] = cc < np ? p0 + cc : -1;

    for (int e = lid; e < BKK * dh; e += L) {
        const int cc = e / dh, d = e - cc * dh;
        float kval = 0.0f, vval = 0.0f;
        if (cc < np) {
            const size_t r = ((size_t)b * T + p0 + cc) * x_ld;
            kval = kx[r + kxo + d];
            vval = vx[r + vxo + d];
        }
        ks[cc * ld + d] = kval;
        vs[cc * ld + d] = vval;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int kp[BM_BBT_TR];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) kp[i] = keyp[ty + NY * i];
    float acck[BM_BBT_TR][BM_BBT_DCMAX], accv[BM_BBT_TR][BM_BBT_DCMAX];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++)
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) acck[i][jj] = accv[i][jj] = 0.0f;

    /* query rows u = (t - p0)*rep + j (head g*rep + j) of tokens p0 .. tqe-1 */
    const int tqe = min(T, p0 + np - 1 + w), U = (tqe - p0) * rep;
    for (int ub = 0; ub < U; ub += BRQ) {
        bm_bbt_rows_scores(q, q_ld, q_col, dout, o_ld, lse, Dv, b, T, H, rep, g, dh, w, scale, p0, ub, U, 1, kp, ks,
                           vs, qs, dos, Ls, Ds, rowt, ps, dss);
        if (store_ds) bm_bbt_store_ds(scr + dsw_off, dss, keyp, rowt, BKK, BRQ, ub, b, g, rep, T, H, w, wv);
        bm_bbt_rows_accumulate(acck, accv, ps, dss, qs, dos, min(BRQ, U - ub), dh);
    }

    /* the memory slots: eidetic entries holding p (chunks after p's, ascending), then fading */
    __global const float *dmk = scr + dmk_off, *dmv = scr + dmv_off;
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) {
        const int p = kp[i];
        if (p < 0) continue;
        for (int c = p / w + 1; c < NC && m_e > 0; c++) {
            __global const int *set = sets + ((size_t)b * NC + c) * m_e;
            const int ne = min(m_e, c * w);
            int hit = -1;
            for (int e = 0; e < ne && hit < 0; e++)
                if (set[e] == p) hit = e;
            if (hit < 0) continue;
            const size_t o = (((size_t)b * NC + c) * Hkv + g) * M + m_f + hit;
            #pragma unroll
            for (int jj = 0; jj < BM_BBT_DCMAX; jj++) {
                const int col = tx + BM_BBT_NX * jj;
                if (col < dh) {
                    acck[i][jj] += dmk[o * dh + col];
                    accv[i][jj] += dmv[o * dh + col];
                }
            }
        }
        const size_t r = (size_t)b * T + p;
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) {
            const int col = tx + BM_BBT_NX * jj;
            if (col < dh) {
                dkx[r * dx_ld + dkx_col + (size_t)g * dh + col] = acck[i][jj];
                dvx[r * dx_ld + dvx_col + (size_t)g * dh + col] = accv[i][jj];
            }
        }
        const int c1 = min((p + m_f) / w, NC - 1);
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) {
            const int col = tx + BM_BBT_NX * jj;
            if (col < dh) {
                float ak = 0.0f, av = 0.0f;
                for (int c = p / w + 1; c <= c1; c++) {
                    const size_t o = ((((size_t)b * NC + c) * Hkv + g) * M + (p - c * w + m_f)) * dh + col;
                    ak += dmk[o];
                    av += dmv[o];
                }
                dkf[r * df_ld + dkf_col + (size_t)g * dh + col] = ak;
                dvf[r * df_ld + dvf_col + (size_t)g * dh + col] = av;
            }
        }
    }
}

/* ---- The memory slots' sums, tiled (the tiled paths' step 2) -------------------------------
 * bm_bmojo_bwd_mem gives each (chunk, kv head, slot) a group that reads all of the chunk's query
 * rows (w tokens x rep heads of Q and dO) for one key: at bmojo-130m (T 2048, 36 slots) each
 * row is read 36 times, 8.3 us/token on an H200 against the forward attention's 2.6. Here a
 * group holds a tile of BKK = NY*TR slots of one (chunk c, kv head g) in local memory and takes
 * the chunk's rows in tiles of BRQ (bm_bbt_rows_scores / _accumulate, as bm_bmojo_bwd_keys_tiled
 * does for window keys; every row of the chunk sees every slot that holds a key). To fill a GPU
 * when B*NC*Hkv is small, the chunk's rows are split into NZ parts of whole row tiles; with NZ 1
 * the group writes dmk = scale * sum dS q and dmv = sum P dO itself, else its part's sums go to
 * the scratch's parts [B, NC, Hkv, NZ, M, dh] and bm_bmojo_bwd_mem_sum adds them in part order. A slot without a key (fading slot before position 0, eidetic entry past the set)
 * has P = dS = 0 for every row: zero rows. With store_ds (the store path), also every (row, slot)
 * dS into dSm [B*T, H, M] (zeros for slots without a key), as bm_bmojo_bwd_mem does.
 * Measured (H100, bmojo-130m, B 1, T 2048, commit bd235cf against 32e537b): 8.27 us/token for
 * bm_bmojo_bwd_mem -> 1.03 here + 0.09 in bm_bmojo_bwd_mem_sum; training +8.8 % (docs/performance.md). */

/* global (NX*NY * NZ*nst, NC*Hkv, B), local (NX*NY, 1, 1): group (part z, slot tile kt) =
 * (z*nst + kt, c*Hkv + g, b), nst = ceil(M / BKK). Locals as bm_bmojo_bwd_keys_tiled's. part_off:
 * the parts' dmk (dmv after B*NC*Hkv*NZ*M*dh floats) when NZ > 1. */
__kernel void bm_bmojo_bwd_mem_tiled(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off,
                                     const ulong dd_off, const ulong dmk_off, const ulong dmv_off, const int NZ,
                                     const ulong part_off, const int store_ds, const ulong dsm_off,
                                     __local float *ks, __local float *vs, __local float *qs, __local float *dos,
                                     __local float *ps, __local float *dss, __local float *st)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0), NY = L / BM_BBT_NX;
    const int ty = lid / BM_BBT_NX, tx = lid - ty * BM_BBT_NX;
    const int BKK = NY * BM_BBT_TR, BRQ = BM_BBT_NX * BM_BBT_TC, ld = dh + 1;
    const int rep = H / Hkv, M = m_f + m_e, nst = (M + BKK - 1) / BKK;
    const int z = (int)get_group_id(0) / nst, j0 = ((int)get_group_id(0) - z * nst) * BKK;
    const int c = (int)get_group_id(1) / Hkv, g = (int)get_group_id(1) - c * Hkv, b = (int)get_group_id(2);
    const int s = c * w, nt = min(s + w, T) - s, U = nt * rep;
    /* the part's rows: whole row tiles, the same split for every slot tile */
    const int per = ((U + BRQ - 1) / BRQ + NZ - 1) / NZ * BRQ, u0 = min(U, z * per), u1 = min(U, u0 + per);
    __global const float *lse = scr + lse_off, *Dv = scr + dd_off;
    __global const int *set = sets + ((size_t)b * NC + c) * max(m_e, 1);
    __local float *Ls = st, *Ds = st + BRQ;
    __local int *rowt = (__local int *)(st + 2 * BRQ), *keyp = rowt + BRQ;
    /* slot j = j0 + cc: its position (fading: s - m_f + j; eidetic: the set's entry), -1 when it
     * holds no key; fading slots read Kf/Vf, eidetic ones Kx/Vx */
    for (int cc = lid; cc < BKK; cc += L) {
        const int j = j0 + cc;
        int p = -1;
        if (j < m_f) {
            p = s - m_f + j;
        } else if (j < M && j - m_f < min(m_e, s)) {
            p = set[j - m_f];
            if (p >= s) p = -1;
        }
        keyp[cc] = p;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < BKK * dh; e += L) {
        const int cc = e / dh, d = e - cc * dh, p = keyp[cc];
        float kval = 0.0f, vval = 0.0f;
        if (p >= 0) {
            const size_t r = (size_t)b * T + p;
            if (j0 + cc < m_f) {
                kval = kf[r * f_ld + kf_col + (size_t)g * dh + d];
                vval = vf[r * f_ld + vf_col + (size_t)g * dh + d];
            } else {
                kval = kx[r * x_ld + kx_col + (size_t)g * dh + d];
                vval = vx[r * x_ld + vx_col + (size_t)g * dh + d];
            }
        }
        ks[cc * ld + d] = kval;
        vs[cc * ld + d] = vval;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int kp[BM_BBT_TR];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) kp[i] = keyp[ty + NY * i];
    float acck[BM_BBT_TR][BM_BBT_DCMAX], accv[BM_BBT_TR][BM_BBT_DCMAX];
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++)
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) acck[i][jj] = accv[i][jj] = 0.0f;

    for (int ub = u0; ub < u1; ub += BRQ) {
        bm_bbt_rows_scores(q, q_ld, q_col, dout, o_ld, lse, Dv, b, T, H, rep, g, dh, w, scale, s, ub, u1, 0, kp, ks,
                           vs, qs, dos, Ls, Ds, rowt, ps, dss);
        if (store_ds) {
            /* dSm [B*T, H, M]: a row's slots side by side (slots fastest over the items) */
            __global float *dsm = scr + dsm_off;
            for (int e = lid; e < BKK * BRQ; e += L) {
                const int r = e / BKK, cc = e - r * BKK, t = rowt[r];
                if (t >= 0 && j0 + cc < M) {
                    const size_t ri = ((size_t)b * T + t) * H + (size_t)(g * rep + (ub + r) % rep);
                    dsm[ri * M + j0 + cc] = dss[cc * (BRQ + 1) + r];
                }
            }
        }
        bm_bbt_rows_accumulate(acck, accv, ps, dss, qs, dos, min(BRQ, u1 - ub), dh);
    }

    const size_t slot0 = ((size_t)b * NC + c) * Hkv + g;
    #pragma unroll
    for (int i = 0; i < BM_BBT_TR; i++) {
        const int j = j0 + ty + NY * i;
        if (j >= M) continue;
        #pragma unroll
        for (int jj = 0; jj < BM_BBT_DCMAX; jj++) {
            const int col = tx + BM_BBT_NX * jj;
            if (col >= dh) continue;
            if (NZ == 1) {
                const size_t o = (slot0 * M + j) * dh + col;
                scr[dmk_off + o] = acck[i][jj]; /* Q came times scale */
                scr[dmv_off + o] = accv[i][jj];
            } else {
                const size_t o = ((slot0 * NZ + z) * M + j) * dh + col;
                const size_t nparts = (size_t)get_num_groups(2) * NC * Hkv * NZ * M * dh;
                scr[part_off + o] = acck[i][jj];
                scr[part_off + nparts + o] = accv[i][jj];
            }
        }
    }
}

/* global (>= B*NC*Hkv*M*dh): dmk and dmv, the sums of the NZ parts' sums, parts in order
 * (deterministic). */
__kernel void bm_bmojo_bwd_mem_sum(__global float *scr, const ulong dmk_off, const ulong dmv_off, const ulong part_off,
                                   const ulong n, const int NZ, const int Mdh)
{
    const size_t gid = get_global_id(0);
    if (gid >= n) return;
    const size_t slot = gid / (size_t)Mdh, x = gid - slot * (size_t)Mdh, nparts = n * (size_t)NZ;
    float ak = 0.0f, av = 0.0f;
    for (int z = 0; z < NZ; z++) {
        const size_t o = (slot * NZ + z) * (size_t)Mdh + x;
        ak += scr[part_off + o];
        av += scr[part_off + nparts + o];
    }
    scr[dmk_off + gid] = ak;
    scr[dmv_off + gid] = av;
}
