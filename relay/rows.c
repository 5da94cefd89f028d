/* rows.c - see rows.h. */
#include "rows.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wire.h"

#define REJECT_PAYLOAD_MAX 65536

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void rows_format_datetime(int64_t s, char buf[64])
{
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, 64, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void put_u64(struct relay_buf *b, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof(tmp) - (size_t)i);
}

static void put_i64(struct relay_buf *b, int64_t v)
{
    if (v < 0) {
        buf_append(b, "-", 1);
        put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(b, (uint64_t)v);
    }
}

/* Integral values skip printf. So do values with at most 6 decimals: if
 * c / 10^k == v for the integer c = round(v * 10^k), then "c with k
 * decimals" reads back as v, because both the division and strtod round
 * the same exact rational c / 10^k correctly. Others print with 17
 * significant digits, which always read back as the same double. */
static void put_double(struct relay_buf *b, double v)
{
    static const double p10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        put_i64(b, (int64_t)v);
        return;
    }
    if (fabs(v) < 1e9) {
        for (int k = 1; k <= 6; k++) {
            double c = nearbyint(v * p10[k]);
            if (c / p10[k] != v)
                continue;
            int64_t ci = (int64_t)c;
            uint64_t mag = ci < 0 ? (uint64_t)0 - (uint64_t)ci : (uint64_t)ci;
            char tmp[40];
            int i = (int)sizeof(tmp);
            for (int d = 0; d < k; d++) {
                tmp[--i] = (char)('0' + mag % 10);
                mag /= 10;
            }
            tmp[--i] = '.';
            do {
                tmp[--i] = (char)('0' + mag % 10);
                mag /= 10;
            } while (mag);
            if (v < 0)
                tmp[--i] = '-';
            buf_append(b, tmp + i, sizeof(tmp) - (size_t)i);
            return;
        }
    }
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',')
            tmp[i] = '.'; /* whatever LC_NUMERIC says */
    buf_append(b, tmp, (size_t)n);
}

/* Rows of one batch share few distinct seconds: remember the last two
 * formatted (the reading's and the insertion time). */
struct dt_cache {
    int64_t sec;
    int valid;
    char text[64];
};

static const char *cached_datetime(struct dt_cache *c, int64_t s)
{
    if (!c->valid || c->sec != s) {
        rows_format_datetime(s, c->text);
        c->sec = s;
        c->valid = 1;
    }
    return c->text;
}

#define PUTL(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

void rows_encode_reading(struct relay_buf *b, const struct tern_reading *r, int modern, int64_t now_s)
{
    static _Thread_local struct dt_cache ts_cache, ins_cache;
    int64_t sec = floor_div(r->ts_ms, 1000);
    int ms = (int)(r->ts_ms - sec * 1000);
    char msbuf[4] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 0};
    PUTL(b, "{\"device_id\":");
    buf_json_string(b, r->device_id, strlen(r->device_id));
    PUTL(b, ",\"sensor\":");
    buf_json_string(b, r->sensor, strlen(r->sensor));
    PUTL(b, ",\"metric\":");
    buf_json_string(b, r->metric, strlen(r->metric));
    PUTL(b, ",\"unit\":");
    buf_json_string(b, r->unit, strlen(r->unit));
    PUTL(b, ",\"value\":");
    put_double(b, r->value);
    PUTL(b, ",\"ts\":\"");
    buf_puts(b, cached_datetime(&ts_cache, sec));
    if (modern) {
        PUTL(b, ".");
        buf_append(b, msbuf, 3);
        PUTL(b, "\"");
    } else {
        PUTL(b, "\",\"ts_ms\":");
        put_i64(b, ms);
    }
    PUTL(b, ",\"epoch\":");
    put_u64(b, r->epoch);
    PUTL(b, ",\"seq\":");
    put_i64(b, r->seq);
    PUTL(b, ",\"tags\":");
    if (modern)
        buf_puts(b, r->tags[0] ? r->tags : "{}");
    else
        buf_json_string(b, r->tags, strlen(r->tags));
    PUTL(b, ",\"flags\":");
    put_u64(b, r->flags);
    PUTL(b, ",\"inserted_at\":\"");
    buf_puts(b, cached_datetime(&ins_cache, now_s));
    PUTL(b, "\"}\n");
}

/* ---- RowBinary ------------------------------------------------------------ */

/* 18.16's DateTime text parser maps a date outside its date table
 * (1970-01-01 .. 2105-12-31) to day 0 with the same time of day. RowBinary is
 * not parsed, so the encoder applies the same mapping: a reading gets the same
 * ts, and so the same partition (ReplacingMergeTree collapses copies only
 * within one), whether it was inserted as JSONEachRow or RowBinary. */
