/* source_mqtt.c - see source_mqtt.h.
 *
 * Threads: libmosquitto runs its own network thread (mosquitto_loop_start),
 * which copies each message into a queue bounded by mqtt.queue_max_bytes;
 * when the queue is full the network thread waits, so TCP pushes back on the
 * broker instead of the relay growing without bound. poll(), durable() and
 * settle() run on the pipeline's thread and alone touch the ledger (one entry
 * per run of consecutive seqs of one epoch in one message) and the topic
 * table. Receipts are published QoS 1 from that thread (libmosquitto's
 * publish is thread safe). A receipt that is lost (relay killed, broker
 * restarted, device offline) only costs a re-send: the agent times out and
 * sends again, and ClickHouse deduplicates by (device_id, epoch, seq). */
#include "source_mqtt.h"

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "receipt.h"

#define TOPIC_BUCKETS 4096

struct mq_item {
    struct mq_item *next;
    size_t len;      /* payload bytes */
    size_t size;     /* bytes charged to the queue */
    char *topic;     /* points into data */
    char data[];     /* payload, then the NUL-terminated topic */
};

/* One topic seen, interned: relay_pos.topic and the device it names. */
struct topic_ent {
    struct topic_ent *next;
    char *topic;
    char *device;          /* NULL when the filter has no '+' level */
    char *receipt_topic;   /* NULL when receipts are off or no device */
};

struct ledger_ent {
    int64_t offset;               /* the message's position */
    const struct topic_ent *t;
    uint64_t epoch;
    int64_t first, last;
};

struct mqtt_source {
    const struct relay_config *c;
    struct relay_metrics *m;
    struct mosquitto *mosq;
    char filter[2 * RELAY_STR_MAX + 16]; /* $share/<group>/<topic> */
    int device_level;                  /* topic level holding the device, -1 none */
    int receipts;
    char *password;

    /* Queue from the network thread (guarded by mu). */
    pthread_mutex_t mu;
    pthread_cond_t have, room;
    struct mq_item *head, *tail;
    size_t queued_bytes, max_bytes;
    int closing;

    /* Pipeline thread only. */
    int started;             /* the network thread runs (it reconnects by itself) */
    int64_t next_connect_ms; /* until started: when to try the first connect again */
    struct tern_backoff connect_bo;
    int paused;              /* the sink is failing: hand out nothing */
    struct mq_item *held;
    int64_t next_offset;
    struct topic_ent *buckets[TOPIC_BUCKETS];
    struct ledger_ent *led;
    size_t led_head, led_len, led_cap;
    struct tern_seq_range *ranges;     /* scratch for one receipt */
    size_t ranges_cap;
    uint64_t receipts_sent, receipt_failures;

    atomic_int connected;
    atomic_int receipts_inflight;
};

/* ---- line scanning ------------------------------------------------------ */

int relay_line_identity(const char *line, size_t len, uint64_t *epoch, int64_t *seq)
{
    /* Tern's encoder writes epoch and seq before tags, so the first match is
     * the field and not a tag key; inside JSON strings a quote is escaped and
     * cannot start a match. */
    const char *e = memmem(line, len, "\"epoch\":\"", 9);
    if (!e)
        return -1;
    e += 9;
    if ((size_t)(line + len - e) < 17 || e[16] != '"')
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char ch = e[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    const char *s = memmem(line, len, "\"seq\":", 6);
    if (!s)
        return -1;
    s += 6;
    const char *end = line + len;
    int64_t n = 0;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*s - '0');
        s++;
        digits++;
    }
    if (!digits || n < 1 || (s < end && (*s == '.' || *s == 'e' || *s == 'E')))
        return -1;
    *epoch = v;
    *seq = n;
    return 0;
}

int relay_line_device(const char *line, size_t len, const char **dev, size_t *devlen)
{
    const char *d = memmem(line, len, "\"device_id\":\"", 13);
    if (!d)
        return -1;
    d += 13;
    const char *end = line + len;
    const char *q = d;
    while (q < end && *q != '"' && *q != '\\')
        q++;
    if (q >= end || *q != '"')
        return -1;
    *dev = d;
    *devlen = (size_t)(q - d);
    return 0;
}

