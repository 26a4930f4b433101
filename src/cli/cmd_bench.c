/* cmd_bench.c — `bmojo bench`: written with issue 4. */
#include "cli.h"
int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_usage_error("bench: not available yet");
}
