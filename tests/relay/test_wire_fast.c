/* test_wire_fast.c - differential test of the relay's fast wire decoder
 * against the codec: whenever the fast path accepts a line, tern_wire_decode
 * must accept it too and produce the identical reading. Inputs: the shared
 * vectors, canonical encodings of random readings, and random mutations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"
#include "wire_fast.h"

static unsigned long accepted, declined;

/* Field by field: the fast path writes each string up to its NUL, not the
 * bytes after it. */
static int same_reading(const struct tern_reading *a, const struct tern_reading *b)
{
    return strcmp(a->device_id, b->device_id) == 0 && strcmp(a->sensor, b->sensor) == 0 &&
           strcmp(a->metric, b->metric) == 0 && strcmp(a->unit, b->unit) == 0 && strcmp(a->tags, b->tags) == 0 &&
           memcmp(&a->value, &b->value, sizeof(a->value)) == 0 && a->ts_ms == b->ts_ms && a->epoch == b->epoch &&
           a->seq == b->seq && a->flags == b->flags;
}

static void check(const char *line, size_t len)
{
    struct tern_reading a, b;
    char err[256];
    memset(&a, 0x5a, sizeof(a));
    if (wire_fast_decode(line, len, &a) != 0) {
        declined++;
        return;
    }
    accepted++;
    if (tern_wire_decode(line, len, &b, err, sizeof(err)) != 0)
        fail_msg("fast path accepted a line the codec rejects (%s): %.*s", err, (int)len, line);
    if (!same_reading(&a, &b))
        fail_msg("fast path and codec disagree on: %.*s", (int)len, line);
    /* As the first line of a batch, it decodes the same and ends where the
     * line does. */
    char buf[TERN_WIRE_LINE_MAX + 128];
    size_t l = len, used = 0;
    while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
        l--;
    if (l + 16 > sizeof(buf))
        return;
    memcpy(buf, line, l);
    memcpy(buf + l, "\n{\"v\":1}", 9);
    memset(&a, 0x5a, sizeof(a));
    if (wire_fast_decode_prefix(buf, l + 9, &a, &used) == 0) {
        if (used != l || !same_reading(&a, &b))
            fail_msg("prefix decode disagrees on: %.*s", (int)len, line);
    } else if (!memchr(line, '\r', len)) {
        fail_msg("prefix decode declined a line the fast path takes: %.*s", (int)len, line);
    }
}

static char **load(const char *name, size_t *n)
{
    char path[1024];
    const char *dir = getenv("TERN_VECTORS_DIR");
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors", name);
    FILE *f = fopen(path, "r");
    char **lines = NULL;
    *n = 0;
    if (!f)
        return NULL;
    char buf[8192];
    while (fgets(buf, sizeof(buf), f)) {
        lines = realloc(lines, (*n + 1) * sizeof(*lines));
        lines[(*n)++] = strdup(buf);
    }
    fclose(f);
    return lines;
}

static void test_vectors(void **state)
{
    const char *files[] = {"valid.jsonl", "invalid.jsonl"};
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        char **lines = load(files[k], &n);
        if (!lines)
            skip();
        for (size_t i = 0; i < n; i++) {
            check(lines[i], strlen(lines[i]));
            free(lines[i]);
        }
        free(lines);
    }
}

