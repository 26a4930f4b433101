/* test_scan.c — placeholder: fails until written. */
#include "op_test.h"
void test_op_scan(bm_test_ctx *t) { bm_test_true(t, 0, "scan: op test not written yet"); }
