/* batch_file.c — reading and checking the batch file of `bmojo grad` (see batch_file.h). */
#include "batch_file.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

static void shape_str(const bm_st_tensor *t, char *buf, size_t n)
{
    if (t->ndim == 1) snprintf(buf, n, "[%lld]", (long long)t->shape[0]);
    else snprintf(buf, n, "[%lld, %lld]", (long long)t->shape[0], (long long)t->shape[1]);
}

int cli_batch_open(const char *path, cli_batch_file *out)
{
    memset(out, 0, sizeof *out);
    int st = cli_ids_open(path, &out->ids);
    if (st) return st;
    const bm_st_tensor *t = bm_st_find(&out->ids.f, "targets"), *ids = out->ids.t;
    if (!t) st = bm_fail(BMOJO_EFORMAT, "%s has no tensor named targets", path);
    else if (t->dtype != BM_DT_I32 && t->dtype != BM_DT_I64)
        st = bm_fail(BMOJO_EFORMAT, "%s: targets has dtype %s, expected I32 or I64", path, bm_dtype_name(t->dtype));
    else {
        int same = t->ndim == ids->ndim;
        for (int k = 0; same && k < t->ndim; k++) same = t->shape[k] == ids->shape[k];
        char ts[64] = "a different rank", is[64];
        if (t->ndim == 1 || t->ndim == 2) shape_str(t, ts, sizeof ts);
        shape_str(ids, is, sizeof is);
        if (!same) st = bm_fail(BMOJO_EFORMAT, "%s: targets has shape %s, input_ids %s: they must agree", path, ts, is);
    }
    if (st) {
        cli_ids_close(&out->ids);
        return st;
    }
    out->targets = t;
    return 0;
}

int cli_batch_read(const cli_batch_file *b, int64_t vocab, int32_t *ids, int32_t *targets)
{
    int st = cli_ids_read(&b->ids, vocab, ids);
    if (st) return st;
    const bm_st_tensor *t = b->targets;
    const uint8_t *p = bm_st_data(&b->ids.f, t);
    const size_t T = (size_t)b->ids.T, n = (size_t)b->ids.B * T;
    size_t scored = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        if (t->dtype == BM_DT_I32) {
            int32_t v32;
            memcpy(&v32, p + 4 * i, 4);
            v = v32;
        } else
            memcpy(&v, p + 8 * i, 8);
        if (v < -1 || v >= vocab)
            return bm_fail(BMOJO_ERANGE, "%s: target %lld at [%zu, %zu] is neither -1 (no loss) nor in the vocabulary "
                           "[0, %lld)", b->ids.f.path, (long long)v, i / T, i % T, (long long)vocab);
        targets[i] = (int32_t)v;
        scored += v >= 0;
    }
    if (scored == 0) return bm_fail(BMOJO_EINVAL, "%s: every target is -1: the batch scores nothing", b->ids.f.path);
    return 0;
}

void cli_batch_close(cli_batch_file *b)
{
    cli_ids_close(&b->ids);
    b->targets = NULL;
}
