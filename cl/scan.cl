/* scan.cl — Mamba-1 selective scan (bm_op_scan in src/ops.h), chunked over time: every device
 * and every T (the one-pass kernel of cl/scan_lanes.cl, measured slower, runs only with
 * BMOJO_SCAN=lanes; src/ops/op_scan.c selects). This file also defines bm_scan_exp_a /
 * BM_SCAN_ASCALE for both.
 *
 * Data layout (fp32, row-major, row r = b*T + t):
 *   u [B*T, di], dt [B*T, dt_ld] (channel c at column c), dt_bias [di], A [di, n] (= -exp(A_log)),
 *   bc [B*T, bc_ld] (B_t at b_col.., C_t at c_col..), D [di], z [B*T, z_ld] (gate at z_col..),
 *   state [B, di, n], y [B*T, di].
 *   Chunk scratch (launcher-owned): hs [nchunks][B][n][di] (channel fastest, so that every pass
 *   reads and writes it coalesced) and sd [nchunks-1][B][di] (sum of delta over a chunk).
 *
 * Kernels (the launcher src/ops/op_scan.c picks the chunk length L):
 *   bm_scan_chunk_fwd     one work-item per (channel c, chunk k, sequence b): runs the recurrence
 *                         over its chunk from the chunk's initial state, writes y, and (last chunk)
 *                         the final state. With one chunk (T <= L, e.g. decoding T = 1) this is
 *                         the whole op, reading the initial state straight from `state`.
 *   bm_scan_chunk_state   pass 1 (chunks 0..nchunks-2): the chunk's end state starting from zero
 *                         and its sum of delta.
 *   bm_scan_chunk_combine pass 2, one work-item per (c, j, b), sequential over chunks:
 *                         h_init[k] = exp(A * sum_delta[k-1]) * h_init[k-1] + h_end0[k-1], with
 *                         h_init[0] = state. exp(A * sum delta) equals the product of the per-step
 *                         exp(delta_t A) (one rounding instead of L; agreement checked by tests).
 *   Then bm_scan_chunk_fwd runs over all chunks reading h_init from the scratch.
 *
 * Design and variants considered:
 *   - Work-item per (b, c, j) with the y reduction over j through local memory: 16x the work-items,
 *     but one barrier pair per time tile plus a [tile][wg] partial-sum array; each work-item
 *     still recomputes softplus and reloads u/dt for its own j. Not taken (see the last point).
 *   - Chosen: a work-item owns (b, c, chunk) and keeps BM_SCAN_NS states in registers (a fully
 *     unrolled array), so y needs no reduction and u, dt, z, y are read/written once per step,
 *     coalesced across consecutive channels. Device parallelism comes from chunking time
 *     (B*di*nchunks work-items; the launcher picks L so that this fills the device).
 *     When n > BM_SCAN_NS the work-item loops over state blocks, re-reading u/dt and
 *     accumulating the partial sum in y (rare: Mamba models use n = 16).
 *   - B_t / C_t are shared by every channel of a sequence: each work-group (consecutive channels
 *     of one chunk and sequence) stages them for a tile of time steps in local memory; the launcher
 *     gives the tile capacity (lcap floats, from rt->lim.local_mem) and the tile length follows.
 *   - Pass 1 covers only chunks 0..nchunks-2 (the last chunk's end state comes out of the final
 *     pass directly), and pass 2 writes initial states in place over the end states.
 *   - Measured on an H200 (B=1, di=1536, n=16, T=2048; bench harness outside the tree): a step is
 *     latency-bound, not bandwidth-bound. First version (per-state `if (j < nsb)` branches, loads
 *     issued per step, exp()): ~200 us, each step ~3000 cycles (a memory round trip for u/dt,
 *     another for z, ~1100 cycles of serialized exps). Now: the tile is zero-padded so the
 *     state loop has no branch (exps issued together, four partial sums), loads run one group of
 *     BM_SCAN_TT steps ahead, exp is native_exp2: ~87 us (pass 1 ~35-40, combine ~10, final
 *     ~47). BM_SCAN_TT 4 beat 8 and 16 (registers: 168 at 8 cost occupancy); work-groups of 128
 *     and 256 were within 10 %; chunk lengths 32-64 were best (the launcher aims at ~384
 *     work-items per compute unit). Splitting the states of a channel over work-items, in one
 *     pass without chunks, is cl/scan_lanes.cl. Not done here: a cheaper softplus.
 */
