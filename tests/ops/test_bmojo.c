/* test_bmojo.c — the B'MOJO mixer's attention part: the kernel path (bm_bmojo_mix) against the
 * state-continuing C reference (bm_ref_bmojo_mix), and both against the definition
 * (bm_ref_bmojo_direct), with the sequence fed in one call, in pieces across chunk boundaries
 * and token by token; after every call the device state is compared with the reference state,
 * and guard bytes after every state buffer must be untouched (state never outgrows its layout).
 * m_f = m_e = 0 is also checked against plain windowed attention (bm_ref_attention). The
 * attention's split over keys is forced with several split counts, for decoding
 * (bmt_split_case) and for prefill pieces of awkward lengths (bmt_prefill_split_case). The fused
 * decoding launches (bm_bmojo_decode_*: the state update split around the attention and riding
 * on the scan step's and o_proj's launches) are fed token by token the same way
 * (bmt_fused_case). The unsplit cases run twice, with the GPU attention and innovation kernels
 * and with the CPU ones (cl/bmojo_attention_cpu.cl, cl/bmojo_innovation_cpu.cl), forced on
 * whatever device is present; the two innovation forms give bit-identical eps (bmt_innov_forms). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ops_bmojo.h"
#include "ref/ref.h"
#include "ref/ref_bmojo.h"

#define BMT_GUARD 256 /* bytes after each device state buffer that must stay untouched */
#define BMT_NSTATE 8

enum { BMT_RANDOM = 0, BMT_REPEAT = 1, BMT_CONST = 2 };

typedef struct {
    const char *name;
    int B, T, d, H, Hkv, dh, w, mf, me, k;
    int ymode;       /* BMT_*: how y is generated (repeats make equal eps) */
    int random_taps; /* else c_i = 1/k */
} bmt_case;

/* Whole-sequence inputs of one case (B sequences of T tokens, views with padding columns). */
typedef struct {
    bmt_case c;
    float taps[BM_BMOJO_MAX_TAPS];
    size_t q_ld, q_col, x_ld, kx_col, vx_col, f_ld, kf_col, vf_col, out_ld;
    float *y, *q, *x, *f; /* x holds Kx and Vx, f holds Kf and Vf */
} bmt_data;

static void bmt_make(bm_test_ctx *t, const bmt_case *c, bmt_data *D)
{
    memset(D, 0, sizeof *D);
    D->c = *c;
    const size_t rows = (size_t)c->B * c->T, kv = (size_t)c->Hkv * c->dh;
    for (int i = 0; i < c->k; i++) D->taps[i] = c->random_taps ? 0.2f + 0.5f * (float)bm_test_randint(t, 1000) / 1000.0f
                                                               : 1.0f / (float)c->k;
    D->q_ld = (size_t)c->H * c->dh + 3;
    D->q_col = 2;
    D->x_ld = 2 * kv + 1;
    D->kx_col = 0;
    D->vx_col = kv + 1;
    D->f_ld = 2 * kv + 6;
    D->kf_col = 3;
    D->vf_col = 4 + kv;
    D->out_ld = (size_t)c->H * c->dh + 1;
    D->y = bm_test_alloc(sizeof(float) * rows * c->d);
    D->q = bm_test_alloc(sizeof(float) * rows * D->q_ld);
    D->x = bm_test_alloc(sizeof(float) * rows * D->x_ld);
    D->f = bm_test_alloc(sizeof(float) * rows * D->f_ld);
    bm_test_fill(t, D->q, rows * D->q_ld, -1.0f, 1.0f);
    bm_test_fill(t, D->x, rows * D->x_ld, -1.0f, 1.0f);
    bm_test_fill(t, D->f, rows * D->f_ld, -1.0f, 1.0f);
    if (c->ymode == BMT_RANDOM) {
        bm_test_fill(t, D->y, rows * c->d, -1.0f, 1.0f);
    } else {
        /* per sequence: 3 (repeat) or 1 (const) base rows, different for every sequence */
        int period = c->ymode == BMT_REPEAT ? 3 : 1;
        float *base = bm_test_alloc(sizeof(float) * (size_t)period * c->d);
        for (int b = 0; b < c->B; b++) {
            bm_test_fill(t, base, (size_t)period * c->d, -1.0f, 1.0f);
            for (int i = 0; i < c->T; i++)
                memcpy(D->y + ((size_t)b * c->T + i) * c->d, base + (size_t)(i % period) * c->d, sizeof(float) * c->d);
        }
        free(base);
    }
}

static void bmt_free(bmt_data *D)
{
    free(D->y);
    free(D->q);
    free(D->x);
    free(D->f);
}

static void bmt_ref_args(const bmt_data *D, bm_ref_bmojo_args *r)
{
    const bmt_case *c = &D->c;
    memset(r, 0, sizeof *r);
    r->B = c->B; r->T = c->T; r->d = c->d; r->H = c->H; r->Hkv = c->Hkv; r->dh = c->dh;
    r->window = c->w; r->m_f = c->mf; r->m_e = c->me; r->n_taps = c->k; r->taps = D->taps;
    r->scale = 1.0f / sqrtf((float)c->dh);
    r->q_ld = D->q_ld; r->q_col = D->q_col;
    r->x_ld = D->x_ld; r->kx_col = D->kx_col; r->vx_col = D->vx_col;
    r->f_ld = D->f_ld; r->kf_col = D->kf_col; r->vf_col = D->vf_col;
    r->out_ld = D->out_ld;
}

/* Rows pos0 .. pos0+n-1 of every sequence of a [B*T, ld] array, as a [B*n, ld] array. */
static float *bmt_slice(const float *full, int B, int T, size_t ld, int pos0, int n)
{
    float *s = bm_test_alloc(sizeof(float) * (size_t)B * n * ld);
    for (int b = 0; b < B; b++)
        memcpy(s + (size_t)b * n * ld, full + ((size_t)b * T + pos0) * ld, sizeof(float) * (size_t)n * ld);
    return s;
}

