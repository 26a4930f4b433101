/* gemv.cl — skinny GEMM for decoding: C[M,N] = A[M,K] W[N,K]^T + beta C with few rows (M <= 8,
 * e.g. one token of B <= 8 sequences), where the cost is streaming W once.
 *
 * Layout (row-major fp32, offsets in elements): A [M, lda], W [N, ldw] (the checkpoint's [out,
 * in]; IEEE half in every kernel's `_w16` form, --weights f16), C [M, ldc].
 * One work-group of L work-items (a power of two) per BM_GEMV_NB consecutive rows of W: the
 * items stride over K together, so every load of a W row is coalesced, and each item keeps
 * M x NB partial sums in registers; a local-memory tree reduction over the L items finishes
 * them. A (M x K, a few KiB) is re-read by every work-group and stays in cache.
 *
 * The A operand can be transformed on the fly (mode), so that a decoding step needs no separate
 * launch for it: mode 1 reads RMSNorm(A) (rows scaled by rsqrt(mean(a^2) + eps) * nw, the
 * per-row mean computed by each work-group, K values), mode 2 reads SwiGLU(A): silu(A[m, k]) *
 * A[m, u_col + k] (gate and up side by side, as the fused gate|up GEMM writes them), mode 3
 * (bm_gemv4 bodies only) the merge of an attention's key splits (bm_gemv_parts4).
 *
 * Why not CLBlast here: for M = 1 its indirect GEMM pads and copies W on every call (W is the
 * whole weight matrix), and its host-side dispatch costs more than this kernel's run time.
 * Considered: one work-item per output (W rows read with a stride of K: uncoalesced on GPUs);
 * one work-group per output row (NB = 1: the reduction dominates for K = 768). NB = 4 keeps
 * N/4 work-groups (768 for N = 3072, enough for 132 SMs) and four independent load streams.
 *
 * Kernels: bm_gemv (scalar loads), bm_gemv4 (float4; BM_GEMV4_NB rows per group, which the
 * launcher reads back at start-up, cl/program_config.cl), and bm_gemv4 with more work in the same
 * launch, for decoding, where a launch costs 5-7 us on the H200 whatever it does: bm_gemv4_conv (the Mamba conv step
 * on the x columns), bm_gemv4_split (two outputs), bm_gemv4_bmojo_post and
 * bm_gemv4_split_bmojo_attn (B'MOJO's state update / attention in extra work-groups).
 * Measured on the H200 (bmojo-130m decoding, tokens/s): rows per group 4 / 8 / 16: 370 / 382 /
 * 326; prefetching the next column block 541 vs 567. Items per group: 64 (wider groups for few
 * row blocks measured slower, see op_gemv.c).
 * f16 weights: each kernel twice (BM_GEMV4_KERNELS(SUFFIX, W16); the bodies take w16 as their
 * first argument), W read through common.cl's bm_w_load* (vload_half4 / vload_half16), all else
 * the same. On POCL (2 cores of an AMD EPYC) the CPU body first streamed 4.5-5.5 G weights/s (9-11
 * GB/s of halves) against 3.8-4.4 G (15-17.5 GB/s) in fp32: bound by its per-step work (A's
 * transform, bm_gemv_a4, not inlined by POCL, called per 4 columns of every block of 8 rows), so
 * mamba-130m decoded 41.0 -> 44.7 tokens/s. Tried: widening with integer vector operations
 * (slower), always_inline on bm_gemv_a4 (POCL's build did not finish in 15 minutes). Kept: A's
 * transformed row built once per work-item in a private panel (BM_GEMV_CPU_KP), the row loop then
 * loads, converts and multiplies only: tg64 mamba-130m f16 39 -> 57, f32 34-38 -> 40; swa-130m
 * f16 49-52 -> 65, f32 41-44 -> 49 tokens/s (docs/performance.md, "f16 weights").
 * On the H200 (32e537b) the f16 GPU body decodes 3-16 % slower than fp32: a 130M model's token
 * there is bound by its launches, not by W's bytes, and every load converts.
 */
