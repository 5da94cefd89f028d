/* sink_ch.h - the ClickHouse sink: inserts a batch's readings and rejected
 * messages, isolates refused rows by bisection, and says whether the batch is
 * durable (then the source may acknowledge it) or must be retried. */
#ifndef TERN_RELAY_SINK_CH_H
#define TERN_RELAY_SINK_CH_H

#include <stddef.h>

#include "batch.h"
#include "config.h"
#include "metrics.h"
#include "schema.h"
#include "wide.h"

struct ch_sink;

/* Returns a sink owned by the caller (ch_sink_close) or NULL with err. */
struct ch_sink *ch_sink_open(const struct relay_config *c, struct relay_metrics *m, char *err, size_t errcap);
void ch_sink_close(struct ch_sink *s);

/* Detects the server's features and logs the capability report. apply: also
 * create the schema (init). Returns 0 or -1 with err (server unreachable...). */
int ch_sink_prepare(struct ch_sink *s, int apply, char *err, size_t errcap);
const struct ch_caps *ch_sink_caps(const struct ch_sink *s);
/* The adopted wide table's column map (output.mode = wide), else NULL. */
const struct wide_map *ch_sink_wide(const struct ch_sink *s);
/* 1 when readings rows must be RowBinary (decided by ch_sink_prepare from
 * the config and the table's column types), 0 for JSONEachRow. */
int ch_sink_binary(const struct ch_sink *s);

/* Writes the batch. Returns 0 when every row of it is in ClickHouse (readings
 * or rejected); -1 when it must be retried later (err says why; class says
 * whether it is transient or needs an operator). Progress is kept in the
 * batch, so a retry does not repeat what already landed. src_name labels
 * rejected rows ("kafka"). */
int ch_sink_write(struct ch_sink *s, struct batch *b, const char *src_name, int *fatal, char *err, size_t errcap);

#endif
