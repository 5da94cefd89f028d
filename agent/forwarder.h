/* forwarder.h - store-and-forward for one uplink.
 *
 * The forwarder reads the oldest unsent readings out of storage (after its
 * send cursor), hands them to its uplink in batches as the uplink's capacity
 * and the drain token bucket allow, acks readings in storage when the uplink
 * reports them acked, and on a failed report rewinds the cursor to what
 * storage knows as acknowledged, so everything unacknowledged is sent again
 * (duplicates are possible and identifiable by (device_id, epoch, seq)).
 * Acks may come long after the send (end-to-end receipts) and out of order:
 * nothing here assumes otherwise. Memory is one batch buffer, whatever the
 * backlog. Main thread only. */
#ifndef TERN_AGENT_FORWARDER_H
#define TERN_AGENT_FORWARDER_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "storage.h"
#include "uplink.h"

typedef struct tern_forwarder tern_forwarder;

struct tern_forwarder_stats {
    int64_t cursor;        /* highest seq handed to the uplink */
    int64_t acked_seq;     /* storage's contiguous acked seq for this uplink */
    uint64_t handed;       /* readings passed to send() */
    uint64_t acked;        /* readings reported acked */
    uint64_t failed;       /* readings reported failed */
    uint64_t rewinds;      /* times the cursor was rewound */
    uint64_t rejected;     /* readings the uplink can never send (dropped, counted) */
    uint64_t ack_errors;   /* storage acks that failed */
};

/* Opens the uplink of cfg (cfg->ops) with its options. The forwarder owns the
 * uplink afterwards. Returns the forwarder or NULL with err filled. */
tern_forwarder *tern_forwarder_new(const struct tern_uplink_cfg *cfg, const char *device_id,
                                   char *err, size_t errcap);
/* Closes the uplink (without waiting) and frees. NULL is a no-op. */
void tern_forwarder_free(tern_forwarder *f);

/* Binds to an open store (or NULL to detach); the cursor restarts at the
 * uplink's acknowledged seq. Returns 0, or -1 when the store does not know
 * this uplink. */
int tern_forwarder_attach(tern_forwarder *f, tern_store *store);

/* Hands as many pending readings to the uplink as it and the token bucket
 * take now. Returns 1 when more could be sent right away (call again soon
 * without sleeping), 0 otherwise. */
int tern_forwarder_pump(tern_forwarder *f, int64_t now_ms);
/* Drives the uplink's I/O for at most timeout_ms (events are handled). */
void tern_forwarder_poll(tern_forwarder *f, int timeout_ms);
/* Waits up to timeout_ms for in-flight batches to resolve. */
void tern_forwarder_drain(tern_forwarder *f, int timeout_ms);

const char *tern_forwarder_name(const tern_forwarder *f);
/* Whether f runs exactly the configuration cfg (used by reload). */
int tern_forwarder_matches(const tern_forwarder *f, const struct tern_uplink_cfg *cfg,
                           const char *device_id);
void tern_forwarder_get_stats(tern_forwarder *f, struct tern_forwarder_stats *out);
void tern_forwarder_uplink_status(tern_forwarder *f, struct tern_uplink_status *out);

#endif
