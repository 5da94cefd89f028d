/* rows.c - see rows.h. */
#include "rows.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
