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
    batch_init(&b, 0, 0);
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

/* Adaptive batching: a quarter-full batch goes early only while the insert
 * thread idles at a burst's start or end; never less than a quarter. */
static void test_due_early(void **state)
{
    struct batch b;
    struct batch_limits l = {.max_rows = 8, .max_bytes = 1 << 20, .max_delay_ms = 1000};
    batch_init(&b, 0, 1);
    assert_false(batch_due_early(&b, &l, -1, 1)); /* empty */
    struct relay_pos pos = {"t", 0, 1};
    batch_add_message(&b, &pos, 0);
    struct tern_reading r = reading("d", 1, 1);
    assert_int_equal(batch_add_reading(&b, 0, 0, &r, 0), 0);
    /* 1 of 8 rows: too few whatever the insert thread does. */
    assert_false(batch_due_early(&b, &l, -1, 1));
    assert_false(batch_due_early(&b, &l, 5000, 1));
    r.seq = 2;
    assert_int_equal(batch_add_reading(&b, 0, 1, &r, 0), 0);
    /* 2 of 8: a quarter. */
    assert_true(batch_due_early(&b, &l, -1, 0));   /* no insert ever ran */
    assert_true(batch_due_early(&b, &l, 1000, 0)); /* idle for max_delay */
    assert_true(batch_due_early(&b, &l, 10, 1));   /* the source ran dry */
    assert_false(batch_due_early(&b, &l, 10, 0));  /* mid-stream: fill up */
    assert_false(batch_due(&b, &l, 0));
    batch_free(&b);
}