/* Writes the H*dh output columns of a piece back at their positions in a [B*T, H*dh] array. */
static void bmt_unslice(float *full, const float *piece, int B, int T, int HD, size_t ld, int pos0, int n)
{
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++)
            memcpy(full + ((size_t)b * T + pos0 + i) * HD, piece + ((size_t)b * n + i) * ld, sizeof(float) * HD);
}

typedef struct {
    size_t bytes[BMT_NSTATE];
    void *host[BMT_NSTATE]; /* the reference's state */
    cl_mem dev[BMT_NSTATE];
} bmt_state;

static const char *const bmt_state_names[BMT_NSTATE] = {"y_hist", "win_k", "win_v", "fade_k", "fade_v", "cand_eps",
                                                        "cand_pos", "mem"};

static void bmt_state_init(bm_test_ctx *t, const bm_bmojo_args *a, bmt_state *S)
{
    bm_bmojo_state_sizes z;
    bm_bmojo_state_layout(a, &z);
    size_t b[BMT_NSTATE] = {z.y_hist, z.win_k, z.win_v, z.fade_k, z.fade_v, z.cand_eps,
                            z.cand_pos, z.mem};
    for (int i = 0; i < BMT_NSTATE; i++) {
        S->bytes[i] = b[i];
        S->host[i] = bm_test_alloc(b[i]);
        unsigned char *init = bm_test_alloc(b[i] + BMT_GUARD);
        memset(init + b[i], 0x7f, BMT_GUARD);
        S->dev[i] = bm_test_buffer(t, init, b[i] + BMT_GUARD);
        free(init);
    }
}

static void bmt_state_free(bmt_state *S)
{
    for (int i = 0; i < BMT_NSTATE; i++) {
        free(S->host[i]);
        bm_release(S->dev[i]);
    }
}

/* Device state == reference state, and the guards are intact. */
static void bmt_state_compare(bm_test_ctx *t, const char *what, bmt_state *S)
{
    char msg[320];
    for (int i = 0; i < BMT_NSTATE; i++) {
        unsigned char *got = bm_test_alloc(S->bytes[i] + BMT_GUARD);
        bm_test_read(t, S->dev[i], got, S->bytes[i] + BMT_GUARD);
        int guard_ok = 1;
        for (size_t j = 0; j < BMT_GUARD; j++) guard_ok &= got[S->bytes[i] + j] == 0x7f;
        snprintf(msg, sizeof msg, "%s: state %s within its layout size", what, bmt_state_names[i]);
        bm_test_true(t, guard_ok, msg);
        snprintf(msg, sizeof msg, "%s: state %s", what, bmt_state_names[i]);
        if (i == 6) { /* cand_pos: ints, exact */
            bm_test_true(t, memcmp(got, S->host[i], S->bytes[i]) == 0, msg);
        } else {
            bm_test_close(t, msg, (const float *)got, (const float *)S->host[i], S->bytes[i] / sizeof(float), 1e-5);
        }
        free(got);
    }
}

/* Feeds the sequence in pieces (lengths summing to c->T) through both the kernel path and the
 * reference; compares every piece's state, then o of all positions with the definition. */
/* When set, bmt_run_split feeds single tokens through the fused decoding launches
 * (bm_bmojo_decode_*) instead of bm_bmojo_mix: see bmt_fused_step. */
static int bmt_fused;

/* One token through the fused decoding launches: the scan step of a small Mamba problem shares
 * the first launch (its y and state are checked against bm_ref_scan: the extra group must not
 * disturb the scan's groups), then the attention beside a GEMV with two outputs (checked against
 * bm_ref_gemm), then o_proj (x += out Wo^T, checked against
 * bm_ref_gemm on the kernel's own attention output) with the rest of the state update. The caller
 * checks the attention output and the state as for bm_bmojo_mix. Returns 1 when the calls ran. */
