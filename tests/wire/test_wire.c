/* test_wire.c - unit tests of the v1 wire codec: the shared vectors in
 * tests/vectors/, round trips of generated readings, every decoder error path,
 * snprintf-style truncation and the timestamp helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "value_reference.h"

static const char *vectors_dir(void)
{
    const char *d = getenv("TERN_VECTORS_DIR");
    return d ? d : TERN_VECTORS_DEFAULT;
}

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
static char *slurp(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", vectors_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Splits text in place into lines; returns the count. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    char *p = text;
    while (*p && n < max) {
        char *nl = strchr(p, '\n');
        lines[n++] = p;
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

static void assert_reading_equal(const struct tern_reading *a, const struct tern_reading *b)
{
    assert_string_equal(a->device_id, b->device_id);
    assert_string_equal(a->sensor, b->sensor);
    assert_string_equal(a->metric, b->metric);
    assert_string_equal(a->unit, b->unit);
    assert_string_equal(a->tags, b->tags);
    assert_memory_equal(&a->value, &b->value, sizeof a->value); /* bit-exact, -0.0 too */
    assert_int_equal(a->ts_ms, b->ts_ms);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->flags, b->flags);
}

static void test_vectors_valid(void **state)
{
    char *jsonl = slurp("valid.jsonl"), *expect = slurp("valid.expect");
    char *lines[256], *rows[257];
    size_t nl = split_lines(jsonl, lines, 256);
    size_t nr = split_lines(expect, rows, 257);
    assert_true(nl >= 30);
    assert_int_equal(nr, nl + 1); /* header row */
    for (size_t i = 0; i < nl; i++) {
        struct tern_reading r, again;
        char err[256] = "", line[TERN_WIRE_LINE_MAX + 1];
        char *col[11], *row = rows[i + 1];
        /* strtok would merge empty columns: split on every tab by hand. */
        for (int c = 0; c < 11; c++) {
            col[c] = row;
            char *tab = row ? strchr(row, '\t') : NULL;
            if (tab)
                *tab = '\0';
            row = tab ? tab + 1 : NULL;
            assert_non_null(col[c]);
        }
        if (tern_wire_decode(lines[i], strlen(lines[i]), &r, err, sizeof err) != 0)
            fail_msg("valid.jsonl line %zu rejected: %s", i + 1, err);
        assert_string_equal(r.device_id, col[0]);
        assert_string_equal(r.sensor, col[1]);
        assert_string_equal(r.metric, col[2]);
        double v = strtod(col[3], NULL);
        assert_memory_equal(&r.value, &v, sizeof v);
        assert_string_equal(r.unit, col[4]);
        assert_int_equal(r.ts_ms, strtoll(col[5], NULL, 10));
        assert_int_equal(r.epoch, strtoull(col[6], NULL, 16));
        assert_int_equal(r.seq, strtoll(col[7], NULL, 10));
        assert_string_equal(r.tags, col[8]);
        assert_int_equal(r.flags, strtoul(col[9], NULL, 10));

        size_t n = tern_wire_encode(&r, line, sizeof line);
        assert_true(n < sizeof line);
        if (strcmp(line, col[10]) != 0)
            fail_msg("line %zu encodes as\n%s\nexpected\n%s", i + 1, line, col[10]);
        assert_int_equal(tern_wire_decode(line, n, &again, err, sizeof err), 0);
        assert_reading_equal(&r, &again);
    }
    free(jsonl);
    free(expect);
}

static void test_vectors_invalid(void **state)
{
    char *jsonl = slurp("invalid.jsonl"), *expect = slurp("invalid.expect");
    char *lines[256], *rows[257];
    size_t nl = split_lines(jsonl, lines, 256);
    size_t nr = split_lines(expect, rows, 257);
    assert_true(nl >= 50);
    assert_true(nr >= nl + 1); /* comment row; a trailing empty row is allowed */
    for (size_t i = 0; i < nl; i++) {
        struct tern_reading r, before;
        char err[256] = "";
        memset(&r, 0x5a, sizeof r);
        before = r;
        if (tern_wire_decode(lines[i], strlen(lines[i]), &r, err, sizeof err) != -1)
            fail_msg("invalid.jsonl line %zu accepted", i + 1);
        if (!strstr(err, rows[i + 1]))
            fail_msg("invalid.jsonl line %zu: error \"%s\" lacks \"%s\"", i + 1, err, rows[i + 1]);
        assert_null(strchr(err, '\n'));
        assert_memory_equal(&r, &before, sizeof r); /* untouched on failure */
    }
    free(jsonl);
    free(expect);
}