static void test_duplicates_dropped(void **state)
{
    struct batch b;
    batch_init(&b, 1, 1);
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

/* In-batch duplicates against a plain reference set, for identities in
 * every shape: ascending, shuffled, far apart (sparse streams), negative,
 * many devices; over several batches (clear keeps the memory). */
struct ref_id {
    char dev[16];
    uint64_t epoch;
    int64_t seq;
};

static void test_duplicates_reference(void **state)
{
    enum { N = 10000 };
    static struct ref_id seen[N];
    struct batch b;
    batch_init(&b, 0, 1);
    struct relay_pos pos = {"t", 0, 1};
    unsigned seed = 7;
    for (int round = 0; round < 7; round++) {
        size_t nseen = 0, dups = 0;
        batch_add_message(&b, &pos, 0);
        for (int i = 0; i < N; i++) {
            struct ref_id id;
            memset(&id, 0, sizeof(id));
            int devs = round == 5 ? 5000 : 20;
            snprintf(id.dev, sizeof(id.dev), "d%u", (unsigned)rand_r(&seed) % (unsigned)devs);
            id.epoch = (uint64_t)(rand_r(&seed) % 3);
            switch (round) {
            case 0: id.seq = i / 20 + 1; break;                              /* ascending */
            case 1: id.seq = rand_r(&seed) % 3000; break;                    /* dense, shuffled */
            case 2: id.seq = (int64_t)rand_r(&seed) * 1000 % 400000; break;  /* sparse */
            case 3: id.seq = (i % 2 ? 1 : -1) * (int64_t)(rand_r(&seed) % 500); break; /* negative too */
            case 4: id.seq = i % 7 ? rand_r(&seed) % 2000 : (int64_t)rand_r(&seed) << 20; break; /* mixed */
            case 5: id.seq = rand_r(&seed) % 20; break;                      /* many streams */
            default: id.seq = rand_r(&seed) % 60000; break; /* wide windows, up to the batch's budget */
            }
            int want = 0;
            for (size_t k = 0; k < nseen && !want; k++)
                want = seen[k].epoch == id.epoch && seen[k].seq == id.seq && strcmp(seen[k].dev, id.dev) == 0;
            if (!want)
                seen[nseen++] = id;
            dups += (size_t)want;
            struct tern_reading r = reading(id.dev, id.epoch, id.seq);
            int rc = batch_add_reading(&b, 0, 0, &r, 0);
            if (rc != want)
                fail_msg("round %d reading %d (%s, %llu, %lld): got %d, want %d", round, i, id.dev,
                         (unsigned long long)id.epoch, (long long)id.seq, rc, want);
        }
        assert_int_equal(b.nrows, nseen);
        assert_int_equal(b.duplicates, dups);
        batch_clear(&b);
    }
    batch_free(&b);
}

/* batch_sort: rows in (device_id, epoch, seq) order, each row's bytes,
 * message and item moved with it; a batch with wide rows is left alone. */
static void test_sort(void **state)
{
    static const char *devs[] = {"b", "a", "ab", "pi-\xc3\xa4", "a0", "B"};
    for (int binary = 0; binary < 2; binary++) {
        struct batch b;
        batch_init(&b, binary, binary);
        struct relay_pos pos = {"t", 0, 1};
        unsigned seed = 11;
        batch_add_message(&b, &pos, 0);
        for (uint32_t i = 0; i < 3000; i++) {
            /* Sorted half-way (as the pipeline may while it waits), then
             * more rows: the second sort must still order all of them. */
            if (i == 1500)
                assert_int_equal(batch_sort(&b), 0);
            struct tern_reading r = reading(devs[rand_r(&seed) % 6], (uint64_t)(rand_r(&seed) % 3), 0);
            r.seq = i % 3 == 0 ? (int64_t)(3000 - i) : (int64_t)(i * 7 % 2000) + (rand_r(&seed) % 2 ? 0 : 1000000);
            r.value = (double)i; /* the row's own mark */
            batch_add_reading(&b, 0, i, &r, 0);
        }
        size_t n = b.nrows;
        assert_int_equal(batch_sort(&b), 0);
        assert_int_equal(b.nrows, n);
        struct relay_buf text = {0};
        char prev[128] = "";
        for (size_t j = 0; j < n; j++) {
            const struct batch_row *row = &b.row[j];
            const struct batch_stream_info *si = &b.stream_info[row->stream];
            char key[128];
            /* device, then epoch, then seq: compare as ClickHouse would. */
            snprintf(key, sizeof(key), "%s%c%020llu%020lld", si->device_id, 1, (unsigned long long)si->epoch,
                     (long long)(row->seq + 1000000000LL));
            if (j > 0 && strcmp(prev, key) >= 0)
                fail_msg("row %zu out of order: %s after %s", j, key, prev);
            snprintf(prev, sizeof(prev), "%s", key);
            /* The bytes are this row's: the value holds the item. */
            buf_reset(&text);
            if (binary) {
                assert_int_equal(rows_bin_to_json(b.rows.p + row->off, batch_row_len(&b, j), 1, &text), 0);
            } else {
                buf_append(&text, b.rows.p + row->off, batch_row_len(&b, j));
            }
            char want[64];
            snprintf(want, sizeof(want), "\"value\":%u,", row->item);
            if (!strstr(text.p, want) && !(row->item == 0 && strstr(text.p, "\"value\":0,")))
                fail_msg("row %zu carries the bytes of another row: %s", j, text.p);
        }
        buf_free(&text);
        batch_free(&b);
    }
    /* Wide rows are not sorted. */
    struct batch w;
    batch_init(&w, 0, 0);
    struct relay_pos pos = {"t", 0, 1};
    batch_add_message(&w, &pos, 0);
    struct batch_key k1 = {2, 0, 5}, k2 = {1, 0, 5};
    batch_add_encoded(&w, 0, 0, k1, "{\"x\":2}\n", 8, 0);
    batch_add_encoded(&w, 0, 0, k2, "{\"x\":1}\n", 8, 0);
    assert_int_equal(batch_sort(&w), 0);
    assert_memory_equal(w.rows.p, "{\"x\":2}\n", 8);
    batch_free(&w);
}

/* RowBinary, byte for byte, in both modes. */
static void test_rows_rowbinary(void **state)
{
    struct relay_buf o = {0};
    struct tern_reading r = reading("pi-01", UINT64_C(0x0102030405060708), 42);
    snprintf(r.unit, sizeof(r.unit), "%%");
    snprintf(r.tags, sizeof(r.tags), "{\"rack\":\"a\",\"site\":\"lab\"}");
    r.flags = 1;
    assert_int_equal(rows_encode_reading_bin(&o, &r, 1, 1795606685), 0);
    static const unsigned char modern[] = {
        5, 'p', 'i', '-', '0', '1', 3, 'e', 'n', 'v', 11, 't', 'e', 'm', 'p', 'e', 'r', 'a', 't', 'u', 'r', 'e', 1, '%',
        0, 0, 0, 0, 0, 0x80, 0x35, 0x40,                 /* 21.5 */
        0xc3, 0xa5, 0x7f, 0x12, 0xa2, 0x01, 0, 0,         /* 1795606685123 ms */
        8, 7, 6, 5, 4, 3, 2, 1,                           /* epoch */
        42, 0, 0, 0, 0, 0, 0, 0,                          /* seq */
        2, 4, 'r', 'a', 'c', 'k', 1, 'a', 4, 's', 'i', 't', 'e', 3, 'l', 'a', 'b', /* Map */
        1, 0, 0, 0,                                       /* flags */
        0x9d, 0xc8, 0x06, 0x6b,                           /* inserted_at 1795606685 */
    };
    assert_int_equal(o.len, sizeof(modern));
    assert_memory_equal(o.p, modern, sizeof(modern));
    buf_reset(&o);
    assert_int_equal(rows_encode_reading_bin(&o, &r, 0, 1795606685), 0);
    static const unsigned char old[] = {
        5, 'p', 'i', '-', '0', '1', 3, 'e', 'n', 'v', 11, 't', 'e', 'm', 'p', 'e', 'r', 'a', 't', 'u', 'r', 'e', 1, '%',
        0, 0, 0, 0, 0, 0x80, 0x35, 0x40,
        0x9d, 0xc8, 0x06, 0x6b, 123, 0,                  /* ts 1795606685 s + ts_ms 123 */
        8, 7, 6, 5, 4, 3, 2, 1,
        42, 0, 0, 0, 0, 0, 0, 0,
        25, '{', '"', 'r', 'a', 'c', 'k', '"', ':', '"', 'a', '"', ',', '"', 's', 'i', 't', 'e', '"', ':', '"', 'l',
        'a', 'b', '"', '}',                               /* tags as JSON text */
        1, 0, 0, 0,
        0x9d, 0xc8, 0x06, 0x6b,
    };
    assert_int_equal(o.len, sizeof(old));
    assert_memory_equal(o.p, old, sizeof(old));
    /* Old mode maps dates 18.16 cannot hold as its text parser does: day 0,
     * same time of day. */
    buf_reset(&o);
    r.ts_ms = -1; /* 1969-12-31 23:59:59.999 */
    assert_int_equal(rows_encode_reading_bin(&o, &r, 0, 0), 0);
    assert_memory_equal(o.p + 32, "\x7f\x51\x01\x00\xe7\x03", 6); /* 86399 s, 999 ms */
    buf_reset(&o);
    r.ts_ms = INT64_C(253402300799999); /* 9999-12-31 23:59:59.999 */
    assert_int_equal(rows_encode_reading_bin(&o, &r, 0, 0), 0);
    assert_memory_equal(o.p + 32, "\x7f\x51\x01\x00\xe7\x03", 6);
    /* Tags with escapes become the unescaped strings; text that is not an
     * object of strings is refused, nothing appended. */
    buf_reset(&o);
    snprintf(r.tags, sizeof(r.tags), "{\"q\":\"a\\\"b\\u00e4\"}");
    assert_int_equal(rows_encode_reading_bin(&o, &r, 1, 0), 0);
    assert_non_null(memmem(o.p, o.len, "\x01\x01q\x05" "a\"b\xc3\xa4", 9));
    buf_reset(&o);
    snprintf(r.tags, sizeof(r.tags), "{\"q\":1}");
    assert_int_equal(rows_encode_reading_bin(&o, &r, 1, 0), -1);
    assert_int_equal(o.len, 0);
    snprintf(r.tags, sizeof(r.tags), "{\"q\":\"a\" \"b\"}");
    assert_int_equal(rows_encode_reading_bin(&o, &r, 1, 0), -1);
    assert_int_equal(o.len, 0);
    buf_free(&o);
}

/* A RowBinary row renders as the JSONEachRow line of the same row. */
static void test_rows_bin_to_json(void **state)
{
    struct relay_buf bin = {0}, json = {0}, want = {0};
    /* Canonical tags, as the wire decoder stores them (escapes included). */
    const char *tags[] = {"", "{\"site\":\"lab\"}", "{\"a\":\"x\\u000ay\\\"\",\"b\":\"\xc3\xa4\"}"};
    for (int modern = 0; modern < 2; modern++) {
        for (size_t t = 0; t < 3; t++) {
            struct tern_reading r = reading("dev", 77, 5);
            snprintf(r.tags, sizeof(r.tags), "%s", tags[t]);
            r.value = -0.125;
            buf_reset(&bin);
            buf_reset(&json);
            buf_reset(&want);
            assert_int_equal(rows_encode_reading_bin(&bin, &r, modern, 1795606685), 0);
            assert_int_equal(rows_bin_to_json(bin.p, bin.len, modern, &json), 0);
            rows_encode_reading(&want, &r, modern, 1795606685);
            assert_string_equal(json.p, want.p);
            assert_int_equal(rows_bin_to_json(bin.p, bin.len - 1, modern, &json), -1); /* truncated */
        }
    }
    buf_free(&bin);
    buf_free(&json);
    buf_free(&want);
}

/* A binary batch: duplicates leave no bytes behind; a reading whose tags
 * cannot be encoded is not added and leaves no identity. */
static void test_binary_batch(void **state)
{
    struct batch b;
    batch_init(&b, 1, 1);
    struct relay_pos pos = {"t", 0, 1};
    batch_add_message(&b, &pos, 0);
    struct tern_reading r = reading("d", 1, 1);
    assert_int_equal(batch_add_reading(&b, 0, 0, &r, 0), 0);
    size_t len = b.rows.len;
    assert_int_equal(batch_add_reading(&b, 0, 1, &r, 0), 1);
    assert_int_equal(b.rows.len, len);
    struct tern_reading bad = reading("d", 1, 2);
    snprintf(bad.tags, sizeof(bad.tags), "{\"k\":2}");
    assert_int_equal(batch_add_reading(&b, 0, 2, &bad, 0), 2);
    assert_int_equal(b.rows.len, len);
    snprintf(bad.tags, sizeof(bad.tags), "{\"k\":\"2\"}");
    assert_int_equal(batch_add_reading(&b, 0, 2, &bad, 0), 0);
    assert_int_equal(b.nrows, 2);
    assert_int_equal(batch_row_len(&b, 0), len);
    batch_free(&b);
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
        cmocka_unit_test(test_due_early),
        cmocka_unit_test(test_rows_modes),            cmocka_unit_test(test_value_round_trip),            cmocka_unit_test(test_bisect_isolates_bad_rows),
        cmocka_unit_test(test_bisect_single_and_transient), cmocka_unit_test(test_rows_rowbinary),
        cmocka_unit_test(test_rows_bin_to_json),      cmocka_unit_test(test_binary_batch),
        cmocka_unit_test(test_duplicates_reference), cmocka_unit_test(test_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
