/* wire.c - the v1 JSON-lines codec (docs/wire-format.md).
 *
 * The encoder is hand-written and allocation-free because the agent runs it
 * for every reading it uplinks; the decoder uses jansson because it faces the
 * network and must be strict and robust rather than fast. */
#include "wire.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 3339 has four-digit years: 0000-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z. */
#define TS_MIN_MS INT64_C(-62167219200000)
#define TS_MAX_MS INT64_C(253402300799999)
#define MS_PER_DAY INT64_C(86400000)

/* A decoder input is one line; bigger inputs are refused before parsing so a
 * hostile message cannot make jansson build a huge tree. The slack over
 * TERN_WIRE_LINE_MAX leaves room for fields that later versions may add. */
#define DECODE_INPUT_MAX (16 * TERN_WIRE_LINE_MAX)

/* ---- calendar ---------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date, using 400-year eras
 * that start on March 1st so the leap day is the last day of the year
 * (H. Hinnant's "chrono-compatible low-level date algorithms"). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                 /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;         /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

/* "00" .. "99": two digits per division in the encoder's hot paths. */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* v (< 100) as two digits. */
static void put_2digits(char *p, unsigned v) { memcpy(p, digit_pairs + 2 * v, 2); }

void tern_wire_format_ts(int64_t ts_ms, char buf[25])
{
    /* Out-of-range instants cannot be written with four-digit years; clamp
     * rather than overflow buf. Real clocks never get there. */
    if (ts_ms < TS_MIN_MS)
        ts_ms = TS_MIN_MS;
    if (ts_ms > TS_MAX_MS)
        ts_ms = TS_MAX_MS;
    int64_t days = ts_ms / MS_PER_DAY;
    int64_t rem = ts_ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned ms = (unsigned)rem;
    unsigned sec = ms / 1000u, frac = ms % 1000u;
    put_2digits(buf, (unsigned)y / 100u);
    put_2digits(buf + 2, (unsigned)y % 100u);
    buf[4] = '-';
    put_2digits(buf + 5, (unsigned)m);
    buf[7] = '-';
    put_2digits(buf + 8, (unsigned)d);
    buf[10] = 'T';
    put_2digits(buf + 11, sec / 3600u);
    buf[13] = ':';
    put_2digits(buf + 14, sec / 60u % 60u);
    buf[16] = ':';
    put_2digits(buf + 17, sec % 60u);
    buf[19] = '.';
    buf[20] = (char)('0' + frac / 100u);
    put_2digits(buf + 21, frac % 100u);
    buf[23] = 'Z';
    buf[24] = '\0';
}

/* Reads exactly n decimal digits at *p, advancing it. */
static int take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int take_char(const char **p, char a, char b)
{
    if (**p != a && **p != b)
        return -1;
    (*p)++;
    return 0;
}

