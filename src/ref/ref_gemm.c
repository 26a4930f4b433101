/* ref_gemm.c — placeholder, being written. */
