/* gemm_tt.cl — register-tiled SGEMM with transposed operands for the training pass (bm_gemm_ex,
 * launcher src/ops/op_gemm_tt.c): C[M,N] = op(A) op(B) + beta C, op(X) = X^T when trans_x.
 *
 * Layout (row-major fp32, offsets in elements): A is [M, lda] (trans_a 0: row m holds A[m, k] at
 * m*lda + k, "K-contiguous") or [K, lda] (trans_a 1: A^T stored, A[m, k] at k*lda + m,
 * "M-contiguous"); B is [K, ldb] (trans_b 0: B[k, n] at k*ldb + n, "N-contiguous") or [N, ldb]
 * (trans_b 1: B[n, k] at n*ldb + k, K-contiguous); C [M, ldc]. Training: NN for dX = dY W (W
 * stored [out, in]), TN for dW += dY^T X (both operands are activations [rows, .], K = rows), TT
 * for completeness. NT (Y = X W^T) is the forward's layout: the launcher sends it to bm_gemm, so
 * training and inference share one tuned path (cl/gemm_nt.cl on GPUs, CLBlast on CPUs).
 *
 * Algorithm: that of gemm_nt.cl (read its top comment), with the same local layout and the same
 * inner loop; only the global -> local tile loads differ, and they are chosen at compile time per
 * operand (kernels specialised per (trans_a, trans_b) through BM_GEMM_TT_KERNEL, so every index
 * is straight-line code). Both tiles live in local memory as [BK][rows + 4]: for a fixed k the
 * inner loop reads float4 runs of M (and N) values, and each work-item accumulates a TM x TN
 * register block (rows ty*4 + i*(BM/TM)*4, columns tx*4 + j*(BN/TN)*4: strided, conflict-free).
 *   K-contiguous operand (A of NN/NT, B of NT/TT): four (BK/4) consecutive items read one row
 *     piece along K (float4 or one float), stored transposed into [k][row], as gemm_nt.cl does.
 *   M/N-contiguous operand (A of TN/TT, B of NN/TN): consecutive items read consecutive float4s of
 *     one k row (BM/4 items cover a 4*BM-byte run: coalesced) and store them as they are, float4
 *     into [k][row]: no transpose, no bank conflicts.
 * Double-buffered local memory (tile t+1 loaded into registers while tile t is multiplied): one
 * barrier per BK step. Split-K: work-group dimension 2 takes a K range of k_len (a multiple of BK)
 * and writes beta-0 partial sums to a slice of a scratch buffer; gemm_nt.cl's bm_gemm_nt_reduce
 * adds the slices in order (deterministic, no atomics) and applies beta. This is what keeps the
 * dW shape efficient on a GPU: M, N = a layer's out/in width, K = B*T rows (up to 16384), where the
 * output tiles alone may give fewer work-groups than compute units.
 * Edges: any M, N, K >= 1 (K = 0 is a launch with no tiles: C = beta C). Loads outside the matrix
 * give zeros, stores are guarded; beta == 0 never reads C (it may hold NaN).
 * The float4 (*_v4) kernels need each operand's offset and leading dimension to be multiples of 4
 * (every float4 16-byte aligned) and its contiguous extent too (K for a K-contiguous operand, M or
 * N for the others: no float4 straddles an edge); otherwise the *_s kernels. Reading a straddling
 * float4 one float at a time instead was tried: it made clang-14 (gfx90a, -O3) spill 20 VGPRs in
 * every *_v4 kernel (0 without; gemm_nt's kernels: 0), and training's shapes are multiples of 4.
 *
 * Tiles: the SAME tunables as gemm_nt.cl (BM_GEMM_BM/BN/BK/TM/TN big, BM_GEMM_S_* thin), because
 * the launcher sizes its launches from the values the program reports at start-up
 * (cl/program_config.cl -> rt->config), and the problem (register blocks fed from local memory)
 * is the same; a -D override (BMOJO_CL_DEFINES) retunes both families. This file must therefore
 * come after gemm_nt.cl in the program. Own tunable: BM_GEMM_TT_UNROLL (the unroll pragma).
 * Considered: runtime transpose flags in one kernel (index arithmetic with strides): a float4
 * load needs its contiguous direction known, so either two load paths behind a branch per load or
 * scalar loads only; the specialisation costs only compile time (12 kernels). Transposing the
 * operand into scratch first and calling the NT kernel: an extra pass over (for dW) two
 * [rows, width] activations per call.
 *
 * Measured: only on POCL 3.1 (a shared 2-core AMD EPYC slice, pthread device; no GPU was at hand,
 * so the tile and split rules are gemm_nt's, measured there on the H200, not re-measured for these
 * loads). `bmojo bench --ops --ops-scale small --ops-filter gemm`, rows of one run compared only
 * with each other (the machine's load varied 2x between runs):
 *   BMOJO_GEMM=own, M=N=K=1024: NT (gemm_nt) 4.96 GFLOP/s, NN 4.44, TN 4.52; T 256: dX in_proj
 *     (NN 256x768x3072) 4.51, dW in_proj (TN 3072x768x256, +=) 4.56, dW x_proj (TN 80x1536x256) 2.83.
 *   auto (CLBlast for NT on CPUs), M=N=K=1024: CLBlast NT 11.0, our NN 8.47, our TN 9.03.
 *   An earlier, busier run at 512^3: CLBlast NT 1.85, our NN 1.42, TN 1.42.
 *   After the CPU rule below (auto: NN/TN through CLBlast), 1024^3: NT 9.09, NN 8.47, TN 8.39;
 *     T 256: dX in_proj 5.29, dW in_proj 5.50, dW x_proj 7.32.
 * So NN and TN run within ~10% of the NT kernel they are built from; CLBlast stays faster on CPUs,
 * hence bm_gemm_ex's rule (op_gemm_tt.c): CLBlast on CPUs in auto mode, these kernels on GPUs.
 */
