/* test_batch.c - the batcher (limits, positions, in-batch duplicates), the
 * row encodings of both schema modes, and the bisect logic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "bisect.h"
#include "rows.h"

static struct tern_reading reading(const char *dev, uint64_t epoch, int64_t seq)
{
    struct tern_reading r;
    memset(&r, 0, sizeof(r));
    snprintf(r.device_id, sizeof(r.device_id), "%s", dev);
    snprintf(r.sensor, sizeof(r.sensor), "env");
    snprintf(r.metric, sizeof(r.metric), "temperature");
    snprintf(r.unit, sizeof(r.unit), "Cel");
    r.value = 21.5;
    r.ts_ms = 1795606685123;
    r.epoch = epoch;
    r.seq = seq;
    return r;
}

static void test_limits_and_marks(void **state)
{
    struct batch b;
    struct batch_limits l = {.max_rows = 3, .max_bytes = 1 << 20, .max_delay_ms = 1000};
    batch_init(&b, 0);
    assert_true(batch_empty(&b));
    assert_false(batch_due(&b, &l, 0));
    const char *t = "topic";
    for (int i = 0; i < 2; i++) {
        struct relay_pos pos = {t, i % 2, 10 + i};
        long m = batch_add_message(&b, &pos, 100);
        struct tern_reading r = reading("d", 1, i + 1);
        assert_int_equal(batch_add_reading(&b, (uint32_t)m, 0, &r, 0), 0);
    }
    assert_false(batch_due(&b, &l, 100));
    assert_true(batch_due(&b, &l, 1100)); /* age */
    struct relay_pos pos = {t, 0, 12};
    long m = batch_add_message(&b, &pos, 200);
    struct tern_reading r = reading("d", 1, 3);
    assert_int_equal(batch_add_reading(&b, (uint32_t)m, 0, &r, 0), 0);
    assert_true(batch_due(&b, &l, 200)); /* rows */
    assert_int_equal(b.nmarks, 2);
    assert_int_equal(b.marks[0].partition, 0);
    assert_int_equal(b.marks[0].offset, 12);
    assert_int_equal(b.marks[1].offset, 11);
    batch_clear(&b);
    assert_true(batch_empty(&b));
    assert_int_equal(b.rows.len, 0);
    l.max_rows = 1000;
    l.max_bytes = 100;
    batch_add_message(&b, &pos, 0);
    batch_add_reading(&b, 0, 0, &r, 0);
    assert_true(batch_due(&b, &l, 0)); /* bytes */
    batch_free(&b);
}

static void test_duplicates_dropped(void **state)
{
    struct batch b;
    batch_init(&b, 1);
    struct relay_pos pos = {"t", 0, 1};
    batch_add_message(&b, &pos, 0);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            struct tern_reading r = reading(i % 2 ? "a" : "b", 7, i);
            assert_int_equal(batch_add_reading(&b, 0, 0, &r, 0), round);
        }
    }
    assert_int_equal(b.nrows, 5000);
    assert_int_equal(b.duplicates, 5000);
    struct tern_reading other = reading("c", 7, 1); /* same epoch/seq, other device */
    assert_int_equal(batch_add_reading(&b, 0, 0, &other, 0), 0);
    batch_free(&b);
}

static void test_rows_modes(void **state)
{
    struct relay_buf o = {0};
    struct tern_reading r = reading("pi-\"01\"", UINT64_C(0xffffffffffffffff), 42);
    snprintf(r.tags, sizeof(r.tags), "{\"site\":\"lab\"}");
    rows_encode_reading(&o, &r, 1, 0);
    assert_string_equal(o.p, "{\"device_id\":\"pi-\\\"01\\\"\",\"sensor\":\"env\",\"metric\":\"temperature\","
                             "\"unit\":\"Cel\",\"value\":21.5,\"ts\":\"2026-11-25 11:38:05.123\","
                             "\"epoch\":18446744073709551615,\"seq\":42,\"tags\":{\"site\":\"lab\"},"
                             "\"flags\":0,\"inserted_at\":\"1970-01-01 00:00:00\"}\n");
    buf_reset(&o);
    rows_encode_reading(&o, &r, 0, 0);
    assert_non_null(strstr(o.p, "\"ts\":\"2026-11-25 11:38:05\",\"ts_ms\":123"));
    assert_non_null(strstr(o.p, "\"tags\":\"{\\\"site\\\":\\\"lab\\\"}\""));
    buf_reset(&o);
    r.ts_ms = -1; /* before 1970: floor, not truncation */
    rows_encode_reading(&o, &r, 0, 0);
    assert_non_null(strstr(o.p, "\"ts\":\"1969-12-31 23:59:59\",\"ts_ms\":999"));
    buf_reset(&o);
    struct relay_reject rj = {"kafka", "t", 3, 99, 1, "bad \"x\"", "a\nb\x01", 4};
    rows_encode_rejected(&o, &rj, 0);
    assert_string_equal(o.p, "{\"received_at\":\"1970-01-01 00:00:00\",\"src\":\"kafka\",\"src_topic\":\"t\","
                             "\"src_partition\":3,\"src_offset\":99,\"item\":1,\"reason\":\"bad \\\"x\\\"\","
                             "\"payload\":\"a\\nb\\u0001\"}\n");
    buf_free(&o);
}

