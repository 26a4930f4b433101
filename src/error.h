/* error.h — setting the thread's last-error detail behind bmojo_last_error(). */
#ifndef BM_ERROR_H
#define BM_ERROR_H

#include "bmojo.h"

#if defined(__GNUC__)
#define BM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BM_PRINTF(a, b)
#endif

/* Formats the detail message and returns status, so callers write `return bm_fail(...)`. */
int bm_fail(int status, const char *fmt, ...) BM_PRINTF(2, 3);
/* Prefixes the current detail with context ("loading layers.3: <old detail>"); returns status. */
int bm_fail_context(int status, const char *fmt, ...) BM_PRINTF(2, 3);
/* Clears the detail message. */
void bm_error_clear(void);

#endif
