/* test_bmojo.c — placeholder: fails until written. */
#include "op_test.h"
void test_op_bmojo(bm_test_ctx *t) { bm_test_true(t, 0, "bmojo: op test not written yet"); }
