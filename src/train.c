/* train.c — the training pass over the layer stack (train.h): the embedding, each sublayer's
 * pre-norm and residual add around the kinds' forward and backward, the final norm, and the
 * cross-entropy fused with the head in chunks of rows so that at most one chunk of [rows, V]
 * logits exists. Every activation comes from one arena planned for the batch shape; the memory
 * budget is checked before anything is allocated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/stat.h>

#include "error.h"
#include "file_write.h"
#include "layer_kind.h"
#include "mem_budget.h"
#include "ops.h"
#include "ops_backward.h"
#include "train.h"

/* Logits of one head chunk: rows of [rows, V] kept at about this many bytes. */
#define BM_TRAIN_HEAD_CHUNK_BYTES ((size_t)256 << 20)
#define BM_TRAIN_MAX_ROWS (1 << 22) /* B * T of one batch */

static const bm_train_kind *kind_of(bm_layer_type t)
{
    const bm_layer_kind *k = bm_layer_kind_of(t);
    return k ? k->train : NULL;
}

void bm_train_temp_need(bm_trainer *tr, int slot, size_t floats)
{
    if (slot >= 0 && slot < BM_TRAIN_TEMPS && floats > tr->temp_floats[slot]) tr->temp_floats[slot] = floats;
}

cl_mem bm_train_value(const bm_trainer *tr, const bm_train_layer *l, int k)
{
    return l->p[k] < 0 ? NULL : tr->params.p[l->p[k]].value;
}

cl_mem bm_train_grad(const bm_trainer *tr, const bm_train_layer *l, int k)
{
    return l->p[k] < 0 ? NULL : tr->params.p[l->p[k]].grad;
}

int bm_train_linear(bm_trainer *tr, cl_mem x, size_t x_col, size_t ldx, size_t in, cl_mem w, size_t out, cl_mem y,
                    size_t y_col, size_t ldy, float beta)
{
    return bm_gemm(tr->rt, tr->N, out, in, x, x_col, ldx, bm_wf32(w), 0, in, beta, y, y_col, ldy);
}

int bm_train_linear_backward(bm_trainer *tr, cl_mem x, size_t x_col, size_t ldx, size_t in, cl_mem w, cl_mem gw,
                             size_t out, cl_mem dy, size_t dy_col, size_t ldy, cl_mem dx, size_t dx_col, size_t lddx,
                             float beta_dx)
{
    /* gW [out, in] += dy^T [out, N] x [N, in] */
    int st = bm_gemm_ex(tr->rt, 1, 0, out, in, tr->N, dy, dy_col, ldy, x, x_col, ldx, 1.0f, gw, 0, in);
    /* dx [N, in] = dy [N, out] W [out, in] */
    if (!st && dx) st = bm_gemm_ex(tr->rt, 0, 0, tr->N, in, out, dy, dy_col, ldy, w, 0, in, beta_dx, dx, dx_col, lddx);
    return st;
}

/* The rows of l->p[k0 .. k0+n-1] together (*out), and whether they are back to back in the flat
 * buffers (then *off is the first one's element offset there). */
static int stack_of(const bm_trainer *tr, const bm_train_layer *l, int k0, int n, size_t in, size_t *out, size_t *off)
{
    const bm_param *p = tr->params.p;
    int contiguous = 1;
    *out = 0;
    for (int k = k0; k < k0 + n; k++) {
        const bm_param *a = &p[l->p[k]];
        *out += (size_t)a->shape[0];
        if (a->ndim != 2 || (size_t)a->shape[1] != in) contiguous = 0;
        if (k > k0 && a->offset != p[l->p[k - 1]].offset + p[l->p[k - 1]].numel * 4) contiguous = 0;
    }
    *off = p[l->p[k0]].offset / 4;
    return tr->rt->stack_linear && contiguous && p[l->p[k0]].offset % 4 == 0;
}

