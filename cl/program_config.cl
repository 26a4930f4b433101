/* program_config.cl — the compile-time tunables a launcher must size its launches by (tile
 * sizes, steps per tile), read back once when the runtime is created (src/runtime.c), so that a -D
 * override through BMOJO_CL_DEFINES needs no matching host change and no forward pass ever waits
 * on a read for them. out: BM_PROGRAM_CONFIG_INTS ints, in the order of src/runtime.h's
 * BM_CFG_* indices. Last in the program: every tunable it reports is defined above it. */
__kernel void bm_program_config(__global int *out)
{
    if (get_global_id(0) != 0) return;
    out[0] = BM_GEMM_BM;
    out[1] = BM_GEMM_BN;
    out[2] = BM_GEMM_BK;
    out[3] = BM_GEMM_TM;
    out[4] = BM_GEMM_TN;
    out[5] = BM_GEMM_S_BM;
    out[6] = BM_GEMM_S_BN;
    out[7] = BM_GEMM_S_BK;
    out[8] = BM_GEMM_S_TM;
    out[9] = BM_GEMM_S_TN;
    out[10] = BM_SCANL_SPL;
    out[11] = BM_SCANL_TT;
    out[12] = BM_GEMV4_NB;
    out[13] = BM_GEMMC_MB;
    out[14] = BM_GEMMC_NB;
}
