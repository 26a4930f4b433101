/* cmd_bench.c — placeholder */