int bm_train_linear_stack(bm_trainer *tr, const bm_train_layer *l, int k0, int n, cl_mem x, size_t x_col, size_t ldx,
                          size_t in, cl_mem y, size_t y_col, size_t ldy, float beta)
{
    size_t out, off;
    if (stack_of(tr, l, k0, n, in, &out, &off)) {
        tr->stacked_gemms++;
        return bm_gemm(tr->rt, tr->N, out, in, x, x_col, ldx, bm_wf32(tr->params.values), off, in, beta, y, y_col, ldy);
    }
    int st = 0;
    for (int k = k0; st == 0 && k < k0 + n; k++) {
        const size_t o = (size_t)tr->params.p[l->p[k]].shape[0];
        st = bm_train_linear(tr, x, x_col, ldx, in, bm_train_value(tr, l, k), o, y, y_col, ldy, beta);
        y_col += o;
    }
    return st;
}

int bm_train_linear_stack_backward(bm_trainer *tr, const bm_train_layer *l, int k0, int n, cl_mem x, size_t x_col,
                                   size_t ldx, size_t in, cl_mem dy, size_t dy_col, size_t ldy, cl_mem dx, size_t dx_col,
                                   size_t lddx, float beta_dx)
{
    size_t out, off;
    if (stack_of(tr, l, k0, n, in, &out, &off)) {
        tr->stacked_gemms += dx ? 2 : 1;
        int st = bm_gemm_ex(tr->rt, 1, 0, out, in, tr->N, dy, dy_col, ldy, x, x_col, ldx, 1.0f, tr->params.grads, off, in);
        if (!st && dx)
            st = bm_gemm_ex(tr->rt, 0, 0, tr->N, in, out, dy, dy_col, ldy, tr->params.values, off, in, beta_dx, dx, dx_col,
                            lddx);
        return st;
    }
    int st = 0;
    for (int k = k0; st == 0 && k < k0 + n; k++) {
        const size_t o = (size_t)tr->params.p[l->p[k]].shape[0];
        st = bm_train_linear_backward(tr, x, x_col, ldx, in, bm_train_value(tr, l, k), bm_train_grad(tr, l, k), o, dy,
                                      dy_col, ldy, dx, dx_col, lddx, k == k0 ? beta_dx : 1.0f);
        dy_col += o;
    }
    return st;
}

/* ---- building the trainer ---- */

static int trainer_new(bmojo_runtime *rt, bmojo_trainer **out, bm_trainer **tr)
{
    if (!rt || !out) return bm_fail(BMOJO_EINVAL, "bmojo_trainer: runtime and output must not be NULL");
    *out = NULL;
    *tr = calloc(1, sizeof **tr);
    if (!*tr) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    (*tr)->rt = rt;
    return 0;
}

/* The table in config order: embed, then per sublayer its norm and the kind's tensors, then
 * norm_f and (untied, or present in the checkpoint) lm_head. */
