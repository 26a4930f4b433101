/* ref_bmojo.h — plain-C references of the B'MOJO mixer's attention part (model.md section 2):
 * bm_ref_bmojo_mix continues from a state exactly like bm_bmojo_mix (src/ops_bmojo.h), on host
 * arrays with the same state layout; bm_ref_bmojo_direct is the spec's definition over a whole
 * sequence from position 0 (no state, O(T^2)), the ground truth both are tested against. */
#ifndef BM_REF_BMOJO_H
#define BM_REF_BMOJO_H

#include <stddef.h>
#include <stdint.h>

/* The host-array twin of bm_bmojo_args (same meaning, same layouts). */
typedef struct {
    int B, T, d;
    int H, Hkv, dh;
    int window;
    int m_f, m_e;
    int n_taps; const float *taps;
    int64_t pos0;
    float scale;
    const float *y;                                      /* [B*T, d] */
    const float *q; size_t q_ld, q_col;
    const float *kx, *vx; size_t x_ld, kx_col, vx_col;
    const float *kf, *vf; size_t f_ld, kf_col, vf_col;
    float *y_hist;                                       /* state (unused by _direct) */
    float *win_k, *win_v;
    float *fade_k, *fade_v;
    float *cand_eps; int32_t *cand_pos;
    float *mem;                                          /* K rows, then V rows */
    float *out; size_t out_ld;
} bm_ref_bmojo_args;

/* eps of one token: sum_c (y_t[c] - sum_{i=1..k} taps[i-1] * prev[i-1][c])^2, prev[i-1] = the
 * row y_{t-i} (a zero row when t-i < 0). Shared by both references so ties agree bitwise. */
float bm_ref_bmojo_eps(const float *yt, const float *const *prev, const float *taps, int k, int d);

/* Processes a->T tokens per sequence at positions pos0.., writes o and updates the state
 * (token by token, the plainest form of the semantics). */
void bm_ref_bmojo_mix(const bm_ref_bmojo_args *a);

/* The definition: a->T tokens from position 0 (a->pos0 must be 0), state pointers ignored. */
void bm_ref_bmojo_direct(const bm_ref_bmojo_args *a);

#endif