static int bmt_fused_step(bm_test_ctx *t, bm_bmojo_args *a, const char *what)
{
    /* the two GEMV weights stored as fp32 and as f16 (the kernels' _w16 forms, --weights f16) on
     * alternate steps; the references multiply the stored (rounded) values */
    static int step_count;
    const bm_store store = (step_count++ & 1) ? BM_STORE_F16 : BM_STORE_F32;
    const int B = a->B, di = 37, n = 3, R = 2, HD = a->H * a->dh;
    const size_t bc_ld = (size_t)R + 2 * n + 1, z_ld = (size_t)di + 2, d = (size_t)a->d;
    float *u = bm_test_alloc(sizeof(float) * B * di), *bc = bm_test_alloc(sizeof(float) * B * bc_ld);
    float *W = bm_test_alloc(sizeof(float) * di * R), *bias = bm_test_alloc(sizeof(float) * di);
    float *A = bm_test_alloc(sizeof(float) * di * n), *Dv = bm_test_alloc(sizeof(float) * di);
    float *z = bm_test_alloc(sizeof(float) * B * z_ld), *st = bm_test_alloc(sizeof(float) * B * di * n);
    float *dt = bm_test_alloc(sizeof(float) * B * di), *y = bm_test_alloc(sizeof(float) * B * di);
    float *got = bm_test_alloc(sizeof(float) * (B * di * n + B * d));
    float *wo = bm_test_alloc(sizeof(float) * d * HD), *x = bm_test_alloc(sizeof(float) * B * d);
    float *out = bm_test_alloc(sizeof(float) * B * a->out_ld);
    bm_test_fill(t, u, (size_t)B * di, -1, 1);
    bm_test_fill(t, bc, (size_t)B * bc_ld, -1, 1);
    bm_test_fill(t, W, (size_t)di * R, -0.5f, 0.5f);
    bm_test_fill(t, bias, di, -2, 0);
    bm_test_fill(t, A, (size_t)di * n, -4, -0.1f);
    bm_test_fill(t, Dv, di, 0.5f, 1.5f);
    bm_test_fill(t, z, (size_t)B * z_ld, -2, 2);
    bm_test_fill(t, st, (size_t)B * di * n, -1, 1);
    bm_test_fill(t, wo, d * HD, -0.3f, 0.3f);
    bm_test_fill(t, x, (size_t)B * d, -1, 1);
    cl_mem du = bm_test_buffer(t, u, sizeof(float) * B * di), dbc = bm_test_buffer(t, bc, sizeof(float) * B * bc_ld);
    cl_mem dW = bm_test_buffer(t, W, sizeof(float) * di * R), db = bm_test_buffer(t, bias, sizeof(float) * di);
    cl_mem dA = bm_test_buffer(t, A, sizeof(float) * di * n), dD = bm_test_buffer(t, Dv, sizeof(float) * di);
    cl_mem dz = bm_test_buffer(t, z, sizeof(float) * B * z_ld), ds = bm_test_buffer(t, st, sizeof(float) * B * di * n);
    cl_mem dy = bm_test_buffer(t, NULL, sizeof(float) * B * di);
    bm_wmat dwo = {bm_test_weights(t, wo, d * HD, store), store};
    cl_mem dx = bm_test_buffer(t, x, sizeof(float) * B * d);
    /* the GEMV that shares the attention's launch: [B, 40] x [40 + 12 rows]^T -> y' [B, 28] | kv' [B, 12] */
    enum { GK = 40, GD = 28, GKV = 12 };
    float *ga = bm_test_alloc(sizeof(float) * B * GK), *gw = bm_test_alloc(sizeof(float) * (GD + GKV) * GK);
    float *gc = bm_test_alloc(sizeof(float) * B * (GD + GKV)), *gy = bm_test_alloc(sizeof(float) * B * (GD + GKV));
    bm_test_fill(t, ga, (size_t)B * GK, -1, 1);
    bm_test_fill(t, gw, (size_t)(GD + GKV) * GK, -1, 1);
    cl_mem dga = bm_test_buffer(t, ga, sizeof(float) * B * GK);
    bm_wmat dgw = {bm_test_weights(t, gw, (size_t)(GD + GKV) * GK, store), store};
    cl_mem dgy = bm_test_buffer(t, NULL, sizeof(float) * B * GD), dgkv = bm_test_buffer(t, NULL, sizeof(float) * B * GKV);
    bm_gemv_input gin = {BM_GEMV_PLAIN, dga, 0, GK, NULL, 0.0f, 0};
    bm_scan_args sa = {.B = B, .T = 1, .di = di, .n = n, .u = du, .dt = NULL, .dt_ld = (size_t)di, .dt_bias = db,
                       .A = dA, .bc = dbc, .bc_ld = bc_ld, .b_col = (size_t)R, .c_col = (size_t)R + n, .D = dD, .z = dz,
                       .z_ld = z_ld, .z_col = 1, .state = ds, .y = dy, .dt_proj = dW, .dt_rank = R};
    int mark = bm_scratch_mark(t->rt);
    cl_mem parts = NULL;
    int ok = bm_test_true(t, bm_bmojo_decode_fused_ok(t->rt, a, &sa), "bmojo fused decoding applies") &&
             bm_test_status(t, bm_bmojo_decode_scan_pre(t->rt, &sa, a), what) &&
             bm_test_status(t, bm_bmojo_decode_kv_attention(t->rt, a, &gin, GK, dgw, dgy, GD, dgkv, GKV, &parts), what) &&
             bm_test_status(t, bm_bmojo_decode_out_post(t->rt, a, parts, dwo, dx, d), what);
    bm_scratch_release(t->rt, mark);
    if (ok) {
        bm_ref_gemm((size_t)B, (size_t)di, (size_t)R, bc, bc_ld, W, (size_t)R, 0.0f, dt, (size_t)di);
        bm_ref_scan(B, 1, di, n, u, dt, (size_t)di, bias, A, bc, bc_ld, (size_t)R, (size_t)R + n, Dv, z, z_ld, 1, st, y);
        bm_test_read(t, dy, got, sizeof(float) * B * di);
        bm_test_close(t, "  fused launch: scan step y", got, y, (size_t)B * di, 1e-5);
        bm_test_read(t, ds, got, sizeof(float) * B * di * n);
        bm_test_close(t, "  fused launch: scan state", got, st, (size_t)B * di * n, 1e-5);
        bm_test_read(t, a->out, out, sizeof(float) * B * a->out_ld);
        bm_ref_gemm((size_t)B, d, (size_t)HD, out, a->out_ld, wo, (size_t)HD, 1.0f, x, d);
        bm_test_read(t, dx, got, sizeof(float) * B * d);
        bm_test_close(t, "  fused launch: x += out Wo^T", got, x, (size_t)B * d, 1e-5);
        bm_ref_gemm((size_t)B, GD + GKV, GK, ga, GK, gw, GK, 0.0f, gc, GD + GKV);
        bm_test_read(t, dgy, gy, sizeof(float) * B * GD);
        bm_test_read(t, dgkv, gy + (size_t)B * GD, sizeof(float) * B * GKV);
        for (int bb = 0; bb < B; bb++) { /* gc rows [y' | kv'] -> the two outputs' layout */
            memcpy(got + (size_t)bb * GD, gc + (size_t)bb * (GD + GKV), sizeof(float) * GD);
            memcpy(got + (size_t)B * GD + (size_t)bb * GKV, gc + (size_t)bb * (GD + GKV) + GD, sizeof(float) * GKV);
        }
        bm_test_close(t, "  fused launch: the GEMV beside the attention (y | Kf Vf)", gy, got, (size_t)B * (GD + GKV), 1e-5);
    }
    cl_mem bufs[] = {du, dbc, dW, db, dA, dD, dz, ds, dy, dwo.buf, dx, dga, dgw.buf, dgy, dgkv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) bm_release(bufs[i]);
    free(u), free(bc), free(W), free(bias), free(A), free(Dv), free(z), free(st), free(dt), free(y), free(got);
    free(wo), free(x), free(out), free(ga), free(gw), free(gc), free(gy);
    return ok;
}

