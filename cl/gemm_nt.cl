/* gemm_nt.cl — register-tiled SGEMM for the model's projections in their "NT" layout:
 * C[M,N] = A[M,K] W[N,K]^T + beta C (bm_gemm's contract; launcher src/ops/op_gemm_nt.c).
 *
 * Layout (row-major fp32, offsets in elements): A [M, lda] (activations, one token a row),
 * W [N, ldw] (the checkpoint's [out, in] weight; half in the _w16 kernels), C [M, ldc]. Both operands are contiguous along
 * K, so a tile of A [BM x BK] and one of W [BN x BK] are read along K: four consecutive work-items
 * read one 64-byte row piece (float4 loads when K, lda, ldw and both offsets are multiples of 4:
 * the *_v4 kernels; one float at a time otherwise: the *_s kernels). Tiles are stored into local
 * memory transposed, [BK][BM + 4], so that for a fixed k the inner loop reads float4 runs of M
 * (and N) values. Each work-item accumulates a TM x TN register block; its rows are the float4
 * groups ty*4 + i*(BM/TM)*4 (i < TM/4), its columns tx*4 + j*(BN/TN)*4 (j < TN/4): strided, not
 * adjacent, so the float4 reads of neighbouring items are consecutive in local memory (no bank
 * conflicts on 32-bank hardware; items of equal ty read the same A float4: a broadcast) and the
 * float4 stores of C by a warp cover contiguous 256-byte row pieces.
 * Local memory is double-buffered: tile t+1 is loaded from global memory into registers while
 * tile t is multiplied, then stored into the other buffer, so there is one barrier per BK step.
 * Edges: any M, N, K >= 1. Loads outside the matrix give zeros (a padded tile adds nothing),
 * stores are guarded; beta == 0 never reads C (it may hold NaN), else C = acc + beta*C.
 * Split-K: work-group dimension 2 takes a K range of k_len (a multiple of BK) and then writes its
 * partial sums (beta 0) to a slice of a scratch buffer; bm_gemm_nt_reduce adds the slices in
 * order (deterministic) and applies beta. Used for thin shapes with long K (x_proj: N = 80,
 * K = 1536 gives only 2 x M/64 work-groups for 132 compute units).
 *
 * Why these defaults (NVIDIA H200: 132 SMs, 4 warp schedulers each, 64K 32-bit registers and up
 * to 227 KB shared memory per SM): 128x128 tiles with 256 items of 8x8 need ~64 accumulators +
 * 16 operands + 16 prefetch registers (~128 registers with addresses), so two groups of 256
 * (16 warps, 4 per scheduler) fit in the register file of one SM; 2 x 16 x (132 + 132) floats
 * = 33 KB local memory per group. Per k step an item does 64 FMAs for 4 float4 local reads: the
 * ratio that keeps local-memory bandwidth from limiting. 128x128 is too coarse when M or N is
 * small (M = 512 and N = 768 make only 24 groups), hence the second ("thin") configuration:
 * 64x64 tiles, 4x4 per item, 256 items, BK 32 (34 KB); the launcher picks it for N <= 128 or
 * M <= 64 or when the big tiles make fewer than 2 groups per compute unit, and adds split-K when
 * even the thin tiles leave the device mostly idle and K is long.
 * Considered: one kernel with the tile sizes as run-time values (no register blocking: the
 * accumulators must be compile-time arrays); W transposed/padded first as CLBlast's indirect path
 * does (an extra pass over W on every call: what we want to avoid); adjacent TMxTN blocks per
 * item (2-way local-memory bank conflicts on float4 reads).
 * Measured on the H200 (NVIDIA OpenCL 3.0, driver 580.159.04): big tiles 38.8 TFLOP/s at 4096^3
 * (CLBlast 1.5.3: 30.7); 128x64 (8x4) 33.1, BK 8 35.9. bmojo-130m prefill of 512 tokens with the
 * thin tile varied: 64x64 4x4 BK 16 43.8k tokens/s, BK 32 45.5k, 8x4 per item 44.5k, 128x64 42.5k,
 * 64x128 42.3k, 32x64 39.2k; big tiles only 38.8k; no split-K 32.2k; CLBlast 30.9k.
 *
 * f16 weights (`--weights f16`): every kernel has a `_w16` form whose W holds IEEE halves, widened
 * to fp32 by vload_half4 / vload_half as the tile is loaded into registers (same alignment rule
 * for the v4 form: w_off and ldw multiples of 4); local memory, the inner loop and C stay fp32.
 * Not measured on a GPU yet (no device time in the session that added them): on the H200 the
 * big-tile kernel is compute-bound at the model's prefill shapes, so half the W bytes should
 * change little there; the point is the memory.
 *
 * Tunables (-D, e.g. through BMOJO_CL_DEFINES), each with a safe default:
 *   BM_GEMM_BM, BM_GEMM_BN   big tile (128, 128)     sweep 64/128 (x 64/128/256 for BN)
 *   BM_GEMM_BK               K per tile step (16)    sweep 8, 16, 32
 *   BM_GEMM_TM, BM_GEMM_TN   register block (8, 8)   sweep 4/8; items = (BM/TM)(BN/TN) <= max_wg
 *   BM_GEMM_S_BM, _S_BN, _S_BK, _S_TM, _S_TN  thin tile (64, 64, 32, 4, 4)
 * TM and TN must be multiples of 4, BM % TM == BN % TN == 0, BK a multiple of 4.
 */
