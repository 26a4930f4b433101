/* test_optim.c — the optimizer (src/optim.h) over a real parameter table: a random jamba-tiny
 * trainer (mamba with dt/B/C norms, attention, mlp), real gradients from batches, then
 * bm_optim_step against a float64 re-implementation of torch.optim.AdamW with
 * clip_grad_norm_ (clipping off, active, inactive), the per-tensor decay flags (A_log and every
 * 1-D tensor not decayed), the gaps between tensors staying zero, the learning-rate schedule at
 * chosen steps, the state saved and loaded back bit for bit, and damaged or mismatched state
 * files refused with the offending tensor named. */
#include <stdint.h>
#include <unistd.h>

#include "optim.h"
#include "test_util.h"
#include "train.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* ---- decay flags ---- */
static void check_decay(const bm_param_table *t)
{
    int bad = 0, seen_alog = 0, seen_d = 0, decayed = 0;
    for (int i = 0; i < t->n; i++) {
        const bm_param *p = &t->p[i];
        int want = p->ndim >= 2 && !ends_with(p->native, "A_log");
        if (p->decay != want) {
            printf("  %s (ndim %d): decay %d, want %d\n", p->native, p->ndim, p->decay, want);
            bad++;
        }
        seen_alog += ends_with(p->native, "A_log") && !p->decay;
        seen_d += ends_with(p->native, "mamba.D") && !p->decay;
        decayed += p->decay;
    }
    tu_check(bad == 0 && seen_alog == 2 && seen_d == 2 && decayed > 0,
             "decay flags: ndim >= 2 but A_log (%d A_log, %d D undecayed; %d of %d tensors decayed)", seen_alog, seen_d,
             decayed, t->n);
}

/* ---- AdamW steps vs float64 ---- */
typedef struct {
    double *p, *m, *v;
} host_state;

/* torch.optim.AdamW (decoupled decay before the update) after clip_grad_norm_, in double. */
static void ref_step(host_state *h, const bm_param_table *t, const float *g, const bm_adamw_args *a, int64_t step,
                     double scale)
{
    double bc1 = 1 - pow(a->beta1, (double)step), bc2 = 1 - pow(a->beta2, (double)step);
    for (int k = 0; k < t->n; k++) {
        const bm_param *p = &t->p[k];
        double wd = p->decay ? a->weight_decay : 0.0;
        for (size_t j = 0; j < p->numel; j++) {
            size_t i = p->offset / sizeof(float) + j;
            double gi = g[i] * scale;
            h->p[i] *= 1 - a->lr * wd;
            h->m[i] = a->beta1 * h->m[i] + (1 - a->beta1) * gi;
            h->v[i] = a->beta2 * h->v[i] + (1 - a->beta2) * gi * gi;
            h->p[i] -= a->lr * (h->m[i] / bc1) / (sqrt(h->v[i] / bc2) + a->eps);
        }
    }
}

/* rel = ||got - want|| / ||want|| over the tensors (not the gaps), and gaps exactly zero. */
static double rel_err(const float *got, const double *want, const bm_param_table *t, int *gaps_zero)
{
    double d = 0, r = 0;
    size_t end = 0;
    *gaps_zero = 1;
    for (int k = 0; k < t->n; k++) {
        const bm_param *p = &t->p[k];
        size_t b = p->offset / sizeof(float);
        for (size_t i = end; i < b; i++) *gaps_zero &= got[i] == 0.0f;
        for (size_t i = b; i < b + p->numel; i++) {
            d += (got[i] - want[i]) * (got[i] - want[i]);
            r += want[i] * want[i];
        }
        end = b + p->numel;
    }
    for (size_t i = end; i < t->bytes / sizeof(float); i++) *gaps_zero &= got[i] == 0.0f;
    return sqrt(d) / fmax(sqrt(r), 1e-30);
}

