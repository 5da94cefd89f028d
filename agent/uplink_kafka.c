/* uplink_kafka.c - the direct-to-Kafka uplink (librdkafka): one Kafka message
 * per reading, acknowledged to the forwarder only by a successful delivery
 * report, never on hand-over to librdkafka's memory queue.
 *
 * Shape:
 * - send() encodes each reading with tern_wire_encode into one per-uplink
 *   buffer and produces it with RD_KAFKA_MSG_F_COPY, key = device_id (one
 *   partition per device keeps its order), headers epoch and seq. The message
 *   opaque is a slot index (not the seq itself: seq is 64-bit and a pointer
 *   may be 32-bit on the edge boxes); the slot table holds the seq and bounds
 *   what sits inside librdkafka to max_in_flight (capacity()).
 * - Delivery reports and errors arrive in rd_kafka_poll() on the main thread,
 *   inside poll(); consecutive seqs with the same outcome are coalesced into
 *   one acked/failed range. capacity() lets at most KAFKA_SEND_BURST readings
 *   through between two poll() calls, so reports are served (and librdkafka's
 *   messages freed) while the queue drains, not only after a whole round.
 * - A small watcher thread asks the brokers for the topic's metadata at
 *   start, when a delivery says the topic is unknown, while the brokers are
 *   down, and every topic_check_ms: rd_kafka_metadata() blocks, and the agent's
 *   main loop must not. capacity() is 0 until the brokers answered and the
 *   topic exists, so an outage or a missing topic keeps readings in storage
 *   instead of timing out inside librdkafka.
 * - A fatal error of the idempotent producer (rd_kafka_fatal_error) makes
 *   the uplink report everything in flight as failed and recreate the
 *   producer; the forwarder re-sends from storage.
 * Persistent conditions (unreachable, authentication, missing topic, fatal)
 * are logged once with TERN_ERROR when they start and once with TERN_INFO when
 * they clear; status() carries the text in last_error meanwhile. */
#include "uplink.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "wire.h"

#define KAFKA_PASSTHROUGH_PREFIX "kafka."
#define KAFKA_METADATA_TIMEOUT_MS 1000 /* one metadata request of the watcher */
#define KAFKA_RECHECK_DOWN_MS 1000     /* watcher period while brokers/topic are not OK */
/* Readings librdkafka may hold while the brokers are away (after they were
 * reachable once): their delivery reports are the first sign the brokers are
 * back, often seconds before a metadata answer (reconnect backoff). */
#define KAFKA_PROBE_WINDOW 1000
/* Readings send() takes between two poll() calls. The forwarder hands over
 * up to 64 chunks of 1000 per round; without this, 64k messages went into
 * librdkafka before their first delivery reports were served, so in flight
 * sat near max_in_flight with each message's five allocations (the message
 * with its copy of line and key, the header list, its array, one per
 * header): the agent peaked at ~70 MiB in bench agent-kafka. Serving reports
 * every few thousand readings keeps in flight to what the broker round trip
 * needs (~25 MiB peak there, same drain rate). */
#define KAFKA_SEND_BURST 4096

