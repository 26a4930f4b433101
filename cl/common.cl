/* common.cl — helpers shared by every kernel (the embedded sources are concatenated after this
 * file into one program). Tunables arrive as -D options from the runtime; the defaults here are
 * safe on any OpenCL 1.2 device. */
#ifndef BM_WG
#define BM_WG 64          /* work-group size the kernels are built for (power of 2) */
#endif

static inline float bm_silu(float x) { return x / (1.0f + exp(-x)); }

/* log(1 + e^x) without overflow; matches torch.nn.functional.softplus (threshold 20). */
static inline float bm_softplus(float x) { return x > 20.0f ? x : log1p(exp(x)); }