#ifndef BM_GEMM_BM
#error "gemm_tt.cl uses gemm_nt.cl's tile tunables: list it after cl/gemm_nt.cl in the program"
#endif

#ifndef BM_GEMM_TT_UNROLL
#define BM_GEMM_TT_UNROLL _Pragma("unroll")
#endif

/* ---- K-contiguous operand: element (r, k) at src[r * ld + k] ---- */
/* float4 loads: item lid takes the loads lid, lid + NT, ...; BK/4 consecutive loads cover one row
 * piece. K is a multiple of 4 here (the launcher's condition for the *_v4 kernels), so a float4 is
 * either wholly inside or wholly past k_end. */
#define BM_GEMM_TT_KC_LOAD_V4(reg, COUNT, src, ld, row0, rows, k0, k_end, TILE_R, BK, NT, lid)                \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT, r_ = i_ / (BK / 4), k_ = k0 + 4 * (i_ % (BK / 4));                   \
        float4 v_ = (float4)(0.0f);                                                                         \
        if (i_ < TILE_R * BK / 4 && row0 + r_ < rows && k_ < k_end) {                                       \
            v_ = *(__global const float4 *)(src + (ulong)(row0 + r_) * ld + (ulong)k_);                    \
        }                                                                                                   \
        reg[p_] = v_;                                                                                       \
    }
#define BM_GEMM_TT_KC_STORE_V4(reg, COUNT, dst, LD, TILE_R, BK, NT, lid)                                      \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT, r_ = i_ / (BK / 4), k_ = 4 * (i_ % (BK / 4));                        \
        if (i_ < TILE_R * BK / 4) {                                                                         \
            dst[(k_ + 0) * LD + r_] = reg[p_].x;                                                            \
            dst[(k_ + 1) * LD + r_] = reg[p_].y;                                                            \
            dst[(k_ + 2) * LD + r_] = reg[p_].z;                                                            \
            dst[(k_ + 3) * LD + r_] = reg[p_].w;                                                            \
        }                                                                                                   \
    }
#define BM_GEMM_TT_KC_LOAD_S(reg, COUNT, src, ld, row0, rows, k0, k_end, TILE_R, BK, NT, lid)                 \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT, r_ = i_ / BK, k_ = k0 + i_ % BK;                                     \
        const int ok_ = i_ < TILE_R * BK && row0 + r_ < rows && k_ < k_end;                                 \
        reg[p_] = ok_ ? src[(ulong)(row0 + r_) * ld + (ulong)k_] : 0.0f;                                   \
    }
