/* bench_ops.c — placeholder (bench helper) */
