/* test_bmojo_backward.c — the B'MOJO attention's backward (ops_backward.h):
 *  - the sets of a training forward (bm_bmojo_mix with train_sets, only the state buffers it
 *    needs) against the plain top-m_e scan (bm_ref_bmojo_sets), exactly, with ties (y of
 *    repeated rows, constant y), and against what the stateful forward selects: after a
 *    prefill of s = c*w tokens from zero state, bm_bmojo_mix's candidate list is E(s); the
 *    training forward's o bitwise equal to the stateful forward's;
 *  - bm_op_bmojo_attention_backward against bm_ref_bmojo_attention_backward on both paths
 *    (recompute and store, rt->bmojo_bwd_mode as BMOJO_BBWD sets it) and both forms
 *    (rt->bmojo_bwd_form: the GPU form's tiled kernels; the CPU form's dq_cpu, mem_cpu and
 *    keys_cpu on the recompute path where dh % 16 == 0, the per-row mem in the tiled kernels
 *    elsewhere), with o from the
 *    forward (bm_bmojo_mix, zero state), q/kx/vx column views of one fused buffer and kf/vf of
 *    another (as layer_bmojo.c lays them out), the gradients into fused buffers pre-filled with
 *    garbage and compared whole (writes outside the views are caught), run twice (bitwise the
 *    same: deterministic);
 *  - the reference against central finite differences of a double-precision forward with the
 *    sets held fixed, w.r.t. q, kx, vx, kf and vf;
 *  - invalid arguments are errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"
#include "ops.h"
#include "ops_backward.h"
#include "ops_bmojo.h"
#include "ref/ref_backward.h"
#include "ref/ref_bmojo.h"

enum { BBT_RANDOM = 0, BBT_REPEAT = 1, BBT_CONST = 2 };

typedef struct {
    const char *name;
    int B, T, d, H, Hkv, dh, w, mf, me, k;
    int ymode; /* BBT_*: repeats give equal eps (ties) */
} bbt_case;

/* Inputs of one case: y, the fused q|kx|vx buffer xz (as the layer's in_proj output, with x|z
 * columns before and padding after), the Kf|Vf buffer kvf, dout; and the layouts. */
typedef struct {
    bbt_case c;
    float taps[BM_BMOJO_MAX_TAPS];
    size_t rows, HD, KV;
    size_t xz_ld, q_col, kx_col, vx_col, f_ld, kf_col, vf_col, o_ld;
    size_t dxz_ld, dq_col, dkx_col, dvx_col, df_ld, dkf_col, dvf_col;
    float *y, *xz, *kvf, *dout;
} bbt_data;

static void bbt_make(bm_test_ctx *t, const bbt_case *c, bbt_data *D)
{
    memset(D, 0, sizeof *D);
    D->c = *c;
    D->rows = (size_t)c->B * c->T;
    D->HD = (size_t)c->H * c->dh;
    D->KV = (size_t)c->Hkv * c->dh;
    for (int i = 0; i < c->k; i++) D->taps[i] = 1.0f / (float)c->k;
    D->q_col = 3;
    D->kx_col = D->q_col + D->HD;
    D->vx_col = D->kx_col + D->KV;
    D->xz_ld = D->vx_col + D->KV + 2;
    D->f_ld = 2 * D->KV;
    D->kf_col = 0;
    D->vf_col = D->KV;
    D->o_ld = D->HD + 1;
    /* the gradients: the same fused layout, other offsets */
    D->dq_col = 1;
    D->dkx_col = D->dq_col + D->HD;
    D->dvx_col = D->dkx_col + D->KV;
    D->dxz_ld = D->dvx_col + D->KV + 3;
    D->df_ld = 2 * D->KV;
    D->dkf_col = 0;
    D->dvf_col = D->KV;
    D->y = bm_test_alloc(sizeof(float) * D->rows * c->d);
    D->xz = bm_test_alloc(sizeof(float) * D->rows * D->xz_ld);
    D->kvf = bm_test_alloc(sizeof(float) * D->rows * D->f_ld);
    D->dout = bm_test_alloc(sizeof(float) * D->rows * D->o_ld);
    bm_test_fill(t, D->xz, D->rows * D->xz_ld, -1.0f, 1.0f);
    bm_test_fill(t, D->kvf, D->rows * D->f_ld, -1.0f, 1.0f);
    bm_test_fill(t, D->dout, D->rows * D->o_ld, -1.0f, 1.0f);
    if (c->ymode == BBT_RANDOM) {
        bm_test_fill(t, D->y, D->rows * c->d, -1.0f, 1.0f);
    } else {
        const int period = c->ymode == BBT_REPEAT ? 3 : 1;
        float *base = bm_test_alloc(sizeof(float) * (size_t)period * c->d);
        for (int b = 0; b < c->B; b++) {
            bm_test_fill(t, base, (size_t)period * c->d, -1.0f, 1.0f);
            for (int i = 0; i < c->T; i++)
                memcpy(D->y + ((size_t)b * c->T + i) * c->d, base + (size_t)(i % period) * c->d, sizeof(float) * c->d);
        }
        free(base);
    }
}

static void bbt_free(bbt_data *D)
{
    free(D->y);
    free(D->xz);
    free(D->kvf);
    free(D->dout);
}

static int bbt_nchunks(const bbt_case *c) { return (c->T + c->w - 1) / c->w; }
static size_t bbt_nsets(const bbt_case *c) { return (size_t)c->B * bbt_nchunks(c) * (c->me > 0 ? c->me : 1); }