static int build_table(bm_trainer *tr, const bm_st_set *set)
{
    bm_config *c = &tr->cfg;
    int64_t V = c->vocab_size, d = c->d_model;
    tr->layers = calloc((size_t)c->n_layers, sizeof *tr->layers);
    if (!tr->layers) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    int st = bm_params_add(&tr->params, c, -1, "embed.weight", 2, V, d, 0, BM_INIT_EMBED, 0, &tr->p_embed);
    for (int i = 0; st == 0 && i < c->n_layers; i++) {
        bm_train_layer *l = &tr->layers[i];
        for (int k = 0; k < BM_TRAIN_MAX_PARAMS; k++) l->p[k] = -1;
        l->kind = kind_of(c->layers[i].type);
        if (!l->kind) return bm_fail(BMOJO_ECONFIG, "layers[%d]: unknown sublayer kind", i);
        st = bm_params_add(&tr->params, c, i, "norm.weight", 1, d, 0, 0, BM_INIT_ONES, 0, &l->p_norm);
        if (!st) st = l->kind->params(tr, i, l);
        if (st) st = bm_fail_context(st, "layers[%d] (%s)", i, bm_layer_type_name(c->layers[i].type));
    }
    if (!st) st = bm_params_add(&tr->params, c, -1, "norm_f.weight", 1, d, 0, 0, BM_INIT_ONES, 0, &tr->p_norm_f);
    if (!st) {
        int has_head = set && bm_st_set_find(set, c->lm_head_name, NULL);
        if (has_head || !c->tie_embeddings)
            st = bm_params_add(&tr->params, c, -1, "lm_head.weight", 2, V, d, 0, BM_INIT_FANIN, (size_t)d, &tr->p_head);
        else tr->p_head = tr->p_embed;
        if (!st && set && !has_head && !c->tie_embeddings)
            st = bm_fail(BMOJO_ETENSOR, "tensor %s is missing and the config does not tie embeddings", c->lm_head_name);
    }
    if (st) return st;
    uint64_t bytes = 0;
    size_t align = tr->rt->lim.base_align ? tr->rt->lim.base_align : 256;
    for (int k = 0; k < tr->params.n; k++) bytes += (tr->params.p[k].numel * 4 + align - 1) / align * align;
    st = bm_mem_check(tr->rt, "the parameters and their gradients", 2 * bytes, 2 * bytes, 0);
    if (!st) st = bm_params_alloc(&tr->params, tr->rt);
    return st;
}

int bmojo_trainer_load(bmojo_runtime *rt, const char *dir, unsigned flags, bmojo_trainer **out)
{
    bm_trainer *tr = NULL;
    int st = trainer_new(rt, out, &tr);
    if (st) return st;
    /* the parameters are always fp32 (optimizer updates need the precision): f32 storage may be
     * asked for, f16 is refused */
    const unsigned known = BMOJO_LOAD_ALLOW_UNUSED_TENSORS | BMOJO_LOAD_WEIGHTS_F32;
    if (!dir || (flags & ~known)) {
        free(tr);
        if (dir && (flags & BMOJO_LOAD_WEIGHTS_F16))
            return bm_fail(BMOJO_EINVAL, "bmojo_trainer_load: training keeps its parameters in fp32; "
                                         "BMOJO_LOAD_WEIGHTS_F16 (f16 weight storage) is for inference only");
        return bm_fail(BMOJO_EINVAL, dir ? "bmojo_trainer_load: unknown flags 0x%x" : "bmojo_trainer_load: no model folder given",
                       flags);
    }
    st = bm_config_load_dir(dir, &tr->cfg);
    if (st) {
        free(tr);
        return st;
    }
    bm_st_set set;
    memset(&set, 0, sizeof set);
    st = bm_st_set_open(dir, &set);
    if (!st) {
        st = build_table(tr, &set);
        if (!st) st = bm_params_load(&tr->params, rt, &set, (flags & BMOJO_LOAD_ALLOW_UNUSED_TENSORS) != 0);
        bm_st_set_close(&set);
    }
    if (st) {
        st = bm_fail_context(st, "%s", dir);
        bmojo_trainer_free(tr);
        return st;
    }
    *out = tr;
    return 0;
}

int bmojo_trainer_random(bmojo_runtime *rt, const char *config_yaml, uint64_t seed, bmojo_trainer **out)
{
    bm_trainer *tr = NULL;
    int st = trainer_new(rt, out, &tr);
    if (st) return st;
    if (!config_yaml) {
        free(tr);
        return bm_fail(BMOJO_EINVAL, "bmojo_trainer_random: no config given");
    }
    st = bm_config_load_yaml(config_yaml, &tr->cfg);
    if (st) {
        free(tr);
        return st;
    }
    st = build_table(tr, NULL);
    if (!st) st = bm_params_randomize(&tr->params, rt, seed ? seed : 1);
    if (st) {
        bmojo_trainer_free(tr);
        return st;
    }
    *out = tr;
    return 0;
}

