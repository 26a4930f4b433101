/* rmsnorm.cl — RMSNorm of rows: out = x * rsqrt(mean(x^2) + eps) * w.
 * Layout: x row r at x[r * x_ld + x_col + j], out row r at out[r * out_ld + out_col + j] (j < d),
 * w [d]; in place (out == x with the same ld/col) is allowed: every element is read by the
 * work-item that later writes it, and all reads of the reduction finish at a barrier before any
 * write.
 * Variants considered: one work-item per row (serial sum, no parallelism for the small row
 * counts of decoding), several rows per work-group (only pays for d << BM_WG), and caching the
 * row in local memory (limits d by local memory; the second read of x is a cache hit anyway).
 * Chosen: one work-group of BM_WG work-items per row; each work-item accumulates a strided
 * partial sum of squares in fp32 (coalesced reads), a local-memory tree reduction (BM_WG is a
 * power of two) gives the row sum, then each work-item scales its strided elements. Handles any
 * d, including d < BM_WG and d not a multiple of it. Must be launched with local size BM_WG. */

__kernel __attribute__((reqd_work_group_size(BM_WG, 1, 1)))
void bm_rmsnorm_rows(__global const float *x, ulong x_ld, ulong x_col, __global const float *w,
                     __global float *out, ulong out_ld, ulong out_col, int d, float eps)
{
    __local float rms_partial[BM_WG];
    int lid = (int)get_local_id(0);
    ulong r = (ulong)get_group_id(0);
    __global const float *xr = x + r * x_ld + x_col;
    __global float *yr = out + r * out_ld + out_col;

    float ss = 0.0f;
    for (int j = lid; j < d; j += BM_WG) {
        float v = xr[j];
        ss += v * v;
    }
    rms_partial[lid] = ss;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = BM_WG / 2; s > 0; s >>= 1) {
        if (lid < s) rms_partial[lid] += rms_partial[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float scale = rsqrt(rms_partial[0] / (float)d + eps);
    for (int j = lid; j < d; j += BM_WG) yr[j] = xr[j] * scale * w[j];
}

/* CPU form (POCL; launcher op_rmsnorm.c, the choice on CPUs): a work-item per BM_RMS_CPU_ROWS
 * rows, each row summed as float16 lanes (then the lanes folded, then the tail of d % 16), then
 * scaled 16 at a time. The GPU form's work-group per row with a barrier tree runs on POCL as
 * loops over BM_WG work-items per row: 3.7 ms per 512 x 768 launch (mamba-130m pp512: 89 ms,
 * 4.6 %, on the 2-core development machine under load). In place as the GPU form: each row is
 * read whole before it is written. Global (ceil(rows / BM_RMS_CPU_ROWS)), local (1). */
#ifndef BM_RMS_CPU_ROWS
#define BM_RMS_CPU_ROWS 8
#endif
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void bm_rmsnorm_rows_cpu(__global const float *x, ulong x_ld, ulong x_col, __global const float *w,
                         __global float *out, ulong out_ld, ulong out_col, int d, float eps, int rows)
{
    const int r0 = (int)get_global_id(0) * BM_RMS_CPU_ROWS, n16 = d / 16;
    for (int r = r0; r < min(rows, r0 + BM_RMS_CPU_ROWS); r++) {
        __global const float *xr = x + (ulong)r * x_ld + x_col;
        __global float *yr = out + (ulong)r * out_ld + out_col;
        float16 ss16 = 0.0f;
        for (int c = 0; c < n16; c++) {
            const float16 v = vload16(c, xr);
            ss16 = fma(v, v, ss16);
        }
        float ss = bm_hsum16(ss16);
        for (int j = n16 * 16; j < d; j++) ss += xr[j] * xr[j];
        const float scale = rsqrt(ss / (float)d + eps);
        for (int c = 0; c < n16; c++) vstore16(vload16(c, xr) * scale * vload16(c, w), c, yr);
        for (int j = n16 * 16; j < d; j++) yr[j] = xr[j] * scale * w[j];
    }
}
