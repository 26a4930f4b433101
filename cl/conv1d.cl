/* conv1d.cl — causal depthwise conv1d + SiLU over time, continuing from a state (Mamba).
 * Layout: x [B*T, x_ld] with channel c at column c (c < di); w [di, k]; bias [di] (has_bias
 * selects it, so a NULL buffer is never read); state [B, di, k-1], the previous k-1 inputs of
 * each channel, oldest first; out [B*T, di] dense.
 * History of channel c of sequence b: h[0 .. k-2] = state, h[k-1 + t] = x[b*T + t, c]; output t
 * is silu(bias[c] + sum_i w[c, i] * h[t + i]) and the new state is h[T .. T+k-2].
 * Variants considered: one work-item per (b, c) walking over time with a register window (little
 * parallelism for short prompts, and it serializes long ones) and a single kernel that also
 * writes the state (work-items of the last steps would overwrite state that others still read).
 * Chosen: two kernels on the in-order queue — bm_conv1d_out, parallel over B*T*di (2-D: dim 0
 * channel, coalesced; dim 1 row), reads the old state; then bm_conv1d_state, parallel over
 * B*di, rewrites it. k is a runtime argument (any k >= 1). */

__kernel void bm_conv1d_out(__global const float *x, ulong x_ld, __global const float *w,
                            __global const float *bias, int has_bias, __global float *state,
                            __global float *out, int T, int di, int k, int rows, int step)
{
    int c = (int)get_global_id(0);
    int row = (int)get_global_id(1);   /* b*T + t */
    if (c >= di || row >= rows) return;
    int b = row / T;
    int t = row - b * T;
    int km1 = k - 1;
    __global const float *wc = w + (ulong)c * (ulong)k;
    __global float *st = state + ((ulong)b * (ulong)di + (ulong)c) * (ulong)km1;
    float acc = has_bias ? bias[c] : 0.0f;
    for (int i = 0; i < k; i++) {
        int tt = t - km1 + i;           /* input time; negative times live in the state */
        float v = tt >= 0 ? x[(ulong)(row - t + tt) * x_ld + (ulong)c] : st[km1 + tt];
        acc += wc[i] * v;
    }
    out[(ulong)row * (ulong)di + (ulong)c] = bm_silu(acc);
    /* Decoding step (T = 1): this work-item is the only reader of its state row, so it can shift
     * the row itself (ascending i reads st[i+1] before it is overwritten), saving a launch. */
    if (step) {
        for (int i = 0; i + 1 < km1; i++) st[i] = st[i + 1];
        if (km1 > 0) st[km1 - 1] = x[(ulong)row * x_ld + (ulong)c];
    }
}

/* Prefill (T > 1, k <= BM_CONV_KMAX): the same outputs as bm_conv1d_out, but a work-item walks
 * BM_CONV_TT consecutive steps of one channel with the last k inputs in registers, so each input is
 * loaded once instead of k times and the k weights once per TT outputs (same summation order,
 * so the results are bit-identical). Global (di, B * ceil(T / TT)): dim 0 channel (coalesced),
 * dim 1 (sequence, time block). Measured on the H200 (T 2048, d_inner 1536, k 4): one work-item
 * per output 42 us (600 GB/s); this kernel: see docs/performance.md. */
#ifndef BM_CONV_TT
#define BM_CONV_TT 8
#endif
#ifndef BM_CONV_KMAX
#define BM_CONV_KMAX 8
#endif
/* The body of bm_conv1d_out_tiled for kernel width KK (a compile-time 4 for Mamba's d_conv, so
 * that the window and the weights live in registers; the kernel's k otherwise). */
#define BM_CONV_TILED_BODY(KK)                                                                     \
    do {                                                                                           \
        const int km1_ = (KK) - 1;                                                                 \
        float wc_[BM_CONV_KMAX], win_[BM_CONV_KMAX], xin_[BM_CONV_TT];                             \
        for (int i_ = 0; i_ < (KK); i_++) wc_[i_] = w[(ulong)c * (ulong)(KK) + (ulong)i_];          \
        for (int i_ = 0; i_ < km1_; i_++) {                                                        \
            const int tt_ = t0 - km1_ + i_;                                                        \
            win_[i_] = tt_ >= 0 ? xc[(ulong)tt_ * x_ld] : st[km1_ + tt_];                          \
        }                                                                                          \
        /* all TT inputs first: a store to out could alias x as far as the compiler knows, so a   \
         * load inside the output loop would wait for the previous store */                      \
        for (int j_ = 0; j_ < BM_CONV_TT; j_++)                                                    \
            xin_[j_] = t0 + j_ < T ? xc[(ulong)(t0 + j_) * x_ld] : 0.0f;                           \
        for (int j_ = 0; j_ < BM_CONV_TT; j_++) {                                                  \
            win_[km1_] = xin_[j_];                                                                 \
            float acc_ = b0;                                                                       \
            for (int i_ = 0; i_ < (KK); i_++) acc_ += wc_[i_] * win_[i_];                          \
            if (t0 + j_ < T) out[((ulong)b * (ulong)T + (ulong)(t0 + j_)) * (ulong)di + (ulong)c] = bm_silu(acc_); \
            for (int i_ = 0; i_ < km1_; i_++) win_[i_] = win_[i_ + 1];                             \
        }                                                                                          \
    } while (0)

__kernel void bm_conv1d_out_tiled(__global const float *x, ulong x_ld, __global const float *w,
                                  __global const float *bias, int has_bias, __global const float *state,
                                  __global float *out, int T, int di, int k, int B)
{
    const int c = (int)get_global_id(0);
    const int blk = (int)get_global_id(1);
    const int nblk = (T + BM_CONV_TT - 1) / BM_CONV_TT;
    const int b = blk / nblk, t0 = (blk - b * nblk) * BM_CONV_TT;
    if (c >= di || b >= B) return; /* the launch rounds both dimensions up to the group size */
    __global const float *st = state + ((ulong)b * (ulong)di + (ulong)c) * (ulong)(k - 1);
    __global const float *xc = x + (ulong)b * (ulong)T * x_ld + (ulong)c;
    const float b0 = has_bias ? bias[c] : 0.0f;
    if (k == 4) BM_CONV_TILED_BODY(4);
    else BM_CONV_TILED_BODY(k);
}

/* Runs after bm_conv1d_out (in-order queue), so every read of the old state is done. Entry i of
 * the new state is history entry T + i; when that is still in the old state (T + i < k-1) it is
 * an entry above i that this work-item has not overwritten yet. */
__kernel void bm_conv1d_state(__global const float *x, ulong x_ld, __global float *state,
                              int B, int T, int di, int k)
{
    int c = (int)get_global_id(0);
    int b = (int)get_global_id(1);
    if (c >= di || b >= B) return;
    int km1 = k - 1;
    __global float *st = state + ((ulong)b * (ulong)di + (ulong)c) * (ulong)km1;
    for (int i = 0; i < km1; i++) {
        int h = T + i;
        st[i] = h < km1 ? st[h] : x[((ulong)b * (ulong)T + (ulong)(h - km1)) * x_ld + (ulong)c];
    }
}