static void random_reading(struct tern_reading *r, unsigned *seed)
{
    static const char *units[] = {"", "Cel", "%", "Pa", "hPa"};
    static const double values[] = {21.5, -0.0, 0.0, 1e300, -3.25e-7, 101325, 0.1, 9007199254740993.0, 1e-310};
    memset(r, 0, sizeof(*r));
    snprintf(r->device_id, sizeof(r->device_id), "dev-%u", rand_r(seed) % 1000);
    snprintf(r->sensor, sizeof(r->sensor), "%s", rand_r(seed) % 2 ? "env" : "a/b c");
    snprintf(r->metric, sizeof(r->metric), "m%u", rand_r(seed) % 10);
    snprintf(r->unit, sizeof(r->unit), "%s", units[rand_r(seed) % 5]);
    switch (rand_r(seed) % 4) {
    case 0: r->value = values[rand_r(seed) % 9]; break;
    case 1: r->value = (double)rand_r(seed) / 7.0 - 1e5; break;
    case 2: r->value = (double)(rand_r(seed) % 2000001 - 1000000) / 100.0; break; /* 2 decimals */
    default: r->value = (double)rand_r(seed) / 1e6 * (rand_r(seed) % 2 ? 1 : -1); break;
    }
    r->ts_ms = (int64_t)(rand_r(seed) % 2000000000) * 1000 + rand_r(seed) % 1000;
    r->epoch = ((uint64_t)rand_r(seed) << 33) ^ (uint64_t)rand_r(seed);
    r->seq = 1 + rand_r(seed) % 100000;
    r->flags = rand_r(seed) % 4 == 0 ? rand_r(seed) : 0;
    if (rand_r(seed) % 2)
        snprintf(r->tags, sizeof(r->tags), "{\"rack\":\"r%u\",\"site\":\"lab\"}", rand_r(seed) % 9);
}

/* Timestamps: the cached date must never leak into another date, and every
 * time of day (leap second included) must equal the codec's. */
static void test_timestamps(void **state)
{
    char line[512];
    static const char *ts[] = {
        "2026-11-25T11:38:05.123Z", "2026-11-25T23:59:59.999Z", "2026-11-25T00:00:00.000Z", "2026-11-26T00:00:00.000Z",
        "2026-11-25T11:38:60.000Z", "2026-11-25T24:00:00.000Z", "2026-11-25T11:60:00.000Z", "2026-02-29T00:00:00.000Z",
        "2024-02-29T12:00:00.000Z", "2024-02-29t12:00:00.000z", "2024-02-29T12:00:00.000+", "0000-01-01T00:00:00.000Z",
        "9999-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z", "2026-11-25T11:38:05.12aZ", "2026-13-25T11:38:05.123Z",
    };
    for (int rep = 0; rep < 3; rep++) {
        for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
            int n = snprintf(line, sizeof(line),
                             "{\"v\":1,\"device_id\":\"d\",\"sensor\":\"s\",\"metric\":\"m\",\"value\":1,"
                             "\"ts\":\"%s\",\"epoch\":\"00000000000000aa\",\"seq\":1}", ts[(i * (rep + 1)) % 16]);
            check(line, (size_t)n);
        }
    }
}

static void test_encodings_and_mutations(void **state)
{
    unsigned seed = 12345;
    char line[TERN_WIRE_LINE_MAX + 64];
    const char alphabet[] = "{}[]\",:0123456789.-+eE \\abcxyz\x7f\x80\xc3";
    unsigned long canon_ok = 0;
    for (int i = 0; i < 6000; i++) {
        struct tern_reading r, got;
        random_reading(&r, &seed);
        size_t n = tern_wire_encode(&r, line, sizeof(line));
        assert_true(n < sizeof(line));
        if (wire_fast_decode(line, n, &got) == 0)
            canon_ok++;
        check(line, n);
        for (int m = 0; m < 8; m++) {
            char mut[sizeof(line) + 8];
            size_t ml = n;
            memcpy(mut, line, n);
            size_t pos = (size_t)rand_r(&seed) % n;
            switch (rand_r(&seed) % 3) {
            case 0:
                mut[pos] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
                break;
            case 1:
                memmove(mut + pos, mut + pos + 1, ml - pos - 1);
                ml--;
                break;
            default:
                memmove(mut + pos + 1, mut + pos, ml - pos);
                mut[pos] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
                ml++;
            }
            check(mut, ml);
        }
    }
    /* The fast path must actually be the common path for canonical lines. */
    assert_true(canon_ok > 5700);
    printf("fast path: %lu accepted, %lu declined\n", accepted, declined);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_encodings_and_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
