/* test_serial.c - the serial driver against tern-sim's MCU emulator on a
 * pseudo-terminal: key=value and CSV lines, polled mode, resync after
 * garbage, and errors for corrupt lines, silence and hang-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drvtest.h"
#include "simdev.h"

/* Line k of the emulator has T = 20 + 0.1 j and H = 40 + j (j = k % 10):
 * a value pair taken from one real line satisfies this exactly. */
static void assert_one_line(const struct tern_metric *m, size_t n, const char *tname,
                            const char *hname)
{
    const struct tern_metric *t = drv_metric(m, n, tname), *h = drv_metric(m, n, hname);
    assert_non_null(t);
    assert_non_null(h);
    double j = h->value - 40;
    assert_true(j >= 0 && j <= 9 && j == floor(j));
    assert_true(fabs(t->value - (20 + 0.1 * j)) < 1e-9);
}

static void test_kv_stream(void **st)
{
    (void)st;
    char err[256], dev[160];
    struct tern_sim_serial *s = tern_sim_serial_start(SIMSER_KV, 20, 1, err, sizeof err);
    assert_non_null(s);
    snprintf(dev, sizeof dev, "device=%s", tern_sim_serial_path(s));
    struct drv d;
    assert_int_equal(DRV_OPEN(&d, "serial", err, dev, "baud=115200", "field.T = temperature Cel",
                              "field.H = humidity %", "timeout=2s"), 0);
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
        assert_int_equal(n, 2);
        assert_string_equal(m[0].unit, "Cel");
        assert_string_equal(m[1].unit, "%");
        assert_one_line(m, n, "temperature", "humidity");
    }

    /* Garbage between lines: the driver resyncs and still reads real lines. */
    tern_sim_serial_fault(s, SIMSER_GARBAGE);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
        assert_one_line(m, n, "temperature", "humidity");
    }
    char desc[200];
    d.d->describe(d.st, desc, sizeof desc);
    assert_null(strstr(desc, ", 0 garbage lines"));

    tern_sim_serial_fault(s, SIMSER_CORRUPT);
    drv_close(&d);
    assert_int_equal(DRV_OPEN(&d, "serial", err, dev, "timeout=300ms"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "no valid line within 300 ms"));
    assert_non_null(strstr(err, "unparsable, last 'T="));

    tern_sim_serial_fault(s, SIMSER_SILENT);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "within 300 ms"));

    tern_sim_serial_fault(s, SIMSER_OK);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    /* Without field.* options, keys are metric names as sent. */
    assert_one_line(m, n, "T", "H");

    tern_sim_serial_fault(s, SIMSER_DISCONNECT);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "device disconnected"));
    drv_close(&d);
    tern_sim_serial_stop(s);
}

static void test_csv_polled(void **st)
{
    (void)st;
    char err[256], dev[160];
    struct tern_sim_serial *s = tern_sim_serial_start(SIMSER_CSV, 0, 2, err, sizeof err);
    assert_non_null(s);
    snprintf(dev, sizeof dev, "device=%s", tern_sim_serial_path(s));
    struct drv d;
    assert_int_equal(DRV_OPEN(&d, "serial", err, dev, "format=csv",
                              "columns=temperature:Cel, humidity:%", "request=R\\n",
                              "framing=8N1", "timeout=2s"), 0);
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    for (int i = 0; i < 3; i++) {
        if (drv_read(&d, m, &n, err, sizeof err) != TERN_READ_OK)
            fail_msg("read %d: %s", i, err);
        assert_int_equal(n, 2);
        assert_one_line(m, n, "temperature", "humidity");
    }
    struct tern_sim_serial_truth t;
    tern_sim_serial_truth(s, &t);
    assert_int_equal(t.lines, 3); /* one line per request, nothing unasked */
    drv_close(&d);

    /* A skipped column and a column count that does not match. */
    assert_int_equal(DRV_OPEN(&d, "serial", err, dev, "format=csv", "columns=-,humidity:%",
                              "request=R\\n"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].name, "humidity");
    drv_close(&d);
    assert_int_equal(DRV_OPEN(&d, "serial", err, dev, "format=csv", "columns=a,b,c",
                              "request=R\\n", "timeout=200ms"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "unparsable"));
    drv_close(&d);
    tern_sim_serial_stop(s);
}

static void test_config_errors(void **st)
{
    (void)st;
    struct drv d;
    char err[256];
    assert_int_equal(DRV_OPEN(&d, "serial", err, "baud=9600"), -1);
    assert_non_null(strstr(err, "missing required option 'device'"));
    assert_int_equal(DRV_OPEN(&d, "serial", err, "device=/dev/null", "baud=12345"), -1);
    assert_non_null(strstr(err, "unsupported rate 12345"));
    assert_int_equal(DRV_OPEN(&d, "serial", err, "device=/dev/null", "framing=8N3"), -1);
    assert_non_null(strstr(err, "option 'framing'"));
    assert_int_equal(DRV_OPEN(&d, "serial", err, "device=/dev/null", "format=csv"), -1);
    assert_non_null(strstr(err, "format=csv needs option 'columns'"));
    assert_int_equal(DRV_OPEN(&d, "serial", err, "device=/dev/null"), -1);
    assert_non_null(strstr(err, "/dev/null: not a tty"));
    assert_int_equal(DRV_OPEN(&d, "serial", err, "device=/dev/ttyNOPE"), -1);
    assert_string_equal(err, "/dev/ttyNOPE: No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_stream),
        cmocka_unit_test(test_csv_polled),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
