/* scan_lanes.cl — Mamba-1 selective scan (bm_op_scan in src/ops.h) in ONE pass over time,
 * parallel over (sequence, channel, state): the "lanes" variant, used when BMOJO_SCAN=lanes forces
 * it. Measured on the H200 (B 1, T 2048, di 1536, n 16): 221 us against 99 us for the chunked
 * kernel of cl/scan.cl (sweep: SPL 1/2/4 x TT 16/32 x 2-8 channels per group: 222-1759 us); every
 * tile pays three barrier-separated phases, and 24,576 (channel, state) lanes are about 6 warps per
 * SM, too few to hide them. Kept as a measured alternative for other devices, not the default. Uses bm_scan_exp_a and
 * BM_SCAN_ASCALE from cl/scan.cl, which comes before this file in the program.
 *
 * Data layout (fp32, row-major, row r = b*T + t), the same as cl/scan.cl:
 *   u [B*T, di], dt [B*T, dt_ld] (channel c at column c), dt_bias [di], A [di, n] (= -exp(A_log)),
 *   bc [B*T, bc_ld] (B_t at b_col.., C_t at c_col..), D [di], z [B*T, z_ld] (gate at z_col..),
 *   state [B, di, n] (read as h_{-1}, overwritten with h_{T-1}), y [B*T, di].
 *
 * Work decomposition. A work-group (1-D, nl*chs work-items) owns chs consecutive channels of one
 * sequence and all their states: work-item lid is lane lid % nl of channel lid / nl and keeps
 * BM_SCANL_SPL states (j = lane*SPL + s) in registers for the whole sequence; nl = ceil(n / SPL).
 * States j >= n (padding) run with A = B = C = 0, so they stay 0 and add nothing. Time goes in
 * tiles of BM_SCANL_TT steps:
 *   1. stage   the group writes the tile to local memory: per (step, channel) delta =
 *              softplus(dt + dt_bias) (once, not once per state) and delta*u as one float2
 *              (ldd[channel][step]), D*u and silu(z) as another (lsg[step][channel]); B_t and C_t
 *              of every step as float2 (B_j, C_j) (lbc[state][step]). ldd and lbc rows have an
 *              odd compile-time length BM_SCANL_LD = TT|1: the unrolled step loop reads them at
 *              constant offsets (no address arithmetic per step) and a warp's lanes (consecutive
 *              states) hit different banks.
 *              Steps past T get delta = delta*u = 0, which leaves every h exactly unchanged
 *              (exp2(0) = 1), so the unrolled step loop below needs no bound check.
 *   2. barrier; every work-item runs its states through the TT steps:
 *              h_j = exp2(delta * A_j log2 e) h_j + (delta u) B_j, and writes p = sum_s C_j h_j to
 *              part[step][channel][lane] (rows of part_ld floats). Only the h chain is serial
 *              (one FMA per step); the exps and loads of the unrolled steps are independent of it.
 *   3. barrier; each (step, channel) pair of the tile is finished by one work-item: the sum of
 *              its nl partial sums (float4 reads), + D*u, * silu(z) -> y, consecutive work-items
 *              on consecutive channels of a row (coalesced as far as chs channels allow).
 *   The loads of tile k+1 (u, dt, z of the work-item's (step, channel) pairs and its share of
 *   B/C) are issued into registers right after tile k is staged, so their latency runs under
 *   the tile's arithmetic; only the first tile waits. Shares larger than the prefetch registers
 *   (BM_SCANL_PFP, BM_SCANL_PFB; small n or many channels per group) are loaded at stage time.
 *   B/C: with >= 2n work-items per group each stages one fixed column (value r of B|C) of every
 *   gb-th step, gb = wg / 2n; smaller groups use a plain strided loop (no prefetch).
 *   Two barriers per tile. The work-item that stages a pair also finishes it, so its D*u and
 *   silu(z) need no barrier of their own.
 *   Local memory per group (float2): ldd chs*LD, lsg TT*chs, lbc n_pad*LD; part TT*chs*part_ld
 *   floats (n = 16, SPL = 1, chs = 4, TT = 32: 1 + 1 + 4.1 + 10 KB). The launcher sizes them.
 *
 * Why (vs cl/scan.cl, ~87-100 us at B=1, di=1536, n=16, T=2048 on the H200): the chunked kernel
 * computes exp(delta*A) twice per (t, channel, state) (end states from zero, then the final
 * recurrence) plus a combine pass, and each of its work-items runs 16 states per step, which is
 * latency-bound. Here: 50M exps once (the H200's special-function units, 16/clk/SM, need
 * ~13 us for them), and 24576 work-items of short steps with all their loads prefetched.
 * Instruction estimate per work-item and tile at SPL = 1, n = 16, chs = 4, TT = 32 (the H200
 * shape): the steps 32 x ~9 (2 local loads: delta|du, B|C; 4 FMUL/FFMA + 1 EX2; 1 local store
 * and its address) = ~290; 2 (step, channel) pairs staged (softplus, silu, stores: ~100) and
 * finished (4 float4 reads, 15 adds, y: ~60); 16 B/C values prefetched and staged (~110);
 * ~15 for the loop and barriers: ~575, i.e. ~18 per (step, state), ~28M warp-instructions =
 * ~28 us on 132 SMs x 4 schedulers at 1.9 GHz if every cycle issued (the target is 33 us). The
 * EX2s alone (16/clk/SM) need ~13 us and overlap. Levers, all tunable: SPL = 2 shares the
 * delta|du load and the part store between two states (~16 per state) with half the
 * work-items; more channels per group (BMOJO_SCAN_LANES_CH) share each B/C value among more
 * channels but leave fewer groups per compute unit (B = 1: 384 groups of 64 at chs = 4).
 * Measured on the H200: see the top of this file and docs/performance.md.
 *
 * Tunables (-D, e.g. via BMOJO_CL_DEFINES; the launcher reads SPL and TT back through
 * bm_program_config (cl/program_config.cl) at start-up, so host and kernels always agree):
 *   BM_SCANL_SPL  states per work-item (1, 2 or 4): more states share the per-step loads and the
 *                 partial-sum store, fewer work-items are left to hide latency.
 *   BM_SCANL_TT   steps per tile: longer tiles amortize the two barriers and give the prefetch
 *                 more arithmetic to hide behind; local memory and registers grow with it.
 *   BM_SCANL_PFP  (step, channel) pairs per work-item prefetched in registers (3 floats each);
 *                 the default fits n = 16 exactly (TT / nl).
 *   BM_SCANL_PFB  B/C values per work-item prefetched in registers; the default fits n = 16 with
 *                 4 channels per group exactly (TT / gb = 2*TT*SPL/4), capped at 32 registers.
 */
