/* test_attention.c — placeholder: fails until written. */
#include "op_test.h"
void test_op_attention(bm_test_ctx *t) { bm_test_true(t, 0, "attention: op test not written yet"); }