#ifndef BM_GEMM_BM
#define BM_GEMM_BM 128
#endif
#ifndef BM_GEMM_BN
#define BM_GEMM_BN 128
#endif
#ifndef BM_GEMM_BK
#define BM_GEMM_BK 16
#endif
#ifndef BM_GEMM_TM
#define BM_GEMM_TM 8
#endif
#ifndef BM_GEMM_TN
#define BM_GEMM_TN 8
#endif
#ifndef BM_GEMM_S_BM
#define BM_GEMM_S_BM 64
#endif
#ifndef BM_GEMM_S_BN
#define BM_GEMM_S_BN 64
#endif
#ifndef BM_GEMM_S_BK
#define BM_GEMM_S_BK 32
#endif
#ifndef BM_GEMM_S_TM
#define BM_GEMM_S_TM 4
#endif
#ifndef BM_GEMM_S_TN
#define BM_GEMM_S_TN 4
#endif

#if BM_GEMM_TM % 4 || BM_GEMM_TN % 4 || BM_GEMM_BM % BM_GEMM_TM || BM_GEMM_BN % BM_GEMM_TN || BM_GEMM_BK % 4
#error "gemm_nt big tile: TM, TN and BK must be multiples of 4, BM a multiple of TM, BN of TN"
#endif
#if BM_GEMM_S_TM % 4 || BM_GEMM_S_TN % 4 || BM_GEMM_S_BM % BM_GEMM_S_TM || BM_GEMM_S_BN % BM_GEMM_S_TN || \
    BM_GEMM_S_BK % 4
#error "gemm_nt thin tile: TM, TN and BK must be multiples of 4, BM a multiple of TM, BN of TN"
#endif

/* Every loop below has a compile-time trip count and indexes register arrays: unless all are
 * unrolled, the accumulators go to (slow) private memory. Compilers' default unroll thresholds
 * are not enough for 8x8 blocks (clang-14 nvptx at -O3 kept acc[8][8] in a stack frame), hence
 * the explicit hint (the same `#pragma unroll` that attention.cl uses, through the C99 _Pragma
 * operator because it sits in a macro; -DBM_GEMM_NT_UNROLL= turns it off). */
#ifndef BM_GEMM_NT_UNROLL
#define BM_GEMM_NT_UNROLL _Pragma("unroll")
#endif

/* A float4 of a tile's operand: src is the operand at its offset (bytes), i4 counts float4s (the
 * v4 kernels' operands are 16-byte aligned for fp32, 8-byte for half); w16 as in common.cl. */
static inline float4 bm_gemm_nt_load4(__global const uchar *src, ulong i4, const int w16)
{
    return w16 ? vload_half4(i4, (__global const half *)src) : ((__global const float4 *)src)[i4];
}

/* One tile of a K-contiguous operand (rows row0.., k in [k0, k0 + BK)) into registers, zeros
 * outside rows < rows and k < k_end. Item lid takes the loads lid, lid + NT, ...; four (BK/4
 * float4s) consecutive loads cover one row piece, so a warp reads whole 32-byte sectors. */
#define BM_GEMM_NT_LOAD_V4(reg, COUNT, src, W16, ld4, row0, rows, k0, k_end, TILE_R, BK, NT, lid)           \
    BM_GEMM_NT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                                    \
        const int i_ = lid + p_ * NT, r_ = i_ / (BK / 4), k_ = k0 + 4 * (i_ % (BK / 4));                   \
        const int ok_ = i_ < TILE_R * BK / 4 && row0 + r_ < rows && k_ < k_end;                             \
        reg[p_] = ok_ ? bm_gemm_nt_load4(src, (ulong)(row0 + r_) * ld4 + (ulong)(k_ / 4), W16) : (float4)(0.0f); \
    }
