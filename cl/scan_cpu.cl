/* scan_cpu.cl — Mamba-1 selective scan for CPU devices (POCL): bm_op_scan's contract (src/ops.h),
 * launcher src/ops/op_scan_cpu.c. Uses bm_scan_exp_a / BM_SCAN_ASCALE of cl/scan.cl.
 *
 * Layout as cl/scan.cl: u [B*T, di], dt [B*T, dt_ld], dt_bias [di], A [di, n], bc [B*T, bc_ld]
 * (B_t at b_col, C_t at c_col), D [di], z [B*T, z_ld] (gate at z_col), state [B, di, n], y [B*T, di].
 *
 * Shape of the work: one work-item per (16 consecutive channels, sequence), a CPU thread's job,
 * running the whole sequence. The 16 channels are the lanes of float16 vectors: each of the n <=
 * BM_SCANC_NS states is one float16 register (h_j over 16 channels), a step is per state one
 * vector exp2, two vector FMAs and one for y, with B_t[j] and C_t[j] broadcast (they are shared by
 * every channel). u, dt, z and y are read and written as 16 contiguous floats; A, the initial and
 * the final state are gathered / scattered once per call. A last group of fewer than 16 channels
 * gathers its lanes (clamped) and stores only its own. Padding states (j >= n) are skipped by a
 * uniform branch in the unrolled state loop: a 2-layer MQAR Mamba (d_state 4) computed 16 states
 * per step before.
 *
 * Why: cl/scan.cl puts a channel on a work-item with its states in registers and stages B/C in
 * local memory between barriers: right for GPUs, but POCL then runs each work-item's steps as
 * scalar code (one scalar exp per state and step): 1.28 s of a mamba-130m pp512 (59 % of it) on
 * the 2-core development machine. Here the vectors are explicit.
 * Not for GPUs: B x di / 16 work-items cannot fill one.
 * Tunable: BM_SCANC_NS (16), the most states per channel (the launcher uses cl/scan.cl beyond).
 */
#ifndef BM_SCANC_NS
#define BM_SCANC_NS 16
#endif

/* 16 floats of a row from channel c0: a vector load, or for the last, partial group a gather of
 * the channels c0 + i clamped to di - 1. */
static inline float16 bm_scanc_load(__global const float *row, int c0, int di)
{
    if (c0 + 16 <= di) return vload16(0, row + c0);
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = row[min(c0 + i, di - 1)];
    return vload16(0, v);
}

static inline float16 bm_scanc_softplus(float16 x) { return select(log1p(exp(x)), x, x > 20.0f); }
static inline float16 bm_scanc_silu(float16 x) { return x / (1.0f + exp(-x)); }

/* Global (ceil(di / 16), B), local (1, 1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_scan_cpu(int T, int di, int n, __global const float *u, __global const float *dt, uint dt_ld,
            __global const float *dt_bias, __global const float *A, __global const float *bc, uint bc_ld,
            uint b_col, uint c_col, __global const float *Dv, __global const float *z, uint z_ld, uint z_col,
            __global float *state, __global float *y)
{
    const int c0 = (int)get_global_id(0) * 16, b = (int)get_global_id(1);
    const int lanes = min(16, di - c0);
    float16 h[BM_SCANC_NS], a[BM_SCANC_NS];
    for (int j = 0; j < BM_SCANC_NS; j++) {
        float hv[16], av[16];
        for (int i = 0; i < 16; i++) {
            const size_t c = (size_t)min(c0 + i, di - 1);
            hv[i] = j < n ? state[((size_t)b * di + c) * n + j] : 0.0f;
            av[i] = j < n ? A[c * n + j] * BM_SCAN_ASCALE : 0.0f;
        }
        h[j] = vload16(0, hv), a[j] = vload16(0, av);
    }
    const float16 bias = bm_scanc_load(dt_bias, c0, di), dskip = bm_scanc_load(Dv, c0, di);
    for (int t = 0; t < T; t++) {
        const size_t r = (size_t)b * T + t;
        const float16 delta = bm_scanc_softplus(bm_scanc_load(dt + r * dt_ld, c0, di) + bias);
        const float16 uu = bm_scanc_load(u + r * di, c0, di);
        const float16 du = delta * uu;
        __global const float *bt = bc + r * bc_ld;
        float16 acc = 0.0f;
#pragma unroll
        for (int j = 0; j < BM_SCANC_NS; j++)
            if (j < n) { /* a padding state stays zero: skipped, not computed (a small d_state) */
                h[j] = fma(bm_scan_exp_a(delta * a[j]), h[j], du * bt[b_col + j]);
                acc = fma(h[j], bt[c_col + j], acc);
            }
        const float16 out = fma(dskip, uu, acc) * bm_scanc_silu(bm_scanc_load(z + r * z_ld + z_col, c0, di));
        __global float *yr = y + r * di + c0;
        if (lanes == 16) vstore16(out, 0, yr);
        else {
            float o[16];
            vstore16(out, 0, o);
            for (int i = 0; i < lanes; i++) yr[i] = o[i];
        }
    }
    for (int j = 0; j < n && j < BM_SCANC_NS; j++) {
        float hv[16];
        vstore16(h[j], 0, hv);
        for (int i = 0; i < lanes; i++) state[((size_t)b * di + c0 + i) * n + j] = hv[i];
    }
}