int tern_wire_parse_ts(const char *s, int64_t *ts_ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, ms = 0;
    if (take_digits(&p, 4, &y) || take_char(&p, '-', '-') || take_digits(&p, 2, &mo) ||
        take_char(&p, '-', '-') || take_digits(&p, 2, &d) || take_char(&p, 'T', 't') ||
        take_digits(&p, 2, &h) || take_char(&p, ':', ':') || take_digits(&p, 2, &mi) ||
        take_char(&p, ':', ':') || take_digits(&p, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            /* Sub-millisecond digits are truncated: ts has ms resolution. */
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n < 1 || n > 9)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (take_digits(&p, 2, &oh) || take_char(&p, ':', ':') || take_digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    /* A leap second cannot be told apart in Unix time; keep it inside its
     * minute, as the last millisecond, so ordering is preserved. */
    if (sec == 60) {
        sec = 59;
        ms = 999;
    }
    int64_t t = days_from_civil(y, mo, d) * MS_PER_DAY +
                ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms -
                (int64_t)offset_min * 60000;
    if (t < TS_MIN_MS || t > TS_MAX_MS)
        return -1;
    *ts_ms = t;
    return 0;
}

/* ---- encoder ----------------------------------------------------------- */

/* Writes the escape sequence of byte c (one that must not appear raw in a
 * JSON string: '"', '\\' or a control character) into esc; returns its length. */
static size_t escape_byte(unsigned char c, char esc[6])
{
    static const char hex[] = "0123456789abcdef";
    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        return 2;
    }
    memcpy(esc, "\\u00", 4);
    esc[4] = hex[c >> 4];
    esc[5] = hex[c & 15];
    return 6;
}

/* Output cursor with snprintf semantics: len counts every byte that would be
 * written, only the first cap - 1 land in buf. Used for tags, whose source
 * text (a decoded line) has no fixed bound. */
struct out {
    char *buf;
    size_t cap;
    size_t len;
};

static void put_bytes(struct out *o, const char *s, size_t n)
{
    size_t room = o->cap ? o->cap - 1 : 0;
    if (o->len < room) {
        size_t k = room - o->len < n ? room - o->len : n;
        memcpy(o->buf + o->len, s, k);
    }
    o->len += n;
}

#define PUT_LIT(o, lit) put_bytes((o), (lit), sizeof(lit) - 1)

static void put_string(struct out *o, const char *s)
{
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue; /* UTF-8 and printable ASCII pass through */
        put_bytes(o, run, (size_t)(p - run));
        run = p + 1;
        char esc[6];
        put_bytes(o, esc, escape_byte(c, esc));
    }
    put_bytes(o, run, strlen(run));
}

static void put_quoted(struct out *o, const char *s)
{
    PUT_LIT(o, "\"");
    put_string(o, s);
    PUT_LIT(o, "\"");
}

/* The reading encoder writes through a plain pointer into a buffer that has
 * room for any reading: each field is bounded by its array in struct
 * tern_reading, so it needs no room check per piece. (Those checks, a memcpy
 * call per piece and a byte loop per id cost ~1 500 of the encoder's ~3 200
 * instructions per reading in bench agent-kafka; it now takes ~1 200, of
 * which ~400 are the value's text.) ENCODE_MAX is that bound: keys and
 * punctuation, three ids and the unit with every byte escaped to \u00XX,
 * tags as they are, the longest value, ts, epoch, seq and flags. */
#define ENCODE_MAX                                                                     \
    (128 + 3 * (6 * (TERN_ID_MAX - 1)) + 6 * (TERN_UNIT_MAX - 1) + (TERN_TAGS_MAX - 1) + \
     TERN_WIRE_VALUE_MAX + 24 + 16 + 20 + 10)

#define LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* The bytes of w (8 bytes of a string, in memory order) that must not be
 * copied as they are (a control character, NUL included, '"' or '\\'), as
 * the high bit of each such byte. The lowest set bit marks the first one
 * exactly; bits above it may be wrong (borrows), which is never used. Each
 * term is the "has a byte below n" bit trick (n <= 128: UTF-8 never matches). */
static uint64_t special8(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = ones << 7;
    uint64_t q = w ^ ones * '"', b = w ^ ones * '\\';
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
}

/* Writes "s" escaped; s is read up to its NUL or max bytes, whichever comes
 * first. Returns the end. May write up to 7 bytes of scratch past the end
 * (ENCODE_MAX has room: more fields always follow). */
static char *put_quoted_field(char *p, const char *s, size_t max)
{
    *p++ = '"';
    size_t i = 0;
    for (;;) {
        unsigned char c;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Eight bytes at a time, within the field: plain runs are copied
         * whole, and the first special byte is found without a byte loop
         * (ids are short: most end inside their first eight bytes). */
        if (i + 8 <= max) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            memcpy(p, &w, 8);
            uint64_t sp = special8(w);
            if (sp == 0) {
                p += 8;
                i += 8;
                continue;
            }
            unsigned plain = (unsigned)__builtin_ctzll(sp) / 8;
            p += plain;
            i += plain;
            c = (unsigned char)s[i];
        } else
#endif
        {
            if (i == max)
                break;
            c = (unsigned char)s[i];
            if (c >= 0x20 && c != '"' && c != '\\') {
                *p++ = (char)c; /* UTF-8 and printable ASCII pass through */
                i++;
                continue;
            }
        }
        if (c == 0)
            break;
        char esc[6];
        size_t n = escape_byte(c, esc);
        memcpy(p, esc, n);
        p += n;
        i++;
    }
    *p++ = '"';
    return p;
}