static void check_steps(bm_trainer *tr, bm_optim *o)
{
    bm_param_table *t = &tr->params;
    size_t nf = t->bytes / sizeof(float);
    float *g = malloc(t->bytes), *got = malloc(t->bytes);
    host_state h = {calloc(nf, sizeof(double)), calloc(nf, sizeof(double)), calloc(nf, sizeof(double))};
    double *p0 = calloc(nf, sizeof(double)), *dref = calloc(nf, sizeof(double));
    if (!g || !got || !h.p || !h.m || !h.v || !p0 || !dref) abort();
    if (!tu_status(bm_download(tr->rt, t->values, 0, got, t->bytes), "values")) goto done;
    for (size_t i = 0; i < nf; i++) h.p[i] = p0[i] = got[i];
    enum { B = 2, T = 9 };
    int32_t ids[B * T], tg[B * T];
    bm_lr_sched sched = {.lr = 2e-2, .min_lr = 2e-3, .warmup = 2, .total = 6};
    /* max_grad_norm per step as a fraction of the step's norm: off, active, inactive, active */
    const double clip_frac[] = {0, 0.3, 5.0, 0.05, 0, 0.7};
    for (int s = 0; s < 6; s++) {
        for (int i = 0; i < B * T; i++) ids[i] = (int32_t)rnd((uint32_t)tr->cfg.vocab_size);
        for (int i = 0; i < B * T; i++) tg[i] = i % 5 == 4 ? -1 : (int32_t)rnd((uint32_t)tr->cfg.vocab_size);
        double loss;
        if (!tu_status(bmojo_trainer_zero_grad(tr), "zero_grad") || !tu_status(bmojo_trainer_grad(tr, ids, tg, B, T, &loss), "grad") ||
            !tu_status(bm_download(tr->rt, t->grads, 0, g, t->bytes), "grads"))
            goto done;
        double ss = 0;
        for (size_t i = 0; i < nf; i++) ss += (double)g[i] * g[i];
        double norm = sqrt(ss);
        float max_norm = (float)(clip_frac[s] * norm);
        double scale = max_norm > 0 ? fmin(1.0, max_norm / (norm + 1e-6)) : 1.0;
        bm_adamw_args a = {.lr = bm_lr_schedule(&sched, o->step), .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8,
                           .weight_decay = 0.1, .t = -7 /* ignored: bm_optim counts */};
        int64_t t_adam = o->step + 1;
        if (!tu_status(bm_optim_step(o, t, &a, max_norm), "bm_optim_step")) goto done;
        ref_step(&h, t, g, &a, t_adam, scale);
        float gn = 0;
        if (!tu_status(bm_optim_grad_norm(o, &gn), "grad norm")) goto done;
        tu_check(fabs(gn - norm) <= 1e-6 * norm && o->step == s + 1, "step %d: grad norm %.7g (float64 %.7g), step count %lld",
                 s + 1, gn, norm, (long long)o->step);
        int gz = 0;
        if (!tu_status(bm_download(tr->rt, t->values, 0, got, t->bytes), "values")) goto done;
        double ep = rel_err(got, h.p, t, &gz);
        /* the update alone (p - p0), where an error in the step is not hidden by the values */
        double d = 0, r = 0;
        for (size_t i = 0; i < nf; i++) {
            double dg = got[i] - p0[i], dr = h.p[i] - p0[i];
            d += (dg - dr) * (dg - dr);
            r += dr * dr;
        }
        double eu = sqrt(d) / fmax(sqrt(r), 1e-30);
        tu_check(ep <= 1e-6 && eu <= 1e-5 && gz, "step %d (lr %.4g, clip scale %.4g): params rel err %.2e, update rel err %.2e, gaps zero %d",
                 s + 1, a.lr, scale, ep, eu, gz);
        if (!tu_status(bm_download(tr->rt, o->m, 0, got, t->bytes), "m")) goto done;
        double em = rel_err(got, h.m, t, &gz);
        int gzm = gz;
        if (!tu_status(bm_download(tr->rt, o->v, 0, got, t->bytes), "v")) goto done;
        double ev = rel_err(got, h.v, t, &gz);
        tu_check(em <= 1e-5 && ev <= 1e-5 && gz && gzm, "step %d: exp_avg rel err %.2e, exp_avg_sq %.2e, gaps zero", s + 1, em, ev);
    }
    /* The reference decays by the table's flags (checked by check_decay): a tensor decayed when
     * it should not be (or the reverse) differs from it; A_log and the embedding shown by name. */
    for (int k = 0; k < t->n; k++) {
        const bm_param *p = &t->p[k];
        if (!ends_with(p->native, "A_log") && !ends_with(p->native, "embed.weight")) continue;
        size_t b = p->offset / sizeof(float);
        bm_download(tr->rt, t->values, 0, got, t->bytes);
        double d = 0, r = 0;
        for (size_t i = b; i < b + p->numel; i++) {
            d += (got[i] - h.p[i]) * (got[i] - h.p[i]);
            r += h.p[i] * h.p[i];
        }
        tu_check(sqrt(d) <= 1e-6 * sqrt(r), "%s (decay %d) as the float64 reference", p->native, p->decay);
    }
done:
    free(g), free(got), free(h.p), free(h.m), free(h.v), free(p0), free(dref);
}

