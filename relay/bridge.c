/* bridge.c - see bridge.h.
 *
 * Bookkeeping: the MQTT source numbers messages 0, 1, 2, ...; a ring of
 * slots (one per message not yet settled, in that order) counts the Kafka
 * messages still awaiting their delivery report and whether any failed. The
 * oldest slots are settled in order once complete: receipts for those that
 * Kafka took whole, none for the others (the device re-sends them after its
 * receipt timeout, and the readings deduplicate downstream). Delivery
 * reports arrive in rd_kafka_poll() on this thread, so nothing is shared. */
#include "bridge.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "source_mqtt.h"

struct slot {
    int64_t offset;
    uint32_t outstanding;  /* Kafka messages awaiting a delivery report */
    int failed;            /* one of them failed (or could not be produced) */
    int complete;          /* every line was handed to the producer */
};

struct bridge {
    const struct relay_config *c;
    struct relay_metrics *m;
    struct relay_source src;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    struct slot *ring;
    size_t cap, head, len;   /* ring of len slots starting at head */
    uint64_t produced, delivered, failed, rejected;
    int fatal;
};

/* A Kafka message's opaque is the low 32 bits of its MQTT message's offset
 * (a pointer may be 32-bit); fewer than 2^32 slots are ever open. */
static void *opaque_of(int64_t offset) { return (void *)(uintptr_t)(uint32_t)offset; }

static struct slot *slot_of(struct bridge *b, void *opaque)
{
    if (b->len == 0)
        return NULL;
    uint32_t delta = (uint32_t)(uintptr_t)opaque - (uint32_t)b->ring[b->head].offset;
    if (delta >= b->len)
        return NULL;
    return &b->ring[(b->head + delta) % b->cap];
}

static struct slot *slot_push(struct bridge *b, int64_t offset)
{
    if (b->len == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        struct slot *nr = tern_malloc(nc * sizeof(*nr));
        if (!nr)
            return NULL;
        for (size_t i = 0; i < b->len; i++)
            nr[i] = b->ring[(b->head + i) % b->cap];
        tern_free(b->ring);
        b->ring = nr;
        b->cap = nc;
        b->head = 0;
    }
    struct slot *s = &b->ring[(b->head + b->len) % b->cap];
    *s = (struct slot){offset, 0, 0, 0};
    b->len++;
    return s;
}

/* Settles the complete slots at the front, in runs of one outcome. */
static void advance(struct bridge *b)
{
    while (b->len > 0) {
        struct slot *s = &b->ring[b->head];
        if (!s->complete || s->outstanding > 0)
            return;
        int ok = !s->failed;
        int64_t upto = s->offset;
        b->head = (b->head + 1) % b->cap;
        b->len--;
        while (b->len > 0) {
            struct slot *n = &b->ring[b->head];
            if (!n->complete || n->outstanding > 0 || (!n->failed) != ok)
                break;
            upto = n->offset;
            b->head = (b->head + 1) % b->cap;
            b->len--;
        }
        source_mqtt_settle(b->src.self, upto, ok);
        relay_metrics_add(b->m, M_BATCHES, 1);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct bridge *b = opaque;
    (void)rk;
    struct slot *s = slot_of(b, msg->_private);
    if (msg->err) {
        if (b->failed++ == 0)
            TERN_WARN("bridge: kafka did not take a message: %s (no receipt; the device re-sends)",
                      rd_kafka_err2str(msg->err));
    } else {
        b->delivered++;
        relay_metrics_add(b->m, M_INSERTED, 1);
    }
    if (!s)
        return;
    if (msg->err)
        s->failed = 1;
    if (s->outstanding > 0)
        s->outstanding--;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct bridge *b = opaque;
    char why[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, why, sizeof(why));
        TERN_ERROR("bridge: fatal kafka producer error: %s", why);
        b->fatal = 1;
        return;
    }
    TERN_WARN("bridge: kafka: %s", reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        TERN_WARN("bridge: kafka %s: %s", fac, buf);
    else
        TERN_DEBUG("bridge: kafka %s: %s", fac, buf);
}

static int set_conf(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        TERN_ERROR("bridge: kafka %s=%s: %s", k, v, e);
        return -1;
    }
    return 0;
}

/* kafka.compression names a topic setting; these values are also codecs. */
static int is_codec(const char *v)
{
    return strcmp(v, "gzip") == 0 || strcmp(v, "snappy") == 0 || strcmp(v, "lz4") == 0 || strcmp(v, "zstd") == 0;
}