static struct tern_reading sample(void)
{
    struct tern_reading r;
    memset(&r, 0, sizeof r);
    strcpy(r.device_id, "pi-01");
    strcpy(r.sensor, "env");
    strcpy(r.metric, "temperature");
    strcpy(r.unit, "Cel");
    strcpy(r.tags, "{\"site\":\"lab\"}");
    r.value = 21.5;
    r.ts_ms = INT64_C(1795606685123);
    r.epoch = UINT64_C(0x00c0ffee00c0ffee);
    r.seq = 42;
    return r;
}

static const char SAMPLE_LINE[] =
    "{\"v\":1,\"device_id\":\"pi-01\",\"sensor\":\"env\",\"metric\":\"temperature\","
    "\"value\":21.5,\"unit\":\"Cel\",\"ts\":\"2026-11-25T11:38:05.123Z\","
    "\"epoch\":\"00c0ffee00c0ffee\",\"seq\":42,\"tags\":{\"site\":\"lab\"}}";

static void test_encode_exact(void **state)
{
    struct tern_reading r = sample();
    char buf[TERN_WIRE_LINE_MAX];
    assert_int_equal(tern_wire_encode(&r, buf, sizeof buf), strlen(SAMPLE_LINE));
    assert_string_equal(buf, SAMPLE_LINE);

    r.flags = TERN_READING_CLOCK_UNSYNCED;
    r.tags[0] = '\0';
    r.unit[0] = '\0';
    tern_wire_encode(&r, buf, sizeof buf);
    assert_string_equal(buf, "{\"v\":1,\"device_id\":\"pi-01\",\"sensor\":\"env\","
                             "\"metric\":\"temperature\",\"value\":21.5,"
                             "\"ts\":\"2026-11-25T11:38:05.123Z\",\"epoch\":\"00c0ffee00c0ffee\","
                             "\"seq\":42,\"flags\":1}");

    /* Control characters as \u00XX, quote and backslash escaped, UTF-8 as is. */
    strcpy(r.device_id, "a\"b\\c\x01\x1f\t\xc3\xa9");
    tern_wire_encode(&r, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"device_id\":\"a\\\"b\\\\c\\u0001\\u001f\\u0009\xc3\xa9\""));
}

static void test_encode_truncation(void **state)
{
    struct tern_reading r = sample();
    size_t full = strlen(SAMPLE_LINE);
    char buf[TERN_WIRE_LINE_MAX];

    assert_int_equal(tern_wire_encode(&r, NULL, 0), full);
    for (size_t cap = 1; cap <= full + 1; cap++) {
        memset(buf, '#', sizeof buf);
        assert_int_equal(tern_wire_encode(&r, buf, cap), full);
        assert_int_equal(strlen(buf), cap - 1);
        assert_memory_equal(buf, SAMPLE_LINE, cap - 1);
        assert_int_equal(buf[cap], '#'); /* nothing written past cap */
    }
}

static void test_encode_nonfinite(void **state)
{
    const double bad[] = { NAN, INFINITY, -INFINITY };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tern_reading r = sample(), out;
        char buf[TERN_WIRE_LINE_MAX], err[128];
        r.value = bad[i];
        size_t n = tern_wire_encode(&r, buf, sizeof buf);
        assert_non_null(strstr(buf, "\"value\":null"));
        assert_int_equal(tern_wire_decode(buf, n, &out, err, sizeof err), -1);
        assert_string_equal(err, "field 'value' must be a finite number");
    }
}

/* The header promises TERN_WIRE_LINE_MAX bounds a line: check the worst case
 * the decoder lets through (ids of quotes escape to twice their length). */