/* ---- the schedule ---- */
static void check_schedule(void)
{
    bm_lr_sched s = {.lr = 1e-3, .min_lr = 1e-4, .warmup = 10, .total = 110};
    struct {
        int64_t step;
        double want;
    } c[] = {{0, 1e-4},
             {4, 5e-4},
             {9, 1e-3},
             {10, 1e-3},
             {35, 1e-4 + 0.5 * (1 + cos(M_PI / 4)) * 9e-4},
             {60, 5.5e-4},
             {109, 1e-4 + 0.5 * (1 + cos(M_PI * 99 / 100)) * 9e-4},
             {110, 1e-4},
             {1000, 1e-4}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double got = bm_lr_schedule(&s, c[i].step);
        tu_check(fabs(got - c[i].want) <= 1e-15, "lr schedule step %lld: %.9g (want %.9g)", (long long)c[i].step, got,
                 c[i].want);
    }
    bm_lr_sched nw = {.lr = 3e-4, .min_lr = 0, .warmup = 0, .total = 0};
    tu_check(bm_lr_schedule(&nw, 0) == 0 && bm_lr_schedule(&nw, 5) == 0, "no warm-up, total 0: min_lr at once");
    bm_lr_sched nw2 = {.lr = 3e-4, .min_lr = 0, .warmup = 0, .total = 100};
    tu_check(bm_lr_schedule(&nw2, 0) == 3e-4, "no warm-up: lr at step 0");
}