/* ---- network thread ----------------------------------------------------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
    struct mqtt_source *s = obj;
    (void)flags;
    (void)props;
    if (rc != 0) {
        TERN_WARN("mqtt: connection refused: %s", mosquitto_reason_string(rc));
        return;
    }
    atomic_store(&s->connected, 1);
    int src = mosquitto_subscribe_v5(mosq, NULL, s->filter, 1, 0, NULL);
    if (src != MOSQ_ERR_SUCCESS)
        TERN_WARN("mqtt: subscribe %s: %s", s->filter, mosquitto_strerror(src));
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *props)
{
    struct mqtt_source *s = obj;
    (void)mosq;
    (void)mid;
    (void)props;
    if (n < 1 || granted[0] > 2)
        TERN_ERROR("mqtt: broker refused the subscription to %s (reason %d): check the ACL", s->filter,
                   n ? granted[0] : -1);
    else
        TERN_INFO("mqtt: subscribed to %s", s->filter);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
    struct mqtt_source *s = obj;
    (void)mosq;
    (void)props;
    atomic_store(&s->connected, 0);
    if (!s->closing)
        TERN_WARN("mqtt: disconnected (%s); reconnecting", rc ? mosquitto_strerror(rc) : "by request");
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *props)
{
    struct mqtt_source *s = obj;
    (void)mosq;
    (void)mid;
    (void)props;
    atomic_fetch_sub(&s->receipts_inflight, 1);
    if (reason >= 0x80)
        TERN_WARN("mqtt: broker refused a receipt: %s (check the ACL: the relay writes tern/+/receipts)",
                  mosquitto_reason_string(reason));
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct mqtt_source *s = obj;
    (void)mosq;
    (void)props;
    size_t tlen = strlen(msg->topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    struct mq_item *it = tern_malloc(sizeof(*it) + plen + tlen + 2);
    if (!it) {
        /* The device re-sends it when no receipt comes. */
        TERN_WARN("mqtt: out of memory; dropped a message of %zu bytes", plen);
        return;
    }
    it->next = NULL;
    it->len = plen;
    it->size = sizeof(*it) + plen + tlen + 2;
    if (plen)
        memcpy(it->data, msg->payload, plen);
    it->data[plen] = '\0';
    it->topic = it->data + plen + 1;
    memcpy(it->topic, msg->topic, tlen + 1);
    pthread_mutex_lock(&s->mu);
    /* Back-pressure: wait while full (an empty queue always takes one). */
    while (s->head && s->queued_bytes + it->size > s->max_bytes && !s->closing)
        pthread_cond_wait(&s->room, &s->mu);
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->queued_bytes += it->size;
    pthread_cond_signal(&s->have);
    pthread_mutex_unlock(&s->mu);
}

/* ---- pipeline thread ---------------------------------------------------- */