/* The reference arguments on host arrays (o, sets and the gradient arrays set by the caller). */
static void bbt_ref_args(const bbt_data *D, bm_ref_bmojo_bwd_args *r)
{
    const bbt_case *c = &D->c;
    memset(r, 0, sizeof *r);
    r->B = c->B; r->T = c->T; r->d = c->d; r->H = c->H; r->Hkv = c->Hkv; r->dh = c->dh;
    r->window = c->w; r->m_f = c->mf; r->m_e = c->me; r->n_taps = c->k; r->taps = D->taps;
    r->scale = 1.0f / sqrtf((float)c->dh);
    r->y = D->y;
    r->q = D->xz; r->q_ld = D->xz_ld; r->q_col = D->q_col;
    r->kx = D->xz; r->vx = D->xz; r->x_ld = D->xz_ld; r->kx_col = D->kx_col; r->vx_col = D->vx_col;
    r->kf = D->kvf; r->vf = D->kvf; r->f_ld = D->f_ld; r->kf_col = D->kf_col; r->vf_col = D->vf_col;
    r->dout = D->dout; r->o_ld = D->o_ld;
    r->dq_ld = D->dxz_ld; r->dq_col = D->dq_col;
    r->dx_ld = D->dxz_ld; r->dkx_col = D->dkx_col; r->dvx_col = D->dvx_col;
    r->df_ld = D->df_ld; r->dkf_col = D->dkf_col; r->dvf_col = D->dvf_col;
}

/* The device arguments: the same layouts on device buffers. */
static void bbt_dev_args(const bbt_data *D, cl_mem sets, cl_mem xz, cl_mem kvf, cl_mem o, cl_mem dout, cl_mem dxz,
                         cl_mem dkvf, bm_bmojo_bwd_args *a)
{
    const bbt_case *c = &D->c;
    memset(a, 0, sizeof *a);
    a->B = c->B; a->T = c->T; a->H = c->H; a->Hkv = c->Hkv; a->dh = c->dh;
    a->window = c->w; a->m_f = c->mf; a->m_e = c->me;
    a->scale = 1.0f / sqrtf((float)c->dh);
    a->sets = sets;
    a->q = xz; a->q_ld = D->xz_ld; a->q_col = D->q_col;
    a->kx = xz; a->vx = xz; a->x_ld = D->xz_ld; a->kx_col = D->kx_col; a->vx_col = D->vx_col;
    a->kf = kvf; a->vf = kvf; a->f_ld = D->f_ld; a->kf_col = D->kf_col; a->vf_col = D->vf_col;
    a->o = o; a->dout = dout; a->o_ld = D->o_ld;
    a->dq = dxz; a->dq_ld = D->dxz_ld; a->dq_col = D->dq_col;
    a->dkx = dxz; a->dvx = dxz; a->dx_ld = D->dxz_ld; a->dkx_col = D->dkx_col; a->dvx_col = D->dvx_col;
    a->dkf = dkvf; a->dvf = dkvf; a->df_ld = D->df_ld; a->dkf_col = D->dkf_col; a->dvf_col = D->dvf_col;
}

/* The forward (bm_bmojo_mix from a zero state, pos0 = 0) over the first T tokens of each of
 * the B sequences whose buffers hold Tfull tokens (T < Tfull only for B = 1, where the first T
 * rows are the prefix): o into `out` (o_ld), and the final candidate positions into cand_pos
 * (host, B*max(m_e,1)) when not NULL. With train_sets, a training mix (ops_bmojo.h): the sets
 * into train_sets, and only the state buffers it needs are given (T > 1: y_hist, cand_eps,
 * cand_pos; the others NULL), and with train_lse each row's log-sum-exp too. Returns the status. */
static int bbt_forward(bm_test_ctx *t, const bbt_data *D, int T, cl_mem y, cl_mem xz, cl_mem kvf, cl_mem out,
                       int32_t *cand_pos, cl_mem train_sets, cl_mem train_lse)
{
    const bbt_case *c = &D->c;
    bm_bmojo_args a = {
        .B = c->B, .T = T, .d = c->d, .H = c->H, .Hkv = c->Hkv, .dh = c->dh, .window = c->w, .m_f = c->mf,
        .m_e = c->me, .n_taps = c->k, .taps = D->taps, .pos0 = 0, .scale = 1.0f / sqrtf((float)c->dh),
        .y = y, .q = xz, .q_ld = D->xz_ld, .q_col = D->q_col, .kx = xz, .vx = xz, .x_ld = D->xz_ld,
        .kx_col = D->kx_col, .vx_col = D->vx_col, .kf = kvf, .vf = kvf, .f_ld = D->f_ld, .kf_col = D->kf_col,
        .vf_col = D->vf_col, .out = out, .out_ld = D->o_ld, .train_sets = train_sets, .train_lse = train_lse};
    bm_bmojo_state_sizes z;
    bm_bmojo_state_layout(&a, &z);
    cl_mem st[8] = {0}, scratch = NULL;
    size_t sz[8] = {z.y_hist, z.win_k, z.win_v, z.fade_k, z.fade_v, z.cand_eps, z.cand_pos, z.mem};
    int s = 0;
    /* a training mix (T > 1) neither reads nor writes the rings and the memory: here they hold
     * NaNs, which would reach o if read, and are checked unchanged afterwards */
    const int untouched = train_sets && T > 1;
    float *nans[8] = {0};
    for (int i = 0; i < 8 && !s; i++) { /* zero-filled */
        if (untouched && i != 0 && i != 5 && i != 6) {
            nans[i] = bm_test_alloc(sz[i]);
            for (size_t x = 0; x < sz[i] / sizeof(float); x++) nans[i][x] = NAN;
            st[i] = bm_test_buffer(t, nans[i], sz[i]);
        } else {
            s = bm_alloc(t->rt, sz[i], &st[i]);
        }
    }
    if (!s) s = bm_alloc(t->rt, bm_bmojo_scratch_bytes(&a), &scratch);
    if (!s) {
        a.y_hist = st[0]; a.win_k = st[1]; a.win_v = st[2]; a.fade_k = st[3]; a.fade_v = st[4];
        a.cand_eps = st[5]; a.cand_pos = st[6]; a.mem = st[7];
        s = bm_bmojo_mix(t->rt, &a, scratch);
    }
    if (!s) s = bm_finish(t->rt);
    if (!s && cand_pos) bm_test_read(t, st[6], cand_pos, z.cand_pos);
    for (int i = 0; i < 8 && !s && untouched; i++)
        if (nans[i]) {
            float *back = bm_test_alloc(sz[i]);
            bm_test_read(t, st[i], back, sz[i]);
            char what[120];
            snprintf(what, sizeof what, "bmojo_bwd %s: the training forward leaves state buffer %d alone", c->name, i);
            bm_test_true(t, memcmp(back, nans[i], sz[i]) == 0, what);
            free(back);
        }
    for (int i = 0; i < 8; i++) free(nans[i]);
    for (int i = 0; i < 8; i++) bm_release(st[i]);
    bm_release(scratch);
    return s;
}

