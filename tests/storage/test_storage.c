/* test_storage.c - unit tests of every storage API path: open/reopen, append,
 * read (durable only), commits by count and time, out-of-order acks, several
 * uplinks, uplink config changes, caps (drop oldest/newest), age, space
 * reclaim, stats, bad arguments and allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "alloc.h"
#include "log.h"
#include "sql.h"
#include "store_test_util.h"

static int setup(void **state)
{
    *state = util_fx_new("storage");
    return 0;
}

static const char *const one_uplink[] = {"mqtt"};
static const char *const two_uplinks[] = {"mqtt", "kafka"};

static tern_store *open_with(const char *path, const char *const *ups, size_t n, uint32_t every,
                             uint64_t max_bytes, enum tern_store_overflow ov)
{
    struct tern_store_options o = {
        .path = path,
        .uplinks = ups,
        .n_uplinks = n,
        .commit_every = every,
        .commit_ms = 1000,
        .synchronous = TERN_SYNC_NORMAL,
        .max_bytes = max_bytes,
        .overflow = ov,
    };
    tern_store *s = NULL;
    char err[256] = "";
    int rc = tern_store_open(&o, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static tern_store *open1(const char *path) { return open_with(path, one_uplink, 1, 1000, 0, 0); }

static void append_n(tern_store *s, int64_t from, size_t n)
{
    struct tern_reading r[64];
    while (n > 0) {
        size_t k = n < 64 ? n : 64;
        for (size_t i = 0; i < k; i++)
            util_reading(&r[i], from + (int64_t)i);
        assert_int_equal(tern_store_append(s, r, k), 0);
        from += (int64_t)k;
        n -= k;
    }
}

static void test_bad_args(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = (tern_store *)1;
    char err[128] = "";
    assert_int_equal(tern_store_open(NULL, &s, err, sizeof err), -1);
    assert_null(s);
    struct tern_store_options o = {.path = f->path, .uplinks = one_uplink, .n_uplinks = 0};
    assert_int_equal(tern_store_open(&o, &s, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
    const char *const dup[] = {"a", "a"};
    o.uplinks = dup;
    o.n_uplinks = 2;
    assert_int_equal(tern_store_open(&o, &s, err, sizeof err), -1);
    o.path = "/nonexistent-dir/x/queue.db";
    o.uplinks = one_uplink;
    o.n_uplinks = 1;
    assert_int_equal(tern_store_open(&o, &s, err, sizeof err), -1);
    assert_null(s);

    s = open1(f->path);
    size_t n = 99;
    struct tern_reading r;
    assert_int_equal(tern_store_read(s, 1, 0, &r, 1, &n), -1);
    assert_int_equal(n, 0);
    assert_int_equal(tern_store_read(s, -1, 0, &r, 1, &n), -1);
    assert_int_equal(tern_store_ack(s, 0, 1, 1), -1); /* nothing appended yet */
    append_n(s, 1, 3);
    assert_int_equal(tern_store_ack(s, 0, 2, 1), -1);
    assert_int_equal(tern_store_ack(s, 0, 0, 1), -1);
    assert_int_equal(tern_store_ack(s, 3, 1, 1), -1);
    assert_int_equal(tern_store_uplink(s, "mqtt"), 0);
    assert_int_equal(tern_store_uplink(s, "nope"), -1);
    assert_int_equal(tern_store_acked_seq(s, 5), -1);
    assert_int_equal(tern_store_append(s, NULL, 0), 0);
    tern_store_close(s);
    tern_store_close(NULL);
}

static void test_epoch_and_reopen(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open1(f->path);
    uint64_t e = tern_store_epoch(s);
    assert_true(e != 0);
    append_n(s, 1, 5);
    tern_store_close(s); /* commits */
    s = open1(f->path);
    assert_true(tern_store_epoch(s) == e);
    assert_int_equal(tern_store_durable_seq(s), 5);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 5);
    assert_int_equal(st.last_seq, 5);
    assert_true(st.epoch == e);
    assert_true(st.file_bytes > 0);
    assert_true(st.oldest_ts_ms > 0);
    tern_store_close(s);
    assert_true(util_integrity_ok(f->path));

    /* Another file gets another epoch. */
    char other[320];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    s = open1(other);
    assert_true(tern_store_epoch(s) != e);
    tern_store_close(s);
}

