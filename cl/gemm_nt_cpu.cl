/* gemm_nt_cpu.cl — SGEMM for CPU devices (POCL), the model's "NT" layout: C[M,N] = A[M,K] W[N,K]^T
 * + beta C (bm_gemm's contract; launcher src/ops/op_gemm_nt_cpu.c).
 *
 * Layout (row-major fp32, offsets in elements): A [M, lda] (activations), W [N, ldw] (the
 * checkpoint's [out, in] weight; half in the _w16 kernel), C [M, ldc]; both operands contiguous along K. Any M, N, K >= 1,
 * any offsets and leading dimensions (vload16 needs only float alignment).
 *
 * Shape of the work: one work-item per work-group (reqd_work_group_size 1), each a CPU thread's
 * job: a macro tile of BM_GEMMC_MB rows of A x BM_GEMMC_NB rows of W. Inside it, 4 x 4 micro
 * tiles in the dot-product form: 16 float16 accumulators (one per output) run along K with
 * vload16 of 4 rows of A and 4 of W, i.e. 8 vector loads for 16 vector FMAs; the 16 sums are
 * folded horizontally once per micro tile, then K's last K % 16 elements are added one at a time.
 * The micro loop walks the A rows of the macro tile for a fixed 4-row W strip, so the strip (4 x K
 * floats, 12 KB at K 768) stays in L1 and the macro tile's A rows (64 x K, 196 KB) in L2. Rows
 * past M or N read the last valid row (no branches in the loop) and are not stored. beta == 0
 * never reads C.
 *
 * Why (2 cores of an AMD EPYC with AVX-512, POCL 3.1, this file's harness against the C
 * reference): CLBlast 1.5.3 reaches 10-16 GFLOP/s on POCL at the model's shapes; POCL maps
 * work-items to loops, so GPU-style tiles (local memory, barriers, many small items) mostly become
 * overhead. Explicit float16 vectors and one item per core-sized job let the compiler emit AVX-512
 * FMAs directly: 139-156 GFLOP/s at M 512-2048, N 3072, K 768 (numpy's OpenBLAS on the same two
 * cores: 142-160), 89 at N 80, K 1536. Macro tiles 32x32 to 128x128 all gave 146-174 GFLOP/s at
 * M 512, N 3072, K 768 (122-136 at N 768, K 3072); 256x64 fell to 141 / 108.
 * Not for GPUs: one item per group leaves a GPU idle (bm_gemm uses cl/gemm_nt.cl there).
 *
 * f16 weights (bm_gemm_nt_cpu_w16, `--weights f16`): W holds IEEE halves, each 16-wide run of a
 * W row widened by vload_half16 (POCL on AVX-512: two vcvtph2ps ymm per 16 values), the rest as
 * above. The kernel stays compute-bound: prefill of 512 tokens (bench, POCL, 2 cores) mamba-130m
 * 661 -> 704 tokens/s, swa-130m 857 -> 865 (within noise); docs/performance.md, "f16 weights".
 *
 * Tunables (-D, e.g. through BMOJO_CL_DEFINES): BM_GEMMC_MB, BM_GEMMC_NB macro tile (64, 64),
 * multiples of 4.
 */
#ifndef BM_GEMMC_MB
#define BM_GEMMC_MB 64
#endif
#ifndef BM_GEMMC_NB
#define BM_GEMMC_NB 64
#endif

