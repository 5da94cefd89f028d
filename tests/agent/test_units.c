/* test_units.c - duration/size/bool/int parsing, the drain token bucket and
 * the reconnect backoff (full jitter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "clockfix.h"
#include "token_bucket.h"
#include "units.h"

static void test_duration(void **st)
{
    (void)st;
    int64_t ms;
    assert_int_equal(tern_parse_duration_ms("500ms", 1000, &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(tern_parse_duration_ms("10s", 1000, &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(tern_parse_duration_ms("5m", 1000, &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(tern_parse_duration_ms("1.5s", 1000, &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(tern_parse_duration_ms("2h", 1000, &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(tern_parse_duration_ms("1d", 1000, &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(tern_parse_duration_ms("3", 1000, &ms), 0); /* bare: seconds */
    assert_int_equal(ms, 3000);
    assert_int_equal(tern_parse_duration_ms("250", 1, &ms), 0);  /* bare: ms */
    assert_int_equal(ms, 250);
    assert_int_equal(tern_parse_duration_ms("10 s", 1000, &ms), 0);
    assert_int_equal(ms, 10000);
    const char *bad[] = {"", "s", "-1s", "10x", "1e3", "10sec", "1..2s", " 5s", "0x10", "inf",
                         "99999999999999999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tern_parse_duration_ms(bad[i], 1000, &ms), -1);
}

