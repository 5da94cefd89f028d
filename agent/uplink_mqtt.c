/* uplink_mqtt.c - the MQTT uplink (libmosquitto): one MQTT message carries a
 * batch of wire lines joined by '\n'; QoS 1 by default and a batch counts as
 * delivered only on its PUBACK (mid -> seq range), or, with ack = end-to-end,
 * only when tern-relay's receipt on tern/{device_id}/receipts says the
 * readings are stored (docs/wire-format.md, "Receipts").
 *
 * End-to-end mode: every run of consecutive seqs sent is kept as pending
 * with a deadline; receipts trim the runs and ack exactly the overlap; a
 * PUBACK only frees the in-flight window. When any run passes
 * receipt_timeout, or the connection drops (the session is clean, so
 * receipts sent meanwhile are gone), everything pending is reported failed
 * and the forwarder re-sends it from storage; the relay's ClickHouse table
 * deduplicates the copies, and a late receipt for a re-sent range just acks
 * the re-sent copy early.
 *
 * libmosquitto is used in its non-threaded mode: poll() calls mosquitto_loop
 * on the agent's main thread, so callbacks run on that thread too and the
 * uplink contract (all calls and events on the main thread) holds without a
 * lock or an event queue. We connect with mosquitto_connect_async, which in
 * libmosquitto 2.x starts a non-blocking TCP connect and leaves the CONNECT
 * packet for mosquitto_loop to write, so an unreachable broker never stalls
 * the storage writer (only name resolution blocks; use an IP to avoid it).
 * Reconnects are ours, with exponential backoff and full jitter, and each
 * connection gets a fresh mosquitto handle: batches in flight on a lost
 * connection are reported failed and re-sent by the forwarder, so nothing
 * lingers in a library queue and memory stays bounded by max_inflight. */
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "uplink.h"
#include "receipt.h"
#include "units.h"
#include "wire.h"

static const struct tern_driver_option mqtt_options[] = {
    {"host", "string", "localhost", "broker host name or IP address"},
    {"port", "int", "1883", "broker TCP port (8883 is usual with TLS)"},
    {"protocol", "enum", "3.1.1", "MQTT protocol version: 3.1.1 or 5"},
    {"qos", "int", "1", "1: a batch is acked on PUBACK; 0: acked once written (may lose data)"},
    {"topic", "string", "tern/{device_id}/readings", "topic template; {device_id} is replaced"},
    {"client_id", "string", "tern-agent-{device_id}", "MQTT client id template"},
    {"username", "string", "", "user name; empty: no authentication"},
    {"password_file", "path", "", "file whose first line is the password (never logged)"},
    {"password_env", "string", "", "environment variable holding the password"},
    {"keepalive", "duration", "30s", "MQTT keepalive interval (at least 5s)"},
    {"tls", "bool", "false", "use TLS with the system CAs (implied by tls_ca_file)"},
    {"tls_ca_file", "path", "", "CA certificate file (PEM) to verify the broker"},
    {"tls_cert_file", "path", "", "client certificate (PEM) for mutual TLS"},
    {"tls_key_file", "path", "", "client private key (PEM) for mutual TLS"},
    {"tls_insecure", "bool", "false", "skip the broker host name check (testing only)"},
    {"max_batch_bytes", "size", "256KiB", "cap of one message's payload (>= 2KiB)"},
    {"max_batch_readings", "int", "1000", "cap of readings in one message"},
    {"max_inflight", "int", "16", "messages sent and not yet acknowledged (window)"},
    {"ack", "enum", "broker",
     "broker: delivered on the broker's PUBACK; end-to-end: delivered only when tern-relay's receipt says "
     "the readings are stored (survives relay and broker crashes)"},
    {"receipt_topic", "string", "tern/{device_id}/receipts", "ack = end-to-end: topic the relay's receipts arrive on"},
    {"receipt_timeout", "duration", "60s",
     "ack = end-to-end: readings without a receipt after this are re-sent from storage"},
    {"receipt_window", "int", "100000", "ack = end-to-end: most readings sent and awaiting a receipt"},
    {"ack_timeout", "duration", "30s", "a batch without PUBACK after this fails and the link is reset"},
    {"connect_timeout", "duration", "10s", "give up a connection attempt after this"},
    {"reconnect_min", "duration", "1s", "first reconnect backoff ceiling (full jitter)"},
    {"reconnect_max", "duration", "60s", "largest reconnect backoff ceiling"},
    {NULL, NULL, NULL, NULL},
};