#define OLD_DATETIME_MAX INT64_C(4291747199) /* 2105-12-31 23:59:59 */

static uint32_t old_datetime(int64_t sec)
{
    if (sec >= 0 && sec <= OLD_DATETIME_MAX)
        return (uint32_t)sec;
    return (uint32_t)(sec - floor_div(sec, 86400) * 86400);
}

static char *put_le(char *o, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        o[i] = (char)(v >> (8 * i));
    return o + n;
}

static char *put_varint(char *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (char)(v | 0x80);
        v >>= 7;
    }
    *o++ = (char)v;
    return o;
}

static char *put_str(char *o, const char *s, size_t n)
{
    o = put_varint(o, n);
    memcpy(o, s, n);
    return o + n;
}

/* Tags text -> Map(String, String): the pair count, then key, value, ... The
 * decoder's canonical tags without a backslash are cut at their quotes (an
 * unescaped string cannot hold one); escaped ones go through jansson. Writes
 * at most strlen(tags) + 8 bytes; returns the end, or NULL when the text is
 * not an object of strings. */
static char *put_tags_map(char *o, const char *tags)
{
    size_t tl = strlen(tags);
    if (tl == 0 || strcmp(tags, "{}") == 0)
        return put_varint(o, 0);
    if (!memchr(tags, '\\', tl)) {
        const char *q[2 * TERN_TAGS_MAX];
        size_t nq = 0;
        for (const char *p = tags; (p = strchr(p, '"')) != NULL; p++)
            q[nq++] = p;
        /* {"k":"v","k2":"v2"}: 4 quotes a pair, joined by ':' and ','. */
        if (nq == 0 || nq % 4 != 0 || tags[0] != '{' || q[0] != tags + 1 || tags[tl - 1] != '}' ||
            q[nq - 1] != tags + tl - 2)
            return NULL;
        for (size_t i = 0; i + 1 < nq; i++) {
            char sep = i % 4 == 1 ? ':' : ',';
            if (i % 2 == 1 && (q[i + 1] != q[i] + 2 || q[i][1] != sep))
                return NULL;
        }
        o = put_varint(o, nq / 4);
        for (size_t i = 0; i < nq; i += 2)
            o = put_str(o, q[i] + 1, (size_t)(q[i + 1] - q[i] - 1));
        return o;
    }
    json_t *j = json_loadb(tags, tl, JSON_ALLOW_NUL, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val) {
        if (!json_is_string(val)) {
            json_decref(j);
            return NULL;
        }
    }
    o = put_varint(o, json_object_size(j));
    json_object_foreach(j, key, val) {
        o = put_str(o, key, strlen(key));
        o = put_str(o, json_string_value(val), json_string_length(val));
    }
    json_decref(j);
    return o;
}

/* A NUL-terminated string shorter than 128 bytes (one length byte), copied
 * while its length is found: no strlen call per field. */
static char *put_short_str(char *o, const char *s)
{
    char *d = o + 1;
    while (*s)
        *d++ = *s++;
    *o = (char)(d - o - 1);
    return d;
}

int rows_encode_reading_bin(struct relay_buf *b, const struct tern_reading *r, int modern, int64_t now_s)
{
    /* Every field is bounded by struct tern_reading: strings < 256 bytes
     * (2-byte length), the Map no longer than the tags text + 8. */
    size_t need = 3 * TERN_ID_MAX + TERN_UNIT_MAX + TERN_TAGS_MAX + 4 * 2 + 16 + 64;
    char *o = buf_reserve(b, need);
    if (!o)
        return 0; /* sticky failure: the caller checks buf_failed */
    char *start = o;
    _Static_assert(TERN_ID_MAX <= 128 && TERN_UNIT_MAX <= 128, "one length byte");
    o = put_short_str(o, r->device_id);
    o = put_short_str(o, r->sensor);
    o = put_short_str(o, r->metric);
    o = put_short_str(o, r->unit);
    uint64_t bits;
    memcpy(&bits, &r->value, sizeof(bits));
    o = put_le(o, bits, 8);
    if (modern) {
        o = put_le(o, (uint64_t)r->ts_ms, 8);
    } else {
        int64_t sec = floor_div(r->ts_ms, 1000);
        o = put_le(o, old_datetime(sec), 4);
        o = put_le(o, (uint64_t)(r->ts_ms - sec * 1000), 2);
    }
    o = put_le(o, r->epoch, 8);
    o = put_le(o, (uint64_t)r->seq, 8);
    if (modern) {
        o = put_tags_map(o, r->tags);
        if (!o)
            return -1;
    } else {
        o = put_str(o, r->tags, strlen(r->tags));
    }
    o = put_le(o, r->flags, 4);
    o = put_le(o, old_datetime(now_s), 4);
    buf_commit(b, (size_t)(o - start));
    return 0;
}