static void pass_free(bm_trainer *tr)
{
    bm_arena_free(&tr->arena);
    free(tr->x);
    tr->x = NULL;
    tr->arena_B = tr->arena_T = 0;
}

void bmojo_trainer_free(bmojo_trainer *tr)
{
    if (!tr) return;
    pass_free(tr);
    for (int i = 0; tr->layers && i < tr->cfg.n_layers; i++)
        for (int k = 0; k < 2; k++) bm_release(tr->layers[i].derived[k]);
    free(tr->layers);
    bm_params_free(&tr->params);
    bm_config_free(&tr->cfg);
    free(tr);
}

int bmojo_trainer_zero_grad(bmojo_trainer *tr)
{
    if (!tr) return bm_fail(BMOJO_EINVAL, "bmojo_trainer_zero_grad: NULL trainer");
    return bm_params_zero_grads(&tr->params, tr->rt);
}

int bmojo_trainer_tensor_count(const bmojo_trainer *tr)
{
    return tr ? tr->params.n : 0;
}

int bmojo_trainer_tensor(const bmojo_trainer *tr, int k, bmojo_tensor_info *info)
{
    if (!tr || !info || k < 0 || k >= tr->params.n)
        return bm_fail(BMOJO_EINVAL, "bmojo_trainer_tensor: no tensor %d", k);
    const bm_param *p = &tr->params.p[k];
    info->name = p->name;
    info->ndim = p->ndim;
    for (int i = 0; i < 3; i++) info->shape[i] = p->shape[i];
    info->numel = p->numel;
    return 0;
}

int bmojo_trainer_read_grad(bmojo_trainer *tr, int k, float *dst)
{
    if (!tr || !dst || k < 0 || k >= tr->params.n)
        return bm_fail(BMOJO_EINVAL, "bmojo_trainer_read_grad: no tensor %d", k);
    const bm_param *p = &tr->params.p[k];
    return bm_download(tr->rt, tr->params.grads, p->offset, dst, p->numel * sizeof(float));
}

int bmojo_trainer_save(bmojo_trainer *tr, const char *dir)
{
    if (!tr || !dir || !*dir) return bm_fail(BMOJO_EINVAL, "bmojo_trainer_save: no folder given");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return bm_fail(BMOJO_EIO, "cannot create the model folder %s: %s", dir, strerror(errno));
    char *yaml = NULL, path[4096];
    int st = bm_config_write_yaml(&tr->cfg, &yaml);
    if (!st) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = bm_params_save(&tr->params, tr->rt, path);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/config.yaml", dir);
        st = bm_write_file_atomic(path, yaml, strlen(yaml), 0644);
    }
    free(yaml);
    return st ? bm_fail_context(st, "saving the model to %s", dir) : 0;
}

/* ---- the pass ---- */

