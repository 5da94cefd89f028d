/* sink_ch.c - see sink_ch.h. */
#include "sink_ch.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bisect.h"
#include "ch_client.h"
#include "ch_error.h"
#include "clock.h"
#include "envelope.h"
#include "log.h"
#include "rows.h"
#include "schema_sql.h"

struct ch_sink {
    const struct relay_config *c;
    struct relay_metrics *m;
    struct ch_client *ch;
    struct ch_caps caps;
    int use_token;
    int binary;           /* readings rows go as RowBinary */
    int wide;
    struct wide_map wmap;
    char sql_rows[512];
    char sql_rejects[512];
};

struct ch_sink *ch_sink_open(const struct relay_config *c, struct relay_metrics *m, char *err, size_t errcap)
{
    struct ch_sink *s = tern_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    s->c = c;
    s->m = m;
    struct ch_client_conf cc = {
        .url = c->ch_url,
        .user = c->ch_user,
        .password = c->ch_password,
        .auth_headers = c->auth == RELAY_AUTH_HEADERS,
        .gzip = c->compression == RELAY_COMPRESS_GZIP,
        .timeout_ms = (long)c->ch_timeout_ms,
    };
    s->ch = ch_client_open(&cc, err, errcap);
    if (!s->ch)
        goto fail;
    s->wide = c->output == RELAY_OUTPUT_WIDE;
    if (s->wide && wide_map_parse(&s->wmap, c->wide_columns, err, errcap) != 0)
        goto fail;
    /* sql_rows is set by ch_sink_prepare: RowBinary's columns depend on the mode. */
    if (schema_expand(SQL_INSERT_REJECTED, c, s->sql_rejects, sizeof(s->sql_rejects)) != 0) {
        snprintf(err, errcap, "insert statement too long");
        goto fail;
    }
    return s;
fail:
    ch_sink_close(s);
    return NULL;
}

void ch_sink_close(struct ch_sink *s)
{
    if (!s)
        return;
    ch_client_close(s->ch);
    tern_free(s);
}

const struct ch_caps *ch_sink_caps(const struct ch_sink *s) { return &s->caps; }

const struct wide_map *ch_sink_wide(const struct ch_sink *s) { return s->wide ? &s->wmap : NULL; }

int ch_sink_binary(const struct ch_sink *s) { return s->binary; }

/* Reads the adopted table's columns and engine. */
static int prepare_wide(struct ch_sink *s, char *err, size_t errcap)
{
    char sql[1024];
    struct ch_result res;
    if (schema_expand(SQL_WIDE_COLUMNS, s->c, sql, sizeof(sql)) != 0 ||
        ch_client_query(s->ch, sql, NULL, NULL, 0, &res) != 0) {
        snprintf(err, errcap, "system.columns: %s", res.message);
        return -1;
    }
    char *copy = tern_malloc(res.len + 1);
    if (!copy) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    memcpy(copy, res.body, res.len);
    copy[res.len] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            wide_map_bind(&s->wmap, line, tab + 1);
        }
    }
    tern_free(copy);
    if (wide_map_check(&s->wmap, err, errcap) != 0)
        return -1;
    if (schema_expand(SQL_WIDE_ENGINE, s->c, sql, sizeof(sql)) == 0 &&
        ch_client_query(s->ch, sql, NULL, NULL, 0, &res) == 0) {
        if (!memmem(res.body, res.len, "ReplacingMergeTree", 18))
            TERN_WARN("wide table %s.%s is %.*s, not a ReplacingMergeTree keyed by the message id: re-delivered "
                      "envelopes will show twice in queries (see docs/relay.md)",
                      s->c->ch_database, s->c->wide_table, (int)strcspn(res.body, "\n"), res.body);
    }
    TERN_INFO("output: wide table %s.%s, %zu mapped columns", s->c->ch_database, s->c->wide_table, s->wmap.n);
    return 0;
}