static int open_producer(struct bridge *b)
{
    char e[512], num[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(num, sizeof(num), "%lld", (long long)b->c->kafka_delivery_timeout_ms);
    if (set_conf(conf, "bootstrap.servers", b->c->kafka_brokers) ||
        set_conf(conf, "client.id", b->c->kafka_client_id) ||
        /* Exactly once per produce call, in order per partition. */
        set_conf(conf, "enable.idempotence", "true") || set_conf(conf, "acks", "all") ||
        set_conf(conf, "message.timeout.ms", num) || set_conf(conf, "linger.ms", "5") ||
        set_conf(conf, "queue.buffering.max.messages", "200000") ||
        /* Compress as the topic stores (init sets compression.type); a
         * topic that keeps the producer's compression gets lz4, as the
         * agents send. */
        set_conf(conf, "compression.codec", is_codec(b->c->kafka_compression) ? b->c->kafka_compression : "lz4")) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_opaque(conf, b);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!b->rk) {
        rd_kafka_conf_destroy(conf);
        TERN_ERROR("bridge: kafka: %s", e);
        return -1;
    }
    b->rkt = rd_kafka_topic_new(b->rk, b->c->kafka_topic, NULL);
    if (!b->rkt) {
        TERN_ERROR("bridge: kafka topic %s: %s", b->c->kafka_topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    return 0;
}

/* Produces one line; waits (serving delivery reports) while the producer's
 * queue is full. Returns 0, or -1 when the line could not be handed over. */
static int produce_line(struct bridge *b, struct slot *s, const char *line, size_t len, const char *key,
                        size_t keylen, volatile int *stop)
{
    char epoch_hex[17], seq_txt[24];
    uint64_t epoch;
    int64_t seq;
    int has_id = relay_line_identity(line, len, &epoch, &seq) == 0;
    if (has_id) {
        snprintf(epoch_hex, sizeof(epoch_hex), "%016" PRIx64, epoch);
        snprintf(seq_txt, sizeof(seq_txt), "%" PRId64, seq);
    }
    for (;;) {
        rd_kafka_resp_err_t e;
        void *opaque = opaque_of(s->offset);
        /* Lines without an identity still go: the consuming relay rejects
         * them with the reason into its rejected table. */
        if (has_id)
            e = rd_kafka_producev(b->rk, RD_KAFKA_V_RKT(b->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_VALUE((void *)line, len), RD_KAFKA_V_KEY(key, keylen),
                                  RD_KAFKA_V_HEADER("epoch", epoch_hex, 16),
                                  RD_KAFKA_V_HEADER("seq", seq_txt, (ssize_t)strlen(seq_txt)),
                                  RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        else
            e = rd_kafka_producev(b->rk, RD_KAFKA_V_RKT(b->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_VALUE((void *)line, len), RD_KAFKA_V_KEY(key, keylen),
                                  RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            s->outstanding++;
            b->produced++;
            return 0;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || *stop || b->fatal) {
            if (b->failed++ == 0)
                TERN_WARN("bridge: produce: %s", rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(b->rk, 50);
        advance(b);
    }
}

static void take_message(struct bridge *b, const struct relay_msg *msg, volatile int *stop)
{
    struct slot *s = slot_push(b, msg->pos.offset);
    if (!s) {
        TERN_WARN("bridge: out of memory; a message gets no receipt (the device re-sends it)");
        return;
    }
    relay_metrics_add(b->m, M_CONSUMED, 1);
    const char *p = msg->payload;
    size_t len = msg->len, start = 0;
    const char *topic_dev = msg->device_id;
    while (start < len && !s->failed) {
        const char *nl = memchr(p + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - p) : len;
        size_t ll = end - start;
        const char *line = p + start;
        start = end + 1;
        if (ll == 0 || (ll == 1 && line[0] == '\r'))
            continue;
        const char *dev = NULL;
        size_t devlen = 0;
        int has_dev = relay_line_device(line, ll, &dev, &devlen) == 0;
        if (topic_dev && (!has_dev || devlen != strlen(topic_dev) || memcmp(dev, topic_dev, devlen) != 0)) {
            /* Device identity: not forwarded; the Kafka side could not tell
             * which topic it came from. Counted and logged instead. */
            relay_metrics_add(b->m, M_REJECTED, 1);
            if (b->rejected++ < 10)
                TERN_WARN("bridge: dropped a reading on %s whose device_id is not '%s' (%.*s)", msg->pos.topic,
                          topic_dev, (int)(ll < 200 ? ll : 200), line);
            continue;
        }
        const char *key = topic_dev ? topic_dev : (has_dev ? dev : "");
        size_t keylen = topic_dev ? strlen(topic_dev) : devlen;
        if (produce_line(b, s, line, ll, key, keylen, stop) != 0)
            s->failed = 1;
    }
    s->complete = 1;
}

int bridge_run(const struct relay_config *c, struct relay_metrics *m, volatile int *stop)
{
    char err[512];
    int rc = -1;
    struct bridge b = {.c = c, .m = m};
    if (source_mqtt_open(c, m, &b.src, err, sizeof(err)) != 0) {
        TERN_ERROR("%s", err);
        goto out;
    }
    if (open_producer(&b) != 0)
        goto out;
    TERN_INFO("bridging mqtt %s (group %s) on %s:%lld to kafka topic %s on %s", c->mqtt_topic,
              c->mqtt_group[0] ? c->mqtt_group : "-", c->mqtt_host, (long long)c->mqtt_port, c->kafka_topic,
              c->kafka_brokers);
    relay_metrics_set_state(m, 1, 0, 0);
    while (!*stop && !b.fatal) {
        struct relay_msg msg = {0};
        rd_kafka_poll(b.rk, 0);
        advance(&b);
        int got = b.src.ops->poll(b.src.self, &msg, b.len ? 5 : 100, err, sizeof(err));
        if (got < 0) {
            TERN_ERROR("%s", err);
            break;
        }
        if (got == 1)
            take_message(&b, &msg, stop);
    }
    rc = b.fatal ? -1 : 0;
    /* Let Kafka acknowledge what it holds, then receipt it. */
    int64_t until = tern_mono_ms() + 10000;
    while (b.len > 0 && tern_mono_ms() < until) {
        rd_kafka_poll(b.rk, 50);
        advance(&b);
    }
    if (b.len > 0)
        TERN_WARN("bridge: exiting with %zu message(s) unacknowledged by kafka; devices re-send them", b.len);
    TERN_INFO("bridge: produced %" PRIu64 ", delivered %" PRIu64 ", failed %" PRIu64 ", identity rejects %" PRIu64,
              b.produced, b.delivered, b.failed, b.rejected);
out:
    if (b.src.ops)
        b.src.ops->close(b.src.self);
    if (b.rkt)
        rd_kafka_topic_destroy(b.rkt);
    if (b.rk)
        rd_kafka_destroy(b.rk);
    tern_free(b.ring);
    return rc;
}
