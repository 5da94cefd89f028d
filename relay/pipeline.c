/* pipeline.c - see pipeline.h. */
#include "pipeline.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "wire_fast.h"

#define MAX_READINGS_PER_MSG 256

/* The insert of one batch runs on a worker thread while the next batch
 * fills, so decoding and ClickHouse's parsing overlap. At most one batch is
 * in flight; the next one is only submitted, and acknowledged, after it: the
 * acknowledged position never passes an unresolved batch. */
struct sink_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;
    int quit;
    struct batch *job;     /* submitted, not yet picked up or finished */
    int busy;              /* a batch is in flight (submitted, result not consumed) */
    int done;              /* its result is ready */
    int rc, fatal;
    char err[768];
};

struct relay_pipeline {
    const struct relay_config *c;
    struct ch_sink *sink;
    struct relay_metrics *m;
    struct relay_source *src;
    struct batch bufs[2];
    struct batch *cur;       /* filling */
    struct batch *flight;    /* in the worker, or failed and waiting for retry */
    struct sink_worker w;
    struct batch_limits lim;
    struct envelope_spec env;
    struct tern_reading readings[MAX_READINGS_PER_MSG];
    struct relay_buf scratch;   /* one encoded wide row */
    struct tern_backoff backoff;
    int failing;          /* the in-flight batch failed; resubmit at retry_at */
    int64_t retry_at;
    int paused;
    unsigned attempts;
    /* Clocks read once every few messages, not per call: at 100k+ messages
     * per second clock_gettime showed in the profile. 0 = read them fresh. */
    int64_t now_mono;
    int64_t now_s;
    int64_t utc_read_at;
    uint64_t consumed;    /* messages not yet added to M_CONSUMED (an atomic) */
    int64_t idle_since;   /* mono ms the insert thread last finished; 0 = never ran */
    int source_dry;       /* the last poll found nothing queued */
};

static const char *src_name(const struct relay_pipeline *p) { return p->src ? p->src->ops->name : "test"; }

static void *worker_main(void *arg)
{
    struct relay_pipeline *p = arg;
    struct sink_worker *w = &p->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job)
            break;
        struct batch *b = w->job;
        pthread_mutex_unlock(&w->mu);
        int fatal = 0;
        char err[768] = "";
        int rc = ch_sink_write(p->sink, b, src_name(p), &fatal, err, sizeof(err));
        pthread_mutex_lock(&w->mu);
        w->rc = rc;
        w->fatal = fatal;
        memcpy(w->err, err, sizeof(err));
        w->job = NULL;
        w->done = 1;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void worker_submit(struct relay_pipeline *p, struct batch *b)
{
    pthread_mutex_lock(&p->w.mu);
    p->w.job = b;
    p->w.busy = 1;
    p->w.done = 0;
    pthread_cond_broadcast(&p->w.cv);
    pthread_mutex_unlock(&p->w.mu);
}

/* 1 when the in-flight batch has a result (wait: block until it has). */
static int worker_done(struct relay_pipeline *p, int wait)
{
    pthread_mutex_lock(&p->w.mu);
    while (wait && p->w.busy && !p->w.done)
        pthread_cond_wait(&p->w.cv, &p->w.mu);
    int d = p->w.busy && p->w.done;
    pthread_mutex_unlock(&p->w.mu);
    return d;
}

struct relay_pipeline *pipeline_new(const struct relay_config *c, struct ch_sink *sink, struct relay_metrics *m,
                                    int modern, char *err, size_t errcap)
{
    struct relay_pipeline *p = tern_calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    p->c = c;
    p->sink = sink;
    p->m = m;
    int binary = sink ? ch_sink_binary(sink) : relay_rows_binary(c);
    batch_init(&p->bufs[0], modern, binary);
    batch_init(&p->bufs[1], modern, binary);
    p->cur = &p->bufs[0];
    p->lim.max_rows = (size_t)c->batch_max_rows;
    p->lim.max_bytes = (size_t)c->batch_max_bytes;
    p->lim.max_delay_ms = c->batch_max_delay_ms;
    tern_backoff_init(&p->backoff, c->retry_base_ms, c->retry_max_ms);
    pthread_mutex_init(&p->w.mu, NULL);
    pthread_cond_init(&p->w.cv, NULL);
    if (envelope_spec_init(&p->env, c, err, errcap) != 0)
        goto fail;
    if (sink && pthread_create(&p->w.thread, NULL, worker_main, p) != 0) {
        snprintf(err, errcap, "cannot start the insert thread");
        goto fail;
    }
    p->w.started = sink != NULL;
    return p;
fail:
    pipeline_free(p);
    return NULL;
}

