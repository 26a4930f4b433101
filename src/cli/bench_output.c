/* bench_output.c — placeholder (bench helper) */
