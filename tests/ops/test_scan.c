/* test_scan.c — the selective scan (bm_op_scan; cl/scan.cl chunked, cl/scan_lanes.cl lanes,
 * cl/scan_cpu.cl cpu)
 * against bm_ref_scan: y and the final state, for awkward sizes, strided column views of B/C,
 * dt and z, a nonzero initial state, single-chunk and multi-chunk paths (forced chunk lengths
 * around T), d_state above the kernel's register block (several state blocks), softplus past its
 * threshold, and continuation: two calls of T1 and T2 steps equal one call of T1 + T2. The lanes
 * and CPU kernels run through bm_op_scan_lanes / bm_op_scan_cpu on every device (whatever
 * BMOJO_SCAN says), and once more through bm_op_scan with the runtime's choice forced to them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ops/op_scan.h"
#include "ref/ref.h"

#define SCAN_TOL 1e-5

/* Host inputs of one case, with strided views laid out the way a Mamba mixer has them. */
typedef struct {
    int B, T, di, n;
    size_t dt_ld, bc_ld, b_col, c_col, z_ld, z_col;
    float *u, *dt, *dt_bias, *A, *bc, *D, *z, *state;
} scan_host;

static void scan_host_make(bm_test_ctx *t, scan_host *h, int B, int T, int di, int n, float dt_lo, float dt_hi)
{
    const int dt_rank = 3;
    memset(h, 0, sizeof *h);
    h->B = B, h->T = T, h->di = di, h->n = n;
    h->dt_ld = (size_t)di + 2;                      /* extra columns after the dt view */
    h->bc_ld = (size_t)dt_rank + 2 * (size_t)n + 1; /* [dt_in | B | C | pad] */
    h->b_col = dt_rank;
    h->c_col = (size_t)dt_rank + n;
    h->z_ld = 2 * (size_t)di;                       /* in_proj output [x | z] */
    h->z_col = di;
    size_t rows = (size_t)B * T;
    h->u = bm_test_alloc(rows * di * sizeof(float));
    h->dt = bm_test_alloc(rows * h->dt_ld * sizeof(float));
    h->dt_bias = bm_test_alloc((size_t)di * sizeof(float));
    h->A = bm_test_alloc((size_t)di * n * sizeof(float));
    h->bc = bm_test_alloc(rows * h->bc_ld * sizeof(float));
    h->D = bm_test_alloc((size_t)di * sizeof(float));
    h->z = bm_test_alloc(rows * h->z_ld * sizeof(float));
    h->state = bm_test_alloc((size_t)B * di * n * sizeof(float));
    bm_test_fill(t, h->u, rows * di, -2.0f, 2.0f);
    bm_test_fill(t, h->dt, rows * h->dt_ld, dt_lo, dt_hi);
    bm_test_fill(t, h->dt_bias, di, -1.0f, 0.5f);
    bm_test_fill(t, h->A, (size_t)di * n, -8.0f, -0.1f);
    bm_test_fill(t, h->bc, rows * h->bc_ld, -1.5f, 1.5f);
    bm_test_fill(t, h->D, di, -1.0f, 1.0f);
    bm_test_fill(t, h->z, rows * h->z_ld, -3.0f, 3.0f);
    bm_test_fill(t, h->state, (size_t)B * di * n, -1.0f, 1.0f);
}

static void scan_host_free(scan_host *h)
{
    free(h->u), free(h->dt), free(h->dt_bias), free(h->A), free(h->bc), free(h->D), free(h->z), free(h->state);
}

/* The rows t0 .. t0+T2-1 of every sequence of h, as a case of its own (same weights). */
static void scan_host_slice(const scan_host *h, int t0, int T2, scan_host *o)
{
    *o = *h;
    o->T = T2;
    size_t rows = (size_t)h->B * T2;
    o->u = bm_test_alloc(rows * h->di * sizeof(float));
    o->dt = bm_test_alloc(rows * h->dt_ld * sizeof(float));
    o->bc = bm_test_alloc(rows * h->bc_ld * sizeof(float));
    o->z = bm_test_alloc(rows * h->z_ld * sizeof(float));
    for (int b = 0; b < h->B; b++) {
        size_t src = (size_t)b * h->T + t0, dst = (size_t)b * T2;
        memcpy(o->u + dst * h->di, h->u + src * h->di, (size_t)T2 * h->di * sizeof(float));
        memcpy(o->dt + dst * h->dt_ld, h->dt + src * h->dt_ld, (size_t)T2 * h->dt_ld * sizeof(float));
        memcpy(o->bc + dst * h->bc_ld, h->bc + src * h->bc_ld, (size_t)T2 * h->bc_ld * sizeof(float));
        memcpy(o->z + dst * h->z_ld, h->z + src * h->z_ld, (size_t)T2 * h->z_ld * sizeof(float));
    }
    /* Shared with h (not freed through o): dt_bias, A, D, state. */
}

