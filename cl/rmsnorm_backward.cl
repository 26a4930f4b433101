/* rmsnorm_backward.cl — gradient of y = x * r * w, r = rsqrt(mean(x^2) + eps) per row of d:
 *   dx = beta_dx * dx + r * w*dy - x * (r^3 / d) * sum_j (w*dy*x)_j,
 *   dw[j] += sum_rows dy[j] * x[j] * r.
 * Layout: x row i at x[i * x_ld + x_col + j], dy at dy[i * dy_ld + dy_col + j], dx at
 * dx[i * dx_ld + dx_col + j] (j < d); w, dw [d]. dx may alias dy with the same ld/col (the
 * dt/B/C norms of Jamba-style Mamba run in place).
 * Algorithm, four launches on the in-order queue:
 *   1. bm_rmsnorm_bwd_stats: one work-group of BM_WG per row reduces sum x^2 and sum w*dy*x
 *      (local-memory trees) and stores (r, r^3/d * sum w*dy*x) per row (on CPUs
 *      bm_rmsnorm_bwd_stats_cpu, a work-item per few rows);
 *   2. bm_rmsnorm_bwd_dw_part: 2-D range (column, block of rows): the sum of dy*x*r over the
 *      block's rows in increasing order, into a [blocks, d] partial (or straight into dw when
 *      there is one block);
 *   3. bm_colsum_reduce (elementwise_backward.cl): dw[j] += the partials of column j in block
 *      order — fixed order, so dw is bitwise reproducible (no float atomics);
 *   4. bm_rmsnorm_bwd_dx: 2-D elementwise range writing dx from the per-row stats.
 * Steps 1 and 2 read dy before step 4 overwrites it, which is what makes the in-place case safe.
 * Variants considered: one work-group per row writing dx directly (one launch less, but then dw
 * needs dy after it is overwritten in place, or an atomic add across rows); a per-row dw
 * contribution stored as [rows, d] (as much scratch as the activation). The row-block size is a
 * launcher argument (op_rmsnorm_backward.c), so host and kernel never disagree on it. */

__kernel __attribute__((reqd_work_group_size(BM_WG, 1, 1)))
void bm_rmsnorm_bwd_stats(__global const float *x, ulong x_ld, ulong x_col, __global const float *w,
                          __global const float *dy, ulong dy_ld, ulong dy_col, __global float *stats,
                          int d, float eps)
{
    __local float ss_part[BM_WG];
    __local float sd_part[BM_WG];
    int lid = (int)get_local_id(0);
    ulong r = (ulong)get_group_id(0);
    __global const float *xr = x + r * x_ld + x_col;
    __global const float *gr = dy + r * dy_ld + dy_col;
    float ss = 0.0f, sd = 0.0f;
    for (int j = lid; j < d; j += BM_WG) {
        float v = xr[j];
        ss += v * v;
        sd += w[j] * gr[j] * v;
    }
    ss_part[lid] = ss;
    sd_part[lid] = sd;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = BM_WG / 2; s > 0; s >>= 1) {
        if (lid < s) {
            ss_part[lid] += ss_part[lid + s];
            sd_part[lid] += sd_part[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        float rs = rsqrt(ss_part[0] / (float)d + eps);
        stats[2 * r] = rs;
        stats[2 * r + 1] = rs * rs * rs / (float)d * sd_part[0];
    }
}

/* The CPU form of bm_rmsnorm_bwd_stats (POCL; launcher op_rmsnorm_backward.c, the choice on CPUs):
 * a work-item per BM_RMS_CPU_ROWS rows (cl/rmsnorm.cl), each row's two sums 16 columns at a time
 * as float16 vectors. The GPU form's work-group per row and barrier tree is what POCL ran at 7.3
 * us per token of a 2-layer MQAR model's training pass. Global (ceil(rows / BM_RMS_CPU_ROWS)),
 * local (1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void bm_rmsnorm_bwd_stats_cpu(__global const float *x, ulong x_ld, ulong x_col, __global const float *w,
                              __global const float *dy, ulong dy_ld, ulong dy_col, __global float *stats, int d,
                              float eps, int rows)
{
    const int r0 = (int)get_global_id(0) * BM_RMS_CPU_ROWS, n16 = d / 16;
    for (int r = r0; r < min(rows, r0 + BM_RMS_CPU_ROWS); r++) {
        __global const float *xr = x + (ulong)r * x_ld + x_col, *gr = dy + (ulong)r * dy_ld + dy_col;
        float16 ss16 = 0.0f, sd16 = 0.0f;
        for (int c = 0; c < n16; c++) {
            const float16 v = vload16(c, xr);
            ss16 = fma(v, v, ss16);
            sd16 = fma(vload16(c, w) * vload16(c, gr), v, sd16);
        }
        float ss = bm_hsum16(ss16), sd = bm_hsum16(sd16);
        for (int j = n16 * 16; j < d; j++) {
            ss += xr[j] * xr[j];
            sd += w[j] * gr[j] * xr[j];
        }
        const float rs = rsqrt(ss / (float)d + eps);
        stats[2 * r] = rs;
        stats[2 * r + 1] = rs * rs * rs / (float)d * sd;
    }
}

/* part[b * d + j] = sum over rows i of block b (rows_per_block rows) of dy[i, j] x[i, j] r_i;
 * with accumulate != 0 (a single block) part is dw itself and the sum is added to it. */
__kernel void bm_rmsnorm_bwd_dw_part(__global const float *x, ulong x_ld, ulong x_col, __global const float *dy,
                                     ulong dy_ld, ulong dy_col, __global const float *stats,
                                     __global float *part, int rows, int d, int rows_per_block, int accumulate)
{
    int j = (int)get_global_id(0);
    int b = (int)get_global_id(1);
    if (j >= d) return;
    int i0 = b * rows_per_block;
    if (i0 >= rows) return;
    int i1 = min(rows, i0 + rows_per_block);
    float acc = 0.0f;
    for (int i = i0; i < i1; i++)
        acc += dy[(ulong)i * dy_ld + dy_col + (ulong)j] * x[(ulong)i * x_ld + x_col + (ulong)j] * stats[2 * i];
    if (accumulate) part[j] += acc;
    else part[(ulong)b * (ulong)d + (ulong)j] = acc;
}

/* dx[i, j] = beta * dx[i, j] + r_i w[j] dy[i, j] - x[i, j] c_i (c_i = r_i^3 / d sum w*dy*x);
 * beta == 0 never reads dx. In place (dx == dy) each element is read and written by one item. */
__kernel void bm_rmsnorm_bwd_dx(__global const float *x, ulong x_ld, ulong x_col, __global const float *w,
                                __global const float *dy, ulong dy_ld, ulong dy_col, __global const float *stats,
                                float beta, __global float *dx, ulong dx_ld, ulong dx_col, int rows, int d)
{
    int j = (int)get_global_id(0);
    int i = (int)get_global_id(1);
    if (j >= d || i >= rows) return;
    float rs = stats[2 * i], c = stats[2 * i + 1];
    float g = dy[(ulong)i * dy_ld + dy_col + (ulong)j];
    float xv = x[(ulong)i * x_ld + x_col + (ulong)j];
    ulong o = (ulong)i * dx_ld + dx_col + (ulong)j;
    float v = rs * w[j] * g - xv * c;
    dx[o] = beta != 0.0f ? beta * dx[o] + v : v;
}
