/* optim.c — the optimizer (optim.h): AdamW steps over the parameter table as few launches as the
 * decay flags allow, its state in checkpoints, the learning-rate schedule. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "optim.h"

int bm_optim_init(bm_optim *o, bm_rt *rt, const bm_param_table *t)
{
    memset(o, 0, sizeof *o);
    if (!t->values || !t->grads || t->n <= 0)
        return bm_fail(BMOJO_EINVAL, "bm_optim_init: the parameter table is empty or not allocated");
    o->rt = rt;
    o->n = t->n;
    o->bytes = t->bytes;
    o->decay = malloc((size_t)t->n * sizeof *o->decay);
    if (!o->decay) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    for (int i = 0; i < t->n; i++) o->decay[i] = t->p[i].decay;
    int st = bm_alloc(rt, t->bytes, &o->m);
    if (!st) st = bm_alloc(rt, t->bytes, &o->v);
    if (!st) st = bm_alloc(rt, BM_OPTIM_CLIP_FLOATS * sizeof(float), &o->clip);
    if (st) {
        bm_optim_free(o);
        return bm_fail_context(st, "the optimizer state (2 x %.1f MiB)", (double)t->bytes / 1048576.0);
    }
    return 0;
}

static int same_table(const bm_optim *o, const bm_param_table *t, const char *fn)
{
    if (!o->m || o->n != t->n || o->bytes != t->bytes)
        return bm_fail(BMOJO_EINVAL, "%s: the optimizer was made for another parameter table (%d tensors, %zu bytes; "
                       "this one has %d, %zu)", fn, o->n, o->bytes, t->n, t->bytes);
    return 0;
}

int bm_optim_step(bm_optim *o, bm_param_table *t, const bm_adamw_args *hp, float max_grad_norm)
{
    int st = same_table(o, t, "bm_optim_step");
    if (st) return st;
    /* The norm over the whole gradient buffer: the gaps between tensors are zero. */
    st = bm_op_sumsq(o->rt, t->grads, 0, t->bytes / sizeof(float), o->clip, BM_OPTIM_SUMSQ);
    if (!st) st = bm_op_clip_scale(o->rt, o->clip, BM_OPTIM_SUMSQ, BM_OPTIM_NORM, max_grad_norm);
    bm_adamw_args a = *hp;
    a.t = o->step + 1;
    for (int i = 0; st == 0 && i < t->n;) {
        int j = i;
        while (j + 1 < t->n && o->decay[j + 1] == o->decay[i]) j++;
        a.weight_decay = o->decay[i] ? hp->weight_decay : 0.0;
        size_t first = t->p[i].offset / sizeof(float), end = t->p[j].offset / sizeof(float) + t->p[j].numel;
        st = bm_op_adamw(o->rt, &a, t->values, t->grads, o->m, o->v, o->clip, BM_OPTIM_SCALE, first, end - first);
        i = j + 1;
    }
    if (st) return bm_fail_context(st, "optimizer step %" PRId64, a.t);
    o->step++;
    return 0;
}

int bm_optim_grad_norm(bm_optim *o, float *norm)
{
    if (!o->clip) return bm_fail(BMOJO_EINVAL, "bm_optim_grad_norm: no optimizer");
    return bm_download(o->rt, o->clip, BM_OPTIM_NORM * sizeof(float), norm, sizeof *norm);
}

/* "<native>.exp_avg" (which 0) or "<native>.exp_avg_sq" (which 1). */
static void state_name(char *buf, size_t n, const bm_param *p, int which)
{
    snprintf(buf, n, "%s.%s", p->native, which ? "exp_avg_sq" : "exp_avg");
}
#define STATE_NAME_MAX (sizeof(((bm_param *)0)->native) + 16)

int bm_optim_save(const bm_optim *o, bm_rt *rt, const bm_param_table *t, const char *path)
{
    int st = same_table(o, t, "bm_optim_save");
    if (st) return st;
    size_t n = (size_t)t->n;
    bm_st_out *outs = calloc(2 * n, sizeof *outs);
    char *names = calloc(2 * n, STATE_NAME_MAX);
    float *host = malloc(2 * (t->bytes ? t->bytes : 4));
    if (!outs || !names || !host)
        st = bm_fail(BMOJO_ENOMEM, "out of host memory for %.1f MiB of optimizer state", 2.0 * (double)t->bytes / 1048576.0);
    const char *mh = (const char *)host, *vh = mh + t->bytes;
    if (!st) st = bm_download(rt, o->m, 0, host, t->bytes);
    if (!st) st = bm_download(rt, o->v, 0, (char *)host + t->bytes, t->bytes);
    for (size_t i = 0; st == 0 && i < n; i++) {
        const bm_param *p = &t->p[i];
        for (int w = 0; w < 2; w++) {
            char *nm = names + (2 * i + (size_t)w) * STATE_NAME_MAX;
            state_name(nm, STATE_NAME_MAX, p, w);
            bm_st_out *out = &outs[2 * i + (size_t)w];
            *out = (bm_st_out){.name = nm, .dtype = BM_DT_F32, .ndim = p->ndim, .data = (w ? vh : mh) + p->offset};
            for (int k = 0; k < p->ndim; k++) out->shape[k] = p->shape[k];
        }
    }
    char step[32];
    snprintf(step, sizeof step, "%" PRId64, o->step);
    const char *meta[] = {"step", step, NULL};
    if (!st) st = bm_st_write(path, outs, (int)(2 * n), meta);
    free(outs);
    free(names);
    free(host);
    return st ? bm_fail_context(st, "saving the optimizer state to %s", path) : 0;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
}