void pipeline_set_source(struct relay_pipeline *p, struct relay_source *src) { p->src = src; }
struct batch *pipeline_batch(struct relay_pipeline *p) { return p->cur; }

void pipeline_free(struct relay_pipeline *p)
{
    if (!p)
        return;
    if (p->w.started) {
        pthread_mutex_lock(&p->w.mu);
        p->w.quit = 1;
        pthread_cond_broadcast(&p->w.cv);
        pthread_mutex_unlock(&p->w.mu);
        pthread_join(p->w.thread, NULL);
    }
    pthread_cond_destroy(&p->w.cv);
    pthread_mutex_destroy(&p->w.mu);
    batch_free(&p->bufs[0]);
    batch_free(&p->bufs[1]);
    buf_free(&p->scratch);
    tern_free(p);
}

static int reject(struct relay_pipeline *p, const struct relay_msg *msg, uint32_t item, const char *reason,
                  const void *payload, size_t len)
{
    struct relay_reject rj = {
        .source = src_name(p),
        .topic = msg->pos.topic,
        .partition = msg->pos.partition,
        .offset = msg->pos.offset,
        .item = item,
        .reason = reason,
        .payload = payload,
        .len = len,
    };
    relay_metrics_add(p->m, M_REJECTED, 1);
    return batch_add_reject(p->cur, &rj, p->now_mono ? p->now_s : tern_utc_ms() / 1000);
}

static int add_readings(struct relay_pipeline *p, const struct relay_msg *msg, uint32_t msg_idx, uint32_t item0,
                        size_t n, const void *raw, size_t rawlen, int64_t now_s)
{
    for (size_t i = 0; i < n; i++) {
        const struct tern_reading *r = &p->readings[i];
        if (msg->device_id && strcmp(r->device_id, msg->device_id) != 0) {
            /* Device identity: a device may only speak for itself. */
            char why[256];
            snprintf(why, sizeof(why), "device_id '%s' does not match the topic %s", r->device_id, msg->pos.topic);
            if (reject(p, msg, item0 + (uint32_t)i, why, raw, rawlen) != 0)
                return -1;
            continue;
        }
        if (!(r->value >= p->c->value_min && r->value <= p->c->value_max)) {
            char why[128];
            snprintf(why, sizeof(why), "value %g out of range [%g, %g]", r->value, p->c->value_min, p->c->value_max);
            if (reject(p, msg, item0 + (uint32_t)i, why, raw, rawlen) != 0)
                return -1;
            continue;
        }
        int rc = batch_add_reading(p->cur, msg_idx, item0 + (uint32_t)i, r, now_s);
        if (rc < 0)
            return -1;
        if (rc == 1)
            relay_metrics_add(p->m, M_DUPLICATES, 1);
        if (rc == 2 && reject(p, msg, item0 + (uint32_t)i, "tags cannot be encoded as a Map", raw, rawlen) != 0)
            return -1;
    }
    return 0;
}

/* auto format: Tern wire if the line starts with {"v" (every Tern encoder
 * writes the version first), or names "device_id", or has both "epoch" and
 * "seq"; otherwise an envelope. Set input.format when a source is known. */
int pipeline_looks_like_wire(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    if (len - i >= 4 && memcmp(s + i, "{\"v\"", 4) == 0)
        return 1;
    if (memmem(s, len, "\"device_id\"", 11))
        return 1;
    return memmem(s, len, "\"epoch\"", 7) && memmem(s, len, "\"seq\"", 5);
}

/* output.mode = wide: one row per envelope into the adopted table. The row's
 * identity (for in-batch duplicates) is the envelope's epoch. */
static int take_wide(struct relay_pipeline *p, const struct wide_map *wm, const struct relay_msg *msg, uint32_t idx)
{
    char err[256];
    size_t n = 0;
    struct envelope_meta meta;
    struct envelope_pos ep = {msg->pos.topic, msg->pos.partition, msg->pos.offset};
    if (envelope_map_meta(&p->env, msg->payload, msg->len, &ep, p->readings, MAX_READINGS_PER_MSG, &n, &meta, err,
                          sizeof(err)) != 0)
        return reject(p, msg, 0, err, msg->payload, msg->len);
    if (wm->uses_id && !meta.id[0]) {
        snprintf(err, sizeof(err), "missing field '%.200s'", p->c->env_id_field);
        return reject(p, msg, 0, err, msg->payload, msg->len);
    }
    for (size_t i = 0; i < n; i++) {
        if (!(p->readings[i].value >= p->c->value_min && p->readings[i].value <= p->c->value_max)) {
            snprintf(err, sizeof(err), "value %g of %s out of range [%g, %g]", p->readings[i].value,
                     p->readings[i].metric, p->c->value_min, p->c->value_max);
            return reject(p, msg, 0, err, msg->payload, msg->len);
        }
    }
    p->scratch.len = 0;
    p->scratch.failed = 0;
    wide_encode(&p->scratch, wm, &meta, p->readings, n);
    if (buf_failed(&p->scratch))
        return -1;
    struct batch_key k = {p->readings[0].epoch, 0, envelope_hash64(meta.device, strlen(meta.device), ENVELOPE_FNV_OFFSET)};
    int rc = batch_add_encoded(p->cur, idx, 0, k, p->scratch.p, p->scratch.len, meta.ts_ms);
    if (rc < 0)
        return -1;
    if (rc == 1)
        relay_metrics_add(p->m, M_DUPLICATES, 1);
    return 0;
}

