/* rope.cl — rotary position embedding, HF "rotate half" convention (Llama / Mistral), in place.
 *
 * Layout: x [B*T, ld], nh heads of dh (even) values at columns col + h*dh; token t of each
 * sequence has absolute position pos0 + t. For i < dh/2, with x1 = x[i], x2 = x[i + dh/2]:
 *   x1' = x1 cos(a) - x2 sin(a),  x2' = x2 cos(a) + x1 sin(a),  a = fl32(fl32(pos) * inv_freq_i).
 *
 * Accuracy / why this formulation: HF transformers (also when the model runs in float64)
 * computes inv_freq = 1 / theta^(2i/dh) in float32 and the angle as one float32 product
 * pos * inv_freq, then cos/sin of that float32 angle. We reproduce exactly that: the angle is the
 * same float32 number as HF's, so cos/sin (OpenCL: <= 4 ulp) differ from HF by ~1e-7 relative
 * at any position. inv_freq itself must be bit-identical, which OpenCL's pow (up to 16 ulp)
 * cannot promise — at position 30000 one ulp of inv_freq moves the angle by ~2e-3 rad — so the
 * launcher computes the table on the host (double pow, rounded to float, like torch's fp32 pow)
 * and passes it by value as 8 float16 arguments (dh <= 256; no buffer allocation per call).
 * Note that the float32 angle itself differs from the exact real angle by up to
 * pos * 2^-24 rad (1.8e-3 rad at pos 30000): that is HF's behaviour, which we match, and is the
 * accuracy limit of any fp32 angle. Computing the angle in double in a reference and in float
 * here would disagree by that much; tests/ops/test_rope.c reports both deviations.
 * One work-item per (row, head, pair i): each reads two values and writes two, coalesced in i.
 * bm_rope_bwd (training) is the transpose, the rotation by -angle, sharing the body; the forward's
 * arithmetic is unchanged by it (its sign is a folded constant).
 */
/* One (row, head, pair) of the rotation; sgn (a literal 1 or -1 at each call, folded by the
 * compiler) picks the angle's sign: bm_rope rotates by +a, its transpose bm_rope_bwd by -a. */
static inline void bm_rope_pair(__global float *x, const long ld, const long col, const int T, const int nh,
                                const int dh, const long pos0, const long total, __local const float *inv,
                                const float sgn)
{
    const long e = (long)get_global_id(0);
    if (e >= total) return;
    const int nhalf = dh / 2;
    const int i = (int)(e % nhalf);
    const long rest = e / nhalf;
    const int h = (int)(rest % nh);
    const long row = rest / nh;
    const long pos = pos0 + row % T;
    const float a = convert_float_rte(pos) * inv[i];
    const float c = cos(a), s = sgn > 0.0f ? sin(a) : -sin(a);
    __global float *xp = x + row * ld + col + (long)h * dh + i;
    const float x1 = xp[0], x2 = xp[nhalf];
    xp[0] = x1 * c - x2 * s;
    xp[nhalf] = x2 * c + x1 * s;
}

/* The inverse-frequency table from the 8 float16 arguments into local memory. */
#define BM_ROPE_LOAD_INV(inv)                                                                      \
    do {                                                                                           \
        if (get_local_id(0) == 0) {                                                                \
            vstore16(f0, 0, inv);                                                                  \
            vstore16(f1, 1, inv);                                                                  \
            vstore16(f2, 2, inv);                                                                  \
            vstore16(f3, 3, inv);                                                                  \
            vstore16(f4, 4, inv);                                                                  \
            vstore16(f5, 5, inv);                                                                  \
            vstore16(f6, 6, inv);                                                                  \
            vstore16(f7, 7, inv);                                                                  \
        }                                                                                          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    } while (0)

__kernel void bm_rope(__global float *x, const long ld, const long col, const int T,
                      const int nh, const int dh, const long pos0, const long total,
                      const float16 f0, const float16 f1, const float16 f2, const float16 f3,
                      const float16 f4, const float16 f5, const float16 f6, const float16 f7)
{
    __local float inv[128];
    BM_ROPE_LOAD_INV(inv);
    bm_rope_pair(x, ld, col, T, nh, dh, pos0, total, inv, 1.0f);
}