static void test_encode_max_line(void **state)
{
    struct tern_reading r, out;
    char buf[TERN_WIRE_LINE_MAX * 2], err[128];
    memset(&r, 0, sizeof r);
    memset(r.device_id, '"', TERN_ID_MAX - 1);
    memset(r.sensor, '\\', TERN_ID_MAX - 1);
    memset(r.metric, '"', TERN_ID_MAX - 1);
    memset(r.unit, '\\', TERN_UNIT_MAX - 1);
    memset(r.tags, 'x', TERN_TAGS_MAX - 1);
    memcpy(r.tags, "{\"k\":\"", 6);
    memcpy(r.tags + TERN_TAGS_MAX - 3, "\"}", 2);
    r.value = -2.2250738585072014e-308;
    r.ts_ms = INT64_C(-62167219200000);
    r.epoch = UINT64_MAX;
    r.seq = INT64_MAX;
    r.flags = UINT32_MAX;
    size_t n = tern_wire_encode(&r, buf, sizeof buf);
    assert_true(n <= TERN_WIRE_LINE_MAX);
    assert_int_equal(tern_wire_decode(buf, n, &out, err, sizeof err), 0);
    assert_reading_equal(&r, &out);
}

/* Reference escaper: the rule of docs/wire-format.md, byte by byte. */
static void escape_ref(const char *s, char *out)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out += sprintf(out, "\\%c", c);
        else if (c < 0x20)
            out += sprintf(out, "\\u%04x", c);
        else
            *out++ = (char)c;
    }
    *out = '\0';
}

/* The encoder copies ids eight bytes at a time while none needs escaping:
 * put each kind of byte at every position of ids of every length. */
static void test_encode_escape_positions(void **state)
{
    static const unsigned char kinds[] = { 0x01, 0x1f, '"', '\\', 0x20, 0x7f, 0xc3, 'z' };
    struct tern_reading r = sample();
    char buf[TERN_WIRE_LINE_MAX * 2], want[2 * TERN_ID_MAX * 6 + 64], esc[TERN_ID_MAX * 6 + 1];
    for (size_t len = 1; len < TERN_ID_MAX; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t k = 0; k < sizeof kinds; k++) {
                memset(r.device_id, 0, sizeof r.device_id);
                memset(r.device_id, 'a', len);
                r.device_id[pos] = (char)kinds[k];
                memcpy(r.sensor, r.device_id, sizeof r.sensor);
                tern_wire_encode(&r, buf, sizeof buf);
                escape_ref(r.device_id, esc);
                snprintf(want, sizeof want, "\"device_id\":\"%s\",\"sensor\":\"%s\",", esc, esc);
                if (!strstr(buf, want))
                    fail_msg("len %zu pos %zu byte 0x%02x: %s", len, pos, kinds[k], buf);
            }
        }
    }
}

/* Any reading, valid or not, encodes within the encoder's scratch bound and
 * gives the same bytes whether buf is large (written in place) or small (cut
 * from the scratch copy): ids of control characters escape to six times
 * their length. Under ASan an overrun of either path is caught here. */
