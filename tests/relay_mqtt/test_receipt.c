/* test_receipt.c - end-to-end receipts: range coalescing, the exact encoding,
 * decoding (round trip and every rejection), and the relay's cheap scan of
 * a wire line's identity (epoch, seq, device_id) that receipts are built
 * from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "receipt.h"
#include "source_mqtt.h"
#include "wire.h"

#define R(a, b) ((struct tern_seq_range){(a), (b)})

static void test_coalesce(void **state)
{
    (void)state;
    struct tern_seq_range r[] = {R(10, 12), R(1, 3), R(4, 5), R(2, 2), R(20, 30), R(13, 13), R(25, 40), R(9, 8)};
    size_t n = tern_receipt_coalesce(r, sizeof(r) / sizeof(r[0]));
    /* [1,3]+[4,5] adjacent, [2,2] inside, [10,12]+[13,13] adjacent,
     * [20,30]+[25,40] overlap, [9,8] empty and dropped. */
    assert_int_equal(n, 3);
    assert_true(r[0].first == 1 && r[0].last == 5);
    assert_true(r[1].first == 10 && r[1].last == 13);
    assert_true(r[2].first == 20 && r[2].last == 40);

    struct tern_seq_range one[] = {R(7, 7)};
    assert_int_equal(tern_receipt_coalesce(one, 1), 1);
    assert_int_equal(tern_receipt_coalesce(one, 0), 0);

    struct tern_seq_range top[] = {R(INT64_MAX - 1, INT64_MAX), R(5, INT64_MAX), R(1, 2)};
    n = tern_receipt_coalesce(top, 3);
    assert_int_equal(n, 2);
    assert_true(top[1].first == 5 && top[1].last == INT64_MAX);
}

static void test_encode_exact(void **state)
{
    (void)state;
    char buf[TERN_RECEIPT_MAX_BYTES];
    struct tern_seq_range r[] = {R(1, 500), R(502, 900)};
    int len = tern_receipt_encode(0x00c0ffee00c0ffeeULL, r, 2, buf, sizeof(buf));
    const char *want = "{\"v\":1,\"epoch\":\"00c0ffee00c0ffee\",\"ranges\":[[1,500],[502,900]]}";
    assert_int_equal(len, (int)strlen(want));
    assert_string_equal(buf, want);
    /* Too small a buffer, nothing to say, too much to say. */
    assert_int_equal(tern_receipt_encode(1, r, 2, buf, (size_t)len), -1);
    assert_int_equal(tern_receipt_encode(1, r, 2, buf, (size_t)len + 1), len);
    assert_int_equal(tern_receipt_encode(1, r, 0, buf, sizeof(buf)), -1);
    assert_int_equal(tern_receipt_encode(1, r, TERN_RECEIPT_MAX_RANGES + 1, buf, sizeof(buf)), -1);
}

static void test_roundtrip_max(void **state)
{
    (void)state;
    static struct tern_seq_range in[TERN_RECEIPT_MAX_RANGES], out[TERN_RECEIPT_MAX_RANGES];
    static char buf[TERN_RECEIPT_MAX_BYTES];
    for (size_t i = 0; i < TERN_RECEIPT_MAX_RANGES; i++)
        in[i] = R(INT64_MAX - 4 * (int64_t)(TERN_RECEIPT_MAX_RANGES - i), INT64_MAX - 4 * (int64_t)(TERN_RECEIPT_MAX_RANGES - i) + 1);
    int len = tern_receipt_encode(UINT64_MAX, in, TERN_RECEIPT_MAX_RANGES, buf, sizeof(buf));
    assert_true(len > 0);
    uint64_t epoch = 0;
    size_t n = 0;
    char err[128];
    assert_int_equal(tern_receipt_decode(buf, (size_t)len, &epoch, out, &n, err, sizeof(err)), 0);
    assert_true(epoch == UINT64_MAX);
    assert_int_equal(n, TERN_RECEIPT_MAX_RANGES);
    assert_memory_equal(in, out, sizeof(in));
}

