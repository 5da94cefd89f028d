/* config.c - see config.h. The key table below is the single source of truth
 * for parsing, defaults, validation, --help and the docs. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_DOUBLE, CFG_ENUM };

struct cfg_key {
    const char *section;
    const char *name;
    enum cfg_type type;
    const char *def;
    size_t off;
    size_t size;           /* CFG_STR: capacity of the char array */
    int64_t min, max;      /* CFG_INT range */
    const char *choices;   /* CFG_ENUM: "a|b|c", stored as the index */
    const char *help;
};

#define OFF(f) offsetof(struct relay_config, f)
#define STR(sec, key, f, def, help) {sec, key, CFG_STR, def, OFF(f), sizeof(((struct relay_config *)0)->f), 0, 0, NULL, help}
#define INT(sec, key, f, def, lo, hi, help) {sec, key, CFG_INT, def, OFF(f), 0, lo, hi, NULL, help}
#define DBL(sec, key, f, def, help) {sec, key, CFG_DOUBLE, def, OFF(f), 0, 0, 0, NULL, help}
#define ENUM(sec, key, f, def, ch, help) {sec, key, CFG_ENUM, def, OFF(f), 0, 0, 0, ch, help}

static const struct cfg_key keys[] = {
    STR("kafka", "brokers", kafka_brokers, "127.0.0.1:9092",
        "Kafka bootstrap servers, comma separated host:port."),
    STR("kafka", "topic", kafka_topic, "tern.readings", "Topic to consume (and to create with `init`)."),
    STR("kafka", "group", kafka_group, "tern-relay",
        "Consumer group. Relays sharing a group share the topic's partitions."),
    STR("kafka", "client_id", kafka_client_id, "tern-relay", "Kafka client.id, shown in broker logs."),
    INT("kafka", "partitions", kafka_partitions, "6", 1, 100000, "Partitions of the topic created by `init`."),
    INT("kafka", "replication", kafka_replication, "1", 1, 32, "Replication factor of the topic created by `init`."),
    INT("kafka", "retention_ms", kafka_retention_ms, "604800000", -1, INT64_MAX,
        "retention.ms of the topic created by `init` (-1 = forever). Must exceed the longest ClickHouse outage you want to survive."),
    STR("kafka", "compression", kafka_compression, "producer",
        "compression.type of the topic created by `init` (producer, gzip, snappy, lz4, zstd, uncompressed). producer keeps the batches as the agents compressed them (lz4 by default): any other value makes the broker recompress every batch, and zstd costs the relay about a third more CPU per reading to decompress than lz4, for about a third of lz4's size on disk."),
    INT("kafka", "session_timeout_ms", kafka_session_timeout_ms, "10000", 1000, 3600000,
        "Consumer session timeout: how long a dead relay keeps its partitions before the group rebalances."),
    STR("kafka", "instance_id", kafka_instance_id, "",
        "Static group membership (group.instance.id): a relay restarted with the same id gets its partitions back at once, without a rebalance. Unique per relay; empty = dynamic membership."),
    INT("kafka", "delivery_timeout_ms", kafka_delivery_timeout_ms, "300000", 1000, 86400000,
        "mode = bridge: how long the producer keeps trying to deliver a message (message.timeout.ms); then it gets no receipt and the device re-sends."),

    STR("clickhouse", "url", ch_url, "http://127.0.0.1:8123",
        "ClickHouse HTTP endpoint (no credentials in it: use user/password)."),
    STR("clickhouse", "user", ch_user, "default", "ClickHouse user."),
    STR("clickhouse", "password", ch_password, "", "ClickHouse password; never logged or put in a URL."),
    ENUM("clickhouse", "auth", auth, "basic", "basic|headers",
         "How credentials travel: HTTP basic auth (every version) or X-ClickHouse-User/X-ClickHouse-Key headers (19.x and later)."),
    STR("clickhouse", "database", ch_database, "tern", "Database holding the tables."),
    STR("clickhouse", "table", ch_table, "readings", "Raw readings table (ReplacingMergeTree)."),
    STR("clickhouse", "rejected_table", ch_rejected_table, "rejected", "Table for rejected messages."),
    STR("clickhouse", "rollup_view", ch_rollup_view, "readings_1m", "Per-minute rollup view."),
    ENUM("clickhouse", "schema_mode", schema_mode, "auto", "auto|modern|old",
         "auto: detect the server's features at start; modern: DateTime64(3), LowCardinality, Map; old: types every server since 18.x has."),
    ENUM("clickhouse", "compression", compression, "gzip", "none|gzip",
         "Request body compression (Content-Encoding); gzip is accepted by every supported server."),
    ENUM("clickhouse", "insert_format", insert_format, "rowbinary", "rowbinary|jsoneachrow",
         "Format of the readings rows sent: RowBinary (ClickHouse parses it for about half the CPU of JSON) or JSONEachRow (readable, for debugging). Rejected and wide rows are always JSONEachRow."),
    INT("clickhouse", "timeout_ms", ch_timeout_ms, "30000", 100, 3600000, "Timeout of one HTTP request."),

    INT("batch", "max_rows", batch_max_rows, "100000", 1, 10000000,
        "Insert when this many rows are buffered (ClickHouse wants thousands of rows per insert)."),
    INT("batch", "max_bytes", batch_max_bytes, "33554432", 1024, INT64_C(4294967296),
        "Insert when the encoded rows reach this many bytes. Bounds the relay's memory."),
    INT("batch", "max_delay_ms", batch_max_delay_ms, "1000", 1, 3600000,
        "Insert at least this often when rows are waiting (about one insert per second per table)."),

    ENUM("input", "format", input_format, "auto", "wire|envelope|auto",
         "Message format: Tern wire lines, the JSON sensor envelope, or auto (a JSON object with \"v\" is wire, else envelope)."),
    DBL("input", "value_min", value_min, "-1e15", "Readings with a value below this are rejected as out of range."),
    DBL("input", "value_max", value_max, "1e15", "Readings with a value above this are rejected as out of range."),

    STR("envelope", "id_field", env_id_field, "id", "Envelope field holding the message's unique id."),
    STR("envelope", "timestamp_field", env_ts_field, "timestamp",
        "Envelope field holding the time: RFC 3339 text, or a number of seconds (or milliseconds if > 1e11) since the Unix epoch."),
    STR("envelope", "value_field", env_value_field, "value", "Envelope field holding the object of measurements."),
    STR("envelope", "device_field", env_device_field, "sensor_id",
        "Field inside the value object (or at top level) that names the device."),
    STR("envelope", "sensor", env_sensor, "envelope", "Sensor name given to readings from envelopes."),
    STR("envelope", "metrics", env_metrics, "",
        "Comma separated metric[:unit] list taken from the value object, e.g. temperature:Cel,humidity:%,pressure:hPa. Empty = every numeric field."),
    ENUM("envelope", "dedup", env_dedup, "id", "id|offset",
         "Identity of an envelope's readings: from its id field (survives re-publishing) or from the Kafka topic/partition/offset."),

    ENUM("output", "mode", output, "readings", "readings|wide",
         "readings: Tern's readings table; wide: insert envelopes as one row each into an existing table (wide_table)."),
    STR("output", "wide_table", wide_table, "",
        "Existing table for mode = wide, e.g. sensor_metrics."),
    STR("output", "wide_columns", wide_columns, "",
        "column=source pairs for mode = wide; source is id, timestamp, device or metric:NAME. e.g. message_id=id,event_time=timestamp,sensor_id=device,temperature=metric:temperature"),

    STR("mqtt", "host", mqtt_host, "127.0.0.1", "MQTT broker host (source = mqtt)."),
    INT("mqtt", "port", mqtt_port, "1883", 1, 65535, "MQTT broker port (8883 is usual with TLS)."),
    STR("mqtt", "topic", mqtt_topic, "tern/+/readings",
        "Topic filter of the readings; the level matched by '+' is the device_id every reading on that topic must carry."),
    STR("mqtt", "group", mqtt_group, "tern-relay",
        "MQTT 5 shared subscription group ($share/<group>/<topic>): relays in one group split the messages. Empty = plain subscription."),
    STR("mqtt", "client_id", mqtt_client_id, "", "MQTT client id; empty = tern-relay-<hostname>-<pid>. Unique per relay."),
    STR("mqtt", "username", mqtt_username, "", "MQTT user name; empty = anonymous."),
    STR("mqtt", "password", mqtt_password, "", "MQTT password (prefer password_file); never logged."),
    STR("mqtt", "password_file", mqtt_password_file, "", "File whose first line is the MQTT password."),
    ENUM("mqtt", "tls", mqtt_tls, "false", "false|true", "TLS with the system CAs (implied by tls_ca_file or tls_cert_file)."),
    STR("mqtt", "tls_ca_file", mqtt_tls_ca_file, "", "CA certificate (PEM) to verify the broker."),
    STR("mqtt", "tls_cert_file", mqtt_tls_cert_file, "", "Client certificate (PEM) for mutual TLS."),
    STR("mqtt", "tls_key_file", mqtt_tls_key_file, "", "Client private key (PEM) for mutual TLS."),
    ENUM("mqtt", "tls_insecure", mqtt_tls_insecure, "false", "false|true", "Skip the broker host name check (testing only)."),
    INT("mqtt", "keepalive_s", mqtt_keepalive_s, "30", 5, 65535, "MQTT keepalive in seconds."),
    ENUM("mqtt", "receipts", mqtt_receipts, "true", "false|true",
         "Publish end-to-end receipts (QoS 1) to each device once its readings are stored (agents with ack = end-to-end delete only then)."),
    STR("mqtt", "receipt_topic", mqtt_receipt_topic, "tern/{device_id}/receipts", "Receipt topic template; {device_id} is replaced."),
    INT("mqtt", "queue_max_bytes", mqtt_queue_max_bytes, "67108864", 65536, INT64_C(4294967296),
        "Messages received and not yet batched are held up to this many bytes; beyond it the relay stops reading from the broker."),

    ENUM("relay", "source", source, "kafka", "kafka|mqtt",
         "Where readings come from: the [kafka] topic, or an MQTT (shared) subscription ([mqtt])."),
    ENUM("relay", "mode", mode, "clickhouse", "clickhouse|bridge",
         "clickhouse: insert into ClickHouse; bridge: source = mqtt only, produce every reading line to the [kafka] topic (idempotent, acks=all) and receipt once Kafka acknowledged it."),
    STR("relay", "metrics_listen", metrics_listen, "127.0.0.1:9470",
        "host:port of the Prometheus /metrics and /health endpoint; empty disables it."),
    STR("relay", "log_level", log_level, "info", "error, warn, info or debug."),
    INT("relay", "retry_base_ms", retry_base_ms, "200", 1, 600000, "First retry delay after a failed insert."),
    INT("relay", "retry_max_ms", retry_max_ms, "10000", 1, 3600000, "Longest retry delay (exponential backoff with jitter)."),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int enum_index(const char *choices, const char *v)
{
    int idx = 0;
    const char *p = choices;
    size_t vl = strlen(v);
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vl && strncasecmp(p, v, n) == 0)
            return idx;
        idx++;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static const char *enum_name(const char *choices, int idx, char *buf, size_t cap)
{
    const char *p = choices;
    for (int i = 0; p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (i == idx) {
            snprintf(buf, cap, "%.*s", (int)n, p);
            return buf;
        }
        p = bar ? bar + 1 : NULL;
    }
    snprintf(buf, cap, "?");
    return buf;
}

static int set_key(struct relay_config *c, const struct cfg_key *k, const char *v, char *err,
                   size_t errcap)
{
    char *base = (char *)c;
    switch (k->type) {
    case CFG_STR:
        if (strlen(v) >= k->size) {
            snprintf(err, errcap, "%s.%s: value longer than %zu bytes", k->section, k->name, k->size - 1);
            return -1;
        }
        memcpy(base + k->off, v, strlen(v) + 1);
        return 0;
    case CFG_INT: {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end != '\0') {
            snprintf(err, errcap, "%s.%s: '%s' is not an integer", k->section, k->name, v);
            return -1;
        }
        if (n < k->min || n > k->max) {
            snprintf(err, errcap, "%s.%s: %lld is out of range [%lld, %lld]", k->section, k->name, n,
                     (long long)k->min, (long long)k->max);
            return -1;
        }
        *(int64_t *)(void *)(base + k->off) = n;
        return 0;
    }
    case CFG_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end != '\0' || !isfinite(d)) {
            snprintf(err, errcap, "%s.%s: '%s' is not a finite number", k->section, k->name, v);
            return -1;
        }
        *(double *)(void *)(base + k->off) = d;
        return 0;
    }
    case CFG_ENUM: {
        int idx = enum_index(k->choices, v);
        if (idx < 0) {
            snprintf(err, errcap, "%s.%s: '%s' is not one of %s", k->section, k->name, v, k->choices);
            return -1;
        }
        *(int *)(void *)(base + k->off) = idx;
        return 0;
    }
    }
    return -1;
}