static void scan_host_slice_free(scan_host *o) { free(o->u), free(o->dt), free(o->bc), free(o->z); }

/* L for scan_device: the lanes kernel (bm_op_scan_lanes) or the CPU kernel (bm_op_scan_cpu)
 * instead of the chunked one. */
#define SCAN_LANES (-1)
#define SCAN_CPU (-2)

/* Runs the op on the device with chunk length L (0 = automatic; SCAN_LANES = the lanes kernel)
 * from initial state `state` (host); y_out [B*T*di] and state (updated) come back. Returns the
 * op's status. */
static int scan_device(bm_test_ctx *t, const scan_host *h, const float *state_in, int L, float *y_out, float *state_out)
{
    size_t rows = (size_t)h->B * h->T, nst = (size_t)h->B * h->di * h->n;
    bm_scan_args a = {
        .B = h->B, .T = h->T, .di = h->di, .n = h->n,
        .u = bm_test_buffer(t, h->u, rows * h->di * sizeof(float)),
        .dt = bm_test_buffer(t, h->dt, rows * h->dt_ld * sizeof(float)), .dt_ld = h->dt_ld,
        .dt_bias = bm_test_buffer(t, h->dt_bias, (size_t)h->di * sizeof(float)),
        .A = bm_test_buffer(t, h->A, (size_t)h->di * h->n * sizeof(float)),
        .bc = bm_test_buffer(t, h->bc, rows * h->bc_ld * sizeof(float)),
        .bc_ld = h->bc_ld, .b_col = h->b_col, .c_col = h->c_col,
        .D = bm_test_buffer(t, h->D, (size_t)h->di * sizeof(float)),
        .z = bm_test_buffer(t, h->z, rows * h->z_ld * sizeof(float)), .z_ld = h->z_ld, .z_col = h->z_col,
        .state = bm_test_buffer(t, state_in, nst * sizeof(float)),
        .y = NULL,
    };
    /* y starts as garbage so that an unwritten element shows. */
    float *junk = bm_test_alloc(rows * h->di * sizeof(float) + 4);
    for (size_t i = 0; i < rows * h->di; i++) junk[i] = 1e3f + (float)(i % 7);
    a.y = bm_test_buffer(t, junk, rows * h->di * sizeof(float));
    free(junk);
    int st = L == SCAN_LANES ? bm_op_scan_lanes(t->rt, &a)
             : L == SCAN_CPU ? bm_op_scan_cpu(t->rt, &a)
                             : bm_op_scan_chunked(t->rt, &a, L);
    if (st == 0) st = bm_finish(t->rt);
    if (st == 0) {
        bm_test_read(t, a.y, y_out, rows * h->di * sizeof(float));
        bm_test_read(t, a.state, state_out, nst * sizeof(float));
    }
    cl_mem all[] = {a.u, a.dt, a.dt_bias, a.A, a.bc, a.D, a.z, a.state, a.y};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bm_release(all[i]);
    return st;
}