enum mqtt_state { ST_BACKOFF, ST_CONNECTING, ST_CONNECTED };
static const char *const state_names[] = {"backoff", "connecting", "connected"};

struct inflight {
    int mid;
    int done;        /* 1 = completed inside a callback, reported on sweep */
    int reason;      /* MQTT v5 reason code (0 with 3.1.1) */
    int64_t first, last;
    int64_t sent_ms;
};

/* ack = end-to-end: seqs sent and not yet receipted (consecutive, one epoch). */
struct pending_run {
    uint64_t epoch;
    int64_t first, last;
    int64_t deadline_ms;
};

struct mqtt_up {
    /* Fixed at open. */
    char host[256];
    int port;
    int protocol;    /* MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5 */
    int qos;
    char topic[256];
    char client_id[128];
    char username[128];
    char *password;  /* secret: never logged; NULL when none */
    int keepalive_s;
    int tls, tls_insecure;
    char ca[512], cert[512], key[512];
    size_t max_bytes;
    size_t max_readings;
    size_t max_inflight;
    int64_t ack_timeout_ms, connect_timeout_ms;
    int e2e;                 /* ack = end-to-end */
    char receipt_topic[256];
    int64_t receipt_timeout_ms;
    size_t receipt_window;
    struct tern_uplink_events ev;

    /* Changing state. */
    struct mosquitto *mosq;
    enum mqtt_state state;
    int broken;              /* set in callbacks: tear down in poll() */
    int64_t next_attempt_ms, attempt_started_ms;
    struct tern_backoff bo;
    unsigned failures_in_row;
    struct inflight *inf;
    size_t n_inf, cap_inf;
    struct pending_run *pend;
    size_t n_pend, cap_pend;
    int subscribed;          /* e2e: the receipt subscription is granted */
    uint64_t receipts, receipts_bad;
    char *payload;
    uint64_t sent, acked, failed;
    char last_error[256];
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void lib_init(void) { mosquitto_lib_init(); }

/* Expands {device_id} in tmpl into out. Returns 0 or -1 when it does not fit. */
static int expand(const char *tmpl, const char *device_id, char *out, size_t cap)
{
    size_t len = 0;
    for (const char *p = tmpl; *p;) {
        const char *add = p;
        size_t n = 1;
        if (strncmp(p, "{device_id}", 11) == 0) {
            add = device_id;
            n = strlen(device_id);
            p += 11;
        } else {
            p++;
        }
        if (len + n >= cap)
            return -1;
        memcpy(out + len, add, n);
        len += n;
    }
    out[len] = '\0';
    return 0;
}

static void set_error(struct mqtt_up *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct mqtt_up *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->last_error, sizeof m->last_error, fmt, ap);
    va_end(ap);
}

static struct inflight *find_mid(struct mqtt_up *m, int mid)
{
    for (size_t i = 0; i < m->n_inf; i++)
        if (m->inf[i].mid == mid && !m->inf[i].done)
            return &m->inf[i];
    return NULL;
}

/* ---- end-to-end receipts ------------------------------------------------ */

static uint64_t pending_readings(const struct mqtt_up *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m->n_pend; i++)
        n += (uint64_t)(m->pend[i].last - m->pend[i].first + 1);
    return n;
}

/* Reports every pending run failed (the forwarder re-sends them all). */
static void fail_pending(struct mqtt_up *m, const char *why)
{
    for (size_t i = 0; i < m->n_pend; i++) {
        m->failed += (uint64_t)(m->pend[i].last - m->pend[i].first + 1);
        m->ev.failed(m->ev.user, m->pend[i].first, m->pend[i].last, why);
    }
    m->n_pend = 0;
}

static int push_run(struct mqtt_up *m, struct pending_run run)
{
    if (m->n_pend == m->cap_pend) {
        size_t nc = m->cap_pend ? m->cap_pend * 2 : 64;
        struct pending_run *np = tern_realloc(m->pend, nc * sizeof *np);
        if (!np)
            return -1;
        m->pend = np;
        m->cap_pend = nc;
    }
    m->pend[m->n_pend++] = run;
    return 0;
}

