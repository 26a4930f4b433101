/* kv_cache.cl — appends the new K/V rows of a fused projection to the ring K/V caches.
 *
 * Layout: k, v [B*T, kv_ld], kv head g of token t of sequence b at (b*T+t)*kv_ld + k_col + g*dh
 * (v_col for v); caches kc, vc [B, Hkv, cap, dh], absolute position p in slot p % cap.
 * Only the last n = min(T, cap) tokens are written (earlier ones would be overwritten in the
 * same ring anyway, and writing them too would race with the later ones on the same slot).
 * One work-item per (b, g, row, d), d fastest so that reads and writes are coalesced; K and V
 * are copied by the same work-item (one launch). A plain copy needs nothing smarter.
 */
__kernel void bm_kv_append(const int T, const int Hkv, const int dh, const int n,
                           __global const float *k, __global const float *v, const long kv_ld,
                           const long k_col, const long v_col,
                           __global float *kc, __global float *vc, const int cap,
                           const long pos0, const long total)
{
    const long e = (long)get_global_id(0);
    if (e >= total) return;
    const int d = (int)(e % dh);
    const long rest = e / dh;
    const int i = (int)(rest % n);
    const int bg = (int)(rest / n);
    const int b = bg / Hkv, g = bg - b * Hkv;
    const int t = T - n + i;
    const long row = (long)b * T + t;
    const long slot = (pos0 + t) % cap;
    const long dst = ((long)bg * cap + slot) * dh + d;
    kc[dst] = k[row * kv_ld + k_col + (long)g * dh + d];
    vc[dst] = v[row * kv_ld + v_col + (long)g * dh + d];
}
