/* ref_mamba_step.c — plain-C reference of bm_op_mamba_step: a Mamba-1 decoding step after the conv,
 * composed from the references of its parts (x_proj GEMM, the optional dt/B/C RMSNorms, dt_proj
 * GEMM, the selective scan for T = 1), i.e. exactly what the unfused path computes. */
#include "ref/ref.h"

void bm_ref_mamba_step(int B, int di, int n, int R, const float *u, const float *Wx, const float *dt_nw,
                       const float *b_nw, const float *c_nw, float eps, float *xdbl, const float *Wdt,
                       const float *dt_bias, const float *A, const float *D, const float *z, size_t z_ld,
                       size_t z_col, float *state, float *y, float *dt_scratch)
{
    const size_t xd = (size_t)R + 2 * (size_t)n;
    bm_ref_gemm((size_t)B, xd, (size_t)di, u, (size_t)di, Wx, (size_t)di, 0.0f, xdbl, xd);
    if (dt_nw) {
        bm_ref_rmsnorm(xdbl, xd, 0, dt_nw, xdbl, xd, 0, B, R, eps);
        bm_ref_rmsnorm(xdbl, xd, (size_t)R, b_nw, xdbl, xd, (size_t)R, B, n, eps);
        bm_ref_rmsnorm(xdbl, xd, (size_t)R + (size_t)n, c_nw, xdbl, xd, (size_t)R + (size_t)n, B, n, eps);
    }
    bm_ref_gemm((size_t)B, (size_t)di, (size_t)R, xdbl, xd, Wdt, (size_t)R, 0.0f, dt_scratch, (size_t)di);
    bm_ref_scan(B, 1, di, n, u, dt_scratch, (size_t)di, dt_bias, A, xdbl, xd, (size_t)R, (size_t)R + (size_t)n, D, z,
                z_ld, z_col, state, y);
}