#define BM_GEMM_NT_STORE_V4(reg, COUNT, dst, LD, TILE_R, BK, NT, lid)                                         \
    BM_GEMM_NT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                                    \
        const int i_ = lid + p_ * NT, r_ = i_ / (BK / 4), k_ = 4 * (i_ % (BK / 4));                        \
        if (i_ < TILE_R * BK / 4) {                                                                         \
            dst[(k_ + 0) * LD + r_] = reg[p_].x;                                                            \
            dst[(k_ + 1) * LD + r_] = reg[p_].y;                                                            \
            dst[(k_ + 2) * LD + r_] = reg[p_].z;                                                            \
            dst[(k_ + 3) * LD + r_] = reg[p_].w;                                                            \
        }                                                                                                   \
    }
/* The same one float at a time (any K, ld and offset): BK consecutive items per row piece. */
#define BM_GEMM_NT_LOAD_S(reg, COUNT, src, W16, ld, row0, rows, k0, k_end, TILE_R, BK, NT, lid)              \
    BM_GEMM_NT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                                    \
        const int i_ = lid + p_ * NT, r_ = i_ / BK, k_ = k0 + i_ % BK;                                     \
        const int ok_ = i_ < TILE_R * BK && row0 + r_ < rows && k_ < k_end;                                 \
        reg[p_] = ok_ ? bm_w_load(src, (ulong)(row0 + r_) * ld + (ulong)k_, W16) : 0.0f;                   \
    }
#define BM_GEMM_NT_STORE_S(reg, COUNT, dst, LD, TILE_R, BK, NT, lid)                                          \
    BM_GEMM_NT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                                    \
        const int i_ = lid + p_ * NT;                                                                       \
        if (i_ < TILE_R * BK) dst[(i_ % BK) * LD + i_ / BK] = reg[p_];                                      \
    }

/* The kernel, instantiated below for each tile configuration x load width (OpenCL C has no
 * templates, and the accumulator block must have compile-time bounds to live in registers).
 *   global (ceil(N/BN) * BN/TN, ceil(M/BM) * BM/TM, splits), local (BN/TN, BM/TM, 1)
 *   k_len: the K range of one split (a multiple of BK; >= K without split-K)
 *   c_split: element distance between the splits' partial outputs (0 without split-K)
 *   c_vec4: 1 when c_off, ldc and c_split are multiples of 4 (float4 stores of C)
 * VEC 1 requires K, lda, ldw, a_off and w_off to be multiples of 4. */
