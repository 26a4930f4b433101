/* bmojo_innovation.cl — B'MOJO innovation (model.md 2.2): eps_t = sum_c (y_t - yhat_t)^2 with
 * yhat_t = sum_{i=1..k} c_i y_{t-i}, and the update of the y history the next call needs.
 *
 * Layout (fp32, row-major):
 *   y      [B*T, d]   the fading-stream output of this call (sequence b, token t at row b*T+t)
 *   y_hist [B, k, d]  y of positions pos0-k .. pos0-1, oldest first (zero rows before position 0,
 *                     which is exactly the spec's "terms with t-i < 0 are zero")
 *   eps    [B*T]      out (a region of the launcher's scratch: base pointer + element offset,
 *                     so the scratch may be any buffer, even a sub-buffer)
 * taps arrive as one float16 kernel argument (c_1..c_k, the rest 0): no buffer, no upload, so
 * the launcher never blocks on a host array.
 *
 * Design: one work-group per token row reduces over d (strided partial sums, then a tree in
 * local memory). The reduction order depends only on d and the work-group size, never on t or T,
 * so rows that repeat give bit-identical eps whichever call they arrive in: ties stay ties, and
 * prefill / piecewise / token-by-token feeding select the same eidetic tokens. Considered: one
 * work-item per row looping over d (no local memory, but serial in d and poor for small T,
 * which is the decoding case); the tree wins for decoding and is as good for prefill.
 * The history update is a separate kernel (one work-item per (b, channel) shifting in place
 * oldest-first, so it reads slot i+T before anything writes it): no race with the innovation
 * kernel, which the in-order queue runs first.
 * Decoding (T = 1) does not use these two kernels: bm_bmojo_step (bmojo_eidetic.cl) fuses the
 * innovation and the history shift with the rest of the step's state updates. It computes eps
 * with the same two helpers below (per-channel term with contraction off, then the same tree
 * over the same work-group size), so a row gets bit-identical eps in prefill and in decoding. */

/* (y_t - sum_{i=1..k} c_i y_{t-i})^2 of one channel; prev[i-1] = y_{t-i}. FP_CONTRACT OFF: the
 * bits must not depend on whether a backend fuses the multiply-adds in one kernel and not in
 * another (ties between equal rows must stay ties across the prefill and decoding paths). */
static inline float bm_bmojo_innov_sq(float yt, const float *prev, const float *c, int k)
{
#pragma OPENCL FP_CONTRACT OFF
    float yhat = 0.0f;
    for (int i = 0; i < k; i++) yhat += c[i] * prev[i];
    float e = yt - yhat;
    return e * e;
}

/* Sum of v over the work-group (a power-of-two size): a tree in part[]; every item gets it. */
static inline float bm_bmojo_group_sum(__local float *part, float v)
{
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    part[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int off = lsz / 2; off > 0; off >>= 1) {
        if (lid < off) part[lid] += part[lid + off];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = part[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* part[] may be reused by the caller */
    return r;
}

#ifndef BM_BMOJO_INNOV_WG
#define BM_BMOJO_INNOV_WG BM_WG
#endif

/* global (BM_WG, B*T), local (BM_WG, 1): one group per token row. */
__kernel void bm_bmojo_innovation(__global const float *y, __global const float *y_hist,
                                  __global float *eps_base, const ulong eps_off, const int T,
                                  const int d, const int k, const float16 taps)
{
    __global float *eps = eps_base + eps_off;
    __local float part[BM_BMOJO_INNOV_WG];
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int row = (int)get_global_id(1);
    const int b = row / T, t = row - b * T;
    float c[16];
    vstore16(taps, 0, c);
    float sum = 0.0f;
    for (int ch = lid; ch < d; ch += lsz) {
        float prev[16];
        for (int i = 1; i <= k; i++) {
            int tt = t - i; /* token index in this call; < 0: from the history */
            prev[i - 1] = tt >= 0 ? y[(size_t)(row - i) * d + ch] : y_hist[((size_t)b * k + (k + tt)) * d + ch];
        }
        sum += bm_bmojo_innov_sq(y[(size_t)row * d + ch], prev, c, k);
    }
    float total = bm_bmojo_group_sum(part, sum);
    if (lid == 0) eps[row] = total;
}

/* Item gid < B*d of the prefill's state save (bm_bmojo_state_save, cl/bmojo_attention.cl):
 * y_hist <- the last k rows of [y_hist ; y]. Slot i takes old slot i+T (i+T < k) or new row
 * T-k+i; walking i upwards reads each old slot before it is overwritten. */
static inline void bm_bmojo_yhist_save(size_t gid, __global const float *y, __global float *y_hist, const int T,
                                       const int d, const int k)
{
    const int b = (int)(gid / d), ch = (int)(gid - (size_t)b * d);
    __global float *h = y_hist + (size_t)b * k * d + ch;
    for (int i = 0; i < k; i++) {
        float v = i + T < k ? h[(size_t)(i + T) * d] : y[((size_t)b * T + (T - k + i)) * d + ch];
        h[(size_t)i * d] = v;
    }
}