void relay_config_defaults(struct relay_config *c)
{
    char err[256];
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++)
        (void)set_key(c, &keys[i], keys[i].def, err, sizeof(err));
}

int relay_config_set(struct relay_config *c, const char *section, const char *name,
                     const char *value, char *err, size_t errcap)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcasecmp(keys[i].section, section) == 0 && strcasecmp(keys[i].name, name) == 0)
            return set_key(c, &keys[i], value, err, errcap);
    }
    snprintf(err, errcap, "unknown key '%s' in section [%s]", name, section);
    return -1;
}

struct load_ctx {
    struct relay_config *c;
    const char *path;
    char *err;
    size_t errcap;
    size_t used;
    int failed;
};

static void append_err(struct load_ctx *l, int line, const char *msg)
{
    if (l->used >= l->errcap)
        return;
    int n = line > 0 ? snprintf(l->err + l->used, l->errcap - l->used, "%s%s:%d: %s", l->used ? "\n" : "",
                                l->path, line, msg)
                     : snprintf(l->err + l->used, l->errcap - l->used, "%s%s: %s", l->used ? "\n" : "",
                                l->path, msg);
    if (n > 0)
        l->used += (size_t)n;
    if (l->used >= l->errcap)
        l->used = l->errcap;
}

/* Debian's libinih is built without INI_HANDLER_LINENO, so problems are
 * located by [section] key rather than by line. */