#define BM_GEMM_NT_KERNEL(NAME, BM, BN, BK, TM, TN, VEC, W16)                                                 \
    __kernel __attribute__((reqd_work_group_size((BN) / (TN), (BM) / (TM), 1))) void NAME(                   \
        const int M, const int N, const int K, const int k_len, __global const float *A, const ulong a_off,    \
        const ulong lda, __global const uchar *W, const ulong w_off, const ulong ldw, const float beta,         \
        __global float *C, const ulong c_off, const ulong ldc, const ulong c_split, const int c_vec4)          \
    {                                                                                                         \
        enum { NX = (BN) / (TN), NY = (BM) / (TM), NT = NX * NY, LA = (BM) + 4, LW = (BN) + 4 };               \
        /* loads per item and tile; the unused width's arrays get length 1 (its code is dead) */              \
        enum { A4_LOADS = VEC ? ((BM) * (BK) / 4 + NT - 1) / NT : 1, A1_LOADS = VEC ? 1 : ((BM) * (BK) + NT - 1) / NT }; \
        enum { W4_LOADS = VEC ? ((BN) * (BK) / 4 + NT - 1) / NT : 1, W1_LOADS = VEC ? 1 : ((BN) * (BK) + NT - 1) / NT }; \
        /* float4 arrays: 16-byte aligned for the inner loop's float4 reads; +4 keeps rows aligned */         \
        __local float4 a_tile4[2 * (BK) * LA / 4];                                                            \
        __local float4 w_tile4[2 * (BK) * LW / 4];                                                            \
        __local float *a_tile = (__local float *)a_tile4;                                                     \
        __local float *w_tile = (__local float *)w_tile4;                                                     \
        const int tx = (int)get_local_id(0), ty = (int)get_local_id(1), lid = ty * NX + tx;                   \
        const int n0 = (int)get_group_id(0) * (BN), m0 = (int)get_group_id(1) * (BM);                        \
        const int split = (int)get_group_id(2);                                                               \
        const int k_begin = split * k_len, k_end = min(K, k_begin + k_len);                                   \
        const int n_tiles = k_end > k_begin ? (k_end - k_begin + (BK) - 1) / (BK) : 0;                        \
        __global const uchar *As = (__global const uchar *)(A + a_off), *Ws = bm_w_at(W, w_off, W16);          \
        const ulong lda4 = lda / 4, ldw4 = ldw / 4;                                                           \
        float4 a_next4[A4_LOADS], w_next4[W4_LOADS];                                                          \
        float a_next[A1_LOADS], w_next[W1_LOADS];                                                             \
        float acc[TM][TN];                                                                                    \
        BM_GEMM_NT_UNROLL for (int i = 0; i < (TM); i++)                                                                        \
            BM_GEMM_NT_UNROLL for (int j = 0; j < (TN); j++) acc[i][j] = 0.0f;                                                  \
        if (n_tiles > 0) {                                                                                    \
            if (VEC) {                                                                                        \
                BM_GEMM_NT_LOAD_V4(a_next4, A4_LOADS, As, 0, lda4, m0, M, k_begin, k_end, (BM), (BK), NT, lid)             \
                BM_GEMM_NT_LOAD_V4(w_next4, W4_LOADS, Ws, W16, ldw4, n0, N, k_begin, k_end, (BN), (BK), NT, lid)             \
                BM_GEMM_NT_STORE_V4(a_next4, A4_LOADS, a_tile, LA, (BM), (BK), NT, lid)                                 \
                BM_GEMM_NT_STORE_V4(w_next4, W4_LOADS, w_tile, LW, (BN), (BK), NT, lid)                                 \
            } else {                                                                                          \
                BM_GEMM_NT_LOAD_S(a_next, A1_LOADS, As, 0, lda, m0, M, k_begin, k_end, (BM), (BK), NT, lid)                \
                BM_GEMM_NT_LOAD_S(w_next, W1_LOADS, Ws, W16, ldw, n0, N, k_begin, k_end, (BN), (BK), NT, lid)                \
                BM_GEMM_NT_STORE_S(a_next, A1_LOADS, a_tile, LA, (BM), (BK), NT, lid)                                   \
                BM_GEMM_NT_STORE_S(w_next, W1_LOADS, w_tile, LW, (BN), (BK), NT, lid)                                   \
            }                                                                                                 \
        }                                                                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                                         \
        for (int t = 0; t < n_tiles; t++) {                                                                   \
            const int cur = t & 1, more = t + 1 < n_tiles, k_next = k_begin + (t + 1) * (BK);                 \
            if (more) { /* global loads in flight while the current tile is multiplied */                    \
                if (VEC) {                                                                                    \
                    BM_GEMM_NT_LOAD_V4(a_next4, A4_LOADS, As, 0, lda4, m0, M, k_next, k_end, (BM), (BK), NT, lid)          \
                    BM_GEMM_NT_LOAD_V4(w_next4, W4_LOADS, Ws, W16, ldw4, n0, N, k_next, k_end, (BN), (BK), NT, lid)          \
                } else {                                                                                      \
                    BM_GEMM_NT_LOAD_S(a_next, A1_LOADS, As, 0, lda, m0, M, k_next, k_end, (BM), (BK), NT, lid)             \
                    BM_GEMM_NT_LOAD_S(w_next, W1_LOADS, Ws, W16, ldw, n0, N, k_next, k_end, (BN), (BK), NT, lid)             \
                }                                                                                             \
            }                                                                                                 \
            __local const float4 *a_cur = a_tile4 + cur * (BK) * (LA / 4);                                    \
            __local const float4 *w_cur = w_tile4 + cur * (BK) * (LW / 4);                                    \
            BM_GEMM_NT_UNROLL for (int kk = 0; kk < (BK); kk++) {                                                               \
                float a[TM], w[TN];                                                                           \
                BM_GEMM_NT_UNROLL for (int i = 0; i < (TM) / 4; i++) {                                                          \
                    const float4 v = a_cur[kk * (LA / 4) + i * NY + ty];                                      \
                    a[4 * i] = v.x, a[4 * i + 1] = v.y, a[4 * i + 2] = v.z, a[4 * i + 3] = v.w;               \
                }                                                                                             \
                BM_GEMM_NT_UNROLL for (int j = 0; j < (TN) / 4; j++) {                                                          \
                    const float4 v = w_cur[kk * (LW / 4) + j * NX + tx];                                      \
                    w[4 * j] = v.x, w[4 * j + 1] = v.y, w[4 * j + 2] = v.z, w[4 * j + 3] = v.w;               \
                }                                                                                             \
                BM_GEMM_NT_UNROLL for (int i = 0; i < (TM); i++)                                                                \
                    BM_GEMM_NT_UNROLL for (int j = 0; j < (TN); j++) acc[i][j] += a[i] * w[j];                                  \
            }                                                                                                 \
            if (more) { /* the other buffer was last read before the previous barrier */                     \
                __local float *a_dst = a_tile + (cur ^ 1) * (BK) * LA;                                        \
                __local float *w_dst = w_tile + (cur ^ 1) * (BK) * LW;                                        \
                if (VEC) {                                                                                    \
                    BM_GEMM_NT_STORE_V4(a_next4, A4_LOADS, a_dst, LA, (BM), (BK), NT, lid)                              \
                    BM_GEMM_NT_STORE_V4(w_next4, W4_LOADS, w_dst, LW, (BN), (BK), NT, lid)                              \
                } else {                                                                                      \
                    BM_GEMM_NT_STORE_S(a_next, A1_LOADS, a_dst, LA, (BM), (BK), NT, lid)                                \
                    BM_GEMM_NT_STORE_S(w_next, W1_LOADS, w_dst, LW, (BN), (BK), NT, lid)                                \
                }                                                                                             \
            }                                                                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                                                     \
        }                                                                                                     \
        __global float *Cs = C + c_off + (ulong)split * c_split;                                              \
        BM_GEMM_NT_UNROLL for (int i = 0; i < (TM) / 4; i++)                                                                    \
            BM_GEMM_NT_UNROLL for (int r = 0; r < 4; r++) {                                                                     \
                const int m = m0 + (i * NY + ty) * 4 + r;                                                     \
                if (m >= M) continue;                                                                         \
                __global float *c_row = Cs + (ulong)m * ldc;                                                  \
                BM_GEMM_NT_UNROLL for (int j = 0; j < (TN) / 4; j++) {                                                          \
                    const int n = n0 + (j * NX + tx) * 4;                                                     \
                    float4 x = (float4)(acc[4 * i + r][4 * j], acc[4 * i + r][4 * j + 1],                     \
                                        acc[4 * i + r][4 * j + 2], acc[4 * i + r][4 * j + 3]);                \
                    if (c_vec4 && n + 3 < N) {                                                                \
                        __global float4 *c4 = (__global float4 *)(c_row + n);                                 \
                        if (beta != 0.0f) x += beta * *c4; /* beta 0 never reads C */                         \
                        *c4 = x;                                                                              \
                    } else {                                                                                  \
                        if (beta != 0.0f) {                                                                   \
                            if (n < N) x.x += beta * c_row[n];                                                \
                            if (n + 1 < N) x.y += beta * c_row[n + 1];                                        \
                            if (n + 2 < N) x.z += beta * c_row[n + 2];                                        \
                            if (n + 3 < N) x.w += beta * c_row[n + 3];                                        \
                        }                                                                                     \
                        bm_store4_partial(c_row, n, N, x);                                                    \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
    }

/* Each configuration twice: fp32 W, and half W (`_w16`, --weights f16; common.cl). */
#define BM_GEMM_NT_KERNELS(SUFFIX, W16)                                                                      \
    BM_GEMM_NT_KERNEL(bm_gemm_nt_v4##SUFFIX, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 1, W16) \
    BM_GEMM_NT_KERNEL(bm_gemm_nt_s##SUFFIX, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 0, W16)  \
    BM_GEMM_NT_KERNEL(bm_gemm_nt_thin_v4##SUFFIX, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM,          \
                      BM_GEMM_S_TN, 1, W16)                                                                   \
    BM_GEMM_NT_KERNEL(bm_gemm_nt_thin_s##SUFFIX, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM,           \
                      BM_GEMM_S_TN, 0, W16)
BM_GEMM_NT_KERNELS(, 0)
BM_GEMM_NT_KERNELS(_w16, 1)

/* Split-K epilogue: C[m, n] = sum over s < splits of P[s * p_split + m * N + n] (in order, so the
 * result does not depend on scheduling) + beta C[m, n] (C not read when beta == 0).
 * global (N, M): one item per output. */
__kernel void bm_gemm_nt_reduce(const int M, const int N, const int splits, __global const float *P,
                                const ulong p_split, const float beta, __global float *C, const ulong c_off,
                                const ulong ldc)
{
    const int n = (int)get_global_id(0), m = (int)get_global_id(1);
    if (n >= N || m >= M) return;
    const ulong at = (ulong)m * (ulong)N + (ulong)n;
    float sum = 0.0f;
    for (int s = 0; s < splits; s++) sum += P[(ulong)s * p_split + at];
    __global float *c = C + c_off + (ulong)m * ldc + (ulong)n;
    *c = beta == 0.0f ? sum : sum + beta * *c;
}
