/* gemm.c — bm_gemm: the model's projections, C[M,N] = A[M,K] W[N,K]^T + beta C, row-major, via
 * our own cl/gemm_nt.cl (bm_op_gemm_nt, GPUs), cl/gemm_nt_cpu.cl (bm_op_gemm_nt_cpu, CPUs) or
 * CLBlast (W stays in its stored [out, in] layout, hence the transposed B operand), as BMOJO_GEMM
 * and gemm_kernel_for decide. CLBlast compiles and
 * caches its own kernels on first use per device. Up to BM_GEMV_MAX_ROWS rows go to bm_op_gemv.
 * W stored as f16 (bm_wmat, `--weights f16`): our kernels have an f16-W form each; CLBlast has no
 * GEMM with f16 storage and fp32 arithmetic (its HGEMM computes in half), so BMOJO_GEMM=clblast
 * sends f16 weights to our kernel of the device (a measurement knob should not make a model
 * unloadable; the kernel's name in --profile says which ran). */

#include "error.h"
#include "ops.h"
#include "runtime.h"

/* After runtime.h, which fixes CL_TARGET_OPENCL_VERSION before any CL header. */
#include <clblast_c.h>

/* THE RULE for BMOJO_GEMM=auto (the default). GPUs: our register-tiled kernel for every shape.
 * Measured on the H200 (bench --ops, T 2048): every model shape was faster than CLBlast, 1.3-3x
 * (in_proj 446 -> 274 us, out_proj 325 -> 177, x_proj 99 -> 46, dt_proj 70 -> 23; 4096^3 30.7 ->
 * 38.8 TFLOP/s), because CLBlast 1.5.3 has no H200 tuning and its indirect path copies and pads W
 * on every call. CPUs: the CPU kernel (cl/gemm_nt_cpu.cl), about 10x CLBlast on POCL (2 cores of
 * an AMD EPYC: 139-156 against 10-16 GFLOP/s at the model's shapes). */
enum { USE_CLBLAST, USE_OWN, USE_CPU };
static int gemm_kernel_for(const bm_rt *rt, bm_store w_store)
{
    if (w_store == BM_STORE_F16 && rt->gemm_mode == BM_GEMM_MODE_CLBLAST) return rt->lim.is_gpu ? USE_OWN : USE_CPU;
    switch (rt->gemm_mode) {
    case BM_GEMM_MODE_OWN:
    case BM_GEMM_MODE_OWN_BIG:
    case BM_GEMM_MODE_OWN_THIN: return USE_OWN;
    case BM_GEMM_MODE_OWN_CPU: return USE_CPU;
    case BM_GEMM_MODE_CLBLAST: return USE_CLBLAST;
    default: return rt->lim.is_gpu ? USE_OWN : USE_CPU; /* auto */
    }
}

/* Whether buf holds the rows x cols view at element offset off with leading dimension ld: every
 * kernel reads and writes without bounds on the buffer, so a short buffer is refused here. */
static int check_extent(cl_mem buf, size_t elem, const char *name, size_t off, size_t rows, size_t ld, size_t cols,
                        size_t M, size_t N, size_t K)
{
    size_t bytes = 0;
    cl_int err = clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err != CL_SUCCESS) return bm_cl_check(err, "clGetMemObjectInfo(CL_MEM_SIZE)");
    const size_t need = off + (rows - 1) * ld + cols;
    if (need > bytes / elem)
        return bm_fail(BMOJO_EGEMM, "bm_gemm M=%zu N=%zu K=%zu: buffer %s too small (%zu elements of %zu bytes, the view needs %zu)", M,
                       N, K, name, bytes / elem, elem, need);
    return 0;
}