/* One case against the reference. */
static void scan_case(bm_test_ctx *t, int B, int T, int di, int n, int L, float dt_lo, float dt_hi)
{
    scan_host h;
    scan_host_make(t, &h, B, T, di, n, dt_lo, dt_hi);
    size_t rows = (size_t)B * T, nst = (size_t)B * di * n;
    float *y_ref = bm_test_alloc(rows * di * sizeof(float)), *y_dev = bm_test_alloc(rows * di * sizeof(float));
    float *s_ref = bm_test_alloc(nst * sizeof(float)), *s_dev = bm_test_alloc(nst * sizeof(float));
    memcpy(s_ref, h.state, nst * sizeof(float));
    bm_ref_scan(B, T, di, n, h.u, h.dt, h.dt_ld, h.dt_bias, h.A, h.bc, h.bc_ld, h.b_col, h.c_col, h.D, h.z, h.z_ld,
                h.z_col, s_ref, y_ref);
    /* The scale of the errors: the same scan of the inputs' magnitudes (|u|, |B|, |C|, |D|, |z|
     * and |initial state|; silu(|z|) >= |silu(z)|), which bounds every term of y and the state.
     * A state or y that cancels to far below its terms (a single channel after 1000 steps) is
     * then judged by the size of what fp32 rounded, not by its own. */
    float *y_mag = bm_test_alloc(rows * di * sizeof(float)), *s_mag = bm_test_alloc(nst * sizeof(float));
    {
        scan_host m = h;
        size_t nu = rows * di, nbc = rows * h.bc_ld, nz = rows * h.z_ld;
        m.u = bm_test_alloc(nu * sizeof(float)), m.bc = bm_test_alloc(nbc * sizeof(float));
        m.D = bm_test_alloc((size_t)di * sizeof(float)), m.z = bm_test_alloc(nz * sizeof(float));
        for (size_t i = 0; i < nu; i++) m.u[i] = fabsf(h.u[i]);
        for (size_t i = 0; i < nbc; i++) m.bc[i] = fabsf(h.bc[i]);
        for (int i = 0; i < di; i++) m.D[i] = fabsf(h.D[i]);
        for (size_t i = 0; i < nz; i++) m.z[i] = fabsf(h.z[i]);
        for (size_t i = 0; i < nst; i++) s_mag[i] = fabsf(h.state[i]);
        bm_ref_scan(B, T, di, n, m.u, m.dt, m.dt_ld, m.dt_bias, m.A, m.bc, m.bc_ld, m.b_col, m.c_col, m.D, m.z, m.z_ld,
                    m.z_col, s_mag, y_mag);
        free(m.u), free(m.bc), free(m.D), free(m.z);
    }
    char what[160];
    if (L == SCAN_LANES || L == SCAN_CPU) {
        snprintf(what, sizeof what, "scan %s B=%d T=%d di=%d n=%d dt=[%g,%g]", L == SCAN_CPU ? "cpu" : "lanes", B, T,
                 di, n, dt_lo, dt_hi);
    } else {
        int Leff = L > 0 ? L : bm_scan_chunk_len(t->rt, B, di, T);
        snprintf(what, sizeof what, "scan B=%d T=%d di=%d n=%d L=%d dt=[%g,%g]", B, T, di, n, Leff, dt_lo, dt_hi);
    }
    if (bm_test_status(t, scan_device(t, &h, h.state, L, y_dev, s_dev), what)) {
        char w2[200];
        snprintf(w2, sizeof w2, "%s y", what);
        bm_test_close_scaled(t, w2, y_dev, y_ref, y_mag, rows * di, SCAN_TOL);
        snprintf(w2, sizeof w2, "%s state", what);
        bm_test_close_scaled(t, w2, s_dev, s_ref, s_mag, nst, SCAN_TOL);
    }
    free(y_ref), free(y_dev), free(s_ref), free(s_dev), free(y_mag), free(s_mag);
    scan_host_free(&h);
}

/* Two device calls (T1 steps, then T2 from the returned state) against one call of T1 + T2,
 * and both against the reference. */
