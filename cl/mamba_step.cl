/* mamba_step.cl — one decoding step (T = 1) of a Mamba-1 mixer after its conv: x_proj, the
 * optional RMSNorms of dt / B / C (Jamba), dt_proj, softplus and the selective-scan state update
 * with the D skip and the SiLU(z) gate, in ONE launch (bm_op_mamba_step in src/ops.h).
 *
 * Layout (fp32, row-major): u [B, di] (conv output); Wx [xd, di] with xd = R + 2n (x_proj:
 * rows dt | B | C); norm weights dt_nw [R], b_nw [n], c_nw [n]; xdbl [B, xd] (written for
 * reference, by work-group 0 of each sequence); Wdt [di, R]; dt_bias [di]; A [di, n] (= -exp(A_log));
 * D [di]; z [B, z_ld] (gate at z_col); state [B, di, n]; y [B, di].
 *
 * Why one launch: on the H200 decoding is bound by fixed costs per launch (~6 us of host time in
 * clEnqueueNDRangeKernel with NVIDIA's OpenCL, and a few us of device time for a small kernel),
 * not by bytes: x_proj and the scan step as two launches cost ~17 us per layer. The catch is that
 * every channel's step needs all xd outputs of x_proj (dt_rank values for its dt, all of B and C),
 * which depend on every channel's u: there is no grid-wide barrier in OpenCL 1.2, so each
 * work-group computes x_proj itself (G = ceil(di / L) groups: 2 copies of a 0.5 MB
 * matrix-vector product for di 1536, L 1024). Then each work-item owns one channel: dt =
 * Wdt[c] . xdbl[:R] (+ bias, softplus), the n states, y. The channel step uses the same
 * expressions as bm_scan_step (cl/scan.cl), so given the same xdbl the two agree bit for bit.
 *
 * x_proj in a group: BM_MSTEP_TPR work-items share one row of Wx (float4 loads, consecutive
 * items on consecutive columns: coalesced), L / TPR rows at a time; u is staged in local memory;
 * the TPR partial sums of a row are added by the row's first item.
 * Measured on the H200 (bmojo-130m: di 1536, xd 80): a first version (each item all xd rows over
 * a strided slice of the columns, scalar loads, 256 items and 6 groups, a 16-output tree
 * reduction per block) took 74 us per step: one group pulls all of x_proj (0.5 MB) through one
 * SM, and 16 scalar loads in flight per item are far too few for that. Hence whole rows per item
 * group, float4 loads and up to 1024 items per group.
 * Global (G * L, B), local (L, 1); local memory: ul di, part L, xl xd floats.
 */
#ifndef BM_MSTEP_TPR
#define BM_MSTEP_TPR 16 /* work-items per x_proj row (a power of two dividing the work-group size) */
#endif

/* RMSNorm of xl[off .. off+len) in place with weight w (one item computes the scale; the group
 * waits for it). Same expression as bm_rmsnorm_rows: x * rsqrt(mean(x^2) + eps) * w. */
static inline void bm_mstep_norm(__local float *xl, __local float *scale, int off, int len,
                                 __global const float *w, float eps, int L, int lid)
{
    if (lid == 0) {
        float ss = 0.0f;
        for (int i = 0; i < len; i++) ss += xl[off + i] * xl[off + i];
        scale[0] = rsqrt(ss / (float)len + eps);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float r = scale[0];
    for (int i = lid; i < len; i += L) xl[off + i] = xl[off + i] * r * w[i];
    barrier(CLK_LOCAL_MEM_FENCE);
}

__kernel void bm_mamba_step(const int di, const int n, const int R, __global const float *u,
                            __global const float *Wx, const int has_norm, __global const float *dt_nw,
                            __global const float *b_nw, __global const float *c_nw, const float eps,
                            __global float *xdbl, __global const float *Wdt, __global const float *dt_bias,
                            __global const float *A, __global const float *Dv,
                            __global const float *z, const uint z_ld, const uint z_col,
                            __global float *state, __global float *y, __local float *ul, __local float *part,
                            __local float *xl)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int b = (int)get_global_id(1);
    const int xd = R + 2 * n, K4 = di / 4;
    const int sub = lid % BM_MSTEP_TPR, rloc = lid / BM_MSTEP_TPR, rows = L / BM_MSTEP_TPR;
    __global const float *ub = u + (size_t)b * di;

    for (int k = lid; k < di; k += L) ul[k] = ub[k];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int o0 = 0; o0 < xd; o0 += rows) {
        const int o = o0 + rloc;
        float acc = 0.0f;
        if (o < xd) {
            __global const float *wr = Wx + (size_t)o * di;
#pragma unroll 8
            for (int k4 = sub; k4 < K4; k4 += BM_MSTEP_TPR) acc += dot(vload4(k4, wr), vload4(k4, ul));
            for (int k = 4 * K4 + sub; k < di; k += BM_MSTEP_TPR) acc = fma(wr[k], ul[k], acc);
        }
        part[lid] = acc;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (sub == 0 && o < xd) {
            float s = 0.0f;
            for (int i = 0; i < BM_MSTEP_TPR; i++) s += part[lid + i];
            xl[o] = s;
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* part is rewritten next; xl is complete after the last rows */
    }
    if (has_norm) { /* Jamba: dt, B and C each RMS-normalised before use */
        bm_mstep_norm(xl, part, 0, R, dt_nw, eps, L, lid);
        bm_mstep_norm(xl, part, R, n, b_nw, eps, L, lid);
        bm_mstep_norm(xl, part, R + n, n, c_nw, eps, L, lid);
    }
    if (get_group_id(0) == 0)
        for (int o = lid; o < xd; o += L) xdbl[(size_t)b * xd + o] = xl[o];

    const int c = (int)get_global_id(0);
    if (c >= di) return;
    __global const float *wr = Wdt + (size_t)c * (size_t)R;
    float dt = 0.0f;
    for (int r = 0; r < R; r++) dt = fma(xl[r], wr[r], dt);
    const float delta = bm_softplus(dt + dt_bias[c]);
    const float uc = ul[c];
    __global float *h = state + ((size_t)b * di + c) * (size_t)n;
    __global const float *Ac = A + (size_t)c * (size_t)n;
    float acc = 0.0f;
    for (int j = 0; j < n; j++) {
        const float hj = bm_scan_exp_a(delta * (Ac[j] * BM_SCAN_ASCALE)) * h[j] + delta * xl[R + j] * uc;
        h[j] = hj;
        acc = fma(xl[R + n + j], hj, acc);
    }
    const float zc = z[(size_t)b * z_ld + z_col + c];
    y[(size_t)b * di + c] = (acc + Dv[c] * uc) * bm_silu(zc);
}
