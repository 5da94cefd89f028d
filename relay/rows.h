/* rows.h - how readings and rejected messages are written as JSONEachRow
 * lines for ClickHouse, in the two schema modes (see schema.h). Every line
 * names every column: 18.x fills omitted JSONEachRow fields with the type's
 * zero, not the column DEFAULT. */
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
/* Appends one rejected-table line (with '\n'). */
void rows_encode_rejected(struct relay_buf *b, const struct relay_reject *rj, int64_t now_s);

/* "YYYY-MM-DD hh:mm:ss" of UTC seconds into buf (>= 64 bytes). */
void rows_format_datetime(int64_t s, char buf[64]);

#endif