/* The decoding step (T = 1) with dt_proj fused, bm_scan_step's contract (cl/scan.cl), for CPUs:
 * one work-item per BM_SCANC_STEP_CH channels of a sequence, in blocks of 16 channels. A block's
 * per-channel work (softplus of dt, the SiLU gate, D u) runs with its 16 channels as the lanes
 * of float16 vectors, then each channel's state update with its n <= 16 states as the lanes of
 * one float16 (a channel's states, its A row, B_t and C_t are contiguous: vector loads, one
 * vector exp2 per channel). dt = bc[b, 0:R] . Wdt[c, :] first (Wdt [di, R]), one dot a channel.
 * Why blocks: with one channel at a time the softplus and SiLU were three scalar exp / log1p
 * calls per channel, most of the step: a mamba-130m token's 24 steps took 1611 us, now 665
 * (`bmojo bench -p 0 -n 64 --profile`, POCL 3.1 on 2 cores of an AMD EPYC).
 * Global (ceil(di / BM_SCANC_STEP_CH), B), local (1, 1). */
#ifndef BM_SCANC_STEP_CH
#define BM_SCANC_STEP_CH 64
#endif

/* n <= 16 floats from p as a float16, zero past n. */
static inline float16 bm_scanc_load_n(__global const float *p, int n)
{
    if (n == 16) return vload16(0, p);
    float v[16];
    for (int j = 0; j < 16; j++) v[j] = j < n ? p[j] : 0.0f;
    return vload16(0, v);
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_scan_step_cpu(int di, int n, int R, __global const float *u, __global const float *bc, uint bc_ld, uint b_col,
                 uint c_col, __global const float *Wdt, __global const float *dt_bias, __global const float *A,
                 __global const float *Dv, __global const float *z, uint z_ld, uint z_col, __global float *state,
                 __global float *y)
{
    const int c0 = (int)get_global_id(0) * BM_SCANC_STEP_CH, b = (int)get_global_id(1);
    const int c1 = min(c0 + BM_SCANC_STEP_CH, di);
    __global const float *row = bc + (size_t)b * bc_ld;
    const float16 bt = bm_scanc_load_n(row + b_col, n), ct = bm_scanc_load_n(row + c_col, n);
    for (int cb = c0; cb < c1; cb += 16) {
        const int nb = min(16, c1 - cb); /* channels of the block; a last one's other lanes repeat di - 1 */
        float dtb[16];
        for (int i = 0; i < 16; i++) {
            __global const float *wr = Wdt + (size_t)min(cb + i, di - 1) * R;
            /* dt_proj's dot of R (48 for 130M models) as float16 FMAs then one horizontal sum */
            float16 dtv = 0.0f;
            int r = 0;
            for (; r + 16 <= R; r += 16) dtv = fma(vload16(0, row + r), vload16(0, wr + r), dtv);
            float dt = bm_hsum16(dtv);
            for (; r < R; r++) dt = fma(row[r], wr[r], dt);
            dtb[i] = dt;
        }
        const float16 delta = bm_scanc_softplus(vload16(0, dtb) + bm_scanc_load(dt_bias, cb, di));
        const float16 uu = bm_scanc_load(u + (size_t)b * di, cb, di);
        const float16 du = delta * uu;
        float dl[16], dul[16], acc[16];
        vstore16(delta, 0, dl);
        vstore16(du, 0, dul);
        for (int i = 0; i < nb; i++) {
            const int c = cb + i;
            __global float *h = state + ((size_t)b * di + c) * n;
            float16 hv = bm_scanc_load_n(h, n);
            hv = fma(bm_scan_exp_a(dl[i] * (bm_scanc_load_n(A + (size_t)c * n, n) * BM_SCAN_ASCALE)), hv, dul[i] * bt);
            if (n == 16) vstore16(hv, 0, h);
            else {
                float o[16];
                vstore16(hv, 0, o);
                for (int j = 0; j < n; j++) h[j] = o[j];
            }
            acc[i] = bm_hsum16(hv * ct);
        }
        for (int i = nb; i < 16; i++) acc[i] = 0.0f;
        const float16 gate = bm_scanc_silu(bm_scanc_load(z + (size_t)b * z_ld + z_col, cb, di));
        const float16 out = fma(bm_scanc_load(Dv, cb, di), uu, vload16(0, acc)) * gate;
        __global float *yr = y + (size_t)b * di + cb;
        if (nb == 16) vstore16(out, 0, yr);
        else {
            float o[16];
            vstore16(out, 0, o);
            for (int i = 0; i < nb; i++) yr[i] = o[i];
        }
    }
}