static void scan_split_case(bm_test_ctx *t, int B, int T1, int T2, int di, int n, int L)
{
    scan_host h, h1, h2;
    int T = T1 + T2;
    scan_host_make(t, &h, B, T, di, n, -4.0f, 0.0f);
    scan_host_slice(&h, 0, T1, &h1);
    scan_host_slice(&h, T1, T2, &h2);
    size_t nst = (size_t)B * di * n;
    float *y_one = bm_test_alloc((size_t)B * T * di * sizeof(float)), *s_one = bm_test_alloc(nst * sizeof(float));
    float *y1 = bm_test_alloc((size_t)B * T1 * di * sizeof(float)), *s1 = bm_test_alloc(nst * sizeof(float));
    float *y2 = bm_test_alloc((size_t)B * T2 * di * sizeof(float)), *s2 = bm_test_alloc(nst * sizeof(float));
    float *y_cat = bm_test_alloc((size_t)B * T * di * sizeof(float));
    float *y_ref = bm_test_alloc((size_t)B * T * di * sizeof(float)), *s_ref = bm_test_alloc(nst * sizeof(float));
    char what[160];
    if (L == SCAN_LANES || L == SCAN_CPU)
        snprintf(what, sizeof what, "scan %s split B=%d T=%d+%d di=%d n=%d", L == SCAN_CPU ? "cpu" : "lanes", B, T1,
                 T2, di, n);
    else
        snprintf(what, sizeof what, "scan split B=%d T=%d+%d di=%d n=%d L=%d", B, T1, T2, di, n, L);
    int ok = bm_test_status(t, scan_device(t, &h, h.state, L, y_one, s_one), what) &&
             bm_test_status(t, scan_device(t, &h1, h.state, L, y1, s1), what) &&
             bm_test_status(t, scan_device(t, &h2, s1, L, y2, s2), what);
    if (ok) {
        for (int b = 0; b < B; b++) {
            memcpy(y_cat + (size_t)b * T * di, y1 + (size_t)b * T1 * di, (size_t)T1 * di * sizeof(float));
            memcpy(y_cat + ((size_t)b * T + T1) * di, y2 + (size_t)b * T2 * di, (size_t)T2 * di * sizeof(float));
        }
        memcpy(s_ref, h.state, nst * sizeof(float));
        bm_ref_scan(B, T, di, n, h.u, h.dt, h.dt_ld, h.dt_bias, h.A, h.bc, h.bc_ld, h.b_col, h.c_col, h.D, h.z,
                    h.z_ld, h.z_col, s_ref, y_ref);
        char w2[200];
        snprintf(w2, sizeof w2, "%s y two calls = one", what);
        bm_test_close(t, w2, y_cat, y_one, (size_t)B * T * di, SCAN_TOL);
        snprintf(w2, sizeof w2, "%s state two calls = one", what);
        bm_test_close(t, w2, s2, s_one, nst, SCAN_TOL);
        snprintf(w2, sizeof w2, "%s y two calls vs ref", what);
        bm_test_close(t, w2, y_cat, y_ref, (size_t)B * T * di, SCAN_TOL);
        snprintf(w2, sizeof w2, "%s state two calls vs ref", what);
        bm_test_close(t, w2, s2, s_ref, nst, SCAN_TOL);
    }
    free(y_one), free(s_one), free(y1), free(s1), free(y2), free(s2), free(y_cat), free(y_ref), free(s_ref);
    scan_host_slice_free(&h1);
    scan_host_slice_free(&h2);
    scan_host_free(&h);
}

/* Bad arguments are refused with BMOJO_EINVAL, never launched. */
static void scan_bad_args(bm_test_ctx *t)
{
    cl_mem m = bm_test_buffer(t, NULL, 1024);
    bm_scan_args a = {.B = 1, .T = 4, .di = 8, .n = 4, .u = m, .dt = m, .dt_ld = 8, .dt_bias = m, .A = m, .bc = m,
                      .bc_ld = 8, .b_col = 0, .c_col = 4, .D = m, .z = m, .z_ld = 16, .z_col = 8, .state = m, .y = m};
    bm_scan_args b = a;
    b.n = 0;
    bm_test_true(t, bm_op_scan(t->rt, &b) == BMOJO_EINVAL, "scan: n = 0 refused");
    b = a;
    b.c_col = 5;  /* C view runs past its row */
    bm_test_true(t, bm_op_scan(t->rt, &b) == BMOJO_EINVAL, "scan: C view past bc_ld refused");
    b = a;
    b.z_col = 9;
    bm_test_true(t, bm_op_scan(t->rt, &b) == BMOJO_EINVAL, "scan: z view past z_ld refused");
    b = a;
    b.y = NULL;
    bm_test_true(t, bm_op_scan(t->rt, &b) == BMOJO_EINVAL, "scan: NULL y refused");
    b = a;
    b.T = 0;
    bm_test_true(t, bm_op_scan(t->rt, &b) == 0, "scan: T = 0 is a no-op");
    bm_release(m);
}

/* dt_proj fused into the op (bm_scan_args.dt_proj): the decoding step kernel (T = 1) and the
 * GEMM path (T > 1) against bm_ref_gemm + bm_ref_scan, from a nonzero state. */
