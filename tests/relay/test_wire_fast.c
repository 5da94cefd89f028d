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
    if (memcmp(&a, &b, sizeof(a)) != 0)
        fail_msg("fast path and codec disagree on: %.*s", (int)len, line);
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
        cmocka_unit_test(test_encodings_and_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
