/* elementwise.cl — streaming elementwise kernels: add, bias_add, SwiGLU, copy.
 * Layout: add/copy work on dense fp32 vectors of n floats (buffers start at offset 0, so the
 * float4 views are 16-byte aligned); bias_add on x [rows, ld] (cols < ld used) with bias [cols];
 * SwiGLU reads gate and up from one matrix g [rows, ld_in] at column offsets g_col and u_col and
 * writes a dense out [rows, cols].
 * Variants considered for the dense kernels: one float per work-item (simple, but many more
 * work-items and narrow memory transactions), float4 per work-item only when n % 4 == 0 (needs a
 * second kernel for the rest), and a grid-stride loop over float4 with a scalar tail (chosen):
 * the launcher sizes the grid to a few elements per work-item, each iteration of the loop is a
 * coalesced float4 sweep over the whole grid, and the n % 4 leftover floats are done by the
 * first work-items, so any n works with one kernel. The 2-D kernels (bias_add, SwiGLU) run
 * dim 0 along a row (coalesced) and dim 1 over rows, so strided rows need no division. */

#ifndef BM_EW_UNROLL
#define BM_EW_UNROLL 4   /* float4 elements per work-item the launcher aims at (documentation) */
#endif

/* x[i] += y[i] for i < n. */
__kernel void bm_add_f32(__global float *x, __global const float *y, ulong n)
{
    ulong n4 = n >> 2;
    ulong stride = get_global_size(0);
    __global float4 *x4 = (__global float4 *)x;
    __global const float4 *y4 = (__global const float4 *)y;
    for (ulong i = get_global_id(0); i < n4; i += stride) x4[i] += y4[i];
    ulong tail = (n4 << 2) + get_global_id(0);
    if (tail < n) x[tail] += y[tail];
}

/* dst[i] = src[i] for i < n, for CPUs: work-item i copies the contiguous floats [i*block,
 * (i+1)*block) 16 at a time, so that each thread streams its own pages (the grid-stride form
 * below interleaves every thread's float4s: 17.5 GB/s on POCL, 2 cores, where this one measures
 * what a CPU copy reaches; docs/performance.md). Global ceil(n / block), local 1. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void bm_copy_f32_blocks(__global const float *src,
                                                                                __global float *dst, ulong n,
                                                                                ulong block)
{
    const ulong b0 = get_global_id(0) * block, b1 = min(b0 + block, n);
    ulong i = b0;
    for (; i + 16 <= b1; i += 16) vstore16(vload16(0, src + i), 0, dst + i);
    for (; i < b1; i++) dst[i] = src[i];
}

/* dst[i] = src[i] for i < n: the bandwidth probe. */
__kernel void bm_copy_f32(__global const float *src, __global float *dst, ulong n)
{
    ulong n4 = n >> 2;
    ulong stride = get_global_size(0);
    __global const float4 *s4 = (__global const float4 *)src;
    __global float4 *d4 = (__global float4 *)dst;
    for (ulong i = get_global_id(0); i < n4; i += stride) d4[i] = s4[i];
    ulong tail = (n4 << 2) + get_global_id(0);
    if (tail < n) dst[tail] = src[tail];
}

/* x[r, j] += bias[j]. */
__kernel void bm_bias_add_f32(__global float *x, ulong ld, __global const float *bias, int rows, int cols)
{
    int j = (int)get_global_id(0);
    int r = (int)get_global_id(1);
    if (j >= cols || r >= rows) return;
    x[(ulong)r * ld + (ulong)j] += bias[j];
}

/* out[r, j] = silu(g[r, g_col + j]) * g[r, u_col + j]. */
__kernel void bm_swiglu_f32(__global const float *g, ulong ld_in, ulong g_col, ulong u_col,
                            __global float *out, int rows, int cols)
{
    int j = (int)get_global_id(0);
    int r = (int)get_global_id(1);
    if (j >= cols || r >= rows) return;
    __global const float *row = g + (ulong)r * ld_in;
    out[(ulong)r * (ulong)cols + (ulong)j] = bm_silu(row[g_col + (ulong)j]) * row[u_col + (ulong)j];
}
