/* schema_sql.h - every SQL statement tern-relay sends, in one place, as named
 * templates. Placeholders {db} {table} {rejected} {rollup} are replaced only
 * by identifiers that relay_is_identifier() accepted; data never goes into SQL
 * text (rows travel as RowBinary or JSONEachRow bodies). */
#ifndef TERN_RELAY_SCHEMA_SQL_H
#define TERN_RELAY_SCHEMA_SQL_H

#define SQL_CREATE_DATABASE "CREATE DATABASE IF NOT EXISTS {db}"

/* ReplacingMergeTree ordered by the reading's identity: duplicates of a
 * reading collapse at merge time, and FINAL collapses them at query time.
 * Partitioning by the reading's own month keeps every copy of a reading in
 * the same partition (ReplacingMergeTree only collapses within a partition). */
#define SQL_CREATE_READINGS_MODERN \
    "CREATE TABLE IF NOT EXISTS {db}.{table} (\n" \
    "    device_id LowCardinality(String),\n" \
    "    sensor LowCardinality(String),\n" \
    "    metric LowCardinality(String),\n" \
    "    unit LowCardinality(String),\n" \
    "    value Float64,\n" \
    "    ts DateTime64(3, 'UTC'),\n" \
    "    epoch UInt64,\n" \
    "    seq Int64,\n" \
    "    tags Map(String, String),\n" \
    "    flags UInt32,\n" \
    "    inserted_at DateTime('UTC')\n" \
    ") ENGINE = ReplacingMergeTree()\n" \
    "PARTITION BY toYYYYMM(ts)\n" \
    "ORDER BY (device_id, epoch, seq)"

/* 18.x: no DateTime64 (milliseconds in ts_ms), no Map (tags as JSON text),
 * LowCardinality only behind an experimental flag (plain String). */
#define SQL_CREATE_READINGS_OLD \
    "CREATE TABLE IF NOT EXISTS {db}.{table} (\n" \
    "    device_id String,\n" \
    "    sensor String,\n" \
    "    metric String,\n" \
    "    unit String,\n" \
    "    value Float64,\n" \
    "    ts DateTime('UTC'),\n" \
    "    ts_ms UInt16,\n" \
    "    epoch UInt64,\n" \
    "    seq Int64,\n" \
    "    tags String,\n" \
    "    flags UInt32,\n" \
    "    inserted_at DateTime('UTC')\n" \
    ") ENGINE = ReplacingMergeTree()\n" \
    "PARTITION BY toYYYYMM(ts)\n" \
    "ORDER BY (device_id, epoch, seq)"

/* Rejected messages are idempotent too: a replayed message rejects into the
 * same (src, src_topic, src_partition, src_offset, item) key. */
#define SQL_CREATE_REJECTED \
    "CREATE TABLE IF NOT EXISTS {db}.{rejected} (\n" \
    "    received_at DateTime('UTC'),\n" \
    "    src String,\n" \
    "    src_topic String,\n" \
    "    src_partition Int32,\n" \
    "    src_offset Int64,\n" \
    "    item UInt32,\n" \
    "    reason String,\n" \
    "    payload String\n" \
    ") ENGINE = ReplacingMergeTree()\n" \
    "ORDER BY (src, src_topic, src_partition, src_offset, item)"

/* The rollup is a view over FINAL: it is computed from the deduplicated
 * readings at query time, so a duplicate insert can never inflate a count
 * (see docs/delivery.md for why not a materialized view). */
#define SQL_CREATE_ROLLUP \
    "CREATE VIEW IF NOT EXISTS {db}.{rollup} AS\n" \
    "SELECT toStartOfMinute(ts) AS minute, device_id, sensor, metric,\n" \
    "       min(value) AS min_value, max(value) AS max_value,\n" \
    "       avg(value) AS avg_value, count() AS readings\n" \
    "FROM {db}.{table} FINAL\n" \
    "GROUP BY minute, device_id, sensor, metric"

#define SQL_INSERT_READINGS "INSERT INTO {db}.{table} FORMAT JSONEachRow"
/* RowBinary names its columns: the body's layout (relay/rows.c) must not
 * depend on the order the table happens to have. */
#define SQL_INSERT_READINGS_BIN_MODERN \
    "INSERT INTO {db}.{table} (device_id, sensor, metric, unit, value, ts, epoch, seq, tags, flags, " \
    "inserted_at) FORMAT RowBinary"
#define SQL_INSERT_READINGS_BIN_OLD \
    "INSERT INTO {db}.{table} (device_id, sensor, metric, unit, value, ts, ts_ms, epoch, seq, tags, " \
    "flags, inserted_at) FORMAT RowBinary"
#define SQL_INSERT_REJECTED "INSERT INTO {db}.{rejected} FORMAT JSONEachRow"
#define SQL_INSERT_WIDE "INSERT INTO {db}.{wide} FORMAT JSONEachRow"

/* Feature detection. */
#define SQL_VERSION "SELECT version() FORMAT TabSeparated"
#define SQL_SETTINGS \
    "SELECT name FROM system.settings WHERE name IN ('insert_deduplication_token', " \
    "'allow_experimental_low_cardinality_type', 'allow_experimental_map_type', " \
    "'input_format_defaults_for_omitted_fields') FORMAT TabSeparated"
#define SQL_TYPE_FAMILIES \
    "SELECT name FROM system.data_type_families WHERE name IN ('DateTime64', " \
    "'LowCardinality', 'Map') FORMAT TabSeparated"
#define SQL_MERGE_TREE_SETTINGS \
    "SELECT name FROM system.merge_tree_settings WHERE name = " \
    "'non_replicated_deduplication_window' FORMAT TabSeparated"
#define SQL_TABLE_COLUMNS \
    "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = '{table}' " \
    "FORMAT TabSeparated"
#define SQL_WIDE_COLUMNS \
    "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = '{wide}' " \
    "FORMAT TabSeparated"

#define SQL_WIDE_ENGINE \
    "SELECT engine FROM system.tables WHERE database = '{db}' AND name = '{wide}' FORMAT TabSeparated"

#endif