#ifndef BM_SCAN_NS
#define BM_SCAN_NS 16     /* states per register block (per work-item); a multiple of 4 */
#endif
#ifndef BM_SCAN_TT
#define BM_SCAN_TT 4      /* time steps whose loads are issued together (one group ahead) */
#endif
#ifndef BM_SCAN_CT
#define BM_SCAN_CT 16     /* chunks whose loads the combine pass issues together */
#endif
/* exp(delta * A) is the inner loop's cost (n per step and channel). BM_SCAN_FAST_EXP=1 (default)
 * computes it as native_exp2(delta * (A * log2 e)) with A pre-scaled once: one hardware
 * instruction instead of a ~10-instruction exp(); on the H200 this kept y and the state within
 * 1.4e-7 (relative L2) of the reference. The op tests check it on every device;
 * -DBM_SCAN_FAST_EXP=0 selects exp(). */
#ifndef BM_SCAN_FAST_EXP
#define BM_SCAN_FAST_EXP 1
#endif
#if BM_SCAN_FAST_EXP
#define BM_SCAN_ASCALE 1.4426950408889634f
#define bm_scan_exp_a(x) native_exp2(x)
#else
#define BM_SCAN_ASCALE 1.0f
#define bm_scan_exp_a(x) exp(x)
#endif

/* Stages rows r0 .. r0+cnt-1 of B (and C when nmat == 2) for states j0 .. j0+nsb-1 at a fixed
 * stride of nmat*BM_SCAN_NS floats per step: tile[tt*stride + j] = B, [.. + BM_SCAN_NS + j] = C,
 * zero for j >= nsb (so the inner loop needs no branch: a zero B keeps a padding state at zero
 * and a zero C drops it from y). 16-byte aligned rows, read as float4. Whole work-group. */
static inline void bm_scan_stage(__local float *tile, __global const float *bc, size_t r0, uint bc_ld,
                          uint b_col, uint c_col, int j0, int nsb, int nmat, int cnt)
{
    const int per = nmat * BM_SCAN_NS;
    for (int i = (int)get_local_id(0); i < cnt * per; i += (int)get_local_size(0)) {
        const int tt = i / per, jj = i - tt * per;
        const int isc = jj >= BM_SCAN_NS;
        const int j = isc ? jj - BM_SCAN_NS : jj;
        const size_t at = (r0 + (size_t)tt) * bc_ld + (isc ? c_col : b_col) + (uint)(j0 + j);
        tile[i] = j < nsb ? bc[at] : 0.0f;
    }
}

/* One time step of a register block: h = exp(delta A) h + delta u B; returns sum_j C_j h_j.
 * All exps first, then the updates, then four partial sums: independent work for the scheduler
 * (a branch per state, or one accumulator chain, serialized the step on the H200). */
