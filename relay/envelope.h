/* envelope.h - maps the JSON envelope common in existing sensor pipelines,
 *   {"id":"...","timestamp":"...","value":{"sensor_id":"s1","temperature":23.5,...}}
 * to Tern readings, one per measurement, with a stable identity so that a
 * re-delivered envelope deduplicates (docs/delivery.md, "Envelopes"). */
#ifndef TERN_RELAY_ENVELOPE_H
#define TERN_RELAY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

#define ENVELOPE_METRICS_MAX 32

struct envelope_spec {
    char id_field[RELAY_STR_MAX];
    char ts_field[RELAY_STR_MAX];
    char value_field[RELAY_STR_MAX];
    char device_field[RELAY_STR_MAX];
    char sensor[TERN_ID_MAX];
    int dedup;                       /* enum relay_dedup_key */
    size_t nmetrics;                 /* 0 = every numeric field */
    char metric[ENVELOPE_METRICS_MAX][TERN_ID_MAX];
    char unit[ENVELOPE_METRICS_MAX][TERN_UNIT_MAX];
};

/* Where the message came from (for dedup = offset). topic may be NULL. */
struct envelope_pos {
    const char *topic;
    int32_t partition;
    int64_t offset;
};

/* Builds the spec from config. Returns 0 or -1 with err (bad metrics list). */
int envelope_spec_init(struct envelope_spec *s, const struct relay_config *c, char *err, size_t errcap);

/* Maps one message (len bytes of JSON) to up to max readings in out, *n set.
 * Returns 0, or -1 with a one-line reason (the whole message is rejected:
 * bad JSON, missing field, wrong type, no measurement). */
int envelope_map(const struct envelope_spec *s, const char *msg, size_t len,
                 const struct envelope_pos *pos, struct tern_reading *out, size_t max, size_t *n,
                 char *err, size_t errcap);

/* What envelope_map_meta reports besides the readings (for wide tables). */
struct envelope_meta {
    char id[256];        /* the id field as text, "" when absent */
    int id_is_int;       /* it was a JSON integer */
    int64_t ts_ms;
    char device[TERN_ID_MAX];
};

/* envelope_map, also filling *meta (may be NULL). */
int envelope_map_meta(const struct envelope_spec *s, const char *msg, size_t len,
                      const struct envelope_pos *pos, struct tern_reading *out, size_t max, size_t *n,
                      struct envelope_meta *meta, char *err, size_t errcap);

/* 64-bit FNV-1a: the envelope epoch is a hash of its id. */
uint64_t envelope_hash64(const void *data, size_t len, uint64_t h);
#define ENVELOPE_FNV_OFFSET UINT64_C(0xcbf29ce484222325)

#endif