static void test_size(void **st)
{
    (void)st;
    uint64_t b;
    assert_int_equal(tern_parse_size("64MiB", &b), 0);
    assert_int_equal(b, 64u * 1024 * 1024);
    assert_int_equal(tern_parse_size("4096", &b), 0);
    assert_int_equal(b, 4096);
    assert_int_equal(tern_parse_size("1GB", &b), 0);
    assert_int_equal(b, 1000000000u);
    assert_int_equal(tern_parse_size("2KiB", &b), 0);
    assert_int_equal(b, 2048);
    assert_int_equal(tern_parse_size("1.5K", &b), 0);
    assert_int_equal(b, 1536);
    assert_int_equal(tern_parse_size("10B", &b), 0);
    assert_int_equal(b, 10);
    const char *bad[] = {"", "MiB", "-1", "64mib", "64 XB", "1e9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tern_parse_size(bad[i], &b), -1);
}

static void test_bool_int(void **st)
{
    (void)st;
    int v;
    assert_int_equal(tern_parse_bool("Yes", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(tern_parse_bool("off", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(tern_parse_bool("maybe", &v), -1);
    int64_t i;
    assert_int_equal(tern_parse_int("-5", -10, 10, &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(tern_parse_int("11", -10, 10, &i), -1);
    assert_int_equal(tern_parse_int("1x", 0, 10, &i), -1);
    assert_int_equal(tern_parse_int("", 0, 10, &i), -1);
    assert_int_equal(tern_parse_int("99999999999999999999", 0, INT64_MAX, &i), -1);
}

static void test_format(void **st)
{
    (void)st;
    char buf[32];
    tern_format_duration(0, buf, sizeof buf);
    assert_string_equal(buf, "0");
    tern_format_duration(1500, buf, sizeof buf);
    assert_string_equal(buf, "1500ms");
    tern_format_duration(60000, buf, sizeof buf);
    assert_string_equal(buf, "1m");
    tern_format_size(256u * 1024 * 1024, buf, sizeof buf);
    assert_string_equal(buf, "256MiB");
    tern_format_size(1000, buf, sizeof buf);
    assert_string_equal(buf, "1000");
}

static void test_token_bucket(void **st)
{
    (void)st;
    struct tern_token_bucket tb;
    tern_tb_init(&tb, 100, 50, 1000);
    assert_int_equal(tern_tb_available(&tb, 1000), 50); /* starts full at burst */
    tern_tb_take(&tb, 50);
    assert_int_equal(tern_tb_available(&tb, 1000), 0);
    assert_int_equal(tern_tb_wait_ms(&tb), 10); /* one token every 10 ms */
    assert_int_equal(tern_tb_available(&tb, 1100), 10);
    assert_int_equal(tern_tb_available(&tb, 5000), 50); /* capped at burst */
    tern_tb_take(&tb, 80); /* a larger batch goes into debt */
    assert_int_equal(tern_tb_available(&tb, 5000), 0);
    assert_int_equal(tern_tb_available(&tb, 5300), 0);   /* -30 + 30 = 0 */
    assert_int_equal(tern_tb_available(&tb, 5310), 1);
    /* Over 10 s the average rate holds. */
    tern_tb_init(&tb, 100, 100, 0);
    uint64_t total = 0;
    for (int64_t t = 0; t <= 10000; t += 7) {
        uint32_t n = tern_tb_available(&tb, t);
        tern_tb_take(&tb, n);
        total += n;
    }
    assert_true(total >= 1000 && total <= 1101);
    /* rate 0 = unlimited */
    tern_tb_init(&tb, 0, 0, 0);
    assert_int_equal(tern_tb_available(&tb, 0), UINT32_MAX);
    assert_int_equal(tern_tb_wait_ms(&tb), 0);
}

static void test_backoff(void **st)
{
    (void)st;
    struct tern_backoff b;
    tern_backoff_init(&b, 100, 1000);
    int64_t ceil = 100;
    int64_t max_seen = 0;
    for (int i = 0; i < 200; i++) {
        int64_t d = tern_backoff_next(&b);
        assert_true(d >= 0 && d <= ceil); /* full jitter: uniform in [0, ceiling] */
        if (d > max_seen)
            max_seen = d;
        if (ceil < 1000)
            ceil = ceil * 2 > 1000 ? 1000 : ceil * 2;
    }
    assert_true(max_seen > 500); /* the ceiling really reaches the cap */
    tern_backoff_reset(&b);
    for (int i = 0; i < 20; i++) {
        tern_backoff_reset(&b);
        assert_true(tern_backoff_next(&b) <= 100);
    }
}

/* Clock integrity: readings of this boot taken before the clock was set are
 * shifted by the step the clock took; earlier boots and synced ones are not. */
static void test_clockfix(void **st)
{
    (void)st;
    struct tern_reading r[4];
    memset(r, 0, sizeof r);
    int64_t raw = 86400000;   /* the raw clock said 1970-01-02 */
    for (int i = 0; i < 4; i++) {
        r[i].seq = 10 + i;
        r[i].ts_ms = raw + i * 1000;
        r[i].flags = TERN_READING_CLOCK_UNSYNCED;
    }
    r[3].flags = 0;           /* taken after the sync: untouched */
    r[3].ts_ms = 1764000000000LL;
    int64_t offset_then = raw - 5000;            /* utc - boottime while unsynced */
    int64_t offset_now = 1764000000000LL - 9000; /* after the step */
    /* seq 10 belongs to an earlier boot (floor 10): left flagged. */
    assert_int_equal(tern_clockfix_correct(r, 4, 10, offset_then, offset_now), 2);
    assert_int_equal(r[0].ts_ms, raw);
    assert_true(r[0].flags & TERN_READING_CLOCK_UNSYNCED);
    assert_int_equal(r[1].ts_ms, raw + 1000 + (offset_now - offset_then));
    assert_int_equal(r[1].flags, 0);
    assert_int_equal(r[2].ts_ms - r[1].ts_ms, 1000); /* spacing kept */
    assert_int_equal(r[3].ts_ms, 1764000000000LL);
    /* Applying twice changes nothing more. */
    assert_int_equal(tern_clockfix_correct(r, 4, 10, offset_then, offset_now), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),     cmocka_unit_test(test_size),
        cmocka_unit_test(test_bool_int),     cmocka_unit_test(test_format),
        cmocka_unit_test(test_token_bucket), cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_clockfix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