static void scan_dtproj_case(bm_test_ctx *t, int B, int T, int di, int n, int R)
{
    size_t N = (size_t)B * T, bc_ld = (size_t)R + 2 * n + 3, z_ld = 2 * (size_t)di + 1;
    float *u = bm_test_alloc(N * di * 4), *bc = bm_test_alloc(N * bc_ld * 4), *z = bm_test_alloc(N * z_ld * 4);
    float *W = bm_test_alloc((size_t)di * R * 4), *bias = bm_test_alloc((size_t)di * 4), *A = bm_test_alloc((size_t)di * n * 4);
    float *D = bm_test_alloc((size_t)di * 4), *st0 = bm_test_alloc((size_t)B * di * n * 4), *dt = bm_test_alloc(N * di * 4);
    float *y_ref = bm_test_alloc(N * di * 4), *st_ref = bm_test_alloc((size_t)B * di * n * 4);
    /* y with 16 guard floats after it: a step that stores whole 16-channel blocks must not write past di */
    float *y = bm_test_alloc((N * di + 16) * 4), *st = bm_test_alloc((size_t)B * di * n * 4);
    for (size_t i = 0; i < N * di + 16; i++) y[i] = 12345.0f;
    bm_test_fill(t, u, N * di, -1, 1);
    bm_test_fill(t, bc, N * bc_ld, -1, 1);
    bm_test_fill(t, z, N * z_ld, -2, 2);
    bm_test_fill(t, W, (size_t)di * R, -0.5f, 0.5f);
    bm_test_fill(t, bias, (size_t)di, -4, -1);
    bm_test_fill(t, A, (size_t)di * n, -8, -0.1f);
    bm_test_fill(t, D, (size_t)di, 0.5f, 1.5f);
    bm_test_fill(t, st0, (size_t)B * di * n, -1, 1);
    bm_ref_gemm(N, (size_t)di, (size_t)R, bc, bc_ld, W, (size_t)R, 0.0f, dt, (size_t)di);
    memcpy(st_ref, st0, (size_t)B * di * n * 4);
    bm_ref_scan(B, T, di, n, u, dt, (size_t)di, bias, A, bc, bc_ld, (size_t)R, (size_t)R + n, D, z, z_ld, (size_t)di, st_ref,
                y_ref);
    cl_mem du = bm_test_buffer(t, u, N * di * 4), dbc = bm_test_buffer(t, bc, N * bc_ld * 4), dz = bm_test_buffer(t, z, N * z_ld * 4);
    cl_mem dW = bm_test_buffer(t, W, (size_t)di * R * 4), db = bm_test_buffer(t, bias, (size_t)di * 4);
    cl_mem dA = bm_test_buffer(t, A, (size_t)di * n * 4), dD = bm_test_buffer(t, D, (size_t)di * 4);
    cl_mem ds = bm_test_buffer(t, st0, (size_t)B * di * n * 4), dy = bm_test_buffer(t, y, (N * di + 16) * 4);
    bm_scan_args a = {.B = B, .T = T, .di = di, .n = n, .u = du, .dt = NULL, .dt_ld = (size_t)di, .dt_bias = db, .A = dA,
                      .bc = dbc, .bc_ld = bc_ld, .b_col = (size_t)R, .c_col = (size_t)R + n, .D = dD, .z = dz,
                      .z_ld = z_ld, .z_col = (size_t)di, .state = ds, .y = dy, .dt_proj = dW, .dt_rank = R};
    char what[128];
    snprintf(what, sizeof what, "scan+dt_proj B=%d T=%d di=%d n=%d R=%d", B, T, di, n, R);
    if (bm_test_status(t, bm_op_scan(t->rt, &a), what)) {
        bm_test_read(t, dy, y, (N * di + 16) * 4);
        bm_test_read(t, ds, st, (size_t)B * di * n * 4);
        bm_test_close(t, what, y, y_ref, N * di, 1e-5);
        bm_test_close(t, "  ... final state", st, st_ref, (size_t)B * di * n, 1e-5);
        int guard = 1;
        for (size_t i = N * di; i < N * di + 16; i++) guard &= y[i] == 12345.0f;
        bm_test_true(t, guard, "  ... nothing written past y");
    }
    bm_release(du), bm_release(dbc), bm_release(dz), bm_release(dW), bm_release(db);
    bm_release(dA), bm_release(dD), bm_release(ds), bm_release(dy);
    free(u), free(bc), free(z), free(W), free(bias), free(A), free(D), free(st0), free(dt), free(y_ref), free(st_ref);
    free(y), free(st);
}