/* Takes every buffer of a pass of B x T (planning or for real: the same takes in the same order). */
static int take_all(bm_trainer *tr)
{
    bm_config *c = &tr->cfg;
    bm_arena *a = &tr->arena;
    size_t N = tr->N, d = (size_t)c->d_model, V = (size_t)c->vocab_size;
    int st = bm_arena_take(a, N * 4, &tr->ids);
    if (!st) st = bm_arena_take(a, N * 4, &tr->targets);
    if (!st) st = bm_arena_take(a, N * 4, &tr->order);
    if (!st) st = bm_arena_take(a, (V + 1) * 4, &tr->start);
    for (int i = 0; st == 0 && i <= c->n_layers; i++) st = bm_arena_floats(a, N * d, &tr->x[i]);
    if (!st) st = bm_arena_floats(a, N * d, &tr->h);
    if (!st) st = bm_arena_floats(a, N * d, &tr->dx);
    if (!st) st = bm_arena_floats(a, N * d, &tr->dh);
    if (!st) st = bm_arena_floats(a, tr->head_rows * V, &tr->logits);
    if (!st) st = bm_arena_floats(a, N, &tr->row_loss);
    if (!st) st = bm_arena_take(a, N * 4, &tr->row_hit);
    if (!st) st = bm_arena_take(a, tr->head_rows * 4, &tr->chunk_targets);
    if (!st) st = bm_arena_floats(a, tr->head_rows, &tr->chunk_loss);
    if (!st) st = bm_arena_take(a, tr->head_rows * 4, &tr->chunk_hit);
    if (!st) st = bm_arena_take(a, N * 4, &tr->head_idx);
    if (!st) st = bm_arena_take(a, N * 4, &tr->head_targets);
    if (!st) st = bm_arena_take(a, N * 4, &tr->head_order);
    if (!st) st = bm_arena_take(a, (N + 1) * 4, &tr->head_start);
    if (!st) st = bm_arena_floats(a, N * d, &tr->head_h);
    if (!st) st = bm_arena_floats(a, N * d, &tr->head_dh);
    for (int i = 0; st == 0 && i < c->n_layers; i++) {
        bm_train_layer *l = &tr->layers[i];
        st = l->kind->reserve(tr, i, l);
        if (st) st = bm_fail_context(st, "layers[%d] (%s)", i, bm_layer_type_name(c->layers[i].type));
    }
    for (int k = 0; st == 0 && k < BM_TRAIN_TEMPS; k++)
        if (tr->temp_floats[k]) st = bm_arena_floats(a, tr->temp_floats[k], &tr->temp[k]);
    return st;
}

static int pass_prepare(bm_trainer *tr, int B, int T)
{
    if (tr->arena_B == B && tr->arena_T == T) return 0;
    pass_free(tr);
    bm_config *c = &tr->cfg;
    tr->B = B;
    tr->T = T;
    tr->N = (size_t)B * (size_t)T;
    size_t V = (size_t)c->vocab_size;
    size_t rows = BM_TRAIN_HEAD_CHUNK_BYTES / (V * 4);
    tr->head_rows = rows < 1 ? 1 : rows > tr->N ? tr->N : rows;
    tr->x = calloc((size_t)c->n_layers + 1, sizeof *tr->x);
    if (!tr->x) return bm_fail(BMOJO_ENOMEM, "out of host memory");
    memset(tr->temp_floats, 0, sizeof tr->temp_floats);
    memset(tr->temp, 0, sizeof tr->temp);
    bm_arena_plan(&tr->arena, tr->rt);
    int st = take_all(tr);
    if (!st) {
        uint64_t have = 2 * (uint64_t)tr->params.bytes;
        char what[96];
        snprintf(what, sizeof what, "a training pass of %d x %d tokens", B, T);
        st = bm_mem_check(tr->rt, what, have + tr->arena.total, tr->arena.total, (uint64_t)tr->N * 12);
    }
    if (!st) st = bm_arena_alloc(&tr->arena);
    if (!st) st = take_all(tr);
    if (st) {
        pass_free(tr);
        return st;
    }
    tr->arena_B = B;
    tr->arena_T = T;
    return 0;
}

static int check_batch(const bm_trainer *tr, const int32_t *ids, const int32_t *targets, int B, int T, size_t *scored)
{
    int V = tr->cfg.vocab_size;
    if (B < 1 || T < 1 || (int64_t)B * T > BM_TRAIN_MAX_ROWS)
        return bm_fail(BMOJO_EINVAL, "a batch of %d x %d tokens: each must be >= 1 and B * T <= %d", B, T,
                       BM_TRAIN_MAX_ROWS);
    size_t n = 0;
    for (size_t r = 0; r < (size_t)B * (size_t)T; r++) {
        if (ids[r] < 0 || ids[r] >= V)
            return bm_fail(BMOJO_ERANGE, "input_ids[%zu, %zu] = %d is outside the vocabulary [0, %d)", r / (size_t)T,
                           r % (size_t)T, ids[r], V);
        if (targets[r] < -1 || targets[r] >= V)
            return bm_fail(BMOJO_ERANGE, "targets[%zu, %zu] = %d is neither -1 (no loss) nor in the vocabulary [0, %d)",
                           r / (size_t)T, r % (size_t)T, targets[r], V);
        n += targets[r] >= 0;
    }
    if (n == 0) return bm_fail(BMOJO_EINVAL, "the batch has no target >= 0: nothing to score");
    *scored = n;
    return 0;
}

