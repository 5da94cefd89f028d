/* metrics.h - the relay's counters, gauges and histograms, and their
 * Prometheus text exposition. Thread safe: the pipeline updates, the HTTP
 * thread formats. */
#ifndef TERN_RELAY_METRICS_H
#define TERN_RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define METRICS_HIST_BUCKETS 12
#define METRICS_MAX_PARTITIONS 256
#define METRICS_MAX_CODES 32

struct metrics_hist {
    const double *bounds;       /* METRICS_HIST_BUCKETS upper bounds, seconds */
    uint64_t counts[METRICS_HIST_BUCKETS];
    uint64_t count;
    double sum;
};

struct relay_metrics;

struct relay_metrics *relay_metrics_new(void);
void relay_metrics_free(struct relay_metrics *m);

enum relay_counter {
    M_CONSUMED = 0,      /* messages taken from the source */
    M_INSERTED,          /* reading rows inserted */
    M_REJECTED,          /* messages or readings sent to the rejected table */
    M_DUPLICATES,        /* readings dropped as duplicates inside a batch */
    M_BATCHES,           /* batches made durable */
    M_INSERT_RETRIES,    /* failed insert attempts that will be retried */
    M_BISECTS,           /* batches that needed bisecting */
    M_COMMIT_FAILURES,   /* source acknowledgements that failed */
    M_REVOKED_ABANDONED, /* batches dropped at a rebalance */
    M_RECEIPTS,          /* MQTT end-to-end receipts published */
    M_RECEIPT_FAILURES,  /* receipts that could not be published */
    M_NCOUNTERS
};

void relay_metrics_add(struct relay_metrics *m, enum relay_counter c, uint64_t n);
void relay_metrics_insert_seconds(struct relay_metrics *m, double s);
void relay_metrics_e2e_seconds(struct relay_metrics *m, double s, uint64_t n);
/* n observations of now_ms - ts, ts read from ts_ms then every stride bytes
 * (an array of structs), under one lock. */
void relay_metrics_e2e_ms_many(struct relay_metrics *m, int64_t now_ms, const int64_t *ts_ms, size_t n,
                               size_t stride);
void relay_metrics_ch_error(struct relay_metrics *m, int code);
void relay_metrics_lag(struct relay_metrics *m, const char *topic, int32_t partition, int64_t lag);
void relay_metrics_forget_lag(struct relay_metrics *m);
void relay_metrics_set_state(struct relay_metrics *m, int ready, int paused, size_t buffered_bytes);
int relay_metrics_ready(struct relay_metrics *m);
uint64_t relay_metrics_get(struct relay_metrics *m, enum relay_counter c);

/* Appends the Prometheus text format (version 0.0.4). */
void relay_metrics_format(struct relay_metrics *m, struct relay_buf *out);

#endif