#define BM_GEMM_TT_KC_STORE_S(reg, COUNT, dst, LD, TILE_R, BK, NT, lid)                                       \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT;                                                                       \
        if (i_ < TILE_R * BK) dst[(i_ % BK) * LD + i_ / BK] = reg[p_];                                      \
    }

/* ---- Row-contiguous operand (M- or N-contiguous): element (r, k) at src[k * ld + r] ---- */
/* float4 loads: TILE_R/4 consecutive items cover the tile's run of one k row. `rows` (M or N) is
 * a multiple of 4 here (the launcher's condition for the *_v4 kernels). */
#define BM_GEMM_TT_RC_LOAD_V4(reg, COUNT, src, ld, row0, rows, k0, k_end, TILE_R, BK, NT, lid)                \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT, k_ = k0 + i_ / (TILE_R / 4), r_ = row0 + 4 * (i_ % (TILE_R / 4));    \
        float4 v_ = (float4)(0.0f);                                                                         \
        if (i_ < TILE_R * BK / 4 && k_ < k_end && r_ < rows) {                                              \
            v_ = *(__global const float4 *)(src + (ulong)k_ * ld + (ulong)r_);                            \
        }                                                                                                   \
        reg[p_] = v_;                                                                                       \
    }
#define BM_GEMM_TT_RC_STORE_V4(reg, COUNT, dst, LD, TILE_R, BK, NT, lid)                                      \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT;                                                                       \
        if (i_ < TILE_R * BK / 4)                                                                           \
            ((__local float4 *)dst)[(i_ / (TILE_R / 4)) * (LD / 4) + i_ % (TILE_R / 4)] = reg[p_];          \
    }
#define BM_GEMM_TT_RC_LOAD_S(reg, COUNT, src, ld, row0, rows, k0, k_end, TILE_R, BK, NT, lid)                 \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT, k_ = k0 + i_ / TILE_R, r_ = row0 + i_ % TILE_R;                      \
        const int ok_ = i_ < TILE_R * BK && k_ < k_end && r_ < rows;                                        \
        reg[p_] = ok_ ? src[(ulong)k_ * ld + (ulong)r_] : 0.0f;                                            \
    }
#define BM_GEMM_TT_RC_STORE_S(reg, COUNT, dst, LD, TILE_R, BK, NT, lid)                                       \
    BM_GEMM_TT_UNROLL for (int p_ = 0; p_ < COUNT; p_++) {                                                   \
        const int i_ = lid + p_ * NT;                                                                       \
        if (i_ < TILE_R * BK) dst[(i_ / TILE_R) * LD + i_ % TILE_R] = reg[p_];                              \
    }

/* Both operands' next tile into registers, then into local memory (AK, BK_: KC or RC, the storage
 * of A and B). Expanded inside BM_GEMM_TT_KERNEL: they use its locals and its TBM/TBN/TBK. */
#define BM_GEMM_TT_LOAD_BOTH(AK, BK_, VEC, k0)                                                                \
    if (VEC) {                                                                                              \
        BM_GEMM_TT_##AK##_LOAD_V4(a_next4, A4_LOADS, As, lda, m0, M, k0, k_end, TBM, TBK, NT, lid)         \
        BM_GEMM_TT_##BK_##_LOAD_V4(b_next4, B4_LOADS, Bs, ldb, n0, N, k0, k_end, TBN, TBK, NT, lid)        \
    } else {                                                                                                \
        BM_GEMM_TT_##AK##_LOAD_S(a_next, A1_LOADS, As, lda, m0, M, k0, k_end, TBM, TBK, NT, lid)           \
        BM_GEMM_TT_##BK_##_LOAD_S(b_next, B1_LOADS, Bs, ldb, n0, N, k0, k_end, TBN, TBK, NT, lid)          \
    }
#define BM_GEMM_TT_STORE_BOTH(AK, BK_, VEC, a_dst, b_dst)                                                     \
    if (VEC) {                                                                                              \
        BM_GEMM_TT_##AK##_STORE_V4(a_next4, A4_LOADS, a_dst, LA, TBM, TBK, NT, lid)                        \
        BM_GEMM_TT_##BK_##_STORE_V4(b_next4, B4_LOADS, b_dst, LB, TBN, TBK, NT, lid)                       \
    } else {                                                                                                \
        BM_GEMM_TT_##AK##_STORE_S(a_next, A1_LOADS, a_dst, LA, TBM, TBK, NT, lid)                          \
        BM_GEMM_TT_##BK_##_STORE_S(b_next, B1_LOADS, b_dst, LB, TBN, TBK, NT, lid)                         \
    }