static double bbt_loss_double(const bbt_data *D, const int32_t *sets, const double *xz, const double *kvf,
                              float *o_out, double *lse_out);

/* The training forward's lse (got, [B*T, H]) against the double forward's with the reference's
 * sets. */
static void bbt_check_lse(bm_test_ctx *t, const bbt_data *D, const int32_t *sets, const float *got, const char *what)
{
    const bbt_case *c = &D->c;
    const size_t nxz = D->rows * D->xz_ld, nf = D->rows * D->f_ld, n = D->rows * (size_t)c->H;
    double *xz = bm_test_alloc(sizeof(double) * nxz), *kvf = bm_test_alloc(sizeof(double) * nf);
    double *lse = bm_test_alloc(sizeof(double) * n);
    float *want = bm_test_alloc(sizeof(float) * n);
    for (size_t i = 0; i < nxz; i++) xz[i] = D->xz[i];
    for (size_t i = 0; i < nf; i++) kvf[i] = D->kvf[i];
    bbt_loss_double(D, sets, xz, kvf, NULL, lse);
    for (size_t i = 0; i < n; i++) want[i] = (float)lse[i];
    bm_test_close(t, what, got, want, n, 1e-5);
    free(xz);
    free(kvf);
    free(lse);
    free(want);
}

/* The gradient buffers dxz and df read into got_xz, got_f and compared whole with the reference's
 * (1e-5); label follows the buffers' names in the checks' text. */
static void bbt_check_grads(bm_test_ctx *t, cl_mem dxz, cl_mem df, float *got_xz, const float *want_xz, size_t ndxz,
                            float *got_f, const float *want_f, size_t ndf, const char *name, const char *path,
                            const char *label)
{
    char what[200];
    bm_test_read(t, dxz, got_xz, sizeof(float) * ndxz);
    bm_test_read(t, df, got_f, sizeof(float) * ndf);
    snprintf(what, sizeof what, "bmojo_bwd %s [%s]: dq|dkx|dvx buffer%s", name, path, label);
    bm_test_close(t, what, got_xz, want_xz, ndxz, 1e-5);
    snprintf(what, sizeof what, "bmojo_bwd %s [%s]: dkf|dvf buffer%s", name, path, label);
    bm_test_close(t, what, got_f, want_f, ndf, 1e-5);
}

/* Kernel vs reference: the sets (exactly), the forward's own selection (B = 1), the gradients;
 * path names the backward path the runtime is set to (rt->bmojo_bwd_mode). */
