/* schema.h - ClickHouse feature detection and the DDL of Tern's tables in the
 * two schema modes: modern (DateTime64(3), LowCardinality, Map, insert
 * deduplication tokens) and old (what 18.16 has). */
#ifndef TERN_RELAY_SCHEMA_H
#define TERN_RELAY_SCHEMA_H

#include <stddef.h>

#include "ch_client.h"
#include "config.h"

struct ch_caps {
    char version[64];
    int major, minor;
    int datetime64, low_cardinality, map;
    int dedup_token;       /* insert_deduplication_token setting exists */
    int dedup_window;      /* non_replicated_deduplication_window exists */
    int table_exists;      /* the readings table already exists */
    int table_modern;      /* ...and its ts column is DateTime64 */
    int modern;            /* the mode the relay will use */
    unsigned bin_modern, bin_old; /* existing columns typed as RowBinary rows of that mode expect */
    int rowbinary_ok;      /* RowBinary rows fit the table (or it does not exist yet) */
};

#define SCHEMA_STMT_MAX 4096
#define SCHEMA_NSTMT 4

/* Replaces {db} {table} {rejected} {rollup} {wide} in tmpl with the config's
 * identifiers. Returns 0, or -1 when the result does not fit in cap. */
int schema_expand(const char *tmpl, const struct relay_config *c, char *out, size_t cap);

/* The DDL, in order, for one mode. dedup_window adds the table setting that
 * makes insert_deduplication_token work on a non-replicated table. */
int schema_statements(const struct relay_config *c, int modern, int dedup_window,
                      char out[SCHEMA_NSTMT][SCHEMA_STMT_MAX], size_t *n);

/* Asks the server what it supports and what exists (SELECT version(),
 * system.settings, system.data_type_families, system.columns) and picks the
 * mode: config schema_mode if not auto; else the existing table's mode; else
 * modern when DateTime64, LowCardinality and Map are all there.
 * Returns 0, or -1 with err when the server cannot be asked. */
int schema_detect(struct ch_client *ch, const struct relay_config *c, struct ch_caps *caps,
                  char *err, size_t errcap);

/* Logs the capability report (one INFO line per finding). */
void schema_log_report(const struct ch_caps *caps);

/* Applies the DDL idempotently. Returns 0 or -1 with err. */
int schema_apply(struct ch_client *ch, const struct relay_config *c, const struct ch_caps *caps,
                 char *err, size_t errcap);

#endif
