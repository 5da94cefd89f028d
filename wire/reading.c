/* reading.c - helpers of the reading model (see reading.h). */
#include "reading.h"

#include <string.h>

int tern_copy_field(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return -1;
    size_t n = strnlen(src, cap);
    if (n < cap) {
        memcpy(dst, src, n + 1);
        return 0;
    }
    /* Too long: keep a terminated prefix so the caller never reads past cap. */
    memcpy(dst, src, cap - 1);
    dst[cap - 1] = '\0';
    return -1;
}
