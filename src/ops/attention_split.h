/* attention_split.h — attention launcher internals shared with tests and with the B'MOJO
 * launcher (op_bmojo.c): attention with an explicit number of key splits and kernel variant
 * (tests exercise the split-over-keys path and both kernels on any device), and the tile plan
 * of the register-tiled attention kernels (cl/attention.cl, cl/bmojo_attention.cl). */
#ifndef BM_ATTENTION_SPLIT_H
#define BM_ATTENTION_SPLIT_H

#include "ops.h"

/* Kernel variants of bm_op_attention_variant. */
enum {
    BM_ATTN_AUTO = 0,   /* the launcher's choice (what bm_op_attention does) */
    BM_ATTN_TILED = 1,  /* register-tiled prefill kernel (EUNSUPPORTED where it does not fit) */
    BM_ATTN_GENERIC = 2, /* per-element kernel: any dh, best for few rows (decoding) */
    BM_ATTN_CPU = 3      /* cl/attention_cpu.cl: a query block and head per work-item (CPUs' choice;
                            dh <= 256, key splits ignored) */
};

/* As bm_op_attention, with nsplit key splits per tile (0: automatic; 1: no split; at most 64). */
int bm_op_attention_nsplit(bm_rt *rt, const bm_attn_args *a, int nsplit);

/* As bm_op_attention_nsplit, with a forced kernel variant (BM_ATTN_*). */
int bm_op_attention_variant(bm_rt *rt, const bm_attn_args *a, int nsplit, int variant);

/* Launch plan of a register-tiled attention kernel <prefix>2 (dh <= 64) or <prefix>4
 * (dh <= 128): work-group size L = 8 * NY, BR = BM_ATT_TR * NY query rows and BK keys per
 * tile, and the byte sizes of its four __local arrays (Q, K/P, V, row exchange). */
typedef struct {
    cl_kernel kernel;
    char name[48];      /* "<prefix>2" or "<prefix>4" */
    size_t L;
    int BR, BK;
    size_t local_q, local_kp, local_v, local_red;
} bm_attn_tiled_plan;

/* Fills *p for head dim dh with at most max_br rows per work-group (the rows there are); returns
 * 1 when the tiled kernel suits (dh <= 128, at least 32 rows per work-group fit the device's
 * local memory and work-group limits, or fewer when max_br is smaller), 0 when the caller should
 * use its generic kernel, negative status when the kernel is missing. */
int bm_attn_tiled_choose(bm_rt *rt, const char *prefix, int dh, long max_br, bm_attn_tiled_plan *p);

#endif
