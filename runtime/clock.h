/* clock.h - the two clocks: monotonic for scheduling, UTC for timestamps. */
#ifndef TERN_CLOCK_H
#define TERN_CLOCK_H

#include <stdint.h>

int64_t tern_mono_ms(void);  /* CLOCK_MONOTONIC in ms: intervals, timeouts */
int64_t tern_utc_ms(void);   /* CLOCK_REALTIME in ms: reading timestamps */
/* Sleeps ms milliseconds, resuming after signals unless *stop becomes nonzero. */
void tern_sleep_ms(int64_t ms, volatile int *stop);

/* Exponential backoff with full jitter (AWS architecture blog's "full jitter"):
 * the delay is uniform in [0, min(cap, base * 2^attempt)]. Spreads a fleet's
 * reconnects after an outage instead of stampeding the broker. */
struct tern_backoff {
    int64_t base_ms;
    int64_t cap_ms;
    unsigned attempt;
    unsigned int seed;
};
void tern_backoff_init(struct tern_backoff *b, int64_t base_ms, int64_t cap_ms);
int64_t tern_backoff_next(struct tern_backoff *b); /* delay for this failure */
void tern_backoff_reset(struct tern_backoff *b);  /* after a success */

#endif