/* Final norm, head and cross-entropy in chunks of rows; with `backward`, leaves dL/dx of the last
 * stream in tr->dx and the head's gradients accumulated. S < N (compact): only the S scored rows,
 * whose indices and targets the caller uploaded to head_idx / head_targets (and the scatter's
 * head_order / head_start), go through the head: an unscored row has no loss and a zero gradient,
 * so skipping it changes nothing but the cost (MQAR scores a few positions of each sequence).
 * row_loss / row_hit then hold the S scored rows in order. */
static int loss_and_head(bm_trainer *tr, float scale, int backward, size_t S)
{
    bm_rt *rt = tr->rt;
    bm_config *c = &tr->cfg;
    size_t N = tr->N, d = (size_t)c->d_model, V = (size_t)c->vocab_size, R = tr->head_rows;
    bm_param *head = &tr->params.p[tr->p_head], *nf = &tr->params.p[tr->p_norm_f];
    cl_mem xl = tr->x[c->n_layers];
    const int compact = S < N;
    const size_t rows = compact ? S : N;
    cl_mem hsrc = compact ? tr->head_h : tr->h, dhdst = compact ? tr->head_dh : tr->dh;
    cl_mem targets = compact ? tr->head_targets : tr->targets;
    int st = bm_op_rmsnorm(rt, xl, d, 0, nf->value, tr->h, d, 0, (int)N, (int)d, c->norm_eps);
    if (!st && compact) st = bm_op_embed(rt, tr->head_idx, bm_wf32(tr->h), tr->head_h, (int)S, (int)d); /* gather */
    for (size_t r0 = 0; st == 0 && r0 < rows; r0 += R) {
        size_t n = rows - r0 < R ? rows - r0 : R;
        /* the launcher takes whole buffers: a chunk after the first goes through copies */
        cl_mem tg = r0 ? tr->chunk_targets : targets, ls = r0 ? tr->chunk_loss : tr->row_loss;
        cl_mem hit = r0 ? tr->chunk_hit : tr->row_hit;
        if (r0) st = bm_copy(rt, targets, r0 * 4, tg, 0, n * 4);
        if (!st) st = bm_gemm(rt, n, V, d, hsrc, r0 * d, d, bm_wf32(head->value), 0, d, 0.0f, tr->logits, 0, V);
        if (!st) st = bm_op_xent_backward(rt, tr->logits, V, (int)V, tg, scale, ls, hit, (int)n);
        if (!st && r0) st = bm_copy(rt, ls, 0, tr->row_loss, r0 * 4, n * 4);
        if (!st && r0) st = bm_copy(rt, hit, 0, tr->row_hit, r0 * 4, n * 4);
        if (!backward) continue;
        /* dhf rows = dlogits W; gW += dlogits^T hf */
        rt->profile.phase = "backward";
        if (!st) st = bm_gemm_ex(rt, 0, 0, n, d, V, tr->logits, 0, V, head->value, 0, d, 0.0f, dhdst, r0 * d, d);
        if (!st) st = bm_gemm_ex(rt, 1, 0, V, d, n, tr->logits, 0, V, hsrc, r0 * d, d, 1.0f, head->grad, 0, d);
        rt->profile.phase = "forward";
    }
    rt->profile.phase = "backward";
    if (!st && backward && compact) { /* dh: zero but the scored rows (a scatter of distinct rows) */
        st = bm_fill_zero(rt, tr->dh, 0, N * d * 4);
        if (!st) st = bm_op_embed_backward(rt, tr->head_order, tr->head_start, tr->head_dh, tr->dh, (int)S, (int)d, (int)N);
    }
    if (!st && backward)
        st = bm_op_rmsnorm_backward(rt, xl, d, 0, nf->value, tr->dh, d, 0, 0.0f, tr->dx, d, 0, nf->grad, (int)N, (int)d,
                                    c->norm_eps);
    return st ? bm_fail_context(st, "output head and loss") : 0;
}

