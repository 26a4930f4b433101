/* test_conv1d.c — placeholder: fails until written. */
#include "op_test.h"
void test_op_conv1d(bm_test_ctx *t) { bm_test_true(t, 0, "conv1d: op test not written yet"); }