static void bmt_run_split(bm_test_ctx *t, const bmt_data *D, const int *pieces, int npieces, const char *feed,
                          int nsplit)
{
    const bmt_case *c = &D->c;
    const int B = c->B, T = c->T, HD = c->H * c->dh;
    char what[200];
    float *o_dev = bm_test_alloc(sizeof(float) * (size_t)B * T * HD);
    float *o_ref = bm_test_alloc(sizeof(float) * (size_t)B * T * HD);
    float *o_dir = bm_test_alloc(sizeof(float) * (size_t)B * T * HD);

    bm_ref_bmojo_args r;
    bmt_ref_args(D, &r);
    { /* the definition over the whole sequence */
        float *full = bm_test_alloc(sizeof(float) * (size_t)B * T * D->out_ld);
        r.y = D->y; r.q = D->q; r.kx = D->x; r.vx = D->x; r.kf = D->f; r.vf = D->f; r.out = full;
        bm_ref_bmojo_direct(&r);
        bmt_unslice(o_dir, full, B, T, HD, D->out_ld, 0, T);
        free(full);
    }

    bm_bmojo_args a;
    memset(&a, 0, sizeof a);
    a.B = B; a.d = c->d; a.H = c->H; a.Hkv = c->Hkv; a.dh = c->dh; a.window = c->w;
    a.m_f = c->mf; a.m_e = c->me; a.n_taps = c->k; a.taps = D->taps; a.scale = r.scale;
    a.q_ld = D->q_ld; a.q_col = D->q_col; a.x_ld = D->x_ld; a.kx_col = D->kx_col; a.vx_col = D->vx_col;
    a.f_ld = D->f_ld; a.kf_col = D->kf_col; a.vf_col = D->vf_col; a.out_ld = D->out_ld;
    bmt_state S;
    bmt_state_init(t, &a, &S);
    a.y_hist = S.dev[0]; a.win_k = S.dev[1]; a.win_v = S.dev[2]; a.fade_k = S.dev[3]; a.fade_v = S.dev[4];
    a.cand_eps = S.dev[5]; a.cand_pos = S.dev[6]; a.mem = S.dev[7];
    r.y_hist = S.host[0]; r.win_k = S.host[1]; r.win_v = S.host[2]; r.fade_k = S.host[3]; r.fade_v = S.host[4];
    r.cand_eps = S.host[5]; r.cand_pos = S.host[6]; r.mem = S.host[7];

    int pos0 = 0, ok = 1;
    size_t scratch1 = 0;
    for (int pi = 0; pi < npieces && ok; pi++) {
        const int n = pieces[pi];
        float *y = bmt_slice(D->y, B, T, c->d, pos0, n);
        float *q = bmt_slice(D->q, B, T, D->q_ld, pos0, n);
        float *x = bmt_slice(D->x, B, T, D->x_ld, pos0, n);
        float *f = bmt_slice(D->f, B, T, D->f_ld, pos0, n);
        float *out = bm_test_alloc(sizeof(float) * (size_t)B * n * D->out_ld);
        /* reference */
        r.T = n; r.pos0 = pos0; r.y = y; r.q = q; r.kx = x; r.vx = x; r.kf = f; r.vf = f; r.out = out;
        bm_ref_bmojo_mix(&r);
        bmt_unslice(o_ref, out, B, T, HD, D->out_ld, pos0, n);
        /* kernels */
        a.T = n; a.pos0 = pos0;
        cl_mem dy = bm_test_buffer(t, y, sizeof(float) * (size_t)B * n * c->d);
        cl_mem dq = bm_test_buffer(t, q, sizeof(float) * (size_t)B * n * D->q_ld);
        cl_mem dx = bm_test_buffer(t, x, sizeof(float) * (size_t)B * n * D->x_ld);
        cl_mem df = bm_test_buffer(t, f, sizeof(float) * (size_t)B * n * D->f_ld);
        memset(out, 0, sizeof(float) * (size_t)B * n * D->out_ld);
        cl_mem dout = bm_test_buffer(t, out, sizeof(float) * (size_t)B * n * D->out_ld);
        size_t sb = bm_bmojo_scratch_bytes(&a);
        if (n == 1) { /* the decoding scratch is the same at every position */
            if (!scratch1) scratch1 = sb;
            ok &= scratch1 == sb;
        }
        cl_mem scr = bm_test_buffer(t, NULL, sb);
        a.y = dy; a.q = dq; a.kx = dx; a.vx = dx; a.kf = df; a.vf = df; a.out = dout;
        snprintf(what, sizeof what, "%s [%s] piece %d (pos0 %d, T %d)", c->name, feed, pi, pos0, n);
        const int ran = bmt_fused && n == 1 ? bmt_fused_step(t, &a, what)
                                             : bm_test_status(t, bm_bmojo_mix_nsplit(t->rt, &a, scr, nsplit), what);
        if (ran && bm_test_status(t, bm_finish(t->rt), what)) {
            bm_test_read(t, dout, out, sizeof(float) * (size_t)B * n * D->out_ld);
            bmt_unslice(o_dev, out, B, T, HD, D->out_ld, pos0, n);
            bmt_state_compare(t, what, &S);
        } else {
            ok = 0;
        }
        bm_release(dy);
        bm_release(dq);
        bm_release(dx);
        bm_release(df);
        bm_release(dout);
        bm_release(scr);
        free(y);
        free(q);
        free(x);
        free(f);
        free(out);
        pos0 += n;
    }
    if (ok) {
        snprintf(what, sizeof what, "%s [%s] kernel vs ref_mix", c->name, feed);
        bm_test_close(t, what, o_dev, o_ref, (size_t)B * T * HD, 1e-5);
        snprintf(what, sizeof what, "%s [%s] kernel vs direct", c->name, feed);
        bm_test_close(t, what, o_dev, o_dir, (size_t)B * T * HD, 1e-5);
        snprintf(what, sizeof what, "%s [%s] ref_mix vs direct", c->name, feed);
        bm_test_close(t, what, o_ref, o_dir, (size_t)B * T * HD, 1e-5);
        if (c->mf == 0 && c->me == 0) { /* plain sliding-window attention */
            float *full = bm_test_alloc(sizeof(float) * (size_t)B * T * D->out_ld);
            float *o_att = bm_test_alloc(sizeof(float) * (size_t)B * T * HD);
            bm_ref_attention(B, T, c->H, c->Hkv, c->dh, D->q, D->q_ld, D->q_col, D->x, D->x, D->x_ld, D->kx_col,
                             D->vx_col, NULL, NULL, 0, 0, c->w, r.scale, full, D->out_ld);
            bmt_unslice(o_att, full, B, T, HD, D->out_ld, 0, T);
            snprintf(what, sizeof what, "%s [%s] kernel vs windowed attention", c->name, feed);
            bm_test_close(t, what, o_dev, o_att, (size_t)B * T * HD, 1e-5);
            free(full);
            free(o_att);
        }
    } else {
        snprintf(what, sizeof what, "%s [%s] all calls succeeded, decoding scratch constant", c->name, feed);
        bm_test_true(t, 0, what);
    }
    bmt_state_free(&S);
    free(o_dev);
    free(o_ref);
    free(o_dir);
}

