/* colsum.h — the fixed-order column reduction shared by the weight-gradient launchers
 * (op_elementwise_backward.c's bm_op_colsum, op_rmsnorm_backward.c's dw): rows are cut into
 * blocks, a first kernel writes one partial per (block, column), bm_colsum_reduce adds them in
 * block order, so the sums are deterministic without float atomics. */
#ifndef BM_OPS_COLSUM_H
#define BM_OPS_COLSUM_H

#include "runtime.h"

/* Blocks of rows for `rows` rows; *rows_per_block receives the block size. */
int bm_colsum_blocks(int rows, int *rows_per_block);
/* Enqueues out[j] += sum_{b < blocks} part[b * cols + j] (b in increasing order), j < cols. */
int bm_colsum_reduce_launch(bm_rt *rt, cl_mem part, cl_mem out, int blocks, int cols);

#endif
