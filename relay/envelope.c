/* envelope.c - see envelope.h. */
#include "envelope.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

/* Refuse absurd inputs before parsing so a hostile message cannot make
 * jansson build a huge tree. */
#define ENVELOPE_INPUT_MAX 65536

uint64_t envelope_hash64(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

int envelope_spec_init(struct envelope_spec *s, const struct relay_config *c, char *err, size_t errcap)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id_field, sizeof(s->id_field), "%s", c->env_id_field);
    snprintf(s->ts_field, sizeof(s->ts_field), "%s", c->env_ts_field);
    snprintf(s->value_field, sizeof(s->value_field), "%s", c->env_value_field);
    snprintf(s->device_field, sizeof(s->device_field), "%s", c->env_device_field);
    if (tern_copy_field(s->sensor, sizeof(s->sensor), c->env_sensor) != 0) {
        snprintf(err, errcap, "envelope.sensor: longer than %d bytes", TERN_ID_MAX - 1);
        return -1;
    }
    s->dedup = c->env_dedup;
    const char *p = c->env_metrics;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ",");
        char item[RELAY_LIST_MAX];
        snprintf(item, sizeof(item), "%.*s", (int)len, p);
        p += len;
        size_t il = strlen(item);
        while (il > 0 && item[il - 1] == ' ')
            item[--il] = '\0';
        if (s->nmetrics == ENVELOPE_METRICS_MAX) {
            snprintf(err, errcap, "envelope.metrics: more than %d metrics", ENVELOPE_METRICS_MAX);
            return -1;
        }
        char *colon = strchr(item, ':');
        if (colon)
            *colon = '\0';
        if (!item[0] || tern_copy_field(s->metric[s->nmetrics], TERN_ID_MAX, item) != 0 ||
            (colon && tern_copy_field(s->unit[s->nmetrics], TERN_UNIT_MAX, colon + 1) != 0)) {
            snprintf(err, errcap, "envelope.metrics: bad item '%s' (want name[:unit])", item);
            return -1;
        }
        s->nmetrics++;
    }
    return 0;
}

static int fail(char *err, size_t errcap, const char *what, const char *field)
{
    snprintf(err, errcap, "%s '%s'", what, field);
    return -1;
}

/* Text of a string or integer JSON value into dst. */
static int scalar_text(json_t *v, char *dst, size_t cap)
{
    if (json_is_string(v)) {
        if (json_string_length(v) == 0 || json_string_length(v) >= cap)
            return -1;
        memcpy(dst, json_string_value(v), json_string_length(v) + 1);
        return strlen(dst) == json_string_length(v) ? 0 : -1; /* no embedded NUL */
    }
    if (json_is_integer(v)) {
        snprintf(dst, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    }
    return -1;
}

static int get_ts(json_t *v, int64_t *ts_ms)
{
    if (json_is_string(v))
        return tern_wire_parse_ts(json_string_value(v), ts_ms);
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!isfinite(d) || d < 0 || d > 253402300799999.0)
            return -1;
        /* Seconds unless it is too large to be seconds in this era. */
        *ts_ms = d < 1e11 ? (int64_t)llround(d * 1000.0) : (int64_t)llround(d);
        return 0;
    }
    return -1;
}

static int add_reading(const struct envelope_spec *s, struct tern_reading *out, size_t max, size_t *n,
                       const char *device, const char *metric, const char *unit, double value,
                       int64_t ts_ms, uint64_t epoch, int64_t seq, char *err, size_t errcap)
{
    if (*n >= max) {
        snprintf(err, errcap, "more than %zu measurements", max);
        return -1;
    }
    struct tern_reading *r = &out[*n];
    memset(r, 0, sizeof(*r));
    if (tern_copy_field(r->metric, sizeof(r->metric), metric) != 0)
        return fail(err, errcap, "metric name too long:", metric);
    memcpy(r->device_id, device, strlen(device) + 1);
    memcpy(r->sensor, s->sensor, strlen(s->sensor) + 1);
    (void)tern_copy_field(r->unit, sizeof(r->unit), unit);
    r->value = value;
    r->ts_ms = ts_ms;
    r->epoch = epoch;
    r->seq = seq;
    (*n)++;
    return 0;
}

int envelope_map(const struct envelope_spec *s, const char *msg, size_t len,
                 const struct envelope_pos *pos, struct tern_reading *out, size_t max, size_t *n,
                 char *err, size_t errcap)
{
    return envelope_map_meta(s, msg, len, pos, out, max, n, NULL, err, errcap);
}