/* ---- save / load ---- */
static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int x = fgetc(fa), y = fgetc(fb);
        if (x != y) eq = 0;
        if (x == EOF || y == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

enum { MUT_SHAPE, MUT_MISSING, MUT_EXTRA, MUT_DTYPE, MUT_NO_STEP, MUT_BAD_STEP };

/* Rewrites the saved file `src` into `dst` with one change at tensor `victim`. */
static int write_mutated(const char *src, const char *dst, int mut, const char *victim)
{
    bm_st_file f;
    if (bm_st_open(src, &f)) return 0;
    bm_st_out *outs = calloc((size_t)f.n + 1, sizeof *outs);
    int n = 0;
    for (int k = 0; k < f.n; k++) {
        const bm_st_tensor *ten = &f.tensors[k];
        int is = !strcmp(ten->name, victim);
        if (is && mut == MUT_MISSING) continue;
        bm_st_out *o = &outs[n++];
        *o = (bm_st_out){.name = ten->name, .dtype = ten->dtype, .ndim = ten->ndim, .data = bm_st_data(&f, ten)};
        for (int j = 0; j < ten->ndim; j++) o->shape[j] = ten->shape[j];
        if (is && mut == MUT_SHAPE) { /* same element count, another shape */
            o->ndim = 1;
            o->shape[0] = (int64_t)ten->nelem;
        }
        if (is && mut == MUT_DTYPE) o->dtype = BM_DT_I32;
        if (is && mut == MUT_EXTRA) {
            outs[n] = *o;
            outs[n++].name = "layers.99.mamba.A_log.exp_avg";
        }
    }
    const char *meta_ok[] = {"step", "999", NULL}, *meta_bad[] = {"step", "-3", NULL}, *meta_none[] = {"format", "pt", NULL};
    const char *const *meta = mut == MUT_NO_STEP ? meta_none : mut == MUT_BAD_STEP ? meta_bad : meta_ok;
    int st = bm_st_write(dst, outs, n, meta);
    free(outs);
    bm_st_close(&f);
    return st == 0;
}

static void check_save_load(bm_trainer *tr, bm_optim *o, const char *dir)
{
    bm_param_table *t = &tr->params;
    char p1[4200], p2[4200], p3[4200];
    snprintf(p1, sizeof p1, "%s/optim.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/optim2.safetensors", dir);
    snprintf(p3, sizeof p3, "%s/bad.safetensors", dir);
    if (!tu_status(bm_optim_save(o, tr->rt, t, p1), "bm_optim_save")) return;
    /* names, shapes, step in the file */
    bm_st_file f;
    if (tu_status(bm_st_open(p1, &f), p1)) {
        int ok = f.n == 2 * t->n && f.metadata_json && strstr(f.metadata_json, "\"step\"");
        for (int k = 0; ok && k < t->n; k++) {
            char nm[256];
            snprintf(nm, sizeof nm, "%s.exp_avg_sq", t->p[k].native);
            const bm_st_tensor *x = bm_st_find(&f, nm);
            ok = x && x->dtype == BM_DT_F32 && x->ndim == t->p[k].ndim && x->shape[0] == t->p[k].shape[0];
        }
        tu_check(ok, "saved state: 2 F32 tensors per parameter (<native>.exp_avg, .exp_avg_sq), metadata step (%s)",
                 f.metadata_json ? f.metadata_json : "none");
        bm_st_close(&f);
    }
    bm_optim o2;
    if (!tu_status(bm_optim_init(&o2, tr->rt, t), "bm_optim_init")) return;
    if (tu_status(bm_optim_load(&o2, tr->rt, t, p1), "bm_optim_load")) {
        float *a = malloc(t->bytes), *b = malloc(t->bytes);
        int same = o2.step == o->step;
        for (int w = 0; a && b && w < 2; w++) {
            bm_download(tr->rt, w ? o->v : o->m, 0, a, t->bytes);
            bm_download(tr->rt, w ? o2.v : o2.m, 0, b, t->bytes);
            same &= memcmp(a, b, t->bytes) == 0;
        }
        tu_check(same, "loaded state bit-identical (step %lld)", (long long)o2.step);
        tu_check(tu_status(bm_optim_save(&o2, tr->rt, t, p2), "save again") && files_equal(p1, p2),
                 "saved again: the same bytes");
        /* a refused file leaves the state as it was */
        static const struct {
            int mut;
            const char *victim, *want;
        } bad[] = {
            {MUT_SHAPE, "layers.0.mamba.A_log.exp_avg_sq", "layers.0.mamba.A_log.exp_avg_sq"},
            {MUT_MISSING, "layers.2.attn.k_proj.weight.exp_avg", "layers.2.attn.k_proj.weight.exp_avg"},
            {MUT_EXTRA, "layers.0.mamba.D.exp_avg", "layers.99.mamba.A_log.exp_avg"},
            {MUT_DTYPE, "norm_f.weight.exp_avg", "norm_f.weight.exp_avg"},
            {MUT_NO_STEP, "", "step"},
            {MUT_BAD_STEP, "", "step"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (!tu_check(write_mutated(p1, p3, bad[i].mut, bad[i].victim), "writing damaged file %zu", i)) continue;
            int st = bm_optim_load(&o2, tr->rt, t, p3);
            const char *msg = bmojo_last_error();
            tu_check(st != 0 && strstr(msg, bad[i].want) != NULL, "damaged file %zu refused naming %s: %s", i, bad[i].want,
                     st ? msg : "(accepted)");
        }
        /* a truncated file */
        FILE *src = fopen(p1, "rb"), *dst = fopen(p3, "wb");
        if (src && dst) {
            char buf[4096];
            size_t n = fread(buf, 1, sizeof buf, src);
            fwrite(buf, 1, n / 2, dst);
        }
        if (src) fclose(src);
        if (dst) fclose(dst);
        tu_check(bm_optim_load(&o2, tr->rt, t, p3) != 0, "truncated file refused: %s", bmojo_last_error());
        same = o2.step == o->step;
        bm_download(tr->rt, o->m, 0, a, t->bytes);
        bm_download(tr->rt, o2.m, 0, b, t->bytes);
        same &= memcmp(a, b, t->bytes) == 0;
        tu_check(same, "refused files left the loaded state unchanged");
        free(a), free(b);
    }
    bm_optim_free(&o2);
    unlink(p1), unlink(p2), unlink(p3);
}

int main(void)
{
    (void)tu_rel_err; /* test_util.h's, unused here */
    const char *src = tu_env("BMOJO_SOURCE_ROOT", "..");
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/configs/jamba-tiny.yaml", src);
    check_schedule();
    bmojo_runtime *rt = NULL;
    if (!tu_status(bmojo_runtime_create(NULL, &rt), "runtime")) return tu_finish();
    bmojo_trainer *tr = NULL;
    if (tu_status(bmojo_trainer_random(rt, cfg, 7, &tr), cfg)) {
        check_decay(&tr->params);
        bm_optim o;
        if (tu_status(bm_optim_init(&o, rt, &tr->params), "bm_optim_init")) {
            check_steps(tr, &o);
            char dir[] = "/tmp/bmojo_test_optim_XXXXXX";
            if (tu_check(mkdtemp(dir) != NULL, "temporary folder")) {
                check_save_load(tr, &o, dir);
                rmdir(dir);
            }
            bm_optim_free(&o);
        }
        bmojo_trainer_free(tr);
    }
    bmojo_runtime_free(rt);
    tu_check_no_leaked_buffers();
    return tu_finish();
}
