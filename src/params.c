/* params.c — the parameter table (params.h): building it from the kinds' tensor lists, the flat
 * value and gradient buffers, loading a checkpoint into it, random initialization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "params.h"

int bm_params_add(bm_param_table *t, const bm_config *c, int layer, const char *native, int ndim, int64_t d0,
                  int64_t d1, int64_t d2, bm_init_kind init, size_t fan_in, int *index)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        bm_param *p = realloc(t->p, (size_t)cap * sizeof *p);
        if (!p) return bm_fail(BMOJO_ENOMEM, "out of host memory");
        t->p = p;
        t->cap = cap;
    }
    bm_param *p = &t->p[t->n];
    memset(p, 0, sizeof *p);
    int st = 0;
    if (layer >= 0) {
        st = bm_config_tensor_name(c, layer, native, p->name, sizeof p->name);
        snprintf(p->native, sizeof p->native, "layers.%d.%s", layer, native);
    } else {
        const char *name = !strcmp(native, "embed.weight")    ? c->embed_name
                           : !strcmp(native, "norm_f.weight") ? c->norm_f_name
                           : !strcmp(native, "lm_head.weight") ? c->lm_head_name
                                                               : NULL;
        if (!name) return bm_fail(BMOJO_EINVAL, "bm_params_add: unknown model tensor %s", native);
        snprintf(p->name, sizeof p->name, "%s", name);
        snprintf(p->native, sizeof p->native, "%s", native);
    }
    if (st) return st;
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->shape[2] = d2;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) p->numel *= (size_t)p->shape[i];
    p->init = init;
    p->fan_in = fan_in;
    p->decay = ndim >= 2; /* "applied to matrices and embeddings only": no norms, biases, D */
    if (index) *index = t->n;
    t->n++;
    return 0;
}

int bm_params_alloc(bm_param_table *t, bm_rt *rt)
{
    size_t align = rt->lim.base_align ? rt->lim.base_align : 256, off = 0;
    for (int i = 0; i < t->n; i++) {
        t->p[i].offset = off;
        off += (t->p[i].numel * sizeof(float) + align - 1) / align * align;
    }
    t->bytes = off;
    int st = bm_alloc(rt, off, &t->values);
    if (!st) st = bm_alloc(rt, off, &t->grads);
    for (int i = 0; st == 0 && i < t->n; i++) {
        bm_param *p = &t->p[i];
        st = bm_sub_buffer(rt, t->values, p->offset, p->numel * sizeof(float), &p->value);
        if (!st) st = bm_sub_buffer(rt, t->grads, p->offset, p->numel * sizeof(float), &p->grad);
    }
    return st ? bm_fail_context(st, "the parameter table (%d tensors, %.1f MiB each for values and gradients)", t->n,
                                (double)off / 1048576.0)
              : 0;
}

static int find_param(const bm_param_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->p[i].name, name)) return i;
    return -1;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
}