/* scan_case over every combination of the lists (dt in [-4, 0]), kernel L. */
static void scan_grid(bm_test_ctx *t, const int *Bs, int nb, const int *dis, int nd, const int *ns, int nn,
                      const int *Ts, int nt, int L)
{
    for (int ib = 0; ib < nb; ib++)
        for (int id = 0; id < nd; id++)
            for (int in = 0; in < nn; in++)
                for (int it = 0; it < nt; it++) scan_case(t, Bs[ib], Ts[it], dis[id], ns[in], L, -4.0f, 0.0f);
}

/* The one-pass lanes kernel (cl/scan_lanes.cl) on this device, whatever BMOJO_SCAN says: sizes
 * around its tile (BM_SCANL_TT, 32 by default) and lane counts (n not a multiple of the states
 * per work-item, channel counts not a multiple of the channels per work-group), continuation,
 * softplus past its threshold; then bm_op_scan with the runtime's choice forced to lanes (the
 * dt_proj GEMM path and the dispatch). */
static void test_scan_lanes(bm_test_ctx *t)
{
    static const int Ts[] = {1, 2, 7, 33, 100, 257}, dis[] = {1, 3, 37, 130}, ns[] = {1, 3, 4, 16, 17}, Bs[] = {1, 3};
    scan_grid(t, Bs, 2, dis, 4, ns, 5, Ts, 6, SCAN_LANES);
    scan_case(t, 2, 64, 1536 / 8, 16, SCAN_LANES, -4.0f, 0.0f);  /* tiles exactly full */
    scan_case(t, 2, 100, 64, 16, SCAN_LANES, 19.0f, 30.0f);
    scan_case(t, 3, 77, 130, 4, SCAN_LANES, -4.0f, 30.0f);
    scan_case(t, 1, 40, 5, 64, SCAN_LANES, -4.0f, 0.0f);
    scan_split_case(t, 2, 37, 50, 64, 16, SCAN_LANES);
    scan_split_case(t, 3, 1, 1, 130, 16, SCAN_LANES);
    scan_split_case(t, 1, 500, 500, 130, 16, SCAN_LANES);
    scan_split_case(t, 2, 100, 33, 5, 17, SCAN_LANES);
    scan_split_case(t, 3, 31, 33, 37, 3, SCAN_LANES);

    const int saved = t->rt->scan_variant;
    t->rt->scan_variant = BM_SCAN_VARIANT_LANES;
    scan_dtproj_case(t, 2, 7, 64, 16, 4);
    scan_dtproj_case(t, 1, 100, 130, 8, 48);
    scan_dtproj_case(t, 3, 45, 37, 17, 5);
    scan_bad_args(t);
    t->rt->scan_variant = saved;
}

/* The CPU kernel (cl/scan_cpu.cl) on this device, whatever BMOJO_SCAN says: channel counts around
 * its 16 lanes (1, 15, 16, 17, 37, 130: partial last groups), d_state 1..16 (padding states),
 * sequences of 1 to 257 steps, softplus past its threshold, continuation; then bm_op_scan with the
 * runtime's choice forced to cpu (the dt_proj GEMM path and the dispatch, d_state 17 falling back
 * to the chunked kernel), and d_state 17 refused by the kernel itself. */
static void test_scan_cpu(bm_test_ctx *t)
{
    static const int Ts[] = {1, 2, 7, 33, 257}, dis[] = {1, 15, 16, 17, 37, 130}, ns[] = {1, 3, 16}, Bs[] = {1, 3};
    scan_grid(t, Bs, 2, dis, 6, ns, 3, Ts, 5, SCAN_CPU);
    scan_case(t, 2, 100, 64, 16, SCAN_CPU, 19.0f, 30.0f);
    scan_case(t, 3, 77, 130, 4, SCAN_CPU, -4.0f, 30.0f);
    scan_split_case(t, 2, 37, 50, 64, 16, SCAN_CPU);
    scan_split_case(t, 3, 1, 1, 130, 16, SCAN_CPU);
    scan_split_case(t, 2, 100, 33, 5, 7, SCAN_CPU);

    const int saved = t->rt->scan_variant;
    t->rt->scan_variant = BM_SCAN_VARIANT_CPU;
    scan_dtproj_case(t, 2, 7, 64, 16, 4);
    scan_dtproj_case(t, 1, 100, 130, 8, 48);
    scan_dtproj_case(t, 3, 45, 37, 17, 5); /* d_state 17: the chunked kernel */
    t->rt->scan_variant = saved;

    scan_host h;
    scan_host_make(t, &h, 1, 3, 5, 17, -4.0f, 0.0f);
    float y[15], s[85];
    int st = scan_device(t, &h, h.state, SCAN_CPU, y, s);
    bm_test_true(t, st == BMOJO_EUNSUPPORTED, "scan cpu kernel with d_state 17 -> BMOJO_EUNSUPPORTED");
    scan_host_free(&h);
}

