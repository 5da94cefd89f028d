/* test_config.c - the relay's config table: defaults, INI loading, errors
 * reported for every bad key, validation, and --help/docs generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/tern-relay-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    struct relay_config c;
    char err[256];
    relay_config_defaults(&c);
    assert_string_equal(c.kafka_topic, "tern.readings");
    assert_int_equal(c.batch_max_rows, 100000);
    assert_int_equal(c.batch_max_delay_ms, 1000);
    assert_int_equal(c.compression, RELAY_COMPRESS_GZIP);
    assert_int_equal(c.input_format, RELAY_INPUT_AUTO);
    assert_int_equal(relay_config_validate(&c, err, sizeof(err)), 0);
}

static void test_load_ok(void **state)
{
    struct relay_config c;
    char err[1024];
    relay_config_defaults(&c);
    char *p = write_tmp("; comment\n[kafka]\nbrokers = k1:9092,k2:9092\ntopic = t\n"
                        "[clickhouse]\nurl = http://ch:8123\npassword = s3cret\nschema_mode = old\n"
                        "[batch]\nmax_rows = 5000\n[input]\nvalue_max = 1e6\nformat = envelope\n"
                        "[envelope]\nmetrics = temperature:Cel, humidity:%\ndedup = offset\n");
    assert_int_equal(relay_config_load(&c, p, err, sizeof(err)), 0);
    unlink(p);
    assert_string_equal(c.kafka_brokers, "k1:9092,k2:9092");
    assert_int_equal(c.schema_mode, RELAY_SCHEMA_OLD);
    assert_int_equal(c.batch_max_rows, 5000);
    assert_true(c.value_max == 1e6);
    assert_int_equal(c.input_format, RELAY_INPUT_ENVELOPE);
    assert_int_equal(c.env_dedup, RELAY_DEDUP_OFFSET);
    assert_int_equal(relay_config_validate(&c, err, sizeof(err)), 0);
}

static void test_load_reports_every_error(void **state)
{
    struct relay_config c;
    char err[1024];
    relay_config_defaults(&c);
    char *p = write_tmp("[kafka]\nbogus = 1\n[batch]\nmax_rows = many\nmax_delay_ms = 0\n"
                        "[clickhouse]\nauth = kerberos\n");
    assert_int_equal(relay_config_load(&c, p, err, sizeof(err)), -1);
    unlink(p);
    assert_non_null(strstr(err, "unknown key 'bogus' in section [kafka]"));
    assert_non_null(strstr(err, "batch.max_rows: 'many' is not an integer"));
    assert_non_null(strstr(err, "batch.max_delay_ms: 0 is out of range"));
    assert_non_null(strstr(err, "clickhouse.auth: 'kerberos' is not one of basic|headers"));
}

static void test_missing_file(void **state)
{
    struct relay_config c;
    char err[256];
    relay_config_defaults(&c);
    assert_int_equal(relay_config_load(&c, "/nonexistent/relay.ini", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_validate(void **state)
{
    struct relay_config c;
    char err[256];
    relay_config_defaults(&c);
    assert_int_equal(relay_config_set(&c, "clickhouse", "database", "tern; DROP TABLE x", err, sizeof(err)), 0);
    assert_int_equal(relay_config_validate(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a plain identifier"));
    relay_config_defaults(&c);
    assert_int_equal(relay_config_set(&c, "clickhouse", "url", "http://u:p@ch:8123", err, sizeof(err)), 0);
    assert_int_equal(relay_config_validate(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "credentials"));
    relay_config_defaults(&c);
    assert_int_equal(relay_config_set(&c, "output", "mode", "wide", err, sizeof(err)), 0);
    assert_int_equal(relay_config_validate(&c, err, sizeof(err)), -1);
    assert_true(relay_is_identifier("sensor_metrics"));
    assert_false(relay_is_identifier("1abc"));
    assert_false(relay_is_identifier(""));
    assert_false(relay_is_identifier("a.b"));
}

static void test_describe_and_dump(void **state)
{
    struct relay_config c;
    char *buf = NULL;
    size_t len = 0;
    relay_config_defaults(&c);
    char err[64];
    assert_int_equal(relay_config_set(&c, "clickhouse", "password", "hunter2", err, sizeof(err)), 0);
    FILE *f = open_memstream(&buf, &len);
    relay_config_dump(&c, f);
    fclose(f);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "password = ********"));
    free(buf);
    f = open_memstream(&buf, &len);
    relay_config_describe(f, 1);
    fclose(f);
    assert_non_null(strstr(buf, "### [batch]"));
    assert_non_null(strstr(buf, "| `max_rows` | integer | `100000` |"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_load_reports_every_error), cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_validate),         cmocka_unit_test(test_describe_and_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
