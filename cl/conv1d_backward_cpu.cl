/* conv1d_backward_cpu.cl — the conv1d + SiLU backward for CPU devices (POCL): bm_op_conv1d_backward's
 * outputs (cl/conv1d_backward.cl: its top comment has the layout and the math), launcher
 * src/ops/op_conv1d_backward.c (the CPU form, rt->conv_bwd_form, for k <= BM_CONV_KMAX).
 *
 * Shape of the work: work-items of 16 channels (the lanes of float16 vectors) instead of one
 * channel, two launches in place of the GPU form's dpre, part and dx:
 *   bm_conv1d_bwd_cpu_part: one item per (16 channels, time block p of one sequence): recomputes
 *     pre over the block (bias, then taps 0 .. k-1: the forward's order) with the last k inputs
 *     in registers, writes dpre, and sums the block's weight and bias partials (Kahan, as the GPU
 *     form) into the GPU form's part [npart * ntap, di], so bm_conv1d_bwd_reduce adds them up;
 *   bm_conv1d_bwd_cpu_dx: one item per (16 channels, time block): dx from dpre, after the reduce
 *     (dx may alias x or du: every read of them is done by then).
 * Lanes past di read zeros and are never stored.
 *
 * Why: POCL runs the GPU form's one work-item per (channel, row) or (channel, block, tap) as
 * scalar code with a gather per tap: dpre 0.75-0.90, part 0.82-0.85, dx 0.22-0.24 us/token of a
 * 2-layer MQAR Mamba's pass (its forward conv, bm_conv1d_cpu: 0.08). This form, same command
 * (docs/performance.md), two rounds: part 0.19 / 0.11, dx 0.11 / 0.08 us/token (the reduce, 0.02,
 * unchanged).
 */

/* acc += v, Kahan-compensated per lane (bm_conv_bwd_kahan's vector form). */
static inline void bm_convbc_kahan(float16 *acc, float16 *comp, float16 v)
{
    const float16 y = v - *comp;
    const float16 s = *acc + y;
    *comp = (s - *acc) - y;
    *acc = s;
}

/* Global (ceil(di / 16), npart = B * nblk), local (1, 1); part [npart * ntap, di], row p*ntap + j. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_conv1d_bwd_cpu_part(__global const float *x, ulong x_ld, __global const float *w, __global const float *bias,
                       int has_bias, __global const float *du, __global float *dpre, __global float *part, int T,
                       int di, int k, int tb, int nblk, int ntap)
{
    const int c0 = (int)get_global_id(0) * 16, p = (int)get_global_id(1);
    const int b = p / nblk, t0 = (p - b * nblk) * tb, t1 = min(T, t0 + tb), km1 = k - 1;
    const ulong row0 = (ulong)b * (ulong)T;
    float16 wv[BM_CONV_KMAX], hv[BM_CONV_KMAX], acc[BM_CONV_KMAX + 1], comp[BM_CONV_KMAX + 1];
    for (int i = 0; i < k; i++) {
        float wa[16];
        for (int j = 0; j < 16; j++) wa[j] = w[(ulong)min(c0 + j, di - 1) * (ulong)k + (ulong)i];
        wv[i] = vload16(0, wa);
    }
    for (int i = 0; i <= k; i++) acc[i] = comp[i] = 0.0f;
    const float16 bv = has_bias ? bm_load16_upto(bias, c0, di) : (float16)0.0f;
    /* hv[0 .. k-2]: the inputs of times t0-k+1 .. t0-1 (zero before 0) */
    for (int i = 0; i < km1; i++) {
        const int tt = t0 - km1 + i;
        hv[i] = tt >= 0 ? bm_load16_upto(x + (row0 + (ulong)tt) * x_ld, c0, di) : (float16)0.0f;
    }
    for (int t = t0; t < t1; t++) {
        hv[km1] = bm_load16_upto(x + (row0 + (ulong)t) * x_ld, c0, di);
        float16 pre = bv;
        for (int i = 0; i < k; i++) pre += wv[i] * hv[i];
        const float16 s = 1.0f / (1.0f + exp(-pre));
        const ulong o = (row0 + (ulong)t) * (ulong)di;
        const float16 dp = bm_load16_upto(du + o, c0, di) * s * (1.0f + pre * (1.0f - s));
        bm_store16_upto(dp, dpre + o, c0, di);
        /* tap j reads x[t - (k-1-j)] = hv[j]; taps reaching before 0 hold zeros there */
        for (int j = 0; j < k; j++) bm_convbc_kahan(&acc[j], &comp[j], dp * hv[j]);
        bm_convbc_kahan(&acc[k], &comp[k], dp);
        for (int i = 0; i < km1; i++) hv[i] = hv[i + 1];
    }
    for (int j = 0; j < ntap; j++) bm_store16_upto(acc[j], part + ((ulong)p * (ulong)ntap + (ulong)j) * (ulong)di, c0, di);
}

/* dx[t, c] = sum_i w[c, i] dpre[t + (k-1) - i, c] within the sequence. Global (ceil(di / 16),
 * B * nblk), local (1, 1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_conv1d_bwd_cpu_dx(__global const float *dpre, __global const float *w, __global float *dx, ulong dx_ld, int T,
                     int di, int k, int tb, int nblk)
{
    const int c0 = (int)get_global_id(0) * 16, p = (int)get_global_id(1);
    const int b = p / nblk, t0 = (p - b * nblk) * tb, t1 = min(T, t0 + tb), km1 = k - 1;
    const ulong row0 = (ulong)b * (ulong)T;
    float16 wv[BM_CONV_KMAX], dv[BM_CONV_KMAX];
    for (int i = 0; i < k; i++) {
        float wa[16];
        for (int j = 0; j < 16; j++) wa[j] = w[(ulong)min(c0 + j, di - 1) * (ulong)k + (ulong)i];
        wv[i] = vload16(0, wa);
    }
    /* dv[i]: dpre of time t + (k-1) - i (zero past the sequence's end); walk t downwards */
    for (int i = 0; i < k; i++) {
        const int tt = t1 - 1 + km1 - i;
        dv[i] = tt < T ? bm_load16_upto(dpre + (row0 + (ulong)tt) * (ulong)di, c0, di) : (float16)0.0f;
    }
    for (int t = t1 - 1; t >= t0; t--) {
        float16 acc = 0.0f;
        for (int i = 0; i < k; i++) acc += wv[i] * dv[i];
        bm_store16_upto(acc, dx + (row0 + (ulong)t) * dx_ld, c0, di);
        if (t > t0) {
            for (int i = 0; i < km1; i++) dv[i] = dv[i + 1];
            dv[km1] = bm_load16_upto(dpre + (row0 + (ulong)(t - 1)) * (ulong)di, c0, di);
        }
    }
}