/* Notes r[0..n) as awaiting a receipt, as runs of consecutive seqs. */
static int add_pending(struct mqtt_up *m, const struct tern_reading *r, size_t n, int64_t now)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && r[j].epoch == r[i].epoch && r[j].seq == r[j - 1].seq + 1)
            j++;
        struct pending_run run = {r[i].epoch, r[i].seq, r[j - 1].seq, now + m->receipt_timeout_ms};
        if (push_run(m, run) < 0)
            return -1;
        i = j;
    }
    return 0;
}

/* Acks the overlap of each pending run with the receipt's ranges and trims
 * the runs to what is still unreceipted. Ranges of other epochs, or of seqs
 * not pending (already acked, or failed and not yet re-sent), are ignored:
 * a receipt is idempotent. */
static void apply_receipt(struct mqtt_up *m, uint64_t epoch, const struct tern_seq_range *r, size_t n)
{
    for (size_t i = 0; i < m->n_pend; i++) {
        for (size_t k = 0; k < n; k++) {
            struct pending_run *p = &m->pend[i];
            if (p->epoch != epoch || p->first > p->last)
                break;
            int64_t a = r[k].first > p->first ? r[k].first : p->first;
            int64_t b = r[k].last < p->last ? r[k].last : p->last;
            if (a > b)
                continue;
            m->acked += (uint64_t)(b - a + 1);
            m->ev.acked(m->ev.user, a, b);
            if (a == p->first && b == p->last) {
                p->first = p->last + 1; /* empty: removed below */
            } else if (a == p->first) {
                p->first = b + 1;
            } else if (b == p->last) {
                p->last = a - 1;
            } else {
                /* A hole in the middle: keep the tail as its own run. */
                struct pending_run tail = {p->epoch, b + 1, p->last, p->deadline_ms};
                p->last = a - 1;
                if (push_run(m, tail) < 0) {
                    /* Cannot track it: re-send it rather than lose it. */
                    m->failed += (uint64_t)(tail.last - tail.first + 1);
                    m->ev.failed(m->ev.user, tail.first, tail.last, "out of memory");
                }
            }
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < m->n_pend; i++)
        if (m->pend[i].first <= m->pend[i].last)
            m->pend[w++] = m->pend[i];
    m->n_pend = w;
}

/* ---- libmosquitto callbacks (run inside mosquitto_loop/publish) --------- */

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *p)
{
    struct mqtt_up *m = obj;
    struct tern_seq_range r[TERN_RECEIPT_MAX_RANGES];
    uint64_t epoch;
    size_t n = 0;
    char err[160];
    if (!m->e2e || strcmp(msg->topic, m->receipt_topic) != 0)
        return;
    if (tern_receipt_decode(msg->payload, msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0, &epoch, r, &n, err,
                            sizeof err) < 0) {
        if (m->receipts_bad++ == 0)
            TERN_WARN("mqtt: ignoring a malformed receipt on %s: %s", msg->topic, err);
        return;
    }
    m->receipts++;
    apply_receipt(m, epoch, r, n);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *p)
{
    struct mqtt_up *m = obj;
    if (n >= 1 && granted[0] <= 2) {
        m->subscribed = 1;
        TERN_INFO("mqtt: receiving receipts on %s", m->receipt_topic);
        return;
    }
    set_error(m, "broker refused the subscription to %s (check the ACL)", m->receipt_topic);
    m->broken = 1;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *p)
{
    struct mqtt_up *m = obj;
    if (rc == 0) {
        m->state = ST_CONNECTED;
        m->failures_in_row = 0;
        tern_backoff_reset(&m->bo);
        m->last_error[0] = '\0';
        TERN_INFO("mqtt: connected to %s:%d as %s", m->host, m->port, m->client_id);
        /* The session is clean: subscribe again on every connection. */
        if (m->e2e) {
            int src = mosquitto_subscribe_v5(mosq, NULL, m->receipt_topic, 1, 0, NULL);
            if (src != MOSQ_ERR_SUCCESS) {
                set_error(m, "subscribe %s: %s", m->receipt_topic, mosquitto_strerror(src));
                m->broken = 1;
            }
        }
        return;
    }
    set_error(m, "connection refused: %s",
              m->protocol == MQTT_PROTOCOL_V5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
    m->broken = 1;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *p)
{
    struct mqtt_up *m = obj;
    if (m->state == ST_CONNECTED)
        set_error(m, "connection lost: %s", rc ? mosquitto_strerror(rc) : "closed by the broker");
    else if (!m->broken)
        set_error(m, "connection failed before CONNACK (%s)",
                  rc ? mosquitto_strerror(rc) : "closed by the broker");
    m->broken = 1;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *p)
{
    struct mqtt_up *m = obj;
    struct inflight *f = find_mid(m, mid);
    if (!f)
        return; /* from a batch already reported failed (timeout) */
    f->done = 1;
    f->reason = reason;
}

/* Reports completed batches and compacts the in-flight list. */
static void sweep(struct mqtt_up *m)
{
    size_t w = 0;
    for (size_t i = 0; i < m->n_inf; i++) {
        struct inflight f = m->inf[i];
        if (!f.done) {
            m->inf[w++] = f;
            continue;
        }
        uint64_t n = (uint64_t)(f.last - f.first + 1);
        if (f.reason < 0x80 && m->e2e) {
            /* The broker has it; only the receipt acks it. */
        } else if (f.reason < 0x80) {
            m->acked += n;
            m->ev.acked(m->ev.user, f.first, f.last);
        } else if (m->e2e) {
            char why[128];
            snprintf(why, sizeof why, "broker refused a batch: %s", mosquitto_reason_string(f.reason));
            set_error(m, "%s", why);
            fail_pending(m, why);
        } else {
            char why[128];
            snprintf(why, sizeof why, "broker refused the batch: %s", mosquitto_reason_string(f.reason));
            set_error(m, "%s", why);
            m->failed += n;
            m->ev.failed(m->ev.user, f.first, f.last, why);
        }
    }
    m->n_inf = w;
}

/* Drops the connection: every batch in flight is reported failed. */
static void teardown(struct mqtt_up *m, int64_t now)
{
    sweep(m);
    /* e2e: the pending runs cover what is in flight too, and receipts sent
     * while we are away are lost with the clean session. */
    if (m->e2e) {
        fail_pending(m, m->last_error[0] ? m->last_error : "connection lost");
        m->n_inf = 0;
        m->subscribed = 0;
    }
    for (size_t i = 0; i < m->n_inf; i++) {
        m->failed += (uint64_t)(m->inf[i].last - m->inf[i].first + 1);
        m->ev.failed(m->ev.user, m->inf[i].first, m->inf[i].last,
                     m->last_error[0] ? m->last_error : "connection lost");
    }
    m->n_inf = 0;
    if (m->mosq) {
        mosquitto_destroy(m->mosq);
        m->mosq = NULL;
    }
    if (m->state == ST_CONNECTED)
        TERN_WARN("mqtt: %s", m->last_error[0] ? m->last_error : "connection lost");
    else if (m->failures_in_row == 0)
        TERN_WARN("mqtt: cannot connect to %s:%d: %s (retrying with backoff)", m->host, m->port,
                  m->last_error[0] ? m->last_error : "unknown error");
    m->failures_in_row++;
    m->state = ST_BACKOFF;
    m->broken = 0;
    m->next_attempt_ms = now + tern_backoff_next(&m->bo);
}

static int start_connect(struct mqtt_up *m, int64_t now)
{
    m->mosq = mosquitto_new(m->client_id, true, m);
    if (!m->mosq) {
        set_error(m, "mosquitto_new: %s", strerror(errno));
        return -1;
    }
    mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, m->protocol);
    mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(m->mosq, (unsigned)m->max_inflight);
    mosquitto_connect_v5_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(m->mosq, on_publish);
    if (m->e2e) {
        mosquitto_message_v5_callback_set(m->mosq, on_message);
        mosquitto_subscribe_v5_callback_set(m->mosq, on_subscribe);
    }
    if (m->username[0])
        mosquitto_username_pw_set(m->mosq, m->username, m->password);
    if (m->tls) {
        int rc = mosquitto_tls_set(m->mosq, m->ca[0] ? m->ca : NULL, m->ca[0] ? NULL : "/etc/ssl/certs",
                                   m->cert[0] ? m->cert : NULL, m->key[0] ? m->key : NULL, NULL);
        if (rc == MOSQ_ERR_SUCCESS && m->tls_insecure)
            rc = mosquitto_tls_insecure_set(m->mosq, true);
        if (rc != MOSQ_ERR_SUCCESS) {
            set_error(m, "TLS setup: %s", mosquitto_strerror(rc));
            return -1;
        }
    }
    m->state = ST_CONNECTING;
    m->attempt_started_ms = now;
    int rc = mosquitto_connect_async(m->mosq, m->host, m->port, m->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        set_error(m, "%s", rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- the uplink operations --------------------------------------------- */

static int opt_int(const struct tern_kv_list *o, const char *key, int64_t min, int64_t max,
                   int64_t *out, char *err, size_t cap)
{
    const char *v = tern_kv_get(o, key, NULL);
    for (const struct tern_driver_option *d = mqtt_options; !v && d->key; d++)
        if (strcmp(d->key, key) == 0)
            v = d->def;
    if (tern_parse_int(v, min, max, out) < 0) {
        snprintf(err, cap, "[uplink.mqtt] %s: '%s' is not an integer in %" PRId64 "..%" PRId64, key, v,
                 min, max);
        return -1;
    }
    return 0;
}

static const char *opt_str(const struct tern_kv_list *o, const char *key)
{
    const char *v = tern_kv_get(o, key, NULL);
    for (const struct tern_driver_option *d = mqtt_options; !v && d->key; d++)
        if (strcmp(d->key, key) == 0)
            v = d->def;
    return v ? v : "";
}

static int opt_dur(const struct tern_kv_list *o, const char *key, int64_t *out, char *err, size_t cap)
{
    const char *v = opt_str(o, key);
    if (tern_parse_duration_ms(v, 1000, out) < 0) {
        snprintf(err, cap, "[uplink.mqtt] %s: '%s' is not a duration", key, v);
        return -1;
    }
    return 0;
}

static int opt_bool(const struct tern_kv_list *o, const char *key, int *out, char *err, size_t cap)
{
    const char *v = opt_str(o, key);
    if (tern_parse_bool(v, out) < 0) {
        snprintf(err, cap, "[uplink.mqtt] %s: '%s' is not a boolean", key, v);
        return -1;
    }
    return 0;
}

static int copy_opt(const struct tern_kv_list *o, const char *key, char *dst, size_t cap, char *err,
                    size_t errcap)
{
    const char *v = opt_str(o, key);
    if (strlen(v) >= cap) {
        snprintf(err, errcap, "[uplink.mqtt] %s: value too long", key);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int load_password(struct mqtt_up *m, const struct tern_kv_list *o, char *err, size_t cap)
{
    const char *file = opt_str(o, "password_file");
    const char *env = opt_str(o, "password_env");
    if (file[0] && env[0]) {
        snprintf(err, cap, "[uplink.mqtt] set password_file or password_env, not both");
        return -1;
    }
    char buf[512];
    if (file[0]) {
        FILE *f = fopen(file, "r");
        if (!f) {
            snprintf(err, cap, "[uplink.mqtt] password_file %s: %s", file, strerror(errno));
            return -1;
        }
        if (!fgets(buf, sizeof buf, f))
            buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
    } else if (env[0]) {
        const char *v = getenv(env);
        if (!v) {
            snprintf(err, cap, "[uplink.mqtt] password_env: environment variable %s is not set", env);
            return -1;
        }
        snprintf(buf, sizeof buf, "%s", v);
    } else {
        return 0;
    }
    if (!m->username[0]) {
        snprintf(err, cap, "[uplink.mqtt] a password needs a username");
        return -1;
    }
    m->password = tern_strdup(buf);
    memset(buf, 0, sizeof buf);
    if (!m->password) {
        snprintf(err, cap, "[uplink.mqtt] out of memory");
        return -1;
    }
    return 0;
}

static void mqtt_close(void *state);

static int mqtt_open(const struct tern_kv_list *o, const char *device_id,
                     const struct tern_uplink_events *ev, void **state, char *err, size_t errcap)
{
    *state = NULL;
    if (tern_kv_check(o, mqtt_options, err, errcap) < 0)
        return -1;
    struct mqtt_up *m = tern_calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errcap, "[uplink.mqtt] out of memory");
        return -1;
    }
    int64_t v;
    uint64_t bytes;
    m->ev = *ev;
    if (copy_opt(o, "host", m->host, sizeof m->host, err, errcap) < 0)
        goto fail;
    if (opt_int(o, "port", 1, 65535, &v, err, errcap) < 0)
        goto fail;
    m->port = (int)v;
    const char *proto = opt_str(o, "protocol");
    if (strcmp(proto, "3.1.1") == 0 || strcmp(proto, "311") == 0)
        m->protocol = MQTT_PROTOCOL_V311;
    else if (strcmp(proto, "5") == 0 || strcmp(proto, "5.0") == 0)
        m->protocol = MQTT_PROTOCOL_V5;
    else {
        snprintf(err, errcap, "[uplink.mqtt] protocol: '%s' is not 3.1.1 or 5", proto);
        goto fail;
    }
    if (opt_int(o, "qos", 0, 1, &v, err, errcap) < 0)
        goto fail;
    m->qos = (int)v;
    if (expand(opt_str(o, "topic"), device_id, m->topic, sizeof m->topic) < 0 || !m->topic[0] ||
        strpbrk(m->topic, "+#")) {
        snprintf(err, errcap, "[uplink.mqtt] topic: empty, too long or holds a wildcard (+ #)");
        goto fail;
    }
    if (expand(opt_str(o, "client_id"), device_id, m->client_id, sizeof m->client_id) < 0 ||
        !m->client_id[0]) {
        snprintf(err, errcap, "[uplink.mqtt] client_id: empty or too long");
        goto fail;
    }
    if (copy_opt(o, "username", m->username, sizeof m->username, err, errcap) < 0)
        goto fail;
    if (load_password(m, o, err, errcap) < 0)
        goto fail;
    int64_t ms;
    if (opt_dur(o, "keepalive", &ms, err, errcap) < 0)
        goto fail;
    if (ms < 5000 || ms > 65535000) {
        snprintf(err, errcap, "[uplink.mqtt] keepalive: must be between 5s and 18h");
        goto fail;
    }
    m->keepalive_s = (int)(ms / 1000);
    if (opt_bool(o, "tls", &m->tls, err, errcap) < 0 ||
        opt_bool(o, "tls_insecure", &m->tls_insecure, err, errcap) < 0 ||
        copy_opt(o, "tls_ca_file", m->ca, sizeof m->ca, err, errcap) < 0 ||
        copy_opt(o, "tls_cert_file", m->cert, sizeof m->cert, err, errcap) < 0 ||
        copy_opt(o, "tls_key_file", m->key, sizeof m->key, err, errcap) < 0)
        goto fail;
    if (m->ca[0] || m->cert[0])
        m->tls = 1;
    if (!m->cert[0] != !m->key[0]) {
        snprintf(err, errcap, "[uplink.mqtt] tls_cert_file and tls_key_file go together");
        goto fail;
    }
    const char *mb = opt_str(o, "max_batch_bytes");
    if (tern_parse_size(mb, &bytes) < 0 || bytes < 2048 || bytes > 256u * 1024 * 1024) {
        snprintf(err, errcap, "[uplink.mqtt] max_batch_bytes: '%s' is not a size in 2KiB..256MiB", mb);
        goto fail;
    }
    m->max_bytes = bytes;
    if (opt_int(o, "max_batch_readings", 1, 100000, &v, err, errcap) < 0)
        goto fail;
    m->max_readings = (size_t)v;
    if (opt_int(o, "max_inflight", 1, 65535, &v, err, errcap) < 0)
        goto fail;
    m->max_inflight = (size_t)v;
    const char *ack = opt_str(o, "ack");
    if (strcmp(ack, "end-to-end") == 0) {
        m->e2e = 1;
    } else if (strcmp(ack, "broker") != 0) {
        snprintf(err, errcap, "[uplink.mqtt] ack: '%s' is not broker or end-to-end", ack);
        goto fail;
    }
    if (m->e2e && m->qos == 0) {
        snprintf(err, errcap, "[uplink.mqtt] ack = end-to-end needs qos = 1");
        goto fail;
    }
    if (expand(opt_str(o, "receipt_topic"), device_id, m->receipt_topic, sizeof m->receipt_topic) < 0 ||
        !m->receipt_topic[0] || strpbrk(m->receipt_topic, "+#")) {
        snprintf(err, errcap, "[uplink.mqtt] receipt_topic: empty, too long or holds a wildcard (+ #)");
        goto fail;
    }
    if (opt_dur(o, "receipt_timeout", &m->receipt_timeout_ms, err, errcap) < 0)
        goto fail;
    if (m->receipt_timeout_ms < 1000) {
        snprintf(err, errcap, "[uplink.mqtt] receipt_timeout: at least 1s");
        goto fail;
    }
    if (opt_int(o, "receipt_window", 1, 100000000, &v, err, errcap) < 0)
        goto fail;
    m->receipt_window = (size_t)v;
    int64_t rmin, rmax;
    if (opt_dur(o, "ack_timeout", &m->ack_timeout_ms, err, errcap) < 0 ||
        opt_dur(o, "connect_timeout", &m->connect_timeout_ms, err, errcap) < 0 ||
        opt_dur(o, "reconnect_min", &rmin, err, errcap) < 0 ||
        opt_dur(o, "reconnect_max", &rmax, err, errcap) < 0)
        goto fail;
    tern_backoff_init(&m->bo, rmin, rmax);
    m->cap_inf = m->max_inflight + 8;
    m->inf = tern_calloc(m->cap_inf, sizeof *m->inf);
    m->payload = tern_malloc(m->max_bytes + 1);
    if (!m->inf || !m->payload) {
        snprintf(err, errcap, "[uplink.mqtt] out of memory");
        goto fail;
    }
    pthread_once(&lib_once, lib_init);
    if (m->qos == 0)
        TERN_WARN("mqtt: qos = 0: batches count as delivered once written to the socket; readings "
                  "WILL be lost if the connection or the broker fails. Use qos = 1 in production.");
    m->state = ST_BACKOFF;
    m->next_attempt_ms = 0; /* connect on the first poll */
    *state = m;
    return 0;
fail:
    mqtt_close(m);
    return -1;
}

static size_t mqtt_capacity(void *state)
{
    struct mqtt_up *m = state;
    if (m->state != ST_CONNECTED || m->broken || m->n_inf >= m->max_inflight)
        return 0;
    size_t cap = (m->max_inflight - m->n_inf) * m->max_readings;
    if (m->e2e) {
        /* Nothing before the receipt subscription stands, or its receipts
         * could be missed. */
        uint64_t waiting = pending_readings(m);
        if (!m->subscribed || waiting >= m->receipt_window)
            return 0;
        if (m->receipt_window - waiting < cap)
            cap = (size_t)(m->receipt_window - waiting);
    }
    return cap;
}

static int mqtt_send(void *state, const struct tern_reading *r, size_t n)
{
    struct mqtt_up *m = state;
    if (m->state != ST_CONNECTED || m->broken)
        return TERN_UPLINK_RETRY;
    size_t i = 0;
    while (i < n) {
        /* Build one batch: lines joined by '\n', within both caps. */
        size_t len = 0, count = 0, start = i;
        while (i < n && count < m->max_readings) {
            size_t room = m->max_bytes - len;
            size_t sep = count ? 1 : 0;
            if (room <= sep)
                break;
            size_t l = tern_wire_encode(&r[i], m->payload + len + sep, room - sep + 1);
            if (l > room - sep) {
                if (count == 0)
                    return TERN_UPLINK_ERROR; /* one reading larger than a batch */
                break;
            }
            if (sep)
                m->payload[len] = '\n';
            len += sep + l;
            count++;
            i++;
        }
        if (m->n_inf == m->cap_inf) {
            size_t nc = m->cap_inf * 2;
            struct inflight *ni = tern_realloc(m->inf, nc * sizeof *ni);
            if (!ni) {
                i = start; /* this batch was not published: fail it too */
                goto fail_rest;
            }
            m->inf = ni;
            m->cap_inf = nc;
        }
        if (m->e2e && add_pending(m, r + start, i - start, tern_mono_ms()) < 0) {
            set_error(m, "out of memory");
            i = start;
            goto fail_rest;
        }
        /* Record before publishing: with QoS 0 the publish callback fires
         * inside mosquitto_publish, which writes mid first. */
        struct inflight *f = &m->inf[m->n_inf++];
        *f = (struct inflight){.mid = -1, .first = r[start].seq, .last = r[i - 1].seq,
                               .sent_ms = tern_mono_ms()};
        int rc = mosquitto_publish(m->mosq, &f->mid, m->topic, (int)len, m->payload, m->qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            m->n_inf--;
            i = start;
            set_error(m, "publish: %s", rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            m->broken = 1;
            goto fail_rest;
        }
        m->sent += count;
    }
    sweep(m);
    return TERN_UPLINK_OK;
fail_rest:
    /* What could not be published is failed now; the forwarder re-sends it
     * after reconnecting. */
    m->failed += (uint64_t)(n - i);
    m->ev.failed(m->ev.user, r[i].seq, r[n - 1].seq, m->last_error[0] ? m->last_error : "publish failed");
    sweep(m);
    return TERN_UPLINK_OK;
}

static int mqtt_poll(void *state, int timeout_ms)
{
    struct mqtt_up *m = state;
    int64_t now = tern_mono_ms();
    if (m->state == ST_BACKOFF) {
        if (now < m->next_attempt_ms) {
            int64_t wait = m->next_attempt_ms - now;
            if (timeout_ms > 0)
                poll(NULL, 0, (int)(wait < timeout_ms ? wait : timeout_ms));
            return 0;
        }
        m->last_error[0] = m->failures_in_row ? m->last_error[0] : '\0';
        if (start_connect(m, now) < 0) {
            teardown(m, now);
            return 0;
        }
    }
    int rc = mosquitto_loop(m->mosq, timeout_ms, 1);
    now = tern_mono_ms();
    if (rc != MOSQ_ERR_SUCCESS && !m->broken) {
        if (m->state == ST_CONNECTED || !m->last_error[0] || m->failures_in_row == 0)
            set_error(m, "%s", rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        m->broken = 1;
    }
    if (m->state == ST_CONNECTING && now - m->attempt_started_ms > m->connect_timeout_ms) {
        set_error(m, "no CONNACK within %lld ms", (long long)m->connect_timeout_ms);
        m->broken = 1;
    }
    sweep(m);
    /* e2e: one run without a receipt for too long (relay killed, receipt
     * lost): re-send everything pending, since the forwarder rewinds to the
     * oldest unacked seq anyway. The link itself stays up. */
    for (size_t i = 0; i < m->n_pend && m->e2e; i++)
        if (now > m->pend[i].deadline_ms) {
            char why[96];
            snprintf(why, sizeof why, "no receipt within %lld ms", (long long)m->receipt_timeout_ms);
            TERN_WARN("mqtt: %s for seq %" PRId64 "..%" PRId64 "; re-sending %" PRIu64 " reading(s)", why,
                      m->pend[i].first, m->pend[i].last, pending_readings(m));
            fail_pending(m, why);
            break;
        }
    /* A batch without PUBACK for too long means the link is stuck: reset it. */
    for (size_t i = 0; i < m->n_inf && !m->broken; i++)
        if (now - m->inf[i].sent_ms > m->ack_timeout_ms) {
            set_error(m, "no PUBACK within %lld ms", (long long)m->ack_timeout_ms);
            m->broken = 1;
        }
    if (m->broken)
        teardown(m, now);
    return 0;
}

static void mqtt_drain(void *state, int timeout_ms)
{
    struct mqtt_up *m = state;
    int64_t end = tern_mono_ms() + timeout_ms;
    while ((m->n_inf > 0 || m->n_pend > 0) && m->state == ST_CONNECTED && tern_mono_ms() < end)
        mqtt_poll(m, 50);
    if (m->mosq && m->state == ST_CONNECTED) {
        mosquitto_disconnect(m->mosq);
        mosquitto_loop(m->mosq, 0, 1);
    }
}

static void mqtt_status(void *state, struct tern_uplink_status *out)
{
    struct mqtt_up *m = state;
    out->connected = m->state == ST_CONNECTED;
    out->in_flight = 0;
    for (size_t i = 0; i < m->n_inf; i++)
        out->in_flight += (uint64_t)(m->inf[i].last - m->inf[i].first + 1);
    if (m->e2e)
        out->in_flight = pending_readings(m); /* sent, awaiting the receipt */
    out->sent = m->sent;
    out->acked = m->acked;
    out->failed = m->failed;
    snprintf(out->state, sizeof out->state, "%s", state_names[m->state]);
    snprintf(out->last_error, sizeof out->last_error, "%s", m->last_error);
}

static void mqtt_close(void *state)
{
    struct mqtt_up *m = state;
    if (!m)
        return;
    if (m->mosq)
        mosquitto_destroy(m->mosq);
    if (m->password) {
        memset(m->password, 0, strlen(m->password));
        tern_free(m->password);
    }
    tern_free(m->inf);
    tern_free(m->pend);
    tern_free(m->payload);
    tern_free(m);
}

const struct tern_uplink_ops tern_uplink_mqtt = {
    .name = "mqtt",
    .summary = "MQTT 3.1.1/5 via libmosquitto: batches of wire lines, QoS 1, acked on PUBACK or relay receipt",
    .options = mqtt_options,
    .open = mqtt_open,
    .capacity = mqtt_capacity,
    .send = mqtt_send,
    .poll = mqtt_poll,
    .drain = mqtt_drain,
    .status = mqtt_status,
    .close = mqtt_close,
};
