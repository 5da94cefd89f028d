/* source_kafka.c - see source_kafka.h.
 *
 * Delivery contract: enable.auto.commit and enable.auto.offset.store are off;
 * the only commits are from kafka_durable(), which the pipeline calls after
 * the rows of every message up to those offsets are in ClickHouse. A revoke
 * first lets the pipeline flush or abandon its batch, then commits (sync) and
 * unassigns, so the next owner starts exactly after the last durable row. */
#include "source_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

/* Messages taken per librdkafka call. One consumer_poll per message locked
 * the queue and read the clock for every reading (5-8% of the relay's CPU
 * catching up a backlog); a batch call does both once. */
#define KAFKA_TAKE_MAX 256

struct kafka_source {
    rd_kafka_t *rk;
    struct relay_source_events ev;
    struct relay_metrics *m;
    /* Messages taken from librdkafka in one call, handed out one per poll:
     * [next - 1] is the one last returned (destroyed at the next poll),
     * [next, count) are still to come. */
    rd_kafka_message_t *got[KAFKA_TAKE_MAX];
    size_t next, count;
    char *topic;                /* the one subscribed topic: relay_pos.topic */
    int paused;
    int64_t lag_every;          /* update lag gauge every N messages */
    int64_t since_lag;
    int64_t idle_lag_at;        /* mono ms of the last lag refresh while idle */
    rd_kafka_queue_t *cq;       /* the consumer queue, for its length */
    int behind;                 /* the broker had more than the last message looked at */
    int64_t woke_at;            /* mono ms of the last fetcher wake-up */
    int64_t assigned_at;        /* mono ms of the last assignment, until its first message */
};

/* librdkafka fetches a partition again once the consumer queue is below
 * queued.min.messages (and queued.max.messages.kbytes). */
#define KAFKA_QUEUED_MIN_MSGS 100000
#define KAFKA_STR_(x) #x
#define KAFKA_STR(x) KAFKA_STR_(x) /* the number as the config string */

/* librdkafka 2.0 stops fetching while the consumer queue is above those
 * levels and looks again only when its broker thread wakes up for another
 * reason: up to a second later. Catching up a backlog, the relay drained the
 * queue and then waited (stalls of 0.2-1 s in a 3 s relay-kafka benchmark
 * run). So while behind and below the level, ask the leaders for the log
 * end offsets (ListOffsets, read only): serving that request wakes the broker
 * threads, which then decide to fetch. At most every 50 ms, never while
 * consumption is paused, and not when caught up (then a fetch is waiting on
 * the broker anyway). */