int pipeline_take(struct relay_pipeline *p, const struct relay_msg *msg)
{
    char err[256];
    const char *s = msg->payload;
    size_t len = msg->len;
    int64_t now_s = p->now_mono ? p->now_s : tern_utc_ms() / 1000;
    long idx = batch_add_message(p->cur, &msg->pos, p->now_mono ? p->now_mono : tern_mono_ms());
    if (idx < 0)
        return -1;
    if (++p->consumed >= 256) {
        relay_metrics_add(p->m, M_CONSUMED, p->consumed);
        p->consumed = 0;
    }
    const struct wide_map *wm = p->sink ? ch_sink_wide(p->sink) : NULL;
    if (wm)
        return take_wide(p, wm, msg, (uint32_t)idx);
    int fmt = p->c->input_format;
    if (fmt == RELAY_INPUT_AUTO)
        fmt = pipeline_looks_like_wire(s, len) ? RELAY_INPUT_WIRE : RELAY_INPUT_ENVELOPE;
    if (fmt == RELAY_INPUT_ENVELOPE) {
        size_t n = 0;
        struct envelope_pos ep = {msg->pos.topic, msg->pos.partition, msg->pos.offset};
        if (envelope_map(&p->env, s, len, &ep, p->readings, MAX_READINGS_PER_MSG, &n, err, sizeof(err)) != 0)
            return reject(p, msg, 0, err, s, len);
        return add_readings(p, msg, (uint32_t)idx, 0, n, s, len, now_s);
    }
    /* Wire: one reading per line; a Kafka message holds one, an MQTT
     * message may hold several. */
    size_t start = 0;
    uint32_t item = 0;
    if (len == 0)
        return reject(p, msg, 0, "empty message", s, len);
    while (start < len) {
        size_t used;
        /* The common case: a canonical line, decoded without looking for
         * its end first. */
        if (wire_fast_decode_prefix(s + start, len - start, &p->readings[0], &used) == 0) {
            if (add_readings(p, msg, (uint32_t)idx, item, 1, s + start, used, now_s) != 0)
                return -1;
            item++;
            start += used + 1;
            continue;
        }
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        size_t ll = end - start;
        if (ll > 0 && !(ll == 1 && s[start] == '\r')) {
            if (relay_wire_decode(s + start, ll, &p->readings[0], err, sizeof(err)) != 0) {
                if (reject(p, msg, item, err, s + start, ll) != 0)
                    return -1;
            } else if (add_readings(p, msg, (uint32_t)idx, item, 1, s + start, ll, now_s) != 0) {
                return -1;
            }
            item++;
        }
        start = end + 1;
    }
    return 0;
}

static void set_state(struct relay_pipeline *p, int ready)
{
    size_t bytes = p->cur->rows.len + p->cur->rejects.len;
    if (p->flight)
        bytes += p->flight->rows.len + p->flight->rejects.len;
    relay_metrics_set_state(p->m, ready, p->paused, bytes);
}

/* The batch b is in ClickHouse: tell the source, forget it. */
static void acknowledge(struct relay_pipeline *p, struct batch *b, int sync)
{
    char err[512];
    if (p->attempts > 0)
        TERN_INFO("clickhouse took the batch after %u failed attempt(s)", p->attempts);
    p->attempts = 0;
    if (p->src && p->src->ops->durable(p->src->self, b->marks, b->nmarks, sync, err, sizeof(err)) != 0) {
        /* The rows are in ClickHouse; the source will re-deliver them and
         * they deduplicate. Nothing is lost. */
        relay_metrics_add(p->m, M_COMMIT_FAILURES, 1);
        TERN_WARN("%s (rows are stored; they will be re-delivered and deduplicated)", err);
    }
    relay_metrics_add(p->m, M_BATCHES, 1);
    TERN_DEBUG("batch: %zu rows, %zu rejected, %zu duplicates, %zu messages", b->nrows, b->nrejects, b->duplicates,
               b->nmsgs);
    batch_clear(b);
}