static void test_encode_worst_case(void **state)
{
    struct tern_reading r;
    static char big[8192], small[TERN_WIRE_LINE_MAX + 1];
    memset(&r, 0, sizeof r);
    memset(r.device_id, 0x01, TERN_ID_MAX - 1);
    memset(r.sensor, 0x1f, TERN_ID_MAX - 1);
    memset(r.metric, 0x02, TERN_ID_MAX - 1);
    memset(r.unit, 0x03, TERN_UNIT_MAX - 1);
    memset(r.tags, 'x', TERN_TAGS_MAX - 1);
    r.value = -2.2250738585072014e-308;
    r.ts_ms = INT64_MIN;
    r.epoch = UINT64_MAX;
    r.seq = INT64_MIN;
    r.flags = UINT32_MAX;
    size_t n = tern_wire_encode(&r, big, sizeof big);
    assert_int_equal(strlen(big), n);
    assert_true(n > TERN_WIRE_LINE_MAX);
    assert_int_equal(tern_wire_encode(&r, small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, big, sizeof small - 1);
}

/* xorshift64*: deterministic so a failure reproduces. */
static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static void random_id(char *dst, size_t cap, int allow_empty)
{
    static const char *const pieces[] = { "a", "Z", "9", "-", "_", ".", "\"", "\\", "/", " ",
                                          "\xc3\xa9", "\xe6\xb8\xa9", "\xf0\x9f\x90\xa6" };
    size_t len = 0, want = rnd() % cap;
    dst[0] = '\0';
    while (len < want) {
        const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
        size_t n = strlen(p);
        if (len + n >= cap)
            break;
        memcpy(dst + len, p, n + 1);
        len += n;
    }
    if (!allow_empty && len == 0)
        strcpy(dst, "x");
}

static double random_value(void)
{
    switch (rnd() % 4) {
    case 0: { /* any finite bit pattern */
        double d;
        do {
            uint64_t bits = rnd();
            memcpy(&d, &bits, sizeof d);
        } while (!isfinite(d));
        return d;
    }
    case 1: return (double)(int64_t)(rnd() % 2000001) - 1000000.0;
    case 2: return (double)(int64_t)(rnd() % 100000) / 100.0;
    default: return ldexp((double)(rnd() >> 11), (int)(rnd() % 200) - 150);
    }
}

static void test_roundtrip_random(void **state)
{
    for (int i = 0; i < 10000; i++) {
        struct tern_reading r, out;
        char buf[TERN_WIRE_LINE_MAX + 1], err[256];
        memset(&r, 0, sizeof r);
        random_id(r.device_id, sizeof r.device_id, 0);
        random_id(r.sensor, sizeof r.sensor, 0);
        random_id(r.metric, sizeof r.metric, 0);
        random_id(r.unit, sizeof r.unit, 1);
        if (rnd() % 2) {
            /* Canonical tags: keys sorted ("a..." < "b..."), quote and
             * backslash escaped; the pieces hold no control characters. */
            char k1[12] = "a", v1[40], k2[12] = "b", v2[40];
            random_id(k1 + 1, sizeof k1 - 1, 1);
            random_id(v1, sizeof v1, 1);
            random_id(k2 + 1, sizeof k2 - 1, 1);
            random_id(v2, sizeof v2, 1);
            char e[4][80];
            const char *src[4] = { k1, v1, k2, v2 };
            for (int j = 0; j < 4; j++) {
                char *o = e[j];
                for (const char *p = src[j]; *p; p++) {
                    if (*p == '"' || *p == '\\')
                        *o++ = '\\';
                    *o++ = *p;
                }
                *o = '\0';
            }
            char tags[4 * sizeof e[0] + 16];
            snprintf(tags, sizeof tags, "{\"%s\":\"%s\",\"%s\":\"%s\"}", e[0], e[1], e[2], e[3]);
            assert_int_equal(tern_copy_field(r.tags, sizeof r.tags, tags), 0);
        }
        r.value = random_value();
        r.ts_ms = (int64_t)(rnd() % UINT64_C(315569520000000)) - INT64_C(62167219200000);
        r.epoch = rnd();
        r.seq = (int64_t)(rnd() >> 1) | 1;
        r.flags = (uint32_t)(rnd() % 3);
        size_t n = tern_wire_encode(&r, buf, sizeof buf);
        assert_true(n < sizeof buf);
        if (tern_wire_decode(buf, n, &out, err, sizeof err) != 0)
            fail_msg("round trip %d: %s\n%s", i, err, buf);
        assert_reading_equal(&r, &out);
    }
}


static void test_value_format_rule(void **state)
{
    static const double pow10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8 };
    struct tern_reading r = sample();
    r.tags[0] = '\0';
    for (int i = 0; i < 100000; i++) {
        char buf[TERN_WIRE_LINE_MAX], want[40];
        switch (i % 3) {
        case 0: /* decimals as sensors produce them */
            r.value = (double)((int64_t)(rnd() % 2000000000) - 1000000000) / pow10[rnd() % 9];
            break;
        case 1:
            r.value = random_value();
            break;
        default: /* near the fast path's edges */
            r.value = ldexp((double)(rnd() >> 11), -53) * pow10[rnd() % 9] * 1e-4;
            break;
        }
        tern_wire_encode(&r, buf, sizeof buf);
        value_reference(r.value, want, sizeof want);
        const char *got = strstr(buf, "\"value\":") + 8;
        size_t n = strcspn(got, ",");
        if (strlen(want) != n || memcmp(got, want, n) != 0)
            fail_msg("value %.17g: got %.*s want %s", r.value, (int)n, got, want);
    }
}