static void wake_fetcher(struct kafka_source *k)
{
    int64_t now = tern_mono_ms();
    if (k->paused || !k->behind || now - k->woke_at < 50 || rd_kafka_queue_length(k->cq) >= (size_t)KAFKA_QUEUED_MIN_MSGS)
        return;
    k->woke_at = now;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(k->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (int i = 0; i < l->cnt; i++)
        l->elems[i].offset = RD_KAFKA_OFFSET_END; /* the latest offset */
    if (l->cnt > 0)
        rd_kafka_offsets_for_times(k->rk, l, 20); /* the answer is not needed */
    rd_kafka_topic_partition_list_destroy(l);
}

/* While idle (caught up or paused) refresh every assigned partition's lag
 * once a second: position vs the cached high watermark, no broker request. */
static void refresh_lag(struct kafka_source *k)
{
    int64_t now = tern_mono_ms();
    if (now - k->idle_lag_at < 1000)
        return;
    k->idle_lag_at = now;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(k->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (rd_kafka_position(k->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        k->behind = 0;
        for (int i = 0; i < l->cnt; i++) {
            int64_t lo = 0, hi = 0;
            const rd_kafka_topic_partition_t *tp = &l->elems[i];
            if (tp->offset < 0 ||
                rd_kafka_get_watermark_offsets(k->rk, tp->topic, tp->partition, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                hi < 0)
                continue;
            relay_metrics_lag(k->m, tp->topic, tp->partition, hi - tp->offset);
            k->behind |= hi > tp->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static int set_conf(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errcap)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errcap, "kafka %s=%s: %s", k, v, e);
        return -1;
    }
    return 0;
}

/* Destroys every message taken from librdkafka and not handed on yet, and
 * the one handed out last. */
static void drop_taken(struct kafka_source *k)
{
    for (size_t i = k->next ? k->next - 1 : 0; i < k->count; i++) {
        if (k->got[i])
            rd_kafka_message_destroy(k->got[i]);
    }
    k->next = k->count = 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct kafka_source *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        TERN_INFO("kafka: assigned %d partition(s)", parts->cnt);
        k->assigned_at = tern_mono_ms();
        rd_kafka_assign(rk, parts);
        if (k->paused)
            rd_kafka_pause_partitions(rk, parts);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        TERN_INFO("kafka: %d partition(s) revoked", parts->cnt);
        /* Messages taken but not yet handed out are of the old assignment:
         * dropped, the next owner reads them from the committed offsets. */
        drop_taken(k);
        if (k->ev.revoke)
            k->ev.revoke(k->ev.user);
        relay_metrics_forget_lag(k->m);
        rd_kafka_assign(rk, NULL);
        return;
    }
    TERN_WARN("kafka: rebalance error: %s", rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= 3)
        TERN_WARN("kafka %s: %s", fac, buf);
    else
        TERN_DEBUG("kafka %s: %s", fac, buf);
}

static int kafka_poll(void *self, struct relay_msg *msg, int timeout_ms, char *err, size_t errcap)
{
    struct kafka_source *k = self;
    if (k->next > 0 && k->got[k->next - 1]) {
        rd_kafka_message_destroy(k->got[k->next - 1]);
        k->got[k->next - 1] = NULL;
    }
    if (k->next == k->count) {
        /* What is queued now, without waiting (a batch call with a timeout
         * waits for a full batch); if nothing, wait for one message. Both
         * serve rebalance callbacks, which may drop_taken(). librdkafka
         * itself leaves out messages of partitions revoked meanwhile. */
        k->next = k->count = 0;
        ssize_t n = rd_kafka_consume_batch_queue(k->cq, 0, k->got, KAFKA_TAKE_MAX);
        if (n <= 0 && timeout_ms > 0) {
            rd_kafka_message_t *one = rd_kafka_consumer_poll(k->rk, timeout_ms);
            n = 0;
            if (one) {
                k->got[0] = one;
                n = 1;
            }
        }
        if (n <= 0) {
            refresh_lag(k);
            wake_fetcher(k);
            return 0;
        }
        k->count = (size_t)n;
    }
    rd_kafka_message_t *rm = k->got[k->next++];
    if (rm->err) {
        k->got[k->next - 1] = NULL;
        if (rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(rm);
            return 0;
        }
        int fatal = rm->err == RD_KAFKA_RESP_ERR__FATAL || rm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    rm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
        snprintf(err, errcap, "kafka: %s", rd_kafka_message_errstr(rm));
        rd_kafka_message_destroy(rm);
        if (fatal)
            return -1;
        TERN_WARN("%s", err);
        return 0;
    }
    if (k->assigned_at) {
        TERN_DEBUG("kafka: first message %lld ms after the assignment",
                   (long long)(tern_mono_ms() - k->assigned_at));
        k->assigned_at = 0;
    }
    msg->payload = rm->payload ? rm->payload : "";
    msg->len = rm->len;
    msg->pos.topic = k->topic;
    msg->pos.partition = rm->partition;
    msg->pos.offset = rm->offset;
    if (++k->since_lag >= k->lag_every) {
        int64_t lo = 0, hi = 0;
        k->since_lag = 0;
        if (rd_kafka_get_watermark_offsets(k->rk, k->topic, rm->partition, &lo, &hi) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0) {
            relay_metrics_lag(k->m, k->topic, rm->partition, hi - (rm->offset + 1));
            k->behind = hi > rm->offset + 1;
        }
        wake_fetcher(k);
    }
    return 1;
}

static int kafka_durable(void *self, const struct relay_pos *pos, size_t n, int sync, char *err, size_t errcap)
{
    struct kafka_source *k = self;
    if (n == 0)
        return 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        /* Kafka's committed offset is the next one to read. */
        rd_kafka_topic_partition_list_add(l, pos[i].topic, pos[i].partition)->offset = pos[i].offset + 1;
    }
    rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, l, sync ? 0 : 1);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errcap, "kafka commit: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static int set_paused(struct kafka_source *k, int pause)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(k->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    if (pause)
        rd_kafka_pause_partitions(k->rk, l);
    else
        rd_kafka_resume_partitions(k->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    k->paused = pause;
    return 0;
}

static int kafka_pause(void *self) { return set_paused(self, 1); }
static int kafka_resume(void *self) { return set_paused(self, 0); }

static void kafka_close(void *self)
{
    struct kafka_source *k = self;
    if (!k)
        return;
    drop_taken(k);
    if (k->cq)
        rd_kafka_queue_destroy(k->cq);
    if (k->rk) {
        /* Leaves the group; the revoke callback flushes the pipeline first. */
        rd_kafka_consumer_close(k->rk);
        rd_kafka_destroy(k->rk);
    }
    tern_free(k->topic);
    tern_free(k);
}

static const struct relay_source_ops kafka_ops = {
    .name = "kafka",
    .poll = kafka_poll,
    .durable = kafka_durable,
    .pause = kafka_pause,
    .resume = kafka_resume,
    .close = kafka_close,
};

int source_kafka_open(const struct relay_config *c, const struct relay_source_events *ev,
                      struct relay_metrics *m, struct relay_source *out, char *err, size_t errcap)
{
    struct kafka_source *k = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *sub = NULL;
    char e[512], num[32];
    k = tern_calloc(1, sizeof(*k));
    if (!k)
        goto nomem;
    k->ev = *ev;
    k->m = m;
    k->lag_every = 1000;
    k->topic = tern_strdup(c->kafka_topic);
    if (!k->topic)
        goto nomem;
    conf = rd_kafka_conf_new();
    snprintf(num, sizeof(num), "%lld", (long long)c->kafka_session_timeout_ms);
    if (set_conf(conf, "bootstrap.servers", c->kafka_brokers, err, errcap) ||
        set_conf(conf, "group.id", c->kafka_group, err, errcap) ||
        set_conf(conf, "client.id", c->kafka_client_id, err, errcap) ||
        set_conf(conf, "enable.auto.commit", "false", err, errcap) ||
        set_conf(conf, "enable.auto.offset.store", "false", err, errcap) ||
        set_conf(conf, "auto.offset.reset", "earliest", err, errcap) ||
        set_conf(conf, "session.timeout.ms", num, err, errcap) ||
        set_conf(conf, "heartbeat.interval.ms", "1000", err, errcap) ||
        /* Bounds what librdkafka prefetches while we are paused or slow. */
        set_conf(conf, "queued.max.messages.kbytes", "65536", err, errcap) ||
        set_conf(conf, "queued.min.messages", KAFKA_STR(KAFKA_QUEUED_MIN_MSGS), err, errcap) ||
        /* Per partition and compressed. zstd packs readings about 20:1, so
         * 256 KiB is ~25k readings (5 MiB) to decompress and queue before the
         * first of them can be consumed; with 8 MiB a fetch was a whole
         * partition of the benchmark's topic and the relay waited 0.3 s on it
         * (and the memory was faulted in each time). */
        set_conf(conf, "max.partition.fetch.bytes", "262144", err, errcap))
        goto fail;
    if (c->kafka_instance_id[0] && set_conf(conf, "group.instance.id", c->kafka_instance_id, err, errcap))
        goto fail;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_log_cb(conf, on_log);
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!k->rk) {
        snprintf(err, errcap, "kafka: %s", e);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(k->rk);
    k->cq = rd_kafka_queue_get_consumer(k->rk);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, c->kafka_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(k->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errcap, "kafka subscribe %s: %s", c->kafka_topic, rd_kafka_err2str(se));
        goto fail;
    }
    out->ops = &kafka_ops;
    out->self = k;
    return 0;
nomem:
    snprintf(err, errcap, "out of memory");
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (k && k->rk) {
        rd_kafka_destroy(k->rk);
        k->rk = NULL;
    }
    kafka_close(k);
    return -1;
}

int kafka_create_topic(const struct relay_config *c, int *existed, char *err, size_t errcap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    char e[512], num[32];
    int rc = -1;
    *existed = 0;
    if (set_conf(conf, "bootstrap.servers", c->kafka_brokers, err, errcap))
        goto out;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!rk) {
        snprintf(err, errcap, "kafka: %s", e);
        goto out;
    }
    conf = NULL;
    nt = rd_kafka_NewTopic_new(c->kafka_topic, (int)c->kafka_partitions, (int)c->kafka_replication, e, sizeof(e));
    if (!nt) {
        snprintf(err, errcap, "kafka topic %s: %s", c->kafka_topic, e);
        goto out;
    }
    snprintf(num, sizeof(num), "%lld", (long long)c->kafka_retention_ms);
    rd_kafka_NewTopic_set_config(nt, "retention.ms", num);
    rd_kafka_NewTopic_set_config(nt, "compression.type", c->kafka_compression);
    q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, 30000, e, sizeof(e));
    rd_kafka_AdminOptions_set_request_timeout(opt, 30000, e, sizeof(e));
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_AdminOptions_destroy(opt);
    ev = rd_kafka_queue_poll(q, 60000);
    if (!ev) {
        snprintf(err, errcap, "kafka: no answer to CreateTopics within 60 s");
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(err, errcap, "kafka CreateTopics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
        if (te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            *existed = 1;
        } else if (te != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errcap, "kafka topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                     rd_kafka_topic_result_error_string(tr[i]) ? rd_kafka_topic_result_error_string(tr[i])
                                                               : rd_kafka_err2str(te));
            goto out;
        }
    }
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rc;
}
