/* cache_entry.c — parsing and making the header of a kernel program cache entry (format in
 * cache_entry.h). The entry's bytes are untrusted: every field is checked against the size. */
#include "cache_entry.h"

#include <string.h>

uint64_t bm_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int bm_cache_entry_parse(const unsigned char *data, size_t n, const unsigned char **bin, size_t *len)
{
    if (!data || n <= BM_CACHE_ENTRY_HEADER || (uint64_t)n > BM_CACHE_ENTRY_MAX) return -1;
    uint64_t length, checksum;
    memcpy(&length, data + 8, sizeof length);
    memcpy(&checksum, data + 16, sizeof checksum);
    if (memcmp(data, BM_CACHE_ENTRY_MAGIC, 8) != 0 || length != (uint64_t)(n - BM_CACHE_ENTRY_HEADER)) return -1;
    const unsigned char *b = data + BM_CACHE_ENTRY_HEADER;
    if (bm_fnv1a(BM_FNV1A_SEED, b, (size_t)length) != checksum) return -1;
    *bin = b;
    *len = (size_t)length;
    return 0;
}

void bm_cache_entry_header(const unsigned char *bin, size_t len, unsigned char out[BM_CACHE_ENTRY_HEADER])
{
    uint64_t length = len, checksum = bm_fnv1a(BM_FNV1A_SEED, bin, len);
    memcpy(out, BM_CACHE_ENTRY_MAGIC, 8);
    memcpy(out + 8, &length, sizeof length);
    memcpy(out + 16, &checksum, sizeof checksum);
}
