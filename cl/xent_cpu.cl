/* xent_cpu.cl — the CPU form of bm_xent_bwd (cl/xent.cl; same contract and layout: logits fp32
 * [rows, ld], V columns used; targets int32 [rows]; loss fp32 [rows]; hit int32 [rows] or NULL),
 * launcher src/ops/op_xent.c.
 *
 * One work-item per row (groups of one item: a CPU thread's job), the row's columns 16 at a time
 * as float16 vectors (the last V % 16 scalar): its max, the sum of exp(l - max), then the
 * gradient. The row's maximum is exact, so hit agrees with the GPU form and the reference bit for
 * bit; the loss differs from theirs by round-off only.
 *
 * Why: the GPU form gives each row a work-group of BM_WG items and a barrier tree, which POCL runs
 * as one thread stepping through the items between barriers: 17 us per token of a training pass
 * at vocabulary 8192 (20 % of a 2-layer attention MQAR model's kernel time on 2 cores). */

__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void bm_xent_bwd_cpu(__global float *logits, ulong ld, int V, __global const int *targets, float scale,
                     __global float *loss, __global int *hit)
{
    const ulong r = (ulong)get_global_id(0);
    __global float *row = logits + r * ld;
    const int t = targets[r], n16 = V / 16;
    if (t < 0 || t >= V) {
        for (int c = 0; c < n16; c++) vstore16((float16)(0.0f), c, row);
        for (int j = n16 * 16; j < V; j++) row[j] = 0.0f;
        loss[r] = t < 0 ? 0.0f : NAN;
        if (hit) hit[r] = 0;
        return;
    }
    const float lt = row[t];
    /* the max first, then the sum of exp(l - max): three reads of a row that stays in the cache,
     * one exp per column (an online max and sum needs a second exp to rescale) */
    float16 m16 = (float16)(-INFINITY);
    for (int c = 0; c < n16; c++) m16 = fmax(m16, vload16(c, row));
    const float8 m8 = fmax(m16.lo, m16.hi);
    const float4 m4 = fmax(m8.lo, m8.hi);
    float mx = fmax(fmax(m4.x, m4.y), fmax(m4.z, m4.w));
    for (int j = n16 * 16; j < V; j++) mx = fmax(mx, row[j]);
    /* the sum as 1 + rest, rest = the terms of the columns below the max and (ties - 1), and the
     * loss log1p(rest): as cl/xent.cl (its top comment says why) */
    float16 s16 = 0.0f;
    int16 tie16 = 0; /* -1 per column at the max (a vector comparison's true) */
    for (int c = 0; c < n16; c++) {
        const float16 v = vload16(c, row);
        const int16 at_max = v == (float16)(mx);
        s16 += select(exp(v - mx), (float16)(0.0f), at_max);
        tie16 += at_max;
    }
    float rest = bm_hsum16(s16);
    const int8 t8 = tie16.lo + tie16.hi;
    const int4 t4 = t8.lo + t8.hi;
    int ties = -((t4.x + t4.y) + (t4.z + t4.w));
    for (int j = n16 * 16; j < V; j++) {
        if (row[j] == mx) ties++;
        else rest += exp(row[j] - mx);
    }
    rest += (float)(ties - 1);
    const float sum = 1.0f + rest;
    const float inv = scale / sum;
    for (int c = 0; c < n16; c++) vstore16(exp(vload16(c, row) - mx) * inv, c, row);
    for (int j = n16 * 16; j < V; j++) row[j] = exp(row[j] - mx) * inv;
    row[t] -= scale;
    loss[r] = (mx - lt) + log1p(rest);
    if (hit) hit[r] = lt >= mx ? 1 : 0;
}
