/* wire_fast.c - see wire_fast.h. Every check here is a reason to decline,
 * never to reject: only tern_wire_decode rejects. */
#include "wire_fast.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

struct cur {
    const char *p;
    const char *end;
};

static int lit(struct cur *c, const char *s, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return -1;
    c->p += n;
    return 0;
}
#define LIT(c, s) lit((c), (s), sizeof(s) - 1)

/* A quoted string of printable ASCII without '"' '\\' (so no escapes and no
 * UTF-8 to validate) into dst (cap incl. NUL). Sets *n. */
/* Bytes a fast-path string may hold: printable ASCII except '"' and '\\'. */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f: '"' is 0x22 */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5f: '\\' is 0x5c */
    R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, /* 0x70-0x7f: DEL */
#undef R16
};

static int str(struct cur *c, char *dst, size_t cap, size_t *n)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    const char *s = ++c->p;
    while (c->p < c->end && plain[(unsigned char)*c->p])
        c->p++;
    size_t len = (size_t)(c->p - s);
    if (c->p >= c->end || *c->p != '"' || len >= cap)
        return -1;
    if (dst) {
        memcpy(dst, s, len);
        dst[len] = '\0';
    }
    *n = len;
    c->p++;
    return 0;
}

/* A JSON integer: -?(0|[1-9][0-9]*), at most 18 digits (always fits int64,
 * as jansson's integer does). */
static int integer(struct cur *c, int64_t *v)
{
    int neg = 0;
    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    const char *s = c->p;
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (c->p - s >= 18)
            return -1; /* may not fit: leave it to the codec */
        x = x * 10 + (*c->p++ - '0');
    }
    size_t nd = (size_t)(c->p - s);
    if (nd == 0 || nd > 18 || (nd > 1 && *s == '0'))
        return -1;
    *v = neg ? -x : x;
    return 0;
}

/* A JSON number as jansson reads it: an integer token becomes (double)int64,
 * a real token goes through strtod. */
