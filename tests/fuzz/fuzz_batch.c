/* fuzz_batch.c — libFuzzer target: any bytes handed to the batch reader of `bmojo grad` as its
 * safetensors file are either refused with a status or give input_ids and targets of one shape,
 * every id in the vocabulary and every target -1 or in the vocabulary, without reading out of
 * bounds. The bytes stay in memory (an anonymous memfd, opened through /proc/self/fd). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/batch_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-batch", MFD_CLOEXEC);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    cli_batch_file b;
    if (off == size && cli_batch_open(path, &b) == 0) {
        const cli_ids_file *x = &b.ids;
        size_t n = (size_t)x->B * (size_t)x->T;
        if (x->B < 1 || x->T < 1 || n != x->t->nelem || b.targets->nelem != n) abort();
        int32_t *ids = malloc(n * sizeof *ids), *tg = malloc(n * sizeof *tg);
        if (ids && tg) {
            const int64_t vocabs[] = {1, 1000, INT32_MAX};
            for (int k = 0; k < 3; k++)
                if (cli_batch_read(&b, vocabs[k], ids, tg) == 0) {
                    int scored = 0;
                    for (size_t i = 0; i < n; i++) {
                        if (ids[i] < 0 || ids[i] >= vocabs[k] || tg[i] < -1 || tg[i] >= vocabs[k]) abort();
                        scored += tg[i] >= 0;
                    }
                    if (!scored) abort();
                }
        }
        free(ids);
        free(tg);
        cli_batch_close(&b);
    }
    close(fd);
    return 0;
}
