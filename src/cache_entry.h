/* cache_entry.h — the file format of a kernel program cache entry, apart from any file or OpenCL
 * call so that it can be fuzzed: a 24-byte header (magic "BMOJOCL1", binary length, FNV-1a
 * checksum of the binary, both 64-bit in host byte order) followed by the driver's binary. */
#ifndef BM_CACHE_ENTRY_H
#define BM_CACHE_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#define BM_CACHE_ENTRY_MAGIC "BMOJOCL1" /* bump when the layout changes */
#define BM_CACHE_ENTRY_HEADER 24        /* bytes before the binary */
#define BM_CACHE_ENTRY_MAX (1ull << 30) /* a whole entry above 1 GiB is surely garbage */
#define BM_FNV1A_SEED 0xcbf29ce484222325ull

/* 64-bit FNV-1a of n bytes, continuing from h (start from BM_FNV1A_SEED). */
uint64_t bm_fnv1a(uint64_t h, const void *data, size_t n);

/* Checks an entry of n bytes: magic, a non-empty binary whose length is exactly the rest of the
 * entry, the checksum, n <= BM_CACHE_ENTRY_MAX. On success points *bin into data and sets *len,
 * returns 0; else -1 (nothing set). */
int bm_cache_entry_parse(const unsigned char *data, size_t n, const unsigned char **bin, size_t *len);

/* The header for a binary of len bytes (len > 0), into out. */
void bm_cache_entry_header(const unsigned char *bin, size_t len, unsigned char out[BM_CACHE_ENTRY_HEADER]);

#endif