/* bmt_run_split with the launcher's own choice of decoding split. */
static void bmt_run(bm_test_ctx *t, const bmt_data *D, const int *pieces, int npieces, const char *feed)
{
    bmt_run_split(t, D, pieces, npieces, feed, 0);
}

/* The decoding step's attention split over keys, forced (any device): tokens one at a time
 * from position 0 (window partly filled, few keys), a prefill piece, then tokens one at a time
 * with a full window across a chunk boundary, for split counts 1 (the single-group kernel), a
 * few, and more than the key list has ranges of 8 keys (empty splits). */
static void bmt_split_case(bm_test_ctx *t, const bmt_case *c)
{
    bmt_data D;
    bmt_make(t, c, &D);
    int pieces[64], np = 0, pos = 0;
    for (; pos < 5 && pos < c->T; pos++) pieces[np++] = 1;
    const int pre = c->w + c->w / 2 + 1 < c->T - pos ? c->w + c->w / 2 + 1 : 0; /* then the window is full */
    if (pre > 0) {
        pieces[np++] = pre;
        pos += pre;
    }
    for (; pos < c->T && np < 64; pos++) pieces[np++] = 1;
    if (pos != c->T) bm_test_true(t, 0, "bmojo split test: too many pieces");
    static const int splits[] = {1, 2, 3, 7, BM_BMOJO_MAX_SPLIT};
    char feed[64];
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        snprintf(feed, sizeof feed, "decode, %d key splits", splits[i]);
        bmt_run_split(t, &D, pieces, np, feed, splits[i]);
    }
    bmt_free(&D);
}

/* The prefill attention's split over keys, forced (any device; on GPUs with few work-groups
 * the launcher picks it itself): pieces of awkward lengths T (1, 5: the generic kernel or
 * decoding; 63, 65, 513: the tiled kernel, tiles crossing chunk boundaries), each from
 * position 0 and after a first piece of w + 3 tokens (window full, mid-chunk), for split counts
 * 1, 2, 3, 7 and BM_BMOJO_MAX_SPLIT (more splits than key tiles or keys: empty splits). */
static void bmt_prefill_split_case(bm_test_ctx *t, const bmt_case *shape)
{
    static const int lengths[] = {1, 5, 63, 65, 513};
    static const int splits[] = {1, 2, 3, 7, BM_BMOJO_MAX_SPLIT};
    char feed[96];
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        bmt_case c = *shape;
        const int pre = c.w + 3, n = lengths[li];
        c.T = pre + n;
        bmt_data D;
        bmt_make(t, &c, &D);
        const int from0[2] = {n, pre}, after[2] = {pre, n};
        for (size_t si = 0; si < sizeof splits / sizeof splits[0]; si++) {
            snprintf(feed, sizeof feed, "prefill T %d from 0, %d key splits", n, splits[si]);
            bmt_run_split(t, &D, from0, 2, feed, splits[si]);
            snprintf(feed, sizeof feed, "prefill T %d after %d, %d key splits", n, pre, splits[si]);
            bmt_run_split(t, &D, after, 2, feed, splits[si]);
        }
        bmt_free(&D);
    }
}

/* Forced split counts out of range are errors. */
static void bmt_split_errors(bm_test_ctx *t)
{
    bm_bmojo_args a;
    memset(&a, 0, sizeof a);
    float taps[1] = {1.0f};
    a.B = 1; a.T = 1; a.d = 4; a.H = 2; a.Hkv = 1; a.dh = 4; a.window = 2; a.n_taps = 1; a.taps = taps;
    a.y = a.q = a.kx = a.vx = a.kf = a.vf = a.out = (cl_mem)1; /* never used: the count is checked first */
    a.y_hist = a.win_k = a.win_v = a.fade_k = a.fade_v = a.cand_eps = a.cand_pos = a.mem = (cl_mem)1;
    bm_test_true(t, bm_bmojo_mix_nsplit(t->rt, &a, (cl_mem)1, -1) == BMOJO_EINVAL, "bmojo: -1 key splits is EINVAL");
    bm_test_true(t, bm_bmojo_mix_nsplit(t->rt, &a, (cl_mem)1, BM_BMOJO_MAX_SPLIT + 1) == BMOJO_EINVAL,
                 "bmojo: too many key splits is EINVAL");
}

/* One call, the spec's awkward split, and token by token; form names the attention kernel forced. */
static void bmt_case_all(bm_test_ctx *t, const bmt_case *c, const char *form)
{
    bmt_data D;
    bmt_make(t, c, &D);
    char feed[96];
    int one[1] = {c->T};
    snprintf(feed, sizeof feed, "prefill, %s", form);
    bmt_run(t, &D, one, 1, feed);
    /* pieces of 1, 1, 2w, 3, 2w, ... crossing chunk boundaries (the spec's 1+1+16+3+16 at w=8) */
    int pieces[64], np = 0, left = c->T;
    const int pat[5] = {1, 1, 2 * c->w, 3, 2 * c->w};
    for (int i = 0; left > 0 && np < 63; i++) {
        int n = pat[i % 5] < left ? pat[i % 5] : left;
        pieces[np++] = n;
        left -= n;
    }
    if (left > 0) pieces[np++] = left;
    snprintf(feed, sizeof feed, "pieces, %s", form);
    bmt_run(t, &D, pieces, np, feed);
    int *tok = bm_test_alloc(sizeof(int) * (size_t)c->T);
    for (int i = 0; i < c->T; i++) tok[i] = 1;
    snprintf(feed, sizeof feed, "token by token, %s", form);
    bmt_run(t, &D, tok, c->T, feed);
    free(tok);
    bmt_free(&D);
}

