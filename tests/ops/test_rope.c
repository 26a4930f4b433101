/* test_rope.c — placeholder: fails until written. */
#include "op_test.h"
void test_op_rope(bm_test_ctx *t) { bm_test_true(t, 0, "rope: op test not written yet"); }
