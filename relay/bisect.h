/* bisect.h - isolating the rows ClickHouse refuses. When an insert of rows
 * [lo, hi) fails for its content, insert each half on its own, recursing into
 * the halves that fail, down to single rows, which are rejected. Good rows
 * land; k bad rows among n cost about 2k*log2(n) requests. Pure logic over
 * two callbacks, so it is unit tested without ClickHouse. */
#ifndef TERN_RELAY_BISECT_H
#define TERN_RELAY_BISECT_H

#include <stddef.h>

enum bisect_outcome { BISECT_OK = 0, BISECT_CONTENT = 1, BISECT_TRANSIENT = -1 };

/* Inserts rows [lo, hi). Returns BISECT_OK, BISECT_CONTENT (reason set) or
 * BISECT_TRANSIENT (give up for now, retry the whole batch later). */
typedef int (*bisect_insert_fn)(void *user, size_t lo, size_t hi, char *reason, size_t cap);
/* Called once for each row isolated as bad. Returns 0, or -1 to stop. */
typedef int (*bisect_reject_fn)(void *user, size_t row, const char *reason);

/* Resolves rows [lo, hi) whose insert as a whole failed with first_reason.
 * Returns 0 when every row is inserted or rejected, -1 when a transient
 * failure (or the reject callback) stopped it: then some rows may be inserted
 * and some rejected already, which is harmless to repeat (both tables
 * deduplicate). *requests counts inserts made. */
int bisect_resolve(size_t lo, size_t hi, const char *first_reason, bisect_insert_fn insert,
                   bisect_reject_fn reject, void *user, size_t *requests);

#endif
