/* uplink.h - the uplink interface: how the agent's forwarder hands readings
 * from storage to a transport (MQTT, Kafka) and learns what was delivered.
 *
 * Contract (after Fluent Bit's output plugins): the forwarder owns the queue,
 * the cursors and retries; an uplink only transmits and reports. send() takes
 * a batch read from storage; later, from inside poll(), the uplink reports
 * each batch (or part of it) as acked (delivered: the forwarder acks it in
 * storage, which may then delete it) or failed (the forwarder re-sends from
 * the uplink's acknowledged cursor later). Nothing is acked on hand-over
 * alone. All calls happen on the agent's main thread. */
#ifndef TERN_UPLINK_H
#define TERN_UPLINK_H

#include <stddef.h>
#include <stdint.h>
#include "driver.h" /* struct tern_kv_list, struct tern_driver_option */
#include "reading.h"

enum tern_uplink_result {
    TERN_UPLINK_OK = 0,     /* taken: an acked or failed event will follow */
    TERN_UPLINK_RETRY = 1,  /* not now (disconnected, window full): try later */
    TERN_UPLINK_ERROR = -1, /* cannot ever send these (e.g. reading too large) */
};

/* Events the uplink raises from inside poll(). seq ranges are inclusive and
 * cover only readings that were passed to send(). */
struct tern_uplink_events {
    void *user;
    void (*acked)(void *user, int64_t first_seq, int64_t last_seq);
    void (*failed)(void *user, int64_t first_seq, int64_t last_seq, const char *why);
};

struct tern_uplink_status {
    int connected;            /* 1 when the transport is up */
    uint64_t in_flight;       /* readings sent and not yet acked or failed */
    uint64_t sent;            /* readings handed to the transport */
    uint64_t acked;
    uint64_t failed;
    char state[32];           /* "connected", "connecting", "backoff", ... */
    char last_error[256];     /* "" when none */
};

struct tern_uplink_ops {
    const char *name;    /* section name: [uplink.<name>] */
    const char *summary; /* one line for --help */
    const struct tern_driver_option *options; /* {NULL}-terminated, for --check/docs */

    /* Validates opts, sets up the transport (connecting may continue in
     * poll()). device_id fills topic templates. On success *state is owned by
     * the uplink until close(). Returns 0, or -1 with err filled. */
    int (*open)(const struct tern_kv_list *opts, const char *device_id,
                const struct tern_uplink_events *ev, void **state, char *err, size_t errcap);

    /* Readings the uplink can take right now (0 while disconnected or when
     * its in-flight window is full). */
    size_t (*capacity)(void *state);

    /* Hands n readings (seq ascending) to the transport. The uplink copies
     * what it needs. Returns enum tern_uplink_result. */
    int (*send)(void *state, const struct tern_reading *r, size_t n);

    /* Drives I/O for at most timeout_ms and raises events. Returns 0. */
    int (*poll)(void *state, int timeout_ms);

    /* On shutdown: waits up to timeout_ms for in-flight batches to resolve. */
    void (*drain)(void *state, int timeout_ms);

    void (*status)(void *state, struct tern_uplink_status *out);

    void (*close)(void *state);
};

/* NULL-terminated list of the uplinks available: built in, plus those of
 * the loadable modules (uplink.c) that load. Loads every module. */
const struct tern_uplink_ops *const *tern_uplinks(void);
/* NULL-terminated names of every uplink this build knows, loaded or not. */
const char *const *tern_uplink_names(void);
/* The uplink called name, loading its module on first use. NULL when it is
 * not built in or its module cannot be loaded; err (may be NULL) then says
 * which ("not built in", or the loader's message). Main thread only. */
const struct tern_uplink_ops *tern_uplink_load(const char *name, char *err, size_t errcap);
/* tern_uplink_load without the message. */
const struct tern_uplink_ops *tern_uplink_find(const char *name);

#endif
