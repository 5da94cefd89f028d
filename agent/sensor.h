/* sensor.h - a running sensor: one configured driver instance polled on its
 * own interval (monotonic clock) in its own thread, so a slow or failing
 * sensor never delays the others. Samples go to the readq; failures mark the
 * sensor unhealthy, are counted and retried with exponential backoff. */
#ifndef TERN_AGENT_SENSOR_H
#define TERN_AGENT_SENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "readq.h"

typedef struct tern_sensor tern_sensor;

struct tern_sensor_stats {
    uint64_t reads_ok;
    uint64_t reads_failed;
    uint64_t metrics;        /* readings produced */
    uint64_t dropped;        /* readings refused by a full readq */
    int healthy;             /* last attempt succeeded */
    int64_t last_ok_mono_ms; /* 0 when never */
    char last_error[256];
};

/* Starts a sensor from its config (deep-copied: cfg may be freed after).
 * The driver is opened inside the thread, so a missing device is retried like
 * a failing read and never stops the agent. Returns the sensor, owned by the
 * caller (tern_sensor_stop then tern_sensor_free), or NULL with err filled. */
tern_sensor *tern_sensor_start(const struct tern_sensor_cfg *cfg, tern_readq *q, int clock_check,
                               char *err, size_t errcap);
/* Asks the thread to stop and joins it (waits for a read in progress). */
void tern_sensor_stop(tern_sensor *s);
/* Closes the driver and frees; call after stop and after the readq no longer
 * holds items pointing at s. NULL is a no-op. */
void tern_sensor_free(tern_sensor *s);

const char *tern_sensor_name(const tern_sensor *s);
const char *tern_sensor_tags(const tern_sensor *s); /* JSON object or "" */
/* Whether s runs exactly the configuration cfg (used by reload). */
int tern_sensor_matches(const tern_sensor *s, const struct tern_sensor_cfg *cfg);
void tern_sensor_get_stats(tern_sensor *s, struct tern_sensor_stats *out);

/* Whether the system clock should not be trusted right now (see [agent]
 * clock_check). Thread-safe. */
int tern_clock_unsynced(int mode);

#endif
