/* conv1d_backward.cl — gradients of the causal depthwise conv1d + SiLU (bm_op_conv1d) from a zero
 * state, for training.
 * Layout: x [B*T, x_ld], channel c at column c (c < di); w [di, k]; bias [di] (has_bias selects
 * it); du [B*T, di] dense; dpre [B*T, di] dense (scratch); dx [B*T, dx_ld] columns 0..di-1;
 * dw [di, k] and dbias [di] accumulated (+=). B sequences of T steps, each from a zero state.
 * Forward: pre[t, c] = bias[c] + sum_i w[c, i] x[t-(k-1)+i, c] (x = 0 before t = 0),
 * u = silu(pre). Backward, with dpre = du * silu'(pre), silu'(p) = s (1 + p (1 - s)), s = sigmoid(p):
 *   dx[t, c]   = sum_i w[c, i] dpre[t+(k-1)-i, c]        (terms with t+(k-1)-i < T)
 *   dw[c, i]  += sum_{b,t} dpre[t, c] x[t-(k-1)+i, c]    (terms with t-(k-1)+i >= 0)
 *   dbias[c]  += sum_{b,t} dpre[t, c]
 * Algorithm, four launches on the in-order queue:
 *   1. bm_conv1d_bwd_dpre: one work-item per (c, row) recomputes pre (the forward's summation
 *      order) and writes dpre to scratch;
 *   2. bm_conv1d_bwd_part: one work-item per (c, block p, tap j) sums dpre * x over the tb rows
 *      of block p (a time block of one sequence, so the lookback never crosses sequences) for
 *      tap j < k, or dpre alone for the bias tap j = k; partial sums go to scratch;
 *   3. bm_conv1d_bwd_reduce: one work-item per (c, tap) adds its partials in block order to dw /
 *      dbias — deterministic, no atomics;
 *   4. bm_conv1d_bwd_dx: one work-item per (c, row) gathers dx from dpre (runs last, so that dx
 *      may alias x or du: every read of them is done by then).
 * Dim 0 is the channel everywhere, so neighbouring work-items touch neighbouring addresses.
 * Variants considered: fusing dpre into the dx kernel (each dx needs k pre-activations, each of
 * k inputs: k^2 reads per output instead of 2k) and a register window per (c, time block) doing
 * dx and the weight partials in one pass (needs k bounded at compile time, as the forward's tiled
 * kernel; the general-k version here was chosen for simplicity, it is not on the inference path).
 * The block length tb is chosen by the launcher (a kernel argument): it bounds the partials per
 * (channel, tap) and thus the reduce's serial loop. */

__kernel void bm_conv1d_bwd_dpre(__global const float *x, ulong x_ld, __global const float *w,
                                 __global const float *bias, int has_bias, __global const float *du,
                                 __global float *dpre, int T, int di, int k, int rows)
{
    const int c = (int)get_global_id(0);
    const int row = (int)get_global_id(1); /* b*T + t */
    if (c >= di || row >= rows) return;
    const int t = row % T;
    const int km1 = k - 1;
    __global const float *wc = w + (ulong)c * (ulong)k;
    float acc = has_bias ? bias[c] : 0.0f;
    for (int i = 0; i < k; i++) {
        const int tt = t - km1 + i; /* input time; before 0 the zero state */
        if (tt >= 0) acc += wc[i] * x[(ulong)(row - t + tt) * x_ld + (ulong)c];
    }
    const float s = 1.0f / (1.0f + exp(-acc));
    const ulong o = (ulong)row * (ulong)di + (ulong)c;
    dpre[o] = du[o] * s * (1.0f + acc * (1.0f - s));
}

/* acc += v with Kahan's compensation (comp holds the lost low-order part): the weight gradients
 * sum up to B*T terms of both signs (no fast-math in the build options, so the compiler keeps the
 * compensation). Measured on POCL, B=3 T=200 di=1 k=1, a cancelling entry: 1.04e-5 relative to
 * the double reference with plain sums, 7.7e-6 with this (the rest is the fp32 rounding of each
 * term); it costs three more adds per term in a kernel bound by its loads. */
static inline void bm_conv_bwd_kahan(float *acc, float *comp, float v)
{
    const float y = v - *comp;
    const float s = *acc + y;
    *comp = (s - *acc) - y;
    *acc = s;
}

/* Partial sums of the weight (tap j < k) and bias (tap j == k) gradients over one time block.
 * Global (di, npart * ntap); part [npart * ntap, di], row q = p * ntap + j. */
__kernel void bm_conv1d_bwd_part(__global const float *x, ulong x_ld, __global const float *dpre,
                                 __global float *part, int T, int di, int k, int tb, int nblk, int ntap,
                                 int nq)
{
    const int c = (int)get_global_id(0);
    const int q = (int)get_global_id(1);
    if (c >= di || q >= nq) return;
    const int p = q / ntap, j = q - p * ntap;
    const int b = p / nblk, t0 = (p - b * nblk) * tb;
    const int t1 = min(T, t0 + tb);
    __global const float *dp = dpre + (ulong)b * (ulong)T * (ulong)di + (ulong)c;
    float acc = 0.0f, comp = 0.0f;
    if (j < k) {
        const int lag = k - 1 - j; /* tap j reads x[t - lag] */
        __global const float *xc = x + (ulong)b * (ulong)T * x_ld + (ulong)c;
        for (int t = max(t0, lag); t < t1; t++) bm_conv_bwd_kahan(&acc, &comp, dp[(ulong)t * (ulong)di] * xc[(ulong)(t - lag) * x_ld]);
    } else {
        for (int t = t0; t < t1; t++) bm_conv_bwd_kahan(&acc, &comp, dp[(ulong)t * (ulong)di]);
    }
    part[(ulong)q * (ulong)di + (ulong)c] = acc;
}

/* dw[c, j] += sum_p part[p * ntap + j, c] (j < k), dbias[c] += the same for j == k; p in order. */
__kernel void bm_conv1d_bwd_reduce(__global const float *part, __global float *dw, __global float *dbias,
                                   int di, int k, int ntap, int npart)
{
    const int c = (int)get_global_id(0);
    const int j = (int)get_global_id(1);
    if (c >= di || j >= ntap) return;
    float acc = 0.0f, comp = 0.0f;
    for (int p = 0; p < npart; p++) bm_conv_bwd_kahan(&acc, &comp, part[((ulong)p * (ulong)ntap + (ulong)j) * (ulong)di + (ulong)c]);
    if (j < k) dw[(ulong)c * (ulong)k + (ulong)j] += acc;
    else dbias[c] += acc;
}

/* dx[t, c] = sum_i w[c, i] dpre[t + (k-1) - i, c] over the steps of the same sequence. */
__kernel void bm_conv1d_bwd_dx(__global const float *dpre, __global const float *w, __global float *dx,
                               ulong dx_ld, int T, int di, int k, int rows)
{
    const int c = (int)get_global_id(0);
    const int row = (int)get_global_id(1);
    if (c >= di || row >= rows) return;
    const int t = row % T;
    const int km1 = k - 1;
    __global const float *wc = w + (ulong)c * (ulong)k;
    float acc = 0.0f;
    for (int i = 0; i < k; i++) {
        const int lead = km1 - i; /* output t + lead read this input through tap i */
        if (t + lead < T) acc += wc[i] * dpre[(ulong)(row + lead) * (ulong)di + (ulong)c];
    }
    dx[(ulong)row * dx_ld + (ulong)c] = acc;
}