int ch_sink_prepare(struct ch_sink *s, int apply, char *err, size_t errcap)
{
    if (schema_detect(s->ch, s->c, &s->caps, err, errcap) != 0)
        return -1;
    schema_log_report(&s->caps);
    s->use_token = s->caps.modern && s->caps.dedup_token && s->caps.dedup_window;
    s->binary = relay_rows_binary(s->c) && s->caps.rowbinary_ok;
    if (relay_rows_binary(s->c) && !s->binary)
        TERN_WARN("table %s.%s has columns of other types than Tern's %s schema: inserting JSONEachRow, not "
                  "RowBinary", s->c->ch_database, s->c->ch_table, s->caps.modern ? "modern" : "old");
    if (!s->wide)
        TERN_INFO("readings rows go as %s", s->binary ? "RowBinary" : "JSONEachRow");
    const char *ins = s->wide ? SQL_INSERT_WIDE
                      : !s->binary ? SQL_INSERT_READINGS
                      : s->caps.modern ? SQL_INSERT_READINGS_BIN_MODERN
                                       : SQL_INSERT_READINGS_BIN_OLD;
    if (schema_expand(ins, s->c, s->sql_rows, sizeof(s->sql_rows)) != 0) {
        snprintf(err, errcap, "insert statement too long");
        return -1;
    }
    if (apply && schema_apply(s->ch, s->c, &s->caps, err, errcap) != 0)
        return -1;
    if (s->wide && prepare_wide(s, err, errcap) != 0)
        return -1;
    return 0;
}

/* One insert request. Returns BISECT_OK / BISECT_CONTENT / BISECT_TRANSIENT,
 * and for the last two the reason; *fatal set for operator-class errors. */
static int insert_body(struct ch_sink *s, const char *sql, const char *body, size_t len, char *reason,
                       size_t cap, int *fatal)
{
    struct ch_result res;
    char settings[128] = "";
    if (s->use_token) {
        /* Same rows -> same token: a retried insert that had in fact landed
         * is dropped by the server instead of stored twice. */
        uint64_t h = envelope_hash64(body, len, ENVELOPE_FNV_OFFSET);
        snprintf(settings, sizeof(settings), "insert_deduplication_token=tern-%016" PRIx64 "-%zu", h, len);
    }
    int rc = ch_client_query(s->ch, sql, settings, body, len, &res);
    relay_metrics_insert_seconds(s->m, res.seconds);
    if (rc == 0)
        return BISECT_OK;
    relay_metrics_ch_error(s->m, res.code);
    enum ch_error_class cls = ch_classify(res.http_status, res.code);
    if (res.code)
        snprintf(reason, cap, "Code %d: %s", res.code, res.message);
    else if (res.http_status)
        snprintf(reason, cap, "HTTP %ld: %s", res.http_status, res.message);
    else
        snprintf(reason, cap, "%s", res.message);
    if (cls == CH_ERR_CONTENT)
        return BISECT_CONTENT;
    if (cls == CH_ERR_FATAL)
        *fatal = 1;
    return BISECT_TRANSIENT;
}

struct bisect_ctx {
    struct ch_sink *s;
    struct batch *b;
    const char *src_name;
    int *fatal;
    size_t rejected;
};

static int bisect_insert(void *user, size_t lo, size_t hi, char *reason, size_t cap)
{
    struct bisect_ctx *x = user;
    const struct batch *b = x->b;
    size_t off = b->row[lo].off;
    size_t end = hi < b->nrows ? b->row[hi].off : b->rows.len;
    return insert_body(x->s, x->s->sql_rows, b->rows.p + off, end - off, reason, cap, x->fatal);
}

