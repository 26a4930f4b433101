/* scan_backward_cpu.cl — the selective-scan backward for CPU devices (POCL): bm_op_scan_backward's
 * contract (src/ops_backward.h; the math and the GPU form: cl/scan_backward.cl), launcher
 * src/ops/op_scan_backward_cpu.c, reference src/ref/ref_scan_backward.c. Uses bm_scan_exp_a /
 * BM_SCAN_ASCALE (cl/scan.cl) and bm_scanc_* (cl/scan_cpu.cl).
 *
 * Layout: as cl/scan_backward.cl (u, du, ddt [B*T, di]; dt [B*T, dt_ld]; bc / dbc with B_t at
 * b_col, C_t at c_col; z / dz at z_col; A [di, n]), and the launcher's scratch:
 *   ckpt [B][nblk][nc-1][n][16]: h at the start of chunks 1 .. nc-1 of one work-item (chunks of
 *        BM_SCANBC_L steps), its 16 channels contiguous;
 *   pbc  [nblk][B*T][2][n]: dB | dC of a row summed over one item's 16 channels (summed over the
 *        items by bm_scan_bwd_dbc, in block order);
 *   pp   pA [B][di][n], pD [B][di], pbias [B][di] (summed over sequences by bm_scan_bwd_params).
 *
 * Shape of the work: one work-item per (16 consecutive channels, sequence), a CPU thread's job, as
 * the forward's bm_scan_cpu: the channels are the lanes of float16 vectors, each state j one
 * vector. Phase 1 runs the forward recurrence over the whole sequence and stores h every
 * BM_SCANBC_L steps. Phase 2 walks the chunks backwards: it recomputes the chunk's h and
 * exp(delta A) into private arrays (L1), then runs the reverse recursion over them, carrying
 * g = a_{t+1} dh_{t+1} per state. Per step the sums over states (du, ddelta, y's s) are vector
 * FMAs across the state vectors (no horizontal work); the sums over channels (dB, dC of the row)
 * are 16 horizontal sums of 16 lanes each, done together as a tree of .even/.odd pair sums
 * (bm_scanbc_lane_sums: 15 pair steps for 16 sums). softplus(dt + dt_bias), dy silu(z) and
 * silu'(z) are vector operations per (row, 16 channels): no bm_scan_bwd_pre launch.
 * Padding lanes (a last item with fewer than 16 channels) read u = dy = 0, so their h, dh and
 * every contribution are zero; only real lanes are stored. Padding states (j >= n) are skipped
 * by a uniform branch in the unrolled state loops (their lanes of the dB/dC sums are zero): a
 * 2-layer MQAR Mamba (d_state 4) ran 16 states per step before. Every sum has a fixed order:
 * deterministic.
 *
 * Why: the GPU form puts one work-item on each (channel, state) with a local-memory reduction
 * between barriers; POCL runs its work-items as scalar loops: bm_scan_bwd_main and _pre were
 * 12.9 + 2.6 us of a 2-layer MQAR Mamba's 19.5 us/token pass (the forward's bm_scan_cpu: 0.57).
 * Measured (POCL, 2 cores of an AMD EPYC, `bmojo bench --grad --config configs/mqar/<m>.yaml -p 256
 * -b 16 -r 2 --profile`, c77402b and this form in turn, two rounds): mamba-2l main + pre 12.9 +
 * 2.6 -> 1.8 / 2.9 us/token, bmojo-2l (d_state 8) 24.1-24.5 + 2.6 -> 1.8 / 3.1.
 * Not for GPUs: B x di / 16 work-items cannot fill one.
 * Tunables: BM_SCANBC_L (steps per chunk; the private arrays hold 2 L + 1 chunks of 16 float16),
 * BM_SCANC_NS (cl/scan_cpu.cl: the most states, 16).
 */
#ifndef BM_SCANBC_L
#define BM_SCANBC_L 8
#endif

/* The launcher reads BM_SCANBC_L back from this kernel's required work-group size. Never launched. */
__kernel __attribute__((reqd_work_group_size(BM_SCANBC_L, 1, 1))) void bm_scan_bwd_cpu_config(__global int *unused)
{
    if (unused) unused[0] = BM_SCANBC_L;
}

/* [x0+x1, x2+x3, .., x14+x15, y0+y1, .., y14+y15] */
static inline float16 bm_scanbc_pairs(float16 x, float16 y) { return (float16)(x.even + x.odd, y.even + y.odd); }

/* Lane j of the result is the sum of v[j]'s 16 lanes (pairs, then quads, octets, all 16). */
static inline float16 bm_scanbc_lane_sums(const float16 *v)
{
    float16 w[8], x[4];
    for (int k = 0; k < 8; k++) w[k] = bm_scanbc_pairs(v[2 * k], v[2 * k + 1]);
    for (int k = 0; k < 4; k++) x[k] = bm_scanbc_pairs(w[2 * k], w[2 * k + 1]);
    return bm_scanbc_pairs(bm_scanbc_pairs(x[0], x[1]), bm_scanbc_pairs(x[2], x[3]));
}