static void note_failure(struct relay_pipeline *p, int fatal, const char *err)
{
    relay_metrics_add(p->m, M_INSERT_RETRIES, 1);
    if (p->attempts++ == 0 || fatal)
        TERN_WARN("%s%s; pausing consumption and retrying", fatal ? "needs attention: " : "", err);
    else
        TERN_DEBUG("retry %u: %s", p->attempts, err);
}

/* Consumes the worker's result for the in-flight batch. */
static void collect(struct relay_pipeline *p)
{
    pthread_mutex_lock(&p->w.mu);
    int rc = p->w.rc, fatal = p->w.fatal;
    char err[768];
    memcpy(err, p->w.err, sizeof(err));
    p->w.busy = 0;
    p->w.done = 0;
    pthread_mutex_unlock(&p->w.mu);
    if (rc == 0) {
        acknowledge(p, p->flight, 0);
        p->flight = NULL;
        p->failing = 0;
        p->idle_since = tern_mono_ms();
        tern_backoff_reset(&p->backoff);
        if (p->paused && p->src && p->src->ops->resume) {
            p->src->ops->resume(p->src->self);
            p->paused = 0;
            TERN_INFO("consumption resumed");
        }
        set_state(p, 1);
        return;
    }
    note_failure(p, fatal, err);
    p->failing = 1;
    p->retry_at = tern_mono_ms() + tern_backoff_next(&p->backoff);
    if (!p->paused && p->src && p->src->ops->pause) {
        p->src->ops->pause(p->src->self);
        p->paused = 1;
    }
    set_state(p, 0);
}

/* Hands the filling batch to the worker (nothing may be in flight). */
static void submit_current(struct relay_pipeline *p)
{
    p->flight = p->cur;
    p->cur = p->cur == &p->bufs[0] ? &p->bufs[1] : &p->bufs[0];
    TERN_DEBUG("insert of %zu rows submitted (batch %lld ms old)", p->flight->nrows,
               (long long)(tern_mono_ms() - p->flight->opened_ms));
    worker_submit(p, p->flight);
}

/* Synchronous, in the calling thread, with the worker idle: one attempt to
 * make b durable. Returns 0 or -1. */
static int write_now(struct relay_pipeline *p, struct batch *b, int sync)
{
    char err[768];
    int fatal = 0;
    if (batch_empty(b))
        return 0;
    if (ch_sink_write(p->sink, b, src_name(p), &fatal, err, sizeof(err)) != 0) {
        note_failure(p, fatal, err);
        return -1;
    }
    acknowledge(p, b, sync);
    return 0;
}

/* Settles everything held, with the worker idle afterwards: the in-flight
 * batch first (its result, or one more attempt if it had failed), then the
 * filling one. What cannot be made durable is forgotten unacknowledged, and
 * so is everything after it. Returns 0 when nothing was forgotten. */
static int settle(struct relay_pipeline *p, int sync)
{
    int ok = 1;
    if (p->flight) {
        if (!p->failing) {
            worker_done(p, 1);
            pthread_mutex_lock(&p->w.mu);
            int rc = p->w.rc;
            p->w.busy = p->w.done = 0;
            pthread_mutex_unlock(&p->w.mu);
            if (rc == 0)
                acknowledge(p, p->flight, sync);
            else
                ok = write_now(p, p->flight, sync) == 0;
        } else {
            ok = write_now(p, p->flight, sync) == 0;
        }
        if (!ok)
            batch_clear(p->flight);
        p->flight = NULL;
    }
    if (ok)
        ok = write_now(p, p->cur, sync) == 0;
    if (!ok)
        batch_clear(p->cur);
    p->failing = 0;
    tern_backoff_reset(&p->backoff);
    return ok ? 0 : -1;
}

static void on_revoke(void *user)
{
    struct relay_pipeline *p = user;
    if (!p->flight && batch_empty(p->cur))
        return;
    /* One attempt: the group is waiting for us. If ClickHouse cannot take
     * the batches now, forget them uncommitted; the next owner re-reads. */
    if (settle(p, 1) != 0) {
        TERN_WARN("rebalance: abandoned uncommitted batches (the new owner re-reads them)");
        relay_metrics_add(p->m, M_REVOKED_ABANDONED, 1);
    }
}

