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
 * matrix-vector product for di 1536, L 1024). Then BM_MSTEP_QPC work-items share a channel
 * (L / QPC channels per group): each sums a slice of dt = Wdt[c] . xdbl[:R] and advances a slice
 * of the n states; the slices are added through local memory (dt by every item of the channel,
 * in the same order, so they agree; y by the first).
 *
 * x_proj in a group: BM_MSTEP_TPR work-items share one row of Wx (float4 loads, consecutive
 * items on consecutive columns: coalesced), L / TPR rows at a time; u is staged in local memory;
 * the TPR partial sums of a row are added by the row's first item.
 * Measured on the H200 (bmojo-130m: di 1536, xd 80): a first version (each item all xd rows over
 * a strided slice of the columns, scalar loads, 256 items and 6 groups, a 16-output tree
 * reduction per block) took 74 us per step: one group pulls all of x_proj (0.5 MB) through one
 * SM, and 16 scalar loads in flight per item are far too few for that. Whole rows per item group,
 * float4 loads and 1024 items per group did not help (67 us): the channel phase, with one
 * channel per item and only 2 groups, made each SM walk 1024 channels' rows of Wdt, A and the
 * state with uncoalesced 4-byte accesses (~100K L1 transactions per SM). Now a channel's slices
 * sit in consecutive items (coalesced) and there are ceil(di / (L / QPC)) groups (6 for
 * bmojo-130m).
 * Global (ceil(di / (L / QPC)) * L, B), local (L, 1); local memory: ul di, part L, xl xd floats.
 */
#ifndef BM_MSTEP_LD
#define BM_MSTEP_LD 8 /* x_proj loads per item issued together */
#endif
#ifndef BM_MSTEP_QPC
#define BM_MSTEP_QPC 4 /* work-items per channel in the state update (a power of two dividing L) */
#endif
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
            /* BM_MSTEP_LD loads issued before any is used: a loop with one load per iteration
             * was left with one load in flight at a time (a memory round trip each) */
            for (int k0 = sub; k0 < K4; k0 += BM_MSTEP_LD * BM_MSTEP_TPR) {
                float4 w[BM_MSTEP_LD];
                for (int i = 0; i < BM_MSTEP_LD; i++) {
                    const int k4 = k0 + i * BM_MSTEP_TPR;
                    w[i] = k4 < K4 ? vload4(k4, wr) : (float4)(0.0f);
                }
                for (int i = 0; i < BM_MSTEP_LD; i++) {
                    const int k4 = min(k0 + i * BM_MSTEP_TPR, K4 - 1);
                    acc += dot(w[i], vload4(k4, ul));
                }
            }
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

    /* channel phase: items q = 0 .. QPC-1 of channel c share dt's products and the states */
    const int q = lid % BM_MSTEP_QPC, CH = L / BM_MSTEP_QPC;
    const int c = (int)get_group_id(0) * CH + lid / BM_MSTEP_QPC, cc = min(c, di - 1);
    const int rq = (R + BM_MSTEP_QPC - 1) / BM_MSTEP_QPC, r0 = q * rq, r1 = min(R, r0 + rq);
    __global const float *wr = Wdt + (size_t)cc * (size_t)R;
    float dtp = 0.0f;
    for (int r = r0; r < r1; r++) dtp = fma(xl[r], wr[r], dtp);
    part[lid] = dtp;
    barrier(CLK_LOCAL_MEM_FENCE);
    float dt = 0.0f;
    for (int i = 0; i < BM_MSTEP_QPC; i++) dt += part[lid - q + i];
    barrier(CLK_LOCAL_MEM_FENCE); /* part is reused for y */
    const float delta = bm_softplus(dt + dt_bias[cc]);
    const float uc = ul[cc];
    const int nq = (n + BM_MSTEP_QPC - 1) / BM_MSTEP_QPC, j0 = q * nq, j1 = min(n, j0 + nq);
    __global float *h = state + ((size_t)b * di + cc) * (size_t)n;
    __global const float *Ac = A + (size_t)cc * (size_t)n;
    float acc = 0.0f;
    for (int j = j0; j < j1; j++) {
        const float hj = bm_scan_exp_a(delta * (Ac[j] * BM_SCAN_ASCALE)) * h[j] + delta * xl[R + j] * uc;
        if (c < di) h[j] = hj;
        acc = fma(xl[R + n + j], hj, acc);
    }
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (q == 0 && c < di) {
        float yc = 0.0f;
        for (int i = 0; i < BM_MSTEP_QPC; i++) yc += part[lid + i];
        const float zc = z[(size_t)b * z_ld + z_col + c];
        y[(size_t)b * di + c] = (yc + Dv[c] * uc) * bm_silu(zc);
    }
}
