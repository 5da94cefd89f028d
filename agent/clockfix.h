/* clockfix.h - clock integrity (issue 9): readings taken while the system
 * clock was not synchronised carry TERN_READING_CLOCK_UNSYNCED and the raw
 * wall-clock time. The agent remembers, per boot, the offset between that raw
 * clock and CLOCK_BOOTTIME; once the clock is synchronised, readings of the
 * same boot still in the queue are corrected by the step the clock took
 * (ts += offset_now - offset_then) and lose the flag as they are sent.
 * Readings of an earlier boot, or of a boot whose offset is unknown, keep the
 * flag. The queue itself is never rewritten (no storage API for it): the
 * correction happens on the way out, in the forwarder. Main thread only. */
#ifndef TERN_AGENT_CLOCKFIX_H
#define TERN_AGENT_CLOCKFIX_H

#include <stddef.h>
#include <stdint.h>
#include "reading.h"

int64_t tern_boottime_ms(void); /* CLOCK_BOOTTIME (counts suspend) in ms */

/* Starts tracking for data_dir (file data_dir/clock.state: boot id and the
 * unsynchronised offset, written at most once per boot). durable_seq: the
 * queue's last seq at start; older readings may come from an earlier boot
 * (unless clock.state says an earlier run of this boot started lower).
 * mode: enum tern_clock_check. */
void tern_clockfix_init(const char *data_dir, int mode, int64_t durable_seq);
/* Call about once a second: records the offset while the clock is unsynced. */
void tern_clockfix_tick(void);
/* Corrects readings about to be sent when the clock is synchronised now.
 * Returns how many were corrected. */
size_t tern_clockfix_apply(struct tern_reading *r, size_t n);

/* The correction itself, for tests: readings flagged unsynced with seq >
 * floor_seq (the first seq of this boot) get ts += offset_now - offset_then
 * and lose the flag. Returns how many. */
size_t tern_clockfix_correct(struct tern_reading *r, size_t n, int64_t floor_seq,
                             int64_t offset_then, int64_t offset_now);

#endif