/* The "step" entry of the file's metadata: a decimal integer >= 0. */
static int read_step(const bm_st_file *f, const char *path, int64_t *step)
{
    if (!f->metadata_json) return bm_fail(BMOJO_EFORMAT, "%s: no metadata (the optimizer's step is missing)", path);
    bm_json *j = NULL;
    char err[160];
    int st = bm_json_parse(f->metadata_json, strlen(f->metadata_json), &j, err, sizeof err);
    if (st) return bm_fail(BMOJO_EFORMAT, "%s: metadata: %s", path, err);
    const bm_json *s = bm_json_get(j, "step");
    char *end = NULL;
    long long v = -1;
    if (s && s->type == BM_JSON_STRING && s->string[0] >= '0' && s->string[0] <= '9') {
        errno = 0;
        v = strtoll(s->string, &end, 10);
        if (errno || *end) v = -1;
    }
    if (v < 0) st = bm_fail(BMOJO_EFORMAT, "%s: metadata \"step\" is missing or not a count of steps", path);
    else *step = v;
    bm_json_free(j);
    return st;
}

int bm_optim_load(bm_optim *o, bm_rt *rt, const bm_param_table *t, const char *path)
{
    int st = same_table(o, t, "bm_optim_load");
    if (st) return st;
    bm_st_file f;
    if ((st = bm_st_open(path, &f))) return st;
    int64_t step = 0;
    float *host = calloc(2, t->bytes ? t->bytes : 4); /* the gaps stay zero */
    if (!host) st = bm_fail(BMOJO_ENOMEM, "out of host memory for %.1f MiB of optimizer state", 2.0 * (double)t->bytes / 1048576.0);
    if (!st) st = read_step(&f, path, &step);
    for (int i = 0; st == 0 && i < t->n; i++) {
        const bm_param *p = &t->p[i];
        for (int w = 0; st == 0 && w < 2; w++) {
            char nm[STATE_NAME_MAX];
            state_name(nm, sizeof nm, p, w);
            const bm_st_tensor *ten = bm_st_find(&f, nm);
            if (!ten) {
                st = bm_fail(BMOJO_ETENSOR, "%s: tensor %s is missing", path, nm);
                break;
            }
            int same = ten->ndim == p->ndim;
            for (int k = 0; same && k < p->ndim; k++) same = ten->shape[k] == p->shape[k];
            if (!same) {
                char want[96], got[96];
                shape_str(want, sizeof want, p->ndim, p->shape);
                shape_str(got, sizeof got, ten->ndim, ten->shape);
                st = bm_fail(BMOJO_ETENSOR, "%s: tensor %s has shape %s, the model needs %s", path, nm, got, want);
                break;
            }
            if (ten->dtype != BM_DT_F32) {
                st = bm_fail(BMOJO_ETENSOR, "%s: tensor %s has dtype %s; optimizer state is F32", path, nm,
                             bm_dtype_name(ten->dtype));
                break;
            }
            memcpy((char *)host + (size_t)w * t->bytes + p->offset, bm_st_data(&f, ten), p->numel * sizeof(float));
        }
    }
    /* Every expected name was found once, so any further tensor is one the model does not have. */
    for (int k = 0; st == 0 && f.n != 2 * t->n && k < f.n; k++) {
        const char *name = f.tensors[k].name;
        int known = 0;
        for (int i = 0; !known && i < t->n; i++)
            for (int w = 0; !known && w < 2; w++) {
                char nm[STATE_NAME_MAX];
                state_name(nm, sizeof nm, &t->p[i], w);
                known = !strcmp(nm, name);
            }
        if (!known) st = bm_fail(BMOJO_ETENSOR, "%s: tensor %s belongs to no parameter of this model", path, name);
    }
    if (!st) st = bm_upload(rt, o->m, 0, host, t->bytes);
    if (!st) st = bm_upload(rt, o->v, 0, (char *)host + t->bytes, t->bytes);
    if (!st) o->step = step;
    free(host);
    bm_st_close(&f);
    return st;
}

void bm_optim_free(bm_optim *o)
{
    bm_release(o->m);
    bm_release(o->v);
    bm_release(o->clip);
    free(o->decay);
    memset(o, 0, sizeof *o);
}

double bm_lr_schedule(const bm_lr_sched *s, int64_t step)
{
    if (step < 0) step = 0;
    if (step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    if (step >= s->total) return s->min_lr;
    /* here warmup <= step < total, so total > warmup */
    double ratio = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    double coeff = 0.5 * (1.0 + cos(M_PI * ratio));
    return s->min_lr + coeff * (s->lr - s->min_lr);
}
