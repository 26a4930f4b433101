/* op_test.h — the harness shared by the op tests (tests/ops/test_*.c): random inputs, device
 * buffers, and comparison against the C reference, counted per check. */
#ifndef BM_OP_TEST_H
#define BM_OP_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

typedef struct {
    bm_rt *rt;
    uint64_t rng;     /* xorshift state */
    int passed, failed;
    int verbose;
} bm_test_ctx;

/* Uniform floats in [lo, hi). */
void bm_test_fill(bm_test_ctx *t, float *x, size_t n, float lo, float hi);
/* Uniform integer in [0, n). */
uint32_t bm_test_randint(bm_test_ctx *t, uint32_t n);
/* Device buffer holding a copy of host data (bytes). Aborts the test program on failure. */
cl_mem bm_test_buffer(bm_test_ctx *t, const void *host, size_t bytes);
/* A weight matrix of n values stored as `store` (the f16-W kernels' operand): f32, or x rounded to
 * f16 — x is overwritten with the rounded values, so the fp32 reference multiplies exactly what
 * the device holds. Aborts on failure. */
cl_mem bm_test_weights(bm_test_ctx *t, float *x, size_t n, bm_store store);
/* Downloads bytes of a buffer (blocking; aborts on failure). */
void bm_test_read(bm_test_ctx *t, cl_mem m, void *host, size_t bytes);
/* Host allocation that aborts on failure. */
void *bm_test_alloc(size_t bytes);

/* Compares got with want: passes when ||got - want|| <= tol * max(||want||, 1e-30) and every
 * element is finite. Prints one line: "ok|FAIL  <device> <what>  rel=<...> max_abs=<...>".
 * Returns 1 on pass. */
int bm_test_close(bm_test_ctx *t, const char *what, const float *got, const float *want, size_t n, double tol);
/* The same with the error measured against scale (e.g. the result of the same computation on the
 * inputs' magnitudes, an upper bound of every term): ||got - want|| / ||scale|| <= tol. For
 * results that sum terms of both signs, where cancellation can leave a value far below the terms
 * that fp32 rounding is relative to. */
int bm_test_close_scaled(bm_test_ctx *t, const char *what, const float *got, const float *want, const float *scale,
                         size_t n, double tol);
/* Counts a plain condition check with a message. */
int bm_test_true(bm_test_ctx *t, int cond, const char *what);
/* Checks an op's return status (prints bmojo_last_error on failure). */
int bm_test_status(bm_test_ctx *t, int status, const char *what);

/* One function per op group; each runs its cases on t->rt. */
void test_op_embed(bm_test_ctx *t);
void test_op_rmsnorm(bm_test_ctx *t);
void test_op_elementwise(bm_test_ctx *t);  /* add, bias_add, swiglu, copy */
void test_op_conv1d(bm_test_ctx *t);
void test_op_scan(bm_test_ctx *t);
void test_op_rope(bm_test_ctx *t);
void test_op_attention(bm_test_ctx *t);    /* attention and kv_append */
void test_op_attention_backward(bm_test_ctx *t);
void test_op_gemm(bm_test_ctx *t);
void test_op_gemv(bm_test_ctx *t);        /* skinny GEMM for decoding */
void test_op_bmojo(bm_test_ctx *t);        /* innovation, eidetic selection, bmojo attention */
void test_op_embed_backward(bm_test_ctx *t);
void test_op_rmsnorm_backward(bm_test_ctx *t);
void test_op_elementwise_backward(bm_test_ctx *t); /* swiglu, colsum, neg_exp and its backward */
void test_op_xent(bm_test_ctx *t);                 /* cross-entropy loss and gradient */
/* backward (training) ops, ops_backward.h */
void test_op_conv1d_backward(bm_test_ctx *t);
void test_op_rope_backward(bm_test_ctx *t);
void test_op_bmojo_backward(bm_test_ctx *t); /* eidetic sets, bmojo attention backward */

/* Backward (training) op groups. */
void test_op_gemm_tt(bm_test_ctx *t);      /* bm_gemm_ex: GEMM with transposed operands */
void test_op_fill(bm_test_ctx *t);         /* bm_fill_zero and bm_alloc's zero fill */
void test_op_convert(bm_test_ctx *t);      /* fp32 <-> f16 conversion of buffers */
void test_op_scan_backward(bm_test_ctx *t);
/* optimizer ops, ops_optim.h */
void test_op_optim(bm_test_ctx *t);        /* sum of squares, clip factor, AdamW */

#endif
