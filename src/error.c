/* error.c — status strings (from the X-macro in bmojo.h) and the per-thread detail message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BM_DETAIL_MAX 8192
static _Thread_local char detail[BM_DETAIL_MAX];

const char *bmojo_strerror(int status)
{
    switch (status) {
#define BMOJO_STATUS_CASE(name, value, msg) case BMOJO_##name: return msg;
    BMOJO_STATUS_MAP(BMOJO_STATUS_CASE)
#undef BMOJO_STATUS_CASE
    default: return "unknown status";
    }
}

const char *bmojo_last_error(void) { return detail[0] ? detail : "no detail"; }

const char *bmojo_version(void) { return BMOJO_VERSION; }

int bm_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return status;
}

int bm_fail_context(int status, const char *fmt, ...)
{
    char old[BM_DETAIL_MAX];
    memcpy(old, detail, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof detail && old[0])
        snprintf(detail + n, sizeof detail - (size_t)n, ": %s", old);
    return status;
}

void bm_error_clear(void) { detail[0] = 0; }