static int bisect_reject(void *user, size_t row, const char *reason)
{
    struct bisect_ctx *x = user;
    struct batch *b = x->b;
    const struct relay_pos *pos = &b->msgs[b->row[row].msg];
    char why[600];
    snprintf(why, sizeof(why), "clickhouse refused the row: %s", reason);
    size_t len = batch_row_len(b, row);
    const char *payload = b->rows.p + b->row[row].off;
    struct relay_buf text = {0};
    if (b->binary) {
        /* The row as JSON text, not RowBinary bytes, for whoever reads it. */
        if (rows_bin_to_json(payload, len, b->modern, &text) == 0 && !buf_failed(&text)) {
            payload = text.p;
            len = text.len;
        } else {
            len++; /* the raw bytes, all of them (no newline to drop) */
        }
    }
    struct relay_reject rj = {
        .source = x->src_name,
        .topic = pos->topic,
        .partition = pos->partition,
        .offset = pos->offset,
        .item = b->row[row].item,
        .reason = why,
        .payload = payload,
        .len = len > 0 ? len - 1 : 0, /* without the newline */
    };
    int rc = batch_add_reject(b, &rj, tern_utc_ms() / 1000);
    buf_free(&text);
    if (rc != 0)
        return -1;
    x->rejected++;
    return 0;
}

int ch_sink_write(struct ch_sink *s, struct batch *b, const char *src_name, int *fatal, char *err, size_t errcap)
{
    char reason[512];
    *fatal = 0;
    if (!b->rows_done && b->nrows > 0) {
        /* In the table's key order, ClickHouse need not sort the block. If
         * this fails (out of memory) the rows go as they are. */
        (void)batch_sort(b);
        int rc = insert_body(s, s->sql_rows, b->rows.p, b->rows.len, reason, sizeof(reason), fatal);
        size_t rejected = 0;
        if (rc == BISECT_TRANSIENT) {
            snprintf(err, errcap, "insert into %s: %s", s->wide ? s->c->wide_table : s->c->ch_table, reason);
            return -1;
        }
        if (rc == BISECT_CONTENT) {
            size_t mark_len = b->rejects.len, mark_n = b->nrejects, requests = 0;
            struct bisect_ctx x = {s, b, src_name, fatal, 0};
            relay_metrics_add(s->m, M_BISECTS, 1);
            TERN_WARN("clickhouse refused a batch of %zu rows (%s); bisecting", b->nrows, reason);
            if (bisect_resolve(0, b->nrows, reason, bisect_insert, bisect_reject, &x, &requests) != 0) {
                /* Undo this attempt's rejects: the retry bisects again. */
                b->rejects.len = mark_len;
                b->nrejects = mark_n;
                snprintf(err, errcap, "bisecting a refused batch: interrupted after %zu requests", requests);
                return -1;
            }
            rejected = x.rejected;
            TERN_WARN("bisect: %zu bad row(s) of %zu isolated with %zu requests", rejected, b->nrows, requests);
        }
        b->rows_done = 1;
        relay_metrics_add(s->m, M_INSERTED, b->nrows - rejected);
        relay_metrics_add(s->m, M_REJECTED, rejected);
        /* End-to-end latency: from each reading's own time to now. */
        if (b->nrows > 0)
            relay_metrics_e2e_ms_many(s->m, tern_utc_ms(), &b->row[0].ts_ms, b->nrows, sizeof(b->row[0]));
    }
    if (!b->rejects_done && b->nrejects > 0) {
        int rc = insert_body(s, s->sql_rejects, b->rejects.p, b->rejects.len, reason, sizeof(reason), fatal);
        if (rc == BISECT_TRANSIENT) {
            snprintf(err, errcap, "insert into %s: %s", s->c->ch_rejected_table, reason);
            return -1;
        }
        if (rc == BISECT_CONTENT) {
            /* Our own escaping makes this unreachable in practice; never let
             * it block the good rows. */
            TERN_ERROR("clickhouse refused %zu rejected-message rows (%s); dropping them", b->nrejects, reason);
        }
        b->rejects_done = 1;
    }
    return 0;
}
