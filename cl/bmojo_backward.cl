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
 *   sets   int [B, NC, max(m_e,1)]: E(s) best first, -1 pads (bm_op_bmojo_sets). Entry e of
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
 *     order: dmk = scale * sum dS q, dmv = sum P dO. Invalid slots get zero rows.
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
 * cost far more at these sizes). */

/* Sets of a sequence from position 0 (bm_op_bmojo_sets): bm_bmojo_merge left E(s_c) in the
 * scratch's sel [B, NC, m_e]; entries past min(m_e, s) are -1 here. global (>= B*NC*max(m_e,1)). */
__kernel void bm_bmojo_bwd_sets_fill(__global const float *scr, const ulong sel_off, __global int *sets,
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
                             __global float *scr, const ulong lse_off, const ulong dd_off, __local float *qs,
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

    /* pass 1: softmax statistics */
    float m = -INFINITY, l = 0.0f;
    for (int i = lid; i < n; i += L) {
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
    const float mx = bm_bmojo_bwd_max(red, m);
    const float lsum = bm_bmojo_bwd_sum(red, m == -INFINITY ? 0.0f : l * exp(m - mx));
    const float lse = mx + log(lsum);

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

/* The gradient sums of one key (ks, vs in local memory) over the queries t0 .. t0+nt-1 of
 * sequence b and the rep heads of kv head g, in batches of L (query, head) uses:
 * acck += sum dS q, accv += sum P dO (acck unscaled). Locals: pv, ds [L]; ur [L]. */
static inline void bm_bmojo_bwd_key_sums(__global const float *q, const ulong q_ld, const ulong q_col,
                                         __global const float *dout, const ulong o_ld, __global const float *lse,
                                         __global const float *Dv, const int b, const int T, const int H,
                                         const int rep, const int g, const int dh, const float scale, const int t0,
                                         const int nt, __local const float *ks, __local const float *vs,
                                         __local float *acck, __local float *accv, __local float *pv,
                                         __local float *ds, __local int *ur)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int U = nt * rep;
    for (int base = 0; base < U; base += L) {
        const int u = base + lid;
        if (u < U) {
            const int t = t0 + u / rep, h = g * rep + u % rep;
            const size_t row = (size_t)b * T + t, ri = row * H + h;
            const float sc = scale * bm_bmojo_bwd_dot_gl(q + row * q_ld + q_col + (size_t)h * dh, ks, dh);
            const float P = exp(sc - lse[ri]);
            const float dp = bm_bmojo_bwd_dot_gl(dout + row * o_ld + (size_t)h * dh, vs, dh);
            pv[lid] = P;
            ds[lid] = P * (dp - Dv[ri]);
            ur[lid] = (int)ri;
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
 * acck, accv [dh]; pv, ds [L]; ur [L]. */
__kernel void bm_bmojo_bwd_mem(BM_BMOJO_BWD_VIEWS, __global float *scr, const ulong lse_off, const ulong dd_off,
                               const ulong dmk_off, const ulong dmv_off, __local float *ks, __local float *vs,
                               __local float *acck, __local float *accv, __local float *pv, __local float *ds,
                               __local int *ur)
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
    if (p < 0) { /* no key in this slot (uniform over the group) */
        for (int x = lid; x < dh; x += L) dmk[x] = dmv[x] = 0.0f;
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
                          min(s + w, T) - s, ks, vs, acck, accv, pv, ds, ur);
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
                          min(p + w, T) - p, ks, vs, acck, accv, pv, ds, ur);
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
