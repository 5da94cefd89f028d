/* config.h - tern-relay's configuration: one declarative table of keys (section,
 * name, type, default, range, help) drives the INI parser, --check, --help and
 * docs/relay.md, so they cannot drift apart. */
#ifndef TERN_RELAY_CONFIG_H
#define TERN_RELAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RELAY_STR_MAX 256
#define RELAY_LIST_MAX 1024

enum relay_input_format { RELAY_INPUT_WIRE = 0, RELAY_INPUT_ENVELOPE, RELAY_INPUT_AUTO };
enum relay_dedup_key { RELAY_DEDUP_ID = 0, RELAY_DEDUP_OFFSET };
enum relay_schema_mode { RELAY_SCHEMA_AUTO = 0, RELAY_SCHEMA_MODERN, RELAY_SCHEMA_OLD };
enum relay_compression { RELAY_COMPRESS_NONE = 0, RELAY_COMPRESS_GZIP };
enum relay_insert_format { RELAY_INSERT_ROWBINARY = 0, RELAY_INSERT_JSON };
enum relay_auth { RELAY_AUTH_BASIC = 0, RELAY_AUTH_HEADERS };
enum relay_output { RELAY_OUTPUT_READINGS = 0, RELAY_OUTPUT_WIDE };
enum relay_source_kind { RELAY_SOURCE_KAFKA = 0, RELAY_SOURCE_MQTT };
enum relay_mode { RELAY_MODE_CLICKHOUSE = 0, RELAY_MODE_BRIDGE };

struct relay_config {
    /* [kafka] */
    char kafka_brokers[RELAY_STR_MAX];
    char kafka_topic[RELAY_STR_MAX];
    char kafka_group[RELAY_STR_MAX];
    char kafka_client_id[RELAY_STR_MAX];
    int64_t kafka_partitions;
    int64_t kafka_replication;
    int64_t kafka_retention_ms;
    char kafka_compression[RELAY_STR_MAX];
    int64_t kafka_session_timeout_ms;
    char kafka_instance_id[RELAY_STR_MAX];
    /* [clickhouse] */
    char ch_url[RELAY_STR_MAX];
    char ch_user[RELAY_STR_MAX];
    char ch_password[RELAY_STR_MAX];
    int auth;                 /* enum relay_auth */
    char ch_database[RELAY_STR_MAX];
    char ch_table[RELAY_STR_MAX];
    char ch_rejected_table[RELAY_STR_MAX];
    char ch_rollup_view[RELAY_STR_MAX];
    int schema_mode;          /* enum relay_schema_mode */
    int compression;          /* enum relay_compression */
    int insert_format;        /* enum relay_insert_format */
    int64_t ch_timeout_ms;
    /* [batch] */
    int64_t batch_max_rows;
    int64_t batch_max_bytes;
    int64_t batch_max_delay_ms;
    /* [input] */
    int input_format;         /* enum relay_input_format */
    double value_min;         /* readings outside [value_min, value_max] are rejected */
    double value_max;
    /* [envelope] */
    char env_id_field[RELAY_STR_MAX];
    char env_ts_field[RELAY_STR_MAX];
    char env_value_field[RELAY_STR_MAX];
    char env_device_field[RELAY_STR_MAX];
    char env_sensor[RELAY_STR_MAX];
    char env_metrics[RELAY_LIST_MAX];
    int env_dedup;            /* enum relay_dedup_key */
    /* [output] */
    int output;               /* enum relay_output */
    char wide_table[RELAY_STR_MAX];
    char wide_columns[RELAY_LIST_MAX];
    /* [mqtt] (source = mqtt) */
    char mqtt_host[RELAY_STR_MAX];
    int64_t mqtt_port;
    char mqtt_topic[RELAY_STR_MAX];
    char mqtt_group[RELAY_STR_MAX];
    char mqtt_client_id[RELAY_STR_MAX];
    char mqtt_username[RELAY_STR_MAX];
    char mqtt_password[RELAY_STR_MAX];
    char mqtt_password_file[RELAY_STR_MAX];
    int mqtt_tls;             /* enum: 0 false, 1 true */
    char mqtt_tls_ca_file[RELAY_STR_MAX];
    char mqtt_tls_cert_file[RELAY_STR_MAX];
    char mqtt_tls_key_file[RELAY_STR_MAX];
    int mqtt_tls_insecure;    /* enum: 0 false, 1 true */
    int64_t mqtt_keepalive_s;
    int mqtt_receipts;        /* enum: 0 false, 1 true */
    char mqtt_receipt_topic[RELAY_STR_MAX];
    int64_t mqtt_queue_max_bytes;
    int64_t kafka_delivery_timeout_ms; /* mode = bridge: producer message.timeout.ms */
    /* [relay] */
    int source;               /* enum relay_source_kind */
    int mode;                 /* enum relay_mode */
    char metrics_listen[RELAY_STR_MAX];
    char log_level[RELAY_STR_MAX];
    int64_t retry_base_ms;
    int64_t retry_max_ms;
};

/* Fills *c with every key's default. */
void relay_config_defaults(struct relay_config *c);
/* Loads an INI file over the current values. Returns 0, or -1 with every
 * problem found ("file:line: reason", one per line) in err. */
int relay_config_load(struct relay_config *c, const char *path, char *err, size_t errcap);
/* Sets one key from text (as the INI parser does). Returns 0 or -1 with err. */
int relay_config_set(struct relay_config *c, const char *section, const char *name,
                     const char *value, char *err, size_t errcap);
/* Cross-key checks (identifiers, ranges that depend on each other). */
int relay_config_validate(const struct relay_config *c, char *err, size_t errcap);
/* Writes the CONFIGURATION section of --help (markdown = 0) or the key
 * reference of docs/relay.md (markdown = 1). */
void relay_config_describe(FILE *out, int markdown);
/* Prints the effective configuration as INI, the password masked. */
void relay_config_dump(const struct relay_config *c, FILE *out);

/* 1 when readings rows go to ClickHouse as RowBinary (wide rows are always
 * JSONEachRow: their columns are the user's). */
static inline int relay_rows_binary(const struct relay_config *c)
{
    return c->insert_format == RELAY_INSERT_ROWBINARY && c->output != RELAY_OUTPUT_WIDE;
}

/* 1 when s is a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, <= 64 bytes):
 * the only text from config that is ever placed into SQL. */
int relay_is_identifier(const char *s);

#endif