static char *put_uint(char *p, uint64_t v)
{
    char tmp[20];
    char *t = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100);
        v /= 100;
        t -= 2;
        memcpy(t, digit_pairs + 2 * d, 2);
    }
    if (v >= 10) {
        t -= 2;
        memcpy(t, digit_pairs + 2 * v, 2);
    } else {
        *--t = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof tmp - t);
    memcpy(p, t, n);
    return p + n;
}

static char *put_int(char *p, int64_t v)
{
    if (v >= 0)
        return put_uint(p, (uint64_t)v);
    *p++ = '-';
    return put_uint(p, (uint64_t)0 - (uint64_t)v);
}

static char *put_hex64(char *p, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        p[i] = hex[v & 15];
        v >>= 4;
    }
    return p + 16;
}

static char *encode(const struct tern_reading *r, char *p)
{
    p = LIT(p, "{\"v\":1,\"device_id\":");
    p = put_quoted_field(p, r->device_id, sizeof r->device_id);
    p = LIT(p, ",\"sensor\":");
    p = put_quoted_field(p, r->sensor, sizeof r->sensor);
    p = LIT(p, ",\"metric\":");
    p = put_quoted_field(p, r->metric, sizeof r->metric);
    p = LIT(p, ",\"value\":");
    p += tern_wire_format_value(r->value, p);
    if (r->unit[0]) {
        p = LIT(p, ",\"unit\":");
        p = put_quoted_field(p, r->unit, sizeof r->unit);
    }
    p = LIT(p, ",\"ts\":\"");
    tern_wire_format_ts(r->ts_ms, p); /* its NUL is overwritten next */
    p += 24;
    p = LIT(p, "\",\"epoch\":\"");
    p = put_hex64(p, r->epoch);
    p = LIT(p, "\",\"seq\":");
    p = put_int(p, r->seq);
    if (r->tags[0]) {
        /* Already compact JSON (reading.h); pasted as is. */
        p = LIT(p, ",\"tags\":");
        size_t n = strnlen(r->tags, sizeof r->tags - 1);
        memcpy(p, r->tags, n);
        p += n;
    }
    if (r->flags) {
        p = LIT(p, ",\"flags\":");
        p = put_uint(p, r->flags);
    }
    *p++ = '}';
    return p;
}

size_t tern_wire_encode(const struct tern_reading *r, char *buf, size_t cap)
{
    /* Straight into buf when it has room for any reading (MQTT batches),
     * else through tmp and cut to cap (snprintf semantics). */
    if (cap > ENCODE_MAX) {
        size_t len = (size_t)(encode(r, buf) - buf);
        buf[len] = '\0';
        return len;
    }
    char tmp[ENCODE_MAX];
    size_t len = (size_t)(encode(r, tmp) - tmp);
    if (cap > 0) {
        size_t k = len < cap ? len : cap - 1;
        memcpy(buf, tmp, k);
        buf[k] = '\0';
    }
    return len;
}

/* ---- decoder ----------------------------------------------------------- */

static int fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Identifiers and units: non-empty unless optional, no control characters
 * (they have no business in an id and would break the line-length bound). */
