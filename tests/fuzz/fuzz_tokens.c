/* fuzz_tokens.c — libFuzzer target: any bytes handed to bm_tokens_open as a token file are either
 * refused with a status or give a file whose count matches its size and whose every id is below
 * the vocabulary; its training and evaluation windows then stay inside the file (targets = ids
 * shifted by one, -1 only past the end). The header check alone is also run on the raw bytes with
 * sizes that disagree with them. The bytes stay in memory (an anonymous memfd, opened through
 * /proc/self/fd). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data_tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= BM_TOKENS_HEADER) {
        int dt;
        uint64_t n;
        const uint64_t sizes[] = {size, size + 1, UINT64_MAX, BM_TOKENS_HEADER};
        for (int k = 0; k < 4; k++)
            if (bm_tokens_parse_header("fuzz", data, sizes[k], &dt, &n) == 0 &&
                (n == 0 || (dt != 2 && dt != 4) || n * (uint64_t)dt != sizes[k] - BM_TOKENS_HEADER))
                abort();
    }
    int fd = memfd_create("fuzz-tokens", MFD_CLOEXEC);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const int64_t vocabs[] = {0, 7, 300, 70000};
    for (int k = 0; off == size && k < 4; k++) {
        bm_tokens t;
        if (bm_tokens_open(path, vocabs[k], &t) != 0) continue;
        uint64_t limit = vocabs[k] > 0 ? (uint64_t)vocabs[k] : (uint64_t)1 << 31;
        if (t.count == 0 || BM_TOKENS_HEADER + t.count * (uint64_t)t.dtype != size) abort();
        for (uint64_t i = 0; i < t.count; i++)
            if (bm_tokens_at(&t, i) >= limit) abort();
        int32_t ids[9], tg[9];
        for (int T = 1; T <= 9; T += 4) {
            for (uint64_t ex = 0; ex < 3; ex++)
                if (bm_tokens_window(&t, 1, ex, T, ids, tg) == 0)
                    for (int j = 0; j < T; j++)
                        if (ids[j] < 0 || (uint64_t)ids[j] >= limit || tg[j] < 0 || (uint64_t)tg[j] >= limit ||
                            (j + 1 < T && tg[j] != ids[j + 1]))
                            abort();
            uint64_t nw = bm_tokens_eval_windows(&t, T), scored = 0;
            for (uint64_t w = 0; w < nw && w < 64; w++) {
                if (bm_tokens_eval_window(&t, w, T, ids, tg) != 0) abort();
                for (int j = 0; j < T; j++) scored += tg[j] >= 0;
            }
            if (nw <= 64 && scored != t.count - 1) abort();
        }
        bm_tokens_close(&t);
    }
    close(fd);
    return 0;
}
