/* ops_optim.h — host launchers of the optimizer kernels (cl/optim.cl): the global gradient norm,
 * the clip factor and the AdamW step over ranges of the parameter table's flat fp32 buffers
 * (params.h). Same conventions as ops.h: enqueued on rt->queue, never blocking, bmojo status
 * returned. Ranges are in floats from the start of each buffer. Plain-C references with the same
 * arguments on host arrays: ref/ref_optim.h. src/optim.c strings them into one step. */
#ifndef BM_OPS_OPTIM_H
#define BM_OPS_OPTIM_H

#include "optim_args.h"
#include "runtime.h"

/* out[out_index] = sum of x[offset + i]^2 for i < n (n == 0: 0), deterministic (per-group
 * compensated sums in a fixed order, then one work-group over the partials; cl/optim.cl says
 * why). The partials live in a scratch buffer (op_optim.c: sumsq_partials). x and out may be the
 * same buffer only when out_index is outside the range. */
int bm_op_sumsq(bm_rt *rt, cl_mem x, size_t offset_floats, size_t n, cl_mem out, size_t out_index);

/* From buf[sumsq_index]: buf[out_index] = norm = sqrt(sumsq), buf[out_index + 1] = the clip
 * scale min(1, max_norm / (norm + 1e-6)); max_norm <= 0 (no clipping): scale 1. */
int bm_op_clip_scale(bm_rt *rt, cl_mem buf, size_t sumsq_index, size_t out_index, float max_norm);

/* One AdamW step (PyTorch's torch.optim.AdamW, foreach=False, no amsgrad, no maximize) on
 * elements [offset, offset + n) of param, grad, m and v (same layout), with each gradient first
 * multiplied by clip[scale_index]. weight_decay 0: no decay. a->t >= 1. */
int bm_op_adamw(bm_rt *rt, const bm_adamw_args *a, cl_mem param, cl_mem grad, cl_mem m, cl_mem v, cl_mem clip,
                size_t scale_index, size_t offset_floats, size_t n);

#endif