static int get_text(json_t *root, const char *key, int required, char *dst, size_t cap,
                    char *err, size_t errcap)
{
    json_t *j = json_object_get(root, key);
    if (!j) {
        if (required)
            return fail(err, errcap, "missing field '%s'", key);
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(j))
        return fail(err, errcap, "field '%s' must be a string", key);
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (required && n == 0)
        return fail(err, errcap, "field '%s' must not be empty", key);
    if (n >= cap)
        return fail(err, errcap, "field '%s' is %zu bytes, longer than %zu", key, n, cap - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return fail(err, errcap, "field '%s' must not contain control characters", key);
    }
    memcpy(dst, s, n + 1);
    return 0;
}

/* The shortest tag entry, "":"" plus a comma, is 6 bytes: more pairs than
 * this cannot fit in a reading's tags field. */
#define TAGS_MAX_PAIRS (TERN_TAGS_MAX / 6 + 1)

struct tag_pair {
    const char *key, *value;
};

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct tag_pair *)a)->key, ((const struct tag_pair *)b)->key);
}

/* Sorts pairs in place and writes the canonical text. Returns the length it
 * needs (>= cap: did not fit), or (size_t)-1 for a repeated key. */
static size_t write_tags(struct tag_pair *pairs, size_t n, char *out, size_t cap)
{
    qsort(pairs, n, sizeof pairs[0], cmp_tag);
    struct out o = { .buf = out, .cap = cap, .len = 0 };
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(pairs[i - 1].key, pairs[i].key) == 0)
            return (size_t)-1;
        if (i)
            PUT_LIT(&o, ",");
        else
            PUT_LIT(&o, "{");
        put_quoted(&o, pairs[i].key);
        PUT_LIT(&o, ":");
        put_quoted(&o, pairs[i].value);
    }
    PUT_LIT(&o, "}");
    return o.len;
}

int tern_wire_tags(const char *const keys[], const char *const values[], size_t n, char *out,
                   size_t cap)
{
    struct tag_pair pairs[TAGS_MAX_PAIRS];
    if (cap == 0)
        return -1;
    out[0] = '\0';
    if (n == 0)
        return 0;
    if (n > TAGS_MAX_PAIRS)
        return -1;
    for (size_t i = 0; i < n; i++)
        pairs[i] = (struct tag_pair){ .key = keys[i], .value = values[i] };
    size_t len = write_tags(pairs, n, out, cap);
    if (len >= cap) { /* also the repeated-key case */
        out[0] = '\0';
        return -1;
    }
    out[len] = '\0';
    return 0;
}

/* Tags are stored in canonical form so that equal tag sets compare equal as
 * text downstream, and decode(encode(r)) == r. */
static int get_tags(json_t *root, char *dst, size_t cap, char *err, size_t errcap)
{
    struct tag_pair pairs[TAGS_MAX_PAIRS];
    size_t n = 0;

    json_t *j = json_object_get(root, "tags");
    dst[0] = '\0';
    if (!j)
        return 0;
    if (!json_is_object(j))
        return fail(err, errcap, "field 'tags' must be an object of strings");
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val) {
        if (!json_is_string(val))
            return fail(err, errcap, "field 'tags' must be an object of strings");
        if (n == TAGS_MAX_PAIRS)
            return fail(err, errcap, "field 'tags' is longer than %zu bytes as compact JSON",
                        cap - 1);
        pairs[n++] = (struct tag_pair){ .key = key, .value = json_string_value(val) };
    }
    if (n == 0)
        return 0; /* {} and no tags are the same thing; encode omits both */
    /* JSON_REJECT_DUPLICATES already refused repeated keys. */
    size_t len = write_tags(pairs, n, dst, cap);
    if (len >= cap) {
        dst[0] = '\0';
        return fail(err, errcap, "field 'tags' is %zu bytes as compact JSON, longer than %zu",
                    len, cap - 1);
    }
    dst[len] = '\0';
    return 0;
}