/* Every value the row encoder writes reads back as the same double. */
static void test_value_round_trip(void **state)
{
    unsigned seed = 99;
    struct relay_buf o = {0};
    for (int i = 0; i < 50000; i++) {
        struct tern_reading r = reading("d", 1, 1);
        switch (i % 5) {
        case 0: r.value = (double)(rand_r(&seed) % 2000001 - 1000000) / 100.0; break;
        case 1: r.value = (double)rand_r(&seed) / 7.0; break;
        case 2: r.value = -(double)rand_r(&seed) / 1e6; break;
        case 3: r.value = (double)rand_r(&seed) * 1e10 + 0.5; break;
        default: r.value = 1.0 / ((double)(rand_r(&seed) % 1000) + 1.0); break;
        }
        buf_reset(&o);
        rows_encode_reading(&o, &r, 1, 0);
        const char *v = strstr(o.p, "\"value\":");
        assert_non_null(v);
        double back = strtod(v + 8, NULL);
        if (back != r.value)
            fail_msg("value %.17g encoded as %.30s", r.value, v + 8);
    }
    buf_free(&o);
}

/* A fake server that refuses any range containing a bad row. */
struct fake {
    int bad[64];
    int transient_after; /* fail transiently on this request number (0 = never) */
    int calls;
    int rejected[64];
    int inserted[64];
};

static int fake_insert(void *user, size_t lo, size_t hi, char *reason, size_t cap)
{
    struct fake *f = user;
    f->calls++;
    if (f->transient_after && f->calls == f->transient_after)
        return BISECT_TRANSIENT;
    for (size_t i = lo; i < hi; i++) {
        if (f->bad[i]) {
            snprintf(reason, cap, "row %zu is bad", i);
            return BISECT_CONTENT;
        }
    }
    for (size_t i = lo; i < hi; i++)
        f->inserted[i]++;
    return BISECT_OK;
}

static int fake_reject(void *user, size_t row, const char *reason)
{
    struct fake *f = user;
    f->rejected[row]++;
    return 0;
}

static void test_bisect_isolates_bad_rows(void **state)
{
    struct fake f;
    memset(&f, 0, sizeof(f));
    f.bad[3] = f.bad[40] = f.bad[41] = f.bad[63] = 1;
    size_t requests = 0;
    assert_int_equal(bisect_resolve(0, 64, "first", fake_insert, fake_reject, &f, &requests), 0);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(f.rejected[i], f.bad[i]);
        assert_int_equal(f.inserted[i], !f.bad[i]);
    }
    assert_true(requests <= 2 * 4 * 6);
    assert_int_equal((int)requests, f.calls);
}

static void test_bisect_single_and_transient(void **state)
{
    struct fake f;
    memset(&f, 0, sizeof(f));
    f.bad[0] = 1;
    size_t requests = 0;
    assert_int_equal(bisect_resolve(0, 1, "only row", fake_insert, fake_reject, &f, &requests), 0);
    assert_int_equal(f.rejected[0], 1);
    assert_int_equal(requests, 0);
    memset(&f, 0, sizeof(f));
    f.bad[5] = 1;
    f.transient_after = 3;
    assert_int_equal(bisect_resolve(0, 16, "x", fake_insert, fake_reject, &f, &requests), -1);
    assert_int_equal(f.rejected[5], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_and_marks),      cmocka_unit_test(test_duplicates_dropped),
        cmocka_unit_test(test_rows_modes),            cmocka_unit_test(test_value_round_trip),            cmocka_unit_test(test_bisect_isolates_bad_rows),
        cmocka_unit_test(test_bisect_single_and_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
