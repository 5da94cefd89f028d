/* batch.h - the batcher: rows encoded for ClickHouse as they arrive, the
 * rejected messages, and per topic/partition the last position they cover.
 * Bounded by rows, bytes and age (config [batch]). Independent of the source
 * and of the sink. Also drops exact duplicate readings inside one batch. */
#ifndef TERN_RELAY_BATCH_H
#define TERN_RELAY_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "reading.h"
#include "rows.h"
#include "source.h"

struct batch_row {
    size_t off;          /* start of the row in rows.p */
    uint32_t msg;        /* index into msgs of the message it came from */
    uint32_t item;       /* reading index within that message */
    int64_t ts_ms;       /* the reading's own timestamp: end-to-end latency */
};

struct batch_limits {
    size_t max_rows;
    size_t max_bytes;
    int64_t max_delay_ms;
};

struct batch_key {
    uint64_t epoch;
    int64_t seq;
    uint64_t device_hash;
};

struct batch {
    struct relay_buf rows;       /* JSONEachRow lines for the readings table */
    struct batch_row *row;
    size_t nrows, row_cap;
    struct relay_buf rejects;    /* JSONEachRow lines for the rejected table */
    size_t nrejects;
    struct relay_pos *msgs;      /* every message, in arrival order */
    size_t nmsgs, msg_cap;
    struct relay_pos *marks;     /* last position per topic/partition */
    size_t nmarks, mark_cap;
    struct batch_key *keys;      /* open addressing set of reading identities */
    size_t key_cap;              /* power of two, >= 2 * rows */
    size_t duplicates;           /* readings dropped as in-batch duplicates */
    int64_t opened_ms;           /* mono time of the first message, 0 when empty */
    int modern;                  /* row encoding mode */
    int rows_done, rejects_done; /* insert progress across retries */
};

void batch_init(struct batch *b, int modern);
void batch_free(struct batch *b);
/* Forgets the contents, keeps the memory. */
void batch_clear(struct batch *b);
/* Records a message; returns its index, or -1 when out of memory. */
long batch_add_message(struct batch *b, const struct relay_pos *pos, int64_t now_mono_ms);
/* Adds a reading of message msg. Returns 0 added, 1 dropped as a duplicate
 * of a reading already in the batch, -1 out of memory. */
int batch_add_reading(struct batch *b, uint32_t msg, uint32_t item, const struct tern_reading *r, int64_t now_s);
/* Adds a row already encoded (len bytes, ending in a newline) whose
 * identity is k. Same returns as batch_add_reading. */
int batch_add_encoded(struct batch *b, uint32_t msg, uint32_t item, struct batch_key k, const char *row,
                      size_t len, int64_t ts_ms);
/* Adds a rejected message (or reading). Returns 0 or -1 out of memory. */
int batch_add_reject(struct batch *b, const struct relay_reject *rj, int64_t now_s);
/* 1 when the batch should be inserted now. */
int batch_due(const struct batch *b, const struct batch_limits *l, int64_t now_mono_ms);
static inline int batch_empty(const struct batch *b) { return b->nmsgs == 0; }
/* Bytes of row i (newline included). */
size_t batch_row_len(const struct batch *b, size_t i);

#endif
