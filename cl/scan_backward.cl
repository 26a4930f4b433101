/* scan_backward.cl — backward of the Mamba-1 selective scan (bm_op_scan_backward in
 * src/ops_backward.h; launcher src/ops/op_scan_backward.c, reference src/ref/ref_scan_backward.c).
 *
 * Forward (zero initial state), per sequence b, channel c, state j:
 *   x_t = dt_t + dt_bias, dlt_t = softplus(x_t) (bm_softplus: threshold 20), a_t = exp(dlt_t A),
 *   h_t = a_t h_{t-1} + dlt_t B_t u_t, s_t = sum_j C_t h_t + D u_t, y_t = s_t silu(z_t).
 * Backward, dys_t = dy_t silu(z_t):
 *   dz = dy s silu'(z); dC_t[j] = sum_c dys h_t; dh_t = C_t dys_t + a_{t+1} dh_{t+1};
 *   dB_t[j] = sum_c dh dlt u; du = D dys + dlt sum_j dh B; ddlt = sum_j dh (A a h_{t-1} + B u);
 *   ddt = ddlt softplus'(x) (1 past the threshold, as the forward takes x itself);
 *   dA += dh h_{t-1} a dlt; dD += dys u; d_dt_bias += ddt.
 *
 * Data layout (fp32, row r = b*T + t): u, du, ddt [B*T, di] dense; dt [B*T, dt_ld];
 * bc / dbc [B*T, bc_ld / dbc_ld] with B_t at b_col.., C_t at c_col..; z / dz at z_col.. of
 * [B*T, z_ld / dz_ld]; A, dA [di, n]; dt_bias, D, d_dt_bias, dD [di].
 * Scratch (launcher-owned): ckpt [nchunks-1][B][di][n] (h at the end of chunks 0..nchunks-2),
 * pbc [nblocks][B*T][2][n] (dB | dC summed over one block's channels), pp = pA [B][di][n],
 * pD [B][di], pbias [B][di] (per-sequence weight-gradient partials), pre = [dl | dys]
 * [2][B*T][di] (delta and dy silu(z), from bm_scan_bwd_pre).
 *
 * Kernels:
 *   bm_scan_bwd_main    one work-item per (b, c, j); a work-group is CB channels x n states of
 *                       one sequence (local id l: j = l % n, channel cb*CB + l / n). Phase 1 runs
 *                       the recurrence over all T and stores h every BM_SCANB_L steps (ckpt).
 *                       Phase 2 walks the chunks backwards: recomputes the chunk's h (and delta)
 *                       into private arrays of BM_SCANB_L (fully unrolled: registers), then runs
 *                       the reverse recursion over it carrying a_{t+1} dh_{t+1}. Each step writes
 *                       five per-(c, j) terms into local memory; after each chunk the group
 *                       reduces them: over j (du, ddlt, s: then du, ddt, dz of (t, c) are final)
 *                       and over its CB channels (dB, dC partials to pbc).
 *                       dA is a register sum per work-item; dD and d_dt_bias are sums of the
 *                       reducing work-items, combined in fixed order at the end. Per sequence:
 *                       partials in pp. No float atomics: every sum has a fixed order.
 *   bm_scan_bwd_dbc     sum of pbc over the channel blocks, in block order, into dbc.
 *   bm_scan_bwd_params  dA += sum_b pA, dD += sum_b pD, d_dt_bias += sum_b pbias (b order).
 *
 * Design notes:
 *   - Storing h for all T would be [B*T, di, n] (200 MB for T 2048, di 1536, n 16); the
 *     checkpoints cost 1/BM_SCANB_L of it and one extra forward recurrence.
 *   - A work-item per (b, c) with the states in registers (the forward's layout) makes du/ddlt
 *     free but cannot keep a chunk of h (L x n floats) in registers; a work-item per state keeps
 *     L floats. The price is the local-memory reduction over j, amortised over a chunk
 *     (one barrier pair per chunk).
 *   - Parallelism is B*di*n work-items, sequential over time (no chunk-parallel reverse scan).
 *   - A chunk's loads (u, delta, B, C, dy silu(z) for L steps, and the reducing item's row) are
 *     issued together, one chunk ahead of its arithmetic (rows clamped to T-1, so
 *     unconditional; double-buffered in registers), and
 *     softplus / silu are computed once per (row, channel) by bm_scan_bwd_pre instead of once per
 *     state: per-step loads were the critical path.
 *   - POCL: barriers inside the unrolled step loop (a reduction tile shorter than the chunk) sent
 *     its kernel compiler into a CFG blow-up (minutes); hence the tile is the chunk and the
 *     barriers sit outside the unrolled loops.
 *   - Measured on an H100 (B=1, T=2048, di=1536, n=16; bench harness outside the tree; the
 *     forward bm_op_scan: 93 us): first version (a load round trip per step, softplus per state)
 *     3.6 ms; loads per chunk 1.47 ms (L=8), 1.32 ms (L=16), 1.87 ms (L=4); B=4: 3.3 ms.
 *     Channels per group 8 (128 items) was best; 1 item per channel block cost 40 %.
 *     Not done: prefetching the next chunk during the current one, native_exp, a chunk-parallel
 *     reverse scan (the dh carry combined over chunks like the forward's states) for B=1.
 */
