/* test_ch.c - ClickHouse error parsing and classification (18.x and current
 * reply formats), schema text, and Prometheus metrics formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ch_error.h"
#include "config.h"
#include "metrics.h"
#include "schema.h"

static void test_parse_old_format(void **state)
{
    const char *body = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected { before: x\n"
                       ": (at row 1)\n, e.what() = DB::Exception\n";
    int code = -1;
    char msg[256];
    ch_parse_error(body, strlen(body), &code, msg, sizeof(msg));
    assert_int_equal(code, 27);
    assert_string_equal(msg, "Cannot parse input: expected { before: x : (at row 1)");
}

static void test_parse_new_format(void **state)
{
    const char *body = "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly "
                       "slower than inserts. (TOO_MANY_PARTS) (version 24.3.1.1 (official build))\n";
    int code = 0;
    char msg[64];
    ch_parse_error(body, strlen(body), &code, msg, sizeof(msg));
    assert_int_equal(code, 252);
    assert_int_equal(strlen(msg), sizeof(msg) - 1); /* truncated, terminated */
    assert_memory_equal(msg, "Too many parts (300).", 21);
    ch_parse_error("Bad Gateway", 11, &code, msg, sizeof(msg));
    assert_int_equal(code, 0);
    assert_string_equal(msg, "Bad Gateway");
    ch_parse_error(NULL, 0, &code, msg, sizeof(msg));
    assert_string_equal(msg, "");
}

static void test_classify(void **state)
{
    assert_int_equal(ch_classify(200, 0), CH_ERR_NONE);
    assert_int_equal(ch_classify(0, 0), CH_ERR_TRANSIENT);          /* connection refused */
    assert_int_equal(ch_classify(500, 252), CH_ERR_TRANSIENT);      /* TOO_MANY_PARTS */
    assert_int_equal(ch_classify(500, 241), CH_ERR_TRANSIENT);      /* memory limit */
    assert_int_equal(ch_classify(500, 27), CH_ERR_CONTENT);         /* parse error */
    assert_int_equal(ch_classify(400, 53), CH_ERR_CONTENT);         /* type mismatch */
    assert_int_equal(ch_classify(404, 60), CH_ERR_FATAL);           /* unknown table */
    assert_int_equal(ch_classify(401, 0), CH_ERR_FATAL);
    assert_int_equal(ch_classify(503, 0), CH_ERR_TRANSIENT);
    assert_string_equal(ch_code_name(252), "TOO_MANY_PARTS");
    assert_null(ch_code_name(99999));
}

static void test_schema_text(void **state)
{
    struct relay_config c;
    char stmts[SCHEMA_NSTMT][SCHEMA_STMT_MAX];
    size_t n = 0;
    relay_config_defaults(&c);
    snprintf(c.ch_database, sizeof(c.ch_database), "db1");
    assert_int_equal(schema_statements(&c, 1, 1, stmts, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(stmts[0], "CREATE DATABASE IF NOT EXISTS db1");
    assert_non_null(strstr(stmts[1], "CREATE TABLE IF NOT EXISTS db1.readings"));
    assert_non_null(strstr(stmts[1], "DateTime64(3, 'UTC')"));
    assert_non_null(strstr(stmts[1], "ORDER BY (device_id, epoch, seq)"));
    assert_non_null(strstr(stmts[1], "non_replicated_deduplication_window"));
    assert_non_null(strstr(stmts[3], "FROM db1.readings FINAL"));
    assert_int_equal(schema_statements(&c, 0, 0, stmts, &n), 0);
    assert_null(strstr(stmts[1], "DateTime64"));
    assert_null(strstr(stmts[1], "LowCardinality"));
    assert_non_null(strstr(stmts[1], "ts_ms UInt16"));
    char small[8];
    assert_int_equal(schema_expand("{db}.{table}", &c, small, sizeof(small)), -1);
}

static void test_metrics_format(void **state)
{
    struct relay_metrics *m = relay_metrics_new();
    struct relay_buf b = {0};
    relay_metrics_add(m, M_CONSUMED, 5);
    relay_metrics_add(m, M_INSERTED, 4);
    relay_metrics_insert_seconds(m, 0.02);
    relay_metrics_insert_seconds(m, 100);
    relay_metrics_ch_error(m, 252);
    relay_metrics_ch_error(m, 252);
    relay_metrics_lag(m, "t\"x", 3, 17);
    relay_metrics_set_state(m, 1, 0, 123);
    relay_metrics_format(m, &b);
    assert_false(buf_failed(&b));
    assert_non_null(strstr(b.p, "# TYPE tern_relay_messages_consumed_total counter\n"
                                "tern_relay_messages_consumed_total 5\n"));
    assert_non_null(strstr(b.p, "tern_relay_rows_inserted_total 4\n"));
    assert_non_null(strstr(b.p, "tern_relay_insert_duration_seconds_bucket{le=\"0.01\"} 0\n"));
    assert_non_null(strstr(b.p, "tern_relay_insert_duration_seconds_bucket{le=\"0.025\"} 1\n"));
    assert_non_null(strstr(b.p, "tern_relay_insert_duration_seconds_bucket{le=\"30\"} 1\n"));
    assert_non_null(strstr(b.p, "tern_relay_insert_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b.p, "tern_relay_insert_duration_seconds_count 2\n"));
    assert_non_null(strstr(b.p, "tern_relay_clickhouse_errors_total{code=\"252\"} 2\n"));
    assert_non_null(strstr(b.p, "tern_relay_consumer_lag{topic=\"t\\\"x\",partition=\"3\"} 17\n"));
    assert_non_null(strstr(b.p, "tern_relay_ready 1\n"));
    assert_int_equal(relay_metrics_ready(m), 1);
    buf_free(&b);
    relay_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_old_format), cmocka_unit_test(test_parse_new_format),
        cmocka_unit_test(test_classify),         cmocka_unit_test(test_schema_text),
        cmocka_unit_test(test_metrics_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
