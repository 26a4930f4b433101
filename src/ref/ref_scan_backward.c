/* ref_scan_backward.c — plain-C reference of the selective-scan backward (bm_op_scan_backward in
 * ops_backward.h): per (sequence, channel) the forward from a zero state in double, every h_t
 * kept, then the reverse recursion dh_t = C_t dys_t + a_{t+1} dh_{t+1}. Sums over channels (dB,
 * dC), states (du, ddelta) and time (dA, dD, d_dt_bias) in double. Defines what
 * cl/scan_backward.cl must compute. */
#include <math.h>
#include <stdlib.h>

#include "ref/ref_backward.h"

/* softplus with the forward's threshold (bm_softplus in cl/common.cl) and its derivative. */
static double scanb_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }
static double scanb_dsoftplus(double x) { return x > 20.0 ? 1.0 : 1.0 / (1.0 + exp(-x)); }

void bm_ref_scan_backward(const bm_ref_scan_bwd_args *a)
{
    const int B = a->B, T = a->T, di = a->di, n = a->n;
    if (B <= 0 || T <= 0 || di <= 0 || n <= 0) return;
    const size_t rows = (size_t)B * T;
    double *hs = calloc((size_t)(T + 1) * n, sizeof(double));   /* hs[(t+1)*n + j] = h_t, hs[0..n) = 0 */
    double *dh = calloc((size_t)n, sizeof(double));
    double *dlt = calloc((size_t)T, sizeof(double));
    double *sdB = calloc(rows * n, sizeof(double)), *sdC = calloc(rows * n, sizeof(double));
    if (!hs || !dh || !dlt || !sdB || !sdC) abort();
    for (int c = 0; c < di; c++) {
        double *gA = calloc((size_t)n, sizeof(double));
        if (!gA) abort();
        double gD = 0.0, gbias = 0.0;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                size_t r = (size_t)b * T + t;
                double ut = a->u[r * di + c];
                dlt[t] = scanb_softplus((double)a->dt[r * a->dt_ld + c] + a->dt_bias[c]);
                const float *Bt = a->bc + r * a->bc_ld + a->b_col;
                for (int j = 0; j < n; j++)
                    hs[(size_t)(t + 1) * n + j] =
                        exp(dlt[t] * a->A[(size_t)c * n + j]) * hs[(size_t)t * n + j] + dlt[t] * Bt[j] * ut;
            }
            for (int j = 0; j < n; j++) dh[j] = 0.0;   /* holds a_{t+1} dh_{t+1} */
            for (int t = T - 1; t >= 0; t--) {
                size_t r = (size_t)b * T + t;
                double ut = a->u[r * di + c], zt = a->z[r * a->z_ld + a->z_col + c], dyt = a->dy[r * di + c];
                double x = (double)a->dt[r * a->dt_ld + c] + a->dt_bias[c];
                double sg = 1.0 / (1.0 + exp(-zt));
                double dys = dyt * zt * sg;
                const float *Bt = a->bc + r * a->bc_ld + a->b_col, *Ct = a->bc + r * a->bc_ld + a->c_col;
                double s = a->D[c] * ut, sdu = 0.0, sdd = 0.0;
                for (int j = 0; j < n; j++) {
                    double Aj = a->A[(size_t)c * n + j];
                    double ht = hs[(size_t)(t + 1) * n + j], hp = hs[(size_t)t * n + j];
                    double at = exp(dlt[t] * Aj);
                    double d = Ct[j] * dys + dh[j];
                    s += Ct[j] * ht;
                    sdC[r * n + j] += dys * ht;
                    sdB[r * n + j] += d * dlt[t] * ut;
                    sdu += d * Bt[j];
                    sdd += d * (Aj * at * hp + Bt[j] * ut);
                    gA[j] += d * hp * at * dlt[t];
                    dh[j] = at * d;
                }
                double ddt = sdd * scanb_dsoftplus(x);
                a->du[r * di + c] = (float)(a->D[c] * dys + dlt[t] * sdu);
                a->ddt[r * di + c] = (float)ddt;
                a->dz[r * a->dz_ld + a->z_col + c] = (float)(dyt * s * sg * (1.0 + zt * (1.0 - sg)));
                gD += dys * ut;
                gbias += ddt;
            }
        }
        for (int j = 0; j < n; j++) a->dA[(size_t)c * n + j] = (float)(a->dA[(size_t)c * n + j] + gA[j]);
        a->dD[c] = (float)(a->dD[c] + gD);
        a->d_dt_bias[c] = (float)(a->d_dt_bias[c] + gbias);
        free(gA);
    }
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            a->dbc[r * a->dbc_ld + a->b_col + j] = (float)sdB[r * n + j];
            a->dbc[r * a->dbc_ld + a->c_col + j] = (float)sdC[r * n + j];
        }
    free(hs), free(dh), free(dlt), free(sdB), free(sdC);
}