#ifndef BM_GEMV_NB
#define BM_GEMV_NB 4      /* rows of W per work-group */
#endif
#ifndef BM_GEMV_MAX_M
#define BM_GEMV_MAX_M 8   /* rows of A handled by one launch (the launcher splits larger M) */
#endif

#define BM_GEMV_PLAIN 0
#define BM_GEMV_RMSNORM 1
#define BM_GEMV_SWIGLU 2
#define BM_GEMV_PARTS 3

/* The parameters every kernel of this file starts with (their meaning: bm_gemv's contract above;
 * red: M * NB * L floats of local memory). W is bytes: fp32 in the plain kernels, half in the
 * `_w16` ones (common.cl's bm_w_load*; each body takes the literal w16 first). */
#define BM_GEMV_PARAMS                                                                                         \
    const int M, const int N, const int K, __global const float *A, const ulong a_off, const ulong lda,        \
        __global const uchar *W, const ulong w_off, const ulong ldw, const float beta, __global float *C,      \
        const ulong c_off, const ulong ldc, const int mode, __global const float *nw, const float eps,         \
        const ulong u_col, __local float *red
#define BM_GEMV_ARGS M, N, K, A, a_off, lda, W, w_off, ldw, beta, C, c_off, ldc, mode, nw, eps, u_col, red

/* Tree sum over the work-group of n lanes of L partials each (red[i * L + lid]); the totals end up
 * in red[i * L]. Called by every work-item (it holds barriers). */
