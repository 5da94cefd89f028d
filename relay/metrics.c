/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static const double insert_bounds[METRICS_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5,   1,    2.5,   5,    10,  30};
static const double e2e_bounds[METRICS_HIST_BUCKETS] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600};

struct lag_entry {
    char topic[128];
    int32_t partition;
    int64_t lag;
};

struct relay_metrics {
    pthread_mutex_t lock;
    _Atomic uint64_t counter[M_NCOUNTERS]; /* hot path: no lock */
    struct metrics_hist insert;
    struct metrics_hist e2e;
    struct lag_entry lag[METRICS_MAX_PARTITIONS];
    size_t nlag;
    int codes[METRICS_MAX_CODES];
    uint64_t code_count[METRICS_MAX_CODES];
    size_t ncodes;
    int ready, paused;
    size_t buffered;
};

static const struct {
    const char *name;
    const char *help;
} counter_info[M_NCOUNTERS] = {
    [M_CONSUMED] = {"tern_relay_messages_consumed_total", "Messages taken from the source."},
    [M_INSERTED] = {"tern_relay_rows_inserted_total", "Reading rows inserted into ClickHouse."},
    [M_REJECTED] = {"tern_relay_rejected_total", "Messages or readings written to the rejected table."},
    [M_DUPLICATES] = {"tern_relay_duplicates_dropped_total", "Readings dropped as duplicates within a batch."},
    [M_BATCHES] = {"tern_relay_batches_total", "Batches inserted and acknowledged to the source."},
    [M_INSERT_RETRIES] = {"tern_relay_insert_retries_total", "Failed insert attempts that were retried."},
    [M_BISECTS] = {"tern_relay_bisects_total", "Batches refused for content and bisected."},
    [M_COMMIT_FAILURES] = {"tern_relay_commit_failures_total", "Source acknowledgements (offset commits) that failed."},
    [M_REVOKED_ABANDONED] = {"tern_relay_revoked_batches_abandoned_total",
                             "Batches dropped at a rebalance because ClickHouse could not take them."},
    [M_RECEIPTS] = {"tern_relay_receipts_published_total",
                    "MQTT end-to-end receipts published to devices after their readings were stored."},
    [M_RECEIPT_FAILURES] = {"tern_relay_receipt_failures_total",
                            "Receipts that could not be published (the devices re-send; copies deduplicate)."},
};

struct relay_metrics *relay_metrics_new(void)
{
    struct relay_metrics *m = tern_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->insert.bounds = insert_bounds;
    m->e2e.bounds = e2e_bounds;
    return m;
}

void relay_metrics_free(struct relay_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    tern_free(m);
}

void relay_metrics_add(struct relay_metrics *m, enum relay_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&m->counter[c], n, memory_order_relaxed);
}

uint64_t relay_metrics_get(struct relay_metrics *m, enum relay_counter c)
{
    return atomic_load_explicit(&m->counter[c], memory_order_relaxed);
}

static void observe(struct metrics_hist *h, double s, uint64_t n)
{
    for (int i = 0; i < METRICS_HIST_BUCKETS; i++) {
        if (s <= h->bounds[i]) {
            h->counts[i] += n;
            break;
        }
    }
    h->count += n;
    h->sum += s * (double)n;
}

void relay_metrics_insert_seconds(struct relay_metrics *m, double s)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->insert, s, 1);
    pthread_mutex_unlock(&m->lock);
}

void relay_metrics_e2e_seconds(struct relay_metrics *m, double s, uint64_t n)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->e2e, s, n);
    pthread_mutex_unlock(&m->lock);
}

void relay_metrics_e2e_ms_many(struct relay_metrics *m, int64_t now_ms, const int64_t *ts_ms, size_t n,
                               size_t stride)
{
    uint64_t counts[METRICS_HIST_BUCKETS] = {0};
    double sum = 0;
    const char *p = (const char *)ts_ms;
    for (size_t i = 0; i < n; i++, p += stride) {
        int64_t d = now_ms - *(const int64_t *)(const void *)p;
        double s = d > 0 ? (double)d / 1000.0 : 0.0;
        sum += s;
        for (int k = 0; k < METRICS_HIST_BUCKETS; k++) {
            if (s <= e2e_bounds[k]) {
                counts[k]++;
                break;
            }
        }
    }
    pthread_mutex_lock(&m->lock);
    for (int k = 0; k < METRICS_HIST_BUCKETS; k++)
        m->e2e.counts[k] += counts[k];
    m->e2e.count += n;
    m->e2e.sum += sum;
    pthread_mutex_unlock(&m->lock);
}

