/* bmojo_step_cpu.cl — a B'MOJO decoding step's state update for CPU devices (POCL): bm_bmojo_step's
 * contract and results bit for bit (cl/bmojo_eidetic.cl: the layout, the two halves, the order
 * of the in-place updates), launcher bmojo_decode in src/ops/op_bmojo.c (the CPU form with the
 * innovation's, rt->bmojo_innov_form).
 *
 * Shape of the work: one work-item per sequence runs both halves in order: the pre half is
 * bm_bmojo_step_pre itself with one item (its column loops then walk every column), the post half
 * the same steps done serially: eps with bm_bmojo_eps_row_cpu (the prefill innovation's order,
 * cl/bmojo_innovation_cpu.cl, so prefill and decoding still give a token the same eps), the y
 * history shift, the fade ring append, then the candidate list's insertion (the rank counted, the
 * entries below it moved down one from the bottom up, the token written).
 *
 * Why: the GPU form runs a work-group of BM_WG (256 on POCL) items per sequence with barrier trees
 * (the innovation's sum and the rank's) and list moves between barriers; POCL schedules such a
 * group as loops of its items between barriers: 30.6-32.9 us a step of bmojo-130m (d 768, m_e
 * 32), 735-789 us of a token's 27 ms (`bmojo bench -p 0 -n 64 --profile`, POCL 3.1, 2 cores of an
 * AMD EPYC).
 * Global (1, B), local (1, 1).
 */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void
bm_bmojo_step_cpu(BM_BMOJO_PRE_PARAMS(), BM_BMOJO_POST_PARAMS(post_))
{
    const int b = (int)get_global_id(1);
    bm_bmojo_step_pre(b, 0, 1, BM_BMOJO_PRE_ARGS());

    /* post: 3. eps of the token, then the y history shift */
    const int d = post_d, k = post_k, m_e_ = post_m_e, pos = post_pos0;
    __global float *hist = post_y_hist + (size_t)b * k * d;
    __global const float *yr = post_y + (size_t)b * d;
    float eps = 0.0f;
    if (m_e_ > 0) {
        float c[16];
        vstore16(post_taps, 0, c);
        __global const float *src[16];
        for (int i = 1; i <= k; i++) src[i - 1] = hist + (size_t)(k - i) * d; /* slot k - i: row t - i */
        eps = bm_bmojo_eps_row_cpu(yr, src, c, d, k);
    }
    for (int i = 0; i + 1 < k; i++)
        for (int ch = 0; ch < d; ch++) hist[(size_t)i * d + ch] = hist[(size_t)(i + 1) * d + ch];
    for (int ch = 0; ch < d; ch++) hist[(size_t)(k - 1) * d + ch] = yr[ch];

    /* 4. fade ring append */
    const int ncol = post_Hkv * post_dh;
    if (post_m_f > 0)
        for (int col = 0; col < ncol; col++) {
            const int g = col / post_dh, x = col - g * post_dh;
            const size_t of = (((size_t)b * post_Hkv + g) * post_m_f + pos % post_m_f) * post_dh + x;
            post_fade_k[of] = post_kf[(size_t)b * post_f_ld + post_kf_col + col];
            post_fade_v[of] = post_vf[(size_t)b * post_f_ld + post_vf_col + col];
        }

    /* 5. candidate list: rank r = the entries that beat the token (a prefix), entries r .. r+n-1
     * move to r+1 .. r+n, the token goes to r */
    if (m_e_ > 0) {
        __global float *ce = post_cand_eps + (size_t)b * m_e_;
        __global int *cp = post_cand_pos + (size_t)b * m_e_;
        const int na = min(m_e_, pos);
        int r = 0;
        for (int i = 0; i < na; i++) r += bm_bmojo_better(ce[i], cp[i], eps, pos);
        const int n = min(na, m_e_ - 1) - r;
        for (int i = n - 1; i >= 0; i--) {
            ce[r + i + 1] = ce[r + i];
            cp[r + i + 1] = cp[r + i];
        }
        if (r < m_e_) {
            ce[r] = eps;
            cp[r] = pos;
        }
    }
}