int bm_params_load(bm_param_table *t, bm_rt *rt, const bm_st_set *set, int allow_unused)
{
    size_t largest = 0;
    for (int i = 0; i < t->n; i++)
        if (t->p[i].numel > largest) largest = t->p[i].numel;
    float *host = malloc((largest ? largest : 1) * sizeof(float));
    if (!host) return bm_fail(BMOJO_ENOMEM, "out of host memory staging %zu floats", largest);
    int st = 0;
    for (int i = 0; st == 0 && i < t->n; i++) {
        bm_param *p = &t->p[i];
        const bm_st_file *f = NULL;
        const bm_st_tensor *ten = bm_st_set_find(set, p->name, &f);
        if (!ten) {
            st = bm_fail(BMOJO_ETENSOR, "tensor %s is missing from the checkpoint", p->name);
            break;
        }
        int same = ten->ndim == p->ndim;
        for (int k = 0; same && k < p->ndim; k++) same = ten->shape[k] == p->shape[k];
        if (!same) {
            char want[96], got[96];
            shape_str(want, sizeof want, p->ndim, p->shape);
            shape_str(got, sizeof got, ten->ndim, ten->shape);
            st = bm_fail(BMOJO_ETENSOR, "tensor %s has shape %s, the config needs %s", p->name, got, want);
            break;
        }
        if (ten->dtype != BM_DT_F32 && ten->dtype != BM_DT_F16 && ten->dtype != BM_DT_BF16) {
            st = bm_fail(BMOJO_ETENSOR, "tensor %s has dtype %s; weights must be F32, F16 or BF16", p->name,
                         bm_dtype_name(ten->dtype));
            break;
        }
        st = bm_st_to_f32(f, ten, host);
        if (st) {
            st = bm_fail_context(st, "tensor %s", p->name);
            break;
        }
        for (size_t k = 0; k < p->numel; k++)
            if (!isfinite(host[k])) {
                st = bm_fail(BMOJO_ETENSOR, "tensor %s holds a non-finite value at element %zu", p->name, k);
                break;
            }
        if (!st) st = bm_upload(rt, t->values, p->offset, host, p->numel * sizeof(float));
    }
    free(host);
    for (int k = 0; st == 0 && !allow_unused && k < set->n_files; k++)
        for (int j = 0; st == 0 && j < set->files[k].n; j++) {
            const char *name = set->files[k].tensors[j].name;
            if (find_param(t, name) < 0 && !bm_weights_harmless_extra(name))
                st = bm_fail(BMOJO_ETENSOR, "the checkpoint holds tensor %s, which the config does not use (pass "
                             "--allow-unused-tensors to ignore it)", name);
        }
    return st;
}

int bm_params_randomize(bm_param_table *t, bm_rt *rt, uint64_t seed)
{
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull | 1;
    int st = 0;
    for (int i = 0; st == 0 && i < t->n; i++) {
        bm_param *p = &t->p[i];
        float *h = malloc(p->numel * sizeof(float));
        if (!h) return bm_fail(BMOJO_ENOMEM, "out of host memory");
        bm_weights_fill_random(&rng, h, p->numel, p->ndim > 1 ? p->shape[p->ndim - 1] : 1, p->init, p->fan_in);
        st = bm_upload(rt, t->values, p->offset, h, p->numel * sizeof(float));
        free(h);
    }
    return st;
}

int bm_params_save(const bm_param_table *t, bm_rt *rt, const char *path)
{
    bm_st_out *outs = calloc((size_t)t->n + 1, sizeof *outs);
    float *host = malloc(t->bytes ? t->bytes : 4);
    int st = 0;
    if (!outs || !host) st = bm_fail(BMOJO_ENOMEM, "out of host memory for %.1f MiB of weights", (double)t->bytes / 1048576.0);
    if (!st) st = bm_download(rt, t->values, 0, host, t->bytes);
    for (int i = 0; st == 0 && i < t->n; i++) {
        const bm_param *p = &t->p[i];
        outs[i] = (bm_st_out){.name = p->native, .dtype = BM_DT_F32, .ndim = p->ndim,
                              .data = (const char *)host + p->offset};
        for (int k = 0; k < p->ndim; k++) outs[i].shape[k] = p->shape[k];
    }
    const char *meta[] = {"format", "pt", NULL};
    if (!st) st = bm_st_write(path, outs, t->n, meta);
    free(outs);
    free(host);
    return st;
}

int bm_params_zero_grads(bm_param_table *t, bm_rt *rt)
{
    return bm_fill_zero(rt, t->grads, 0, t->bytes);
}

void bm_params_free(bm_param_table *t)
{
    for (int i = 0; i < t->n; i++) {
        bm_release(t->p[i].value);
        bm_release(t->p[i].grad);
    }
    bm_release(t->values);
    bm_release(t->grads);
    free(t->p);
    memset(t, 0, sizeof *t);
}
