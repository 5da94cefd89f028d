/* wide.c - see wide.h. */
#include "wide.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "rows.h"
#include "wire.h"

int wide_map_parse(struct wide_map *w, const char *spec, char *err, size_t errcap)
{
    memset(w, 0, sizeof(*w));
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ",");
        char item[RELAY_LIST_MAX];
        snprintf(item, sizeof(item), "%.*s", (int)len, p);
        p += len;
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(err, errcap, "output.wide_columns: '%s' is not column=source", item);
            return -1;
        }
        *eq = '\0';
        char *col = item, *src = eq + 1;
        while (*src == ' ')
            src++;
        for (char *e = col + strlen(col); e > col && e[-1] == ' ';)
            *--e = '\0';
        for (char *e = src + strlen(src); e > src && e[-1] == ' ';)
            *--e = '\0';
        if (w->n == WIDE_COLUMNS_MAX) {
            snprintf(err, errcap, "output.wide_columns: more than %d columns", WIDE_COLUMNS_MAX);
            return -1;
        }
        if (!relay_is_identifier(col)) {
            snprintf(err, errcap, "output.wide_columns: '%s' is not a plain column name", col);
            return -1;
        }
        struct wide_column *c = &w->col[w->n];
        if (tern_copy_field(c->name, sizeof c->name, col) < 0) {
            snprintf(err, errcap, "output.wide_columns: column name '%.80s' is too long", col);
            return -1;
        }
        if (strcmp(src, "id") == 0) {
            c->source = WIDE_ID;
            w->uses_id = 1;
        } else if (strcmp(src, "timestamp") == 0) {
            c->source = WIDE_TIMESTAMP;
        } else if (strcmp(src, "device") == 0) {
            c->source = WIDE_DEVICE;
        } else if (strncmp(src, "metric:", 7) == 0 && src[7] &&
                   tern_copy_field(c->metric, sizeof(c->metric), src + 7) == 0) {
            c->source = WIDE_METRIC;
        } else {
            snprintf(err, errcap, "output.wide_columns: source '%s' of %s is not id, timestamp, device or metric:NAME",
                     src, col);
            return -1;
        }
        w->n++;
    }
    if (w->n == 0) {
        snprintf(err, errcap, "output.wide_columns is empty");
        return -1;
    }
    return 0;
}

void wide_map_bind(struct wide_map *w, const char *name, const char *type)
{
    /* Nullable(X) and LowCardinality(X) parse like X in JSONEachRow. */
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->col[i].name, name) != 0)
            continue;
        if (strstr(type, "DateTime64"))
            w->col[i].type = WIDE_T_DATETIME64;
        else if (strstr(type, "DateTime"))
            w->col[i].type = WIDE_T_DATETIME;
        else if (strstr(type, "String"))
            w->col[i].type = WIDE_T_STRING;
        else if (strstr(type, "Int") || strstr(type, "Float") || strstr(type, "Decimal"))
            w->col[i].type = WIDE_T_NUMBER;
    }
}

int wide_map_check(const struct wide_map *w, char *err, size_t errcap)
{
    for (size_t i = 0; i < w->n; i++) {
        const struct wide_column *c = &w->col[i];
        if (c->type == WIDE_T_UNKNOWN) {
            snprintf(err, errcap, "wide table has no column '%s' of a String, number or DateTime type", c->name);
            return -1;
        }
        if (c->source == WIDE_METRIC && c->type != WIDE_T_NUMBER) {
            snprintf(err, errcap, "wide column '%s' holds metric %s but is not numeric", c->name, c->metric);
            return -1;
        }
    }
    return 0;
}

static void put_time(struct relay_buf *b, int type, int64_t ts_ms)
{
    char dt[64];
    int64_t sec = ts_ms >= 0 ? ts_ms / 1000 : -((-ts_ms + 999) / 1000);
    int ms = (int)(ts_ms - sec * 1000);
    rows_format_datetime(sec, dt);
    if (type == WIDE_T_DATETIME64) {
        buf_printf(b, "\"%s.%03d\"", dt, ms);
    } else if (type == WIDE_T_DATETIME) {
        buf_printf(b, "\"%s\"", dt);
    } else if (type == WIDE_T_NUMBER) {
        buf_printf(b, "%lld", (long long)ts_ms);
    } else {
        char ts[25];
        tern_wire_format_ts(ts_ms, ts);
        buf_printf(b, "\"%.24s\"", ts);
    }
}

void wide_encode(struct relay_buf *b, const struct wide_map *w, const struct envelope_meta *meta,
                 const struct tern_reading *r, size_t n)
{
    int first = 1;
    buf_puts(b, "{");
    for (size_t i = 0; i < w->n; i++) {
        const struct wide_column *c = &w->col[i];
        const struct tern_reading *m = NULL;
        if (c->source == WIDE_METRIC) {
            for (size_t k = 0; k < n && !m; k++)
                if (strcmp(r[k].metric, c->metric) == 0)
                    m = &r[k];
            if (!m)
                continue;
        }
        buf_printf(b, "%s\"%s\":", first ? "" : ",", c->name);
        first = 0;
        switch (c->source) {
        case WIDE_ID:
            if (c->type == WIDE_T_NUMBER && meta->id_is_int)
                buf_puts(b, meta->id);
            else
                buf_json_string(b, meta->id, strlen(meta->id));
            break;
        case WIDE_TIMESTAMP:
            put_time(b, c->type, meta->ts_ms);
            break;
        case WIDE_DEVICE:
            buf_json_string(b, meta->device, strlen(meta->device));
            break;
        case WIDE_METRIC:
            buf_printf(b, "%.17g", m->value);
            break;
        }
    }
    buf_puts(b, "}\n");
}