struct relay_source_events pipeline_events(struct relay_pipeline *p)
{
    struct relay_source_events ev = {on_revoke, p};
    return ev;
}

static void flush_counters(struct relay_pipeline *p)
{
    if (p->consumed) {
        relay_metrics_add(p->m, M_CONSUMED, p->consumed);
        p->consumed = 0;
    }
}

int pipeline_run(struct relay_pipeline *p, volatile int *stop)
{
    char err[512];
    struct relay_msg msg = {0};
    int rc = 0;
    unsigned quick = 0;
    set_state(p, 1);
    while (!*stop) {
        /* While messages flow, the clocks, the counters and the insert
         * thread are looked at every 64 messages: each costs a clock read,
         * an atomic or a lock, and a message takes about a microsecond. */
        int64_t now = p->now_mono;
        if (rc != 1 || ++quick >= 64) {
            quick = 0;
            now = tern_mono_ms();
            p->now_mono = now;
            if (now - p->utc_read_at >= 200 || !p->now_s) {
                p->now_s = tern_utc_ms() / 1000;
                p->utc_read_at = now;
            }
            flush_counters(p);
            if (p->flight && !p->failing && worker_done(p, 0))
                collect(p);
        }
        int timeout = 100;
        if (p->failing) {
            if (now >= p->retry_at) {
                p->failing = 0;
                worker_submit(p, p->flight);
                continue;
            }
            timeout = (int)(p->retry_at - now < 100 ? p->retry_at - now : 100);
        } else if (p->flight) {
            timeout = 5; /* check back on the worker soon */
        } else if (!batch_empty(p->cur)) {
            int64_t left = p->cur->opened_ms + p->lim.max_delay_ms - now;
            timeout = left <= 0 ? 0 : (left < 100 ? (int)left : 100);
            /* Adaptive batching: the insert thread is idle, so do not let a
             * sizeable batch wait for a full one. Catching up a backlog of
             * a million readings, the first full batch took ~0.1 s to decode
             * with ClickHouse idle; when the backlog ends, the rest waited
             * batch.max_delay_ms. Later batches fill while the previous one
             * is inserted and stay full size; readings that trickle in stay
             * bound by max_delay_ms (a quarter of max_rows never gathers). */
            int64_t idle_ms = p->idle_since ? now - p->idle_since : -1;
            if (batch_due_early(p->cur, &p->lim, idle_ms, p->source_dry)) {
                submit_current(p);
                continue;
            }
            if (p->cur->nrows >= batch_early_rows(&p->lim) && timeout > 5)
                timeout = 5; /* find out soon whether the source ran dry */
        }
        if (batch_due(p->cur, &p->lim, now)) {
            if (!p->flight) {
                submit_current(p);
                continue;
            }
            if (!p->failing) {
                /* Full and the previous insert still running: put it in key
                 * order meanwhile (the insert thread then need not, and
                 * starts its request at once: sorting 100k rows took about
                 * a fifteenth of an insert), then wait for the insert rather
                 * than buffer more (bounded memory). */
                (void)batch_sort(p->cur);
                worker_done(p, 1);
                rc = 0; /* collect it next turn */
                continue;
            }
        }
        rc = p->src->ops->poll(p->src->self, &msg, timeout, err, sizeof(err));
        p->source_dry = rc == 0;
        if (rc < 0) {
            TERN_ERROR("%s", err);
            flush_counters(p);
            settle(p, 1);
            return -1;
        }
        if (rc == 1 && pipeline_take(p, &msg) != 0) {
            TERN_ERROR("out of memory while batching; exiting without acknowledging the batch");
            flush_counters(p);
            settle(p, 1);
            return -1;
        }
    }
    flush_counters(p);
    /* Shutdown: a few more tries, bounded, then leave the rest to the source. */
    int64_t deadline = tern_mono_ms() + 10000;
    volatile int no_stop = 0;
    for (;;) {
        int had = p->flight || !batch_empty(p->cur);
        if (!had)
            break;
        if (p->flight && !p->failing) {
            worker_done(p, 1);
            collect(p);
            continue;
        }
        if (p->flight) {
            if (write_now(p, p->flight, 1) == 0) {
                p->flight = NULL;
                p->failing = 0;
                continue;
            }
        } else if (write_now(p, p->cur, 1) == 0) {
            continue;
        }
        if (tern_mono_ms() >= deadline) {
            TERN_WARN("exiting with unacknowledged messages; they will be re-read");
            if (p->flight)
                batch_clear(p->flight);
            p->flight = NULL;
            batch_clear(p->cur);
            break;
        }
        tern_sleep_ms(500, &no_stop);
    }
    return 0;
}