void relay_metrics_ch_error(struct relay_metrics *m, int code)
{
    pthread_mutex_lock(&m->lock);
    size_t i;
    for (i = 0; i < m->ncodes && m->codes[i] != code; i++)
        ;
    if (i == m->ncodes && m->ncodes < METRICS_MAX_CODES)
        m->codes[m->ncodes++] = code;
    if (i < m->ncodes)
        m->code_count[i]++;
    pthread_mutex_unlock(&m->lock);
}

void relay_metrics_lag(struct relay_metrics *m, const char *topic, int32_t partition, int64_t lag)
{
    pthread_mutex_lock(&m->lock);
    size_t i;
    for (i = 0; i < m->nlag; i++)
        if (m->lag[i].partition == partition && strcmp(m->lag[i].topic, topic) == 0)
            break;
    if (i == m->nlag && m->nlag < METRICS_MAX_PARTITIONS) {
        snprintf(m->lag[i].topic, sizeof(m->lag[i].topic), "%s", topic);
        m->lag[i].partition = partition;
        m->nlag++;
    }
    if (i < m->nlag)
        m->lag[i].lag = lag < 0 ? 0 : lag;
    pthread_mutex_unlock(&m->lock);
}

void relay_metrics_forget_lag(struct relay_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->nlag = 0;
    pthread_mutex_unlock(&m->lock);
}

void relay_metrics_set_state(struct relay_metrics *m, int ready, int paused, size_t buffered_bytes)
{
    pthread_mutex_lock(&m->lock);
    m->ready = ready;
    m->paused = paused;
    m->buffered = buffered_bytes;
    pthread_mutex_unlock(&m->lock);
}

int relay_metrics_ready(struct relay_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    int r = m->ready;
    pthread_mutex_unlock(&m->lock);
    return r;
}

static void format_hist(struct relay_buf *out, const char *name, const char *help, const struct metrics_hist *h)
{
    uint64_t cum = 0;
    buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < METRICS_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
               (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

void relay_metrics_format(struct relay_metrics *m, struct relay_buf *out)
{
    pthread_mutex_lock(&m->lock);
    for (int c = 0; c < M_NCOUNTERS; c++)
        buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_info[c].name, counter_info[c].help,
                   counter_info[c].name, counter_info[c].name, (unsigned long long)atomic_load(&m->counter[c]));
    format_hist(out, "tern_relay_insert_duration_seconds", "Duration of one ClickHouse insert request.", &m->insert);
    format_hist(out, "tern_relay_end_to_end_seconds", "From a reading's timestamp to its insert into ClickHouse.",
                &m->e2e);
    buf_puts(out, "# HELP tern_relay_consumer_lag Messages in the partition not yet consumed.\n"
                  "# TYPE tern_relay_consumer_lag gauge\n");
    for (size_t i = 0; i < m->nlag; i++) {
        buf_puts(out, "tern_relay_consumer_lag{topic=");
        buf_json_string(out, m->lag[i].topic, strlen(m->lag[i].topic));
        buf_printf(out, ",partition=\"%d\"} %lld\n", (int)m->lag[i].partition, (long long)m->lag[i].lag);
    }
    buf_puts(out, "# HELP tern_relay_clickhouse_errors_total Failed ClickHouse requests by exception code "
                  "(0 = no answer).\n# TYPE tern_relay_clickhouse_errors_total counter\n");
    for (size_t i = 0; i < m->ncodes; i++)
        buf_printf(out, "tern_relay_clickhouse_errors_total{code=\"%d\"} %llu\n", m->codes[i],
                   (unsigned long long)m->code_count[i]);
    buf_printf(out, "# HELP tern_relay_ready 1 when the relay can insert into ClickHouse.\n"
                    "# TYPE tern_relay_ready gauge\ntern_relay_ready %d\n"
                    "# HELP tern_relay_paused 1 while consumption is paused for backpressure.\n"
                    "# TYPE tern_relay_paused gauge\ntern_relay_paused %d\n"
                    "# HELP tern_relay_buffered_bytes Encoded rows waiting for insert.\n"
                    "# TYPE tern_relay_buffered_bytes gauge\ntern_relay_buffered_bytes %zu\n",
               m->ready, m->paused, m->buffered);
    pthread_mutex_unlock(&m->lock);
}
