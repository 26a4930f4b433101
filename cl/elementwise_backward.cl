/* elementwise_backward.cl — gradients of the elementwise ops: SwiGLU, bias (column sums), and
 * A = -exp(A_log), plus the fixed-order column reduction the weight gradients share.
 * Layout: SwiGLU reads gate and up at columns g_col / u_col of gu [rows, ld], dout dense
 * [rows, cols], writes dg / du at the same columns of dgu [rows, ld] (dgu may be gu: each
 * element is read and written by one work-item). colsum reads dy [rows, ld] from column col.
 * neg_exp and its backward are dense vectors of n floats.
 * Column sums without float atomics: bm_colsum_part sums a block of rows per (column, block) in
 * increasing row order into a [blocks, cols] partial (or straight into the output when there is
 * one block), and bm_colsum_reduce adds each column's partials in block order: the result is
 * reproducible bit for bit. The block size is a launcher argument (op_elementwise_backward.c
 * picks it), so host and kernel cannot disagree. Considered: one work-item per column looping
 * over all rows (deterministic too, but only cols work-items: a few hundred, too little
 * parallelism for B*T of 16k rows on a GPU); a work-group tree per column (uncoalesced reads,
 * rows walk the slow dimension). The 2-D kernels run dim 0 along a row (coalesced). */

/* silu(g) = g s, s = sigmoid(g); d silu / dg = s (1 + g (1 - s)). */
__kernel void bm_swiglu_bwd(__global const float *gu, ulong ld, ulong g_col, ulong u_col,
                            __global const float *dout, __global float *dgu, int rows, int cols)
{
    int j = (int)get_global_id(0);
    int r = (int)get_global_id(1);
    if (j >= cols || r >= rows) return;
    ulong row = (ulong)r * ld;
    float g = gu[row + g_col + (ulong)j];
    float u = gu[row + u_col + (ulong)j];
    float go = dout[(ulong)r * (ulong)cols + (ulong)j];
    float s = 1.0f / (1.0f + exp(-g));
    dgu[row + g_col + (ulong)j] = go * u * s * (1.0f + g * (1.0f - s));
    dgu[row + u_col + (ulong)j] = go * g * s;
}

__kernel void bm_colsum_part(__global const float *dy, ulong ld, ulong col, __global float *part, int rows,
                             int cols, int rows_per_block, int accumulate)
{
    int j = (int)get_global_id(0);
    int b = (int)get_global_id(1);
    if (j >= cols) return;
    int i0 = b * rows_per_block;
    if (i0 >= rows) return;
    int i1 = min(rows, i0 + rows_per_block);
    float acc = 0.0f;
    for (int i = i0; i < i1; i++) acc += dy[(ulong)i * ld + col + (ulong)j];
    if (accumulate) part[j] += acc;
    else part[(ulong)b * (ulong)cols + (ulong)j] = acc;
}

/* out[j] += sum_b part[b * cols + j], b in increasing order. */
__kernel void bm_colsum_reduce(__global const float *part, __global float *out, int blocks, int cols)
{
    int j = (int)get_global_id(0);
    if (j >= cols) return;
    float acc = 0.0f;
    for (int b = 0; b < blocks; b++) acc += part[(ulong)b * (ulong)cols + (ulong)j];
    out[j] += acc;
}

__kernel void bm_neg_exp_f32(__global const float *a_log, __global float *a, ulong n)
{
    ulong i = get_global_id(0);
    if (i < n) a[i] = -exp(a_log[i]);
}

__kernel void bm_neg_exp_bwd(__global const float *a, __global const float *d_a, __global float *d_a_log, ulong n)
{
    ulong i = get_global_id(0);
    if (i < n) d_a_log[i] += d_a[i] * a[i];
}