int bm_trainer_pass(bm_trainer *tr, const int32_t *ids, const int32_t *targets, int B, int T, int backward,
                    double grad_scale, bm_train_stats *out, int32_t *hits)
{
    if (!tr || !ids || !targets || !out) return bm_fail(BMOJO_EINVAL, "bmojo_trainer: NULL argument");
    size_t scored = 0;
    int st = check_batch(tr, ids, targets, B, T, &scored);
    if (st) return st;
    if (!(grad_scale >= 0.0) || !isfinite(grad_scale))
        return bm_fail(BMOJO_EINVAL, "bmojo_trainer: gradient scale %g is not a finite number >= 0", grad_scale);
    if (grad_scale == 0.0) grad_scale = 1.0 / (double)scored;
    st = pass_prepare(tr, B, T);
    if (st) return st;
    bm_rt *rt = tr->rt;
    bm_config *c = &tr->cfg;
    size_t N = tr->N, d = (size_t)c->d_model, V = (size_t)c->vocab_size;
    /* the head runs only the scored rows when some are not (S < N; BMOJO_COMPACT_HEAD=0: all) */
    const size_t S = rt->compact_head ? scored : N;
    int32_t *order = malloc(N * 4), *start = malloc(((V > N ? V : N) + 1) * 4);
    float *row_loss = malloc(N * 4);
    int32_t *row_hit = hits ? hits : malloc(N * 4), *idx = malloc(N * 4), *head_tg = malloc(N * 4);
    if (!order || !start || !row_loss || !row_hit || !idx || !head_tg) {
        free(order);
        free(start);
        free(row_loss);
        free(idx);
        free(head_tg);
        if (!hits) free(row_hit);
        return bm_fail(BMOJO_ENOMEM, "out of host memory");
    }
    bm_embed_rows_by_id(ids, (int)N, (int)V, order, start);
    st = bm_upload(rt, tr->ids, 0, ids, N * 4);
    if (!st) st = bm_upload(rt, tr->targets, 0, targets, N * 4);
    if (!st) st = bm_upload(rt, tr->order, 0, order, N * 4);
    if (!st) st = bm_upload(rt, tr->start, 0, start, (V + 1) * 4);
    if (!st && S < N) {
        size_t k = 0;
        for (size_t r = 0; r < N; r++)
            if (targets[r] >= 0) idx[k] = (int32_t)r, head_tg[k++] = targets[r];
        st = bm_upload(rt, tr->head_idx, 0, idx, S * 4);
        if (!st) st = bm_upload(rt, tr->head_targets, 0, head_tg, S * 4);
        /* the scatter of the S rows' gradients into dh [N, d]: row idx[k] takes row k (distinct) */
        bm_embed_rows_by_id(idx, (int)S, (int)N, order, start);
        if (!st) st = bm_upload(rt, tr->head_order, 0, order, S * 4);
        if (!st) st = bm_upload(rt, tr->head_start, 0, start, (N + 1) * 4);
    }
    bm_param *P = tr->params.p;
    tr->rt->profile.phase = "forward";
    for (int i = 0; st == 0 && i < c->n_layers; i++)
        if (tr->layers[i].kind->derive) st = tr->layers[i].kind->derive(tr, i, &tr->layers[i]);
    if (!st) st = bm_op_embed(rt, tr->ids, bm_wf32(P[tr->p_embed].value), tr->x[0], (int)N, (int)d);
    for (int i = 0; st == 0 && i < c->n_layers; i++) {
        bm_train_layer *l = &tr->layers[i];
        st = bm_op_rmsnorm(rt, tr->x[i], d, 0, P[l->p_norm].value, tr->h, d, 0, (int)N, (int)d, c->norm_eps);
        if (!st) st = bm_copy(rt, tr->x[i], 0, tr->x[i + 1], 0, N * d * 4);
        if (!st) st = l->kind->forward(tr, i, l, tr->h, tr->x[i + 1]);
        if (st) st = bm_fail_context(st, "forward of layers[%d] (%s)", i, bm_layer_type_name(c->layers[i].type));
    }
    if (!st) st = loss_and_head(tr, (float)grad_scale, backward, S);
    tr->rt->profile.phase = "backward";
    /* backward: tr->dx is dL/dx[i + 1]; the residual passes it through, the sublayer adds J^T dh */
    for (int i = c->n_layers - 1; st == 0 && backward && i >= 0; i--) {
        bm_train_layer *l = &tr->layers[i];
        st = bm_op_rmsnorm(rt, tr->x[i], d, 0, P[l->p_norm].value, tr->h, d, 0, (int)N, (int)d, c->norm_eps);
        if (!st) st = l->kind->backward(tr, i, l, tr->h, tr->dx, tr->dh);
        if (!st)
            st = bm_op_rmsnorm_backward(rt, tr->x[i], d, 0, P[l->p_norm].value, tr->dh, d, 0, 1.0f, tr->dx, d, 0,
                                        P[l->p_norm].grad, (int)N, (int)d, c->norm_eps);
        if (st) st = bm_fail_context(st, "backward of layers[%d] (%s)", i, bm_layer_type_name(c->layers[i].type));
    }
    if (!st && backward)
        st = bm_op_embed_backward(rt, tr->order, tr->start, tr->dx, P[tr->p_embed].grad, (int)N, (int)d, (int)V);
    tr->rt->profile.phase = NULL;
    if (!st) st = bm_download(rt, tr->row_loss, 0, row_loss, S * 4);
    if (!st) st = bm_download(rt, tr->row_hit, 0, row_hit, S * 4);
    if (!st && S < N) { /* back to rows: the scored ones from the front (idx[k] >= k: last first), the rest 0 */
        for (size_t k = S; k-- > 0;) row_loss[idx[k]] = row_loss[k], row_hit[idx[k]] = row_hit[k];
        for (size_t r = 0; r < N; r++)
            if (targets[r] < 0) row_loss[r] = 0.0f, row_hit[r] = 0;
    }
    if (!st) {
        /* rows in order, in double: the same sum whatever the device */
        bm_train_stats s = {0.0, scored, 0};
        for (size_t r = 0; r < N; r++) {
            s.loss_sum += row_loss[r];
            s.correct += targets[r] >= 0 && row_hit[r];
        }
        *out = s;
    } else
        bm_finish(rt);
    free(order);
    free(start);
    free(row_loss);
    free(idx);
    free(head_tg);
    if (!hits) free(row_hit);
    return st;
}

static int mean_loss(bm_trainer *tr, const int32_t *ids, const int32_t *targets, int B, int T, int backward,
                     double *loss)
{
    if (!loss) return bm_fail(BMOJO_EINVAL, "bmojo_trainer: NULL argument");
    bm_train_stats s;
    int st = bm_trainer_pass(tr, ids, targets, B, T, backward, 0.0, &s, NULL);
    if (!st) *loss = s.loss_sum / (double)s.scored;
    return st;
}

int bmojo_trainer_grad(bmojo_trainer *tr, const int32_t *ids, const int32_t *targets, int B, int T, double *loss)
{
    return mean_loss(tr, ids, targets, B, T, 1, loss);
}

int bmojo_trainer_loss(bmojo_trainer *tr, const int32_t *ids, const int32_t *targets, int B, int T, double *loss)
{
    return mean_loss(tr, ids, targets, B, T, 0, loss);
}
