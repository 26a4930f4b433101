/* bmojo_state_save_cpu.cl — a B'MOJO prefill's state save for CPU devices (POCL): bm_bmojo_state_save's
 * contract and results (cl/bmojo_attention.cl: the four regions, the order of the launches that
 * makes the in-place writes safe), launcher src/ops/op_bmojo.c (with the CPU attention form).
 *
 * Shape of the work: one work-item per row of dh floats — a window ring row (the last min(T, w)
 * Kx/Vx rows), a fading ring row (the last min(T, m_f) Kf/Vf rows), a row of the memory of the
 * call's last chunk — its indices worked out once and the row copied, then one work-item per
 * sequence for its y history (bm_bmojo_yhist_save per channel). Global B*Hkv*(min(T, w) +
 * min(T, m_f) + M) + B, local 1.
 *
 * Why: the GPU form's work-item per element splits its index with 64-bit divisions per element:
 * 0.84 ms a launch for bmojo-130m's 1 MB at T 512, 1.7 % of its pp512 on POCL (2 cores of an AMD
 * EPYC); 64 elements per work-item instead changed nothing (20 -> 25 ms, noise), so the work is
 * the divisions, not the items.
 */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_bmojo_state_save_cpu(__global const float *kx, __global const float *vx, const ulong x_ld, const ulong kx_col,
                        const ulong vx_col, __global const float *kf, __global const float *vf, const ulong f_ld,
                        const ulong kf_col, const ulong vf_col, __global float *win_k, __global float *win_v,
                        __global float *fade_k, __global float *fade_v, __global const float *scr,
                        const ulong memk_off, const ulong memv_off, __global float *mem, const ulong mem_v_off,
                        __global const float *y, __global float *y_hist, const int B, const int T, const int d,
                        const int k, const int Hkv, const int dh, const int w, const int m_f, const int M,
                        const int pos0, const int NC)
{
    const int nw = min(T, w), nf = min(T, m_f);
    const size_t r_win = (size_t)B * Hkv * nw, r_fade = (size_t)B * Hkv * nf, r_mem = (size_t)B * Hkv * M;
    size_t row = get_global_id(0);
    if (row < r_win + r_fade) { /* a ring row: position p of the call's last n tokens into slot p % cap */
        const int fade = row >= r_win;
        if (fade) row -= r_win;
        const int n = fade ? nf : nw, cap = fade ? m_f : w;
        const int i = (int)(row % n), g = (int)((row / n) % Hkv), b = (int)(row / ((size_t)n * Hkv));
        const int t = T - n + i, p = pos0 + t;
        const size_t r = (size_t)b * T + t, dst = (((size_t)b * Hkv + g) * cap + p % cap) * dh;
        __global const float *sk = fade ? kf + r * f_ld + kf_col + (size_t)g * dh : kx + r * x_ld + kx_col + (size_t)g * dh;
        __global const float *sv = fade ? vf + r * f_ld + vf_col + (size_t)g * dh : vx + r * x_ld + vx_col + (size_t)g * dh;
        __global float *dk = (fade ? fade_k : win_k) + dst, *dv = (fade ? fade_v : win_v) + dst;
        for (int x = 0; x < dh; x++) {
            dk[x] = sk[x];
            dv[x] = sv[x];
        }
        return;
    }
    row -= r_win + r_fade;
    if (row < r_mem) { /* a memory row of the last chunk (bm_bmojo_mem_save's mapping, a row at a time) */
        const size_t per = (size_t)Hkv * M * dh, b = row / ((size_t)Hkv * M), rest = (row % ((size_t)Hkv * M)) * dh;
        __global const float *sk = scr + memk_off + ((size_t)b * NC + (NC - 1)) * per + rest;
        __global const float *sv = scr + memv_off + ((size_t)b * NC + (NC - 1)) * per + rest;
        __global float *dk = mem + b * per + rest, *dv = mem + mem_v_off + b * per + rest;
        for (int x = 0; x < dh; x++) {
            dk[x] = sk[x];
            dv[x] = sv[x];
        }
        return;
    }
    row -= r_mem;
    if (row < (size_t)B)
        for (int ch = 0; ch < d; ch++) bm_bmojo_yhist_save(row * (size_t)d + ch, y, y_hist, T, d, k);
}
