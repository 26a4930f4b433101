/* test_grad.c — the golden gradient test (model contract section 6): for every model under
 * $BMOJO_FIXTURES/grad/ (mamba, swa, bmojo, bmojo-f, mixed), on every OpenCL device, the loss and
 * the gradient of every checkpoint tensor must match the float64 finite-difference references
 * within the fixtures' tolerances (loss relative error <= 1e-5; all gradients concatenated
 * <= 1e-4; each tensor <= 1e-3 relative to max(its norm, 1e-6 of the whole); a missing tensor or
 * a wrong shape fails). Also: gradients accumulate across calls, and bad batches are refused.
 * Every model runs twice per device: with side-by-side projections (Q|K|V, gate|up) as one
 * stacked GEMM and the head over the scored rows only (the defaults; every fixture batch has
 * unscored rows) and, under BMOJO_STACK_LINEAR=0 BMOJO_COMPACT_HEAD=0, one GEMM each and every row
 * through the head; the test checks which projection path ran (bmojo_trainer.stacked_gemms). */
#include <unistd.h>

#include "test_util.h"
#include "train.h"

static const char *const models[] = {"mamba", "swa", "bmojo", "bmojo-f", "mixed"};

/* Whether the model has a sublayer with side-by-side projections (attention, bmojo, mlp). */
static int has_stackable(const bm_trainer *tr)
{
    for (int i = 0; i < tr->cfg.n_layers; i++)
        if (tr->cfg.layers[i].type != BM_LAYER_MAMBA) return 1;
    return 0;
}

