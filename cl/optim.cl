/* optim.cl — the optimizer step of `bmojo train` on the parameter table's flat fp32 buffers
 * (src/params.h: every tensor's values in one buffer, gradients in another with the same layout,
 * AdamW's m and v in two more; tensors at aligned offsets, the gaps zero in all of them).
 * Launchers: src/ops/op_optim.c; references: src/ref/ref_optim.c.
 *
 * 1. Global gradient norm: the sum of squares of a float range, deterministic, in two launches.
 *    bm_sumsq_part: G work-groups of BM_WG items; group g owns the contiguous chunk
 *    [g * chunk, (g + 1) * chunk) of the range; item l sums the squares of chunk elements
 *    l, l + BM_WG, ... (coalesced) with Kahan compensation, then the group adds its BM_WG sums by
 *    a pairwise tree in local memory and writes partial[g]. bm_sumsq_final: one work-group does
 *    the same over the G partials (G a launcher argument fixed by n alone) and
 *    writes out[out_index]. Fixed order everywhere, no atomics: bit-identical on reruns.
 *    Accuracy: all terms are >= 0 (no cancellation), so the relative error of a plain sequential
 *    float sum over n terms is bounded by about n * 2^-24 — for 1e8 gradients that bound is
 *    useless, and in practice the sum stagnates once it is 2^24 times the typical term (the
 *    later squares are rounded away entirely). A compensated sum per item has an error
 *    independent of the count it sums (2 eps + O(n eps^2)), and the two trees add log2(BM_WG)
 *    + log2(G) roundings each of at most eps: about 20 * 6e-8 ≈ 1e-6 relative in the worst case
 *    however large the model. Tried/considered: accumulating in fp64 (exact enough, but fp64 is
 *    optional in OpenCL 1.2 and slow or absent on many GPUs); a pure pairwise tree over every
 *    element (same accuracy, but needs log2(n) passes or a recursion of launches); per-tensor
 *    norms combined as PyTorch's clip_grad_norm_ does (one launch per tensor, hundreds of tiny
 *    launches; the gaps between tensors are zero, so one range over the whole buffer gives the
 *    same quantity).
 *
 * 2. bm_clip_scale: one item turns buf[sumsq_index] into buf[out] = norm = sqrt(sumsq) and
 *    buf[out + 1] = scale = min(1, max_norm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_'s
 *    coefficient, clamped at 1); max_norm <= 0: no clipping, scale 1. The AdamW step reads the
 *    scale from there, so nothing crosses to the host; the host reads the norm only to log it.
 *
 * 3. bm_adamw_step: one item per element of [off, off + n), exactly torch.optim.AdamW's
 *    single-tensor (foreach=False, non-amsgrad, non-maximize) order of operations, each in fp32:
 *      g  = grad * scale                        (clip_grad_norm_'s grads.mul_(clip_coef_clamped))
 *      p  = p * decay_mul                       (param.mul_(1 - lr * wd); decay_mul from fp64)
 *      m  = lerp(m, g, 1 - beta1)               (exp_avg.lerp_: m + w (g - m) for |w| < 0.5,
 *                                                else g - (g - m)(1 - w), as ATen's lerp)
 *      v  = v * beta2; v = v + (1 - beta2) g g  (exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2))
 *      d  = sqrt(v) / sqrt(bc2) + eps           (denom = exp_avg_sq.sqrt() / bc2_sqrt + eps)
 *      p  = p + (-lr / bc1) * (m / d)           (param.addcdiv_(exp_avg, denom, -step_size))
 *    with bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, lr / bc1, sqrt(bc2) and 1 - lr * wd computed in
 *    fp64 on the host and rounded to fp32 once, as PyTorch's Python scalars are when they meet a
 *    float tensor. FP_CONTRACT is off so every operation rounds separately, as the reference does.
 *    What can differ from PyTorch in the last ulp: sqrt and division (OpenCL allows 3 and 2.5 ulp
 *    unless the device rounds correctly; PyTorch's are correctly rounded); ATen's vectorized CPU
 *    lerp may use an fma; addcdiv on CPU rounds (value * m) / d where CUDA and we round
 *    value * (m / d); the clip coefficient comes from one global sum of squares, not from a norm
 *    of per-tensor norms. The clipped gradient is not written back (PyTorch scales the .grad in
 *    place): the gradients are zeroed before the next step anyway.
 *    Gaps between tensors stay zero: g = m = v = p = 0 gives d = eps and p + (-step) * 0 = 0.
 *
 * No tunables: the number of partials G and the chunk are launcher arguments chosen from n alone
 * (op_optim.c), so host and kernels never disagree and a rerun adds in the same order. */

__kernel __attribute__((reqd_work_group_size(BM_WG, 1, 1)))
void bm_sumsq_part(__global const float *x, ulong off, ulong n, ulong chunk, __global float *partial)
{
    __local float part[BM_WG];
    int lid = (int)get_local_id(0);
    ulong g = (ulong)get_group_id(0);
    ulong b = g * chunk, e = min(n, b + chunk);
    float sum = 0.0f, c = 0.0f; /* Kahan: c holds the low-order part lost from sum */
    for (ulong i = b + (ulong)lid; i < e; i += BM_WG) {
        float v = x[off + i];
        float y = v * v - c;
        float t = sum + y;
        c = (t - sum) - y;
        sum = t;
    }
    part[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = BM_WG / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partial[g] = part[0];
}

__kernel __attribute__((reqd_work_group_size(BM_WG, 1, 1)))
void bm_sumsq_final(__global const float *partial, int groups, __global float *out, ulong out_index)
{
    __local float part[BM_WG];
    int lid = (int)get_local_id(0);
    float sum = 0.0f, c = 0.0f;
    for (int i = lid; i < groups; i += BM_WG) {
        float y = partial[i] - c;
        float t = sum + y;
        c = (t - sum) - y;
        sum = t;
    }
    part[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = BM_WG / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[out_index] = part[0];
}

__kernel void bm_clip_scale(__global float *buf, ulong sumsq_index, ulong out_index, float max_norm)
{
    if (get_global_id(0) != 0) return;
    float norm = sqrt(buf[sumsq_index]);
    float scale = 1.0f;
    if (max_norm > 0.0f) scale = fmin(1.0f, max_norm / (norm + 1e-6f));
    buf[out_index] = norm;
    buf[out_index + 1] = scale;
}

__kernel void bm_adamw_step(__global float *p, __global const float *grad, __global float *m, __global float *v,
                            __global const float *clip, ulong scale_index, ulong off, ulong n, float decay_mul,
                            float w1, float beta2, float omb2, float neg_step, float bc2_sqrt, float eps)
{
#pragma OPENCL FP_CONTRACT OFF
    ulong i = (ulong)get_global_id(0);
    if (i >= n) return;
    i += off;
    float g = grad[i] * clip[scale_index];
    float pv = p[i] * decay_mul;
    float mv = m[i];
    mv = fabs(w1) < 0.5f ? mv + w1 * (g - mv) : g - (g - mv) * (1.0f - w1);
    float vv = v[i] * beta2;
    vv = vv + omb2 * g * g;
    float d = sqrt(vv) / bc2_sqrt + eps;
    pv = pv + neg_step * (mv / d);
    p[i] = pv;
    m[i] = mv;
    v[i] = vv;
}