static const struct tern_driver_option kafka_options[] = {
    {"brokers", "string", NULL, "bootstrap servers, host:port[,host:port...]"},
    {"topic", "string", "sensor_readings", "topic that receives one message per reading"},
    {"client_id", "string", "tern-agent-<device_id>", "Kafka client.id"},
    {"compression", "string", "lz4", "none, gzip, snappy, lz4 or zstd"},
    {"linger_ms", "int", "10", "ms librdkafka waits to fill a batch (linger.ms)"},
    {"batch_size", "int", "1000000", "max bytes of one produce batch (batch.size)"},
    {"batch_num_messages", "int", "10000", "max messages of one batch (batch.num.messages)"},
    {"max_in_flight", "int", "20000",
     "max readings inside librdkafka, sent and not yet confirmed; bounds memory (about 2.5 KiB of RSS each "
     "while draining a backlog)"},
    {"message_timeout_ms", "int", "300000",
     "a reading not confirmed within this is reported failed and re-sent (message.timeout.ms)"},
    {"topic_check_ms", "int", "60000", "how often the topic's existence is re-checked"},
    {"tls", "bool", "false", "connect with TLS (implied by ssl_ca, ssl_cert, ssl_key)"},
    {"ssl_ca", "path", "", "CA bundle (PEM) that verifies the brokers"},
    {"ssl_cert", "path", "", "client certificate (PEM) for mutual TLS"},
    {"ssl_key", "path", "", "client private key (PEM) for mutual TLS"},
    {"ssl_key_password_file", "path", "", "file holding the client key's password"},
    {"sasl_mechanism", "string", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty = no SASL"},
    {"sasl_username", "string", "", "SASL user name"},
    {"sasl_password_file", "path", "", "file whose first line is the SASL password"},
    {"sasl_password_env", "string", "", "environment variable holding the SASL password"},
    {"kafka.*", "string", "", /* not required: "" is the agent's "optional" */
     "any other librdkafka property, e.g. kafka.socket.keepalive.enable = true"},
    {NULL, NULL, NULL, NULL},
};

/* librdkafka properties Tern sets itself: overriding them through kafka.*
 * would break delivery confirmation or the memory bound, or put a secret in
 * the config file. */
static const struct {
    const char *prop;
    const char *why;
} kafka_reserved[] = {
    {"enable.idempotence", "the idempotent producer is always on"},
    {"acks", "acks=all is required for confirmed delivery"},
    {"request.required.acks", "acks=all is required for confirmed delivery"},
    {"bootstrap.servers", "use 'brokers'"},
    {"metadata.broker.list", "use 'brokers'"},
    {"queue.buffering.max.messages", "use 'max_in_flight'"},
    {"sasl.password", "use 'sasl_password_file' or 'sasl_password_env'"},
    {"ssl.key.password", "use 'ssl_key_password_file'"},
};

/* Persistent conditions, each logged once when it starts. */
enum kafka_cond {
    COND_NONE = 0,
    COND_UNREACHABLE,
    COND_AUTH,
    COND_TLS,
    COND_TOPIC_MISSING,
    COND_TOO_LARGE,
    COND_FATAL,
};

enum watch_result { WATCH_NONE = 0, WATCH_OK, WATCH_TOPIC_MISSING, WATCH_ERROR };

#define SLOT_FREE 0       /* seq >= 1, so 0 marks an unused slot */
#define SLOT_ABANDONED -1 /* reported failed by drain(); its report is ignored */

/* A run of consecutive seqs to report failed from the next poll(): produce
 * errors found inside send(), which must not raise events itself. */
struct failed_run {
    int64_t first, last;
    const char *why; /* static text */
};

struct kafka_uplink {
    /* Fixed configuration, set at open. */
    char *brokers;
    char *topic;
    int64_t topic_check_ms;
    size_t max_in_flight;
    rd_kafka_conf_t *conf; /* template; each producer gets a dup */
    struct tern_uplink_events ev;

    /* The producer; NULL only between a failed recreate and its retry. */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int64_t recreate_at_ms; /* when rk is NULL: next attempt */
    struct tern_backoff recreate_backoff;
    int fatal_pending;     /* fatal error seen: recreate in the next poll */
    int drained;
    int closing;

    /* Slot table: what is inside librdkafka. */
    int64_t *slot_seq;  /* [max_in_flight]: seq, SLOT_FREE or SLOT_ABANDONED */
    uint32_t *free_idx; /* stack of free slot indices */
    size_t free_top;
    size_t slots_used; /* includes the abandoned ones */
    size_t slots_abandoned;

    struct failed_run *deferred;
    size_t n_deferred, cap_deferred;
    uint64_t deferred_readings;

    /* Coalescer: the range being built from delivery reports. */
    int pend_active;
    int pend_ok;
    int64_t pend_first, pend_last;
    const char *pend_why;

    /* Health as seen by the main thread. */
    int up;          /* brokers answered since the last "down" */
    int topic_ok;    /* the last metadata answer listed the topic */
    int ever_up;
    int dr_ok_since_kick; /* a delivery succeeded after the last watcher_kick */
    uint64_t want_gen; /* watcher answers older than this do not prove "up" */
    enum kafka_cond cond; /* condition currently logged, COND_NONE when healthy */
    char last_error[256];
    char last_transport[200]; /* last broker connection error text */

    uint64_t sent, acked, failed;
    size_t burst_left; /* send() room until the next poll() (KAFKA_SEND_BURST) */

    /* The epoch header's text, for the epoch it was made from. */
    uint64_t epoch;
    int epoch_set;
    char epoch_hex[16];

    /* Per-uplink encode buffer (one line, never more than TERN_WIRE_LINE_MAX). */
    char buf[TERN_WIRE_LINE_MAX + 1];

    /* Watcher thread and what it shares with the main thread (under mu). */
    pthread_t watcher;
    int watcher_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int w_stop;
    uint64_t w_kick;        /* bumped to ask for a check now */
    uint64_t w_result_n;    /* bumped per answer */
    uint64_t w_result_gen;  /* w_kick value the answer started from */
    enum watch_result w_result;
    rd_kafka_resp_err_t w_err;
    int w_partitions;
    uint64_t seen_result_n; /* main thread: last answer applied */
};

/* ---- small helpers ---------------------------------------------------- */

static void set_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (err == NULL || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const struct tern_kv *opt_find(const struct tern_kv_list *l, const char *key)
{
    const struct tern_kv *found = NULL;
    for (size_t i = 0; l != NULL && i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0)
            found = &l->items[i]; /* the last one wins, as in the config file */
    return found;
}

static int parse_int(const struct tern_kv *kv, int64_t min, int64_t max, int64_t *out,
                     char *err, size_t errcap)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(kv->value, &end, 10);
    if (errno != 0 || end == kv->value || *end != '\0' || v < min || v > max) {
        set_err(err, errcap, "line %d: %s: expected an integer in [%" PRId64 ", %" PRId64
                "], got '%s'", kv->line, kv->key, min, max, kv->value);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bool(const struct tern_kv *kv, int *out, char *err, size_t errcap)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(kv->value, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(kv->value, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    set_err(err, errcap, "line %d: %s: expected true or false, got '%s'", kv->line, kv->key,
            kv->value);
    return -1;
}

/* Reads the first line of path (a secret) into out. The text is never
 * logged; errors name the file only. */
static int read_secret_file(const struct tern_kv *kv, char *out, size_t cap, char *err,
                            size_t errcap)
{
    FILE *f = fopen(kv->value, "re");
    if (f == NULL) {
        set_err(err, errcap, "line %d: %s: cannot open '%s': %s", kv->line, kv->key,
                kv->value, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (fgets(out, (int)cap, f) == NULL) {
        set_err(err, errcap, "line %d: %s: '%s' is empty", kv->line, kv->key, kv->value);
        rc = -1;
    }
    fclose(f);
    if (rc == 0) {
        out[strcspn(out, "\r\n")] = '\0';
        if (out[0] == '\0') {
            set_err(err, errcap, "line %d: %s: '%s' has an empty first line", kv->line,
                    kv->key, kv->value);
            rc = -1;
        }
    }
    return rc;
}

static int conf_set(rd_kafka_conf_t *conf, const char *prop, const char *value,
                    const struct tern_kv *kv, char *err, size_t errcap)
{
    char why[512];
    if (rd_kafka_conf_set(conf, prop, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return 0;
    if (kv != NULL)
        set_err(err, errcap, "line %d: %s: %s", kv->line, kv->key, why);
    else
        set_err(err, errcap, "%s: %s", prop, why);
    return -1;
}

/* Header values, formatted by hand: snprintf showed up in profiles of the
 * produce path. epoch as 16 lowercase hex digits (as in the wire format). */
static void format_hex64(uint64_t v, char out[16])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[v & 0xf];
        v >>= 4;
    }
}

/* Decimal text of v at the end of buf[24]; *start gets its first byte.
 * Returns its length. */
static size_t format_i64(int64_t v, char buf[24], const char **start)
{
    char *p = buf + 24;
    uint64_t x = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + x % 10);
        x /= 10;
    } while (x != 0);
    if (v < 0)
        *--p = '-';
    *start = p;
    return (size_t)(buf + 24 - p);
}

/* ---- conditions: log once when they start, once when they clear -------- */

static void cond_raise(struct kafka_uplink *u, enum kafka_cond c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cond_raise(struct kafka_uplink *u, enum kafka_cond c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->last_error, sizeof u->last_error, fmt, ap);
    va_end(ap);
    if (u->cond != c)
        TERN_ERROR("uplink.kafka: %s", u->last_error);
    u->cond = c;
}

static void cond_clear(struct kafka_uplink *u)
{
    if (u->cond != COND_NONE)
        TERN_INFO("uplink.kafka: delivering to topic '%s' on %s again", u->topic, u->brokers);
    u->cond = COND_NONE;
    u->last_error[0] = '\0';
}

/* ---- event coalescing --------------------------------------------------- */

static void pend_flush(struct kafka_uplink *u)
{
    if (!u->pend_active)
        return;
    u->pend_active = 0;
    if (u->pend_ok) {
        if (u->ev.acked != NULL)
            u->ev.acked(u->ev.user, u->pend_first, u->pend_last);
    } else if (u->ev.failed != NULL) {
        u->ev.failed(u->ev.user, u->pend_first, u->pend_last, u->pend_why);
    }
}

/* Adds one outcome; extends the pending range when it continues it. */
static void pend_add(struct kafka_uplink *u, int ok, int64_t first, int64_t last,
                     const char *why)
{
    if (u->pend_active && u->pend_ok == ok && first == u->pend_last + 1 &&
        (ok || strcmp(u->pend_why, why) == 0)) {
        u->pend_last = last;
        return;
    }
    pend_flush(u);
    u->pend_active = 1;
    u->pend_ok = ok;
    u->pend_first = first;
    u->pend_last = last;
    u->pend_why = ok ? NULL : why;
}

static void deferred_raise(struct kafka_uplink *u)
{
    for (size_t i = 0; i < u->n_deferred; i++) {
        struct failed_run *f = &u->deferred[i];
        u->failed += (uint64_t)(f->last - f->first + 1);
        pend_add(u, 0, f->first, f->last, f->why);
    }
    u->n_deferred = 0;
    u->deferred_readings = 0;
}

/* Records that readings seqs[0..n) (ascending) were taken by send() but not
 * produced: they are reported failed from the next poll(). Returns 0, or -1
 * when memory runs out (the caller then reports them as not taken). */
static int deferred_add(struct kafka_uplink *u, const struct tern_reading *r, size_t n,
                        const char *why)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j + 1 < n && r[j + 1].seq == r[j].seq + 1)
            j++;
        if (u->n_deferred == u->cap_deferred) {
            size_t cap = u->cap_deferred ? u->cap_deferred * 2 : 8;
            struct failed_run *p = tern_realloc(u->deferred, cap * sizeof *p);
            if (p == NULL)
                return -1;
            u->deferred = p;
            u->cap_deferred = cap;
        }
        u->deferred[u->n_deferred++] = (struct failed_run){r[i].seq, r[j].seq, why};
        u->deferred_readings += j - i + 1;
        i = j + 1;
    }
    return 0;
}

/* ---- watcher thread ------------------------------------------------------ */

static void watcher_kick(struct kafka_uplink *u)
{
    pthread_mutex_lock(&u->mu);
    u->w_kick++;
    u->want_gen = u->w_kick;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
    u->dr_ok_since_kick = 0;
}

static void *watcher_main(void *arg)
{
    struct kafka_uplink *u = arg;
    pthread_mutex_lock(&u->mu);
    while (!u->w_stop) {
        uint64_t gen = u->w_kick;
        pthread_mutex_unlock(&u->mu);

        /* rk and rkt outlive this thread: it is joined before they go. */
        const struct rd_kafka_metadata *md = NULL;
        enum watch_result res = WATCH_ERROR;
        int partitions = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_metadata(u->rk, 0, u->rkt, &md, KAFKA_METADATA_TIMEOUT_MS);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
            partitions = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR ||
                e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) /* just created */
                res = WATCH_OK;
            else if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                     e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
                res = WATCH_TOPIC_MISSING;
            rd_kafka_metadata_destroy(md);
        }

        pthread_mutex_lock(&u->mu);
        u->w_result = res;
        u->w_err = e;
        u->w_partitions = partitions;
        u->w_result_gen = gen;
        u->w_result_n++;
        int64_t wait_ms = res == WATCH_OK ? u->topic_check_ms : KAFKA_RECHECK_DOWN_MS;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!u->w_stop && u->w_kick == gen)
            if (pthread_cond_timedwait(&u->cv, &u->mu, &until) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

static int watcher_start(struct kafka_uplink *u)
{
    pthread_mutex_lock(&u->mu);
    u->w_stop = 0;
    u->w_kick++;
    u->want_gen = u->w_kick;
    pthread_mutex_unlock(&u->mu);
    if (pthread_create(&u->watcher, NULL, watcher_main, u) != 0)
        return -1;
    u->watcher_running = 1;
    return 0;
}

/* Stops and joins the watcher; may wait for one metadata request. */
static void watcher_stop(struct kafka_uplink *u)
{
    if (!u->watcher_running)
        return;
    pthread_mutex_lock(&u->mu);
    u->w_stop = 1;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
    pthread_join(u->watcher, NULL);
    u->watcher_running = 0;
}

/* Main thread: applies the watcher's latest answer to the health state. */
static void watcher_apply(struct kafka_uplink *u)
{
    pthread_mutex_lock(&u->mu);
    if (u->w_result_n == u->seen_result_n) {
        pthread_mutex_unlock(&u->mu);
        return;
    }
    u->seen_result_n = u->w_result_n;
    enum watch_result res = u->w_result;
    rd_kafka_resp_err_t e = u->w_err;
    int fresh = u->w_result_gen >= u->want_gen;
    pthread_mutex_unlock(&u->mu);
    TERN_DEBUG("uplink.kafka: topic check: %s (%s)%s",
               res == WATCH_OK ? "ok" : res == WATCH_TOPIC_MISSING ? "topic missing" : "failed",
               rd_kafka_err2str(e), fresh ? "" : ", stale");

    switch (res) {
    case WATCH_OK:
        if (!fresh)
            return; /* may predate the "down" that asked for this check */
        u->up = 1;
        u->topic_ok = 1;
        u->ever_up = 1;
        if (u->cond != COND_TOO_LARGE)
            cond_clear(u);
        break;
    case WATCH_TOPIC_MISSING:
        u->up = 1;
        u->topic_ok = 0;
        u->ever_up = 1;
        cond_raise(u, COND_TOPIC_MISSING,
                   "topic '%s' does not exist on %s (create it; broker-side topic "
                   "auto-creation is off); readings stay queued",
                   u->topic, u->brokers);
        break;
    case WATCH_ERROR:
        if (u->dr_ok_since_kick)
            break; /* deliveries succeed: one failed request proves nothing */
        if (fresh)
            u->up = 0;
        if (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
            e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
            u->up = 0;
            cond_raise(u, COND_AUTH, "not authorized for topic '%s' on %s: %s", u->topic,
                       u->brokers, rd_kafka_err2str(e));
        } else if (u->cond == COND_NONE || u->cond == COND_UNREACHABLE) {
            cond_raise(u, COND_UNREACHABLE, "cannot reach Kafka brokers %s: %s", u->brokers,
                       u->last_transport[0] ? u->last_transport : rd_kafka_err2str(e));
        }
        break;
    case WATCH_NONE:
        break;
    }
}

/* ---- librdkafka callbacks (main thread, from rd_kafka_poll) -------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_uplink *u = opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    if (tag == 0 || tag > u->max_in_flight)
        return;
    size_t idx = tag - 1;
    int64_t seq = u->slot_seq[idx];
    if (seq == SLOT_FREE)
        return; /* cannot happen: each message has one report */
    u->slot_seq[idx] = SLOT_FREE;
    u->free_idx[u->free_top++] = (uint32_t)idx;
    u->slots_used--;
    if (seq == SLOT_ABANDONED) {
        u->slots_abandoned--;
        return;
    }
    if (u->closing)
        return;

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        u->acked++;
        u->up = 1;
        u->ever_up = 1;
        u->dr_ok_since_kick = 1;
        if (u->cond == COND_UNREACHABLE)
            cond_clear(u);
        pend_add(u, 1, seq, seq, NULL);
        return;
    }
    u->failed++;
    switch (m->err) {
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        u->topic_ok = 0; /* until the watcher says otherwise */
        watcher_kick(u);
        break;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        cond_raise(u, COND_TOO_LARGE,
                   "reading seq %" PRId64 " is larger than the broker accepts (%s); it stays "
                   "queued: raise the topic's max.message.bytes", seq, rd_kafka_err2str(m->err));
        break;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        u->up = 0;
        cond_raise(u, COND_AUTH, "not authorized to write topic '%s': %s", u->topic,
                   rd_kafka_err2str(m->err));
        watcher_kick(u);
        break;
    case RD_KAFKA_RESP_ERR__FATAL:
        u->fatal_pending = 1;
        break;
    default:
        watcher_kick(u); /* timed out, transport...: are the brokers still there? */
        break;
    }
    pend_add(u, 0, seq, seq, rd_kafka_err2str(m->err));
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_uplink *u = opaque;
    if (u->closing)
        return;
    switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL: {
        char why[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        u->fatal_pending = 1;
        cond_raise(u, COND_FATAL, "fatal producer error %s: %s; recreating the producer",
                   rd_kafka_err2name(orig), why);
        break;
    }
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        u->up = 0;
        cond_raise(u, COND_AUTH, "authentication with %s failed: %s", u->brokers, reason);
        break;
    case RD_KAFKA_RESP_ERR__SSL:
        u->up = 0;
        cond_raise(u, COND_TLS, "TLS with %s failed: %s", u->brokers, reason);
        break;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        u->up = 0;
        cond_raise(u, COND_AUTH, "not authorized on %s: %s", u->brokers, reason);
        break;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        u->up = 0;
        watcher_kick(u);
        if (u->cond == COND_NONE || u->cond == COND_UNREACHABLE)
            cond_raise(u, COND_UNREACHABLE, "cannot reach Kafka brokers %s: %s", u->brokers,
                       u->last_transport[0] ? u->last_transport : reason);
        break;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
        /* One broker connection failed; librdkafka reconnects by itself. Only
         * remembered, to explain an "all brokers down" that may follow. */
        snprintf(u->last_transport, sizeof u->last_transport, "%s", reason);
        TERN_DEBUG("uplink.kafka: %s", reason);
        break;
    default:
        TERN_WARN("uplink.kafka: %s: %s", rd_kafka_err2name(err), reason);
        break;
    }
}

