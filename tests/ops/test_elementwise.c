/* test_elementwise.c — placeholder: fails until written. */
#include "op_test.h"
void test_op_elementwise(bm_test_ctx *t) { bm_test_true(t, 0, "elementwise: op test not written yet"); }