#ifndef BM_SCANL_SPL
#define BM_SCANL_SPL 1
#endif
#ifndef BM_SCANL_TT
#define BM_SCANL_TT 32
#endif
#ifndef BM_SCANL_PFP
#define BM_SCANL_PFP ((BM_SCANL_TT * BM_SCANL_SPL + 15) / 16)
#endif
#ifndef BM_SCANL_PFB
#define BM_SCANL_PFB (BM_SCANL_TT * BM_SCANL_SPL < 2 ? 1 : BM_SCANL_TT * BM_SCANL_SPL / 2 < 32 ? BM_SCANL_TT * BM_SCANL_SPL / 2 : 32)
#endif
#if BM_SCANL_SPL < 1 || BM_SCANL_TT < 1 || BM_SCANL_PFP < 1 || BM_SCANL_PFB < 1
#error "BM_SCANL_SPL, BM_SCANL_TT, BM_SCANL_PFP and BM_SCANL_PFB must be >= 1"
#endif
/* Row length (float2) of ldd and lbc, which hold one row per channel / per state with the tile's
 * steps along it: a compile-time stride, so that the unrolled step loop addresses them with
 * constant offsets, and odd, so that the lanes of a warp (consecutive states) read different
 * banks. */
#define BM_SCANL_LD (BM_SCANL_TT | 1)

