/* sensor.h - running sensors: each configured driver instance is polled on
 * its own interval (monotonic clock) by a small pool of threads, so a slow
 * or failing sensor never delays the others. Samples go to the readq;
 * failures mark the sensor unhealthy, are counted and retried with
 * exponential backoff.
 *
 * Why a pool and not a thread per sensor: 50 sensor threads cost ~1.6 MiB of
 * resident stacks plus a malloc arena each (bench/agent_mqtt.sh measured it),
 * while a sim or sysfs read takes microseconds. A scheduler thread keeps the
 * due times and hands due sensors to idle workers; a sensor is read by at
 * most one worker at a time, and when every worker is busy (a read blocks on
 * a slow bus) for longer than a short grace the scheduler starts another
 * worker, so a blocked read only ever holds its own thread. Workers beyond
 * the first exit after a while idle. */
#ifndef TERN_AGENT_SENSOR_H
#define TERN_AGENT_SENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "readq.h"

typedef struct tern_sensor tern_sensor;
typedef struct tern_sensor_pool tern_sensor_pool;

struct tern_sensor_stats {
    uint64_t reads_ok;
    uint64_t reads_failed;
    uint64_t metrics;        /* readings produced */
    uint64_t dropped;        /* readings refused by a full readq */
    int healthy;             /* last attempt succeeded */
    int64_t last_ok_mono_ms; /* 0 when never */
    char last_error[256];
};

struct tern_sensor_pool_stats {
    size_t sensors;          /* sensors scheduled */
    size_t workers;          /* worker threads alive */
    size_t busy;             /* workers inside a driver call */
    size_t workers_high_water;
};

/* Starts the scheduler thread (with SIGTERM, SIGINT and SIGHUP blocked: the
 * main loop takes them). Returns the pool, owned by the caller, or NULL with
 * err filled. */
tern_sensor_pool *tern_sensor_pool_new(char *err, size_t errcap);
/* Stops and joins every thread. Every sensor must have been stopped (or
 * abandoned) first. NULL is a no-op. */
void tern_sensor_pool_free(tern_sensor_pool *p);
void tern_sensor_pool_get_stats(tern_sensor_pool *p, struct tern_sensor_pool_stats *out);

/* Starts a sensor from its config (deep-copied: cfg may be freed after); its
 * first read is due now. The driver is opened by a worker, so a missing
 * device is retried like a failing read and never stops the agent. Returns
 * the sensor, owned by the caller (tern_sensor_stop then tern_sensor_free),
 * or NULL with err filled. */
tern_sensor *tern_sensor_start(tern_sensor_pool *p, const struct tern_sensor_cfg *cfg,
                               tern_readq *q, int clock_check, char *err, size_t errcap);
/* Takes the sensor off the schedule; waits for a read in progress (its
 * readings still go to the readq). */
void tern_sensor_stop(tern_sensor *s);
/* The same, waiting for a read in progress only until the monotonic deadline
 * (ms). Returns 0 when stopped, or -1 when the read still hangs: its results
 * will be dropped, nothing more goes to the readq for s, and s must be handed
 * to tern_sensor_abandon (not freed) once the readq was drained. */
int tern_sensor_stop_until(tern_sensor *s, int64_t deadline_ms);
/* For a sensor whose stop timed out: the worker stuck in its read frees it
 * when the read returns (at once when it already did). s must not be used
 * after this. A pool with abandoned reads still hanging is not joined by
 * tern_sensor_pool_free (bounded exit); its memory is left to the process
 * exit. NULL is a no-op. */
void tern_sensor_abandon(tern_sensor *s);
/* Stops (waiting), closes the driver and frees; call after the readq no
 * longer holds items pointing at s. NULL is a no-op. */
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
