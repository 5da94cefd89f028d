/* rows.h - how readings and rejected messages are written for ClickHouse, in
 * the two schema modes (see schema.h). Readings go as RowBinary (the default:
 * ClickHouse parses it for a fraction of the CPU JSON costs, and nothing needs
 * escaping) or as JSONEachRow lines; rejected messages always as JSONEachRow.
 * Every row carries every column: 18.x fills omitted JSONEachRow fields with
 * the type's zero, not the column DEFAULT, and RowBinary has no way to omit
 * one. */
#ifndef TERN_RELAY_ROWS_H
#define TERN_RELAY_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "reading.h"

struct relay_reject {
    const char *source;     /* "kafka", "mqtt" */
    const char *topic;
    int32_t partition;      /* -1 when the source has none */
    int64_t offset;         /* -1 when the source has none */
    uint32_t item;          /* line or reading within the message, 0-based */
    const char *reason;
    const void *payload;    /* raw bytes as received; truncated to 64 KiB */
    size_t len;
};

/* Appends one readings-table line (with '\n'). modern: DateTime64 ts, Map tags;
 * old: DateTime ts + ts_ms UInt16, tags as JSON text. now_s: insertion time
 * (UTC seconds) for inserted_at. */
void rows_encode_reading(struct relay_buf *b, const struct tern_reading *r, int modern, int64_t now_s);
/* RowBinary: the columns of SQL_INSERT_READINGS_BIN_MODERN / _OLD
 * (schema_sql.h), in that order,
 * little-endian, strings as LEB128 length + bytes. Modern: ts DateTime64(3)
 * (Int64 ms), tags Map(String, String); old: ts DateTime (UInt32 s, mapped as
 * 18.16 maps out-of-range text, see rows.c) + ts_ms UInt16, tags String.
 * Returns 0, or -1 (nothing appended) when the tags text is not a JSON object
 * of strings, which the wire decoder never produces. */
int rows_encode_reading_bin(struct relay_buf *b, const struct tern_reading *r, int modern, int64_t now_s);
/* Renders one RowBinary row (len bytes, as rows_encode_reading_bin wrote it)
 * as the JSONEachRow line of the same row (with '\n'), for humans: the payload
 * of a row ClickHouse refused. Returns 0, or -1 when the bytes are not a row. */
int rows_bin_to_json(const void *row, size_t len, int modern, struct relay_buf *out);

/* Appends one rejected-table line (with '\n'). */
void rows_encode_rejected(struct relay_buf *b, const struct relay_reject *rj, int64_t now_s);

/* "YYYY-MM-DD hh:mm:ss" of UTC seconds into buf (>= 64 bytes). */
void rows_format_datetime(int64_t s, char buf[64]);

#endif
