/* cpu_stream_probe.c — how fast plain C streams a decoding GEMV's weights on this CPU, for
 * comparison with the OpenCL kernels run by POCL (issue 15; cl/gemv.cl's CPU body).
 *
 * y = W a with W [65536, 768] (f32 or IEEE half, 96 or 192 MiB: far beyond the caches), the rows
 * split between OpenMP threads; each thread dots R rows side by side (R = 1: each row from start to
 * end, two 16-float accumulators; R > 1: R rows advance together, sharing each vector of a), as
 * cl/gemv.cl's CPU body did before (16 rows) and does now (1 row). Prints GB/s of W read, the best
 * of five passes. Needs AVX-512 (F16C's 16-wide conversion).
 *
 *   gcc -O3 -march=native -fopenmp tools/cpu_stream_probe.c -o /tmp/cpu_stream_probe
 *   OMP_NUM_THREADS=$(nproc) /tmp/cpu_stream_probe
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROWS 65536
#define COLS 768

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline __attribute__((always_inline)) __m512 load_w(const void *w, size_t i, int half)
{
    return half ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)))
                : _mm512_loadu_ps((const float *)w + i);
}

/* one pass of y = W a with R rows side by side per step, defined once per (R, weight type) so that
 * the accumulators are arrays of exactly R registers (with a larger array and a runtime R, gcc
 * kept them on the stack and the loop measured the spills, not the memory) */
#define DEFINE_GEMV(NAME, R, HALF)                                                                     \
    static void NAME(const void *w, const float *a, float *y)                                          \
    {                                                                                                  \
        _Pragma("omp parallel for schedule(static)") for (int n0 = 0; n0 < ROWS; n0 += R)              \
        {                                                                                              \
            __m512 s0[R], s1[R];                                                                       \
            for (int j = 0; j < R; j++) s0[j] = s1[j] = _mm512_setzero_ps();                           \
            for (int k = 0; k < COLS; k += 32) {                                                       \
                const __m512 a0 = _mm512_loadu_ps(a + k), a1 = _mm512_loadu_ps(a + k + 16);           \
                for (int j = 0; j < R; j++) {                                                          \
                    const size_t row = (size_t)(n0 + j) * COLS + (size_t)k;                            \
                    s0[j] = _mm512_fmadd_ps(load_w(w, row, HALF), a0, s0[j]);                          \
                    s1[j] = _mm512_fmadd_ps(load_w(w, row + 16, HALF), a1, s1[j]);                     \
                }                                                                                      \
            }                                                                                          \
            for (int j = 0; j < R; j++) y[n0 + j] = _mm512_reduce_add_ps(_mm512_add_ps(s0[j], s1[j])); \
        }                                                                                              \
    }
DEFINE_GEMV(gemv_f16_1, 1, 1)
DEFINE_GEMV(gemv_f16_2, 2, 1)
DEFINE_GEMV(gemv_f16_4, 4, 1)
DEFINE_GEMV(gemv_f16_8, 8, 1)
DEFINE_GEMV(gemv_f16_16, 16, 1)
DEFINE_GEMV(gemv_f32_1, 1, 0)
DEFINE_GEMV(gemv_f32_2, 2, 0)
DEFINE_GEMV(gemv_f32_4, 4, 0)
DEFINE_GEMV(gemv_f32_8, 8, 0)
DEFINE_GEMV(gemv_f32_16, 16, 0)

typedef void (*gemv_fn)(const void *w, const float *a, float *y);
static const gemv_fn gemvs[2][5] = {{gemv_f32_1, gemv_f32_2, gemv_f32_4, gemv_f32_8, gemv_f32_16},
                                    {gemv_f16_1, gemv_f16_2, gemv_f16_4, gemv_f16_8, gemv_f16_16}};

int main(void)
{
    const size_t n = (size_t)ROWS * COLS;
    void *w = aligned_alloc(64, n * sizeof(float));
    float *a = aligned_alloc(64, COLS * sizeof(float)), *y = aligned_alloc(64, ROWS * sizeof(float));
    if (!w || !a || !y) {
        fprintf(stderr, "cpu_stream_probe: out of memory\n");
        return 1;
    }
    for (int k = 0; k < COLS; k++) a[k] = 1.0f / (float)(k + 1);
    for (int half = 1; half >= 0; half--) {
        for (size_t i = 0; i < n; i++) {
            if (half) ((uint16_t *)w)[i] = 0x3c00; /* 1.0 */
            else ((float *)w)[i] = 1.0f;
        }
        const int rs[] = {1, 2, 4, 8, 16};
        for (size_t ri = 0; ri < sizeof rs / sizeof rs[0]; ri++) {
            double best = 1e30;
            for (int pass = 0; pass < 5; pass++) {
                const double t0 = seconds();
                gemvs[half][ri](w, a, y);
                const double dt = seconds() - t0;
                if (dt < best) best = dt;
            }
            printf("%s weights, %2d row(s) side by side: %5.1f GB/s (y[0] %.4f)\n", half ? "f16" : "f32", rs[ri],
                   (double)n * (half ? 2.0 : 4.0) / best / 1e9, y[0]);
        }
    }
    free(w);
    free(a);
    free(y);
    return 0;
}
