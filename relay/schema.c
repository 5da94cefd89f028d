/* schema.c - see schema.h. */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "schema_sql.h"

int schema_expand(const char *tmpl, const struct relay_config *c, char *out, size_t cap)
{
    static const struct { const char *ph; size_t off; } subs[] = {
        {"{db}", offsetof(struct relay_config, ch_database)},
        {"{table}", offsetof(struct relay_config, ch_table)},
        {"{rejected}", offsetof(struct relay_config, ch_rejected_table)},
        {"{rollup}", offsetof(struct relay_config, ch_rollup_view)},
        {"{wide}", offsetof(struct relay_config, wide_table)},
    };
    size_t o = 0;
    const char *p = tmpl;
    while (*p) {
        const char *rep = NULL;
        size_t phl = 0;
        if (*p == '{') {
            for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
                size_t l = strlen(subs[i].ph);
                if (strncmp(p, subs[i].ph, l) == 0) {
                    rep = (const char *)c + subs[i].off;
                    phl = l;
                    break;
                }
            }
        }
        if (rep) {
            size_t rl = strlen(rep);
            if (o + rl >= cap)
                return -1;
            memcpy(out + o, rep, rl);
            o += rl;
            p += phl;
        } else {
            if (o + 1 >= cap)
                return -1;
            out[o++] = *p++;
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return 0;
}

int schema_statements(const struct relay_config *c, int modern, int dedup_window,
                      char out[SCHEMA_NSTMT][SCHEMA_STMT_MAX], size_t *n)
{
    char tmpl[SCHEMA_STMT_MAX];
    *n = 0;
    if (schema_expand(SQL_CREATE_DATABASE, c, out[(*n)++], SCHEMA_STMT_MAX) != 0)
        return -1;
    snprintf(tmpl, sizeof(tmpl), "%s%s", modern ? SQL_CREATE_READINGS_MODERN : SQL_CREATE_READINGS_OLD,
             (modern && dedup_window) ? "\nSETTINGS non_replicated_deduplication_window = 1000" : "");
    if (schema_expand(tmpl, c, out[(*n)++], SCHEMA_STMT_MAX) != 0)
        return -1;
    if (schema_expand(SQL_CREATE_REJECTED, c, out[(*n)++], SCHEMA_STMT_MAX) != 0)
        return -1;
    if (schema_expand(SQL_CREATE_ROLLUP, c, out[(*n)++], SCHEMA_STMT_MAX) != 0)
        return -1;
    return 0;
}

/* Runs a TabSeparated query and calls fn for each line. Returns 0 or -1. */
static int each_line(struct ch_client *ch, const char *sql, void (*fn)(void *, char *), void *user,
                     struct ch_result *res)
{
    if (ch_client_query(ch, sql, NULL, NULL, 0, res) != 0)
        return -1;
    char *copy = tern_malloc(res->len + 1);
    if (!copy)
        return -1;
    memcpy(copy, res->body, res->len);
    copy[res->len] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        fn(user, line);
    tern_free(copy);
    return 0;
}

static void on_setting(void *user, char *line)
{
    struct ch_caps *caps = user;
    if (strcmp(line, "insert_deduplication_token") == 0)
        caps->dedup_token = 1;
}

static void on_family(void *user, char *line)
{
    struct ch_caps *caps = user;
    if (strcmp(line, "DateTime64") == 0)
        caps->datetime64 = 1;
    else if (strcmp(line, "LowCardinality") == 0)
        caps->low_cardinality = 1;
    else if (strcmp(line, "Map") == 0)
        caps->map = 1;
}

static void on_mts(void *user, char *line)
{
    struct ch_caps *caps = user;
    if (strcmp(line, "non_replicated_deduplication_window") == 0)
        caps->dedup_window = 1;
}

/* What RowBinary rows (relay/rows.c) carry, column by column: a table whose
 * columns have other types would read the bytes as something else, so the
 * relay then sends JSONEachRow, which the server converts or refuses. */
enum col_kind { K_STR, K_F64, K_DT64, K_DT, K_U16, K_U32, K_U64, K_I64, K_MAP, K_NONE };
static const struct {
    const char *name;
    enum col_kind modern, old;
} bin_cols[] = {
    {"device_id", K_STR, K_STR}, {"sensor", K_STR, K_STR}, {"metric", K_STR, K_STR}, {"unit", K_STR, K_STR},
    {"value", K_F64, K_F64},     {"ts", K_DT64, K_DT},    {"ts_ms", K_NONE, K_U16},  {"epoch", K_U64, K_U64},
    {"seq", K_I64, K_I64},       {"tags", K_MAP, K_STR},  {"flags", K_U32, K_U32},   {"inserted_at", K_DT, K_DT},
};
#define BIN_COLS (sizeof(bin_cols) / sizeof(bin_cols[0]))

static int type_is(const char *t, enum col_kind k)
{
    switch (k) {
    case K_STR: return strcmp(t, "String") == 0 || strcmp(t, "LowCardinality(String)") == 0;
    case K_F64: return strcmp(t, "Float64") == 0;
    case K_DT64: return strncmp(t, "DateTime64(3", 12) == 0 && (t[12] == ')' || t[12] == ',');
    case K_DT: return strcmp(t, "DateTime") == 0 || strncmp(t, "DateTime(", 9) == 0;
    case K_U16: return strcmp(t, "UInt16") == 0;
    case K_U32: return strcmp(t, "UInt32") == 0;
    case K_U64: return strcmp(t, "UInt64") == 0;
    case K_I64: return strcmp(t, "Int64") == 0;
    case K_MAP: return strcmp(t, "Map(String, String)") == 0;
    default: return 0;
    }
}

static void on_column(void *user, char *line)
{
    struct ch_caps *caps = user;
    caps->table_exists = 1;
    if (strncmp(line, "ts\t", 3) == 0 && strstr(line + 3, "DateTime64"))
        caps->table_modern = 1;
    char *tab = strchr(line, '\t');
    if (!tab)
        return;
    *tab = '\0';
    for (size_t i = 0; i < BIN_COLS; i++) {
        if (strcmp(line, bin_cols[i].name) != 0)
            continue;
        if (type_is(tab + 1, bin_cols[i].modern))
            caps->bin_modern |= 1u << i;
        if (type_is(tab + 1, bin_cols[i].old))
            caps->bin_old |= 1u << i;
    }
}

static unsigned bin_needed(int modern)
{
    unsigned m = 0;
    for (size_t i = 0; i < BIN_COLS; i++)
        if ((modern ? bin_cols[i].modern : bin_cols[i].old) != K_NONE)
            m |= 1u << i;
    return m;
}

int schema_detect(struct ch_client *ch, const struct relay_config *c, struct ch_caps *caps,
                  char *err, size_t errcap)
{
    struct ch_result res;
    char sql[1024];
    memset(caps, 0, sizeof(*caps));
    if (ch_client_query(ch, SQL_VERSION, NULL, NULL, 0, &res) != 0) {
        snprintf(err, errcap, "SELECT version(): %s", res.message);
        return -1;
    }
    snprintf(caps->version, sizeof(caps->version), "%.*s", (int)strcspn(res.body, "\r\n"), res.body);
    sscanf(caps->version, "%d.%d", &caps->major, &caps->minor);
    if (each_line(ch, SQL_SETTINGS, on_setting, caps, &res) != 0) {
        snprintf(err, errcap, "system.settings: %s", res.message);
        return -1;
    }
    /* These system tables are newer than 18.16: their absence means "no". */
    (void)each_line(ch, SQL_TYPE_FAMILIES, on_family, caps, &res);
    (void)each_line(ch, SQL_MERGE_TREE_SETTINGS, on_mts, caps, &res);
    if (schema_expand(SQL_TABLE_COLUMNS, c, sql, sizeof(sql)) != 0 ||
        each_line(ch, sql, on_column, caps, &res) != 0) {
        snprintf(err, errcap, "system.columns: %s", res.message);
        return -1;
    }
    int server_modern = caps->datetime64 && caps->low_cardinality && caps->map;
    if (c->schema_mode == RELAY_SCHEMA_MODERN)
        caps->modern = 1;
    else if (c->schema_mode == RELAY_SCHEMA_OLD)
        caps->modern = 0;
    else if (caps->table_exists)
        caps->modern = caps->table_modern;
    else
        caps->modern = server_modern;
    unsigned need = bin_needed(caps->modern);
    caps->rowbinary_ok = !caps->table_exists || ((caps->modern ? caps->bin_modern : caps->bin_old) & need) == need;
    return 0;
}

void schema_log_report(const struct ch_caps *caps)
{
    TERN_INFO("clickhouse %s: DateTime64 %s, LowCardinality %s, Map %s, insert_deduplication_token %s, "
              "non_replicated_deduplication_window %s",
              caps->version, caps->datetime64 ? "yes" : "no", caps->low_cardinality ? "yes" : "no",
              caps->map ? "yes" : "no", caps->dedup_token ? "yes" : "no", caps->dedup_window ? "yes" : "no");
    TERN_INFO("schema mode %s%s: %s", caps->modern ? "modern" : "old",
              caps->table_exists ? " (from the existing table)" : "",
              caps->modern ? "ts DateTime64(3), tags Map, LowCardinality strings"
                           : "ts DateTime + ts_ms, tags as JSON text, plain String");
    TERN_INFO("exactly-once: ReplacingMergeTree on (device_id, epoch, seq), query with FINAL; "
              "insert dedup tokens %s",
              (caps->modern && caps->dedup_token && caps->dedup_window) ? "on (fewer physical duplicates)"
                                                                       : "off (not supported by this server)");
}

int schema_apply(struct ch_client *ch, const struct relay_config *c, const struct ch_caps *caps,
                 char *err, size_t errcap)
{
    char stmts[SCHEMA_NSTMT][SCHEMA_STMT_MAX];
    size_t n = 0;
    struct ch_result res;
    if (schema_statements(c, caps->modern, caps->dedup_window, stmts, &n) != 0) {
        snprintf(err, errcap, "DDL does not fit its buffer");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ch_client_query(ch, stmts[i], NULL, NULL, 0, &res) != 0) {
            snprintf(err, errcap, "%.*s...: %s", 40, stmts[i], res.message);
            return -1;
        }
    }
    return 0;
}
