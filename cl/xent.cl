/* xent.cl — cross-entropy over a chunk of the head's logits, fused with its gradient.
 * Layout: logits fp32 [rows, ld], V columns used per row; targets int32 [rows]; loss fp32 [rows].
 * For row r with target t >= 0: loss[r] = log sum_j exp(l_j) - l_t, and the row is overwritten
 * by scale * (softmax(l) - onehot(t)); t < 0: loss[r] = 0 and a zero row. t >= V is the
 * caller's to refuse; here it gives a NaN loss and a zero row rather than reading past the row.
 * hit (int32 [rows], or NULL): 1 where t >= 0 and l_t is the row's maximum (the prediction is
 * right: accuracy for evaluation), else 0. The max is exact, so the reference agrees bit for bit.
 * Algorithm: one work-group of BM_WG work-items per row. Each work-item runs an online softmax
 * over its strided columns (a running max m and sum s of exp(l - m), rescaled when the max
 * grows), the pairs are merged in a local-memory tree (BM_WG a power of two), then every
 * work-item writes its columns' gradient exp(l - m) / s. Everything is relative to the row's max,
 * so logits of +-80 (or any magnitude) neither overflow nor underflow the sum; the loss is formed
 * as (m - l_t) + log1p(rest), rest = s - 1 summed apart from the max's own term of 1 (a second
 * tree over the write pass's terms), which keeps its precision when m is large and when the row is
 * confident: there rest is tiny (1e-30 at logits +-80) and log(s) of a float s = 1 + rest keeps
 * at most a few digits of it, or none (against the reference in double: 3e-4 off at V 17, all of
 * a 1e-30 loss lost at V 2). Any V >= 1 works (columns a work-item does not own leave it with the
 * empty pair m = -inf, s = 0, skipped in the merge).
 * Variants considered: max, then sum, then write (three reads of the row instead of two);
 * a row in local memory (limits V by local memory, V reaches 50k); several work-groups per row
 * (a second launch for the merge; only pays when rows are fewer than the device's groups, and a
 * chunk of the head has hundreds of rows). */

__kernel __attribute__((reqd_work_group_size(BM_WG, 1, 1)))
void bm_xent_bwd(__global float *logits, ulong ld, int V, __global const int *targets, float scale,
                 __global float *loss, __global int *hit)
{
    __local float m_part[BM_WG];
    __local float s_part[BM_WG];
    int lid = (int)get_local_id(0);
    ulong r = (ulong)get_group_id(0);
    __global float *row = logits + r * ld;
    int t = targets[r];
    if (t < 0 || t >= V) {
        for (int j = lid; j < V; j += BM_WG) row[j] = 0.0f;
        if (lid == 0) {
            loss[r] = t < 0 ? 0.0f : NAN;
            if (hit) hit[r] = 0;
        }
        return;
    }
    float lt = row[t]; /* read by every item before any write (the barriers below) */
    float m = -INFINITY, s = 0.0f;
    for (int j = lid; j < V; j += BM_WG) {
        float v = row[j];
        if (v > m) {
            s = s * exp(m - v) + 1.0f;
            m = v;
        } else
            s += exp(v - m);
    }
    m_part[lid] = m;
    s_part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = BM_WG / 2; h > 0; h >>= 1) {
        if (lid < h) {
            float m1 = m_part[lid], s1 = s_part[lid], m2 = m_part[lid + h], s2 = s_part[lid + h];
            float mm = fmax(m1, m2);
            m_part[lid] = mm;
            s_part[lid] = (s1 > 0.0f ? s1 * exp(m1 - mm) : 0.0f) + (s2 > 0.0f ? s2 * exp(m2 - mm) : 0.0f);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float mx = m_part[0], sum = s_part[0];
    float inv = scale / sum;
    /* while writing the gradient, rest = sum - 1 term by term: the columns below the max, plus
     * one per tie beyond the first (counted apart: a 1 in the sum would absorb the small terms),
     * so that the loss is log1p(rest) (see the top comment) */
    float rest = 0.0f, ties = 0.0f;
    for (int j = lid; j < V; j += BM_WG) {
        const float v = row[j], e = exp(v - mx), p = e * inv;
        if (v == mx) ties += 1.0f;
        else rest += e;
        row[j] = j == t ? p - scale : p;
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* every item has read mx and sum before the arrays are reused */
    m_part[lid] = ties;
    s_part[lid] = rest;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = BM_WG / 2; h > 0; h >>= 1) {
        if (lid < h) {
            m_part[lid] += m_part[lid + h];
            s_part[lid] += s_part[lid + h];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        loss[r] = (mx - lt) + log1p(s_part[0] + (m_part[0] - 1.0f));
        if (hit) hit[r] = lt >= mx ? 1 : 0;
    }
}
