/* fuzz_json.c — libFuzzer target: bm_json_parse on arbitrary bytes must never crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bm_json *j = NULL;
    char err[256];
    if (bm_json_parse((const char *)data, size, &j, err, sizeof err) == 0) bm_json_free(j);
    return 0;
}