static inline void bm_gemv_tree_sum(__local float *red, int n, int L, int lid)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = L / 2; s > 0; s >>= 1) {
        if (lid < s)
            for (int i = 0; i < n; i++) red[i * L + lid] += red[i * L + lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* RMSNorm scales from the per-item sums of squares in red (lane m = row m): rs[m] =
 * rsqrt(mean + eps); red is free again on return. */
static inline void bm_gemv_row_scales(__local float *red, int M, int K, float eps, int L, int lid, float *rs)
{
    bm_gemv_tree_sum(red, M, L, lid);
    for (int m = 0; m < BM_GEMV_MAX_M; m++) rs[m] = m < M ? rsqrt(red[m * L] / (float)K + eps) : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE); /* red is reused by the caller */
}

/* Sums the partial dot products in red (lane m * nb + j) and writes C rows n0 .. n0+nb-1.
 * Split output: columns n >= n_split go to C2 (column n - n_split, its own offset and leading
 * dimension) instead, so one launch can fill two activations (bmojo: y and its K/V).
 * Conv epilogue (conv_di > 0, decoding of a Mamba mixer, row m = sequence m): output columns
 * n < conv_di are the mixer's x; for them this also computes the causal depthwise conv step
 * u[m, n] = silu(conv_b[n] + sum_i conv_w[n, i] * h_i) over the history h = (the k-1 inputs in
 * conv_state [M, conv_di, k-1], oldest first, then x) — in cl/conv1d.cl's order, so u matches
 * bm_conv1d_out bit for bit — and shifts x into the state. The work-item that writes x[m, n] is
 * the only one that touches state row (m, n), so the shift needs no synchronisation. */
static inline void bm_gemv_write(__local float *red, int M, int nb, int L, int lid, int n0, int N, float beta,
                                 __global float *C, ulong c_off, ulong ldc, const int n_split, __global float *C2,
                                 const ulong c2_off, const ulong ldc2, const int conv_di, const int conv_k,
                                 __global const float *conv_w, __global const float *conv_b, const int conv_has_bias,
                                 __global float *conv_state, __global float *conv_u)
{
    bm_gemv_tree_sum(red, M * nb, L, lid);
    for (int i = lid; i < M * nb; i += L) { /* L may be smaller than M * nb */
        const int m = i / nb, j = i - m * nb, n = n0 + j;
        if (n < N) {
            __global float *c = n < n_split ? C + c_off + (ulong)m * ldc + (ulong)n
                                            : C2 + c2_off + (ulong)m * ldc2 + (ulong)(n - n_split);
            float v = red[i * L];
            v = beta == 0.0f ? v : v + beta * *c; /* beta 0 never reads C (it may hold NaN) */
            *c = v;
            if (n < conv_di) {
                const int km1 = conv_k - 1;
                __global const float *wc = conv_w + (ulong)n * (ulong)conv_k;
                __global float *st = conv_state + ((ulong)m * (ulong)conv_di + (ulong)n) * (ulong)km1;
                float acc = conv_has_bias ? conv_b[n] : 0.0f;
                for (int t = 0; t < km1; t++) acc += wc[t] * st[t];
                acc += wc[km1] * v;
                conv_u[(ulong)m * (ulong)conv_di + (ulong)n] = bm_silu(acc);
                for (int t = 0; t + 1 < km1; t++) st[t] = st[t + 1];
                if (km1 > 0) st[km1 - 1] = v;
            }
        }
    }
}

/* global (ceil(N/NB) * L), local (L); red: M * NB * L floats of local memory. */
static inline void bm_gemv_body(const int w16, BM_GEMV_PARAMS)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int n0 = (int)get_group_id(0) * BM_GEMV_NB;
    float rs[BM_GEMV_MAX_M];
    if (mode == BM_GEMV_RMSNORM) { /* each row's rsqrt(mean(a^2) + eps), reduced over the group */
        for (int m = 0; m < BM_GEMV_MAX_M; m++) {
            if (m < M) {
                float ss = 0.0f;
                for (int k = lid; k < K; k += L) {
                    const float a = A[a_off + (ulong)m * lda + (ulong)k];
                    ss = fma(a, a, ss);
                }
                red[m * L + lid] = ss;
            }
        }
        bm_gemv_row_scales(red, M, K, eps, L, lid, rs);
    }
    float acc[BM_GEMV_MAX_M][BM_GEMV_NB];
    for (int m = 0; m < BM_GEMV_MAX_M; m++)
        for (int j = 0; j < BM_GEMV_NB; j++) acc[m][j] = 0.0f;
    for (int k = lid; k < K; k += L) {
        float w[BM_GEMV_NB];
        for (int j = 0; j < BM_GEMV_NB; j++)
            w[j] = (n0 + j < N) ? bm_w_load(W, w_off + (ulong)(n0 + j) * ldw + (ulong)k, w16) : 0.0f;
        for (int m = 0; m < BM_GEMV_MAX_M; m++) {
            if (m < M) {
                const ulong ai = a_off + (ulong)m * lda + (ulong)k;
                float a = A[ai];
                if (mode == BM_GEMV_RMSNORM) a = a * rs[m] * nw[k];
                else if (mode == BM_GEMV_SWIGLU) a = bm_silu(a) * A[ai + u_col];
                for (int j = 0; j < BM_GEMV_NB; j++) acc[m][j] = fma(a, w[j], acc[m][j]);
            }
        }
    }
    for (int m = 0; m < BM_GEMV_MAX_M; m++)
        if (m < M)
            for (int j = 0; j < BM_GEMV_NB; j++) red[(m * BM_GEMV_NB + j) * L + lid] = acc[m][j];
    bm_gemv_write(red, M, BM_GEMV_NB, L, lid, n0, N, beta, C, c_off, ldc, N, C, 0, 0, 0, 1, C, C, 0, C, C);
}

__kernel void bm_gemv(BM_GEMV_PARAMS) { bm_gemv_body(0, BM_GEMV_ARGS); }
__kernel void bm_gemv_w16(BM_GEMV_PARAMS) { bm_gemv_body(1, BM_GEMV_ARGS); }

/* bm_gemv4 — the same contract with float4 loads, for K, the leading dimensions, the offsets (and
 * u_col) all multiples of 4: one work-group of L items per BM_GEMV4_NB rows of W; each item
 * strides over K/4 float4 columns, so one iteration issues NB independent 16-byte loads of W.
 * Fewer, wider loads than bm_gemv (which issues one 4-byte load per row per iteration) and twice
 * the rows per group; the reduction is the same tree. global (ceil(N/NB4) * L), local (L);
 * red: M * NB4 * L floats. */
