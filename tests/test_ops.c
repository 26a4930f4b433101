/* test_ops.c — every OpenCL op against its plain-C reference, on every OpenCL device present
 * (in the style of ggml's test-backend-ops). Usage: test_ops [-v] [op-name-substring]. Exits
 * non-zero if any check fails or if no device could be opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_test.h"

typedef struct {
    const char *name;
    void (*fn)(bm_test_ctx *);
} op_group;

static const op_group groups[] = {
    {"embed", test_op_embed},     {"rmsnorm", test_op_rmsnorm},     {"elementwise", test_op_elementwise},
    {"conv1d", test_op_conv1d},   {"scan", test_op_scan},           {"rope", test_op_rope},
    {"attention", test_op_attention}, {"gemm", test_op_gemm},       {"gemv", test_op_gemv},       {"bmojo", test_op_bmojo},
    {"embed_backward", test_op_embed_backward}, {"rmsnorm_backward", test_op_rmsnorm_backward},
    {"elementwise_backward", test_op_elementwise_backward}, {"xent", test_op_xent},
    {"attention_backward", test_op_attention_backward},
    {"conv1d_backward", test_op_conv1d_backward},
    {"rope_backward", test_op_rope_backward},
    {"bmojo_backward", test_op_bmojo_backward},
    {"gemm_tt", test_op_gemm_tt},
    {"scan_backward", test_op_scan_backward},
    {"optim", test_op_optim},
    {"fill", test_op_fill},
    {"convert", test_op_convert},
};

int main(int argc, char **argv)
{
    int verbose = 0;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = 1;
        else filter = argv[i];
    }
    bmojo_device_desc devs[64];
    int ndev = 0;
    int st = bmojo_devices_list(devs, 64, &ndev);
    if (st != 0 || ndev == 0) {
        fprintf(stderr, "test_ops: no OpenCL device: %s (%s)\n", bmojo_strerror(st), bmojo_last_error());
        return 1;
    }
    int total_pass = 0, total_fail = 0;
    for (int d = 0; d < ndev && d < 64; d++) {
        char spec[32];
        snprintf(spec, sizeof spec, "%d:%d", devs[d].platform_index, devs[d].device_index);
        bmojo_runtime *rt = NULL;
        st = bmojo_runtime_create(spec, &rt);
        if (st != 0) {
            printf("FAIL  device %s (%s): %s (%s)\n", spec, devs[d].name, bmojo_strerror(st), bmojo_last_error());
            total_fail++;
            continue;
        }
        printf("device %s: %s (%s)\n", spec, devs[d].name, devs[d].platform_name);
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
            if (filter && !strstr(groups[g].name, filter)) continue;
            bm_test_ctx t = {.rt = rt, .rng = 0x9E3779B97F4A7C15ull + g, .verbose = verbose};
            groups[g].fn(&t);
            /* every op releases the scratch it takes, on success and on error alike */
            char what[96];
            snprintf(what, sizeof what, "%s: scratch stack empty after the group", groups[g].name);
            bm_test_true(&t, bm_scratch_depth(rt) == 0, what);
            printf("  %-12s %d passed, %d failed\n", groups[g].name, t.passed, t.failed);
            total_pass += t.passed;
            total_fail += t.failed;
        }
        bmojo_runtime_free(rt);
    }
    long live = bm_live_buffers();
    if (live != 0) {
        printf("FAIL  %ld device buffers were never released\n", live);
        total_fail++;
    } else
        total_pass++;
    printf("%d passed, %d failed\n", total_pass, total_fail);
    return total_fail == 0 && total_pass > 0 ? 0 : 1;
}