/* The spec's ties: with y rows that repeat, eps values are bit-identical, so only the
 * tie-break (smaller position first) decides; check that the references agree with a direct
 * count on this data (that the case really has ties). */
static void bmt_check_ties_exist(bm_test_ctx *t, const bmt_case *c)
{
    bmt_data D;
    bmt_make(t, c, &D);
    int ties = 0;
    const float **prev = bm_test_alloc(sizeof(float *) * (size_t)c->k);
    float *eps = bm_test_alloc(sizeof(float) * (size_t)c->T);
    for (int i = 0; i < c->T; i++) {
        for (int j = 1; j <= c->k; j++) prev[j - 1] = i - j >= 0 ? D.y + (size_t)(i - j) * c->d : NULL;
        eps[i] = bm_ref_bmojo_eps(D.y + (size_t)i * c->d, prev, D.taps, c->k, c->d);
        for (int j = 0; j < i; j++) ties += eps[j] == eps[i];
    }
    char what[160];
    snprintf(what, sizeof what, "%s: the data has equal eps values (%d pairs)", c->name, ties);
    bm_test_true(t, ties > c->T / 2, what);
    free(prev);
    free(eps);
    bmt_free(&D);
}

/* Invalid arguments are errors, not crashes. */
static void bmt_errors(bm_test_ctx *t)
{
    bm_bmojo_args a;
    memset(&a, 0, sizeof a);
    float taps[1] = {1.0f};
    a.B = 1; a.T = 1; a.d = 4; a.H = 3; a.Hkv = 2; a.dh = 4; a.window = 2; a.n_taps = 1; a.taps = taps;
    bm_test_true(t, bm_bmojo_mix(t->rt, &a, NULL) == BMOJO_EINVAL, "bmojo: H not a multiple of Hkv is EINVAL");
    a.H = 2;
    a.window = 0;
    bm_test_true(t, bm_bmojo_mix(t->rt, &a, NULL) == BMOJO_EINVAL, "bmojo: window 0 is EINVAL");
    a.window = 2;
    a.n_taps = 17;
    bm_test_true(t, bm_bmojo_mix(t->rt, &a, NULL) == BMOJO_EINVAL, "bmojo: 17 taps is EINVAL");
    a.n_taps = 1;
    bm_test_true(t, bm_bmojo_mix(t->rt, &a, NULL) == BMOJO_EINVAL, "bmojo: NULL buffers are EINVAL");
}

/* State sizes depend on the model only: the same for any T and pos0 (the long-run guard
 * checks in bmt_run then show the launcher stays inside them). */
static void bmt_layout_constant(bm_test_ctx *t)
{
    bm_bmojo_args a;
    memset(&a, 0, sizeof a);
    a.B = 2; a.d = 24; a.H = 4; a.Hkv = 2; a.dh = 16; a.window = 8; a.m_f = 3; a.m_e = 5; a.n_taps = 4;
    bm_bmojo_state_sizes z0, z;
    a.T = 1;
    bm_bmojo_state_layout(&a, &z0);
    int same = 1;
    for (int T = 1; T < 5000; T = T * 3 + 1)
        for (int64_t p = 0; p < 100000; p = p * 7 + 5) {
            a.T = T;
            a.pos0 = p;
            bm_bmojo_state_layout(&a, &z);
            same &= memcmp(&z, &z0, sizeof z) == 0;
        }
    bm_test_true(t, same, "bmojo: state layout independent of T and pos0");
    /* window, fading ring and memory: (w + m_f + (m_f+m_e)) K/V rows; no candidate rows (they
     * are in the memory or the window) */
    size_t per_seq = (size_t)(8 * 2 + 3 * 2 + 8 * 2) * 2 * 16 * 4 + (5 * 8) + 4 * 24 * 4;
    bm_test_true(t, z0.total == 2 * per_seq && z0.mem == 2 * (size_t)2 * 8 * 2 * 16 * 4,
                 "bmojo: state bytes = (w + m_f + (m_f+m_e)) K/V rows + cands + y history");
}

/* The fused decoding launches (on GPUs by default: rt->fuse_decode, forced here on every device):
 * token by token from position 0 across chunk boundaries, and after a prefill piece. */
static void bmt_fused_case(bm_test_ctx *t, const bmt_case *c)
{
    bmt_data D;
    bmt_make(t, c, &D);
    D.out_ld = (size_t)c->H * c->dh + 4; /* o_proj's float4 GEMV reads the attention output */
    int pieces[512], np = 0;
    for (int pos = 0; pos < c->T && np < 512; pos++) pieces[np++] = 1;
    const int saved = t->rt->fuse_decode, saved_split = t->rt->bmojo_split;
    t->rt->fuse_decode = 1;
    bmt_fused = 1;
    /* key splits: the device's own choice (1 on CPUs), then forced (BMOJO_BMOJO_SPLIT): o_proj's
     * launch merges them. Splits take multiples of 8 keys, so at these key counts (< 24) 2 splits
     * are both used, 3 and 16 leave trailing ones empty. */
    static const int splits[] = {0, 2, 3, 16};
    for (size_t si = 0; si < sizeof splits / sizeof splits[0]; si++) {
        char feed[96];
        t->rt->bmojo_split = splits[si];
        snprintf(feed, sizeof feed, "fused decoding, token by token, key splits %d", splits[si]);
        bmt_run_split(t, &D, pieces, np, feed, 0);
        if (c->T > c->w + 2) {
            int pp[512], npp = 1;
            pp[0] = c->w + 2;
            for (int pos = c->w + 2; pos < c->T && npp < 512; pos++) pp[npp++] = 1;
            snprintf(feed, sizeof feed, "prefill, then fused decoding, key splits %d", splits[si]);
            bmt_run_split(t, &D, pp, npp, feed, 0);
        }
    }
    bmt_fused = 0;
    t->rt->fuse_decode = saved;
    t->rt->bmojo_split = saved_split;
    bmt_free(&D);
}