static void bbt_kernel_case(bm_test_ctx *t, const bbt_case *c, const char *path)
{
    if (getenv("BBT_ONLY") && !strstr(c->name, getenv("BBT_ONLY"))) return; /* one case, by name part */
    bbt_data D;
    bbt_make(t, c, &D);
    char what[200];
    const int NC = bbt_nchunks(c), mec = c->me > 0 ? c->me : 1;
    const size_t ns = bbt_nsets(c), nxz = D.rows * D.xz_ld, nf = D.rows * D.f_ld, no = D.rows * D.o_ld;
    const size_t ndxz = D.rows * D.dxz_ld, ndf = D.rows * D.df_ld;

    /* sets */
    int32_t *sets_ref = bm_test_alloc(sizeof(int32_t) * ns), *sets_got = bm_test_alloc(sizeof(int32_t) * ns);
    for (size_t i = 0; i < ns; i++) sets_got[i] = 12345;
    bm_ref_bmojo_bwd_args r;
    bbt_ref_args(&D, &r);
    r.sets = sets_ref;
    bm_ref_bmojo_sets(&r);
    cl_mem dy = bm_test_buffer(t, D.y, sizeof(float) * D.rows * c->d);
    cl_mem dsets = bm_test_buffer(t, sets_got, sizeof(int32_t) * ns);
    cl_mem dxz = bm_test_buffer(t, D.xz, sizeof(float) * nxz), dkvf = bm_test_buffer(t, D.kvf, sizeof(float) * nf);
    cl_mem ddout = bm_test_buffer(t, D.dout, sizeof(float) * no);
    float *o = bm_test_alloc(sizeof(float) * no);
    bm_test_fill(t, o, no, -1.0f, 1.0f);
    cl_mem dov = bm_test_buffer(t, o, sizeof(float) * no);
    /* gradient buffers pre-filled with garbage: the columns outside the views must survive */
    float *gxz = bm_test_alloc(sizeof(float) * ndxz), *gf = bm_test_alloc(sizeof(float) * ndf);
    bm_test_fill(t, gxz, ndxz, -7.0f, 7.0f);
    bm_test_fill(t, gf, ndf, -7.0f, 7.0f);
    cl_mem ddxz = bm_test_buffer(t, gxz, sizeof(float) * ndxz), ddkvf = bm_test_buffer(t, gf, sizeof(float) * ndf);
    bm_bmojo_bwd_args a;
    bbt_dev_args(&D, dsets, dxz, dkvf, dov, ddout, ddxz, ddkvf, &a);

    /* the training forward: o (compared with the stateful forward's below), the sets and lse (its
     * buffer NaN-filled: a row left unwritten fails) */
    float *o_train = bm_test_alloc(sizeof(float) * no);
    cl_mem dov_train = bm_test_buffer(t, o, sizeof(float) * no);
    const size_t nl = D.rows * (size_t)c->H;
    float *lse = bm_test_alloc(sizeof(float) * nl);
    for (size_t i = 0; i < nl; i++) lse[i] = NAN;
    cl_mem dlse = bm_test_buffer(t, lse, sizeof(float) * nl);
    snprintf(what, sizeof what, "bmojo_bwd %s [%s]: training forward (train_sets, train_lse)", c->name, path);
    int trained = bm_test_status(t, bbt_forward(t, &D, c->T, dy, dxz, dkvf, dov_train, NULL, dsets, dlse), what);
    if (trained) {
        bm_test_read(t, dov_train, o_train, sizeof(float) * no);
        bm_test_read(t, dsets, sets_got, sizeof(int32_t) * ns);
        bm_test_read(t, dlse, lse, sizeof(float) * nl);
        snprintf(what, sizeof what, "bmojo_bwd %s [%s]: the training forward's lse", c->name, path);
        bbt_check_lse(t, &D, sets_ref, lse, what);
        int same = memcmp(sets_got, sets_ref, sizeof(int32_t) * ns) == 0;
        if (!same && t->verbose)
            for (size_t i = 0; i < ns; i++)
                if (sets_got[i] != sets_ref[i]) printf("  set[%zu]: got %d want %d\n", i, sets_got[i], sets_ref[i]);
        snprintf(what, sizeof what, "bmojo_bwd %s [%s]: sets == plain top-m_e (B=%d, %d chunks)", c->name, path, c->B, NC);
        bm_test_true(t, same, what);
    }

    /* the forward's selection: its candidate list after s = c*w tokens is E(s) */
    if (c->B == 1 && c->me > 0) {
        int32_t *cand = bm_test_alloc(sizeof(int32_t) * (size_t)mec);
        int same = 1, ran = 0;
        /* every chunk start of short runs, about 16 spread over long ones (a prefill each) */
        const int step = NC > 17 ? NC / 16 : 1;
        int want = 0;
        for (int ci = 1; ci < NC; ci += step) {
            const int s = ci * c->w, n = s < c->me ? s : c->me;
            want++;
            cl_mem tmp = NULL;
            if (bm_alloc(t->rt, sizeof(float) * no, &tmp)) break;
            int st = bbt_forward(t, &D, s, dy, dxz, dkvf, tmp, cand, NULL, NULL);
            bm_release(tmp);
            if (st) break;
            ran++;
            same &= memcmp(cand, sets_got + (size_t)ci * mec, sizeof(int32_t) * (size_t)n) == 0;
        }
        snprintf(what, sizeof what, "bmojo_bwd %s [%s]: sets == the forward's candidates at %d chunk starts", c->name, path, ran);
        bm_test_true(t, same && ran == want, what);
        free(cand);
    }

    /* o from the forward */
    snprintf(what, sizeof what, "bmojo_bwd %s [%s]: forward", c->name, path);
    if (bm_test_status(t, bbt_forward(t, &D, c->T, dy, dxz, dkvf, dov, NULL, NULL, NULL), what)) {
        bm_test_read(t, dov, o, sizeof(float) * no);
        snprintf(what, sizeof what, "bmojo_bwd %s [%s]: the training forward's o == the stateful forward's (bitwise)",
                 c->name, path);
        bm_test_true(t, trained && memcmp(o_train, o, sizeof(float) * no) == 0, what);

        float *want_xz = bm_test_alloc(sizeof(float) * ndxz), *want_f = bm_test_alloc(sizeof(float) * ndf);
        memcpy(want_xz, gxz, sizeof(float) * ndxz);
        memcpy(want_f, gf, sizeof(float) * ndf);
        r.o = o;
        r.sets = sets_ref;
        r.dq = want_xz; r.dkx = want_xz; r.dvx = want_xz;
        r.dkf = want_f; r.dvf = want_f;
        bm_ref_bmojo_attention_backward(&r);

        snprintf(what, sizeof what, "bmojo_bwd %s [%s]: backward", c->name, path);
        if (bm_test_status(t, bm_op_bmojo_attention_backward(t->rt, &a), what)) {
            float *got_xz = bm_test_alloc(sizeof(float) * ndxz), *got_f = bm_test_alloc(sizeof(float) * ndf);
            bbt_check_grads(t, ddxz, ddkvf, got_xz, want_xz, ndxz, got_f, want_f, ndf, c->name, path, "");
            /* again: bitwise the same (no atomics, fixed reduction orders) */
            float *again_xz = bm_test_alloc(sizeof(float) * ndxz), *again_f = bm_test_alloc(sizeof(float) * ndf);
            int st = bm_op_bmojo_attention_backward(t->rt, &a);
            if (!st) {
                bm_test_read(t, ddxz, again_xz, sizeof(float) * ndxz);
                bm_test_read(t, ddkvf, again_f, sizeof(float) * ndf);
            }
            snprintf(what, sizeof what, "bmojo_bwd %s [%s]: deterministic (bitwise equal rerun)", c->name, path);
            bm_test_true(t, !st && !memcmp(again_xz, got_xz, sizeof(float) * ndxz) &&
                                !memcmp(again_f, got_f, sizeof(float) * ndf), what);
            free(again_xz);
            free(again_f);

            /* with the forward's lse (training's way): the same gradients; with lse + 1 (P / e)
             * they change, so the backward reads it rather than recomputing */
            a.lse = dlse;
            cl_mem fresh_xz = bm_test_buffer(t, gxz, sizeof(float) * ndxz), fresh_f = bm_test_buffer(t, gf, sizeof(float) * ndf);
            a.dq = a.dkx = a.dvx = fresh_xz;
            a.dkf = a.dvf = fresh_f;
            snprintf(what, sizeof what, "bmojo_bwd %s [%s]: backward with the forward's lse", c->name, path);
            if (trained && bm_test_status(t, bm_op_bmojo_attention_backward(t->rt, &a), what)) {
                bbt_check_grads(t, fresh_xz, fresh_f, got_xz, want_xz, ndxz, got_f, want_f, ndf, c->name, path,
                                ", the forward's lse");
                for (size_t i = 0; i < nl; i++) lse[i] += 1.0f;
                cl_mem shifted = bm_test_buffer(t, lse, sizeof(float) * nl);
                a.lse = shifted;
                size_t changed = 0;
                if (!bm_op_bmojo_attention_backward(t->rt, &a)) {
                    bm_test_read(t, fresh_xz, got_xz, sizeof(float) * ndxz);
                    bm_test_read(t, fresh_f, got_f, sizeof(float) * ndf);
                    for (size_t i = 0; i < ndxz; i++) changed += fabsf(got_xz[i] - want_xz[i]) > 1e-3f * (1.0f + fabsf(want_xz[i]));
                    for (size_t i = 0; i < ndf; i++) changed += fabsf(got_f[i] - want_f[i]) > 1e-3f * (1.0f + fabsf(want_f[i]));
                }
                snprintf(what, sizeof what, "bmojo_bwd %s [%s]: the backward reads the given lse (%zu values change with lse + 1)",
                         c->name, path, changed);
                bm_test_true(t, changed > 0, what);
                bm_release(shifted);
            }
            bm_release(fresh_xz);
            bm_release(fresh_f);
            free(got_xz);
            free(got_f);
        }
        free(want_xz);
        free(want_f);
    }
    bm_release(dy);
    bm_release(dsets);
    bm_release(dxz);
    bm_release(dkvf);
    bm_release(ddout);
    bm_release(dov);
    bm_release(dov_train);
    bm_release(dlse);
    free(lse);
    bm_release(ddxz);
    bm_release(ddkvf);
    free(o);
    free(o_train);
    free(gxz);
    free(gf);
    free(sets_ref);
    free(sets_got);
    bbt_free(&D);
}