static void check_model(bmojo_runtime *rt, const char *dev, const char *root, const char *name, int stacked)
{
    char dir[4096], batch[4200], refp[4200];
    snprintf(dir, sizeof dir, "%s/grad/%s", root, name);
    snprintf(batch, sizeof batch, "%s/batch.safetensors", dir);
    snprintf(refp, sizeof refp, "%s/reference.safetensors", dir);
    int64_t ishape[2] = {0}, tshape[2] = {0};
    int ndim = 0;
    int32_t *ids = tu_read_tensor(batch, "input_ids", ishape, &ndim);
    int32_t *targets = tu_read_tensor(batch, "targets", tshape, NULL);
    bmojo_trainer *tr = NULL;
    bm_st_file ref;
    int ref_open = 0;
    float **got = NULL;
    int nt = 0;
    if (!tu_check(ids && targets && ndim == 2, "%s %s: batch readable", dev, name)) goto done;
    int B = (int)ishape[0], T = (int)ishape[1];
    if (!tu_status(bmojo_trainer_load(rt, dir, 0, &tr), dir)) goto done;
    if (!tu_status(bm_st_open(refp, &ref), refp)) goto done;
    ref_open = 1;
    double loss = 0;
    if (!tu_status(bmojo_trainer_zero_grad(tr), "zero_grad") ||
        !tu_status(bmojo_trainer_grad(tr, ids, targets, B, T, &loss), "grad"))
        goto done;
    const bm_st_tensor *lt = bm_st_find(&ref, "loss");
    float want_loss = 0;
    if (lt) memcpy(&want_loss, bm_st_data(&ref, lt), 4);
    const int want_stacked = stacked && has_stackable(tr);
    tu_check((tr->stacked_gemms > 0) == want_stacked, "%s %s: %zu stacked projection GEMMs (%s)", dev, name,
             tr->stacked_gemms, want_stacked ? "expected some" : "expected none");
    double le = fabs(loss - want_loss) / fmax(fabs(want_loss), 1e-30);
    tu_check(lt && le <= 1e-5, "%s %s: loss %.7f vs %.7f, rel err %.2e", dev, name, loss, want_loss, le);

    nt = bmojo_trainer_tensor_count(tr);
    got = calloc((size_t)nt, sizeof *got);
    /* every reference tensor but loss is a gradient the trainer must produce, and vice versa */
    int missing = 0, shapes_ok = 1;
    tu_check(nt == ref.n - 1, "%s %s: %d gradient tensors, the reference has %d", dev, name, nt, ref.n - 1);
    double d2 = 0, r2 = 0;
    for (int k = 0; got && k < nt; k++) {
        bmojo_tensor_info ti;
        bmojo_trainer_tensor(tr, k, &ti);
        const bm_st_tensor *rt_ = bm_st_find(&ref, ti.name);
        if (!rt_) {
            missing++;
            printf("  %s: not in the reference\n", ti.name);
            continue;
        }
        int same = rt_->ndim == ti.ndim && rt_->dtype == BM_DT_F32;
        for (int j = 0; same && j < ti.ndim; j++) same = rt_->shape[j] == ti.shape[j];
        if (!same) {
            shapes_ok = 0;
            printf("  %s: shape differs from the reference\n", ti.name);
            continue;
        }
        got[k] = malloc(ti.numel * sizeof(float));
        if (!got[k] || !tu_status(bmojo_trainer_read_grad(tr, k, got[k]), ti.name)) goto done;
        const float *want = bm_st_data(&ref, rt_);
        for (size_t j = 0; j < ti.numel; j++) {
            if (isnan(want[j])) continue;
            double e = (double)got[k][j] - want[j];
            d2 += e * e;
            r2 += (double)want[j] * want[j];
        }
    }
    tu_check(missing == 0 && shapes_ok, "%s %s: every gradient named and shaped as the reference", dev, name);
    double whole = sqrt(r2), all = sqrt(d2) / fmax(whole, 1e-30);
    tu_check(all <= 1e-4, "%s %s: all gradients, rel err %.2e", dev, name, all);
    /* each tensor */
    for (int k = 0; got && k < nt; k++) {
        if (!got[k]) continue;
        bmojo_tensor_info ti;
        bmojo_trainer_tensor(tr, k, &ti);
        const float *want = bm_st_data(&ref, bm_st_find(&ref, ti.name));
        double dd = 0, rr = 0;
        for (size_t j = 0; j < ti.numel; j++) {
            if (isnan(want[j])) continue;
            double e = (double)got[k][j] - want[j];
            dd += e * e;
            rr += (double)want[j] * want[j];
        }
        double e = sqrt(dd) / fmax(sqrt(rr), 1e-6 * whole);
        if (e > 1e-3 || getenv("BMOJO_TEST_VERBOSE"))
            tu_check(e <= 1e-3, "%s %s: %s rel err %.2e", dev, name, ti.name, e);
        else
            tu_passed++;
    }
    /* a second batch without zeroing: every gradient doubles */
    double loss2 = 0;
    if (tu_status(bmojo_trainer_grad(tr, ids, targets, B, T, &loss2), "second grad")) {
        double worst = 0;
        for (int k = 0; got && k < nt; k++) {
            if (!got[k]) continue;
            bmojo_tensor_info ti;
            bmojo_trainer_tensor(tr, k, &ti);
            float *again = malloc(ti.numel * sizeof(float));
            if (!again || bmojo_trainer_read_grad(tr, k, again)) {
                free(again);
                worst = INFINITY;
                break;
            }
            for (size_t j = 0; j < ti.numel; j++) got[k][j] *= 2.0f;
            double e = tu_rel_err(again, got[k], ti.numel);
            if (e > worst) worst = e;
            free(again);
        }
        tu_check(worst <= 1e-6 && loss2 == loss, "%s %s: a second call adds the same gradients (rel err %.2e)", dev,
                 name, worst);
    }
    /* bad batches */
    int32_t saved = targets[0];
    targets[0] = tr ? 1 << 20 : 0;
    int bad_st = bmojo_trainer_grad(tr, ids, targets, B, T, &loss2);
    tu_check(bad_st == BMOJO_ERANGE, "%s %s: a target outside the vocabulary is refused: %s", dev, name,
             bmojo_last_error());
    targets[0] = saved;
    int32_t *none = malloc((size_t)B * (size_t)T * sizeof *none);
    if (none) {
        for (int j = 0; j < B * T; j++) none[j] = -1;
        bad_st = bmojo_trainer_grad(tr, ids, none, B, T, &loss2);
        tu_check(bad_st == BMOJO_EINVAL, "%s %s: a batch with no target is refused: %s", dev, name, bmojo_last_error());
        free(none);
    }
done:
    for (int k = 0; got && k < nt; k++) free(got[k]);
    free(got);
    if (ref_open) bm_st_close(&ref);
    bmojo_trainer_free(tr);
    free(ids);
    free(targets);
}