/* The innovation's two forms give the same eps bits (the decoding step sums as the GPU form does,
 * so the CPU form must too), and both are within fp32 rounding of the reference: rows of B*T not a
 * multiple of the CPU form's 16, d below, at and past the work-group size (its partial sums wrap),
 * 1 .. 16 taps, rows from the history, repeated rows. */
static void bmt_innov_forms(bm_test_ctx *t, int B, int T, int d, int k, int repeat)
{
    const size_t rows = (size_t)B * T;
    float *y = bm_test_alloc(rows * d * sizeof(float)), *hist = bm_test_alloc((size_t)B * k * d * sizeof(float));
    float taps[16];
    bm_test_fill(t, y, rows * d, -2.0f, 2.0f);
    bm_test_fill(t, hist, (size_t)B * k * d, -2.0f, 2.0f);
    bm_test_fill(t, taps, 16, -1.0f, 1.0f);
    if (repeat)
        for (size_t r = 0; r < rows; r++) memcpy(y + r * d, y + (r % 3) * d, (size_t)d * sizeof(float));
    cl_float16 tv;
    for (int i = 0; i < 16; i++) tv.s[i] = i < k ? taps[i] : 0.0f;
    cl_mem dy = bm_test_buffer(t, y, rows * d * sizeof(float));
    cl_mem dh = bm_test_buffer(t, hist, (size_t)B * k * d * sizeof(float));
    cl_mem de = bm_test_buffer(t, NULL, (rows + 3) * sizeof(float));
    float *got[2] = {bm_test_alloc(rows * sizeof(float)), bm_test_alloc(rows * sizeof(float))};
    const int saved = t->rt->bmojo_innov_form, forms[2] = {BM_FORM_GPU, BM_FORM_CPU};
    char what[160];
    int ok = 1;
    for (int f = 0; f < 2; f++) {
        t->rt->bmojo_innov_form = forms[f];
        int st = bm_bmojo_innovation_launch(t->rt, dy, dh, de, 3, B, T, d, k, &tv);
        if (st == 0) st = bm_finish(t->rt);
        snprintf(what, sizeof what, "innovation (%s form) B=%d T=%d d=%d k=%d%s", f ? "CPU" : "GPU", B, T, d, k,
                 repeat ? " repeated rows" : "");
        ok = bm_test_status(t, st, what) && ok;
        if (st == 0) {
            float *all = bm_test_alloc((rows + 3) * sizeof(float));
            bm_test_read(t, de, all, (rows + 3) * sizeof(float));
            memcpy(got[f], all + 3, rows * sizeof(float));
            free(all);
        }
    }
    t->rt->bmojo_innov_form = saved;
    if (ok) {
        float *want = bm_test_alloc(rows * sizeof(float));
        const float **prev = bm_test_alloc(sizeof(float *) * (size_t)k);
        for (size_t r = 0; r < rows; r++) {
            const int b = (int)(r / T), tt = (int)(r % T);
            for (int i = 1; i <= k; i++)
                prev[i - 1] = tt - i >= 0 ? y + (r - i) * d : hist + ((size_t)b * k + (k + tt - i)) * d;
            want[r] = bm_ref_bmojo_eps(y + r * d, prev, taps, k, d);
        }
        snprintf(what, sizeof what, "innovation (GPU form) B=%d T=%d d=%d k=%d vs reference", B, T, d, k);
        bm_test_close(t, what, got[0], want, rows, 1e-5);
        snprintf(what, sizeof what, "innovation B=%d T=%d d=%d k=%d%s: CPU form bit-identical to the GPU form", B, T, d,
                 k, repeat ? " repeated rows" : "");
        bm_test_true(t, memcmp(got[0], got[1], rows * sizeof(float)) == 0, what);
        free(want), free(prev);
    }
    free(got[0]), free(got[1]), free(y), free(hist);
    bm_release(dy), bm_release(dh), bm_release(de);
}