static void test_decode(void **state)
{
    (void)state;
    struct tern_seq_range out[TERN_RECEIPT_MAX_RANGES];
    uint64_t epoch = 0;
    size_t n = 0;
    char err[128];
    /* Unknown fields are fine; ranges come back coalesced. */
    const char *ok = "{\"ranges\":[[5,9],[1,4],[20,20]],\"epoch\":\"0000000000000001\",\"v\":1,\"relay\":\"r1\"}";
    assert_int_equal(tern_receipt_decode(ok, strlen(ok), &epoch, out, &n, err, sizeof(err)), 0);
    assert_true(epoch == 1);
    assert_int_equal(n, 2);
    assert_true(out[0].first == 1 && out[0].last == 9 && out[1].first == 20 && out[1].last == 20);
    /* Empty ranges are valid (nothing to ack). */
    const char *empty = "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[]}";
    assert_int_equal(tern_receipt_decode(empty, strlen(empty), &epoch, out, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);

    static const char *bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"v\":2,\"epoch\":\"0000000000000001\",\"ranges\":[[1,2]]}",
        "{\"epoch\":\"0000000000000001\",\"ranges\":[[1,2]]}",
        "{\"v\":1,\"epoch\":\"00000000000000AB\",\"ranges\":[[1,2]]}",
        "{\"v\":1,\"epoch\":\"001\",\"ranges\":[[1,2]]}",
        "{\"v\":1,\"epoch\":1,\"ranges\":[[1,2]]}",
        "{\"v\":1,\"epoch\":\"0000000000000001\"}",
        "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[[2,1]]}",
        "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[[0,1]]}",
        "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[[1]]}",
        "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[[1,2,3]]}",
        "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[[1,2.5]]}",
        "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[1,2]}",
        "{\"v\":1,\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[[1,2]]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (tern_receipt_decode(bad[i], strlen(bad[i]), &epoch, out, &n, err, sizeof(err)) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
    /* More than the maximum number of ranges. */
    static char big[TERN_RECEIPT_MAX_BYTES + 64];
    size_t len = (size_t)snprintf(big, sizeof(big), "{\"v\":1,\"epoch\":\"0000000000000001\",\"ranges\":[");
    for (int i = 0; i <= TERN_RECEIPT_MAX_RANGES; i++)
        len += (size_t)snprintf(big + len, sizeof(big) - len, "%s[%d,%d]", i ? "," : "", 3 * i + 1, 3 * i + 1);
    len += (size_t)snprintf(big + len, sizeof(big) - len, "]}");
    assert_int_equal(tern_receipt_decode(big, len, &epoch, out, &n, err, sizeof(err)), -1);
}

static void test_line_identity(void **state)
{
    (void)state;
    struct tern_reading r;
    memset(&r, 0, sizeof(r));
    snprintf(r.device_id, sizeof(r.device_id), "pi-01");
    snprintf(r.sensor, sizeof(r.sensor), "env");
    snprintf(r.metric, sizeof(r.metric), "temperature");
    snprintf(r.tags, sizeof(r.tags), "{\"seq\":\"7\",\"epoch\":\"ffffffffffffffff\"}");
    r.value = 21.5;
    r.ts_ms = 1795606685123;
    r.epoch = 0x00c0ffee00c0ffeeULL;
    r.seq = 9007199254740993LL;
    char line[TERN_WIRE_LINE_MAX + 1];
    size_t len = tern_wire_encode(&r, line, sizeof(line));
    uint64_t epoch = 0;
    int64_t seq = 0;
    /* The real fields, not the look-alike tag keys after them. */
    assert_int_equal(relay_line_identity(line, len, &epoch, &seq), 0);
    assert_true(epoch == r.epoch);
    assert_true(seq == r.seq);
    const char *dev = NULL;
    size_t devlen = 0;
    assert_int_equal(relay_line_device(line, len, &dev, &devlen), 0);
    assert_int_equal(devlen, 5);
    assert_memory_equal(dev, "pi-01", 5);

    static const char *bad[] = {
        "{\"v\":1,\"seq\":3}",
        "{\"v\":1,\"epoch\":\"00c0ffee00c0ffee\"}",
        "{\"epoch\":\"00C0FFEE00C0FFEE\",\"seq\":3}",
        "{\"epoch\":\"00c0ffee00c0ffe\",\"seq\":3}",
        "{\"epoch\":\"00c0ffee00c0ffee\",\"seq\":0}",
        "{\"epoch\":\"00c0ffee00c0ffee\",\"seq\":1.5}",
        "{\"epoch\":\"00c0ffee00c0ffee\",\"seq\":-1}",
        "{\"epoch\":\"00c0ffee00c0ffee\",\"seq\":99999999999999999999}",
        "{\"epoch\":\"00c0ffee00c0ffee\",\"seq\":",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (relay_line_identity(bad[i], strlen(bad[i]), &epoch, &seq) != -1)
            fail_msg("accepted: %s", bad[i]);
    const char *esc = "{\"device_id\":\"a\\\"b\"}";
    assert_int_equal(relay_line_device(esc, strlen(esc), &dev, &devlen), -1);
    assert_int_equal(relay_line_device("{\"x\":1}", 7, &dev, &devlen), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesce),      cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_roundtrip_max), cmocka_unit_test(test_decode),
        cmocka_unit_test(test_line_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