/* The tie cases really have equal eps among the candidates (else they test nothing). */
static void bbt_check_ties(bm_test_ctx *t, const bbt_case *c)
{
    bbt_data D;
    bbt_make(t, c, &D);
    float *eps = bm_test_alloc(sizeof(float) * (size_t)c->T);
    const float *prev[BM_BMOJO_MAX_TAPS];
    int ties = 0;
    for (int i = 0; i < c->T; i++) {
        for (int j = 1; j <= c->k; j++) prev[j - 1] = i - j >= 0 ? D.y + (size_t)(i - j) * c->d : NULL;
        eps[i] = bm_ref_bmojo_eps(D.y + (size_t)i * c->d, prev, D.taps, c->k, c->d);
        for (int j = 0; j < i; j++) ties += eps[j] == eps[i];
    }
    char what[160];
    snprintf(what, sizeof what, "bmojo_bwd %s: the data has equal eps values (%d pairs)", c->name, ties);
    bm_test_true(t, ties > c->T, what);
    free(eps);
    bbt_free(&D);
}

/* ---- finite differences ---- */

/* The loss sum(o * dout) of the forward in double, the sets fixed; xz and kvf in D's layouts; o
 * into o_out and each row's log-sum-exp of its scaled scores into lse_out [B*T, H] (either may be
 * NULL). */
static double bbt_loss_double(const bbt_data *D, const int32_t *sets, const double *xz, const double *kvf,
                              float *o_out, double *lse_out)
{
    const bbt_case *c = &D->c;
    const int rep = c->H / c->Hkv, NC = bbt_nchunks(c), mec = c->me > 0 ? c->me : 1;
    const double scale = 1.0f / sqrtf((float)c->dh); /* the float scale the op uses */
    const int nmax = c->mf + c->me + c->w;
    const double **K = bm_test_alloc(sizeof(double *) * nmax), **V = bm_test_alloc(sizeof(double *) * nmax);
    double *s = bm_test_alloc(sizeof(double) * nmax), loss = 0.0;
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t < c->T; t++) {
            const int ci = t / c->w, st = ci * c->w;
            const int32_t *set = sets + ((size_t)b * NC + ci) * mec;
            const size_t r0 = (size_t)b * c->T, r = r0 + t;
            for (int h = 0; h < c->H; h++) {
                const size_t go = (size_t)(h / rep) * c->dh;
                int n = 0;
                for (int p = st - c->mf < 0 ? 0 : st - c->mf; p < st; p++, n++) {
                    K[n] = kvf + (r0 + p) * D->f_ld + D->kf_col + go;
                    V[n] = kvf + (r0 + p) * D->f_ld + D->vf_col + go;
                }
                for (int e = 0; e < c->me && e < st; e++, n++) {
                    K[n] = xz + (r0 + set[e]) * D->xz_ld + D->kx_col + go;
                    V[n] = xz + (r0 + set[e]) * D->xz_ld + D->vx_col + go;
                }
                for (int p = t - c->w + 1 < 0 ? 0 : t - c->w + 1; p <= t; p++, n++) {
                    K[n] = xz + (r0 + p) * D->xz_ld + D->kx_col + go;
                    V[n] = xz + (r0 + p) * D->xz_ld + D->vx_col + go;
                }
                const double *q = xz + r * D->xz_ld + D->q_col + (size_t)h * c->dh;
                double mx = -INFINITY, l = 0.0;
                for (int i = 0; i < n; i++) {
                    double dot = 0.0;
                    for (int x = 0; x < c->dh; x++) dot += q[x] * K[i][x];
                    s[i] = dot * scale;
                    if (s[i] > mx) mx = s[i];
                }
                for (int i = 0; i < n; i++) l += (s[i] = exp(s[i] - mx));
                if (lse_out) lse_out[r * c->H + h] = mx + log(l);
                for (int x = 0; x < c->dh; x++) {
                    double acc = 0.0;
                    for (int i = 0; i < n; i++) acc += s[i] * V[i][x];
                    acc /= l;
                    loss += acc * D->dout[r * D->o_ld + (size_t)h * c->dh + x];
                    if (o_out) o_out[r * D->o_ld + (size_t)h * c->dh + x] = (float)acc;
                }
            }
        }
    free(K);
    free(V);
    free(s);
    return loss;
}

/* Relative error ||got - want|| / ||want|| of two double vectors, as a check. */
static void bbt_check_rel(bm_test_ctx *t, const char *what, const double *got, const double *want, size_t n,
                          double tol)
{
    double d2 = 0.0, w2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        d2 += (got[i] - want[i]) * (got[i] - want[i]);
        w2 += want[i] * want[i];
    }
    const double rel = sqrt(d2) / fmax(sqrt(w2), 1e-300);
    char msg[240];
    snprintf(msg, sizeof msg, "%s rel=%.2e (n=%zu)", what, rel, n);
    if (t->verbose) printf("      %s\n", msg);
    bm_test_true(t, rel <= tol || (d2 == 0.0 && w2 == 0.0), msg); /* both zero: keys no query sees */
}