static void test_decode_framing(void **state)
{
    struct tern_reading r;
    char err[128], line[sizeof SAMPLE_LINE + 8];

    assert_int_equal(tern_wire_decode("", 0, &r, err, sizeof err), -1);
    assert_string_equal(err, "empty line");
    assert_int_equal(tern_wire_decode("\r\n", 2, &r, err, sizeof err), -1);
    assert_string_equal(err, "empty line");

    /* A trailing newline or CRLF belongs to the framing, not the line. */
    snprintf(line, sizeof line, "%s\r\n", SAMPLE_LINE);
    assert_int_equal(tern_wire_decode(line, strlen(line), &r, err, sizeof err), 0);
    assert_int_equal(r.seq, 42);

    /* Not NUL-terminated: only len bytes are read. */
    memcpy(line, SAMPLE_LINE, sizeof SAMPLE_LINE - 1);
    line[sizeof SAMPLE_LINE - 1] = 'X';
    assert_int_equal(tern_wire_decode(line, sizeof SAMPLE_LINE - 1, &r, err, sizeof err), 0);

    /* Two lines of a batch passed at once. */
    char two[2 * sizeof SAMPLE_LINE];
    snprintf(two, sizeof two, "%s\n%s", SAMPLE_LINE, SAMPLE_LINE);
    assert_int_equal(tern_wire_decode(two, strlen(two), &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "line contains a newline"));

    /* An embedded NUL byte is invalid JSON, not a shorter line. */
    memcpy(line, SAMPLE_LINE, sizeof SAMPLE_LINE);
    line[10] = '\0';
    assert_int_equal(tern_wire_decode(line, sizeof SAMPLE_LINE - 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid JSON"));

    /* Oversized input is refused before parsing. */
    size_t big = 16 * TERN_WIRE_LINE_MAX + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    assert_int_equal(tern_wire_decode(huge, big, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 16384"));
    free(huge);

    /* err may be absent or tiny: still -1, never an overflow. */
    assert_int_equal(tern_wire_decode("x", 1, &r, NULL, 0), -1);
    char small[8];
    assert_int_equal(tern_wire_decode("x", 1, &r, small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_format_ts(void **state)
{
    char buf[25];
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { -1, "1969-12-31T23:59:59.999Z" },
        { INT64_C(1795606685123), "2026-11-25T11:38:05.123Z" },
        { INT64_C(951782400000), "2000-02-29T00:00:00.000Z" },
        { INT64_C(-62167219200000), "0000-01-01T00:00:00.000Z" },
        { INT64_C(253402300799999), "9999-12-31T23:59:59.999Z" },
        { INT64_MIN, "0000-01-01T00:00:00.000Z" },  /* clamped */
        { INT64_MAX, "9999-12-31T23:59:59.999Z" },  /* clamped */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tern_wire_format_ts(cases[i].ms, buf);
        assert_string_equal(buf, cases[i].text);
    }
    /* Every day boundary over 1900..2100 parses back to itself. */
    for (int64_t t = INT64_C(-2208988800000); t < INT64_C(4102444800000);
         t += INT64_C(86400000) + 1234) {
        int64_t back = 0;
        tern_wire_format_ts(t, buf);
        assert_int_equal(tern_wire_parse_ts(buf, &back), 0);
        assert_int_equal(back, t);
    }
}

static void test_parse_ts(void **state)
{
    int64_t t = 0;
    assert_int_equal(tern_wire_parse_ts("2026-11-25T11:38:05Z", &t), 0);
    assert_int_equal(t, INT64_C(1795606685000));
    assert_int_equal(tern_wire_parse_ts("2026-11-25T11:38:05.123999999Z", &t), 0);
    assert_int_equal(t, INT64_C(1795606685123)); /* truncated, not rounded */
    assert_int_equal(tern_wire_parse_ts("2026-11-25T12:38:05.1+01:00", &t), 0);
    assert_int_equal(t, INT64_C(1795606685100));
    assert_int_equal(tern_wire_parse_ts("2026-11-25T00:00:00-23:59", &t), 0);
    assert_int_equal(t, INT64_C(1795564800000) + INT64_C(86340000));
    assert_int_equal(tern_wire_parse_ts("1900-02-28T00:00:00Z", &t), 0);
    assert_int_equal(tern_wire_parse_ts("2000-02-29T00:00:00Z", &t), 0);

    static const char *const bad[] = {
        "", "2026", "2026-11-25", "2026-11-25T11:38Z", "2026-11-25T11:38:05",
        "2026-11-25T11:38:05.Z", "2026-11-25T11:38:05.0000000000Z", "2026-00-10T00:00:00Z",
        "2026-11-31T00:00:00Z", "1900-02-29T00:00:00Z", "2026-11-25T11:60:00Z",
        "2026-11-25T11:38:61Z", "2026-11-25T11:38:05+24:00", "2026-11-25T11:38:05+01:60",
        "2026-11-25T11:38:05+01", "2026-11-25T11:38:05ZZ", "2026-11-25X11:38:05Z",
        "-001-11-25T11:38:05Z", "+2026-11-25T11:38:05Z", "2026-1-25T11:38:05Z",
        "0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999-00:01", "2026-11-25T11:38:05 Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = 77;
        if (tern_wire_parse_ts(bad[i], &t) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(t, 77); /* untouched on failure */
    }
}

static void test_tags(void **state)
{
    char out[TERN_TAGS_MAX];
    const char *k[] = { "site", "room", "a\"q", "uni" };
    const char *v[] = { "lab", "3.14", "back\\slash\n", "Z\xc3\xbcrich" };
    assert_int_equal(tern_wire_tags(k, v, 4, out, sizeof out), 0);
    assert_string_equal(out, "{\"a\\\"q\":\"back\\\\slash\\u000a\",\"room\":\"3.14\","
                             "\"site\":\"lab\",\"uni\":\"Z\xc3\xbcrich\"}");

    /* What the decoder stores for the same tags is the same text. */
    char line[TERN_WIRE_LINE_MAX], err[128];
    struct tern_reading r;
    snprintf(line, sizeof line,
             "{\"v\":1,\"device_id\":\"d\",\"sensor\":\"s\",\"metric\":\"m\",\"value\":1,"
             "\"ts\":\"2026-11-25T11:38:05Z\",\"epoch\":\"0000000000000001\",\"seq\":1,"
             "\"tags\":{\"uni\":\"Z\xc3\xbcrich\",\"site\":\"lab\",\"room\":\"3.14\","
             "\"a\\\"q\":\"back\\\\slash\\n\"}}");
    assert_int_equal(tern_wire_decode(line, strlen(line), &r, err, sizeof err), 0);
    assert_string_equal(r.tags, out);

    assert_int_equal(tern_wire_tags(k, v, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    const char *dup[] = { "x", "x" };
    assert_int_equal(tern_wire_tags(dup, v, 2, out, sizeof out), -1);
    assert_string_equal(out, "");
    char small[16];
    assert_int_equal(tern_wire_tags(k, v, 2, small, sizeof small), -1);
    assert_string_equal(small, "");
    const char *many_k[100], *many_v[100];
    for (int i = 0; i < 100; i++) {
        many_k[i] = "k";
        many_v[i] = "";
    }
    assert_int_equal(tern_wire_tags(many_k, many_v, 100, out, sizeof out), -1);
}

static void test_copy_field(void **state)
{
    char dst[4];
    assert_int_equal(tern_copy_field(dst, sizeof dst, "abc"), 0);
    assert_string_equal(dst, "abc");
    assert_int_equal(tern_copy_field(dst, sizeof dst, ""), 0);
    assert_string_equal(dst, "");
    assert_int_equal(tern_copy_field(dst, sizeof dst, "abcd"), -1);
    assert_string_equal(dst, "abc");
    assert_int_equal(tern_copy_field(dst, 0, "a"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_valid),    cmocka_unit_test(test_vectors_invalid),
        cmocka_unit_test(test_encode_exact),     cmocka_unit_test(test_encode_truncation),
        cmocka_unit_test(test_encode_nonfinite), cmocka_unit_test(test_encode_max_line),
        cmocka_unit_test(test_roundtrip_random), cmocka_unit_test(test_value_format_rule),
        cmocka_unit_test(test_decode_framing),
        cmocka_unit_test(test_encode_escape_positions), cmocka_unit_test(test_encode_worst_case),
        cmocka_unit_test(test_format_ts),        cmocka_unit_test(test_parse_ts),
        cmocka_unit_test(test_tags),             cmocka_unit_test(test_copy_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
