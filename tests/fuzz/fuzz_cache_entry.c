/* fuzz_cache_entry.c — libFuzzer target: bm_cache_entry_parse (a kernel cache entry's header,
 * length and checksum) on arbitrary bytes must never crash or read out of bounds, and an entry it
 * accepts must be the binary it points to with a header that bm_cache_entry_header remakes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *bin = NULL;
    size_t len = 0;
    if (bm_cache_entry_parse(data, size, &bin, &len) != 0) return 0;
    unsigned char header[BM_CACHE_ENTRY_HEADER];
    bm_cache_entry_header(bin, len, header); /* reads every byte of the binary */
    if (bin != data + BM_CACHE_ENTRY_HEADER || len != size - BM_CACHE_ENTRY_HEADER ||
        memcmp(header, data, sizeof header) != 0)
        abort();
    return 0;
}
