/* wide.h - adopting an existing "wide" table: one row per envelope with a
 * column per measurement, e.g. sensor_metrics(message_id, event_time,
 * sensor_id, temperature, humidity, pressure). [output] wide_columns maps
 * each column to a source: id, timestamp, device or metric:NAME. Column
 * types come from system.columns, so values are written the way each
 * column parses them. */
#ifndef TERN_RELAY_WIDE_H
#define TERN_RELAY_WIDE_H

#include <stddef.h>

#include "buf.h"
#include "envelope.h"
#include "reading.h"

#define WIDE_COLUMNS_MAX 32

enum wide_source { WIDE_ID = 0, WIDE_TIMESTAMP, WIDE_DEVICE, WIDE_METRIC };
enum wide_type { WIDE_T_UNKNOWN = 0, WIDE_T_STRING, WIDE_T_DATETIME, WIDE_T_DATETIME64, WIDE_T_NUMBER };

struct wide_column {
    char name[65];
    int source;                 /* enum wide_source */
    char metric[TERN_ID_MAX];   /* for WIDE_METRIC */
    int type;                   /* enum wide_type, from system.columns */
};

struct wide_map {
    struct wide_column col[WIDE_COLUMNS_MAX];
    size_t n;
    int uses_id;
};

/* Parses "col=source,..." Returns 0 or -1 with err. */
int wide_map_parse(struct wide_map *w, const char *spec, char *err, size_t errcap);
/* Records a column's ClickHouse type (a system.columns row). */
void wide_map_bind(struct wide_map *w, const char *name, const char *type);
/* Every mapped column exists with a usable type. Returns 0 or -1 with err. */
int wide_map_check(const struct wide_map *w, char *err, size_t errcap);
/* Appends one JSONEachRow line for an envelope. Metrics the message lacks
 * are left out (the column's default applies). */
void wide_encode(struct relay_buf *b, const struct wide_map *w, const struct envelope_meta *meta,
                 const struct tern_reading *r, size_t n);

#endif
