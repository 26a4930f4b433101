/* ids_file.c — reading and checking the token ids file of `bmojo logits` (see ids_file.h). */
#include "ids_file.h"

#include <string.h>

#include "error.h"

int cli_ids_open(const char *path, cli_ids_file *out)
{
    memset(out, 0, sizeof *out);
    int st = bm_st_open(path, &out->f);
    if (st) return st;
    const bm_st_tensor *t = bm_st_find(&out->f, "input_ids");
    if (!t) st = bm_fail(BMOJO_EFORMAT, "%s has no tensor named input_ids", path);
    else if (t->dtype != BM_DT_I32 && t->dtype != BM_DT_I64)
        st = bm_fail(BMOJO_EFORMAT, "%s: input_ids has dtype %s, expected I32 or I64", path, bm_dtype_name(t->dtype));
    else if (t->ndim != 1 && t->ndim != 2)
        st = bm_fail(BMOJO_EFORMAT, "%s: input_ids has %d dimensions, expected [T] or [B, T]", path, t->ndim);
    else if (t->nelem == 0)
        st = bm_fail(BMOJO_EFORMAT, "%s: input_ids is empty (a dimension is 0)", path);
    else if (t->shape[t->ndim - 1] > CLI_IDS_MAX_T)
        st = bm_fail(BMOJO_ERANGE, "%s: input_ids has %lld tokens per sequence, more than the limit of %d", path,
                     (long long)t->shape[t->ndim - 1], CLI_IDS_MAX_T);
    else if (t->ndim == 2 && t->shape[0] > CLI_IDS_MAX_B)
        st = bm_fail(BMOJO_ERANGE, "%s: input_ids has %lld sequences, more than the limit of %d", path,
                     (long long)t->shape[0], CLI_IDS_MAX_B);
    if (st) {
        bm_st_close(&out->f);
        return st;
    }
    out->t = t;
    out->ndim = t->ndim;
    out->T = (int)t->shape[t->ndim - 1];
    out->B = t->ndim == 2 ? (int)t->shape[0] : 1;
    return 0;
}

int cli_ids_read(const cli_ids_file *x, int64_t vocab, int32_t *out)
{
    const bm_st_tensor *t = x->t;
    const uint8_t *p = bm_st_data(&x->f, t);
    const size_t n = (size_t)x->B * (size_t)x->T;
    for (size_t i = 0; i < n; i++) {
        /* widened to int64 before the check, so an I64 id is reported as written, never truncated */
        int64_t v;
        if (t->dtype == BM_DT_I32) {
            int32_t v32;
            memcpy(&v32, p + 4 * i, 4);
            v = v32;
        } else
            memcpy(&v, p + 8 * i, 8);
        if (v < 0 || v >= vocab) {
            size_t b = i / (size_t)x->T, pos = i % (size_t)x->T;
            if (x->ndim == 2)
                return bm_fail(BMOJO_ERANGE, "%s: token id %lld at [%zu, %zu] is outside the vocabulary [0, %lld)",
                               x->f.path, (long long)v, b, pos, (long long)vocab);
            return bm_fail(BMOJO_ERANGE, "%s: token id %lld at [%zu] is outside the vocabulary [0, %lld)", x->f.path,
                           (long long)v, pos, (long long)vocab);
        }
        out[i] = (int32_t)v;
    }
    return 0;
}

void cli_ids_close(cli_ids_file *x)
{
    bm_st_close(&x->f);
    x->t = NULL;
}