#define BM_SCAN_STEP(h, a, bt, delta, du, with_c, acc_out)                                    \
    do {                                                                                       \
        float e_[BM_SCAN_NS];                                                                  \
        _Pragma("unroll") for (int j_ = 0; j_ < BM_SCAN_NS; j_++) e_[j_] = bm_scan_exp_a((delta) * a[j_]); \
        float s_[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                                \
        _Pragma("unroll") for (int q_ = 0; q_ < BM_SCAN_NS / 4; q_++) {                        \
            const float4 b4 = (bt)[q_];                                                        \
            h[4 * q_ + 0] = e_[4 * q_ + 0] * h[4 * q_ + 0] + (du) * b4.x;                      \
            h[4 * q_ + 1] = e_[4 * q_ + 1] * h[4 * q_ + 1] + (du) * b4.y;                      \
            h[4 * q_ + 2] = e_[4 * q_ + 2] * h[4 * q_ + 2] + (du) * b4.z;                      \
            h[4 * q_ + 3] = e_[4 * q_ + 3] * h[4 * q_ + 3] + (du) * b4.w;                      \
            if (with_c) {                                                                      \
                const float4 c4 = (bt)[BM_SCAN_NS / 4 + q_];                                   \
                s_[0] += c4.x * h[4 * q_ + 0];                                                 \
                s_[1] += c4.y * h[4 * q_ + 1];                                                 \
                s_[2] += c4.z * h[4 * q_ + 2];                                                 \
                s_[3] += c4.w * h[4 * q_ + 3];                                                 \
            }                                                                                  \
        }                                                                                      \
        acc_out = (s_[0] + s_[1]) + (s_[2] + s_[3]);                                           \
    } while (0)

/* Recurrence over chunk k of every sequence/channel, from the initial state at
 * init[k*i_sk + b*i_sb + c*i_sc + j*i_sj]; y as in ops.h. write_state: the last chunk stores
 * h_{T-1} to state_out [B, di, n] (may alias init in the single-chunk case: each work-item reads
 * its own states before it writes them). lcap: floats of `tile` (>= 2*BM_SCAN_NS*BM_SCAN_TT).
 * Loads of u, dt, z (and y for a second state block) run one group of BM_SCAN_TT steps ahead of
 * the arithmetic, so a memory latency is paid per group, overlapped, not per step.
 * Global: (round_up(di, wg), nchunks, B), local (wg, 1, 1). */
__kernel void bm_scan_chunk_fwd(int T, int di, int n, int L,
                                __global const float *u, __global const float *dt, uint dt_ld,
                                __global const float *dt_bias, __global const float *A,
                                __global const float *bc, uint bc_ld, uint b_col, uint c_col,
                                __global const float *Dv, __global const float *z, uint z_ld, uint z_col,
                                __global const float *init, ulong i_sk, ulong i_sb, uint i_sc, uint i_sj,
                                __global float *state_out, int write_state,
                                __global float *y, __local float4 *tile, int lcap)
{
    const int c = (int)get_global_id(0);
    const int k = (int)get_global_id(1);
    const int b = (int)get_global_id(2);
    const int active = c < di;
    const int cc = active ? c : di - 1;   /* padding work-items compute, never store */
    const int t_begin = k * L;
    const int t_end = min(T, t_begin + L);
    const float bias = dt_bias[cc];
    const float dskip = Dv[cc];
    /* tile rows: a multiple of BM_SCAN_TT, so that a group never straddles two tiles */
    const int tile_t = max(BM_SCAN_TT, lcap / (2 * BM_SCAN_NS) / BM_SCAN_TT * BM_SCAN_TT);
    const size_t row_b = (size_t)b * (size_t)T;
    __global const float *ini = init + (size_t)k * i_sk + (size_t)b * i_sb + (size_t)cc * i_sc;

    for (int j0 = 0; j0 < n; j0 += BM_SCAN_NS) {
        const int nsb = min(n - j0, BM_SCAN_NS);
        const int first = j0 == 0, last = j0 + BM_SCAN_NS >= n;
        float h[BM_SCAN_NS], a[BM_SCAN_NS];
#pragma unroll
        for (int j = 0; j < BM_SCAN_NS; j++) {
            h[j] = j < nsb ? ini[(size_t)(j0 + j) * i_sj] : 0.0f;
            a[j] = j < nsb ? A[(size_t)cc * n + j0 + j] * BM_SCAN_ASCALE : 0.0f;
        }
        float nu[BM_SCAN_TT], nd[BM_SCAN_TT], nz[BM_SCAN_TT], ny[BM_SCAN_TT];
#pragma unroll
        for (int q = 0; q < BM_SCAN_TT; q++) {
            const size_t r = row_b + (size_t)min(t_begin + q, t_end - 1);
            nu[q] = u[r * di + cc];
            nd[q] = dt[r * dt_ld + cc];
            nz[q] = last ? z[r * z_ld + z_col + cc] : 0.0f;
            ny[q] = first ? 0.0f : y[r * di + cc];
        }
        for (int s0 = t_begin; s0 < t_end; s0 += BM_SCAN_TT) {
            if ((s0 - t_begin) % tile_t == 0) {
                barrier(CLK_LOCAL_MEM_FENCE);
                bm_scan_stage((__local float *)tile, bc, row_b + s0, bc_ld, b_col, c_col, j0, nsb, 2,
                              min(tile_t, t_end - s0));
                barrier(CLK_LOCAL_MEM_FENCE);
            }
            float pu[BM_SCAN_TT], pd[BM_SCAN_TT], pz[BM_SCAN_TT], py[BM_SCAN_TT];
#pragma unroll
            for (int q = 0; q < BM_SCAN_TT; q++) {
                pu[q] = nu[q], pd[q] = nd[q], pz[q] = nz[q], py[q] = ny[q];
                const size_t r = row_b + (size_t)min(s0 + BM_SCAN_TT + q, t_end - 1);
                nu[q] = u[r * di + cc];
                nd[q] = dt[r * dt_ld + cc];
                nz[q] = last ? z[r * z_ld + z_col + cc] : 0.0f;
                ny[q] = first ? 0.0f : y[r * di + cc];
            }
            const int toff = (s0 - t_begin) % tile_t;
#pragma unroll
            for (int q = 0; q < BM_SCAN_TT; q++) {
                if (s0 + q < t_end) {
                    const float delta = bm_softplus(pd[q] + bias);
                    const float du = delta * pu[q];
                    __local const float4 *bt = tile + (toff + q) * (BM_SCAN_NS / 2);
                    float acc;
                    BM_SCAN_STEP(h, a, bt, delta, du, 1, acc);
                    acc += py[q];
                    if (last) acc = (acc + dskip * pu[q]) * bm_silu(pz[q]);
                    if (active) y[(row_b + (size_t)(s0 + q)) * di + c] = acc;
                }
            }
        }
        if (write_state && active && k == (int)get_global_size(1) - 1) {
            __global float *so = state_out + ((size_t)b * di + c) * n + j0;
#pragma unroll
            for (int j = 0; j < BM_SCAN_NS; j++)
                if (j < nsb) so[j] = h[j];
        }
    }
}

/* Pass 1: chunk k (< nchunks-1) from a zero state; end state to hs slot k+1
 * (hs[((k+1)*B + b)*n + j)*di + c]) and sum of delta to sd[(k*B + b)*di + c]. Same structure
 * as bm_scan_chunk_fwd without C, z and y. lcap >= BM_SCAN_NS*BM_SCAN_TT.
 * Global: (round_up(di, wg), nchunks-1, B), local (wg, 1, 1). */
__kernel void bm_scan_chunk_state(int T, int di, int n, int L, int B,
                                  __global const float *u, __global const float *dt, uint dt_ld,
                                  __global const float *dt_bias, __global const float *A,
                                  __global const float *bc, uint bc_ld, uint b_col,
                                  __global float *hs, __global float *sd,
                                  __local float4 *tile, int lcap)
{
    const int c = (int)get_global_id(0);
    const int k = (int)get_global_id(1);
    const int b = (int)get_global_id(2);
    const int active = c < di;
    const int cc = active ? c : di - 1;
    const int t_begin = k * L;
    const int t_end = min(T, t_begin + L);
    const float bias = dt_bias[cc];
    const int tile_t = max(BM_SCAN_TT, lcap / BM_SCAN_NS / BM_SCAN_TT * BM_SCAN_TT);
    const size_t row_b = (size_t)b * (size_t)T;
    __global float *he = hs + (((size_t)(k + 1) * B + b) * n) * di + c;

    for (int j0 = 0; j0 < n; j0 += BM_SCAN_NS) {
        const int nsb = min(n - j0, BM_SCAN_NS);
        float h[BM_SCAN_NS], a[BM_SCAN_NS];
        float sdelta = 0.0f;
#pragma unroll
        for (int j = 0; j < BM_SCAN_NS; j++) {
            h[j] = 0.0f;
            a[j] = j < nsb ? A[(size_t)cc * n + j0 + j] * BM_SCAN_ASCALE : 0.0f;
        }
        float nu[BM_SCAN_TT], nd[BM_SCAN_TT];
#pragma unroll
        for (int q = 0; q < BM_SCAN_TT; q++) {
            const size_t r = row_b + (size_t)min(t_begin + q, t_end - 1);
            nu[q] = u[r * di + cc];
            nd[q] = dt[r * dt_ld + cc];
        }
        for (int s0 = t_begin; s0 < t_end; s0 += BM_SCAN_TT) {
            if ((s0 - t_begin) % tile_t == 0) {
                barrier(CLK_LOCAL_MEM_FENCE);
                bm_scan_stage((__local float *)tile, bc, row_b + s0, bc_ld, b_col, 0u, j0, nsb, 1,
                              min(tile_t, t_end - s0));
                barrier(CLK_LOCAL_MEM_FENCE);
            }
            float pu[BM_SCAN_TT], pd[BM_SCAN_TT];
#pragma unroll
            for (int q = 0; q < BM_SCAN_TT; q++) {
                pu[q] = nu[q], pd[q] = nd[q];
                const size_t r = row_b + (size_t)min(s0 + BM_SCAN_TT + q, t_end - 1);
                nu[q] = u[r * di + cc];
                nd[q] = dt[r * dt_ld + cc];
            }
            const int toff = (s0 - t_begin) % tile_t;
#pragma unroll
            for (int q = 0; q < BM_SCAN_TT; q++) {
                if (s0 + q < t_end) {
                    const float delta = bm_softplus(pd[q] + bias);
                    const float du = delta * pu[q];
                    __local const float4 *bt = tile + (toff + q) * (BM_SCAN_NS / 4);
                    float unused;
                    sdelta += delta;
                    BM_SCAN_STEP(h, a, bt, delta, du, 0, unused);
                    (void)unused;
                }
            }
        }
        if (active) {
#pragma unroll
            for (int j = 0; j < BM_SCAN_NS; j++)
                if (j < nsb) he[(size_t)(j0 + j) * di] = h[j];
            if (j0 == 0) sd[((size_t)k * B + b) * di + c] = sdelta;
        }
    }
}

/* Pass 2: per (c, j, b), sequentially over chunks, turns hs slots 1.. (end states from zero)
 * into initial states, with slot 0 = the input state. Global: (round_up(di, wg), n, B). */
__kernel void bm_scan_chunk_combine(int di, int n, int B, int nchunks, __global const float *A,
                                    __global const float *sd, __global float *hs,
                                    __global const float *state)
{
    const int c = (int)get_global_id(0);
    const int j = (int)get_global_id(1);
    const int b = (int)get_global_id(2);
    if (c >= di) return;
    const float a = A[(size_t)c * n + j];
    const size_t off = ((size_t)b * n + j) * di + c;
    const size_t slot = (size_t)B * n * di;
    float h = state[((size_t)b * di + c) * n + j];
    hs[off] = h;
    for (int k0 = 1; k0 < nchunks; k0 += BM_SCAN_CT) {
        /* Loads of BM_SCAN_CT chunks at once: only the FMA chain is sequential. */
        float ps[BM_SCAN_CT], ph[BM_SCAN_CT];
#pragma unroll
        for (int q = 0; q < BM_SCAN_CT; q++) {
            const int kk = k0 + q < nchunks ? k0 + q : k0;
            ps[q] = sd[((size_t)(kk - 1) * B + b) * di + c];
            ph[q] = hs[(size_t)kk * slot + off];
        }
#pragma unroll
        for (int q = 0; q < BM_SCAN_CT; q++) {
            if (k0 + q < nchunks) {
                h = exp(a * ps[q]) * h + ph[q];
                hs[(size_t)(k0 + q) * slot + off] = h;
            }
        }
    }
}

/* Decoding step (T = 1) with dt_proj fused: BM_SCAN_STEP_QPC work-items share a (channel c,
 * sequence b): each sums a slice of delta's dt_rank products xdbl[r] * Wdt[c, r] (read from the
 * x_proj row itself: no separate dt_proj launch, no round trip through memory) and advances a
 * slice of the n states; the slices meet in local memory (dt summed by every item of the channel
 * in the same order, so they agree; y by the first). Consecutive items walk consecutive floats of
 * the Wdt, A and state rows (coalesced). B_t, C_t and the dt inputs are shared by all channels of
 * a sequence (cached reads).
 * Measured on the H200 (bmojo-130m, di 1536): one work-item per channel (12 groups of 128, each
 * item walking its own 192-byte Wdt row and 64-byte A and state rows with 4-byte loads) took 13 us
 * per step.
 * global (ceil(di / (L / QPC)) * L, B), local (L, 1); part: L floats. */
#ifndef BM_SCAN_STEP_QPC
#define BM_SCAN_STEP_QPC 4 /* work-items per channel (a power of two dividing L) */
#endif
#ifndef BM_SCAN_STEP_JB
#define BM_SCAN_STEP_JB 4 /* states per item whose inputs are loaded ahead (n / QPC for n = 16) */
#endif
#ifndef BM_SCAN_STEP_PRELOAD
#define BM_SCAN_STEP_PRELOAD BM_IS_GPU /* the step's loads before its first barrier (see below) */
#endif
/* Loads of the scan step (bm_scan_step_body's variables): channel cc's scalars, and the inputs of
 * BM_SCAN_STEP_JB states from jb (clamped in range: entries past j1 are loaded but not used). */
#define BM_SCAN_STEP_LOAD_SCALARS()                                                               \
    do {                                                                                        \
        bias = dt_bias[cc];                                                                     \
        uc = u[(size_t)b * di + cc];                                                            \
        zc = z[(size_t)b * z_ld + z_col + cc];                                                  \
        dc = Dv[cc];                                                                            \
    } while (0)
#define BM_SCAN_STEP_LOAD_STATES(jb)                                                              \
    for (int i = 0; i < BM_SCAN_STEP_JB; i++) {                                                 \
        const int j = min((jb) + i, n - 1);                                                     \
        a_j[i] = Ac[j];                                                                         \
        h_j[i] = h[j];                                                                          \
        b_j[i] = row[b_col + j];                                                                \
        c_j[i] = row[c_col + j];                                                                \
    }
/* The step for the channels of group `group` of sequence b (also run by the fused B'MOJO launch,
 * cl/bmojo_eidetic.cl). */
static inline void bm_scan_step_body(const int group, const int b, int di, int n, int R, __global const float *u,
                                     __global const float *bc, uint bc_ld, uint b_col, uint c_col,
                                     __global const float *Wdt, __global const float *dt_bias,
                                     __global const float *A, __global const float *Dv,
                                     __global const float *z, uint z_ld, uint z_col,
                                     __global float *state, __global float *y, __local float *part)
{
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    const int q = lid % BM_SCAN_STEP_QPC, CH = L / BM_SCAN_STEP_QPC;
    const int c = group * CH + lid / BM_SCAN_STEP_QPC, cc = min(c, di - 1);
    __global const float *row = bc + (size_t)b * bc_ld;
    __global const float *wr = Wdt + (size_t)cc * (size_t)R;
    const int nq = (n + BM_SCAN_STEP_QPC - 1) / BM_SCAN_STEP_QPC, j0 = q * nq, j1 = min(n, j0 + nq);
    __global float *h = state + ((size_t)b * di + cc) * (size_t)n;
    __global const float *Ac = A + (size_t)cc * (size_t)n;
    /* GPUs (BM_SCAN_STEP_PRELOAD) issue every load that does not wait on a result here, before
     * the first barrier: the step is a short chain of memory round trips (the state is rarely
     * still in cache when the next token comes), and a load after a store to the state could not
     * be moved above it, so the state loop that loads and stores one state at a time waits on
     * memory once per state (H200: 10.7 -> 8.1 us in stream). CPUs keep that loop: with the
     * loads ahead in private arrays the step was 12 % slower on POCL (6.9 vs 6.1 ms per
     * mamba-130m token, also with those loads after the barriers). */
    float bias, uc, zc, dc;
#if BM_SCAN_STEP_PRELOAD
    float a_j[BM_SCAN_STEP_JB], h_j[BM_SCAN_STEP_JB], b_j[BM_SCAN_STEP_JB], c_j[BM_SCAN_STEP_JB];
    BM_SCAN_STEP_LOAD_SCALARS();
    BM_SCAN_STEP_LOAD_STATES(j0);
#endif
    const int rq = (R + BM_SCAN_STEP_QPC - 1) / BM_SCAN_STEP_QPC, r0 = q * rq, r1 = min(R, r0 + rq);
    float dtp = 0.0f;
    for (int r = r0; r < r1; r++) dtp = fma(row[r], wr[r], dtp);
    part[lid] = dtp;
    barrier(CLK_LOCAL_MEM_FENCE);
    float dt = 0.0f;
    for (int i = 0; i < BM_SCAN_STEP_QPC; i++) dt += part[lid - q + i];
    barrier(CLK_LOCAL_MEM_FENCE); /* part is reused for y */
    float acc = 0.0f;
#if BM_SCAN_STEP_PRELOAD
    const float delta = bm_softplus(dt + bias);
    for (int jb = j0; jb < j1; jb += BM_SCAN_STEP_JB) {
        if (jb > j0) { /* more than BM_SCAN_STEP_JB states per item (n > 16): the next ones */
            BM_SCAN_STEP_LOAD_STATES(jb);
        }
        for (int i = 0; i < BM_SCAN_STEP_JB; i++) {
            const int j = jb + i;
            if (j < j1) {
                const float hj = bm_scan_exp_a(delta * (a_j[i] * BM_SCAN_ASCALE)) * h_j[i] + delta * b_j[i] * uc;
                if (c < di) h[j] = hj;
                acc = fma(c_j[i], hj, acc);
            }
        }
    }
#else
    BM_SCAN_STEP_LOAD_SCALARS();
    const float delta = bm_softplus(dt + bias);
    for (int j = j0; j < j1; j++) {
        const float hj = bm_scan_exp_a(delta * (Ac[j] * BM_SCAN_ASCALE)) * h[j] + delta * row[b_col + j] * uc;
        if (c < di) h[j] = hj;
        acc = fma(row[c_col + j], hj, acc);
    }
#endif
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (q == 0 && c < di) {
        float yc = 0.0f;
        for (int i = 0; i < BM_SCAN_STEP_QPC; i++) yc += part[lid + i];
        y[(size_t)b * di + c] = (yc + dc * uc) * bm_silu(zc);
    }
}

__kernel void bm_scan_step(int di, int n, int R, __global const float *u,
                           __global const float *bc, uint bc_ld, uint b_col, uint c_col,
                           __global const float *Wdt, __global const float *dt_bias,
                           __global const float *A, __global const float *Dv,
                           __global const float *z, uint z_ld, uint z_col,
                           __global float *state, __global float *y, __local float *part)
{
    bm_scan_step_body((int)get_group_id(0), (int)get_global_id(1), di, n, R, u, bc, bc_ld, b_col, c_col, Wdt, dt_bias,
                      A, Dv, z, z_ld, z_col, state, y, part);
}
