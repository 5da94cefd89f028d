/* test_envelope.c - mapping JSON sensor envelopes to readings: identity
 * (dedup by id or by position), timestamps, units, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "envelope.h"
#include "pipeline.h"

static const char *ENV1 = "{\"id\":\"abc-1\",\"timestamp\":\"2026-11-25T11:38:05.123Z\","
                          "\"value\":{\"sensor_id\":\"s-7\",\"temperature\":23.5,\"humidity\":45,\"pressure\":1013}}";

static void spec(struct envelope_spec *s, const char *metrics, const char *dedup)
{
    struct relay_config c;
    char err[256];
    relay_config_defaults(&c);
    assert_int_equal(relay_config_set(&c, "envelope", "metrics", metrics, err, sizeof(err)), 0);
    assert_int_equal(relay_config_set(&c, "envelope", "dedup", dedup, err, sizeof(err)), 0);
    assert_int_equal(envelope_spec_init(s, &c, err, sizeof(err)), 0);
}

static void test_all_numeric_fields(void **state)
{
    struct envelope_spec s;
    struct tern_reading r[8];
    size_t n = 0;
    char err[256];
    spec(&s, "", "id");
    assert_int_equal(envelope_map(&s, ENV1, strlen(ENV1), NULL, r, 8, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].device_id, "s-7");
    assert_string_equal(r[0].sensor, "envelope");
    assert_string_equal(r[0].metric, "temperature");
    assert_true(r[0].value == 23.5);
    assert_int_equal(r[0].ts_ms, 1795606685123);
    assert_string_equal(r[2].metric, "pressure");
    assert_int_equal(r[0].seq, 1);
    assert_int_equal(r[2].seq, 3);
    assert_true(r[0].epoch == r[2].epoch);
    /* Same id: same identity, whatever the position. */
    struct tern_reading r2[8];
    struct envelope_pos pos = {"t", 5, 77};
    assert_int_equal(envelope_map(&s, ENV1, strlen(ENV1), &pos, r2, 8, &n, err, sizeof(err)), 0);
    assert_true(r2[0].epoch == r[0].epoch && r2[1].seq == r[1].seq);
}