struct rd {
    const unsigned char *p, *end;
};

static int get_le(struct rd *d, int n, uint64_t *v)
{
    if (d->end - d->p < n)
        return -1;
    *v = 0;
    for (int i = 0; i < n; i++)
        *v |= (uint64_t)d->p[i] << (8 * i);
    d->p += n;
    return 0;
}

/* A string into dst (cap incl. NUL); no embedded NULs. */
static int get_str(struct rd *d, char *dst, size_t cap)
{
    uint64_t n = 0;
    for (int shift = 0;; shift += 7) {
        if (d->p >= d->end || shift > 56)
            return -1;
        unsigned char c = *d->p++;
        n |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    if (n >= cap || (uint64_t)(d->end - d->p) < n || memchr(d->p, 0, (size_t)n))
        return -1;
    memcpy(dst, d->p, (size_t)n);
    dst[n] = '\0';
    d->p += n;
    return 0;
}

int rows_bin_to_json(const void *row, size_t len, int modern, struct relay_buf *out)
{
    struct rd d = {row, (const unsigned char *)row + len};
    struct tern_reading r;
    uint64_t v, ms = 0, ins;
    memset(&r, 0, sizeof(r));
    if (get_str(&d, r.device_id, sizeof(r.device_id)) || get_str(&d, r.sensor, sizeof(r.sensor)) ||
        get_str(&d, r.metric, sizeof(r.metric)) || get_str(&d, r.unit, sizeof(r.unit)) || get_le(&d, 8, &v))
        return -1;
    memcpy(&r.value, &v, sizeof(v));
    if (get_le(&d, modern ? 8 : 4, &v) || (!modern && get_le(&d, 2, &ms)))
        return -1;
    r.ts_ms = modern ? (int64_t)v : (int64_t)v * 1000 + (int64_t)ms;
    if (get_le(&d, 8, &r.epoch) || get_le(&d, 8, &v))
        return -1;
    r.seq = (int64_t)v;
    if (modern) {
        /* The pairs came from tags text shorter than TERN_TAGS_MAX, so
         * their bytes (and NULs) fit twice that; a row that needs more was
         * not written by rows_encode_reading_bin. */
        char pool[2 * TERN_TAGS_MAX];
        const char *keys[64], *values[64];
        size_t used = 0;
        uint64_t n = 0;
        if (get_le(&d, 1, &n) || n >= 64)
            return -1;
        for (uint64_t i = 0; i < n; i++) {
            keys[i] = pool + used;
            if (get_str(&d, pool + used, sizeof(pool) - used) != 0)
                return -1;
            used += strlen(pool + used) + 1;
            values[i] = pool + used;
            if (get_str(&d, pool + used, sizeof(pool) - used) != 0)
                return -1;
            used += strlen(pool + used) + 1;
        }
        if (tern_wire_tags(keys, values, (size_t)n, r.tags, sizeof(r.tags)) != 0)
            return -1;
    } else if (get_str(&d, r.tags, sizeof(r.tags))) {
        return -1;
    }
    if (get_le(&d, 4, &v) || get_le(&d, 4, &ins) || d.p != d.end)
        return -1;
    r.flags = (uint32_t)v;
    rows_encode_reading(out, &r, modern, (int64_t)ins);
    return 0;
}

void rows_encode_rejected(struct relay_buf *b, const struct relay_reject *rj, int64_t now_s)
{
    char ins[64];
    rows_format_datetime(now_s, ins);
    size_t plen = rj->len > REJECT_PAYLOAD_MAX ? REJECT_PAYLOAD_MAX : rj->len;
    buf_printf(b, "{\"received_at\":\"%s\",\"src\":", ins);
    buf_json_string(b, rj->source, strlen(rj->source));
    buf_puts(b, ",\"src_topic\":");
    buf_json_string(b, rj->topic ? rj->topic : "", rj->topic ? strlen(rj->topic) : 0);
    buf_printf(b, ",\"src_partition\":%" PRId32 ",\"src_offset\":%" PRId64 ",\"item\":%" PRIu32 ",\"reason\":",
               rj->partition, rj->offset, rj->item);
    buf_json_string(b, rj->reason, strlen(rj->reason));
    buf_puts(b, ",\"payload\":");
    buf_json_string(b, rj->payload ? rj->payload : "", rj->payload ? plen : 0);
    buf_puts(b, "}\n");
}