/* librdkafka's own log lines come from its threads; tern_log is thread-safe.
 * Errors worth an operator's attention also reach on_error, where they are
 * logged once, so these stay at debug level except configuration warnings. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= LOG_CRIT || strcmp(fac, "CONFWARN") == 0)
        TERN_WARN("uplink.kafka: librdkafka %s: %s", fac, buf);
    else
        TERN_DEBUG("uplink.kafka: librdkafka %s: %s", fac, buf);
}

/* ---- producer life cycle ------------------------------------------------- */

/* Creates rk/rkt from the conf template and starts the watcher. Returns 0,
 * or -1 with err filled and nothing created. */
static int producer_create(struct kafka_uplink *u, char *err, size_t errcap)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(u->conf);
    if (conf == NULL) {
        set_err(err, errcap, "out of memory");
        return -1;
    }
    u->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (u->rk == NULL) { /* conf is still ours */
        rd_kafka_conf_destroy(conf);
        set_err(err, errcap, "cannot create the Kafka producer: %s", why);
        return -1;
    }
    u->rkt = rd_kafka_topic_new(u->rk, u->topic, NULL);
    if (u->rkt == NULL) {
        set_err(err, errcap, "topic '%s': %s", u->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    u->up = 0;
    u->topic_ok = 0;
    if (watcher_start(u) != 0) {
        set_err(err, errcap, "cannot start the topic watcher thread");
        goto fail;
    }
    return 0;
fail:
    if (u->rkt != NULL)
        rd_kafka_topic_destroy(u->rkt);
    rd_kafka_destroy(u->rk);
    u->rkt = NULL;
    u->rk = NULL;
    return -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Reports every reading still in a slot as failed with why, in seq order,
 * and marks it abandoned (its late delivery report, if any, is ignored). */
static void slots_fail_all(struct kafka_uplink *u, const char *why)
{
    if (u->slots_used == u->slots_abandoned)
        return;
    int64_t *seqs = tern_malloc(u->slots_used * sizeof *seqs);
    size_t n = 0;
    for (size_t i = 0; i < u->max_in_flight; i++) {
        if (u->slot_seq[i] <= 0)
            continue;
        if (seqs != NULL)
            seqs[n++] = u->slot_seq[i];
        else
            pend_add(u, 0, u->slot_seq[i], u->slot_seq[i], why); /* unsorted, still right */
        u->slot_seq[i] = SLOT_ABANDONED;
        u->slots_abandoned++;
        u->failed++;
    }
    if (seqs != NULL) {
        qsort(seqs, n, sizeof *seqs, cmp_i64);
        for (size_t i = 0; i < n; i++)
            pend_add(u, 0, seqs[i], seqs[i], why);
        tern_free(seqs);
    }
}

/* Purges and destroys the producer. Readings inside it are reported failed
 * (with events, unless closing). Afterwards every slot is free. */
static void producer_destroy(struct kafka_uplink *u, const char *why)
{
    watcher_stop(u);
    if (u->rk == NULL)
        return;
    rd_kafka_purge(u->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(u->rk, 0); /* purged messages' reports: failed events */
    slots_fail_all(u, why);
    if (u->rkt != NULL)
        rd_kafka_topic_destroy(u->rkt);
    rd_kafka_destroy(u->rk); /* any late reports hit abandoned slots */
    u->rk = NULL;
    u->rkt = NULL;
    u->up = 0;
    u->topic_ok = 0;
    /* rd_kafka_destroy served nothing back to us; reset the table. */
    for (size_t i = 0; i < u->max_in_flight; i++)
        u->slot_seq[i] = SLOT_FREE;
    for (size_t i = 0; i < u->max_in_flight; i++)
        u->free_idx[i] = (uint32_t)(u->max_in_flight - 1 - i);
    u->free_top = u->max_in_flight;
    u->slots_used = 0;
    u->slots_abandoned = 0;
}

/* ---- the uplink operations ---------------------------------------------- */

static void kafka_close(void *state);

/* Checks keys against kafka_options (kafka.* passes through). */
static int check_keys(const struct tern_kv_list *opts, char *err, size_t errcap)
{
    for (size_t i = 0; opts != NULL && i < opts->n; i++) {
        const struct tern_kv *kv = &opts->items[i];
        if (strncmp(kv->key, KAFKA_PASSTHROUGH_PREFIX, strlen(KAFKA_PASSTHROUGH_PREFIX)) == 0)
            continue;
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        int known = 0;
        for (const struct tern_driver_option *o = kafka_options; o->key != NULL; o++) {
            if (strcmp(o->key, kv->key) == 0) {
                known = 1;
                break;
            }
            size_t d = edit_distance(o->key, kv->key);
            if (d < best_d) {
                best_d = d;
                best = o->key;
            }
        }
        if (known)
            continue;
        if (best != NULL && best_d <= 3)
            set_err(err, errcap, "line %d: unknown option '%s' in [uplink.kafka] (did you mean "
                    "'%s'?)", kv->line, kv->key, best);
        else
            set_err(err, errcap, "line %d: unknown option '%s' in [uplink.kafka] (librdkafka "
                    "properties go as kafka.<property>)", kv->line, kv->key);
        return -1;
    }
    return 0;
}

/* Value of an option, or NULL when absent (or empty: "unset"). */
static const struct tern_kv *opt_get(const struct tern_kv_list *opts, const char *key)
{
    const struct tern_kv *kv = opt_find(opts, key);
    return kv != NULL && kv->value[0] != '\0' ? kv : NULL;
}

/* Builds u->conf from the options: Tern's fixed settings first, then the
 * named options, then kafka.* pass-through. Returns 0 or -1 with err. */
static int build_conf(struct kafka_uplink *u, const struct tern_kv_list *opts,
                      const char *device_id, char *err, size_t errcap)
{
    char num[32];
    char secret[512];
    int rc = -1;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const struct tern_kv *kv;
    secret[0] = '\0';

    if (conf_set(c, "bootstrap.servers", u->brokers, opt_find(opts, "brokers"), err, errcap) ||
        conf_set(c, "enable.idempotence", "true", NULL, err, errcap) ||
        conf_set(c, "acks", "all", NULL, err, errcap))
        goto out;

    char client_id[TERN_ID_MAX + 16];
    kv = opt_get(opts, "client_id");
    snprintf(client_id, sizeof client_id, "tern-agent-%s", device_id ? device_id : "");
    if (conf_set(c, "client.id", kv ? kv->value : client_id, kv, err, errcap))
        goto out;

    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    kv = opt_get(opts, "compression");
    const char *codec = kv ? kv->value : "lz4";
    int codec_ok = 0;
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        codec_ok |= strcmp(codec, codecs[i]) == 0;
    if (!codec_ok) {
        set_err(err, errcap, "line %d: compression: expected none, gzip, snappy, lz4 or zstd, "
                "got '%s'", kv->line, codec);
        goto out;
    }
    if (conf_set(c, "compression.codec", codec, kv, err, errcap))
        goto out;

    static const struct {
        const char *key, *prop, *def;
        int64_t min, max;
    } ints[] = {
        {"linger_ms", "linger.ms", "10", 0, 900000},
        {"batch_size", "batch.size", "1000000", 1, 2147483647},
        {"batch_num_messages", "batch.num.messages", "10000", 1, 1000000},
        {"message_timeout_ms", "message.timeout.ms", "300000", 1, 2147483647},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v;
        kv = opt_get(opts, ints[i].key);
        if (kv != NULL) {
            if (parse_int(kv, ints[i].min, ints[i].max, &v, err, errcap))
                goto out;
            snprintf(num, sizeof num, "%" PRId64, v);
        } else {
            snprintf(num, sizeof num, "%s", ints[i].def);
        }
        if (conf_set(c, ints[i].prop, num, kv, err, errcap))
            goto out;
    }
    /* The memory bound: librdkafka refuses more than we ever hand it. */
    snprintf(num, sizeof num, "%zu", u->max_in_flight);
    if (conf_set(c, "queue.buffering.max.messages", num, opt_find(opts, "max_in_flight"), err,
                 errcap))
        goto out;

    /* TLS and SASL decide security.protocol. */
    int tls = 0;
    kv = opt_get(opts, "tls");
    if (kv != NULL && parse_bool(kv, &tls, err, errcap))
        goto out;
    static const struct {
        const char *key, *prop;
    } ssl_paths[] = {
        {"ssl_ca", "ssl.ca.location"},
        {"ssl_cert", "ssl.certificate.location"},
        {"ssl_key", "ssl.key.location"},
    };
    for (size_t i = 0; i < sizeof ssl_paths / sizeof ssl_paths[0]; i++) {
        kv = opt_get(opts, ssl_paths[i].key);
        if (kv == NULL)
            continue;
        tls = 1;
        /* librdkafka reports a bad file only from rd_kafka_new(), without
         * saying which option: check here, where the line is known. */
        if (access(kv->value, R_OK) != 0) {
            set_err(err, errcap, "line %d: %s: cannot read '%s': %s", kv->line, kv->key,
                    kv->value, strerror(errno));
            goto out;
        }
        if (conf_set(c, ssl_paths[i].prop, kv->value, kv, err, errcap))
            goto out;
    }
    kv = opt_get(opts, "ssl_key_password_file");
    if (kv != NULL) {
        if (read_secret_file(kv, secret, sizeof secret, err, errcap) ||
            conf_set(c, "ssl.key.password", secret, kv, err, errcap))
            goto out;
    }

    const struct tern_kv *mech = opt_get(opts, "sasl_mechanism");
    if (mech != NULL) {
        if (strcmp(mech->value, "PLAIN") != 0 && strcmp(mech->value, "SCRAM-SHA-256") != 0 &&
            strcmp(mech->value, "SCRAM-SHA-512") != 0) {
            set_err(err, errcap, "line %d: sasl_mechanism: expected PLAIN, SCRAM-SHA-256 or "
                    "SCRAM-SHA-512, got '%s'", mech->line, mech->value);
            goto out;
        }
        const struct tern_kv *user = opt_get(opts, "sasl_username");
        const struct tern_kv *pfile = opt_get(opts, "sasl_password_file");
        const struct tern_kv *penv = opt_get(opts, "sasl_password_env");
        if (user == NULL) {
            set_err(err, errcap, "line %d: sasl_mechanism %s needs sasl_username", mech->line,
                    mech->value);
            goto out;
        }
        if ((pfile == NULL) == (penv == NULL)) {
            set_err(err, errcap, "line %d: sasl_mechanism %s needs exactly one of "
                    "sasl_password_file and sasl_password_env", mech->line, mech->value);
            goto out;
        }
        if (pfile != NULL) {
            if (read_secret_file(pfile, secret, sizeof secret, err, errcap))
                goto out;
        } else {
            const char *p = getenv(penv->value);
            if (p == NULL || p[0] == '\0') {
                set_err(err, errcap, "line %d: sasl_password_env: environment variable '%s' "
                        "is not set", penv->line, penv->value);
                goto out;
            }
            snprintf(secret, sizeof secret, "%s", p);
        }
        if (conf_set(c, "sasl.mechanisms", mech->value, mech, err, errcap) ||
            conf_set(c, "sasl.username", user->value, user, err, errcap) ||
            conf_set(c, "sasl.password", secret, pfile ? pfile : penv, err, errcap))
            goto out;
    }
    const char *proto = mech != NULL ? (tls ? "sasl_ssl" : "sasl_plaintext")
                                     : (tls ? "ssl" : "plaintext");
    if (conf_set(c, "security.protocol", proto, NULL, err, errcap))
        goto out;

    /* Pass-through last, so it may tune anything Tern does not reserve. */
    for (size_t i = 0; opts != NULL && i < opts->n; i++) {
        kv = &opts->items[i];
        size_t plen = strlen(KAFKA_PASSTHROUGH_PREFIX);
        if (strncmp(kv->key, KAFKA_PASSTHROUGH_PREFIX, plen) != 0)
            continue;
        const char *prop = kv->key + plen;
        for (size_t r = 0; r < sizeof kafka_reserved / sizeof kafka_reserved[0]; r++) {
            if (strcmp(prop, kafka_reserved[r].prop) == 0) {
                set_err(err, errcap, "line %d: %s cannot be set: %s", kv->line, kv->key,
                        kafka_reserved[r].why);
                goto out;
            }
        }
        if (conf_set(c, prop, kv->value, kv, err, errcap))
            goto out;
    }

    rd_kafka_conf_set_opaque(c, u);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_log_cb(c, on_log);
    u->conf = c;
    c = NULL;
    rc = 0;
out:
    explicit_bzero(secret, sizeof secret);
    if (c != NULL)
        rd_kafka_conf_destroy(c);
    return rc;
}

static int kafka_open(const struct tern_kv_list *opts, const char *device_id,
                      const struct tern_uplink_events *ev, void **state, char *err,
                      size_t errcap)
{
    struct kafka_uplink *u = NULL;
    const struct tern_kv *kv;
    int64_t v;

    *state = NULL;
    if (check_keys(opts, err, errcap))
        return -1;
    kv = opt_get(opts, "brokers");
    if (kv == NULL) {
        set_err(err, errcap, "[uplink.kafka]: 'brokers' is required (bootstrap servers, "
                "host:port[,host:port...])");
        return -1;
    }

    u = tern_calloc(1, sizeof *u);
    if (u == NULL) {
        set_err(err, errcap, "out of memory");
        return -1;
    }
    pthread_mutex_init(&u->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (ev != NULL)
        u->ev = *ev;
    tern_backoff_init(&u->recreate_backoff, 500, 30000);

    u->brokers = tern_strdup(kv->value);
    kv = opt_get(opts, "topic");
    u->topic = tern_strdup(kv ? kv->value : "sensor_readings");
    if (u->brokers == NULL || u->topic == NULL) {
        set_err(err, errcap, "out of memory");
        goto fail;
    }

    u->burst_left = KAFKA_SEND_BURST;
    /* 20000: draining a backlog the agent then holds ~24 MiB instead of
     * ~72 MiB with 100000, at the same rate within noise (0.80-0.94M
     * readings/s against 0.82-1.00M, alternating runs of bench/agent_kafka.sh). */
    u->max_in_flight = 20000;
    kv = opt_get(opts, "max_in_flight");
    if (kv != NULL) {
        if (parse_int(kv, 1, 10000000, &v, err, errcap))
            goto fail;
        u->max_in_flight = (size_t)v;
    }
    u->topic_check_ms = 60000;
    kv = opt_get(opts, "topic_check_ms");
    if (kv != NULL && parse_int(kv, 100, 86400000, &u->topic_check_ms, err, errcap))
        goto fail;

    u->slot_seq = tern_calloc(u->max_in_flight, sizeof *u->slot_seq);
    u->free_idx = tern_malloc(u->max_in_flight * sizeof *u->free_idx);
    if (u->slot_seq == NULL || u->free_idx == NULL) {
        set_err(err, errcap, "out of memory for %zu in-flight slots", u->max_in_flight);
        goto fail;
    }
    for (size_t i = 0; i < u->max_in_flight; i++)
        u->free_idx[i] = (uint32_t)(u->max_in_flight - 1 - i);
    u->free_top = u->max_in_flight;

    if (build_conf(u, opts, device_id, err, errcap))
        goto fail;
    if (producer_create(u, err, errcap))
        goto fail;
    TERN_INFO("uplink.kafka: producing to topic '%s' on %s (librdkafka %s)", u->topic,
              u->brokers, rd_kafka_version_str());
    *state = u;
    return 0;
fail:
    kafka_close(u);
    return -1;
}

static int kafka_ready(const struct kafka_uplink *u)
{
    return u->rk != NULL && !u->drained && !u->fatal_pending && u->up && u->topic_ok &&
           u->cond != COND_AUTH && u->cond != COND_TLS;
}

static uint64_t kafka_in_flight(const struct kafka_uplink *u)
{
    return (uint64_t)(u->slots_used - u->slots_abandoned) + u->deferred_readings;
}

/* Readings the in-flight window has room for now. */
static size_t kafka_window_room(const struct kafka_uplink *u)
{
    /* Abandoned readings still occupy librdkafka's queue: they count here. */
    uint64_t busy = (uint64_t)u->slots_used + u->deferred_readings;
    uint64_t window = u->max_in_flight;
    if (!kafka_ready(u)) {
        /* Brokers gone after having been there: only a small probe. */
        int probing = u->rk != NULL && !u->drained && !u->fatal_pending && u->ever_up &&
                      u->topic_ok && (u->cond == COND_NONE || u->cond == COND_UNREACHABLE);
        if (!probing)
            return 0;
        window = KAFKA_PROBE_WINDOW < window ? KAFKA_PROBE_WINDOW : window;
    }
    return busy >= window ? 0 : (size_t)(window - busy);
}

static size_t kafka_capacity(void *state)
{
    struct kafka_uplink *u = state;
    size_t room = kafka_window_room(u);
    return room < u->burst_left ? room : u->burst_left;
}

static int kafka_send(void *state, const struct tern_reading *r, size_t n)
{
    struct kafka_uplink *u = state;
    if (n == 0)
        return TERN_UPLINK_OK;
    if (n > kafka_capacity(u))
        return TERN_UPLINK_RETRY;

    for (size_t i = 0; i < n; i++) {
        const struct tern_reading *rd = &r[i];
        size_t len = tern_wire_encode(rd, u->buf, sizeof u->buf);
        rd_kafka_resp_err_t e;
        const char *why;
        if (len >= sizeof u->buf) {
            e = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
            why = "encoded reading exceeds TERN_WIRE_LINE_MAX";
        } else {
            char seqbuf[24];
            const char *seq;
            if (rd->epoch != u->epoch || !u->epoch_set) {
                format_hex64(rd->epoch, u->epoch_hex); /* one storage file: rarely */
                u->epoch = rd->epoch;
                u->epoch_set = 1;
            }
            size_t seqlen = format_i64(rd->seq, seqbuf, &seq);
            uint32_t idx = u->free_idx[u->free_top - 1];
            /* Our own list, sized for the two headers (RD_KAFKA_V_HEADER
             * makes one for eight), and produceva's array rather than
             * producev's varargs: ~160 instructions per reading fewer in
             * callgrind, of ~2 400 that producing costs. The message owns
             * hdrs once produced; on failure it is still ours. */
            rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
            rd_kafka_header_add(hdrs, "epoch", 5, u->epoch_hex, 16);
            rd_kafka_header_add(hdrs, "seq", 3, seq, (ssize_t)seqlen);
            rd_kafka_vu_t vu[] = {
                {.vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = u->rkt},
                {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
                {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {u->buf, len}},
                {.vtype = RD_KAFKA_VTYPE_KEY,
                 .u.mem = {(void *)rd->device_id, strnlen(rd->device_id, TERN_ID_MAX)}},
                {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = hdrs},
                {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = (void *)(uintptr_t)(idx + 1)},
            };
            rd_kafka_error_t *error = rd_kafka_produceva(u->rk, vu, sizeof vu / sizeof vu[0]);
            if (error == NULL) {
                u->free_top--;
                u->slot_seq[idx] = rd->seq;
                u->slots_used++;
                u->sent++;
                u->burst_left--;
                continue;
            }
            e = rd_kafka_error_code(error);
            rd_kafka_error_destroy(error);
            rd_kafka_headers_destroy(hdrs);
            why = rd_kafka_err2str(e);
        }
        /* Nothing of this batch taken yet and the cause is passing: let the
         * forwarder try again later. */
        if (e == RD_KAFKA_RESP_ERR__FATAL)
            u->fatal_pending = 1;
        if (i == 0 && (e == RD_KAFKA_RESP_ERR__QUEUE_FULL || e == RD_KAFKA_RESP_ERR__FATAL ||
                       e == RD_KAFKA_RESP_ERR__STATE))
            return TERN_UPLINK_RETRY;
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
            cond_raise(u, COND_TOO_LARGE, "reading seq %" PRId64 " cannot be produced: %s",
                       rd->seq, why);
        /* The rest was taken: report it failed from poll(), the forwarder
         * re-sends it from storage. */
        if (deferred_add(u, rd, n - i, why) != 0) {
            if (i == 0)
                return TERN_UPLINK_RETRY;
            /* Out of memory with part of the batch produced: fail the tail
             * through the coalescer right away rather than lose track of it. */
            for (size_t j = i; j < n; j++) {
                u->failed++;
                pend_add(u, 0, r[j].seq, r[j].seq, why);
            }
        }
        break;
    }
    return TERN_UPLINK_OK;
}

/* Recreates the producer after a fatal error (or a failed recreate). */
static void producer_recover(struct kafka_uplink *u)
{
    int64_t now = tern_mono_ms();
    if (u->rk != NULL) {
        producer_destroy(u, "producer recreated after a fatal error");
        u->fatal_pending = 0;
        u->recreate_at_ms = now;
    }
    if (now < u->recreate_at_ms)
        return;
    char err[512];
    if (producer_create(u, err, sizeof err) == 0) {
        tern_backoff_reset(&u->recreate_backoff);
        TERN_INFO("uplink.kafka: producer recreated");
        return;
    }
    cond_raise(u, COND_FATAL, "%s", err);
    u->recreate_at_ms = now + tern_backoff_next(&u->recreate_backoff);
}

static int kafka_poll(void *state, int timeout_ms)
{
    struct kafka_uplink *u = state;
    /* send() stopped at the burst, not at the window: more can go at once. */
    if (u->burst_left == 0 && kafka_window_room(u) > 0)
        timeout_ms = 0;
    u->burst_left = KAFKA_SEND_BURST;
    if (u->n_deferred > 0) {
        deferred_raise(u);
        timeout_ms = 0; /* events to hand over: do not linger */
    }
    if (u->fatal_pending || u->rk == NULL) {
        producer_recover(u);
        pend_flush(u);
        if (u->rk == NULL) {
            if (timeout_ms > 0)
                tern_sleep_ms(timeout_ms < 100 ? timeout_ms : 100, NULL);
            return 0;
        }
    }
    watcher_apply(u);
    rd_kafka_poll(u->rk, u->pend_active ? 0 : timeout_ms);
    watcher_apply(u);
    pend_flush(u);
    return 0;
}

static void kafka_drain(void *state, int timeout_ms)
{
    struct kafka_uplink *u = state;
    if (u->rk != NULL && u->slots_used > u->slots_abandoned) {
        /* flush() serves delivery reports itself: acked/failed events. */
        rd_kafka_flush(u->rk, timeout_ms < 0 ? 0 : timeout_ms);
        size_t left = u->slots_used - u->slots_abandoned;
        if (left > 0)
            TERN_WARN("uplink.kafka: %zu readings still unconfirmed after %d ms; reported "
                      "failed, they stay queued for the next start", left, timeout_ms);
    }
    deferred_raise(u);
    slots_fail_all(u, "not confirmed before shutdown");
    pend_flush(u);
    u->drained = 1;
}

static void kafka_status(void *state, struct tern_uplink_status *out)
{
    const struct kafka_uplink *u = state;
    memset(out, 0, sizeof *out);
    out->connected = u->rk != NULL && u->up;
    out->in_flight = kafka_in_flight(u);
    out->sent = u->sent;
    out->acked = u->acked;
    out->failed = u->failed;
    const char *s;
    if (u->drained)
        s = "drained";
    else if (u->rk == NULL || u->fatal_pending)
        s = "recreating";
    else if (u->cond == COND_AUTH)
        s = "auth_failed";
    else if (u->cond == COND_TLS)
        s = "tls_failed";
    else if (u->up && !u->topic_ok)
        s = "topic_missing";
    else if (u->up)
        s = "connected";
    else if (u->ever_up)
        s = "disconnected";
    else
        s = "connecting";
    snprintf(out->state, sizeof out->state, "%s", s);
    snprintf(out->last_error, sizeof out->last_error, "%s", u->last_error);
}

static void kafka_close(void *state)
{
    struct kafka_uplink *u = state;
    if (u == NULL)
        return;
    /* No events after close: the forwarder may be gone. What was not drained
     * stays unacknowledged in storage and is sent again after the restart. */
    memset(&u->ev, 0, sizeof u->ev);
    u->closing = 1;
    producer_destroy(u, "uplink closed");
    if (u->conf != NULL)
        rd_kafka_conf_destroy(u->conf);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    tern_free(u->deferred);
    tern_free(u->slot_seq);
    tern_free(u->free_idx);
    tern_free(u->brokers);
    tern_free(u->topic);
    tern_free(u);
}

/* Test hook (declared by tests/agent_kafka only): raises a fatal error on the
 * idempotent producer as a broker-side sequence problem would. */
int tern_uplink_kafka_test_fatal(void *state);
int tern_uplink_kafka_test_fatal(void *state)
{
    struct kafka_uplink *u = state;
    if (u->rk == NULL)
        return -1;
    return rd_kafka_test_fatal_error(u->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                     "injected by test") == RD_KAFKA_RESP_ERR_NO_ERROR
               ? 0
               : -1;
}

const struct tern_uplink_ops tern_uplink_kafka = {
    .name = "kafka",
    .summary = "produce each reading to a Kafka topic (librdkafka, idempotent, acks=all); "
               "acked only on delivery report",
    .options = kafka_options,
    .open = kafka_open,
    .capacity = kafka_capacity,
    .send = kafka_send,
    .poll = kafka_poll,
    .drain = kafka_drain,
    .status = kafka_status,
    .close = kafka_close,
};