void test_op_bmojo(bm_test_ctx *t)
{
    bmt_innov_forms(t, 1, 1, 1, 1, 0);
    bmt_innov_forms(t, 2, 17, 16, 4, 0);
    bmt_innov_forms(t, 3, 23, 37, 3, 0);
    bmt_innov_forms(t, 1, 40, 300, 16, 0);
    bmt_innov_forms(t, 2, 9, 600, 2, 1);
    bmt_innov_forms(t, 2, 33, 1536, 4, 0);

    bmt_errors(t);
    bmt_layout_constant(t);
    static const bmt_case cases[] = {
        /* name                 B  T   d  H  Hkv dh  w  mf me k  y           random taps */
        {"basic",               2, 37, 24, 4, 2, 16, 8, 3, 5, 4, BMT_RANDOM, 0},
        {"T<w",                 2, 5, 17, 4, 2, 16, 8, 3, 5, 4, BMT_RANDOM, 0},
        {"w=1",                 2, 13, 9, 4, 2, 16, 1, 2, 3, 4, BMT_RANDOM, 0},
        {"one tap",             2, 29, 11, 2, 2, 16, 6, 2, 4, 1, BMT_RANDOM, 1},
        {"m_f>s, 3 taps",       3, 31, 8, 4, 2, 16, 4, 11, 2, 3, BMT_RANDOM, 1},
        {"s<m_e (many)",        2, 37, 10, 4, 2, 16, 5, 1, 20, 4, BMT_RANDOM, 0},
        {"ties (repeat rows)",  3, 37, 12, 4, 2, 16, 8, 3, 5, 4, BMT_REPEAT, 0},
        {"ties (constant y)",   2, 37, 12, 4, 2, 16, 8, 2, 6, 4, BMT_CONST, 0},
        {"B'MOJO-F m_e=0",      2, 37, 13, 4, 2, 16, 8, 4, 0, 4, BMT_RANDOM, 0},
        {"m_f=0",               2, 37, 13, 4, 2, 16, 8, 0, 4, 4, BMT_RANDOM, 0},
        {"m_f=m_e=0",           2, 37, 13, 4, 2, 16, 8, 0, 0, 4, BMT_RANDOM, 0},
        {"GQA 12/4 dh64",       2, 23, 16, 12, 4, 64, 7, 3, 4, 4, BMT_RANDOM, 0},
        {"MHA 2/2 dh64",        1, 19, 16, 2, 2, 64, 4, 2, 3, 4, BMT_RANDOM, 0},
        {"GQA 4/2 dh64 B=3",    3, 21, 20, 4, 2, 64, 6, 2, 3, 2, BMT_RANDOM, 1},
        {"long run 3w+5",       2, 29, 8, 4, 2, 16, 8, 3, 5, 4, BMT_RANDOM, 0},
        {"dh256 GQA 2/1",       2, 11, 8, 2, 1, 256, 4, 2, 3, 4, BMT_RANDOM, 0},
        {"odd dh 5, 3/1 heads", 2, 23, 7, 3, 1, 5, 6, 2, 3, 3, BMT_RANDOM, 0},
        {"w > work-group",      2, 700, 16, 4, 2, 16, 300, 20, 40, 4, BMT_RANDOM, 0},
        {"many chunks ties",    2, 400, 6, 4, 2, 16, 16, 5, 24, 4, BMT_REPEAT, 0},
        {"ties, w 100",         2, 250, 12, 4, 2, 16, 100, 3, 12, 4, BMT_REPEAT, 0},
        /* decoding moves up to m_e-1 list entries in blocks of the work-group size and walks
         * Hkv*dh columns per item: both larger than a 256-item group here */
        {"m_e, Hkv*dh > group", 2, 420, 8, 2, 2, 160, 50, 2, 300, 4, BMT_RANDOM, 0},
        /* d past a 256-item group: the innovation's partial sums wrap (prefill and decoding) */
        {"d > work-group ties", 2, 40, 300, 4, 2, 16, 8, 3, 5, 4, BMT_REPEAT, 0},
    };
    static const struct {
        int form;
        const char *name;
    } forms[] = {{BM_FORM_GPU, "GPU attention and innovation kernels"},
                 {BM_FORM_CPU, "CPU attention and innovation kernels"}};
    const int saved_form = t->rt->bmojo_attn_form, saved_innov = t->rt->bmojo_innov_form;
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        t->rt->bmojo_attn_form = t->rt->bmojo_innov_form = forms[f].form;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) bmt_case_all(t, &cases[i], forms[f].name);
    }
    t->rt->bmojo_attn_form = saved_form, t->rt->bmojo_innov_form = saved_innov;
    bmt_check_ties_exist(t, &cases[6]);
    bmt_check_ties_exist(t, &cases[7]);

    bmt_split_errors(t);
    static const bmt_case split_cases[] = {
        /* name                   B  T   d  H  Hkv dh  w   mf me k  y           random taps */
        {"split dh16 B=1",        1, 50, 12, 4, 2, 16, 20, 3, 5, 4, BMT_RANDOM, 0},
        {"split dh64 B=3 GQA",    3, 46, 16, 12, 4, 64, 19, 4, 6, 4, BMT_RANDOM, 1},
        {"split dh128 B=1",       1, 44, 9, 2, 1, 128, 17, 2, 7, 3, BMT_RANDOM, 0},
        {"split dh128 B=3 ties",  3, 44, 12, 4, 2, 128, 16, 3, 5, 4, BMT_REPEAT, 0},
        {"split m_f=m_e=0 dh64",  3, 40, 8, 6, 3, 64, 13, 0, 0, 2, BMT_RANDOM, 0},
    };
    for (size_t i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) bmt_split_case(t, &split_cases[i]);
    static const bmt_case prefill_split_cases[] = {
        /* name (T set per piece)  B  T  d  H  Hkv dh  w   mf me k  y           random taps */
        {"psplit 12/4 dh64",       2, 0, 16, 12, 4, 64, 40, 4, 6, 4, BMT_RANDOM, 0},
        {"psplit 4/2 dh128 B=1",   1, 0, 12, 4, 2, 128, 33, 2, 5, 3, BMT_RANDOM, 1},
        {"psplit 4/2 dh16 ties",   2, 0, 10, 4, 2, 16, 24, 3, 7, 4, BMT_REPEAT, 0},
    };
    for (size_t i = 0; i < sizeof prefill_split_cases / sizeof prefill_split_cases[0]; i++)
        bmt_prefill_split_case(t, &prefill_split_cases[i]);
    static const bmt_case fused_cases[] = {
        /* name                   B  T   d  H  Hkv dh  w   mf me k  y           random taps */
        {"fused basic",           2, 37, 24, 4, 2, 16, 8, 3, 5, 4, BMT_RANDOM, 0},
        {"fused ties",            3, 37, 12, 4, 2, 16, 8, 3, 5, 4, BMT_REPEAT, 0},
        {"fused GQA 12/4 dh64",   1, 30, 16, 12, 4, 64, 7, 3, 4, 4, BMT_RANDOM, 1},
        {"fused w=1 m_f=0",       2, 13, 9, 4, 2, 16, 1, 0, 3, 2, BMT_RANDOM, 0},
        {"fused m_e=0 (B'MOJO-F)",2, 25, 13, 4, 2, 16, 8, 4, 0, 4, BMT_RANDOM, 0},
        {"fused m_f=m_e=0",       2, 21, 13, 4, 2, 16, 8, 0, 0, 4, BMT_RANDOM, 0},
    };
    for (size_t i = 0; i < sizeof fused_cases / sizeof fused_cases[0]; i++) bmt_fused_case(t, &fused_cases[i]);
}
