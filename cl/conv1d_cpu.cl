/* conv1d_cpu.cl — the causal depthwise conv1d + SiLU of a prefill (T > 1) for CPU devices (POCL):
 * bm_conv1d_out's outputs (cl/conv1d.cl: its top comment has the layout and the math), launcher
 * src/ops/op_conv1d.c (variant BM_CONV_CPU, the choice on CPUs for T > 1 and k <= BM_CONV_KMAX;
 * the state is then rewritten by bm_conv1d_state as after the other prefill kernels).
 *
 * Shape of the work: one work-item per (16 channels, sequence, BM_CONVC_TB time steps), a CPU
 * thread's job: the 16 channels are one float16 (x's row read with one vload16, the output written
 * with one vstore16), the last k inputs and the k weights stay in float16 registers, so each input
 * is read once and the weights once per item. The sum runs in the order of bm_conv1d_out (bias,
 * then tap 0 .. k-1), so the outputs match it to rounding of the vector exp. Channels past the
 * last multiple of 16 take a scalar loop of the same sums.
 *
 * Why: POCL runs bm_conv1d_out's one work-item per output as scalar code with a history gather per
 * tap; measured 11-14 ms per layer of a pp512 (mamba-130m: 340 ms, 17 % of the prefill, on the
 * 2-core development machine under load) for 3 M multiply-adds.
 * Tunables: BM_CONVC_TB (32) steps per work-item; BM_CONV_KMAX (cl/conv1d.cl) the widest kernel.
 */
#ifndef BM_CONVC_TB
#define BM_CONVC_TB 32
#endif

/* Input of channel c at time tt of sequence b (row0 = b*T): x for tt >= 0, else the state. */
static inline float bm_convc_in(__global const float *x, ulong x_ld, __global const float *state, int b, int di,
                                int km1, long row0, int tt, int c)
{
    return tt >= 0 ? x[(ulong)(row0 + tt) * x_ld + (ulong)c] : state[((ulong)b * (ulong)di + (ulong)c) * (ulong)km1 + (ulong)(km1 + tt)];
}

/* Global (ceil(di / 16), B * ceil(T / BM_CONVC_TB)), local (1, 1). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_conv1d_cpu(__global const float *x, const ulong x_ld, __global const float *w, __global const float *bias,
              const int has_bias, __global const float *state, __global float *out, const int T, const int di,
              const int k, const int B)
{
    const int c0 = (int)get_global_id(0) * 16, nblk = (T + BM_CONVC_TB - 1) / BM_CONVC_TB;
    const int b = (int)get_global_id(1) / nblk, t0 = ((int)get_global_id(1) % nblk) * BM_CONVC_TB;
    const int t1 = min(T, t0 + BM_CONVC_TB), km1 = k - 1;
    if (b >= B || c0 >= di) return;
    const long row0 = (long)b * T;
    if (c0 + 16 <= di) {
        float16 wv[BM_CONV_KMAX], hv[BM_CONV_KMAX], bv = 0.0f;
        for (int i = 0; i < k; i++) {
            float wa[16];
            for (int j = 0; j < 16; j++) wa[j] = w[(ulong)(c0 + j) * (ulong)k + (ulong)i];
            wv[i] = vload16(0, wa);
        }
        if (has_bias) bv = vload16(0, bias + c0);
        /* hv[0 .. k-2]: the inputs of times t0-k+1 .. t0-1 */
        for (int i = 0; i < km1; i++) {
            const int tt = t0 - km1 + i;
            if (tt >= 0) {
                hv[i] = vload16(0, x + (ulong)(row0 + tt) * x_ld + (ulong)c0);
            } else {
                float ha[16];
                for (int j = 0; j < 16; j++) ha[j] = bm_convc_in(x, x_ld, state, b, di, km1, row0, tt, c0 + j);
                hv[i] = vload16(0, ha);
            }
        }
        for (int t = t0; t < t1; t++) {
            hv[km1] = vload16(0, x + (ulong)(row0 + t) * x_ld + (ulong)c0);
            float16 acc = bv;
            for (int i = 0; i < k; i++) acc += wv[i] * hv[i];
            vstore16(acc / (1.0f + exp(-acc)), 0, out + (ulong)(row0 + t) * (ulong)di + (ulong)c0);
            for (int i = 0; i < km1; i++) hv[i] = hv[i + 1];
        }
    } else {
        for (int c = c0; c < di; c++) {
            __global const float *wc = w + (ulong)c * (ulong)k;
            for (int t = t0; t < t1; t++) {
                float acc = has_bias ? bias[c] : 0.0f;
                for (int i = 0; i < k; i++) acc += wc[i] * bm_convc_in(x, x_ld, state, b, di, km1, row0, t - km1 + i, c);
                out[(ulong)(row0 + t) * (ulong)di + (ulong)c] = bm_silu(acc);
            }
        }
    }
}
