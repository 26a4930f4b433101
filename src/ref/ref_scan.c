/* ref_scan.c — plain-C reference of the Mamba-1 selective scan (bm_op_scan in ops.h): one
 * sequential pass over time per (sequence, channel), fp32 accumulation, exactly the formula of
 * ops.h. It defines what cl/scan.cl must compute. */
#include <math.h>

#include "ref/ref.h"

/* torch.nn.functional.softplus with threshold 20 (same as bm_softplus in cl/common.cl). */
static float ref_scan_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static float ref_scan_silu(float x) { return x / (1.0f + expf(-x)); }

void bm_ref_scan(int B, int T, int di, int n, const float *u, const float *dt, size_t dt_ld,
                 const float *dt_bias, const float *A, const float *bc, size_t bc_ld, size_t b_col,
                 size_t c_col, const float *D, const float *z, size_t z_ld, size_t z_col,
                 float *state, float *y)
{
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < di; c++) {
            float *h = state + ((size_t)b * di + c) * n;   /* h_{t-1}, updated in place to h_t */
            const float *a = A + (size_t)c * n;
            for (int t = 0; t < T; t++) {
                size_t r = (size_t)b * T + t;
                float ut = u[r * di + c];
                float delta = ref_scan_softplus(dt[r * dt_ld + c] + dt_bias[c]);
                const float *Bt = bc + r * bc_ld + b_col;
                const float *Ct = bc + r * bc_ld + c_col;
                float acc = 0.0f;
                for (int j = 0; j < n; j++) {
                    h[j] = expf(delta * a[j]) * h[j] + delta * Bt[j] * ut;
                    acc += Ct[j] * h[j];
                }
                y[r * di + c] = (acc + D[c] * ut) * ref_scan_silu(z[r * z_ld + z_col + c]);
            }
        }
    }
}