static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    const int line = 0;
    struct load_ctx *l = user;
    char e[512];
    if (!name) /* section header alone */
        return 1;
    if (relay_config_set(l->c, section, name, value ? value : "", e, sizeof(e)) != 0) {
        append_err(l, line, e);
        l->failed = 1;
    }
    return 1; /* keep going: report every problem in one pass */
}

int relay_config_load(struct relay_config *c, const char *path, char *err, size_t errcap)
{
    struct load_ctx l = {c, path, err, errcap, 0, 0};
    if (errcap)
        err[0] = '\0';
    int rc = ini_parse(path, on_ini, &l);
    if (rc == -1) {
        snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (rc == -2) {
        snprintf(err, errcap, "%s: out of memory while parsing", path);
        return -1;
    }
    if (rc > 0 && !l.failed) {
        append_err(&l, rc, "syntax error");
        l.failed = 1;
    }
    return l.failed ? -1 : 0;
}

int relay_is_identifier(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
                 (i > 0 && ch >= '0' && ch <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

int relay_config_validate(const struct relay_config *c, char *err, size_t errcap)
{
    const char *ids[][2] = {
        {"clickhouse.database", c->ch_database},   {"clickhouse.table", c->ch_table},
        {"clickhouse.rejected_table", c->ch_rejected_table}, {"clickhouse.rollup_view", c->ch_rollup_view},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        if (!relay_is_identifier(ids[i][1])) {
            snprintf(err, errcap, "%s: '%s' is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", ids[i][0], ids[i][1]);
            return -1;
        }
    }
    if (strncmp(c->ch_url, "http://", 7) != 0 && strncmp(c->ch_url, "https://", 8) != 0) {
        snprintf(err, errcap, "clickhouse.url: '%s' must start with http:// or https://", c->ch_url);
        return -1;
    }
    if (strchr(c->ch_url, '@')) {
        snprintf(err, errcap, "clickhouse.url: put credentials in clickhouse.user/password, not in the URL");
        return -1;
    }
    if (!c->kafka_brokers[0] || !c->kafka_topic[0] || !c->kafka_group[0]) {
        snprintf(err, errcap, "kafka.brokers, kafka.topic and kafka.group must not be empty");
        return -1;
    }
    if (c->mode == RELAY_MODE_BRIDGE && c->source != RELAY_SOURCE_MQTT) {
        snprintf(err, errcap, "relay.mode = bridge needs relay.source = mqtt");
        return -1;
    }
    if (c->source == RELAY_SOURCE_MQTT && (!c->mqtt_host[0] || !c->mqtt_topic[0] || strchr(c->mqtt_group, '/') ||
                                           strpbrk(c->mqtt_group, "+#"))) {
        snprintf(err, errcap, "mqtt.host and mqtt.topic must not be empty, mqtt.group must not hold / + #");
        return -1;
    }
    if (!(c->value_min < c->value_max)) {
        snprintf(err, errcap, "input.value_min must be below input.value_max");
        return -1;
    }
    if (c->retry_base_ms > c->retry_max_ms) {
        snprintf(err, errcap, "relay.retry_base_ms must not exceed relay.retry_max_ms");
        return -1;
    }
    if (c->output == RELAY_OUTPUT_WIDE) {
        if (!relay_is_identifier(c->wide_table)) {
            snprintf(err, errcap, "output.wide_table: '%s' is not a plain identifier", c->wide_table);
            return -1;
        }
        if (!c->wide_columns[0]) {
            snprintf(err, errcap, "output.wide_columns must map at least one column for mode = wide");
            return -1;
        }
    }
    return 0;
}

static void value_text(const struct relay_config *c, const struct cfg_key *k, char *buf, size_t cap)
{
    const char *base = (const char *)c;
    switch (k->type) {
    case CFG_STR:
        snprintf(buf, cap, "%s", base + k->off);
        break;
    case CFG_INT:
        snprintf(buf, cap, "%lld", (long long)*(const int64_t *)(const void *)(base + k->off));
        break;
    case CFG_DOUBLE:
        snprintf(buf, cap, "%g", *(const double *)(const void *)(base + k->off));
        break;
    case CFG_ENUM:
        enum_name(k->choices, *(const int *)(const void *)(base + k->off), buf, cap);
        break;
    }
}

void relay_config_dump(const struct relay_config *c, FILE *out)
{
    const char *sec = "";
    char buf[RELAY_LIST_MAX + 16];
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        if (strcmp(sec, k->section) != 0) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
            sec = k->section;
        }
        value_text(c, k, buf, sizeof(buf));
        if ((k->off == OFF(ch_password) || k->off == OFF(mqtt_password)) && buf[0])
            snprintf(buf, sizeof(buf), "********");
        fprintf(out, "%s = %s\n", k->name, buf);
    }
}

static const char *type_name(const struct cfg_key *k)
{
    switch (k->type) {
    case CFG_STR: return "string";
    case CFG_INT: return "integer";
    case CFG_DOUBLE: return "number";
    case CFG_ENUM: return k->choices;
    }
    return "?";
}

void relay_config_describe(FILE *out, int markdown)
{
    const char *sec = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        if (strcmp(sec, k->section) != 0) {
            if (markdown)
                fprintf(out, "\n### [%s]\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n", k->section);
            else
                fprintf(out, "\n   [%s]\n", k->section);
            sec = k->section;
        }
        if (markdown) {
            /* '|' inside a markdown table cell must be escaped. */
            fprintf(out, "| `%s` | ", k->name);
            for (const char *t = type_name(k); *t; t++)
                fputs(*t == '|' ? "\\|" : (char[2]){*t, 0}, out);
            fprintf(out, " | `%s` | %s |\n", k->def, k->help);
        }
        else
            fprintf(out, "       %s = %s   (%s, default \"%s\")\n              %s\n", k->name,
                    k->type == CFG_ENUM ? k->choices : "...", type_name(k), k->def, k->help);
    }
}
