/* bmojo_innovation_cpu.cl — the B'MOJO innovation eps of a prefill for CPU devices (POCL):
 * bm_bmojo_innovation's outputs, bit for bit (cl/bmojo_innovation.cl: layout, math, and why the
 * bits matter), launcher src/ops/op_bmojo_innovation.c (the CPU form, rt->bmojo_innov_form).
 *
 * Shape of the work: one work-item per BM_BMOJO_INNOV_CPU_ROWS token rows, a CPU thread's job. A
 * row's eps is summed in the GPU form's order exactly: the partial sum of "item" l (< WG =
 * BM_BMOJO_INNOV_WG, the GPU form's work-group size on this device) takes channels l, l + WG, ..
 * in turn, then the same tree (part[l] += part[l + off], off = WG/2 .. 1) runs over a private
 * array. Channels go 16 at a time as float16 (lane by lane the scalar helper's operations, with
 * contraction off), the rest one by one. The decoding step (bm_bmojo_step) sums with the GPU
 * form's helper and tree over the same size, its CPU form (bm_bmojo_step_cpu) with this file's
 * bm_bmojo_eps_row_cpu, so prefill and decoding give a row the same eps on every device, and
 * ties stay ties.
 *
 * Why: the GPU form gives each row a work-group of BM_WG (256 on POCL) items with a barrier tree;
 * POCL schedules each group as a loop of its items between barriers: bm_bmojo_innovation was 7.4
 * us/token, 40 % of a 2-layer MQAR B'MOJO's training pass (d 64; 4 launches of 4096 rows).
 * Tunable: BM_BMOJO_INNOV_CPU_ROWS (16).
 */
#ifndef BM_BMOJO_INNOV_CPU_ROWS
#define BM_BMOJO_INNOV_CPU_ROWS 16
#endif

/* (y - sum_i c_i prev_i)^2 of 16 channels, lane by lane bm_bmojo_innov_sq's operations. */
static inline float16 bm_bmojo_innov_sq16(float16 yt, const float16 *prev, const float *c, int k)
{
#pragma OPENCL FP_CONTRACT OFF
    float16 yhat = 0.0f;
    for (int i = 0; i < k; i++) yhat += c[i] * prev[i];
    float16 e = yt - yhat;
    return e * e;
}

/* eps of one token row yr (d channels) whose k predecessor rows are src[0..k-1] (row t-1 first),
 * in the GPU form's order (the partial sums of BM_BMOJO_INNOV_WG "items", then their tree). */
static inline float bm_bmojo_eps_row_cpu(__global const float *yr, __global const float *const *src, const float *c,
                                         const int d, const int k)
{
    float part[BM_BMOJO_INNOV_WG];
    for (int l = 0; l < BM_BMOJO_INNOV_WG; l++) part[l] = 0.0f;
    int ch = 0;
    if (BM_BMOJO_INNOV_WG % 16 == 0)
        for (; ch + 16 <= d; ch += 16) {
            float16 prev[16];
            for (int i = 0; i < k; i++) prev[i] = vload16(0, src[i] + ch);
            const int l = ch % BM_BMOJO_INNOV_WG;
            vstore16(vload16(0, part + l) + bm_bmojo_innov_sq16(vload16(0, yr + ch), prev, c, k), 0, part + l);
        }
    for (; ch < d; ch++) {
        float prev[16];
        for (int i = 0; i < k; i++) prev[i] = src[i][ch];
        part[ch % BM_BMOJO_INNOV_WG] += bm_bmojo_innov_sq(yr[ch], prev, c, k);
    }
    for (int off = BM_BMOJO_INNOV_WG / 2; off > 0; off >>= 1)
        for (int l = 0; l < off; l++) part[l] += part[l + off];
    return part[0];
}

/* Global (ceil(rows / BM_BMOJO_INNOV_CPU_ROWS)), local (1); rows = B*T. Arguments as
 * bm_bmojo_innovation's, then rows. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_bmojo_innovation_cpu(__global const float *y, __global const float *y_hist, __global float *eps_base,
                        const ulong eps_off, const int T, const int d, const int k, const float16 taps,
                        const int rows)
{
    __global float *eps = eps_base + eps_off;
    const int r0 = (int)get_global_id(0) * BM_BMOJO_INNOV_CPU_ROWS, r1 = min(rows, r0 + BM_BMOJO_INNOV_CPU_ROWS);
    float c[16];
    vstore16(taps, 0, c);
    for (int row = r0; row < r1; row++) {
        const int b = row / T, t = row - b * T;
        /* row t - i: in this call, or slot k + t - i of the history */
        __global const float *src[16];
        for (int i = 1; i <= k; i++)
            src[i - 1] = t - i >= 0 ? y + (size_t)(row - i) * d : y_hist + ((size_t)b * k + (k + t - i)) * d;
        eps[row] = bm_bmojo_eps_row_cpu(y + (size_t)row * d, src, c, d, k);
    }
}