static inline float16 bm_scanbc_dsoftplus(float16 x) { return select(1.0f / (1.0f + exp(-x)), (float16)1.0f, x > 20.0f); }

/* Global (nblk = ceil(di / 16), B), local (1, 1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_scan_bwd_cpu(int T, int di, int n, __global const float *u, __global const float *dt, uint dt_ld,
                __global const float *dt_bias, __global const float *A, __global const float *bc, uint bc_ld,
                uint b_col, uint c_col, __global const float *Dv, __global const float *z, uint z_ld, uint z_col,
                __global const float *dy, __global float *du_out, __global float *ddt_out, __global float *dz_out,
                uint dz_ld, __global float *ckpt, __global float *pbc, __global float *pp)
{
    const int blk = (int)get_global_id(0), b = (int)get_global_id(1);
    const int nblk = (int)get_global_size(0), B = (int)get_global_size(1);
    const int c0 = blk * 16, lanes = min(16, di - c0);
    const int L = BM_SCANBC_L, nc = (T + L - 1) / L;
    const size_t row_b = (size_t)b * T, BT = (size_t)B * T;
    /* A per state over the item's channels: scaled for bm_scan_exp_a, and as it is */
    float16 a2[BM_SCANC_NS], af[BM_SCANC_NS];
    for (int j = 0; j < BM_SCANC_NS; j++) {
        float av[16];
        for (int i = 0; i < 16; i++) av[i] = j < n ? A[(size_t)min(c0 + i, di - 1) * n + j] : 0.0f;
        af[j] = vload16(0, av);
        a2[j] = af[j] * BM_SCAN_ASCALE;
    }
    const float16 bias = bm_scanc_load(dt_bias, c0, di), dskip = bm_scanc_load(Dv, c0, di);
    __global float *ck = ckpt + ((size_t)b * nblk + blk) * (size_t)max(nc - 1, 1) * n * 16;

    /* Phase 1: the forward recurrence; h at the start of every chunk after the first */
    {
        float16 h[BM_SCANC_NS];
        for (int j = 0; j < BM_SCANC_NS; j++) h[j] = 0.0f;
        for (int t = 0; t < T; t++) {
            if (t > 0 && t % L == 0) {
                __global float *cr = ck + (size_t)(t / L - 1) * n * 16;
                for (int j = 0; j < n && j < BM_SCANC_NS; j++) vstore16(h[j], 0, cr + j * 16);
            }
            const size_t r = row_b + t;
            const float16 dlt = bm_scanc_softplus(bm_scanc_load(dt + r * dt_ld, c0, di) + bias);
            const float16 du = dlt * bm_load16_upto(u + r * di, c0, di);
            __global const float *bt = bc + r * bc_ld + b_col;
#pragma unroll
            for (int j = 0; j < BM_SCANC_NS; j++)
                if (j < n) h[j] = fma(bm_scan_exp_a(dlt * a2[j]), h[j], du * bt[j]);
        }
    }

    /* Phase 2: chunks backwards */
    float16 g[BM_SCANC_NS], acc_a[BM_SCANC_NS];
    for (int j = 0; j < BM_SCANC_NS; j++) g[j] = acc_a[j] = 0.0f;
    float16 acc_d = 0.0f, acc_bias = 0.0f;
    float16 hist[BM_SCANBC_L + 1][BM_SCANC_NS]; /* hist[i + 1] = h after step i of the chunk; hist[0] its start */
    float16 ea[BM_SCANBC_L][BM_SCANC_NS];       /* exp(delta A) of step i */
    float16 dl[BM_SCANBC_L];                    /* delta of step i */
    for (int k = nc - 1; k >= 0; k--) {
        const int t0 = k * L, len = min(L, T - t0);
        __global const float *cr = ck + (size_t)max(k - 1, 0) * n * 16;
        for (int j = 0; j < BM_SCANC_NS; j++) hist[0][j] = k > 0 && j < n ? vload16(0, cr + j * 16) : (float16)0.0f;
        for (int i = 0; i < len; i++) {
            const size_t r = row_b + t0 + i;
            const float16 dlt = bm_scanc_softplus(bm_scanc_load(dt + r * dt_ld, c0, di) + bias);
            const float16 du = dlt * bm_load16_upto(u + r * di, c0, di);
            __global const float *bt = bc + r * bc_ld + b_col;
            dl[i] = dlt;
#pragma unroll
            for (int j = 0; j < BM_SCANC_NS; j++)
                if (j < n) {
                    const float16 e = bm_scan_exp_a(dlt * a2[j]);
                    ea[i][j] = e;
                    hist[i + 1][j] = fma(e, hist[i][j], du * bt[j]);
                }
        }
        for (int i = len - 1; i >= 0; i--) {
            const size_t r = row_b + t0 + i;
            const float16 dlt = dl[i], uu = bm_load16_upto(u + r * di, c0, di);
            const float16 dyv = bm_load16_upto(dy + r * di, c0, di);
            const float16 zz = bm_scanc_load(z + r * z_ld + z_col, c0, di);
            const float16 x = bm_scanc_load(dt + r * dt_ld, c0, di) + bias;
            const float16 sg = 1.0f / (1.0f + exp(-zz));
            const float16 dys = dyv * zz * sg, dlu = dlt * uu;
            __global const float *bt = bc + r * bc_ld + b_col, *ct = bc + r * bc_ld + c_col;
            float16 s = dskip * uu, sdu = 0.0f, sdd = 0.0f;
            float16 vb[BM_SCANC_NS], vc[BM_SCANC_NS];
#pragma unroll
            for (int j = 0; j < BM_SCANC_NS; j++) {
                if (j >= n) { /* a padding state: no terms, zero lanes for the sums over channels */
                    vb[j] = vc[j] = 0.0f;
                    continue;
                }
                const float Bj = bt[j], Cj = ct[j];
                const float16 e = ea[i][j], ht = hist[i + 1][j], hp = hist[i][j];
                const float16 d = fma((float16)Cj, dys, g[j]); /* dh_t */
                s = fma(ht, (float16)Cj, s);
                vc[j] = dys * ht;
                vb[j] = d * dlu;
                sdu = fma(d, (float16)Bj, sdu);
                sdd = fma(d, fma(af[j] * e, hp, Bj * uu), sdd);
                acc_a[j] = fma(d * hp, e * dlt, acc_a[j]);
                g[j] = e * d;
            }
            const float16 ddt = sdd * bm_scanbc_dsoftplus(x);
            bm_store16_upto(fma(dskip, dys, dlt * sdu), du_out + r * di, c0, di);
            bm_store16_upto(ddt, ddt_out + r * di, c0, di);
            bm_store16_upto(dyv * s * sg * (1.0f + zz * (1.0f - sg)), dz_out + r * dz_ld + z_col, c0, di);
            acc_d = fma(dys, uu, acc_d);
            acc_bias += ddt;
            /* dB, dC of the row over the item's channels (lane j: state j) */
            float16 sb = bm_scanbc_lane_sums(vb), sc = bm_scanbc_lane_sums(vc);
            __global float *pr = pbc + ((size_t)blk * BT + r) * (size_t)(2 * n);
            if (n == 16) {
                vstore16(sb, 0, pr);
                vstore16(sc, 0, pr + 16);
            } else {
                float ob[16], oc[16];
                vstore16(sb, 0, ob);
                vstore16(sc, 0, oc);
                for (int j = 0; j < n; j++) pr[j] = ob[j], pr[n + j] = oc[j];
            }
        }
    }
    /* per-sequence weight-gradient partials of the item's real channels */
    float oa[16], od[16], ob[16];
    for (int j = 0; j < n && j < BM_SCANC_NS; j++) {
        vstore16(acc_a[j], 0, oa);
        for (int i = 0; i < lanes; i++) pp[((size_t)b * di + c0 + i) * n + j] = oa[i];
    }
    vstore16(acc_d, 0, od);
    vstore16(acc_bias, 0, ob);
    __global float *pd = pp + (size_t)B * di * n;
    for (int i = 0; i < lanes; i++) {
        pd[(size_t)b * di + c0 + i] = od[i];
        pd[(size_t)B * di + (size_t)b * di + c0 + i] = ob[i];
    }
}