/* The kernel, instantiated below per (storage of A, storage of B) x tile configuration x load
 * width (OpenCL C has no templates; the accumulators need compile-time bounds to stay in
 * registers).
 *   global (ceil(N/BN) * BN/TN, ceil(M/BM) * BM/TM, splits), local (BN/TN, BM/TM, 1)
 *   k_len: the K range of one split (a multiple of BK; >= K without split-K)
 *   c_split: element distance between the splits' partial outputs (0 without split-K)
 *   c_vec4: 1 when c_off, ldc and c_split are multiples of 4 (float4 stores of C) */
#define BM_GEMM_TT_KERNEL(NAME, BM, BN, BK, TM, TN, VEC, AK, BK_)                                             \
    __kernel __attribute__((reqd_work_group_size((BN) / (TN), (BM) / (TM), 1))) void NAME(                   \
        const int M, const int N, const int K, const int k_len, __global const float *A, const ulong a_off,    \
        const ulong lda, __global const float *B, const ulong b_off, const ulong ldb, const float beta,         \
        __global float *C, const ulong c_off, const ulong ldc, const ulong c_split, const int c_vec4)          \
    {                                                                                                         \
        enum { NX = (BN) / (TN), NY = (BM) / (TM), NT = NX * NY, LA = (BM) + 4, LB = (BN) + 4 };               \
        enum { TBM = (BM), TBN = (BN), TBK = (BK) }; /* for BM_GEMM_TT_LOAD_BOTH / _STORE_BOTH */              \
        /* loads per item and tile (the same count for either storage); the unused width's arrays get        \
         * length 1 (their code is dead) */                                                                   \
        enum { A4_LOADS = VEC ? ((BM) * (BK) / 4 + NT - 1) / NT : 1, A1_LOADS = VEC ? 1 : ((BM) * (BK) + NT - 1) / NT }; \
        enum { B4_LOADS = VEC ? ((BN) * (BK) / 4 + NT - 1) / NT : 1, B1_LOADS = VEC ? 1 : ((BN) * (BK) + NT - 1) / NT }; \
        __local float4 a_tile4[2 * (BK) * LA / 4];                                                            \
        __local float4 b_tile4[2 * (BK) * LB / 4];                                                            \
        __local float *a_tile = (__local float *)a_tile4;                                                     \
        __local float *b_tile = (__local float *)b_tile4;                                                     \
        const int tx = (int)get_local_id(0), ty = (int)get_local_id(1), lid = ty * NX + tx;                   \
        const int n0 = (int)get_group_id(0) * (BN), m0 = (int)get_group_id(1) * (BM);                        \
        const int split = (int)get_group_id(2);                                                               \
        const int k_begin = split * k_len, k_end = min(K, k_begin + k_len);                                   \
        const int n_tiles = k_end > k_begin ? (k_end - k_begin + (BK) - 1) / (BK) : 0;                        \
        __global const float *As = A + a_off, *Bs = B + b_off;                                                \
        float4 a_next4[A4_LOADS], b_next4[B4_LOADS];                                                          \
        float a_next[A1_LOADS], b_next[B1_LOADS];                                                             \
        float acc[TM][TN];                                                                                    \
        BM_GEMM_TT_UNROLL for (int i = 0; i < (TM); i++)                                                      \
            BM_GEMM_TT_UNROLL for (int j = 0; j < (TN); j++) acc[i][j] = 0.0f;                                \
        if (n_tiles > 0) {                                                                                    \
            BM_GEMM_TT_LOAD_BOTH(AK, BK_, VEC, k_begin)                                                       \
            BM_GEMM_TT_STORE_BOTH(AK, BK_, VEC, a_tile, b_tile)                                               \
        }                                                                                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                                                         \
        for (int t = 0; t < n_tiles; t++) {                                                                   \
            const int cur = t & 1, more = t + 1 < n_tiles, k_next = k_begin + (t + 1) * (BK);                 \
            if (more) { /* global loads in flight while the current tile is multiplied */                    \
                BM_GEMM_TT_LOAD_BOTH(AK, BK_, VEC, k_next)                                                    \
            }                                                                                                 \
            __local const float4 *a_cur = a_tile4 + cur * (BK) * (LA / 4);                                    \
            __local const float4 *b_cur = b_tile4 + cur * (BK) * (LB / 4);                                    \
            BM_GEMM_TT_UNROLL for (int kk = 0; kk < (BK); kk++) {                                             \
                float a[TM], b[TN];                                                                           \
                BM_GEMM_TT_UNROLL for (int i = 0; i < (TM) / 4; i++) {                                        \
                    const float4 v = a_cur[kk * (LA / 4) + i * NY + ty];                                      \
                    a[4 * i] = v.x, a[4 * i + 1] = v.y, a[4 * i + 2] = v.z, a[4 * i + 3] = v.w;               \
                }                                                                                             \
                BM_GEMM_TT_UNROLL for (int j = 0; j < (TN) / 4; j++) {                                        \
                    const float4 v = b_cur[kk * (LB / 4) + j * NX + tx];                                      \
                    b[4 * j] = v.x, b[4 * j + 1] = v.y, b[4 * j + 2] = v.z, b[4 * j + 3] = v.w;               \
                }                                                                                             \
                BM_GEMM_TT_UNROLL for (int i = 0; i < (TM); i++)                                              \
                    BM_GEMM_TT_UNROLL for (int j = 0; j < (TN); j++) acc[i][j] += a[i] * b[j];                \
            }                                                                                                 \
            if (more) { /* the other buffer was last read before the previous barrier */                     \
                __local float *a_dst = a_tile + (cur ^ 1) * (BK) * LA;                                        \
                __local float *b_dst = b_tile + (cur ^ 1) * (BK) * LB;                                        \
                BM_GEMM_TT_STORE_BOTH(AK, BK_, VEC, a_dst, b_dst)                                             \
            }                                                                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                                                     \
        }                                                                                                     \
        __global float *Cs = C + c_off + (ulong)split * c_split;                                              \
        BM_GEMM_TT_UNROLL for (int i = 0; i < (TM) / 4; i++)                                                  \
            BM_GEMM_TT_UNROLL for (int r = 0; r < 4; r++) {                                                   \
                const int m = m0 + (i * NY + ty) * 4 + r;                                                     \
                if (m >= M) continue;                                                                         \
                __global float *c_row = Cs + (ulong)m * ldc;                                                  \
                BM_GEMM_TT_UNROLL for (int j = 0; j < (TN) / 4; j++) {                                        \
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

/* NN: A K-contiguous, B N-contiguous (dX = dY W). */
BM_GEMM_TT_KERNEL(bm_gemm_tt_nn_v4, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 1, KC, RC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_nn_s, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 0, KC, RC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_nn_thin_v4, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM, BM_GEMM_S_TN, 1, KC, RC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_nn_thin_s, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM, BM_GEMM_S_TN, 0, KC, RC)
/* TN: both operands row-contiguous (dW += dY^T X). */
BM_GEMM_TT_KERNEL(bm_gemm_tt_tn_v4, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 1, RC, RC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_tn_s, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 0, RC, RC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_tn_thin_v4, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM, BM_GEMM_S_TN, 1, RC, RC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_tn_thin_s, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM, BM_GEMM_S_TN, 0, RC, RC)
/* TT: A M-contiguous, B K-contiguous. */
BM_GEMM_TT_KERNEL(bm_gemm_tt_tt_v4, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 1, RC, KC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_tt_s, BM_GEMM_BM, BM_GEMM_BN, BM_GEMM_BK, BM_GEMM_TM, BM_GEMM_TN, 0, RC, KC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_tt_thin_v4, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM, BM_GEMM_S_TN, 1, RC, KC)
BM_GEMM_TT_KERNEL(bm_gemm_tt_tt_thin_s, BM_GEMM_S_BM, BM_GEMM_S_BN, BM_GEMM_S_BK, BM_GEMM_S_TM, BM_GEMM_S_TN, 0, RC, KC)