/* The CPU form (src/ops/op_rope.c picks it on CPU devices, or rt->rope_form): one work-item per
 * position t, which forms the dh/2 cos/sin of its position once and rotates every head of the
 * B rows b*T + t with them, where bm_rope's work-item per (row, head, pair) recomputes them per
 * head and splits its index with 64-bit divisions: on POCL (2 cores) 89 ms of a swa-130m pp512,
 * 12 %. Per position rather than per row: the scalar cos and sin are most of the work, and a
 * training batch repeats every position in each sequence (a 2-layer MQAR attention at batch 32:
 * 0.35 us of a token's 3.7 in each direction, per row). The same builtins on the same float32
 * angle: the same values as bm_rope. sgn as in bm_rope_pair. B = total / (T * nh * dh/2).
 * Global T, local 1. */
static inline void bm_rope_position(__global float *x, const long ld, const long col, const int T, const int nh,
                               const int dh, const long pos0, const long total, const float *inv, const float sgn)
{
    const long t = (long)get_global_id(0);
    const int nhalf = dh / 2;
    const long B = total / ((long)T * nh * nhalf);
    const float pos = convert_float_rte(pos0 + t);
    float cs[128], sn[128];
    for (int i = 0; i < nhalf; i++) {
        const float a = pos * inv[i];
        cs[i] = cos(a);
        sn[i] = sgn > 0.0f ? sin(a) : -sin(a);
    }
    for (long b = 0; b < B; b++)
        for (int h = 0; h < nh; h++) {
            __global float *xp = x + (b * T + t) * ld + col + (long)h * dh;
            for (int i = 0; i < nhalf; i++) {
                const float x1 = xp[i], x2 = xp[i + nhalf];
                xp[i] = x1 * cs[i] - x2 * sn[i];
                xp[i + nhalf] = x2 * cs[i] + x1 * sn[i];
            }
        }
}

#define BM_ROPE_PRIVATE_INV(inv)                                                                  \
    float inv[128];                                                                              \
    vstore16(f0, 0, inv), vstore16(f1, 1, inv), vstore16(f2, 2, inv), vstore16(f3, 3, inv);       \
    vstore16(f4, 4, inv), vstore16(f5, 5, inv), vstore16(f6, 6, inv), vstore16(f7, 7, inv)

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_rope_cpu(__global float *x, const long ld, const long col, const int T, const int nh, const int dh, const long pos0,
            const long total, const float16 f0, const float16 f1, const float16 f2, const float16 f3, const float16 f4,
            const float16 f5, const float16 f6, const float16 f7)
{
    BM_ROPE_PRIVATE_INV(inv);
    bm_rope_position(x, ld, col, T, nh, dh, pos0, total, inv, 1.0f);
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_rope_bwd_cpu(__global float *x, const long ld, const long col, const int T, const int nh, const int dh,
                const long pos0, const long total, const float16 f0, const float16 f1, const float16 f2,
                const float16 f3, const float16 f4, const float16 f5, const float16 f6, const float16 f7)
{
    BM_ROPE_PRIVATE_INV(inv);
    bm_rope_position(x, ld, col, T, nh, dh, pos0, total, inv, -1.0f);
}

/* The transpose (training's backward, ops_backward.h): the same rotation by -angle, so
 * x1' = x1 cos + x2 sin, x2' = x2 cos - x1 sin turns d(rotated) into d(unrotated). Same arguments
 * and launch as bm_rope. */
__kernel void bm_rope_bwd(__global float *x, const long ld, const long col, const int T,
                          const int nh, const int dh, const long pos0, const long total,
                          const float16 f0, const float16 f1, const float16 f2, const float16 f3,
                          const float16 f4, const float16 f5, const float16 f6, const float16 f7)
{
    __local float inv[128];
    BM_ROPE_LOAD_INV(inv);
    bm_rope_pair(x, ld, col, T, nh, dh, pos0, total, inv, -1.0f);
}
