/* test_embed.c — placeholder: fails until written. */
#include "op_test.h"
void test_op_embed(bm_test_ctx *t) { bm_test_true(t, 0, "embed: op test not written yet"); }