static uint64_t hash_str(const char *p)
{
    uint64_t h = 1469598103934665603ull;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* Expands {device_id} in tmpl. Returns an allocated string or NULL. */
static char *expand_device(const char *tmpl, const char *dev)
{
    size_t cap = strlen(tmpl) + strlen(dev) * 4 + 1, len = 0;
    char *out = tern_malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{device_id}", 11) == 0) {
            memcpy(out + len, dev, strlen(dev));
            len += strlen(dev);
            p += 11;
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
    return out;
}

/* The interned entry of topic, created on first sight; NULL out of memory. */
static struct topic_ent *intern_topic(struct mqtt_source *s, const char *topic)
{
    size_t b = hash_str(topic) % TOPIC_BUCKETS;
    for (struct topic_ent *t = s->buckets[b]; t; t = t->next)
        if (strcmp(t->topic, topic) == 0)
            return t;
    struct topic_ent *t = tern_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->topic = tern_strdup(topic);
    if (!t->topic)
        goto fail;
    if (s->device_level >= 0) {
        const char *p = topic;
        for (int lvl = 0; lvl < s->device_level && p; lvl++) {
            p = strchr(p, '/');
            if (p)
                p++;
        }
        if (p) {
            size_t n = strcspn(p, "/");
            if (n > 0 && n < 64) {
                t->device = tern_malloc(n + 1);
                if (!t->device)
                    goto fail;
                memcpy(t->device, p, n);
                t->device[n] = '\0';
            }
        }
    }
    if (t->device && s->receipts) {
        t->receipt_topic = expand_device(s->c->mqtt_receipt_topic, t->device);
        if (!t->receipt_topic)
            goto fail;
    }
    t->next = s->buckets[b];
    s->buckets[b] = t;
    return t;
fail:
    tern_free(t->topic);
    tern_free(t->device);
    tern_free(t);
    return NULL;
}

static int ledger_push(struct mqtt_source *s, int64_t offset, const struct topic_ent *t, uint64_t epoch, int64_t seq)
{
    if (s->led_len > s->led_head) {
        struct ledger_ent *l = &s->led[s->led_len - 1];
        if (l->offset == offset && l->epoch == epoch && l->last + 1 == seq) {
            l->last = seq;
            return 0;
        }
    }
    if (s->led_len == s->led_cap) {
        if (s->led_head > 0) {
            memmove(s->led, s->led + s->led_head, (s->led_len - s->led_head) * sizeof(*s->led));
            s->led_len -= s->led_head;
            s->led_head = 0;
        }
        if (s->led_len == s->led_cap) {
            size_t nc = s->led_cap ? s->led_cap * 2 : 1024;
            struct ledger_ent *nl = tern_realloc(s->led, nc * sizeof(*nl));
            if (!nl)
                return -1;
            s->led = nl;
            s->led_cap = nc;
        }
    }
    s->led[s->led_len++] = (struct ledger_ent){offset, t, epoch, seq, seq};
    return 0;
}

/* Notes the identities of the readings in one message for its receipt. */
static void ledger_note(struct mqtt_source *s, const struct topic_ent *t, int64_t offset, const char *p, size_t len)
{
    if (!t->receipt_topic)
        return;
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(p + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - p) : len;
        uint64_t epoch;
        int64_t seq;
        if (end > start && relay_line_identity(p + start, end - start, &epoch, &seq) == 0 &&
            ledger_push(s, offset, t, epoch, seq) != 0) {
            /* Only costs a re-send: the device gets no receipt for it. */
            TERN_WARN("mqtt: out of memory noting a receipt for %s", t->topic);
            return;
        }
        start = end + 1;
    }
}

/* The first connection. libmosquitto's network thread reconnects after a
 * connection it made is lost, but not when the very first connect fails at
 * once (broker down when the relay starts), so until one attempt got going
 * we retry here, with backoff. Returns 0 when the thread runs. */
