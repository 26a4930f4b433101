/* fuzz_config.c — libFuzzer target: the same bytes as a config.yaml and as a Hugging Face
 * config.json are either refused with a status or load into a config that frees cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/bmojo-fuzz-cfg-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    bm_config c;
    if (bm_config_load_yaml(path, &c) == 0) bm_config_free(&c);
    if (bm_config_load_hf(path, &c) == 0) bm_config_free(&c);
    remove(path);
    return 0;
}
