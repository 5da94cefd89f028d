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
    int64_t seq;         /* readings: seq and stream number, for batch_sort */
    uint32_t stream;
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

/* The readings of one (device, epoch) in a batch: which seqs it has, as a bit
 * per seq over a window that grows as needed. Seqs of an epoch are dense and
 * mostly ascending, so the window stays small and the test is a bit in cache
 * instead of a random probe into a table of every reading (which was a tenth
 * of the relay's CPU). A stream whose seqs are too sparse for a window moves
 * its identities to the key set. */
struct batch_stream {
    uint64_t epoch;
    uint64_t device_hash;        /* bit 0 set; 0 marks an empty slot */
    int64_t base;                /* seq of the window's first bit, a multiple of 64 */
    size_t word;                 /* the window's first word in batch.words */
    uint32_t nwords;             /* window size in 64-bit words, 0 = none yet */
    uint32_t count;              /* readings of the stream in the batch */
    uint32_t id;                 /* its number in batch.stream_info */
    int sparse;                  /* identities are in the key set instead */
};

struct batch_stream_info {
    uint64_t epoch;
    char device_id[TERN_ID_MAX];
};

struct batch {
    struct relay_buf rows;       /* rows for the readings table (RowBinary or JSONEachRow) */
    struct batch_row *row;
    size_t nrows, row_cap;
    struct relay_buf rejects;    /* JSONEachRow lines for the rejected table */
    size_t nrejects;
    struct relay_pos *msgs;      /* every message, in arrival order */
    size_t nmsgs, msg_cap;
    struct relay_pos *marks;     /* last position per topic/partition */
    size_t nmarks, mark_cap;
    struct batch_stream *streams; /* open addressing, by (epoch, device_hash) */
    size_t stream_cap, nstreams;  /* power of two, >= 2 * nstreams */
    struct batch_stream_info *stream_info; /* by stream id, nstreams of them */
    size_t stream_info_cap;
    uint64_t *words;             /* the streams' seq windows */
    size_t nwords, word_cap;
    struct batch_key *keys;      /* open addressing set of identities: sparse streams, wide rows */
    size_t key_cap, nkeys;       /* power of two, >= 2 * nkeys */
    size_t duplicates;           /* readings dropped as in-batch duplicates */
    int64_t opened_ms;           /* mono time of the first message, 0 when empty */
    int modern;                  /* schema mode of the rows */
    int binary;                  /* rows are RowBinary, else JSONEachRow lines */
    size_t nencoded;             /* rows from batch_add_encoded (not sortable) */
    int sorted;                  /* batch_sort done */
    struct relay_buf spare;      /* batch_sort's second rows buffer */
    struct batch_row *spare_row; /* ... and row array */
    size_t spare_row_cap;
    struct batch_sort_key *sort_keys;
    size_t sort_key_cap;
    int rows_done, rejects_done; /* insert progress across retries */
};

void batch_init(struct batch *b, int modern, int binary);
void batch_free(struct batch *b);
/* Forgets the contents, keeps the memory. */
void batch_clear(struct batch *b);
/* Records a message; returns its index, or -1 when out of memory. */
long batch_add_message(struct batch *b, const struct relay_pos *pos, int64_t now_mono_ms);
/* Adds a reading of message msg. Returns 0 added, 1 dropped as a duplicate
 * of a reading already in the batch, 2 not added because it cannot be
 * encoded (RowBinary: tags that are not an object of strings), -1 out of
 * memory. */
int batch_add_reading(struct batch *b, uint32_t msg, uint32_t item, const struct tern_reading *r, int64_t now_s);
/* Adds a row already encoded (len bytes, ending in a newline) whose
 * identity is k. Same returns as batch_add_reading. */
int batch_add_encoded(struct batch *b, uint32_t msg, uint32_t item, struct batch_key k, const char *row,
                      size_t len, int64_t ts_ms);
/* Adds a rejected message (or reading). Returns 0 or -1 out of memory. */
int batch_add_reject(struct batch *b, const struct relay_reject *rj, int64_t now_s);
/* 1 when the batch should be inserted now. */
int batch_due(const struct batch *b, const struct batch_limits *l, int64_t now_mono_ms);
/* 1 when a batch that is not due should still be inserted now because the
 * insert thread is idle: it holds at least a quarter of max_rows and either
 * no insert ran for max_delay_ms (a burst begins; idle_ms < 0: none ever
 * ran) or the source has nothing more queued (a burst ends). The caller
 * asks only while the insert thread is idle. */
int batch_due_early(const struct batch *b, const struct batch_limits *l, int64_t idle_ms, int source_dry);
/* The rows from which batch_due_early may say yes (at least one). */
static inline size_t batch_early_rows(const struct batch_limits *l)
{
    return l->max_rows / 4 ? l->max_rows / 4 : 1;
}
static inline int batch_empty(const struct batch *b) { return b->nmsgs == 0; }
/* Puts the readings rows in the order of the readings table's key (device_id,
 * epoch, seq). ClickHouse then skips sorting the block when it writes the
 * part: on 18.16 an insert of sorted rows took 0.6-1.0 us of server CPU per
 * row against 1.2-1.5 unsorted. A no-op for wide rows, and once done. Returns
 * 0, or -1 out of memory (the rows stay as they were, which is as correct). */
int batch_sort(struct batch *b);
/* Bytes of row i (a JSON row's newline included). */
size_t batch_row_len(const struct batch *b, size_t i);

#endif
