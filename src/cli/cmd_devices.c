/* cmd_devices.c — `bmojo devices`: every OpenCL platform and device with memory and limits;
 * `--build-options` prints the kernel build options for the chosen device. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_devices(int argc, char **argv)
{
    int build_options = 0;
    const char *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--build-options")) build_options = 1;
        else if (!strcmp(argv[i], "--device")) {
            if (!(device = cli_value(argc, argv, &i)) || cli_check_device(device)) return CLI_USAGE;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: bmojo devices [--build-options] [--device SPEC]\n");
            return CLI_OK;
        } else
            return cli_usage_error("devices: unknown option '%s'", argv[i]);
    }
    if (build_options) {
        bmojo_runtime *rt = NULL;
        int st = cli_open_runtime(device, &rt);
        if (st) return cli_status_error(st, "opening the OpenCL device");
        printf("%s\n", bmojo_runtime_build_options(rt));
        bmojo_runtime_free(rt);
        return CLI_OK;
    }
    bmojo_device_desc d[64];
    int n = 0;
    int st = bmojo_devices_list(d, 64, &n);
    if (st) return cli_status_error(st, "listing OpenCL devices");
    int shown = n < 64 ? n : 64;
    for (int i = 0; i < shown; i++) {
        char g[32], a[32], l[32];
        if (i == 0 || d[i].platform_index != d[i - 1].platform_index)
            printf("platform %d: %s (%s)\n", d[i].platform_index, d[i].platform_name, d[i].platform_version);
        printf("  %d:%d  %s  [%s]\n", d[i].platform_index, d[i].device_index, d[i].name, d[i].is_gpu ? "GPU" : "CPU/other");
        printf("       vendor %s, driver %s, %s\n", d[i].vendor, d[i].driver_version, d[i].device_version);
        printf("       %u compute units at %u MHz, global memory %s (max alloc %s), local memory %s, "
               "max work-group %llu\n",
               d[i].compute_units, d[i].max_clock_mhz, cli_bytes(d[i].global_mem_bytes, g, sizeof g),
               cli_bytes(d[i].max_alloc_bytes, a, sizeof a), cli_bytes(d[i].local_mem_bytes, l, sizeof l),
               (unsigned long long)d[i].max_work_group_size);
    }
    if (n == 0) printf("no OpenCL devices\n");
    return CLI_OK;
}