static int number(struct cur *c, double *v)
{
    const char *s = c->p;
    const char *q = s;
    if (q < c->end && *q == '-')
        q++;
    const char *d = q;
    while (q < c->end && *q >= '0' && *q <= '9')
        q++;
    if (q == d || (q - d > 1 && *d == '0'))
        return -1;
    int real = 0;
    if (q < c->end && *q == '.') {
        real = 1;
        const char *f = ++q;
        while (q < c->end && *q >= '0' && *q <= '9')
            q++;
        if (q == f)
            return -1;
    }
    if (q < c->end && (*q == 'e' || *q == 'E')) {
        real = 1;
        q++;
        if (q < c->end && (*q == '+' || *q == '-'))
            q++;
        const char *e = q;
        while (q < c->end && *q >= '0' && *q <= '9')
            q++;
        if (q == e)
            return -1;
    }
    if (!real) {
        int64_t i;
        if (integer(c, &i) != 0)
            return -1;
        *v = (double)i;
        return 0;
    }
    /* Clinger's fast path: up to 15 significant digits and at most 22
     * decimals, no exponent: mantissa and 10^k are exact doubles, so one
     * correctly rounded division equals strtod's correctly rounded result. */
    {
        const char *t = s;
        int neg = 0, k = 0, nd = 0, frac = 0, simple = 1;
        uint64_t m = 0;
        if (*t == '-') {
            neg = 1;
            t++;
        }
        for (; t < q; t++) {
            if (*t == '.') {
                frac = 1;
                continue;
            }
            if (*t < '0' || *t > '9') {
                simple = 0;
                break;
            }
            if (nd > 0 || *t != '0')
                nd++;
            m = m * 10 + (uint64_t)(*t - '0');
            if (frac)
                k++;
            if (nd > 15) {
                simple = 0;
                break;
            }
        }
        if (simple && k <= 22) {
            static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                         1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
            double x = (double)m / p10[k];
            *v = neg ? -x : x;
            c->p = q;
            return 0;
        }
    }
    char tmp[64];
    size_t n = (size_t)(q - s);
    if (n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    double x = strtod(tmp, NULL);
    if (!isfinite(x))
        return -1;
    *v = x;
    c->p = q;
    return 0;
}

/* Tags already in canonical form: {"k":"v",...}, keys strictly ascending
 * by byte value, printable ASCII: then the codec's canonical text is the
 * input text itself. */
static int tags(struct cur *c, char *dst, size_t cap)
{
    const char *s = c->p;
    char prev[TERN_TAGS_MAX], key[TERN_TAGS_MAX];
    size_t n;
    int first = 1;
    if (LIT(c, "{") != 0)
        return -1;
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        dst[0] = '\0'; /* {} is no tags */
        return 0;
    }
    for (;;) {
        if (str(c, key, sizeof(key), &n) != 0 || LIT(c, ":") != 0 || str(c, NULL, TERN_TAGS_MAX, &n) != 0)
            return -1;
        if (!first && strcmp(prev, key) >= 0)
            return -1;
        memcpy(prev, key, strlen(key) + 1);
        first = 0;
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (LIT(c, "}") != 0)
            return -1;
        break;
    }
    size_t len = (size_t)(c->p - s);
    if (len >= cap)
        return -1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", the encoder's form, at p (24 bytes). A batch
 * holds few dates, so the date's milliseconds come from the last one seen
 * (checked by tern_wire_parse_ts when it changes); only the time of day is
 * parsed here. A leap second (:60) and every other form go to
 * tern_wire_parse_ts, so the result is always what it returns. */
static int timestamp(const char *p, int64_t *ts_ms)
{
    static _Thread_local char date[10];
    static _Thread_local int64_t date_ms;
    static _Thread_local int have;
    const char *t = p + 11;
    int d[9];
    static const unsigned char at[9] = {0, 1, 3, 4, 6, 7, 9, 10, 11};
    if (p[10] != 'T' || t[2] != ':' || t[5] != ':' || t[8] != '.' || p[23] != 'Z')
        goto slow;
    for (int i = 0; i < 9; i++) {
        d[i] = t[at[i]] - '0';
        if (d[i] < 0 || d[i] > 9)
            goto slow;
    }
    int h = d[0] * 10 + d[1], mi = d[2] * 10 + d[3], sec = d[4] * 10 + d[5];
    int ms = d[6] * 100 + d[7] * 10 + d[8];
    if (h > 23 || mi > 59 || sec > 59)
        goto slow;
    int64_t tod = ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms;
    if (!have || memcmp(date, p, 10) != 0) {
        char buf[25];
        memcpy(buf, p, 24);
        buf[24] = '\0';
        if (tern_wire_parse_ts(buf, ts_ms) != 0)
            return -1;
        memcpy(date, p, 10);
        date_ms = *ts_ms - tod;
        have = 1;
        return 0;
    }
    *ts_ms = date_ms + tod;
    return 0;
slow:;
    char buf[25];
    memcpy(buf, p, 24);
    buf[24] = '\0';
    return tern_wire_parse_ts(buf, ts_ms);
}

int wire_fast_decode_prefix(const char *s, size_t avail, struct tern_reading *r, size_t *used)
{
    struct cur c;
    size_t n;
    int64_t i;
    c.p = s;
    c.end = s + (avail < TERN_WIRE_LINE_MAX ? avail : TERN_WIRE_LINE_MAX);
    if (LIT(&c, "{\"v\":1,\"device_id\":") || str(&c, r->device_id, sizeof(r->device_id), &n) || n == 0 ||
        LIT(&c, ",\"sensor\":") || str(&c, r->sensor, sizeof(r->sensor), &n) || n == 0 ||
        LIT(&c, ",\"metric\":") || str(&c, r->metric, sizeof(r->metric), &n) || n == 0 ||
        LIT(&c, ",\"value\":") || number(&c, &r->value))
        return -1;
    r->unit[0] = '\0';
    if (LIT(&c, ",\"unit\":") == 0 && str(&c, r->unit, sizeof(r->unit), &n) != 0)
        return -1;
    if (LIT(&c, ",\"ts\":\"") || c.end - c.p < 25 || c.p[24] != '"' || memchr(c.p, '"', 24) ||
        timestamp(c.p, &r->ts_ms) != 0)
        return -1;
    c.p += 25;
    if (LIT(&c, ",\"epoch\":\"") || c.end - c.p < 17 || c.p[16] != '"')
        return -1;
    uint64_t epoch = 0;
    for (int k = 0; k < 16; k++) {
        char h = c.p[k];
        if (h >= '0' && h <= '9')
            epoch = epoch << 4 | (uint64_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            epoch = epoch << 4 | (uint64_t)(h - 'a' + 10);
        else
            return -1;
    }
    r->epoch = epoch;
    c.p += 17;
    if (LIT(&c, ",\"seq\":") || integer(&c, &i) || i < 1)
        return -1;
    r->seq = i;
    r->tags[0] = '\0';
    if (LIT(&c, ",\"tags\":") == 0 && tags(&c, r->tags, sizeof(r->tags)) != 0)
        return -1;
    r->flags = 0;
    if (LIT(&c, ",\"flags\":") == 0) {
        if (integer(&c, &i) || i < 0 || i > (int64_t)UINT32_MAX)
            return -1;
        r->flags = (uint32_t)i;
    }
    if (LIT(&c, "}") != 0)
        return -1;
    /* The line ends here: at the end of the input or at its newline. */
    *used = (size_t)(c.p - s);
    if (*used < avail && s[*used] != '\n')
        return -1;
    return 0;
}

int wire_fast_decode(const char *line, size_t len, struct tern_reading *out)
{
    size_t used;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0 || len > TERN_WIRE_LINE_MAX)
        return -1;
    if (wire_fast_decode_prefix(line, len, out, &used) != 0 || used != len)
        return -1;
    return 0;
}

int relay_wire_decode(const char *line, size_t len, struct tern_reading *out, char *err, size_t errcap)
{
    if (wire_fast_decode(line, len, out) == 0)
        return 0;
    return tern_wire_decode(line, len, out, err, errcap);
}