/* B or C value number r (0 <= r < 2n: B_0..B_{n-1}, C_0..C_{n-1}) of row `row` (0 past T). */
static inline float bm_scanl_bc_load(__global const float *bc, size_t row, int valid, uint bc_ld, uint b_col,
                                     uint c_col, int n, int r)
{
    if (!valid) return 0.0f;
    return bc[row * bc_ld + (r < n ? b_col + (uint)r : c_col + (uint)(r - n))];
}

/* Where B/C value r of tile step t goes: lbc is float2 (B_j, C_j) at [state j][step t], rows of
 * BM_SCANL_LD. */
static inline void bm_scanl_bc_store(__local float *lbc, int n, int t, int r, float v)
{
    const int isc = r >= n;
    lbc[((isc ? r - n : r) * BM_SCANL_LD + t) * 2 + isc] = v;
}

/* Stages (step t, channel slot chp) of a tile from its raw u, dt, z: (delta, delta*u) to
 * ldd[chp][t] and (D*u, silu(z)) to lsg[t][chp]; a step past T gets (0, 0), which leaves h
 * unchanged. */
static inline void bm_scanl_pair_store(__local float2 *ldd, __local float2 *lsg, int t, int chp, int chs, int valid,
                                       float uv, float dtv, float zv, float bias, float dskip)
{
    if (valid) {
        const float delta = bm_softplus(dtv + bias);
        ldd[chp * BM_SCANL_LD + t] = (float2)(delta, delta * uv);
        lsg[t * chs + chp] = (float2)(dskip * uv, bm_silu(zv));
    } else {
        ldd[chp * BM_SCANL_LD + t] = (float2)(0.0f, 0.0f);
    }
}

/* One pass over time. Arguments: sizes; nl lanes per channel (ceil(n / BM_SCANL_SPL)), chs
 * channels per work-group, part_ld the row length of `part` (>= nl, a multiple of 4); the
 * bm_scan_args views; local arrays of chs*LD (ldd), TT*chs (lsg), nl*SPL*LD (lbc) float2 and
 * TT*chs*part_ld (part) floats, LD = BM_SCANL_LD.
 * Global (ceil(di / chs) * nl*chs, B), local (nl*chs, 1). */