/* The kernel's body; w16 (a literal in each kernel below) says whether W holds fp32 or half. */
static inline void bm_gemm_nt_cpu_body(const int w16, int M, int N, int K, __global const float *A, ulong a_off,
                                       ulong lda, __global const uchar *W, ulong w_off, ulong ldw, float beta,
                                       __global float *C, ulong c_off, ulong ldc)
{
    const int n0 = (int)get_global_id(0) * BM_GEMMC_NB, m0 = (int)get_global_id(1) * BM_GEMMC_MB;
    const int n1 = min(n0 + BM_GEMMC_NB, N), m1 = min(m0 + BM_GEMMC_MB, M);
    const int k16 = K & ~15;
    for (int n = n0; n < n1; n += 4) {
        __global const uchar *w0 = bm_w_at(W, w_off + (ulong)min(n, N - 1) * ldw, w16);
        __global const uchar *w1 = bm_w_at(W, w_off + (ulong)min(n + 1, N - 1) * ldw, w16);
        __global const uchar *w2 = bm_w_at(W, w_off + (ulong)min(n + 2, N - 1) * ldw, w16);
        __global const uchar *w3 = bm_w_at(W, w_off + (ulong)min(n + 3, N - 1) * ldw, w16);
        for (int m = m0; m < m1; m += 4) {
            __global const float *a0 = A + a_off + (ulong)min(m, M - 1) * lda;
            __global const float *a1 = A + a_off + (ulong)min(m + 1, M - 1) * lda;
            __global const float *a2 = A + a_off + (ulong)min(m + 2, M - 1) * lda;
            __global const float *a3 = A + a_off + (ulong)min(m + 3, M - 1) * lda;
            float16 c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
            float16 c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
            for (int k = 0; k < k16; k += 16) {
                const float16 x0 = vload16(0, a0 + k), x1 = vload16(0, a1 + k);
                const float16 x2 = vload16(0, a2 + k), x3 = vload16(0, a3 + k);
                float16 y = bm_w_load16(w0, k, w16);
                c00 = fma(x0, y, c00), c10 = fma(x1, y, c10), c20 = fma(x2, y, c20), c30 = fma(x3, y, c30);
                y = bm_w_load16(w1, k, w16);
                c01 = fma(x0, y, c01), c11 = fma(x1, y, c11), c21 = fma(x2, y, c21), c31 = fma(x3, y, c31);
                y = bm_w_load16(w2, k, w16);
                c02 = fma(x0, y, c02), c12 = fma(x1, y, c12), c22 = fma(x2, y, c22), c32 = fma(x3, y, c32);
                y = bm_w_load16(w3, k, w16);
                c03 = fma(x0, y, c03), c13 = fma(x1, y, c13), c23 = fma(x2, y, c23), c33 = fma(x3, y, c33);
            }
            float s[4][4] = {{bm_hsum16(c00), bm_hsum16(c01), bm_hsum16(c02), bm_hsum16(c03)},
                             {bm_hsum16(c10), bm_hsum16(c11), bm_hsum16(c12), bm_hsum16(c13)},
                             {bm_hsum16(c20), bm_hsum16(c21), bm_hsum16(c22), bm_hsum16(c23)},
                             {bm_hsum16(c30), bm_hsum16(c31), bm_hsum16(c32), bm_hsum16(c33)}};
            for (int k = k16; k < K; k++) {
                const float x[4] = {a0[k], a1[k], a2[k], a3[k]};
                const float y[4] = {bm_w_load(w0, k, w16), bm_w_load(w1, k, w16), bm_w_load(w2, k, w16),
                                    bm_w_load(w3, k, w16)};
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) s[i][j] = fma(x[i], y[j], s[i][j]);
            }
            for (int i = 0; i < 4 && m + i < M; i++) {
                __global float *c = C + c_off + (ulong)(m + i) * ldc + n;
                for (int j = 0; j < 4 && n + j < N; j++) c[j] = beta == 0.0f ? s[i][j] : s[i][j] + beta * c[j];
            }
        }
    }
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_gemm_nt_cpu(int M, int N, int K, __global const float *A, ulong a_off, ulong lda, __global const uchar *W,
               ulong w_off, ulong ldw, float beta, __global float *C, ulong c_off, ulong ldc)
{
    bm_gemm_nt_cpu_body(0, M, N, K, A, a_off, lda, W, w_off, ldw, beta, C, c_off, ldc);
}

/* W as half (--weights f16): vload_half16 widens each 16-wide run of a W row to fp32. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_gemm_nt_cpu_w16(int M, int N, int K, __global const float *A, ulong a_off, ulong lda, __global const uchar *W,
                   ulong w_off, ulong ldw, float beta, __global float *C, ulong c_off, ulong ldc)
{
    bm_gemm_nt_cpu_body(1, M, N, K, A, a_off, lda, W, w_off, ldw, beta, C, c_off, ldc);
}
