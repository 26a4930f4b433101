/* attention_split.h — attention with an explicit number of key splits (op_attention.c), for
 * tests that must exercise the split-over-keys path on any device. bm_op_attention picks the
 * split count itself (nsplit = 0 here). */
#ifndef BM_ATTENTION_SPLIT_H
#define BM_ATTENTION_SPLIT_H

#include "ops.h"

/* As bm_op_attention, with nsplit key splits per tile (0: automatic; 1: no split; at most 64). */
int bm_op_attention_nsplit(bm_rt *rt, const bm_attn_args *a, int nsplit);

#endif
