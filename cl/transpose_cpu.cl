/* transpose_cpu.cl — dst = src^T of a rows x cols view (fp32, row-major, leading dimensions and
 * element offsets): the layout change that lets the training pass's NN / TN / TT GEMMs run the
 * CPU NT kernel (bm_gemm_ex on CPU devices, src/ops/op_gemm_tt.c). Reference: the definition
 * (tests/ops/test_gemm_tt.c compares the GEMMs it serves, whole buffers).
 *
 * Shape of the work: one work-item per 16 x 16 tile, a CPU thread's job: 16 rows read as float16,
 * written as 16 float16 columns of dst. Partial tiles at the edges go element by element.
 * Why: on POCL the only other path for these layouts was CLBlast, 10-16 GFLOP/s there against
 * the NT CPU kernel's 140-200 (docs/performance.md); a transpose is a pass over memory. */

/* Global (ceil(cols / 16), ceil(rows / 16)), local (1, 1): dst[c, r] = src[r, c]. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_transpose_cpu(__global const float *src, const ulong s_off, const ulong lds, __global float *dst, const ulong d_off,
                 const ulong ldd, const int rows, const int cols)
{
    const int c0 = (int)get_global_id(0) * 16, r0 = (int)get_global_id(1) * 16;
    src += s_off;
    dst += d_off;
    if (r0 + 16 <= rows && c0 + 16 <= cols) {
        float16 t[16];
        for (int i = 0; i < 16; i++) t[i] = vload16(0, src + (ulong)(r0 + i) * lds + (ulong)c0);
        float col[16][16];
        for (int i = 0; i < 16; i++) vstore16(t[i], 0, col[i]);
        for (int j = 0; j < 16; j++) {
            float16 v = (float16)(col[0][j], col[1][j], col[2][j], col[3][j], col[4][j], col[5][j], col[6][j], col[7][j],
                                  col[8][j], col[9][j], col[10][j], col[11][j], col[12][j], col[13][j], col[14][j],
                                  col[15][j]);
            vstore16(v, 0, dst + (ulong)(c0 + j) * ldd + (ulong)r0);
        }
        return;
    }
    for (int j = c0; j < min(cols, c0 + 16); j++)
        for (int i = r0; i < min(rows, r0 + 16); i++) dst[(ulong)j * ldd + (ulong)i] = src[(ulong)i * lds + (ulong)j];
}