/* The parameter table saves a native folder (config.yaml + model.safetensors) that the inference
 * loader reads back as the same model: the same logits, bit for bit, as the original folder. */
static void check_save(bmojo_runtime *rt, const char *dev, const char *root, const char *name)
{
    char dir[4096], out[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    snprintf(out, sizeof out, "%s/bmojo_test_save_%d_%.40s", tu_env("TMPDIR", "/tmp"), (int)getpid(), strrchr(name, '/') + 1);
    bmojo_trainer *tr = NULL;
    bmojo_model *a = NULL, *b = NULL;
    bmojo_state *sa = NULL, *sb = NULL;
    enum { T = 9 };
    int32_t ids[T];
    float *la = NULL, *lb = NULL;
    if (!tu_status(bmojo_trainer_load(rt, dir, 0, &tr), dir) || !tu_status(bmojo_trainer_save(tr, out), "save"))
        goto done;
    if (!tu_status(bmojo_model_load(rt, dir, &a), dir) || !tu_status(bmojo_model_load(rt, out, &b), out)) goto done;
    bmojo_model_info info;
    bmojo_model_get_info(a, &info);
    for (int t = 0; t < T; t++) ids[t] = (t * 7 + 3) % info.vocab_size;
    la = malloc(sizeof(float) * T * (size_t)info.vocab_size);
    lb = malloc(sizeof(float) * T * (size_t)info.vocab_size);
    if (!la || !lb || !tu_status(bmojo_state_create(a, 1, &sa), "state") ||
        !tu_status(bmojo_state_create(b, 1, &sb), "state") ||
        !tu_status(bmojo_forward(a, sa, ids, T, BMOJO_LOGITS_ALL, la), "forward") ||
        !tu_status(bmojo_forward(b, sb, ids, T, BMOJO_LOGITS_ALL, lb), "forward"))
        goto done;
    tu_check(!memcmp(la, lb, sizeof(float) * T * (size_t)info.vocab_size),
             "%s %s: the saved folder loads as the same model (identical logits)", dev, name);
done:
    free(la);
    free(lb);
    bmojo_state_free(sa);
    bmojo_state_free(sb);
    bmojo_model_free(a);
    bmojo_model_free(b);
    bmojo_trainer_free(tr);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", out);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    unlink(path);
    rmdir(out);
}

/* A Hugging Face folder trains under its own tensor names: its gradients equal, bit for bit, those
 * of the native folder the parameter table saves from it (the same model under native names). */
static void check_hf(bmojo_runtime *rt, const char *dev, const char *root, const char *name)
{
    char dir[4096], out[4096], refp[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    snprintf(refp, sizeof refp, "%s/reference.safetensors", dir);
    snprintf(out, sizeof out, "%s/bmojo_test_hf_%d_%.40s", tu_env("TMPDIR", "/tmp"), (int)getpid(), strrchr(name, '/') + 1);
    int64_t shape[2] = {0};
    int32_t *ids = tu_read_tensor(refp, "input_ids", shape, NULL), *targets = NULL;
    bmojo_trainer *hf = NULL, *nat = NULL;
    float *a = NULL, *b = NULL;
    int T = (int)shape[0];
    if (!tu_check(ids && T > 1, "%s %s: input_ids readable", dev, name)) goto done;
    targets = malloc((size_t)T * sizeof *targets);
    if (!targets) goto done;
    for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? ids[t + 1] : -1;
    double la = 0, lb = 0;
    if (!tu_status(bmojo_trainer_load(rt, dir, 0, &hf), dir) || !tu_status(bmojo_trainer_save(hf, out), "save") ||
        !tu_status(bmojo_trainer_load(rt, out, 0, &nat), out) || !tu_status(bmojo_trainer_zero_grad(hf), "zero") ||
        !tu_status(bmojo_trainer_zero_grad(nat), "zero") ||
        !tu_status(bmojo_trainer_grad(hf, ids, targets, 1, T - 1, &la), "grad (HF)") ||
        !tu_status(bmojo_trainer_grad(nat, ids, targets, 1, T - 1, &lb), "grad (native)"))
        goto done;
    int n = bmojo_trainer_tensor_count(hf), same = n == bmojo_trainer_tensor_count(nat) && la == lb, renamed = 0;
    for (int k = 0; same && k < n; k++) {
        bmojo_tensor_info x, y;
        bmojo_trainer_tensor(hf, k, &x);
        bmojo_trainer_tensor(nat, k, &y);
        renamed += strcmp(x.name, y.name) != 0;
        free(a);
        free(b);
        a = malloc(x.numel * sizeof(float));
        b = malloc(x.numel * sizeof(float));
        same = a && b && x.numel == y.numel && !bmojo_trainer_read_grad(hf, k, a) && !bmojo_trainer_read_grad(nat, k, b) &&
               !memcmp(a, b, x.numel * sizeof(float));
        if (!same) printf("  %s vs %s differ\n", x.name, y.name);
    }
    tu_check(same && renamed > 0, "%s %s: gradients under Hugging Face names equal the native folder's (%d of %d "
             "tensors renamed), loss %.6f", dev, name, renamed, n, la);
done:
    free(a);
    free(b);
    free(ids);
    free(targets);
    bmojo_trainer_free(hf);
    bmojo_trainer_free(nat);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", out);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    unlink(path);
    rmdir(out);
}

int main(int argc, char **argv)
{
    const char *root = tu_env("BMOJO_FIXTURES", "../shared/fixtures");
    const char *only = argc > 1 ? argv[1] : NULL;
    bmojo_device_desc devs[16];
    int ndev = 0;
    if (!tu_status(bmojo_devices_list(devs, 16, &ndev), "listing devices") || !tu_check(ndev > 0, "an OpenCL device"))
        return tu_finish();
    for (int k = 0; k < ndev && k < 16; k++) {
        char spec[32];
        snprintf(spec, sizeof spec, "%d:%d", devs[k].platform_index, devs[k].device_index);
        bmojo_runtime *rt = NULL;
        if (!tu_status(bmojo_runtime_create(spec, &rt), spec)) continue;
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
            if (!only || strstr(models[i], only)) {
                check_model(rt, devs[k].name, root, models[i], 1);
                char sub[64];
                snprintf(sub, sizeof sub, "grad/%s", models[i]);
                check_save(rt, devs[k].name, root, sub);
            }
        /* Hugging Face folders (imported config.json, HF tensor names) save as native folders too */
        static const char *const hf[] = {"hf/mamba-0", "hf/mistral-0", "hf/jamba-0"};
        for (size_t i = 0; !only && k == 0 && i < sizeof hf / sizeof hf[0]; i++) {
            check_save(rt, devs[k].name, root, hf[i]);
            check_hf(rt, devs[k].name, root, hf[i]);
        }
        bmojo_runtime_free(rt);
        /* the same gradients with every projection its own GEMM */
        rt = NULL;
        setenv("BMOJO_STACK_LINEAR", "0", 1);
        setenv("BMOJO_COMPACT_HEAD", "0", 1);
        if (tu_status(bmojo_runtime_create(spec, &rt), spec)) {
            char label[300];
            snprintf(label, sizeof label, "%s (BMOJO_STACK_LINEAR=0 BMOJO_COMPACT_HEAD=0)", devs[k].name);
            for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
                if (!only || strstr(models[i], only)) check_model(rt, label, root, models[i], 0);
            bmojo_runtime_free(rt);
        }
        unsetenv("BMOJO_STACK_LINEAR");
        unsetenv("BMOJO_COMPACT_HEAD");
    }
    tu_check_no_leaked_buffers();
    return tu_finish();
}