static void test_roundtrip_and_durable_only(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open1(f->path);
    struct tern_reading in[3], out[8];
    for (int i = 0; i < 3; i++)
        util_reading(&in[i], i + 1);
    tern_copy_field(in[1].device_id, sizeof in[1].device_id, "other-device");
    tern_copy_field(in[2].tags, sizeof in[2].tags, "");
    in[2].flags = TERN_READING_CLOCK_UNSYNCED;
    in[2].value = -1.5e300;
    assert_int_equal(tern_store_append(s, in, 3), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(in[i].seq, i + 1);
        assert_true(in[i].epoch == tern_store_epoch(s));
    }
    /* Not committed yet: nothing is durable, nothing can be read. */
    size_t n = 9;
    assert_int_equal(tern_store_durable_seq(s), 0);
    assert_int_equal(tern_store_read(s, 0, 0, out, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_durable_seq(s), 3);
    assert_int_equal(tern_store_read(s, 0, 0, out, 8, &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(out[i].device_id, in[i].device_id);
        assert_string_equal(out[i].sensor, in[i].sensor);
        assert_string_equal(out[i].metric, in[i].metric);
        assert_string_equal(out[i].unit, in[i].unit);
        assert_string_equal(out[i].tags, in[i].tags);
        assert_true(out[i].value == in[i].value);
        assert_int_equal(out[i].ts_ms, in[i].ts_ms);
        assert_int_equal(out[i].flags, in[i].flags);
        assert_int_equal(out[i].seq, in[i].seq);
        assert_true(out[i].epoch == in[i].epoch);
    }
    /* after_seq and max bound the read. */
    assert_int_equal(tern_store_read(s, 0, 1, out, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].seq, 2);
    assert_int_equal(tern_store_read(s, 0, 3, out, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tern_store_read(s, 0, 0, out, 0, &n), 0);
    assert_int_equal(n, 0);
    tern_store_close(s);

    /* After reopening the per-row device survives too. */
    s = open1(f->path);
    assert_int_equal(tern_store_read(s, 0, 0, out, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(out[0].device_id, "pi-01");
    assert_string_equal(out[1].device_id, "other-device");
    assert_string_equal(out[2].device_id, "pi-01");
    tern_store_close(s);
}

static void test_commit_by_count_and_time(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open_with(f->path, one_uplink, 1, 10, 0, 0);
    append_n(s, 1, 25);
    assert_int_equal(tern_store_durable_seq(s), 20);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.commits, 2);
    assert_int_equal(st.last_seq, 25);
    /* A tick before commit_ms has passed changes nothing... */
    assert_int_equal(tern_store_tick(s, tern_mono_ms()), 0);
    assert_int_equal(tern_store_durable_seq(s), 20);
    /* ...one after it commits the rest. */
    assert_int_equal(tern_store_tick(s, tern_mono_ms() + 1001), 0);
    assert_int_equal(tern_store_durable_seq(s), 25);
    tern_store_close(s);
}

static void test_seq_never_reused(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open1(f->path);
    append_n(s, 1, 5);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_ack(s, 0, 1, 5), 0);
    assert_int_equal(tern_store_acked_seq(s, 0), 5);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 0);
    tern_store_close(s);
    assert_int_equal(util_query_int(f->path, "SELECT count(*) FROM blocks"), 0);

    s = open1(f->path);
    struct tern_reading r;
    util_reading(&r, 6);
    assert_int_equal(tern_store_append(s, &r, 1), 0);
    assert_int_equal(r.seq, 6);
    assert_int_equal(tern_store_acked_seq(s, 0), 5);
    tern_store_close(s);
}

static void test_out_of_order_acks(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open1(f->path);
    append_n(s, 1, 30);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_reading out[10];
    size_t n;
    /* Three batches in flight. */
    assert_int_equal(tern_store_read(s, 0, 0, out, 10, &n), 0);
    assert_int_equal(out[0].seq, 1);
    assert_int_equal(tern_store_read(s, 0, 10, out, 10, &n), 0);
    assert_int_equal(out[0].seq, 11);
    assert_int_equal(tern_store_read(s, 0, 20, out, 10, &n), 0);
    assert_int_equal(out[9].seq, 30);
    /* The last batch is acked first, then a part of the middle one. */
    assert_int_equal(tern_store_ack(s, 0, 21, 30), 0);
    assert_int_equal(tern_store_acked_seq(s, 0), 0);
    assert_int_equal(tern_store_ack(s, 0, 14, 16), 0);
    /* A re-read from the cursor (the forwarder after a failure) skips acked runs. */
    int64_t expect[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_int_equal(tern_store_read(s, 0, 0, out, 10, &n), 0);
    assert_int_equal(n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(out[i].seq, expect[i]);
    assert_int_equal(tern_store_read(s, 0, 10, out, 10, &n), 0);
    assert_int_equal(n, 7);
    int64_t expect2[] = {11, 12, 13, 17, 18, 19, 20};
    for (int i = 0; i < 7; i++)
        assert_int_equal(out[i].seq, expect2[i]);
    /* Overlapping and duplicate acks are fine. */
    assert_int_equal(tern_store_ack(s, 0, 11, 15), 0);
    assert_int_equal(tern_store_ack(s, 0, 21, 25), 0);
    assert_int_equal(tern_store_acked_seq(s, 0), 0);
    assert_int_equal(tern_store_ack(s, 0, 1, 10), 0);
    assert_int_equal(tern_store_acked_seq(s, 0), 16);
    assert_int_equal(tern_store_ack(s, 0, 17, 20), 0);
    assert_int_equal(tern_store_acked_seq(s, 0), 30);
    assert_int_equal(tern_store_read(s, 0, 0, out, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 0);
    tern_store_close(s);
    /* Only the contiguous cursor is persisted. */
    assert_int_equal(util_query_int(f->path, "SELECT acked_seq FROM uplinks WHERE name='mqtt'"),
                     30);
}

static void test_out_of_order_lost_on_reopen(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open1(f->path);
    append_n(s, 1, 20);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_ack(s, 0, 1, 5), 0);
    assert_int_equal(tern_store_ack(s, 0, 11, 20), 0); /* beyond the cursor */
    tern_store_close(s);
    s = open1(f->path);
    assert_int_equal(tern_store_acked_seq(s, 0), 5);
    struct tern_reading out[20];
    size_t n;
    assert_int_equal(tern_store_read(s, 0, 0, out, 20, &n), 0);
    assert_int_equal(n, 15); /* 6..20: the out-of-order range is sent again */
    assert_int_equal(out[0].seq, 6);
    tern_store_close(s);
}

static void test_several_uplinks(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open_with(f->path, two_uplinks, 2, 1000, 0, 0);
    int a = tern_store_uplink(s, "mqtt"), b = tern_store_uplink(s, "kafka");
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    append_n(s, 1, 10);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_ack(s, a, 1, 10), 0);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 10); /* kafka has not acked */
    struct tern_reading out[10];
    size_t n;
    assert_int_equal(tern_store_read(s, a, 0, out, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tern_store_read(s, b, 0, out, 10, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(tern_store_ack(s, b, 1, 4), 0);
    assert_int_equal(tern_store_flush(s), 0);
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 6);
    assert_int_equal(tern_store_ack(s, b, 5, 10), 0);
    assert_int_equal(tern_store_flush(s), 0);
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 0);
    tern_store_close(s);
}

static void test_uplink_config_change(void **state)
{
    struct util_fx *f = *state;
    const char *const ab[] = {"a", "b"};
    const char *const ac[] = {"a", "c"};
    tern_store *s = open_with(f->path, ab, 2, 1000, 0, 0);
    append_n(s, 1, 10);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_ack(s, 0, 1, 10), 0);
    assert_int_equal(tern_store_ack(s, 1, 1, 5), 0);
    tern_store_close(s);
    /* 6..10 are still owed to b (1..5 share their block, which stays whole). */
    struct util_scan sc;
    assert_int_equal(util_scan(f->path, 5, 10, 0, &sc), 0);
    assert_int_equal(sc.in_range, 5);
    assert_int_equal(sc.bad_blocks, 0);

    /* b is forgotten; c is new and starts at the oldest queued reading (6). */
    s = open_with(f->path, ac, 2, 1000, 0, 0);
    assert_int_equal(util_query_int(f->path, "SELECT count(*) FROM uplinks WHERE name='b'"), -1);
    assert_int_equal(tern_store_acked_seq(s, 1), 5);
    struct tern_reading out[10];
    size_t n;
    assert_int_equal(tern_store_read(s, 1, 0, out, 10, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(out[0].seq, 6);
    assert_int_equal(tern_store_read(s, 0, 0, out, 10, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tern_store_ack(s, 1, 6, 10), 0);
    /* Deletion happens at the next commit (tick or flush). */
    assert_int_equal(tern_store_tick(s, tern_mono_ms() + 5000), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 0);
    tern_store_close(s);
    assert_int_equal(util_query_int(f->path, "SELECT count(*) FROM uplinks"), 2);
    assert_int_equal(util_query_int(f->path, "SELECT count(*) FROM uplinks WHERE name='b'"), 0);

    /* A new uplink on an empty queue starts after the last seq. */
    const char *const d[] = {"d"};
    s = open_with(f->path, d, 1, 1000, 0, 0);
    assert_int_equal(tern_store_acked_seq(s, 0), 10);
    tern_store_close(s);
}

/* Readings with big tags so a small cap fills fast. */
static void append_fat(tern_store *s, size_t n, size_t *refused)
{
    struct tern_reading r[50];
    while (n > 0) {
        size_t k = n < 50 ? n : 50;
        for (size_t i = 0; i < k; i++) {
            util_fat_reading(&r[i], (int64_t)i);
        }
        assert_int_equal(tern_store_append(s, r, k), 0);
        for (size_t i = 0; i < k; i++)
            if (r[i].seq == 0)
                (*refused)++;
        n -= k;
        tern_store_tick(s, tern_mono_ms());
    }
}

/* Documented slack: 64 KiB plus one commit's worth of readings. */
#define SLACK(every) ((64u << 10) + (every) * 600u)

static void test_cap_drop_oldest(void **state)
{
    struct util_fx *f = *state;
    const uint64_t cap = 1u << 20;
    tern_store *s = open_with(f->path, one_uplink, 1, 100, cap, TERN_OVERFLOW_DROP_OLDEST);
    size_t refused = 0;
    struct tern_store_stats st;
    for (int round = 0; round < 10; round++) {
        append_fat(s, 2000, &refused);
        tern_store_stats(s, &st);
        assert_true(st.file_bytes <= cap + SLACK(100));
    }
    assert_int_equal(refused, 0);
    assert_int_equal(tern_store_flush(s), 0);
    tern_store_stats(s, &st);
    assert_true(st.dropped[TERN_DROP_OVERFLOW_OLDEST] > 0);
    assert_int_equal(st.queued + st.dropped[TERN_DROP_OVERFLOW_OLDEST], 20000);
    /* The uplink's cursor moved past what was dropped; reads start after it. */
    struct tern_reading out[1];
    size_t n;
    assert_int_equal(tern_store_read(s, 0, 0, out, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].seq, (int64_t)st.dropped[TERN_DROP_OVERFLOW_OLDEST] + 1);
    assert_int_equal(tern_store_acked_seq(s, 0), out[0].seq - 1);
    tern_store_close(s);
    assert_true(util_integrity_ok(f->path));
}

static void test_cap_drop_newest(void **state)
{
    struct util_fx *f = *state;
    const uint64_t cap = 1u << 20;
    tern_store *s = open_with(f->path, one_uplink, 1, 100, cap, TERN_OVERFLOW_DROP_NEWEST);
    size_t refused = 0;
    append_fat(s, 20000, &refused);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_true(refused > 0);
    assert_int_equal(st.dropped[TERN_DROP_OVERFLOW_NEWEST], refused);
    assert_int_equal(st.dropped[TERN_DROP_OVERFLOW_OLDEST], 0);
    assert_int_equal(st.queued + refused, 20000);
    assert_true(st.file_bytes <= cap + SLACK(100));
    struct tern_reading out[1];
    size_t n;
    assert_int_equal(tern_store_read(s, 0, 0, out, 1, &n), 0);
    assert_int_equal(out[0].seq, 1); /* the oldest is kept */
    /* Once delivered, room returns and appends are taken again. */
    assert_int_equal(tern_store_ack(s, 0, 1, st.last_seq), 0);
    assert_int_equal(tern_store_flush(s), 0);
    size_t refused2 = 0;
    append_fat(s, 100, &refused2);
    assert_int_equal(refused2, 0);
    tern_store_close(s);
}

static void test_age_limit(void **state)
{
    struct util_fx *f = *state;
    struct tern_store_options o = {
        .path = f->path, .uplinks = one_uplink, .n_uplinks = 1, .max_age_ms = 60000};
    tern_store *s = NULL;
    assert_int_equal(tern_store_open(&o, &s, NULL, 0), 0);
    struct tern_reading r[10];
    int64_t now = tern_utc_ms();
    for (int i = 0; i < 10; i++) {
        util_reading(&r[i], i);
        r[i].ts_ms = i < 4 ? now - 3600000 : now;
    }
    r[6].ts_ms = now - 3600000; /* old but behind fresh ones: kept (prefix only) */
    assert_int_equal(tern_store_append(s, r, 10), 0);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_tick(s, tern_mono_ms()), 0);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.dropped[TERN_DROP_AGE], 4);
    assert_int_equal(st.queued, 6);
    assert_int_equal(tern_store_acked_seq(s, 0), 4);
    struct tern_reading out[10];
    size_t n;
    assert_int_equal(tern_store_read(s, 0, 0, out, 10, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(out[0].seq, 5);
    tern_store_close(s);

    /* Unsynced timestamps are never aged out. */
    char p2[320];
    snprintf(p2, sizeof p2, "%s/age2.db", f->dir);
    o.path = p2;
    assert_int_equal(tern_store_open(&o, &s, NULL, 0), 0);
    util_reading(&r[0], 0);
    r[0].ts_ms = 1000;
    r[0].flags = TERN_READING_CLOCK_UNSYNCED;
    assert_int_equal(tern_store_append(s, r, 1), 0);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_tick(s, tern_mono_ms()), 0);
    tern_store_stats(s, &st);
    assert_int_equal(st.dropped[TERN_DROP_AGE], 0);
    assert_int_equal(st.queued, 1);
    tern_store_close(s);
}

static void test_reclaim_space(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open_with(f->path, one_uplink, 1, 1000, 0, 0);
    size_t refused = 0;
    append_fat(s, 20000, &refused);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    uint64_t big = st.file_bytes;
    assert_true(big > (4u << 20));
    assert_int_equal(tern_store_ack(s, 0, 1, st.last_seq), 0);
    assert_int_equal(tern_store_flush(s), 0);
    /* Reclaim runs in bounded steps, one per tick: wait for it with a bound. */
    int64_t t = tern_mono_ms();
    for (int i = 0; i < 200; i++) {
        t += 1000; /* one reclaim step per second of tick time */
        assert_int_equal(tern_store_tick(s, t), 0);
        tern_store_stats(s, &st);
        if (st.file_bytes < big / 4)
            break;
    }
    if (st.file_bytes >= big / 4)
        print_message("file_bytes %" PRIu64 " of %" PRIu64 "\n", st.file_bytes, big);
    assert_true(st.file_bytes < big / 4);
    tern_store_close(s);
    assert_true(util_integrity_ok(f->path));
}

static void test_stats_bytes_written(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open_with(f->path, one_uplink, 1, 100, 0, 0);
    append_n(s, 1, 5000);
    assert_int_equal(tern_store_flush(s), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.appended, 5000);
    assert_int_equal(st.commits, 50);
    if (access("/proc/self/io", R_OK) == 0) {
        /* Zero is possible on tmpfs only; the scratch dir is on a disk. */
        print_message("bytes_written_per_reading=%.1f\n", st.bytes_written_per_reading);
        assert_true(st.bytes_written_per_reading >= 0);
    } else {
        assert_true(st.bytes_written_per_reading < 0);
    }
    tern_store_close(s);
}

/* Strings go through a bounded dictionary (ids in rows), spill inline when
 * it is full, and the dictionary is reset once the queue is empty. */
static void test_string_dictionary(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open_with(f->path, one_uplink, 1, 500, 0, 0);
    const int total = 5000; /* more distinct tags than the dictionary holds */
    struct tern_reading r[100], out[100];
    for (int i = 0; i < total; i += 100) {
        for (int k = 0; k < 100; k++) {
            util_reading(&r[k], i + k);
            snprintf(r[k].tags, sizeof r[k].tags, "{\"i\":\"%d\"}", i + k);
            r[k].value = i + k;
        }
        assert_int_equal(tern_store_append(s, r, 100), 0);
    }
    assert_int_equal(tern_store_flush(s), 0);
    int64_t after = 0;
    int seen = 0;
    for (;;) {
        size_t n = 0;
        assert_int_equal(tern_store_read(s, 0, after, out, 100, &n), 0);
        if (n == 0)
            break;
        for (size_t k = 0; k < n; k++) {
            char want[64];
            snprintf(want, sizeof want, "{\"i\":\"%d\"}", (int)out[k].value);
            assert_string_equal(out[k].tags, want);
            assert_string_equal(out[k].unit, ((int)out[k].value % 2) ? "%" : "Cel");
            seen++;
        }
        after = out[n - 1].seq;
    }
    assert_int_equal(seen, total);
    tern_store_close(s);
    struct util_scan sc;
    assert_int_equal(util_scan(f->path, 0, INT64_MAX, 0, &sc), 0);
    assert_true(sc.tags_id > 0);     /* while the dictionary had room */
    assert_true(sc.tags_inline > 0); /* once it was full */
    assert_int_equal(sc.bad_blocks, 0);
    assert_true(util_query_int(f->path, "SELECT count(*) FROM strings") > 2048);

    s = open_with(f->path, one_uplink, 1, 500, 0, 0);
    assert_int_equal(tern_store_ack(s, 0, 1, total), 0);
    assert_int_equal(tern_store_flush(s), 0);
    util_reading(&r[0], 1);
    assert_int_equal(tern_store_append(s, r, 1), 0);
    assert_int_equal(tern_store_flush(s), 0);
    tern_store_close(s);
    /* Reset, then only the new reading's strings (device, sensor, metric,
     * unit, tags). */
    assert_true(util_query_int(f->path, "SELECT count(*) FROM strings") <= 5);
    s = open_with(f->path, one_uplink, 1, 500, 0, 0);
    size_t n = 0;
    assert_int_equal(tern_store_read(s, 0, 0, out, 100, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].tags, r[0].tags);
    assert_string_equal(out[0].sensor, r[0].sensor);
    assert_string_equal(out[0].metric, r[0].metric);
    tern_store_close(s);
}

static void test_alloc_failures(void **state)
{
    struct util_fx *f = *state;
    struct tern_store_options o = {.path = f->path, .uplinks = two_uplinks, .n_uplinks = 2};
    int ok = 0;
    for (unsigned long k = 1; k < 40; k++) {
        tern_store *s = NULL;
        char err[128];
        tern_alloc_fail_at(k);
        int rc = tern_store_open(&o, &s, err, sizeof err);
        if (rc == 0) {
            append_n(s, 1, 3);
            struct tern_reading out[3];
            size_t n;
            tern_store_read(s, 0, 0, out, 3, &n);
            tern_store_ack(s, 0, 3, 3); /* out of order: allocates */
            tern_store_ack(s, 0, 1, 1);
            tern_store_close(s);
            ok++;
        } else {
            assert_null(s);
        }
        tern_alloc_fail_at(0);
    }
    assert_true(ok > 0);
}

/* Writes a schema version 1 file (one row per reading, as the first
 * release stored them) with readings from..to of util_reading: sensor and
 * metric as string ids, unit inline, device NULL (= meta device_id). When
 * blocks_upto > 0, readings from..blocks_upto are instead already in a
 * blocks table, as an interrupted conversion leaves them. */
static void make_v1(const char *path, int64_t from, int64_t to, int64_t blocks_upto)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *ddl =
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;"
        "CREATE TABLE readings(seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, device TEXT,"
        " sensor NOT NULL, metric NOT NULL, unit NOT NULL, value REAL NOT NULL,"
        " tags NOT NULL, flags INTEGER NOT NULL);"
        "CREATE TABLE strings(id INTEGER PRIMARY KEY, text TEXT NOT NULL);"
        "CREATE TABLE uplinks(name TEXT PRIMARY KEY NOT NULL, acked_seq INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "INSERT INTO meta VALUES('epoch', 77), ('schema_version', 1), ('device_id', 'pi-01'),"
        " ('created_ms', 1);"
        "INSERT INTO strings VALUES(1, 'env0'), (2, 'env1'), (3, 'env2'), (4, 'env3'),"
        " (5, 'temperature'), (6, 'humidity'), (7, '{\"site\":\"lab\"}'), (8, 'pi-01');"
        "INSERT INTO uplinks VALUES('mqtt', 0);";
    assert_int_equal(sqlite3_exec(db, ddl, NULL, NULL, NULL), SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO meta VALUES('seq_hwm', %" PRId64 ")", to);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *ins = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO readings VALUES(?1, ?2, NULL, ?3, ?4, ?5,"
                                        " ?6, 7, 0)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    struct block_enc *b = calloc(1, sizeof *b);
    assert_non_null(b);
    block_enc_reset(b);
    if (blocks_upto > 0)
        assert_int_equal(sqlite3_exec(db, SQL_CREATE_BLOCKS, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    for (int64_t seq = from; seq <= to; seq++) {
        struct tern_reading r;
        util_reading(&r, seq);
        if (seq <= blocks_upto) {
            struct block_item it = {.ts_ms = 1000 + seq, .value = r.value};
            it.str[BLOCK_DEVICE].id = 8;
            it.str[BLOCK_SENSOR].id = (uint32_t)(1 + seq % 4);
            it.str[BLOCK_METRIC].id = (seq % 2) ? 6 : 5;
            it.str[BLOCK_UNIT].text = r.unit;
            it.str[BLOCK_UNIT].len = strlen(r.unit);
            it.str[BLOCK_TAGS].id = 7;
            block_enc_put(b, seq, &it);
            if (block_enc_full(b) || seq == blocks_upto) {
                sqlite3_stmt *bi = NULL;
                assert_int_equal(sqlite3_prepare_v2(db, SQL_BLOCKS_INSERT, -1, &bi, NULL),
                                 SQLITE_OK);
                sqlite3_bind_int64(bi, 1, seq);
                sqlite3_bind_int64(bi, 2, b->first_seq);
                sqlite3_bind_blob(bi, 3, b->buf, (int)b->len, SQLITE_STATIC);
                assert_int_equal(sqlite3_step(bi), SQLITE_DONE);
                sqlite3_finalize(bi);
                block_enc_reset(b);
            }
            continue;
        }
        sqlite3_bind_int64(ins, 1, seq);
        sqlite3_bind_int64(ins, 2, 1000 + seq);
        sqlite3_bind_int64(ins, 3, 1 + seq % 4);
        sqlite3_bind_int64(ins, 4, (seq % 2) ? 6 : 5);
        sqlite3_bind_text(ins, 5, r.unit, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(ins, 6, r.value);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_finalize(ins);
    free(b);
    sqlite3_close(db);
}

/* Reads everything pending for uplink 0 and checks it is exactly
 * util_reading(from..to) with the v1 fixture's timestamps. */
static void expect_v1_readings(tern_store *s, int64_t from, int64_t to)
{
    struct tern_reading out[100];
    int64_t after = 0, want = from;
    size_t n;
    do {
        assert_int_equal(tern_store_read(s, 0, after, out, 100, &n), 0);
        for (size_t i = 0; i < n; i++, want++) {
            struct tern_reading r;
            util_reading(&r, want);
            assert_int_equal(out[i].seq, want);
            assert_int_equal(out[i].epoch, 77);
            assert_int_equal(out[i].ts_ms, 1000 + want);
            assert_true(out[i].value == r.value);
            assert_string_equal(out[i].device_id, "pi-01");
            assert_string_equal(out[i].sensor, r.sensor);
            assert_string_equal(out[i].metric, r.metric);
            assert_string_equal(out[i].unit, r.unit);
            assert_string_equal(out[i].tags, r.tags);
        }
        if (n)
            after = out[n - 1].seq;
    } while (n > 0);
    assert_int_equal(want, to + 1);
}

/* An agent upgraded with a backlog in a version 1 file keeps every reading,
 * with its epoch and seq, and goes on numbering after them. */
static void test_migrate_v1(void **state)
{
    struct util_fx *f = *state;
    make_v1(f->path, 1, 70000, 0);
    tern_store *s = open1(f->path);
    assert_int_equal(tern_store_epoch(s), 77);
    expect_v1_readings(s, 1, 70000);
    struct tern_reading r;
    util_reading(&r, 1);
    assert_int_equal(tern_store_append(s, &r, 1), 0);
    assert_int_equal(r.seq, 70001);
    tern_store_close(s);
    assert_int_equal(util_query_int(f->path, "SELECT value FROM meta WHERE key='schema_version'"),
                     TERN_STORE_SCHEMA_VERSION);
    assert_int_equal(util_query_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE "
                                             "name='readings'"),
                     0);
    assert_true(util_integrity_ok(f->path));
}

/* A conversion interrupted between two of its transactions goes on. */
static void test_migrate_v1_interrupted(void **state)
{
    struct util_fx *f = *state;
    make_v1(f->path, 1, 500, 200);
    tern_store *s = open1(f->path);
    expect_v1_readings(s, 1, 500);
    tern_store_close(s);
    struct util_scan sc;
    assert_int_equal(util_scan(f->path, 0, 500, 0, &sc), 0);
    assert_int_equal(sc.in_range, 500);
    assert_int_equal(sc.bad_blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_args, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_epoch_and_reopen, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_and_durable_only, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_commit_by_count_and_time, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_seq_never_reused, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_acks, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_lost_on_reopen, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_several_uplinks, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_uplink_config_change, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cap_drop_oldest, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cap_drop_newest, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_age_limit, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_space, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_stats_bytes_written, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_string_dictionary, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1_interrupted, setup, util_fx_teardown),
    };
    tern_log_init("test_storage", TERN_LOG_WARN, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
