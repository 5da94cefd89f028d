/* alloc.h - the one allocation wrapper. Tests set a failure point so that the
 * Nth allocation fails and check that callers fail cleanly (as SQLite's
 * test_malloc.c does). Returns NULL on failure like malloc; never aborts. */
#ifndef TERN_ALLOC_H
#define TERN_ALLOC_H

#include <stddef.h>

void *tern_malloc(size_t n);
void *tern_calloc(size_t count, size_t size);
void *tern_realloc(void *p, size_t n);
char *tern_strdup(const char *s);
void tern_free(void *p);

/* Test hook: make the nth allocation from now fail (1 = the next one);
 * 0 disables. Returns the number of allocations since the last call. */
unsigned long tern_alloc_fail_at(unsigned long nth);

#endif
