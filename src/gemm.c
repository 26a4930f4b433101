/* gemm.c — placeholder, being written. */