int envelope_map_meta(const struct envelope_spec *s, const char *msg, size_t len,
                      const struct envelope_pos *pos, struct tern_reading *out, size_t max, size_t *n,
                      struct envelope_meta *meta, char *err, size_t errcap)
{
    json_t *root = NULL;
    json_error_t jerr;
    char device[TERN_ID_MAX];
    char id[256];
    int rc = -1;
    *n = 0;
    if (len > ENVELOPE_INPUT_MAX) {
        snprintf(err, errcap, "message larger than %d bytes", ENVELOPE_INPUT_MAX);
        return -1;
    }
    root = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errcap, "bad JSON: %s", jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errcap, "not a JSON object");
        goto out;
    }
    json_t *value = json_object_get(root, s->value_field);
    if (!value) {
        fail(err, errcap, "missing field", s->value_field);
        goto out;
    }
    if (!json_is_object(value)) {
        fail(err, errcap, "not an object: field", s->value_field);
        goto out;
    }
    json_t *dv = json_object_get(value, s->device_field);
    if (!dv)
        dv = json_object_get(root, s->device_field);
    if (!dv) {
        fail(err, errcap, "missing field", s->device_field);
        goto out;
    }
    if (scalar_text(dv, device, sizeof(device)) != 0) {
        fail(err, errcap, "not a non-empty string of < 64 bytes: field", s->device_field);
        goto out;
    }
    json_t *tv = json_object_get(root, s->ts_field);
    if (!tv) {
        fail(err, errcap, "missing field", s->ts_field);
        goto out;
    }
    int64_t ts_ms = 0;
    if (get_ts(tv, &ts_ms) != 0) {
        fail(err, errcap, "not an RFC 3339 time or Unix seconds: field", s->ts_field);
        goto out;
    }

    /* Identity. dedup = id: epoch from the id alone, so the same envelope
     * published twice (even to another partition) is the same reading.
     * dedup = offset: epoch from the topic and partition, seq from the
     * offset, 64 measurements per message at most. */
    uint64_t epoch;
    int64_t seq_base;
    if (s->dedup == RELAY_DEDUP_ID) {
        json_t *iv = json_object_get(root, s->id_field);
        if (!iv) {
            fail(err, errcap, "missing field", s->id_field);
            goto out;
        }
        if (scalar_text(iv, id, sizeof(id)) != 0) {
            fail(err, errcap, "not a non-empty string or integer: field", s->id_field);
            goto out;
        }
        epoch = envelope_hash64(id, strlen(id), envelope_hash64("tern-envelope-id", 16, ENVELOPE_FNV_OFFSET));
        seq_base = 0;
    } else {
        if (!pos || !pos->topic || pos->offset < 0) {
            snprintf(err, errcap, "dedup = offset needs a source position");
            goto out;
        }
        char where[320];
        int wl = snprintf(where, sizeof(where), "%s/%" PRId32, pos->topic, pos->partition);
        epoch = envelope_hash64(where, (size_t)wl, envelope_hash64("tern-envelope-pos", 17, ENVELOPE_FNV_OFFSET));
        seq_base = pos->offset * 64;
    }

    if (s->nmetrics > 0) {
        for (size_t i = 0; i < s->nmetrics; i++) {
            json_t *mv = json_object_get(value, s->metric[i]);
            if (!mv || json_is_null(mv))
                continue; /* this sensor did not report it this time */
            if (!json_is_number(mv)) {
                fail(err, errcap, "not a number: field", s->metric[i]);
                goto out;
            }
            if (add_reading(s, out, max, n, device, s->metric[i], s->unit[i], json_number_value(mv), ts_ms,
                            epoch, seq_base + (int64_t)i + 1, err, errcap) != 0)
                goto out;
        }
    } else {
        const char *key;
        json_t *mv;
        int64_t idx = 0;
        /* jansson keeps insertion order, so a re-delivered (byte-identical)
         * envelope numbers its measurements the same way. */
        json_object_foreach(value, key, mv) {
            if (strcmp(key, s->device_field) == 0 || !json_is_number(mv))
                continue;
            if (idx >= 63) {
                snprintf(err, errcap, "more than 63 measurements");
                goto out;
            }
            if (add_reading(s, out, max, n, device, key, "", json_number_value(mv), ts_ms, epoch,
                            seq_base + ++idx, err, errcap) != 0)
                goto out;
        }
    }
    if (*n == 0) {
        snprintf(err, errcap, "no numeric measurement in '%s'", s->value_field);
        goto out;
    }
    if (meta) {
        memset(meta, 0, sizeof(*meta));
        json_t *iv = json_object_get(root, s->id_field);
        if (iv && scalar_text(iv, meta->id, sizeof(meta->id)) == 0)
            meta->id_is_int = json_is_integer(iv);
        else
            meta->id[0] = '\0';
        meta->ts_ms = ts_ms;
        memcpy(meta->device, device, strlen(device) + 1);
    }
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        *n = 0;
    return rc;
}