/* bm_scan_bwd_dbc's sums for CPU devices (the same order: block 0 first, so the same bits): a
 * work-item per 16 rows; a row's 2n partials of a block are contiguous, read as float16 where n
 * is 16. The GPU form's work-item per (row, state) gathered its nblk terms a B*T*2n stride apart
 * one float at a time: 154 us/token of a bmojo-130m pass on POCL. Global (ceil(BT / 16)), local (1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_scan_bwd_dbc_cpu(int BT, int n, int nblk, __global const float *pbc, __global float *dbc, uint dbc_ld, uint b_col,
                    uint c_col)
{
    const int r0 = (int)get_global_id(0) * 16, r1 = min(BT, r0 + 16);
    const size_t w = (size_t)(2 * n), stride = (size_t)BT * w;
    for (int r = r0; r < r1; r++) {
        __global const float *p = pbc + (size_t)r * w;
        __global float *o = dbc + (size_t)r * dbc_ld;
        if (n == 16) {
            float16 sb = 0.0f, sc = 0.0f;
            for (int k = 0; k < nblk; k++) {
                sb += vload16(0, p + (size_t)k * stride);
                sc += vload16(0, p + (size_t)k * stride + 16);
            }
            vstore16(sb, 0, o + b_col);
            vstore16(sc, 0, o + c_col);
        } else {
            for (int q = 0; q < 2 * n; q++) {
                float s = 0.0f;
                for (int k = 0; k < nblk; k++) s += p[(size_t)k * stride + q];
                o[q < n ? b_col + (uint)q : c_col + (uint)(q - n)] = s;
            }
        }
    }
}
