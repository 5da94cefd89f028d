/* test_modbus.c - the modbus driver against tern-sim's Modbus TCP server
 * (real protocol through libmodbus on 127.0.0.1), normal and under faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drvtest.h"
#include "simdev.h"

/* This part's port block starts at 29400; Modbus tests use 29410-29429. */
#define PORT_FIRST 29410
#define PORT_TRIES 20

static struct tern_sim_modbus *g_srv;
static int g_port;
static char g_port_opt[32];

static int setup(void **state)
{
    (void)state;
    char err[256];
    g_srv = tern_sim_modbus_start(PORT_FIRST, PORT_TRIES, &g_port, 3, err, sizeof err);
    if (!g_srv) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(g_port_opt, sizeof g_port_opt, "port=%d", g_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tern_sim_modbus_stop(g_srv);
    return 0;
}

static int open_all(struct drv *d, char *err, size_t errcap, const char *timeout)
{
    const char *kv[] = {
        "host=127.0.0.1",
        g_port_opt,
        timeout,
        "register.temperature = 0 holding float32 abcd unit=Cel",
        "register.humidity = 40003 uint16 scale=0.1 unit=%",
        "register.energy = 3 holding uint32 cdab unit=W.h",
        "register.outdoor = 5 int16 scale=0.01 unit=Cel",
        "register.pressure = 30001 uint32 dcba unit=Pa",
        "register.voltage = 2 input int16 scale=0.001 unit=V",
    };
    return drv_open(d, "modbus", err, errcap, (int)(sizeof kv / sizeof kv[0]), kv);
}

/* Reads d until one read falls inside one register refresh of srv (the
 * server changes its registers once a second): *truth is then exactly what
 * the read should show. Fails the test when a read fails or 10 reads in a
 * row straddle a refresh. */
static void read_steady(struct drv *d, struct tern_sim_modbus *srv, struct tern_metric *m,
                        size_t *n, struct tern_sim_modbus_truth *truth)
{
    char err[256];
    for (int attempt = 0; attempt < 10; attempt++) {
        struct tern_sim_modbus_truth after;
        tern_sim_modbus_truth(srv, truth);
        if (drv_read(d, m, n, err, sizeof err) != TERN_READ_OK)
            fail_msg("read: %s", err);
        tern_sim_modbus_truth(srv, &after);
        if (memcmp(truth, &after, sizeof after) == 0)
            return;
    }
    fail_msg("no read within one register refresh in 10 tries");
}

static void test_read_map(void **state)
{
    (void)state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    assert_int_equal(open_all(&d, err, sizeof err, "timeout=1s"), 0);
    struct tern_sim_modbus_truth t;
    read_steady(&d, g_srv, m, &n, &t);
    assert_int_equal(n, 6);
    assert_true(drv_metric(m, n, "temperature")->value == t.temperature_c);
    assert_string_equal(drv_metric(m, n, "temperature")->unit, "Cel");
    assert_true(fabs(drv_metric(m, n, "humidity")->value - t.humidity_pct) < 1e-9);
    assert_true(drv_metric(m, n, "energy")->value == t.energy_wh);
    assert_true(t.energy_wh > 65535); /* so the word order was exercised */
    assert_true(fabs(drv_metric(m, n, "outdoor")->value - t.outdoor_c) < 1e-9);
    assert_true(drv_metric(m, n, "pressure")->value == t.pressure_pa);
    assert_true(fabs(drv_metric(m, n, "voltage")->value - t.voltage_v) < 1e-9);
    assert_string_equal(drv_metric(m, n, "voltage")->unit, "V");
    char desc[200];
    d.d->describe(d.st, desc, sizeof desc);
    assert_non_null(strstr(desc, "Modbus tcp 127.0.0.1:"));
    drv_close(&d);
}

static void expect_error(struct drv *d, const char *needle)
{
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n = 77;
    assert_int_equal(drv_read(d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_int_equal(n, 0);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
}

static void expect_ok(struct drv *d)
{
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    if (drv_read(d, m, &n, err, sizeof err) != TERN_READ_OK)
        fail_msg("read failed: %s", err);
    assert_int_equal(n, 6);
}

static void test_faults(void **state)
{
    (void)state;
    struct drv d;
    char err[256];
    assert_int_equal(open_all(&d, err, sizeof err, "timeout=300ms"), 0);
    expect_ok(&d);

    tern_sim_modbus_fault(g_srv, SIMMB_EXCEPTION, 0);
    expect_error(&d, "Slave device or server failure");
    tern_sim_modbus_fault(g_srv, SIMMB_NAN, 0);
    expect_error(&d, "register 0 (temperature) holds no finite number");
    tern_sim_modbus_fault(g_srv, SIMMB_DISCONNECT, 0);
    expect_error(&d, "read holding register 0 (temperature)");
    tern_sim_modbus_fault(g_srv, SIMMB_OK, 0);
    expect_ok(&d); /* reconnected */
    tern_sim_modbus_fault(g_srv, SIMMB_SLOW, 1000);
    expect_error(&d, "timed out");
    /* The one-thread server is still sleeping on that request. */
    tern_sim_modbus_fault(g_srv, SIMMB_GARBAGE, 0);
    assert_int_equal(tern_sim_modbus_wait_idle(g_srv, 5000), 0);
    expect_error(&d, "(temperature)");
    tern_sim_modbus_fault(g_srv, SIMMB_OK, 0);
    /* A late reply to the slow request must not be taken for a new one:
     * the driver dropped that connection. */
    expect_ok(&d);
    assert_true(tern_sim_modbus_requests(g_srv) >= 6);
    drv_close(&d);
}

static void test_unreachable_and_config(void **state)
{
    (void)state;
    struct drv d;
    char err[256];
    /* Nothing listens on port 1 of localhost. */
    assert_int_equal(DRV_OPEN(&d, "modbus", err, "port=1", "register.x = 0"), 0);
    expect_error(&d, "connect: Connection refused");
    drv_close(&d);
    assert_int_equal(DRV_OPEN(&d, "modbus", err, "port=502"), -1);
    assert_string_equal(err, "no registers: add register.<metric> = <address> ...");
    assert_int_equal(DRV_OPEN(&d, "modbus", err, "register.t = 40001 holding float64"), -1);
    assert_non_null(strstr(err, "line 10: option 'register.t': unknown word 'float64'"));
    assert_int_equal(DRV_OPEN(&d, "modbus", err, "mode=rtu", "framing=8Z1", "register.t = 1"), -1);
    assert_non_null(strstr(err, "option 'framing'"));
    assert_int_equal(DRV_OPEN(&d, "modbus", err, "regster.t = 1"), -1);
    assert_non_null(strstr(err, "unknown option 'regster.t'"));
}

static void test_rtu(void **state)
{
    (void)state;
    char err[256], path[128], dev[160];
    struct tern_sim_modbus *rtu = tern_sim_modbus_rtu_start(7, 9, path, sizeof path, err, sizeof err);
    if (!rtu)
        fail_msg("%s", err);
    snprintf(dev, sizeof dev, "device=%s", path);
    struct drv d;
    assert_int_equal(DRV_OPEN(&d, "modbus", err, "mode=rtu", dev, "baud=9600", "framing=8N1",
                              "unit_id=7", "timeout=300ms",
                              "register.temperature = 0 holding float32 unit=Cel",
                              "register.pressure = 30001 uint32 dcba unit=Pa"), 0);
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    struct tern_sim_modbus_truth t;
    read_steady(&d, rtu, m, &n, &t);
    assert_int_equal(n, 2);
    assert_true(m[0].value == t.temperature_c);
    assert_true(m[1].value == t.pressure_pa);
    tern_sim_modbus_fault(rtu, SIMMB_EXCEPTION, 0);
    expect_error(&d, "Slave device or server failure");
    tern_sim_modbus_fault(rtu, SIMMB_GARBAGE, 0);
    expect_error(&d, "(temperature)");
    tern_sim_modbus_fault(rtu, SIMMB_DISCONNECT, 0);
    expect_error(&d, "timed out");
    tern_sim_modbus_fault(rtu, SIMMB_OK, 0);
    assert_int_equal(tern_sim_modbus_wait_idle(rtu, 5000), 0);
    if (drv_read(&d, m, &n, err, sizeof err) != TERN_READ_OK)
        fail_msg("rtu read after faults: %s", err);
    char desc[200];
    d.d->describe(d.st, desc, sizeof desc);
    assert_non_null(strstr(desc, "rtu /dev/pts/"));
    assert_non_null(strstr(desc, "9600 8N1 unit 7"));
    drv_close(&d);
    tern_sim_modbus_stop(rtu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_map),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_unreachable_and_config),
        cmocka_unit_test(test_rtu),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