static int first_connect(struct mqtt_source *s, char *err, size_t errcap)
{
    int64_t now = tern_mono_ms();
    if (now < s->next_connect_ms)
        return -1;
    int rc = mosquitto_connect_async(s->mosq, s->c->mqtt_host, (int)s->c->mqtt_port, (int)s->c->mqtt_keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        int64_t delay = tern_backoff_next(&s->connect_bo);
        if (s->next_connect_ms == 0)
            TERN_WARN("mqtt: connecting to %s:%lld: %s; retrying", s->c->mqtt_host, (long long)s->c->mqtt_port,
                      rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        s->next_connect_ms = now + delay;
        return -1;
    }
    rc = mosquitto_loop_start(s->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(err, errcap, "mqtt: cannot start the network thread: %s", mosquitto_strerror(rc));
        return -2;
    }
    s->started = 1;
    return 0;
}

static int mqtt_poll(void *self, struct relay_msg *msg, int timeout_ms, char *err, size_t errcap)
{
    struct mqtt_source *s = self;
    if (!s->started && first_connect(s, err, errcap) == -2)
        return -1;
    if (s->held) {
        tern_free(s->held);
        s->held = NULL;
    }
    pthread_mutex_lock(&s->mu);
    if ((s->paused || !s->head) && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (s->paused || !s->head) {
            if (pthread_cond_timedwait(&s->have, &s->mu, &ts) == ETIMEDOUT)
                break;
        }
    }
    /* Paused: the queue fills up to queue_max_bytes, then the network
     * thread stops reading and TCP pushes back on the broker. */
    struct mq_item *it = s->paused ? NULL : s->head;
    if (it) {
        s->head = it->next;
        if (!s->head)
            s->tail = NULL;
        s->queued_bytes -= it->size;
        pthread_cond_signal(&s->room);
    }
    pthread_mutex_unlock(&s->mu);
    if (!it)
        return 0;
    struct topic_ent *t = intern_topic(s, it->topic);
    if (!t) {
        tern_free(it);
        TERN_WARN("mqtt: out of memory; dropped a message (the device re-sends it)");
        return 0;
    }
    int64_t off = s->next_offset++;
    ledger_note(s, t, off, it->data, it->len);
    s->held = it;
    msg->payload = it->data;
    msg->len = it->len;
    msg->pos.topic = t->topic;
    msg->pos.partition = -1;
    msg->pos.offset = off;
    msg->device_id = t->device;
    return 1;
}

static int cmp_ledger(const void *a, const void *b)
{
    const struct ledger_ent *x = a, *y = b;
    if (x->t != y->t)
        return (uintptr_t)x->t < (uintptr_t)y->t ? -1 : 1;
    if (x->epoch != y->epoch)
        return x->epoch < y->epoch ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

static void publish_receipt(struct mqtt_source *s, const struct topic_ent *t, uint64_t epoch,
                            const struct tern_seq_range *r, size_t n)
{
    char buf[TERN_RECEIPT_MAX_BYTES];
    for (size_t i = 0; i < n; i += TERN_RECEIPT_MAX_RANGES) {
        size_t k = n - i < TERN_RECEIPT_MAX_RANGES ? n - i : TERN_RECEIPT_MAX_RANGES;
        int len = tern_receipt_encode(epoch, r + i, k, buf, sizeof(buf));
        if (len < 0)
            continue;
        /* Counted before the publish: its PUBACK may come back first. */
        atomic_fetch_add(&s->receipts_inflight, 1);
        int rc = mosquitto_publish_v5(s->mosq, NULL, t->receipt_topic, len, buf, 1, false, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            atomic_fetch_sub(&s->receipts_inflight, 1);
            relay_metrics_add(s->m, M_RECEIPT_FAILURES, 1);
            /* The device times out and re-sends; the copies deduplicate. */
            if (s->receipt_failures++ == 0)
                TERN_WARN("mqtt: cannot publish a receipt to %s: %s (devices will re-send)", t->receipt_topic,
                          mosquitto_strerror(rc));
            continue;
        }
        s->receipts_sent++;
        relay_metrics_add(s->m, M_RECEIPTS, 1);
    }
}

void source_mqtt_settle(void *self, int64_t upto, int stored)
{
    struct mqtt_source *s = self;
    size_t end = s->led_head;
    while (end < s->led_len && s->led[end].offset <= upto)
        end++;
    size_t n = end - s->led_head;
    if (n == 0)
        return;
    struct ledger_ent *e = s->led + s->led_head;
    if (stored) {
        qsort(e, n, sizeof(*e), cmp_ledger);
        size_t i = 0;
        while (i < n) {
            size_t j = i;
            while (j < n && e[j].t == e[i].t && e[j].epoch == e[i].epoch)
                j++;
            if (j - i > s->ranges_cap) {
                struct tern_seq_range *nr = tern_realloc(s->ranges, (j - i) * sizeof(*nr));
                if (!nr) {
                    i = j;
                    continue;
                }
                s->ranges = nr;
                s->ranges_cap = j - i;
            }
            for (size_t k = i; k < j; k++)
                s->ranges[k - i] = (struct tern_seq_range){e[k].first, e[k].last};
            size_t nr = tern_receipt_coalesce(s->ranges, j - i);
            publish_receipt(s, e[i].t, e[i].epoch, s->ranges, nr);
            i = j;
        }
    }
    s->led_head = end;
    if (s->led_head == s->led_len)
        s->led_head = s->led_len = 0;
}

static int mqtt_durable(void *self, const struct relay_pos *pos, size_t n, int sync, char *err, size_t errcap)
{
    (void)sync;
    (void)err;
    (void)errcap;
    int64_t upto = -1;
    for (size_t i = 0; i < n; i++)
        if (pos[i].offset > upto)
            upto = pos[i].offset;
    if (upto >= 0)
        source_mqtt_settle(self, upto, 1);
    return 0;
}

static void mqtt_close(void *self)
{
    struct mqtt_source *s = self;
    if (!s)
        return;
    if (s->mosq) {
        /* Give receipts already handed to libmosquitto a moment to leave. */
        int64_t until = tern_mono_ms() + 2000;
        while (atomic_load(&s->receipts_inflight) > 0 && atomic_load(&s->connected) && tern_mono_ms() < until)
            usleep(10000);
        pthread_mutex_lock(&s->mu);
        s->closing = 1;
        pthread_cond_broadcast(&s->room);
        pthread_mutex_unlock(&s->mu);
        mosquitto_disconnect_v5(s->mosq, 0, NULL);
        if (s->started)
            mosquitto_loop_stop(s->mosq, false);
        mosquitto_destroy(s->mosq);
        TERN_INFO("mqtt: %" PRIu64 " receipt(s) published", s->receipts_sent);
    }
    struct mq_item *it = s->head;
    while (it) {
        struct mq_item *nx = it->next;
        tern_free(it);
        it = nx;
    }
    tern_free(s->held);
    for (size_t b = 0; b < TOPIC_BUCKETS; b++) {
        struct topic_ent *t = s->buckets[b];
        while (t) {
            struct topic_ent *nx = t->next;
            tern_free(t->topic);
            tern_free(t->device);
            tern_free(t->receipt_topic);
            tern_free(t);
            t = nx;
        }
    }
    tern_free(s->led);
    tern_free(s->ranges);
    if (s->password) {
        memset(s->password, 0, strlen(s->password));
        tern_free(s->password);
    }
    pthread_cond_destroy(&s->have);
    pthread_cond_destroy(&s->room);
    pthread_mutex_destroy(&s->mu);
    tern_free(s);
}

static int mqtt_pause(void *self)
{
    ((struct mqtt_source *)self)->paused = 1;
    return 0;
}

static int mqtt_resume(void *self)
{
    ((struct mqtt_source *)self)->paused = 0;
    return 0;
}

static const struct relay_source_ops mqtt_ops = {
    .name = "mqtt",
    .poll = mqtt_poll,
    .durable = mqtt_durable,
    .pause = mqtt_pause,
    .resume = mqtt_resume,
    .close = mqtt_close,
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void lib_init(void) { mosquitto_lib_init(); }

static int read_password(struct mqtt_source *s, const struct relay_config *c, char *err, size_t errcap)
{
    char buf[512];
    if (c->mqtt_password_file[0] && c->mqtt_password[0]) {
        snprintf(err, errcap, "mqtt: set password or password_file, not both");
        return -1;
    }
    if ((c->mqtt_password_file[0] || c->mqtt_password[0]) && !c->mqtt_username[0]) {
        snprintf(err, errcap, "mqtt: a password needs mqtt.username");
        return -1;
    }
    if (c->mqtt_password_file[0]) {
        FILE *f = fopen(c->mqtt_password_file, "r");
        if (!f) {
            snprintf(err, errcap, "mqtt.password_file %s: %s", c->mqtt_password_file, strerror(errno));
            return -1;
        }
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
    } else if (c->mqtt_password[0]) {
        snprintf(buf, sizeof(buf), "%s", c->mqtt_password);
    } else {
        return 0;
    }
    s->password = tern_strdup(buf);
    memset(buf, 0, sizeof(buf));
    if (!s->password) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    return 0;
}

int source_mqtt_open(const struct relay_config *c, struct relay_metrics *m, struct relay_source *out, char *err,
                     size_t errcap)
{
    struct mqtt_source *s = tern_calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    char cid[RELAY_STR_MAX + 64];
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    s->c = c;
    s->m = m;
    s->max_bytes = (size_t)c->mqtt_queue_max_bytes;
    s->receipts = c->mqtt_receipts;
    /* Offsets name messages in the rejected table's key (with the topic), so
     * they must not repeat across restarts or between relays of one group:
     * a random 24-bit instance id above a 39-bit counter. */
    s->next_offset = (int64_t)(((uint64_t)tern_utc_ms() * 2654435761u ^ (uint64_t)getpid() * 40503u) & 0xffffff) << 39;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->have, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->room, NULL);
    if (c->mqtt_group[0])
        snprintf(s->filter, sizeof(s->filter), "$share/%s/%s", c->mqtt_group, c->mqtt_topic);
    else
        snprintf(s->filter, sizeof(s->filter), "%s", c->mqtt_topic);
    /* The device is the topic level the filter's first '+' stands for. */
    s->device_level = -1;
    int lvl = 0;
    for (const char *p = c->mqtt_topic; *p; p++) {
        if (*p == '/')
            lvl++;
        else if (*p == '+') {
            s->device_level = lvl;
            break;
        }
    }
    if (s->receipts && s->device_level < 0)
        TERN_WARN("mqtt.topic %s has no '+' level naming the device: no receipts, no device_id check",
                  c->mqtt_topic);
    if (read_password(s, c, err, errcap) != 0)
        goto fail;
    if (c->mqtt_client_id[0]) {
        snprintf(cid, sizeof(cid), "%s", c->mqtt_client_id);
    } else {
        char host[64] = "relay";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(cid, sizeof(cid), "tern-relay-%s-%d", host, (int)getpid());
    }
    pthread_once(&lib_once, lib_init);
    /* Clean start: a dead relay's share of the subscription goes to the
     * others at once instead of queueing for a session that may not return. */
    s->mosq = mosquitto_new(cid, true, s);
    if (!s->mosq) {
        snprintf(err, errcap, "mosquitto_new: %s", strerror(errno));
        goto fail;
    }
    mosquitto_int_option(s->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(s->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(s->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(s->mosq, on_disconnect);
    mosquitto_subscribe_v5_callback_set(s->mosq, on_subscribe);
    mosquitto_message_v5_callback_set(s->mosq, on_message);
    mosquitto_publish_v5_callback_set(s->mosq, on_publish);
    mosquitto_reconnect_delay_set(s->mosq, 1, 30, true);
    if (c->mqtt_username[0] && mosquitto_username_pw_set(s->mosq, c->mqtt_username, s->password) != 0) {
        snprintf(err, errcap, "mqtt: cannot set the credentials");
        goto fail;
    }
    if (c->mqtt_tls || c->mqtt_tls_ca_file[0] || c->mqtt_tls_cert_file[0]) {
        int rc = mosquitto_tls_set(s->mosq, c->mqtt_tls_ca_file[0] ? c->mqtt_tls_ca_file : NULL,
                                   c->mqtt_tls_ca_file[0] ? NULL : "/etc/ssl/certs",
                                   c->mqtt_tls_cert_file[0] ? c->mqtt_tls_cert_file : NULL,
                                   c->mqtt_tls_key_file[0] ? c->mqtt_tls_key_file : NULL, NULL);
        if (rc == MOSQ_ERR_SUCCESS && c->mqtt_tls_insecure)
            rc = mosquitto_tls_insecure_set(s->mosq, true);
        if (rc != MOSQ_ERR_SUCCESS) {
            snprintf(err, errcap, "mqtt TLS setup: %s", mosquitto_strerror(rc));
            goto fail;
        }
    }
    tern_backoff_init(&s->connect_bo, 500, 10000);
    /* A broker that is down now is not fatal: poll() keeps trying. */
    if (first_connect(s, err, errcap) == -2)
        goto fail;
    out->ops = &mqtt_ops;
    out->self = s;
    return 0;
fail:
    if (s->mosq) {
        mosquitto_destroy(s->mosq);
        s->mosq = NULL;
    }
    mqtt_close(s);
    return -1;
}