/* Reference gradients vs central differences of bbt_loss_double w.r.t. every element of the
 * q, kx, vx (xz) and kf, vf (kvf) views. */
static void bbt_fd_case(bm_test_ctx *t, const bbt_case *c)
{
    bbt_data D;
    bbt_make(t, c, &D);
    const size_t ns = bbt_nsets(c), nxz = D.rows * D.xz_ld, nf = D.rows * D.f_ld, no = D.rows * D.o_ld;
    int32_t *sets = bm_test_alloc(sizeof(int32_t) * ns);
    bm_ref_bmojo_bwd_args r;
    bbt_ref_args(&D, &r);
    r.sets = sets;
    bm_ref_bmojo_sets(&r);
    double *xz = bm_test_alloc(sizeof(double) * nxz), *kvf = bm_test_alloc(sizeof(double) * nf);
    for (size_t i = 0; i < nxz; i++) xz[i] = D.xz[i];
    for (size_t i = 0; i < nf; i++) kvf[i] = D.kvf[i];
    float *o = bm_test_alloc(sizeof(float) * no);
    memset(o, 0, sizeof(float) * no);
    bbt_loss_double(&D, sets, xz, kvf, o, NULL);
    float *gxz = bm_test_alloc(sizeof(float) * D.rows * D.dxz_ld), *gf = bm_test_alloc(sizeof(float) * D.rows * D.df_ld);
    r.o = o;
    r.dq = r.dkx = r.dvx = gxz;
    r.dkf = r.dvf = gf;
    bm_ref_bmojo_attention_backward(&r);

    /* views: {name, source array, its ld, its column, gradient array, its ld, its column, width} */
    struct {
        const char *name;
        double *src; size_t ld, col;
        const float *g; size_t gld, gcol, width;
    } views[5] = {
        {"dq", xz, D.xz_ld, D.q_col, gxz, D.dxz_ld, D.dq_col, D.HD},
        {"dkx", xz, D.xz_ld, D.kx_col, gxz, D.dxz_ld, D.dkx_col, D.KV},
        {"dvx", xz, D.xz_ld, D.vx_col, gxz, D.dxz_ld, D.dvx_col, D.KV},
        {"dkf", kvf, D.f_ld, D.kf_col, gf, D.df_ld, D.dkf_col, D.KV},
        {"dvf", kvf, D.f_ld, D.vf_col, gf, D.df_ld, D.dvf_col, D.KV},
    };
    const double h = 1e-3;
    for (int v = 0; v < 5; v++) {
        const size_t n = D.rows * views[v].width;
        double *fd = bm_test_alloc(sizeof(double) * n), *an = bm_test_alloc(sizeof(double) * n);
        for (size_t rr = 0; rr < D.rows; rr++)
            for (size_t x = 0; x < views[v].width; x++) {
                double *e = views[v].src + rr * views[v].ld + views[v].col + x;
                const double keep = *e;
                *e = keep + h;
                const double lp = bbt_loss_double(&D, sets, xz, kvf, NULL, NULL);
                *e = keep - h;
                const double lm = bbt_loss_double(&D, sets, xz, kvf, NULL, NULL);
                *e = keep;
                fd[rr * views[v].width + x] = (lp - lm) / (2.0 * h);
                an[rr * views[v].width + x] = views[v].g[rr * views[v].gld + views[v].gcol + x];
            }
        char what[200];
        snprintf(what, sizeof what, "bmojo_bwd fd %s: ref %s vs central differences", c->name, views[v].name);
        bbt_check_rel(t, what, an, fd, n, 1e-6);
        free(fd);
        free(an);
    }
    free(sets);
    free(xz);
    free(kvf);
    free(o);
    free(gxz);
    free(gf);
    bbt_free(&D);
}

/* Invalid arguments are errors, not crashes. */
static void bbt_errors(bm_test_ctx *t)
{
    bbt_case c = {"errors", 1, 4, 3, 2, 1, 4, 2, 1, 1, 2, BBT_RANDOM};
    bbt_data D;
    bbt_make(t, &c, &D);
    cl_mem buf = NULL;
    if (bm_alloc(t->rt, 4096, &buf)) {
        bm_test_true(t, 0, "bmojo_bwd errors: allocation");
        bbt_free(&D);
        return;
    }
    bm_bmojo_bwd_args a, b;
    bbt_dev_args(&D, buf, buf, buf, buf, buf, buf, buf, &a);
    b = a; b.sets = NULL;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: sets NULL is EINVAL");
    b = a; b.window = 0;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: window 0 is EINVAL");
    b = a; b.B = -1;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: B -1 is EINVAL");
    b = a; b.m_e = -1;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: m_e -1 is EINVAL");
    b = a; b.H = 3;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: H % Hkv != 0 is EINVAL");
    b = a; b.q_ld = D.q_col + D.HD - 1;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: q_ld too small is EINVAL");
    b = a; b.dx_ld = D.dvx_col + D.KV - 1;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: dx_ld too small is EINVAL");
    b = a; b.df_ld = 1;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: df_ld too small is EINVAL");
    b = a; b.dvf = NULL;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: dvf NULL is EINVAL");
    b = a; b.o = NULL;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == BMOJO_EINVAL, "bmojo_bwd: o NULL is EINVAL");
    b = a; b.T = 0;
    bm_test_true(t, bm_op_bmojo_attention_backward(t->rt, &b) == 0, "bmojo_bwd: T 0 is a no-op");
    /* a training forward (bm_bmojo_mix with train_sets): from position 0 only; the rings and the
     * memory may be NULL except for T = 1 (the decoding step) */
    bm_bmojo_args m = {
        .B = 1, .T = 4, .d = c.d, .H = c.H, .Hkv = c.Hkv, .dh = c.dh, .window = c.w, .m_f = c.mf, .m_e = c.me,
        .n_taps = c.k, .taps = D.taps, .scale = 0.5f, .y = buf, .q = buf, .q_ld = 1, .kx = buf, .vx = buf,
        .x_ld = 1, .kf = buf, .vf = buf, .f_ld = 1, .y_hist = buf, .cand_eps = buf, .cand_pos = buf, .out = buf,
        .out_ld = 1, .train_sets = buf};
    bm_bmojo_args n = m;
    n.pos0 = 3;
    bm_test_true(t, bm_bmojo_mix(t->rt, &n, buf) == BMOJO_EINVAL, "bmojo mix: a training forward at position 3 is EINVAL");
    n = m;
    n.T = 1;
    bm_test_true(t, bm_bmojo_mix(t->rt, &n, buf) == BMOJO_EINVAL,
                 "bmojo mix: a training forward of one token without the rings is EINVAL");
    n = m;
    n.cand_pos = NULL;
    bm_test_true(t, bm_bmojo_mix(t->rt, &n, buf) == BMOJO_EINVAL, "bmojo mix: a training forward without cand_pos is EINVAL");
    n = m;
    n.train_sets = NULL;
    bm_test_true(t, bm_bmojo_mix(t->rt, &n, buf) == BMOJO_EINVAL, "bmojo mix: a stateful forward without the rings is EINVAL");
    n = m;
    n.train_sets = NULL;
    n.train_lse = buf;
    n.win_k = n.win_v = n.fade_k = n.fade_v = n.mem = buf;
    bm_test_true(t, bm_bmojo_mix(t->rt, &n, buf) == BMOJO_EINVAL, "bmojo mix: train_lse without train_sets is EINVAL");
    n = m;
    n.train_lse = buf;
    bm_test_true(t, bm_bmojo_mix_nsplit(t->rt, &n, buf, 2) == BMOJO_EINVAL,
                 "bmojo mix: train_lse with 2 key splits is EINVAL (lse is written unsplit)");
    bm_release(buf);
    bbt_free(&D);
}

