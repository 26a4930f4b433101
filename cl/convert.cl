/* convert.cl — fp32 <-> half (f16) conversion of device buffers, for weights computed on the
 * device at load time under f16 storage (B'MOJO's folded (Wk|Wv) out_proj rows, layer_bmojo.c:
 * the operands widened, the product narrowed). One work-item per element; pure bandwidth, run once
 * per load. Layout: src at element offset src_off, dst dense, n elements. Narrowing rounds to
 * nearest even (vstore_half_rte, as the host's bm_half_from_float), so a value beyond f16's range
 * becomes an infinity; the caller checks (bm_op_f16_narrow's `overflow` flag, set by any item
 * whose value did not fit). */

__kernel void bm_f16_widen(__global const half *src, const ulong src_off, __global float *dst, const ulong n)
{
    const ulong i = get_global_id(0);
    if (i < n) dst[i] = vload_half(src_off + i, src);
}

__kernel void bm_f16_narrow(__global const float *src, const ulong src_off, __global half *dst, const ulong n,
                            __global int *overflow)
{
    const ulong i = get_global_id(0);
    if (i >= n) return;
    const float v = src[src_off + i];
    vstore_half_rte(v, i, dst);
    if (isfinite(v) && fabs(v) >= 65520.0f) *overflow = 1; /* rounds to infinity: does not fit */
}
