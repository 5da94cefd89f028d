/* ackset.h - what one uplink has acknowledged: a contiguous cursor (every
 * seq <= cursor is acked; this is what storage persists) plus the ranges
 * acked out of order beyond it, kept in memory only. Losing those ranges in a
 * crash only means their readings are sent again (duplicates are allowed and
 * identifiable by (device_id, epoch, seq)). Internal to storage/. */
#ifndef TERN_STORAGE_ACKSET_H
#define TERN_STORAGE_ACKSET_H

#include <stddef.h>
#include <stdint.h>

/* Out-of-order ranges kept per uplink. Bounded by the batches in flight in
 * practice; past this, a new disjoint range is forgotten (re-sent later). */
#define ACKSET_MAX_RANGES 1024

struct ack_range {
    int64_t first, last; /* inclusive, first <= last */
};

struct ackset {
    int64_t cursor;        /* every seq <= cursor is acknowledged */
    struct ack_range *r;   /* sorted, disjoint, not adjacent, all > cursor + 1 */
    size_t n, cap;
};

void ackset_init(struct ackset *a, int64_t cursor);
void ackset_free(struct ackset *a);

/* Adds [first, last] (first <= last) and advances the cursor over every
 * range that now touches it. Returns 0, or -1 when the range could not be
 * kept (out of memory or ACKSET_MAX_RANGES reached): the set is then
 * unchanged and those readings will simply be sent again. */
int ackset_add(struct ackset *a, int64_t first, int64_t last);

/* Raises the cursor to at least seq: readings <= seq no longer exist (dropped
 * by the cap or the age limit), so they can never be acknowledged. */
void ackset_raise(struct ackset *a, int64_t seq);

/* When seq is acknowledged, the last seq of the acked run holding it; else 0. */
int64_t ackset_covering(const struct ackset *a, int64_t seq);

#endif