static void test_configured_metrics_and_units(void **state)
{
    struct envelope_spec s;
    struct tern_reading r[8];
    size_t n = 0;
    char err[256];
    spec(&s, "pressure:hPa, temperature:Cel, wind:m/s", "id");
    assert_int_equal(envelope_map(&s, ENV1, strlen(ENV1), NULL, r, 8, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2); /* wind absent: skipped */
    assert_string_equal(r[0].metric, "pressure");
    assert_string_equal(r[0].unit, "hPa");
    assert_int_equal(r[0].seq, 1);
    assert_string_equal(r[1].unit, "Cel");
    assert_int_equal(r[1].seq, 2);
}

static void test_dedup_offset(void **state)
{
    struct envelope_spec s;
    struct tern_reading a[8], b[8];
    size_t n = 0;
    char err[256];
    spec(&s, "", "offset");
    struct envelope_pos p1 = {"t", 1, 10}, p2 = {"t", 1, 11}, p3 = {"t", 2, 10};
    assert_int_equal(envelope_map(&s, ENV1, strlen(ENV1), &p1, a, 8, &n, err, sizeof(err)), 0);
    assert_int_equal(a[0].seq, 10 * 64 + 1);
    assert_int_equal(envelope_map(&s, ENV1, strlen(ENV1), &p2, b, 8, &n, err, sizeof(err)), 0);
    assert_true(a[0].epoch == b[0].epoch && a[0].seq != b[0].seq);
    assert_int_equal(envelope_map(&s, ENV1, strlen(ENV1), &p3, b, 8, &n, err, sizeof(err)), 0);
    assert_true(a[0].epoch != b[0].epoch);
    assert_int_equal(envelope_map(&s, ENV1, strlen(ENV1), NULL, b, 8, &n, err, sizeof(err)), -1);
}

static void test_timestamps(void **state)
{
    struct envelope_spec s;
    struct tern_reading r[8];
    size_t n = 0;
    char err[256];
    spec(&s, "", "id");
    const char *secs = "{\"id\":1,\"timestamp\":1795606685.5,\"value\":{\"sensor_id\":\"x\",\"t\":1}}";
    assert_int_equal(envelope_map(&s, secs, strlen(secs), NULL, r, 8, &n, err, sizeof(err)), 0);
    assert_int_equal(r[0].ts_ms, 1795606685500);
    const char *ms = "{\"id\":1,\"timestamp\":1795606685123,\"value\":{\"sensor_id\":\"x\",\"t\":1}}";
    assert_int_equal(envelope_map(&s, ms, strlen(ms), NULL, r, 8, &n, err, sizeof(err)), 0);
    assert_int_equal(r[0].ts_ms, 1795606685123);
}

static void expect_reject(const struct envelope_spec *s, const char *msg, const char *why)
{
    struct tern_reading r[8];
    size_t n = 5;
    char err[256];
    assert_int_equal(envelope_map(s, msg, strlen(msg), NULL, r, 8, &n, err, sizeof(err)), -1);
    assert_int_equal(n, 0);
    if (!strstr(err, why))
        fail_msg("reason '%s' lacks '%s' for %s", err, why, msg);
}

static void test_rejections(void **state)
{
    struct envelope_spec s, cfg;
    spec(&s, "", "id");
    spec(&cfg, "temperature", "id");
    expect_reject(&s, "{not json", "bad JSON");
    expect_reject(&s, "[1,2]", "not a JSON object");
    expect_reject(&s, "{\"id\":\"a\",\"timestamp\":\"2026-11-25T11:38:05Z\"}", "missing field 'value'");
    expect_reject(&s, "{\"id\":\"a\",\"timestamp\":\"2026-11-25T11:38:05Z\",\"value\":3}", "not an object");
    expect_reject(&s, "{\"id\":\"a\",\"timestamp\":\"2026-11-25T11:38:05Z\",\"value\":{\"t\":1}}",
                  "missing field 'sensor_id'");
    expect_reject(&s, "{\"id\":\"a\",\"value\":{\"sensor_id\":\"x\",\"t\":1}}", "missing field 'timestamp'");
    expect_reject(&s, "{\"id\":\"a\",\"timestamp\":\"yesterday\",\"value\":{\"sensor_id\":\"x\",\"t\":1}}",
                  "timestamp");
    expect_reject(&s, "{\"timestamp\":\"2026-11-25T11:38:05Z\",\"value\":{\"sensor_id\":\"x\",\"t\":1}}",
                  "missing field 'id'");
    expect_reject(&s, "{\"id\":\"a\",\"timestamp\":\"2026-11-25T11:38:05Z\",\"value\":{\"sensor_id\":\"x\"}}",
                  "no numeric measurement");
    expect_reject(&cfg, "{\"id\":\"a\",\"timestamp\":\"2026-11-25T11:38:05Z\",\"value\":{\"sensor_id\":\"x\","
                        "\"temperature\":\"hot\"}}",
                  "not a number: field 'temperature'");
    expect_reject(&s, "{\"id\":\"a\",\"id\":\"b\",\"timestamp\":1,\"value\":{\"sensor_id\":\"x\",\"t\":1}}", "bad JSON");
}

static void test_auto_format_rule(void **state)
{
    const char *wire = "{\"v\":1,\"device_id\":\"d\"}";
    assert_true(pipeline_looks_like_wire(wire, strlen(wire)));
    assert_true(pipeline_looks_like_wire(" {\"v\":2}", 8));
    assert_false(pipeline_looks_like_wire(ENV1, strlen(ENV1)));
    assert_true(pipeline_looks_like_wire("{\"seq\":1,\"epoch\":\"x\"}", 21));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_numeric_fields), cmocka_unit_test(test_configured_metrics_and_units),
        cmocka_unit_test(test_dedup_offset),       cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_rejections),         cmocka_unit_test(test_auto_format_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
