/* common.cl — helpers shared by every kernel (the embedded sources are concatenated after this
 * file into one program). Tunables arrive as -D options from the runtime; the defaults here are
 * safe on any OpenCL 1.2 device. */
#ifndef BM_WG
#define BM_WG 64          /* work-group size the kernels are built for (power of 2) */
#endif

static inline float bm_silu(float x) { return x / (1.0f + exp(-x)); }

/* log(1 + e^x) without overflow; matches torch.nn.functional.softplus (threshold 20). */
static inline float bm_softplus(float x) { return x > 20.0f ? x : log1p(exp(x)); }

/* The sum of a float16's lanes, folded in halves (the CPU kernels' horizontal sum). */
static inline float bm_hsum16(float16 v)
{
    const float8 a = v.lo + v.hi;
    const float4 b = a.lo + a.hi;
    return (b.x + b.y) + (b.z + b.w);
}

/* The CPU kernels' rows of 16 channels from c0 (lanes as float16): a vector load where the 16
 * are inside [0, n), else the lanes at n and past read 0; the store writes only lanes below n. */
static inline float16 bm_load16_upto(__global const float *row, int c0, int n)
{
    if (c0 + 16 <= n) return vload16(0, row + c0);
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = c0 + i < n ? row[c0 + i] : 0.0f;
    return vload16(0, v);
}

static inline void bm_store16_upto(float16 v, __global float *row, int c0, int n)
{
    if (c0 + 16 <= n) {
        vstore16(v, 0, row + c0);
        return;
    }
    float o[16];
    vstore16(v, 0, o);
    for (int i = 0; c0 + i < n && i < 16; i++) row[c0 + i] = o[i];
}

/* Stores the first (dh - d0) of a's four lanes at row[d0..]: an output row whose length need not
 * be a multiple of 4 (the attention kernels' register tiles). */
static inline void bm_store4_partial(__global float *row, int d0, int dh, float4 a)
{
    if (d0 < dh) row[d0] = a.x;
    if (d0 + 1 < dh) row[d0 + 1] = a.y;
    if (d0 + 2 < dh) row[d0 + 2] = a.z;
    if (d0 + 3 < dh) row[d0 + 3] = a.w;
}

/* Weight storage (`--weights f16`; src/runtime.h, bm_wmat): a kernel that reads a weight matrix W
 * takes it as bytes plus a compile-time constant w16, and is instantiated twice, `<name>` (fp32 W)
 * and `<name>_w16` (half W), each passing its literal, so the branch below folds away when the
 * helper is inlined. Half is storage only: vload_half* (core OpenCL 1.2, no cl_khr_fp16) widens
 * to fp32 and all arithmetic stays fp32. i counts elements of W's type; vload_half* needs 2-byte
 * alignment, vload4/16 of floats 4-byte. */
static inline __global const uchar *bm_w_at(__global const uchar *W, ulong i, const int w16)
{
    return W + i * (w16 ? 2 : 4);
}
static inline float bm_w_load(__global const uchar *W, ulong i, const int w16)
{
    return w16 ? vload_half(i, (__global const half *)W) : ((__global const float *)W)[i];
}
static inline float4 bm_w_load4(__global const uchar *W, ulong i, const int w16)
{
    return w16 ? vload_half4(0, (__global const half *)W + i) : vload4(0, (__global const float *)W + i);
}
static inline float16 bm_w_load16(__global const uchar *W, ulong i, const int w16)
{
    return w16 ? vload_half16(0, (__global const half *)W + i) : vload16(0, (__global const float *)W + i);
}
