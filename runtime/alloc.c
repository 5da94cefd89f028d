/* alloc.c - see alloc.h. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong g_countdown; /* 0 = never fail */
static atomic_ulong g_count;

static int should_fail(void)
{
    atomic_fetch_add(&g_count, 1);
    unsigned long c = atomic_load(&g_countdown);
    if (c == 0)
        return 0;
    if (atomic_fetch_sub(&g_countdown, 1) == 1)
        return 1;
    return 0;
}

unsigned long tern_alloc_fail_at(unsigned long nth)
{
    atomic_store(&g_countdown, nth);
    return atomic_exchange(&g_count, 0);
}

void *tern_malloc(size_t n) { return should_fail() ? NULL : malloc(n); }
void *tern_calloc(size_t c, size_t s) { return should_fail() ? NULL : calloc(c, s); }
void *tern_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n); }
void tern_free(void *p) { free(p); }

char *tern_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tern_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
