/* mamba_step.cl — one decoding step (T = 1) of a Mamba-1 mixer after its conv: x_proj, the
 * optional RMSNorms of dt / B / C (Jamba), dt_proj, softplus and the selective-scan state update
 * with the D skip and the SiLU(z) gate, in ONE launch (bm_op_mamba_step in src/ops.h).
 *
 * Layout (fp32, row-major): u [B, di] (conv output); Wx [xd, di] with xd = R + 2n (x_proj:
 * rows dt | B | C); norm weights dt_nw [R], b_nw [n], c_nw [n]; xdbl [B, xd] (written for
 * reference, by work-group 0 of each sequence); Wdt [di, R]; dt_bias [di]; A [di, n] (= -exp(A_log));
 * D [di]; z [B, z_ld] (gate at z_col); state [B, di, n]; y [B, di].
 *
 * Why one launch: on the H200 decoding is bound by the host's cost per launch (~7 us for
 * clEnqueueNDRangeKernel with NVIDIA's OpenCL, ~9 us with the arguments), not by the device:
 * x_proj, dt_proj and the scan step as three launches cost ~27 us of host time per layer and a
 * few us of device time. The catch is that every channel's step needs all xd outputs of x_proj
 * (dt_rank values for its dt, all of B and C), which depend on every channel's u: there is no
 * grid-wide barrier in OpenCL 1.2, so each work-group computes x_proj itself (G = ceil(di / L)
 * groups; for di 1536, L 256: 6 copies of a 0.5 MB matrix-vector product, read from L2 after the
 * first). Then each work-item owns one channel: dt = Wdt[c] . xdbl[:R] (+ bias, softplus), the n
 * states, y. The channel step uses the same expressions as bm_scan_step (cl/scan.cl), so given
 * the same xdbl the two agree bit for bit.
 * x_proj in a group: each work-item takes the columns k = lid, lid + L, ... of BM_MSTEP_OB
 * outputs at a time (coalesced W rows across the group), then a local-memory tree sums the L
 * partials; xdbl stays in local memory.
 * Global (G * L, B), local (L, 1); red: BM_MSTEP_OB * L floats, xl: xd floats of local memory.
 */
#ifndef BM_MSTEP_OB
#define BM_MSTEP_OB 16 /* x_proj outputs reduced together (registers per item; barriers per output block) */
#endif

/* sum over the L items of red[i * L + lid] for i < nb, left in red[i * L]; every item calls it. */
static inline void bm_mstep_tree_sum(__local float *red, int nb, int L, int lid)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = L / 2; s > 0; s >>= 1) {
        if (lid < s)
            for (int i = 0; i < nb; i++) red[i * L + lid] += red[i * L + lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* RMSNorm of xl[off .. off+len) in place with weight w (one item computes the scale; the group
 * waits for it). Same expression as bm_rmsnorm_rows' reference: x * rsqrt(mean(x^2) + eps) * w. */
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
                            __global float *state, __global float *y, __local float *red, __local float *xl)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int b = (int)get_global_id(1);
    const int xd = R + 2 * n;
    __global const float *ub = u + (size_t)b * di;

    for (int o0 = 0; o0 < xd; o0 += BM_MSTEP_OB) {
        float acc[BM_MSTEP_OB];
        for (int j = 0; j < BM_MSTEP_OB; j++) acc[j] = 0.0f;
        for (int k = lid; k < di; k += L) {
            const float a = ub[k];
            for (int j = 0; j < BM_MSTEP_OB; j++)
                if (o0 + j < xd) acc[j] = fma(Wx[(size_t)(o0 + j) * di + k], a, acc[j]);
        }
        for (int j = 0; j < BM_MSTEP_OB; j++) red[j * L + lid] = acc[j];
        bm_mstep_tree_sum(red, BM_MSTEP_OB, L, lid);
        if (lid < BM_MSTEP_OB && o0 + lid < xd) xl[o0 + lid] = red[lid * L];
        barrier(CLK_LOCAL_MEM_FENCE); /* red is rewritten by the next block */
    }
    if (has_norm) { /* Jamba: dt, B and C each RMS-normalised before use */
        bm_mstep_norm(xl, red, 0, R, dt_nw, eps, L, lid);
        bm_mstep_norm(xl, red, R, n, b_nw, eps, L, lid);
        bm_mstep_norm(xl, red, R + n, n, c_nw, eps, L, lid);
    }
    if (get_group_id(0) == 0)
        for (int o = lid; o < xd; o += L) xdbl[(size_t)b * xd + o] = xl[o];

    const int c = (int)get_global_id(0);
    if (c >= di) return;
    __global const float *wr = Wdt + (size_t)c * (size_t)R;
    float dt = 0.0f;
    for (int r = 0; r < R; r++) dt = fma(xl[r], wr[r], dt);
    const float delta = bm_softplus(dt + dt_bias[c]);
    const float uc = ub[c];
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