int bm_gemm(bm_rt *rt, size_t M, size_t N, size_t K, cl_mem A, size_t a_off, size_t lda, bm_wmat W, size_t w_off,
            size_t ldw, float beta, cl_mem C, size_t c_off, size_t ldc)
{
    /* Empty products are no-ops (CLBlast rejects zero dimensions). Note: K == 0 leaves C as it
     * is even when beta != 1; no caller multiplies by an empty inner dimension. */
    if (M == 0 || N == 0 || K == 0) return 0;
    if (!rt || !A || !W.buf || !C) return bm_fail(BMOJO_EINVAL, "bm_gemm M=%zu N=%zu K=%zu: NULL argument", M, N, K);
    if (lda < K || ldw < K || ldc < N)
        return bm_fail(BMOJO_EINVAL, "bm_gemm M=%zu N=%zu K=%zu: leading dimensions too small (lda=%zu ldw=%zu ldc=%zu)",
                       M, N, K, lda, ldw, ldc);
    int st = check_extent(A, sizeof(float), "A", a_off, M, lda, K, M, N, K);
    if (!st) st = check_extent(W.buf, bm_store_bytes(W.store), "W", w_off, N, ldw, K, M, N, K);
    if (!st) st = check_extent(C, sizeof(float), "C", c_off, M, ldc, N, M, N, K);
    if (st) return st;
    /* Few rows (decoding): a skinny kernel streams W once, where CLBlast would pad and copy it. */
    if (M <= BM_GEMV_MAX_ROWS) return bm_op_gemv(rt, M, N, K, A, a_off, lda, W, w_off, ldw, beta, C, c_off, ldc);
    const int use = gemm_kernel_for(rt, W.store);
    if (use == USE_CPU) return bm_op_gemm_nt_cpu(rt, M, N, K, A, a_off, lda, W, w_off, ldw, beta, C, c_off, ldc);
    if (use == USE_OWN) {
        int tiles = rt->gemm_mode == BM_GEMM_MODE_OWN_BIG    ? BM_GEMM_NT_TILES_BIG
                    : rt->gemm_mode == BM_GEMM_MODE_OWN_THIN ? BM_GEMM_NT_TILES_THIN
                                                             : BM_GEMM_NT_TILES_AUTO;
        return bm_op_gemm_nt(rt, tiles, rt->gemm_split_k, M, N, K, A, a_off, lda, W, w_off, ldw, beta, C, c_off, ldc);
    }
    CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, M, N, K, 1.0f, A,
                                       a_off, lda, W.buf, w_off, ldw, beta, C, c_off, ldc, &rt->queue, NULL);
    if (s == CLBlastSuccess) return 0;
    const char *what = s > -100 ? bm_cl_error_name((cl_int)s)
                       : s == CLBlastInsufficientMemoryA ? "buffer A too small"
                       : s == CLBlastInsufficientMemoryB ? "buffer W too small"
                       : s == CLBlastInsufficientMemoryC ? "buffer C too small"
                       : s == CLBlastInvalidLocalMemUsage ? "not enough local memory"
                       : s == CLBlastNotImplemented ? "not implemented"
                       : "see clblast_c.h";
    return bm_fail(BMOJO_EGEMM,
                   "CLBlastSgemm M=%zu N=%zu K=%zu (offsets %zu/%zu/%zu, ld %zu/%zu/%zu, beta %g) failed: CLBlast status "
                   "%d (%s)",
                   M, N, K, a_off, w_off, c_off, lda, ldw, ldc, (double)beta, (int)s, what);
}

int bm_gemm_in(bm_rt *rt, const bm_gemv_input *in, size_t M, size_t N, size_t K, bm_wmat W, size_t w_off, size_t ldw,
               float beta, cl_mem C, size_t c_off, size_t ldc)
{
    if (!in) return bm_fail(BMOJO_EINVAL, "bm_gemm_in: NULL input");
    if (in->mode == BM_GEMV_PLAIN) return bm_gemm(rt, M, N, K, in->A, in->a_off, in->lda, W, w_off, ldw, beta, C, c_off, ldc);
    if (M > BM_GEMV_MAX_ROWS)
        return bm_fail(BMOJO_EINVAL, "bm_gemm_in: a transformed input needs at most %d rows, got %zu", BM_GEMV_MAX_ROWS, M);
    return bm_op_gemv_in(rt, in, M, N, K, W, w_off, ldw, beta, C, c_off, ldc);
}

int bm_gemm_nn(bm_rt *rt, size_t M, size_t N, size_t K, cl_mem A, size_t a_off, size_t lda, cl_mem Bm, size_t b_off,
               size_t ldb, cl_mem C, size_t c_off, size_t ldc)
{
    if (M == 0 || N == 0 || K == 0) return 0;
    if (!rt || !A || !Bm || !C) return bm_fail(BMOJO_EINVAL, "bm_gemm_nn: NULL argument");
    if (lda < K || ldb < N || ldc < N)
        return bm_fail(BMOJO_EINVAL, "bm_gemm_nn M=%zu N=%zu K=%zu: leading dimensions too small", M, N, K);
    CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, M, N, K, 1.0f, A,
                                       a_off, lda, Bm, b_off, ldb, 0.0f, C, c_off, ldc, &rt->queue, NULL);
    if (s == CLBlastSuccess) return 0;
    return bm_fail(BMOJO_EGEMM, "CLBlastSgemm (A B) M=%zu N=%zu K=%zu failed: CLBlast status %d", M, N, K, (int)s);
}