static int decode_root(json_t *root, struct tern_reading *r, char *err, size_t errcap)
{
    if (!json_is_object(root))
        return fail(err, errcap, "line is not a JSON object");

    json_t *v = json_object_get(root, "v");
    if (!v)
        return fail(err, errcap, "missing field 'v'");
    if (!json_is_integer(v))
        return fail(err, errcap, "field 'v' must be an integer");
    if (json_integer_value(v) != TERN_WIRE_VERSION)
        return fail(err, errcap, "unsupported wire version %" JSON_INTEGER_FORMAT,
                    json_integer_value(v));

    if (get_text(root, "device_id", 1, r->device_id, sizeof r->device_id, err, errcap) ||
        get_text(root, "sensor", 1, r->sensor, sizeof r->sensor, err, errcap) ||
        get_text(root, "metric", 1, r->metric, sizeof r->metric, err, errcap) ||
        get_text(root, "unit", 0, r->unit, sizeof r->unit, err, errcap))
        return -1;

    json_t *val = json_object_get(root, "value");
    if (!val)
        return fail(err, errcap, "missing field 'value'");
    if (!json_is_number(val))
        return fail(err, errcap, "field 'value' must be a finite number");
    r->value = json_number_value(val);
    if (!isfinite(r->value)) /* jansson already refuses overflow; belt and braces */
        return fail(err, errcap, "field 'value' must be a finite number");

    json_t *ts = json_object_get(root, "ts");
    if (!ts)
        return fail(err, errcap, "missing field 'ts'");
    if (!json_is_string(ts) || tern_wire_parse_ts(json_string_value(ts), &r->ts_ms))
        return fail(err, errcap,
                    "field 'ts' must be an RFC 3339 timestamp like 2026-11-25T11:38:05.123Z");

    json_t *ep = json_object_get(root, "epoch");
    if (!ep)
        return fail(err, errcap, "missing field 'epoch'");
    const char *es = json_is_string(ep) ? json_string_value(ep) : NULL;
    if (!es || json_string_length(ep) != 16 || strspn(es, "0123456789abcdef") != 16)
        return fail(err, errcap, "field 'epoch' must be 16 lowercase hex digits");
    r->epoch = 0;
    for (int i = 0; i < 16; i++)
        r->epoch = r->epoch << 4 | (uint64_t)(es[i] <= '9' ? es[i] - '0' : es[i] - 'a' + 10);

    json_t *seq = json_object_get(root, "seq");
    if (!seq)
        return fail(err, errcap, "missing field 'seq'");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        return fail(err, errcap, "field 'seq' must be an integer >= 1");
    r->seq = json_integer_value(seq);

    if (get_tags(root, r->tags, sizeof r->tags, err, errcap))
        return -1;

    json_t *fl = json_object_get(root, "flags");
    r->flags = 0;
    if (fl) {
        if (!json_is_integer(fl) || json_integer_value(fl) < 0 ||
            json_integer_value(fl) > (json_int_t)UINT32_MAX)
            return fail(err, errcap, "field 'flags' must be an integer in 0..4294967295");
        /* Unknown bits are kept: a newer agent's flags reach the store intact. */
        r->flags = (uint32_t)json_integer_value(fl);
    }
    /* Any other field is ignored: later versions may add optional fields. */
    return 0;
}

int tern_wire_decode(const char *line, size_t len, struct tern_reading *out, char *err,
                     size_t errcap)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0)
        return fail(err, errcap, "empty line");
    if (len > DECODE_INPUT_MAX)
        return fail(err, errcap, "line is %zu bytes, longer than %d", len, DECODE_INPUT_MAX);
    if (memchr(line, '\n', len))
        return fail(err, errcap, "line contains a newline (pass one line of a batch at a time)");

    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return fail(err, errcap, "invalid JSON at byte %d: %s", jerr.position, jerr.text);

    /* Decode into a scratch copy so *out is untouched on failure. */
    struct tern_reading r;
    memset(&r, 0, sizeof r);
    int rc = decode_root(root, &r, err, errcap);
    json_decref(root);
    if (rc == 0)
        *out = r;
    return rc;
}
