/* source.h - where the relay's messages come from. A source delivers messages
 * with a position and is told when positions are durable (their rows are in
 * ClickHouse); it must not acknowledge upstream before that. Kafka is one
 * source (source_kafka.c); MQTT shared subscriptions will be another. The
 * batcher and the ClickHouse sink never see which one they serve. */
#ifndef TERN_RELAY_SOURCE_H
#define TERN_RELAY_SOURCE_H

#include <stddef.h>
#include <stdint.h>

/* A message's place in its source. topic points into memory owned by the
 * source and valid until the source is closed. */
struct relay_pos {
    const char *topic;
    int32_t partition;   /* -1 when the source has no partitions */
    int64_t offset;      /* source-defined, increasing within a partition */
};

struct relay_msg {
    const void *payload; /* valid until the next poll or close */
    size_t len;
    struct relay_pos pos;
    /* The device every reading of this message must name (MQTT: from the
     * topic), or NULL when the source cannot tell. Mismatches are rejected. */
    const char *device_id;
};

/* What the pipeline must do when the source loses positions it delivered
 * (Kafka rebalance revoke): make them durable now, or forget them so the new
 * owner re-reads them. Called from inside poll. */
struct relay_source_events {
    void (*revoke)(void *user);
    void *user;
};

struct relay_source_ops {
    const char *name;
    /* Waits up to timeout_ms for one message. Returns 1 with *msg filled, 0
     * when none came, -1 on a fatal error (err says why). */
    int (*poll)(void *self, struct relay_msg *msg, int timeout_ms, char *err, size_t errcap);
    /* Every message up to and including these positions (one per topic and
     * partition) is durable. sync: wait for the acknowledgement (used in
     * revoke). Returns 0, or -1 (the rows are safe; the source will
     * re-deliver, and the readings deduplicate). */
    int (*durable)(void *self, const struct relay_pos *pos, size_t n, int sync, char *err, size_t errcap);
    /* Stop or restart delivery while the sink cannot take rows (optional). */
    int (*pause)(void *self);
    int (*resume)(void *self);
    void (*close)(void *self);
};

struct relay_source {
    const struct relay_source_ops *ops;
    void *self;
};

#endif
