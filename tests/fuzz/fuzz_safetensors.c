/* fuzz_safetensors.c — libFuzzer target: any file handed to bm_st_open is either refused with a
 * status or opens into tensors whose data converts to f32 without reading out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/bmojo-fuzz-st-%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    bm_st_file st;
    if (bm_st_open(path, &st) == 0) {
        for (int i = 0; i < st.n; i++) {
            const bm_st_tensor *t = &st.tensors[i];
            if ((t->dtype == BM_DT_F32 || t->dtype == BM_DT_F16 || t->dtype == BM_DT_BF16) && t->nelem < (1u << 20)) {
                float *buf = malloc(t->nelem * sizeof(float) + sizeof(float));
                if (buf) bm_st_to_f32(&st, t, buf);
                free(buf);
            }
        }
        bm_st_close(&st);
    }
    remove(path);
    return 0;
}