void test_op_scan(bm_test_ctx *t)
{
    test_scan_lanes(t);
    test_scan_cpu(t);
    /* The decoding step (T 1, dt_proj fused): the runtime's choice, then the GPU step kernel
     * (chunked variant) and the CPU one (cpu variant; d_state 17 falls back) on every device;
     * channel counts around the CPU step's 64 per item. */
    const int saved = t->rt->scan_variant;
    const int variants[] = {saved, BM_SCAN_VARIANT_CHUNKED, BM_SCAN_VARIANT_CPU};
    for (int v = 0; v < 3; v++) {
        t->rt->scan_variant = variants[v];
        scan_dtproj_case(t, 1, 1, 1, 1, 1);
        scan_dtproj_case(t, 1, 1, 130, 16, 48);
        scan_dtproj_case(t, 3, 1, 5, 4, 4);
        scan_dtproj_case(t, 2, 1, 257, 16, 9);
        scan_dtproj_case(t, 2, 1, 65, 7, 3);
        scan_dtproj_case(t, 2, 1, 37, 17, 1); /* n and dt_rank not multiples of the items per channel */
        scan_dtproj_case(t, 1, 1, 67, 16, 37); /* dt_rank: two blocks of 16 (the CPU step's vectors) and 5 more */
    }
    t->rt->scan_variant = saved;
    scan_dtproj_case(t, 2, 7, 64, 16, 4);
    scan_dtproj_case(t, 1, 100, 130, 8, 48);
    static const int Bs[] = {1, 2, 3}, dis[] = {1, 5, 64, 130}, ns[] = {1, 4, 16};
    /* Forced chunk length L = 16: T around L and many chunks. */
    const int L = 16;
    const int Ts[] = {1, 2, 7, L - 1, L, L + 1, 3 * L + 5, 1000};
    for (size_t ib = 0; ib < 3; ib++)
        for (size_t id = 0; id < 4; id++)
            for (size_t in = 0; in < 3; in++)
                for (size_t it = 0; it < sizeof Ts / sizeof Ts[0]; it++)
                    scan_case(t, Bs[ib], Ts[it], dis[id], ns[in], L, -4.0f, 0.0f);
    /* The automatic chunk length (single pass on CPUs, chunked on GPUs), and other forced ones. */
    static const int Ta[] = {1, 2, 7, 63, 64, 65, 197, 1000, 2048};
    for (size_t it = 0; it < sizeof Ta / sizeof Ta[0]; it++) {
        scan_case(t, 1, Ta[it], 130, 16, 0, -4.0f, 0.0f);
        scan_case(t, 2, Ta[it], 64, 16, 64, -4.0f, 0.0f);
        scan_case(t, 3, Ta[it], 5, 4, 1, -4.0f, 0.0f);
    }
    /* Softplus past its threshold (dt + bias > 20: delta = x) and mixed small/large. */
    scan_case(t, 2, 100, 64, 16, 16, 19.0f, 30.0f);
    scan_case(t, 2, 100, 64, 16, 0, 19.0f, 30.0f);
    scan_case(t, 3, 77, 130, 4, 8, -4.0f, 30.0f);
    /* d_state above the register block (BM_SCAN_NS = 16): several state blocks per work-item. */
    scan_case(t, 2, 53, 64, 20, 16, -4.0f, 0.0f);
    scan_case(t, 1, 300, 130, 33, 0, -4.0f, 0.0f);
    scan_case(t, 3, 40, 5, 64, 7, -4.0f, 0.0f);
    /* Continuation across calls, single- and multi-chunk. */
    scan_split_case(t, 2, 37, 50, 64, 16, 16);
    scan_split_case(t, 3, 1, 1, 130, 16, 0);
    scan_split_case(t, 1, 500, 500, 130, 16, 0);
    scan_split_case(t, 2, 100, 33, 5, 4, 7);
    scan_bad_args(t);
}
