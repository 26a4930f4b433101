/* fuzz_ids.c — libFuzzer target: any bytes handed to the ids reader of `bmojo logits` as its
 * safetensors file are either refused with a status or give input_ids whose every value is
 * checked against the vocabulary without reading out of bounds. The bytes stay in memory (an
 * anonymous memfd, opened through /proc/self/fd) so runs touch no disk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/ids_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-ids", MFD_CLOEXEC);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    cli_ids_file x;
    if (off == size && cli_ids_open(path, &x) == 0) {
        /* the reader's own bounds: B*T ids, and the form was checked before any value is read */
        if (x.ndim < 1 || x.ndim > 2 || x.B < 1 || x.T < 1 || (uint64_t)x.B * (uint64_t)x.T != x.t->nelem) abort();
        int32_t *ids = malloc((size_t)x.B * (size_t)x.T * sizeof *ids);
        if (ids) {
            const int64_t vocabs[] = {1, 1000, INT32_MAX};
            for (int k = 0; k < 3; k++)
                if (cli_ids_read(&x, vocabs[k], ids) == 0)
                    for (size_t i = 0; i < (size_t)x.B * (size_t)x.T; i++)
                        if (ids[i] < 0 || ids[i] >= vocabs[k]) abort();
        }
        free(ids);
        cli_ids_close(&x);
    }
    close(fd);
    return 0;
}