__kernel void bm_scan_lanes(int T, int di, int n, int nl, int chs, int part_ld,
                            __global const float *u, __global const float *dt, uint dt_ld,
                            __global const float *dt_bias, __global const float *A,
                            __global const float *bc, uint bc_ld, uint b_col, uint c_col,
                            __global const float *Dv, __global const float *z, uint z_ld, uint z_col,
                            __global float *state, __global float *y,
                            __local float2 *ldd, __local float2 *lsg, __local float2 *lbc, __local float4 *part4)
{
    __local float *part = (__local float *)part4;   /* float4-typed argument: 16-byte aligned */
    const int lid = (int)get_local_id(0);
    const int wg = nl * chs;
    const int b = (int)get_group_id(1);
    const int c0 = (int)get_group_id(0) * chs;
    const int n_pad = nl * BM_SCANL_SPL;   /* states incl. padding */
    const size_t row_b = (size_t)b * (size_t)T;
    __local float *lbcf = (__local float *)lbc;

    /* Recurrence role: lane `lane` of channel c0 + chr. */
    const int lane = lid % nl, chr = lid / nl;
    const int c = c0 + chr;
    const int c_ok = c < di;
    const int cr = c_ok ? c : di - 1;   /* padding channels compute on channel di-1, never store */
    float h[BM_SCANL_SPL], a[BM_SCANL_SPL];
#pragma unroll
    for (int s = 0; s < BM_SCANL_SPL; s++) {
        const int j = lane * BM_SCANL_SPL + s;
        h[s] = j < n ? state[((size_t)b * di + cr) * n + j] : 0.0f;
        a[s] = j < n ? A[(size_t)cr * n + j] * BM_SCAN_ASCALE : 0.0f;
    }

    /* Staging/finishing role: pairs (step tp0 + q*nl, channel slot chp) for q = 0, 1, ...
     * (wg is a multiple of chs, so the slot is the same for every q). */
    const int chp = lid % chs, tp0 = lid / chs;
    const int cp_ok = c0 + chp < di;
    const int cp = cp_ok ? c0 + chp : di - 1;
    const float bias = dt_bias[cp], dskip = Dv[cp];

    /* B/C role. The tile holds TT rows of 2n values (B_0..B_{n-1}, C_0..C_{n-1}). When the group
     * has at least 2n work-items (the usual case: n = 16, 4 channels of 16 lanes), work-item lid
     * < gb*2n always stages value br = lid % 2n, of steps bt0 + q*gb: a fixed column, so each
     * value costs a load, a store and two address increments. Work-items past gb*2n have no
     * B/C share (bt0 = TT). Smaller groups (gb = 0) stage value k = lid + i*wg in a plain loop
     * without prefetch. */
    const int two_n = 2 * n;
    const int gb = wg / two_n;
    const int br = gb > 0 ? lid % two_n : 0;
    const int bt0 = gb > 0 && lid < gb * two_n ? lid / two_n : BM_SCANL_TT;
    const uint bcol = br < n ? b_col + (uint)br : c_col + (uint)(br - n);
    __local float *lbcw = lbcf + (br < n ? br : br - n) * BM_SCANL_LD * 2 + (br >= n);

    /* B = C = 0 for the padding states, once: staging never writes them. */
    if (n_pad > n) {
        const int np = n_pad - n;
        for (int i = lid; i < BM_SCANL_TT * np; i += wg) {
            const int t = i / np;
            lbc[(n + (i - t * np)) * BM_SCANL_LD + t] = (float2)(0.0f, 0.0f);
        }
    }

    /* Prefetch registers: raw inputs of the next tile to stage. */
    float pu[BM_SCANL_PFP], pd[BM_SCANL_PFP], pz[BM_SCANL_PFP], pbc[BM_SCANL_PFB];

#define BM_SCANL_PREFETCH(t0_)                                                                       \
    do {                                                                                            \
        _Pragma("unroll") for (int q_ = 0; q_ < BM_SCANL_PFP; q_++) {                               \
            const int t_ = tp0 + q_ * nl;                                                           \
            const int ok_ = t_ < BM_SCANL_TT && (t0_) + t_ < T;                                     \
            const size_t r_ = row_b + (size_t)(ok_ ? (t0_) + t_ : 0);                               \
            pu[q_] = ok_ ? u[r_ * di + cp] : 0.0f;                                                  \
            pd[q_] = ok_ ? dt[r_ * dt_ld + cp] : 0.0f;                                              \
            pz[q_] = ok_ ? z[r_ * z_ld + z_col + cp] : 0.0f;                                        \
        }                                                                                           \
        _Pragma("unroll") for (int q_ = 0; q_ < BM_SCANL_PFB; q_++) {                               \
            const int t_ = bt0 + q_ * gb;                                                           \
            const int ok_ = t_ < BM_SCANL_TT && (t0_) + t_ < T;                                     \
            pbc[q_] = ok_ ? bc[(row_b + (size_t)((t0_) + t_)) * bc_ld + bcol] : 0.0f;               \
        }                                                                                           \
    } while (0)

    BM_SCANL_PREFETCH(0);
    for (int t0 = 0; t0 < T; t0 += BM_SCANL_TT) {
        /* 1. Stage tile t0 (from the prefetch registers, then any share beyond them). */
#pragma unroll
        for (int q = 0; q < BM_SCANL_PFP; q++) {
            const int t = tp0 + q * nl;
            if (t < BM_SCANL_TT) bm_scanl_pair_store(ldd, lsg, t, chp, chs, t0 + t < T, pu[q], pd[q], pz[q], bias, dskip);
        }
        for (int t = tp0 + BM_SCANL_PFP * nl; t < BM_SCANL_TT; t += nl) {
            const int ok = t0 + t < T;
            const size_t r = row_b + (size_t)(ok ? t0 + t : 0);
            bm_scanl_pair_store(ldd, lsg, t, chp, chs, ok, ok ? u[r * di + cp] : 0.0f,
                                ok ? dt[r * dt_ld + cp] : 0.0f, ok ? z[r * z_ld + z_col + cp] : 0.0f, bias, dskip);
        }
#pragma unroll
        for (int q = 0; q < BM_SCANL_PFB; q++) {
            const int t = bt0 + q * gb;
            if (t < BM_SCANL_TT) lbcw[2 * t] = pbc[q];
        }
        if (gb > 0) {
            for (int t = bt0 + BM_SCANL_PFB * gb; t < BM_SCANL_TT; t += gb)
                lbcw[2 * t] = t0 + t < T ? bc[(row_b + (size_t)(t0 + t)) * bc_ld + bcol] : 0.0f;
        } else {
            for (int k = lid; k < BM_SCANL_TT * two_n; k += wg) {
                const int t = k / two_n;
                bm_scanl_bc_store(lbcf, n, t, k - t * two_n,
                                  bm_scanl_bc_load(bc, row_b + (size_t)(t0 + t), t0 + t < T, bc_ld, b_col, c_col, n, k - t * two_n));
            }
        }
        /* The next tile's loads, in flight during this tile's arithmetic. */
        if (t0 + BM_SCANL_TT < T) BM_SCANL_PREFETCH(t0 + BM_SCANL_TT);
        barrier(CLK_LOCAL_MEM_FENCE);

        /* 2. The recurrence over the tile's steps. */
        __local const float2 *ddr = ldd + chr * BM_SCANL_LD;
        __local const float2 *bcr = lbc + lane * BM_SCANL_SPL * BM_SCANL_LD;
        __local float *pw = part + chr * part_ld + lane;
#pragma unroll
        for (int t = 0; t < BM_SCANL_TT; t++) {
            const float2 dd = ddr[t];
            float p = 0.0f;
#pragma unroll
            for (int s = 0; s < BM_SCANL_SPL; s++) {
                const float2 bcv = bcr[s * BM_SCANL_LD + t];
                const float e = bm_scan_exp_a(dd.x * a[s]);
                h[s] = e * h[s] + dd.y * bcv.x;
                p += bcv.y * h[s];
            }
            pw[t * chs * part_ld] = p;
        }
        barrier(CLK_LOCAL_MEM_FENCE);

        /* 3. y of this work-item's pairs of the tile. */
        for (int t = tp0; t < BM_SCANL_TT; t += nl) {
            if (t0 + t >= T || !cp_ok) break;
            const int idx = t * chs + chp;
            __local const float *pr = part + idx * part_ld;
            float4 s4 = (float4)(0.0f);
            int l = 0;
            for (; l + 4 <= nl; l += 4) s4 += *(__local const float4 *)(pr + l);
            float sum = (s4.x + s4.y) + (s4.z + s4.w);
            for (; l < nl; l++) sum += pr[l];
            const float2 sg = lsg[idx];
            y[(row_b + (size_t)(t0 + t)) * di + c0 + chp] = (sum + sg.x) * sg.y;
        }
    }
#undef BM_SCANL_PREFETCH

    if (c_ok) {
#pragma unroll
        for (int s = 0; s < BM_SCANL_SPL; s++) {
            const int j = lane * BM_SCANL_SPL + s;
            if (j < n) state[((size_t)b * di + c) * n + j] = h[s];
        }
    }
}