void test_op_bmojo_backward(bm_test_ctx *t)
{
    bbt_errors(t);
    static const bbt_case cases[] = {
        /* name                       B  T   d  H  Hkv dh  w  mf me k  y */
        {"T=1",                        1, 1, 5, 2, 1, 4, 3, 1, 1, 4, BBT_RANDOM},
        {"T=5 w=1 ties",               2, 5, 6, 2, 1, 4, 1, 1, 1, 2, BBT_REPEAT},
        {"w=3 mf=3 me=4 ties",         1, 40, 7, 4, 2, 4, 3, 3, 4, 4, BBT_REPEAT},
        {"w=1 mf=3>w me=4",            1, 40, 5, 2, 1, 4, 1, 3, 4, 3, BBT_RANDOM},
        {"w=3 mf=7>w me=4 B=2 4/2",    2, 40, 6, 4, 2, 4, 3, 7, 4, 4, BBT_REPEAT},
        {"w=8 mf=me=0 dh=1",           1, 40, 5, 2, 1, 1, 8, 0, 0, 4, BBT_RANDOM},
        {"w=3 mf=1 me=0 B=2 dh16",     2, 5, 6, 4, 2, 16, 3, 1, 0, 4, BBT_RANDOM},
        {"w=8 mf=0 me=4 const y",      2, 40, 4, 4, 2, 1, 8, 0, 4, 4, BBT_CONST},
        {"w=8 mf=3 me=1 dh16",         1, 40, 9, 2, 1, 16, 8, 3, 1, 4, BBT_RANDOM},
        {"w=3 mf=0 me=1 dh16 4/2",     1, 40, 8, 4, 2, 16, 3, 0, 1, 2, BBT_REPEAT},
        {"w=8 mf=1 me=4 B=2 T=5",      2, 5, 6, 2, 1, 4, 8, 1, 4, 4, BBT_RANDOM},
        /* longer than the work-group (64 at most): key lists and window uses (w=70), the chunk
         * scans of the eidetic gather (150 chunks), the columns (dh=80) */
        {"w=70 mf=5 me=6 4/2 ties",    1, 150, 5, 4, 2, 4, 70, 5, 6, 4, BBT_REPEAT},
        {"w=1 150 chunks mf=2 me=3",   1, 150, 4, 2, 1, 4, 1, 2, 3, 2, BBT_REPEAT},
        {"dh=80 w=4 mf=2 me=2 B=2",    2, 13, 5, 2, 1, 80, 4, 2, 2, 4, BBT_RANDOM},
        /* the tiled kernels (bm_bmojo_bwd_q_tiled / _keys_tiled; on a 256-item device: 64 rows
         * = QT 32 tokens at rep 2, 16 at rep 4, 8 at rep 8, key tiles of 32, position tiles of 64):
         * T not a multiple of any tile, windows shorter and longer than the query tile, chunks
         * split into several query tiles with a short last one, m_f > w, m_e 0, many key tiles */
        {"tiled w=100 T=203 4/2 dh16",  1, 203, 6, 4, 2, 16, 100, 5, 8, 4, BBT_RANDOM},
        {"tiled w=20 mf=25>w 2/1 dh64 B=2", 2, 130, 5, 2, 1, 64, 20, 25, 3, 4, BBT_REPEAT},
        {"tiled w=97 mf=me=0 dh=1",     1, 199, 4, 2, 1, 1, 97, 0, 0, 4, BBT_RANDOM},
        {"tiled dh=80 w=40 T=90 4/2",   1, 90, 5, 4, 2, 80, 40, 3, 5, 4, BBT_RANDOM},
        {"tiled dh=64 w=64 T=129 4/2 B=2", 2, 129, 6, 4, 2, 64, 64, 2, 4, 4, BBT_RANDOM},
        {"tiled 8/1 w=30 me=0 mf=2",    1, 70, 4, 8, 1, 4, 30, 2, 0, 4, BBT_RANDOM},
        {"tiled w=300>T mf=3 me=2",     1, 77, 4, 2, 1, 16, 300, 3, 2, 4, BBT_RANDOM},
        {"tiled w=20<QT T=20 dh4",      1, 20, 5, 2, 1, 4, 20, 0, 0, 4, BBT_RANDOM},
        {"tiled w=5 T=21 mf=7 me=2 dh16", 1, 21, 5, 2, 1, 16, 5, 7, 2, 4, BBT_RANDOM},
        /* bm_bmojo_bwd_mem_tiled: more slots than one slot tile (64 at most: 16 rows of 4), so
         * several slot tiles per chunk; the chunk's rows split into parts (bm_bmojo_bwd_mem_sum)
         * wherever (chunk, kv head) pairs are fewer than 4 per compute unit, whole elsewhere */
        {"tiled mem mf=9 me=70 w=40 4/2", 1, 150, 6, 4, 2, 16, 40, 9, 70, 4, BBT_RANDOM},
        {"tiled mem mf=66 me=3 w=80 B=2", 2, 100, 5, 2, 1, 8, 80, 66, 3, 4, BBT_REPEAT},
        /* head_dim past the tiled kernels' columns (16 x 8): the per-row kernels */
        {"per-row dh=130 w=5 T=12",     1, 12, 4, 2, 1, 130, 5, 2, 2, 4, BBT_RANDOM},
        /* the CPU form's kernels (bm_bmojo_bwd_dq_cpu: blocks of 8 queries inside a chunk;
         * _keys_cpu: blocks of 8 positions), dh a multiple of 16 (the dh16 / 64 / 80 cases above
         * run them too): w 1 (a block per query), blocks cut by the chunk's end (w 11: 8 + 3) and
         * by T (45, 70, 17), no memory at all, m_f > w with rep 8, the most chunks of a head (dh
         * 256 = 16 x 16: the per-row kernels in the GPU form) */
        {"cpu w=1 mf=3>w me=4 dh16 B=2", 2, 37, 5, 2, 1, 16, 1, 3, 4, 3, BBT_REPEAT},
        {"cpu dh=32 8/1 w=11 T=45",     1, 45, 6, 8, 1, 32, 11, 2, 5, 4, BBT_RANDOM},
        {"cpu mf=me=0 dh16 w=9 2/2 B=2", 2, 30, 5, 2, 2, 16, 9, 0, 0, 4, BBT_RANDOM},
        {"cpu dh=48 8/1 w=16 mf=20>w",  1, 70, 6, 8, 1, 48, 16, 20, 8, 4, BBT_REPEAT},
        {"cpu dh=256 w=6 T=17 4/2",     1, 17, 5, 4, 2, 256, 6, 2, 3, 4, BBT_RANDOM},
        /* bm_bmojo_bwd_mem_cpu's blocks of 16 slots: exactly one, exactly two (the 28 and 79 slots
         * above: a short last block) */
        {"cpu mem M=16 dh16 w=12 4/2",  1, 60, 5, 4, 2, 16, 12, 4, 12, 4, BBT_RANDOM},
        {"cpu mem M=32 dh32 w=7 B=2",   2, 50, 5, 2, 1, 32, 7, 6, 26, 4, BBT_REPEAT},
    };
    /* both ways of getting dq's dS (BMOJO_BBWD): recomputed by bm_bmojo_bwd_q_tiled (or the CPU
     * form's bm_bmojo_bwd_dq_cpu), stored by the key kernels for bm_bmojo_bwd_dq_tiled (the
     * per-row case runs the per-row kernels in both) */
    static const struct {
        int mode;
        const char *name;
    } paths[] = {{BM_BBWD_RECOMPUTE, "recompute"}, {BM_BBWD_STORE, "store"}};
    /* and both forms (rt->bmojo_bwd_form), on every device. GPU form: q_tiled, mem_tiled,
     * keys_tiled (store: stats_tiled, mem_tiled, keys_tiled, dq_tiled). CPU form: on the
     * recompute path dq_cpu, mem_cpu, keys_cpu where dh % 16 == 0 (at most 256); the
     * store path, and the recompute path for other dh, run the GPU form's kernels with the
     * per-row mem. Where dh > 128 and the CPU kernels do not apply: the per-row kernels. */
    static const struct {
        int form;
        const char *name;
    } forms[] = {{BM_FORM_GPU, "GPU form"}, {BM_FORM_CPU, "CPU form"}};
    const int saved_mode = t->rt->bmojo_bwd_mode, saved_form = t->rt->bmojo_bwd_form;
    const int saved_attn = t->rt->bmojo_attn_form;
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++)
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            char label[64];
            snprintf(label, sizeof label, "%s, %s", paths[p].name, forms[f].name);
            t->rt->bmojo_bwd_mode = paths[p].mode;
            t->rt->bmojo_bwd_form = forms[f].form;
            t->rt->bmojo_attn_form = forms[f].form; /* the forward's attention (lse) in the same form */
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) bbt_kernel_case(t, &cases[i], label);
        }
    t->rt->bmojo_bwd_mode = saved_mode;
    t->rt->bmojo_bwd_form = saved_form;
    t->rt->bmojo_attn_form = saved_attn;
    bbt_check_ties(t, &cases[2]);
    bbt_check_ties(t, &cases[7]);
    static const bbt_case fd_cases[] = {
        /* name                       B  T   d  H  Hkv dh  w  mf me k  y */
        {"w=3 mf=2 me=2 ties",         1, 12, 4, 2, 1, 3, 3, 2, 2, 2, BBT_REPEAT},
        {"w=2 mf=5 me=3 B=2 4/2",      2, 9, 4, 4, 2, 2, 2, 5, 3, 3, BBT_RANDOM},
        {"w=1 mf=1 me=1 dh=4",         1, 7, 3, 2, 1, 4, 1, 1, 1, 1, BBT_RANDOM},
        {"w=8 mf=3 me=4 T=5",          1, 5, 3, 2, 1, 2, 8, 3, 4, 4, BBT_RANDOM},
        {"w=3 mf=0 me=4 dh=1",         1, 11, 3, 2, 1, 1, 3, 0, 4, 2, BBT_CONST},
    };
    for (size_t i = 0; i < sizeof fd_cases / sizeof fd_cases[0]; i++) bbt_fd_case(t, &fd_cases[i]);
}
