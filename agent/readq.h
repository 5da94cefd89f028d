/* readq.h - the bounded queue from sensor threads to the main thread.
 *
 * Sensor threads push the metrics of one sample; the main thread pops them in
 * bulk and appends them to storage (the store handle is single-threaded).
 * Entries are compact (metric, value, time, a pointer to the sensor's
 * identity) so that a queue sized for seconds of stalls stays small in RAM;
 * the main thread expands them into full readings. When the queue is full the
 * sample is dropped and counted: it never blocks a sensor thread. */
#ifndef TERN_AGENT_READQ_H
#define TERN_AGENT_READQ_H

#include <stddef.h>
#include <stdint.h>
#include "driver.h"

struct tern_sensor; /* sensor.h */

struct tern_readq_item {
    struct tern_sensor *sensor; /* valid until the sensor is freed, which
                                   happens only after the queue was drained */
    struct tern_metric m;
    int64_t ts_ms;              /* UTC */
    uint32_t flags;             /* enum tern_reading_flag */
};

typedef struct tern_readq tern_readq;

/* Returns a queue holding up to cap items, or NULL (out of memory). */
tern_readq *tern_readq_new(size_t cap);
void tern_readq_free(tern_readq *q);

/* Pushes n items all-or-nothing. Returns 0, or -1 when they do not fit (the
 * queue counts them as dropped). Thread-safe. */
int tern_readq_push(tern_readq *q, const struct tern_readq_item *items, size_t n);
/* Pops up to max items in order. Returns the count. Thread-safe. */
size_t tern_readq_pop(tern_readq *q, struct tern_readq_item *out, size_t max);

size_t tern_readq_depth(tern_readq *q);
size_t tern_readq_cap(const tern_readq *q);
uint64_t tern_readq_dropped(tern_readq *q);  /* items refused because full */
uint64_t tern_readq_pushed(tern_readq *q);
size_t tern_readq_high_water(tern_readq *q);

#endif