#ifndef BM_SCANB_L
#define BM_SCANB_L 8      /* chunk length: h recomputed per chunk from a checkpoint (registers),
                             also the local-memory reduction tile (5 * L * CB * (n|1) floats) */
#endif

/* The launcher reads BM_SCANB_L back from this kernel's required work-group size
 * (CL_KERNEL_COMPILE_WORK_GROUP_SIZE): a -D override needs no host change. Never launched. */
__kernel __attribute__((reqd_work_group_size(BM_SCANB_L, 1, 1))) void bm_scan_bwd_config(__global int *unused)
{
    if (unused) unused[0] = BM_SCANB_L;
}

/* d softplus(x) / dx consistent with bm_softplus: 1 past the threshold, else sigmoid(x). */
static inline float bm_scanb_dsoftplus(float x) { return x > 20.0f ? 1.0f : 1.0f / (1.0f + exp(-x)); }

/* Global: (nblocks * CB * n, B), local (CB * n, 1). red: 5 * BM_SCANB_L * CB * NJP floats, NJP = n | 1
 * (an odd row so that the reads over j of consecutive channels spread over the banks). */
__kernel void bm_scan_bwd_main(int T, int di, int n, int CB,
                               __global const float *u, __global const float *dt, uint dt_ld,
                               __global const float *dt_bias, __global const float *A,
                               __global const float *bc, uint bc_ld, uint b_col, uint c_col,
                               __global const float *Dv, __global const float *z, uint z_ld, uint z_col,
                               __global const float *dy, __global const float *pre,
                               __global float *du_out, __global float *ddt_out,
                               __global float *dz_out, uint dz_ld,
                               __global float *ckpt, __global float *pbc, __global float *pp,
                               __local float *red)
{
    const int l = (int)get_local_id(0);
    const int WG = CB * n;
    const int j = l % n;
    const int cl = l / n;
    const int cb = (int)get_group_id(0);
    const int c = cb * CB + cl;
    const int b = (int)get_global_id(1);
    const int B = (int)get_global_size(1);
    const int active = c < di;
    const int cc = active ? c : di - 1;   /* padding items compute, never store, add zeros */
    const int NJP = n | 1;
    const int sq = BM_SCANB_L * CB * NJP; /* one quantity's block of red */
    const size_t row_b = (size_t)b * (size_t)T;
    const size_t BT = (size_t)B * (size_t)T;
    __global const float *dl_in = pre, *dys_in = pre + BT * (size_t)di;   /* bm_scan_bwd_pre */
    const float a = A[(size_t)cc * n + j];
    const int nc = (T + BM_SCANB_L - 1) / BM_SCANB_L;
    /* ckpt[k - 1] = h at the end of chunk k - 1 (k >= 1) of this item */
    __global float *ck = ckpt + ((size_t)b * di + cc) * n + j;
    const size_t ck_stride = (size_t)B * (size_t)di * (size_t)n;

    /* Phase 1: checkpoints. A chunk's loads are issued together (rows clamped to T-1, so
     * unconditional) one chunk ahead of its arithmetic: memory latency overlaps the recurrence. */
    {
        float h = 0.0f;
        float pd[BM_SCANB_L], pu[BM_SCANB_L], pb[BM_SCANB_L];
#pragma unroll
        for (int i = 0; i < BM_SCANB_L; i++) {
            const size_t r = row_b + (size_t)min(i, T - 1);
            pd[i] = dl_in[r * di + cc];
            pu[i] = u[r * di + cc];
            pb[i] = bc[r * bc_ld + b_col + j];
        }
        for (int t0 = 0; t0 < T; t0 += BM_SCANB_L) {
            if (t0 > 0 && active) ck[(size_t)(t0 / BM_SCANB_L - 1) * ck_stride] = h;
            /* the next chunk's loads, in flight during this chunk's arithmetic */
            float nd[BM_SCANB_L], nu[BM_SCANB_L], nb[BM_SCANB_L];
#pragma unroll
            for (int i = 0; i < BM_SCANB_L; i++) {
                const size_t r = row_b + (size_t)min(t0 + BM_SCANB_L + i, T - 1);
                nd[i] = dl_in[r * di + cc];
                nu[i] = u[r * di + cc];
                nb[i] = bc[r * bc_ld + b_col + j];
            }
#pragma unroll
            for (int i = 0; i < BM_SCANB_L; i++) {
                if (t0 + i < T) {
                    const float dlt = pd[i];
                    h = exp(dlt * a) * h + dlt * pb[i] * pu[i];
                }
            }
#pragma unroll
            for (int i = 0; i < BM_SCANB_L; i++) pd[i] = nd[i], pu[i] = nu[i], pb[i] = nb[i];
        }
    }

    /* Phase 2: chunks backwards. */
    float g = 0.0f;       /* a_{t+1} dh_{t+1} */
    float acc_a = 0.0f;   /* dA of (c, j) for this sequence */
    float acc_d = 0.0f, acc_bias = 0.0f;   /* dD, d_dt_bias of channel cb*CB + l % CB, part */
    const int rc = cb * CB + l % CB;       /* the channel this item reduces over j (WG % CB == 0) */
    const int rcc = min(rc, di - 1);
    /* Loads of chunk k (rows clamped: unconditional), issued one chunk ahead of its arithmetic:
     * pd/pu/pb/pc/py (delta, u, B, C, dy silu(z)), h0 (its checkpoint), and q_* (the row of this
     * item's first (t, channel rc) of the reduction over j). */
#define BM_SCANB_LOAD_CHUNK(k_, d_, u_, b_, c_, y_, h0_, qx_, qu_, qz_, qy_)                         \
    do {                                                                                          \
        const int t0_ = (k_) * BM_SCANB_L;                                                        \
        _Pragma("unroll") for (int i_ = 0; i_ < BM_SCANB_L; i_++) {                               \
            const size_t r_ = row_b + (size_t)min(t0_ + i_, T - 1);                               \
            d_[i_] = dl_in[r_ * di + cc];                                                         \
            u_[i_] = u[r_ * di + cc];                                                             \
            b_[i_] = bc[r_ * bc_ld + b_col + j];                                                  \
            c_[i_] = bc[r_ * bc_ld + c_col + j];                                                  \
            y_[i_] = dys_in[r_ * di + cc];                                                        \
        }                                                                                         \
        h0_ = (k_) == 0 ? 0.0f : ck[(size_t)max((k_) - 1, 0) * ck_stride];                        \
        const size_t ro_ = row_b + (size_t)min(t0_ + l / CB, T - 1);                              \
        qx_ = dt[ro_ * dt_ld + rcc] + dt_bias[rcc];                                               \
        qu_ = u[ro_ * di + rcc];                                                                  \
        qz_ = z[ro_ * z_ld + z_col + rcc];                                                        \
        qy_ = dy[ro_ * di + rcc];                                                                 \
    } while (0)
    float pd[BM_SCANB_L], pu[BM_SCANB_L], pb[BM_SCANB_L], pc[BM_SCANB_L], py[BM_SCANB_L];
    float h0, q_x, q_u, q_z, q_y;
    BM_SCANB_LOAD_CHUNK(nc - 1, pd, pu, pb, pc, py, h0, q_x, q_u, q_z, q_y);
    for (int k = nc - 1; k >= 0; k--) {
        const int t0 = k * BM_SCANB_L;
        const int len = min(BM_SCANB_L, T - t0);
        float hist[BM_SCANB_L], ea[BM_SCANB_L];
        float nd[BM_SCANB_L], nu[BM_SCANB_L], nb[BM_SCANB_L], nc_[BM_SCANB_L], ny[BM_SCANB_L];
        float nh0, n_x, n_u, n_z, n_y;
        BM_SCANB_LOAD_CHUNK(max(k - 1, 0), nd, nu, nb, nc_, ny, nh0, n_x, n_u, n_z, n_y);
        {
            float h = h0;
#pragma unroll
            for (int i = 0; i < BM_SCANB_L; i++) {
                const float e = exp(pd[i] * a);
                if (i < len) h = e * h + pd[i] * pb[i] * pu[i];
                ea[i] = e;
                hist[i] = h;
            }
        }
        /* Reverse recursion over the chunk; the five per-(c, j) terms of step i go to row i of red.
         * No barrier inside the unrolled loop (POCL's compiler explodes on barriers in unrolled
         * branches). */
#pragma unroll
        for (int ii = 0; ii < BM_SCANB_L; ii++) {
            const int i = BM_SCANB_L - 1 - ii;
            if (i < len) {
                const float dlt = pd[i];
                const float ut = pu[i];
                const float Bt = pb[i];
                const float Ct = pc[i];
                const float dys = py[i];
                const float ht = hist[i];
                const float hp = i > 0 ? hist[i > 0 ? i - 1 : 0] : h0;
                const float at = ea[i];
                const float dh = Ct * dys + g;
                const int base = (i * CB + cl) * NJP + j;
                red[base] = dh * Bt;
                red[base + sq] = dh * (a * at * hp + Bt * ut);
                red[base + 2 * sq] = Ct * ht;
                red[base + 3 * sq] = active ? dh * dlt * ut : 0.0f;
                red[base + 4 * sq] = active ? dys * ht : 0.0f;
                acc_a += dh * hp * at * dlt;
                g = at * dh;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* over j: du, ddt, dz of (t, channel rc) */
        for (int o = l; o < len * CB; o += WG) {
            const int tt = o / CB;
            if (rc < di) {
                const int rb = (tt * CB + (o - tt * CB)) * NJP;
                float s_du = 0.0f, s_dd = 0.0f, s_s = 0.0f;
                for (int q = 0; q < n; q++) {
                    s_du += red[rb + q];
                    s_dd += red[rb + sq + q];
                    s_s += red[rb + 2 * sq + q];
                }
                const size_t ro = row_b + (size_t)(t0 + tt);
                const int pre = o == l;
                const float x = pre ? q_x : dt[ro * dt_ld + rc] + dt_bias[rc];
                const float uo = pre ? q_u : u[ro * di + rc];
                const float zo = pre ? q_z : z[ro * z_ld + z_col + rc];
                const float dyo = pre ? q_y : dy[ro * di + rc];
                const float Do = Dv[rc];
                const float sg = 1.0f / (1.0f + exp(-zo));
                const float dyso = dyo * zo * sg;
                const float ddt = s_dd * bm_scanb_dsoftplus(x);
                du_out[ro * di + rc] = Do * dyso + bm_softplus(x) * s_du;
                ddt_out[ro * di + rc] = ddt;
                dz_out[ro * dz_ld + z_col + rc] = dyo * (s_s + Do * uo) * sg * (1.0f + zo * (1.0f - sg));
                acc_d += dyso * uo;
                acc_bias += ddt;
            }
        }
        /* over the group's channels: dB, dC partials of (t, j) */
        for (int o = l; o < len * n; o += WG) {
            const int tt = o / n, oj = o - tt * n;
            float s_b = 0.0f, s_c = 0.0f;
            for (int q = 0; q < CB; q++) {
                s_b += red[3 * sq + (tt * CB + q) * NJP + oj];
                s_c += red[4 * sq + (tt * CB + q) * NJP + oj];
            }
            const size_t ro = row_b + (size_t)(t0 + tt);
            __global float *pr = pbc + ((size_t)cb * BT + ro) * (size_t)(2 * n);
            pr[oj] = s_b;
            pr[n + oj] = s_c;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
        for (int i = 0; i < BM_SCANB_L; i++) pd[i] = nd[i], pu[i] = nu[i], pb[i] = nb[i], pc[i] = nc_[i], py[i] = ny[i];
        h0 = nh0, q_x = n_x, q_u = n_u, q_z = n_z, q_y = n_y;
    }
#undef BM_SCANB_LOAD_CHUNK
    if (active) pp[((size_t)b * di + c) * n + j] = acc_a;
    /* dD, d_dt_bias of each channel: its reducing items' sums in item order */
    barrier(CLK_LOCAL_MEM_FENCE);
    red[l] = acc_d;
    red[WG + l] = acc_bias;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (l < CB && cb * CB + l < di) {
        float sd = 0.0f, sb = 0.0f;
        for (int m = l; m < WG; m += CB) {
            sd += red[m];
            sb += red[WG + m];
        }
        __global float *pd = pp + ck_stride;   /* after pA [B][di][n] */
        pd[(size_t)b * di + cb * CB + l] = sd;
        pd[(size_t)B * di + (size_t)b * di + cb * CB + l] = sb;
    }
}

/* Per (row, channel), once instead of once per state: dl = softplus(dt + dt_bias) and
 * dys = dy silu(z), dense [B*T, di] each: pre = [dl | dys]. Global: (round_up(di, wg), B*T). */
__kernel void bm_scan_bwd_pre(int di, __global const float *dt, uint dt_ld, __global const float *dt_bias,
                              __global const float *z, uint z_ld, uint z_col, __global const float *dy,
                              __global float *pre)
{
    const int c = (int)get_global_id(0);
    const size_t r = get_global_id(1);
    if (c >= di) return;
    __global float *dl = pre, *dys = pre + get_global_size(1) * (size_t)di;
    dl[r * di + c] = bm_softplus(dt[r * dt_ld + c] + dt_bias[c]);
    dys[r * di + c] = dy[r * di + c] * bm_silu(z[r * z_ld + z_col + c]);
}

/* dbc[r, b_col + j] = sum over blocks of pbc[blk][r][0][j], dbc[r, c_col + j] likewise with [1].
 * Global: (B*T * 2n), any local. */
__kernel void bm_scan_bwd_dbc(int BT, int n, int nblk, __global const float *pbc, __global float *dbc, uint dbc_ld,
                              uint b_col, uint c_col)
{
    const size_t idx = get_global_id(0);
    const size_t w = (size_t)(2 * n);
    if (idx >= (size_t)BT * w) return;
    const size_t r = idx / w;
    const int q = (int)(idx - r * w);
    float s = 0.0f;
    for (int k = 0; k < nblk; k++) s += pbc[(size_t)k * (size_t)BT * w + idx];
    dbc[r * dbc_ld + (q < n ? b_col + (uint)q : c_col + (uint)(q - n))] = s;
}

/* dA[i] += sum_b pA[b][i] (i < di*n); dD[c] += sum_b pD[b][c]; d_dt_bias[c] += sum_b pbias[b][c].
 * Global: (di * n), any local. */
__kernel void bm_scan_bwd_params(int B, int di, int n, __global const float *pp, __global float *dA,
                                 __global float *dD, __global float *d_dt_bias)
{
    const size_t i = get_global_id(0);
    const size_t dn = (size_t)di * (size_t)n;
    if (i >= dn) return;
    float s = 0.0f;
    for (int b = 0; b < B; b++) s += pp[(size_t)b * dn + i];
    dA[i] += s;
    if (i % (size_t)n == 0) {
        const size_t c = i / (size_t)n;
        __global const float *pd = pp + (size_t)B * dn;
        float sd = 0.0f, sb = 0.0f;
        for (int b = 0; b < B; b++) {
            sd += pd[(size_t)b * di + c];
            sb += pd[(size_t)B * di + (size_t)b * di + c];
        }
        dD[c] += sd;
        d_dt_bias[c] += sb;
    }
}