#ifndef BM_GEMV4_NB
#if BM_IS_GPU
#define BM_GEMV4_NB 8
#else
#define BM_GEMV4_NB 32 /* CPUs: a group is one thread's job; fewer, longer jobs (bm_gemv4_body_cpu) */
#endif
#endif

/* Mode 3 (BM_GEMV_PARTS): A holds the n_parts key splits of a decoding attention (T = 1) in
 * bm_attn_combine's layout (cl/attention.cl): unnormalized O [n_parts, M, K] (row m = sequence,
 * heads of part_cols columns), then the (max, sum) pairs [n_parts, M, K / part_cols, 2]. Every
 * work-group merges the splits while it reads A, so that o_proj needs no combine launch: first
 * the weight of each split in each (row, head), exp(m_s - max) / sum_s' exp(m_s' - max) l_s'
 * (bm_attn_combine's terms), into local memory wts [M, nh, n_parts]; then a float4 of the merged
 * row is the weighted sum of the splits' float4s (part_cols a multiple of 4: inside one head).
 * wts is a local argument of the fused kernel (2 * M * nh * n_parts floats). Measured on the
 * H200: merging per float4 without the table (each item recomputing the maxima and the exps of
 * its head) made o_proj's launch 40 us at 35 splits. */
static inline void bm_gemv_parts_weights(__global const float *P, const int M, const int K, const int n_parts,
                                         const int part_cols, __local float *wts, const int lid, const int L)
{
    const int nh = K / part_cols, nw = M * nh * n_parts; /* entry e = (m * nh + h) * n_parts + s */
    __global const float *pst = P + (size_t)n_parts * M * K;
    __local float *ls = wts + nw; /* the sums l; then exp(m - max) */
    /* the group loads all (max, sum) pairs at once; then one item per (row, head) walks its splits
     * in local memory (a walk over n_parts global loads per (row, head) took ~3 us on the H200) */
    for (int e = lid; e < nw; e += L) {
        const int s = e % n_parts, mh = e / n_parts;
        const size_t pr = ((size_t)s * M + mh / nh) * nh + mh % nh;
        wts[e] = pst[pr * 2];
        ls[e] = pst[pr * 2 + 1];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int mh = lid; mh < M * nh; mh += L) {
        __local float *wr = wts + mh * n_parts, *lr = ls + mh * n_parts;
        float mx = -INFINITY;
        for (int s = 0; s < n_parts; s++) mx = fmax(mx, wr[s]);
        float l = 0.0f;
        for (int s = 0; s < n_parts; s++) {
            const float w = wr[s] == -INFINITY ? 0.0f : exp(wr[s] - mx);
            l += w * lr[s];
            lr[s] = w;
        }
        for (int s = 0; s < n_parts; s++) wr[s] = lr[s] / l;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

static inline float4 bm_gemv_parts4(__global const float *P, const int m, const int M, const int K, const int k,
                                    const int n_parts, const int part_cols, __local const float *wts)
{
    __local const float *w = wts + ((size_t)m * (K / part_cols) + k / part_cols) * n_parts;
    float4 o = (float4)(0.0f);
    for (int s = 0; s < n_parts; s++) o += w[s] * vload4(0, P + ((size_t)s * M + m) * K + k);
    return o;
}

/* The parameters of the float4 bodies beyond BM_GEMV_PARAMS: the split output, the conv epilogue
 * (bm_gemv_write) and mode 3's merge (n_parts, part_cols, wts, merged, merged_ld: see below). */
#define BM_GEMV4_BODY_PARAMS                                                                                   \
    const int n_split, __global float *C2, const ulong c2_off, const ulong ldc2, const int conv_di,            \
        const int conv_k, __global const float *conv_w, __global const float *conv_b, const int conv_has_bias, \
        __global float *conv_state, __global float *conv_u, const int n_parts, const int part_cols,            \
        __local float *wts, __global float *merged, const ulong merged_ld
#define BM_GEMV4_BODY_ARGS                                                                                     \
    n_split, C2, c2_off, ldc2, conv_di, conv_k, conv_w, conv_b, conv_has_bias, conv_state, conv_u, n_parts,   \
        part_cols, wts, merged, merged_ld

#if !BM_IS_GPU /* compiled for CPU devices only (unused, hence an error under -Werror, on GPUs) */
/* The CPU form of bm_gemv4_body (groups of one work-item, e.g. POCL): for each row m of A, A's row
 * transformed once (below), then each row of W dotted with it by float16 FMAs along K (W's rows
 * streamed with vload16), folded once per row; K's last K % 16 (a multiple of 4) with float4 as in
 * the GPU form. Per W vector one FMA, no horizontal sum per step: the loop streams W at memory
 * speed where the GPU form's float4 dots did not (POCL, 2 cores: bm_gemv4 2.5-8 GB/s against 17.5
 * GB/s of copy; numbers in docs/performance.md). */
static inline float4 bm_gemv_a4(const int write_merged, __global const float *A, const ulong a_off, const ulong lda,
                                const int m, const int M, const int K, const int k, const int mode,
                                __global const float *nw, const float rsm, const ulong u_col, const int n_parts,
                                const int part_cols, __local const float *wts, __global float *merged,
                                const ulong merged_ld)
{
    const ulong ai = a_off + (ulong)m * lda + (ulong)k;
    float4 a;
    if (mode == BM_GEMV_PARTS) {
        a = bm_gemv_parts4(A + a_off, m, M, K, k, n_parts, part_cols, wts);
        if (write_merged) vstore4(a, 0, merged + (ulong)m * merged_ld + (ulong)k);
    } else {
        a = vload4(0, A + ai);
        if (mode == BM_GEMV_RMSNORM) a = a * rsm * vload4(0, nw + (ulong)k);
        else if (mode == BM_GEMV_SWIGLU) {
            const float4 u = vload4(0, A + ai + u_col);
            a = (float4)(bm_silu(a.x), bm_silu(a.y), bm_silu(a.z), bm_silu(a.w)) * u;
        }
    }
    return a;
}

/* W's rows one at a time, each from its start to its end (two float16 accumulators along K, one
 * horizontal sum per row): the group's BM_GEMV4_NB rows are one contiguous stream. Measured on POCL
 * (2 cores of an AMD EPYC, tg64, old and new binaries in turn, two rounds): 16 rows side by side
 * (BM_GEMV_CPU_JB, 16 float16 accumulators sharing each A vector) -> one row at a time: f16
 * swa-130m 79-84 -> 122-127, mamba-130m 66-68 -> 83-97 tokens/s; f32 +3-9 %. A C loop compiled by
 * gcc -O3 -march=native on the same cores shows why (tools/cpu_stream_probe.c, two threads): f16
 * rows stream at 35-36 GB/s one at a time, 17-21 GB/s with 2, 4, 8 or 16 side by side (f32: 31-32
 * against 22-28): concurrent streams a row apart defeat the prefetcher. Four accumulators: no better. */
#ifndef BM_GEMV_CPU_KP
#define BM_GEMV_CPU_KP 4096 /* A's transformed row is built in panels of this many columns (private) */
#endif

static inline void bm_gemv4_body_cpu(const int grp, const int w16, BM_GEMV_PARAMS, BM_GEMV4_BODY_PARAMS)
{
    const int n0 = grp * BM_GEMV4_NB;
    if (mode == BM_GEMV_PARTS) bm_gemv_parts_weights(A + a_off, M, K, n_parts, part_cols, wts, 0, 1);
    /* A's row, transformed (RMSNorm, SwiGLU, the splits' merge) once per work-item and panel, so
     * that the loop over W's rows is loads, conversions and FMAs only: transforming it per block
     * of 8 rows through bm_gemv_a4 (which POCL does not inline) bounded the loop (issue 15) */
    float at[BM_GEMV_CPU_KP];
    for (int m = 0; m < M; m++) {
        float rsm = 0.0f;
        if (mode == BM_GEMV_RMSNORM) {
            const int K16 = K & ~15;
            float16 ss = 0.0f;
            int k = 0;
            for (; k < K16; k += 16) {
                const float16 a = vload16(0, A + a_off + (ulong)m * lda + (ulong)k);
                ss = fma(a, a, ss);
            }
            float s = bm_hsum16(ss);
            for (; k < K; k += 4) {
                const float4 a = vload4(0, A + a_off + (ulong)m * lda + (ulong)k);
                s += dot(a, a);
            }
            rsm = rsqrt(s / (float)K + eps);
        }
        for (int j = 0; j < BM_GEMV4_NB; j++) red[m * BM_GEMV4_NB + j] = 0.0f;
        for (int k0 = 0; k0 < K; k0 += BM_GEMV_CPU_KP) {
            const int kn = min(BM_GEMV_CPU_KP, K - k0), kn16 = kn & ~15;
            /* mode 3: group 0 also writes the merged rows, once */
            for (int k = 0; k < kn; k += 4)
                vstore4(bm_gemv_a4(grp == 0, A, a_off, lda, m, M, K, k0 + k, mode, nw, rsm, u_col, n_parts, part_cols,
                                   wts, merged, merged_ld),
                        0, at + k);
            /* one row of W at a time, start to end: the group's rows are one contiguous stream */
            for (int j = 0; j < BM_GEMV4_NB && n0 + j < N; j++) {
                __global const uchar *wr = bm_w_at(W, w_off + (ulong)(n0 + j) * ldw, w16);
                float16 acc0 = 0.0f, acc1 = 0.0f;
                int k = 0;
                for (; k + 32 <= kn16; k += 32) {
                    acc0 = fma(vload16(0, at + k), bm_w_load16(wr, k0 + k, w16), acc0);
                    acc1 = fma(vload16(0, at + k + 16), bm_w_load16(wr, k0 + k + 16, w16), acc1);
                }
                if (k < kn16) acc0 = fma(vload16(0, at + k), bm_w_load16(wr, k0 + k, w16), acc0);
                float s = bm_hsum16(acc0 + acc1);
                for (k = kn16; k < kn; k += 4) s += dot(vload4(0, at + k), bm_w_load4(wr, k0 + k, w16));
                red[m * BM_GEMV4_NB + j] += s;
            }
        }
    }
    bm_gemv_write(red, M, BM_GEMV4_NB, 1, 0, n0, N, beta, C, c_off, ldc, n_split, C2, c2_off, ldc2, conv_di, conv_k,
                  conv_w, conv_b, conv_has_bias, conv_state, conv_u);
}
#endif

/* n_parts, part_cols, wts: mode 3's split count, head width and weight table; the body's group 0
 * also writes the merged rows to merged [M, merged_ld] (the attention output stays addressable). */
static inline void bm_gemv4_body(const int grp, const int w16, BM_GEMV_PARAMS, BM_GEMV4_BODY_PARAMS)
{
#if !BM_IS_GPU
    if (get_local_size(0) == 1) {
        bm_gemv4_body_cpu(grp, w16, BM_GEMV_ARGS, BM_GEMV4_BODY_ARGS);
        return;
    }
#endif
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int n0 = grp * BM_GEMV4_NB, K4 = K / 4;
    float rs[BM_GEMV_MAX_M];
    if (mode == BM_GEMV_RMSNORM) {
        for (int m = 0; m < BM_GEMV_MAX_M; m++) {
            if (m < M) {
                float ss = 0.0f;
                for (int k = lid; k < K4; k += L) {
                    const float4 a = vload4(0, A + a_off + (ulong)m * lda + 4 * (ulong)k);
                    ss += dot(a, a);
                }
                red[m * L + lid] = ss;
            }
        }
        bm_gemv_row_scales(red, M, K, eps, L, lid, rs);
    }
    if (mode == BM_GEMV_PARTS) bm_gemv_parts_weights(A + a_off, M, K, n_parts, part_cols, wts, lid, L);
    float acc[BM_GEMV_MAX_M][BM_GEMV4_NB];
    for (int m = 0; m < BM_GEMV_MAX_M; m++)
        for (int j = 0; j < BM_GEMV4_NB; j++) acc[m][j] = 0.0f;
    /* Tried: prefetching the next column block's W while this one's FMAs run (twice the registers):
     * bmojo-130m decoding on the H200 went 567 -> 541 tokens/s, so not kept. */
    for (int k = lid; k < K4; k += L) {
        float4 w[BM_GEMV4_NB];
        for (int j = 0; j < BM_GEMV4_NB; j++)
            w[j] = (n0 + j < N) ? bm_w_load4(W, w_off + (ulong)(n0 + j) * ldw + 4 * (ulong)k, w16) : (float4)(0.0f);
        for (int m = 0; m < BM_GEMV_MAX_M; m++) {
            if (m < M) {
                const ulong ai = a_off + (ulong)m * lda + 4 * (ulong)k;
                float4 a;
                if (mode == BM_GEMV_PARTS) {
                    a = bm_gemv_parts4(A + a_off, m, M, K, 4 * k, n_parts, part_cols, wts);
                    if (grp == 0) vstore4(a, 0, merged + (ulong)m * merged_ld + 4 * (ulong)k);
                } else {
                    a = vload4(0, A + ai);
                    if (mode == BM_GEMV_RMSNORM) a = a * rs[m] * vload4(0, nw + 4 * (ulong)k);
                    else if (mode == BM_GEMV_SWIGLU) {
                        const float4 u = vload4(0, A + ai + u_col);
                        a = (float4)(bm_silu(a.x), bm_silu(a.y), bm_silu(a.z), bm_silu(a.w)) * u;
                    }
                }
                for (int j = 0; j < BM_GEMV4_NB; j++) acc[m][j] += dot(a, w[j]);
            }
        }
    }
    for (int m = 0; m < BM_GEMV_MAX_M; m++)
        if (m < M)
            for (int j = 0; j < BM_GEMV4_NB; j++) red[(m * BM_GEMV4_NB + j) * L + lid] = acc[m][j];
    bm_gemv_write(red, M, BM_GEMV4_NB, L, lid, n0, N, beta, C, c_off, ldc, n_split, C2, c2_off, ldc2, conv_di, conv_k,
                  conv_w, conv_b, conv_has_bias, conv_state, conv_u);
}

/* Every kernel below twice: `NAME` (fp32 W) and `NAME_w16` (half W, --weights f16), through
 * BM_GEMV4_KERNELS(SUFFIX, W16); a kernel's body is one call of bm_gemv4_body with the literal. */
#define BM_GEMV4_KERNELS(SUFFIX, W16)                                                                          \
    __kernel void bm_gemv4##SUFFIX(BM_GEMV_PARAMS)                                                             \
    {                                                                                                          \
        bm_gemv4_body((int)get_group_id(0), W16, BM_GEMV_ARGS, N, C, 0, 0, 0, 1, C, C, 0, C, C, 0, 1, red, C, 0); \
    }                                                                                                          \
    /* bm_gemv4 with a split output (see bm_gemv_write): columns >= n_split land in C2. */                     \
    __kernel void bm_gemv4_split##SUFFIX(BM_GEMV_PARAMS, const int n_split, __global float *C2,               \
                                         const ulong c2_off, const ulong ldc2)                                 \
    {                                                                                                          \
        bm_gemv4_body((int)get_group_id(0), W16, BM_GEMV_ARGS, n_split, C2, c2_off, ldc2, 0, 1, C, C, 0, C, C, 0, \
                      1, red, C, 0);                                                                           \
    }                                                                                                          \
    /* bm_gemv4 with the conv epilogue of bm_gemv_write: the Mamba in_proj of a decoding step (x | z         \
     * [| q | k | v] = in_proj h) also runs the conv1d step on x and advances the conv state, which           \
     * saves the conv launch (M <= BM_GEMV_MAX_M: one launch, row m = sequence m). */                          \
    __kernel void bm_gemv4_conv##SUFFIX(BM_GEMV_PARAMS, const int conv_di, const int conv_k,                  \
                                        __global const float *conv_w, __global const float *conv_b,           \
                                        const int conv_has_bias, __global float *conv_state,                  \
                                        __global float *conv_u)                                               \
    {                                                                                                          \
        bm_gemv4_body((int)get_group_id(0), W16, BM_GEMV_ARGS, N, C, 0, 0, conv_di, conv_k, conv_w, conv_b,   \
                      conv_has_bias, conv_state, conv_u, 0, 1, red, C, 0);                                    \
    }                                                                                                          \
    /* Decoding fusion (B'MOJO sublayer, T = 1): o_proj (x += att Wo^T, the residual as beta 1) and the        \
     * post-attention half of the B'MOJO state update (cl/bmojo_eidetic.cl: innovation, fade append,         \
     * candidate list) in one launch; they touch disjoint buffers. When the attention was split over         \
     * keys, mode 3 reads att as the merge of its splits (and writes the merged rows to `merged`): no        \
     * combine launch. Groups x < B run the post half for sequence x, the rest the GEMV. Launched with        \
     * BM_WG items per group: the post half's eps is a tree over the group, which must be the prefill's      \
     * (bm_bmojo_innovation) to select the same tokens. */                                                    \
    __kernel void bm_gemv4_bmojo_post##SUFFIX(BM_GEMV_PARAMS, BM_BMOJO_POST_PARAMS(), const int n_parts,     \
                                              const int part_cols, __local float *wts, __global float *merged, \
                                              const ulong merged_ld)                                          \
    {                                                                                                          \
        __local float part[BM_BMOJO_INNOV_WG];                                                                 \
        /* the post half's groups first (the longest; groups start in id order) */                            \
        const int nb = (int)get_num_groups(0) - (N + BM_GEMV4_NB - 1) / BM_GEMV4_NB, g = (int)get_group_id(0); \
        if (g >= nb)                                                                                           \
            bm_gemv4_body(g - nb, W16, BM_GEMV_ARGS, N, C, 0, 0, 0, 1, C, C, 0, C, C, n_parts, part_cols, wts,   \
                          merged, merged_ld);                                                                  \
        else                                                                                                   \
            bm_bmojo_step_post(g, (int)get_local_id(0), (int)get_local_size(0), part, BM_BMOJO_POST_ARGS());   \
    }                                                                                                          \
    /* Decoding fusion (B'MOJO sublayer, T = 1): the out_proj GEMV with its two outputs (y | Kf Vf,            \
     * bm_gemv4_split) and the attention over [memory | window] (bm_bmojo_attn) in one launch: neither         \
     * reads what the other writes. The first ntiles * nsplit * Hkv * B groups are the attention's (query     \
     * tile x split fastest, then kv head, then sequence), the rest the GEMV's, all with BM_WG items (the     \
     * attention's group size). Measured on the H200 (bmojo-130m decoding): the launch takes 22-23 us         \
     * against 13.9 + 12.1 for the two alone, whichever role's groups come first. */                          \
    __kernel void bm_gemv4_split_bmojo_attn##SUFFIX(BM_GEMV_PARAMS, const int n_split, __global float *C2,   \
                                                    const ulong c2_off, const ulong ldc2, BM_BMOJO_ATTN_PARAMS, \
                                                    const int B, const int tiles_splits)                      \
    {                                                                                                          \
        /* the attention's groups first (the longer ones; groups start in id order, though the H200           \
         * measured the same either way) */                                                                    \
        const int na = tiles_splits * Hkv * B, grp = (int)get_group_id(0);                                     \
        if (grp >= na) {                                                                                       \
            bm_gemv4_body(grp - na, W16, BM_GEMV_ARGS, n_split, C2, c2_off, ldc2, 0, 1, C, C, 0, C, C, 0, 1, red, \
                          C, 0);                                                                               \
            return;                                                                                            \
        }                                                                                                      \
        const int i = grp, ts = i % tiles_splits, rest = i / tiles_splits;                                     \
        bm_bmojo_attn_group(ts, rest % Hkv, rest / Hkv, B, BM_BMOJO_ATTN_ARGS);                                \
    }

BM_GEMV4_KERNELS(, 0)
BM_GEMV4_KERNELS(_w16, 1)
