/* test_sysfs_drivers.c - thermal, hwmon, iio and ds18b20 drivers against the
 * simulator's sysfs tree (tern_simdev), normal and under each fault, plus one
 * plausibility check against the host's real /sys when it has sensors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "alloc.h"
#include "drvtest.h"
#include "simdev.h"
#include "sysfs.h"

struct fixture {
    char root[256];
    char thermal[300], hwmon[300], iio[300], w1[300];
    struct tern_simfs *fs;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof f->root, "%s/tern-sysfs-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    char err[256];
    f->fs = tern_simfs_create(f->root, 42, err, sizeof err);
    if (!f->fs) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(f->thermal, sizeof f->thermal, "root=%s/class/thermal", f->root);
    snprintf(f->hwmon, sizeof f->hwmon, "root=%s/class/hwmon", f->root);
    snprintf(f->iio, sizeof f->iio, "root=%s/bus/iio/devices", f->root);
    snprintf(f->w1, sizeof f->w1, "root=%s/bus/w1/devices", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tern_simfs_free(f->fs, 1);
    free(f);
    return 0;
}

static void update(struct fixture *f, double t)
{
    char err[256];
    assert_int_equal(tern_simfs_update(f->fs, t, err, sizeof err), 0);
}

static void near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

/* ---- thermal ---- */

static void test_thermal(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    assert_int_equal(DRV_OPEN(&d, "thermal", err, f->thermal, "zone=x86_pkg_temp"), 0);
    for (int t = 0; t < 5; t++) {
        update(f, t * 7.0);
        assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
        assert_int_equal(n, 1);
        assert_string_equal(m[0].name, "temperature");
        assert_string_equal(m[0].unit, "Cel");
        near(m[0].value, tern_simfs_truth(f->fs)->cpu_c, 1e-9);
    }
    char desc[256];
    d.d->describe(d.st, desc, sizeof desc);
    assert_non_null(strstr(desc, "x86_pkg_temp"));
    drv_close(&d);

    assert_int_equal(DRV_OPEN(&d, "thermal", err, f->thermal, "zone=thermal_zone1", "metric=board"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_string_equal(m[0].name, "board");
    near(m[0].value, tern_simfs_truth(f->fs)->acpi_c, 1e-9);
    drv_close(&d);

    assert_int_equal(DRV_OPEN(&d, "thermal", err, f->thermal, "zone=gpu"), -1);
    assert_non_null(strstr(err, "no thermal_zone* entry named 'gpu'"));
    assert_int_equal(DRV_OPEN(&d, "thermal", err, "root=/nonexistent/thermal"), -1);
    assert_non_null(strstr(err, "/nonexistent/thermal: No such file"));
    assert_int_equal(DRV_OPEN(&d, "thermal", err, f->thermal, "zoen=1"), -1);
    assert_string_equal(err, "line 11: unknown option 'zoen' (did you mean 'zone'?)");
}

static void test_thermal_faults(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    assert_int_equal(DRV_OPEN(&d, "thermal", err, f->thermal), 0);
    static const struct {
        enum tern_simfs_fault fault;
        const char *msg;
    } cases[] = {
        {SIMFS_GARBAGE, "not a number: '?garbage?'"},
        {SIMFS_EMPTY, "not a number: ''"},
        {SIMFS_MISSING, "No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tern_simfs_set_fault(f->fs, SIMFS_THERMAL, cases[i].fault);
        update(f, 100 + (double)i);
        n = 99;
        assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
        assert_int_equal(n, 0);
        if (!strstr(err, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
        assert_non_null(strstr(err, "thermal_zone0/temp"));
    }
    /* Stuck: the driver reads the same value again (a health check's job). */
    tern_simfs_set_fault(f->fs, SIMFS_THERMAL, SIMFS_OK);
    update(f, 200);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    double before = m[0].value;
    tern_simfs_set_fault(f->fs, SIMFS_THERMAL, SIMFS_STUCK);
    update(f, 213);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_true(m[0].value == before);
    tern_simfs_set_fault(f->fs, SIMFS_THERMAL, SIMFS_OK);
    update(f, 226);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    near(m[0].value, tern_simfs_truth(f->fs)->cpu_c, 1e-9);
    drv_close(&d);
}

/* ---- hwmon ---- */

static void test_hwmon(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    update(f, 33);
    const struct tern_simfs_truth *t = tern_simfs_truth(f->fs);

    assert_int_equal(DRV_OPEN(&d, "hwmon", err, f->hwmon, "chip=coretemp"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 2);
    const struct tern_metric *pkg = drv_metric(m, n, "package_id_0");
    const struct tern_metric *core = drv_metric(m, n, "core_0");
    assert_non_null(pkg);
    assert_non_null(core);
    near(pkg->value, t->pkg_c, 1e-9);
    near(core->value, t->core0_c, 1e-9);
    assert_string_equal(pkg->unit, "Cel");
    drv_close(&d);

    assert_int_equal(DRV_OPEN(&d, "hwmon", err, f->hwmon, "chip=tern_board"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 7);
    static const struct {
        const char *name, *unit;
        size_t off;
    } want[] = {
        {"12v", "V", offsetof(struct tern_simfs_truth, rail_v)},
        {"curr1", "A", offsetof(struct tern_simfs_truth, curr_a)},
        {"power1", "W", offsetof(struct tern_simfs_truth, power_w)},
        {"fan1", "/min", offsetof(struct tern_simfs_truth, fan_rpm)},
        {"humidity1", "%", offsetof(struct tern_simfs_truth, board_hum)},
        {"pressure1", "Pa", offsetof(struct tern_simfs_truth, board_pa)},
        {"temp1", "Cel", offsetof(struct tern_simfs_truth, board_c)},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct tern_metric *x = drv_metric(m, n, want[i].name);
        if (!x)
            fail_msg("no metric %s", want[i].name);
        assert_string_equal(x->unit, want[i].unit);
        near(x->value, *(const double *)((const char *)t + want[i].off), 1e-6);
    }
    /* Kernel units really were scaled: 12 V, not 12000. */
    assert_true(drv_metric(m, n, "12v")->value > 11 && drv_metric(m, n, "12v")->value < 13);
    drv_close(&d);

    assert_int_equal(DRV_OPEN(&d, "hwmon", err, f->hwmon, "chip=hwmon1", "inputs=fan1, temp1"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 2);
    assert_non_null(drv_metric(m, n, "fan1"));
    drv_close(&d);

    assert_int_equal(DRV_OPEN(&d, "hwmon", err, f->hwmon, "chip=coretemp", "inputs=fan9"), -1);
    assert_non_null(strstr(err, "no matching *_input attributes"));
}

static void test_hwmon_faults(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    assert_int_equal(DRV_OPEN(&d, "hwmon", err, f->hwmon, "chip=tern_board"), 0);
    tern_simfs_set_fault(f->fs, SIMFS_HWMON, SIMFS_FAULT_FLAG);
    update(f, 1);
    n = 5;
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "temp1_fault: the chip reports a fault"));
    tern_simfs_set_fault(f->fs, SIMFS_HWMON, SIMFS_GARBAGE);
    update(f, 2);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "not a number"));
    tern_simfs_set_fault(f->fs, SIMFS_HWMON, SIMFS_MISSING);
    update(f, 3);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "No such file"));
    tern_simfs_set_fault(f->fs, SIMFS_HWMON, SIMFS_OK);
    update(f, 4);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 7);
    drv_close(&d);
}

/* ---- iio ---- */

static void test_iio(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    update(f, 3 * 3600);
    const struct tern_simfs_truth *t = tern_simfs_truth(f->fs);
    assert_int_equal(DRV_OPEN(&d, "iio", err, f->iio, "device=bme280"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 3);
    near(drv_metric(m, n, "temperature")->value, t->env_c, 1e-9);
    near(drv_metric(m, n, "humidity")->value, t->env_hum, 1e-9);
    near(drv_metric(m, n, "pressure")->value, t->env_pa, 1e-6); /* kPa file -> Pa */
    assert_string_equal(drv_metric(m, n, "pressure")->unit, "Pa");
    drv_close(&d);

    /* Raw channels: (raw + offset) * scale, then IIO units to SI. */
    assert_int_equal(DRV_OPEN(&d, "iio", err, f->iio, "device=iio:device1"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 2);
    near(drv_metric(m, n, "voltage0")->value, t->adc_v, 1e-9);
    assert_string_equal(drv_metric(m, n, "voltage0")->unit, "V");
    near(drv_metric(m, n, "temperature")->value, t->adc_c, 1e-9);
    drv_close(&d);

    assert_int_equal(DRV_OPEN(&d, "iio", err, f->iio, "device=bme280", "channels=pressure"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 1);
    drv_close(&d);

    tern_simfs_set_fault(f->fs, SIMFS_IIO, SIMFS_GARBAGE);
    update(f, 5);
    assert_int_equal(DRV_OPEN(&d, "iio", err, f->iio, "device=bme280"), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "in_"));
    assert_non_null(strstr(err, "not a number"));
    tern_simfs_set_fault(f->fs, SIMFS_IIO, SIMFS_OK);
    update(f, 6);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    drv_close(&d);
}

/* ---- ds18b20 ---- */

static void test_w1(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    assert_int_equal(DRV_OPEN(&d, "ds18b20", err, f->w1), 0);
    for (int i = 0; i < 4; i++) {
        update(f, 400.0 * i);
        assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
        assert_int_equal(n, 1);
        assert_string_equal(m[0].unit, "Cel");
        near(m[0].value, tern_simfs_truth(f->fs)->w1_c, 1e-9);
    }
    char desc[128];
    d.d->describe(d.st, desc, sizeof desc);
    assert_string_equal(desc, "DS18B20 " TERN_SIMFS_W1_ID " on 1-Wire");
    drv_close(&d);
    assert_int_equal(DRV_OPEN(&d, "ds18b20", err, f->w1, "id=28-ffffffffffff"), -1);
    assert_non_null(strstr(err, "no 28-* entry named '28-ffffffffffff'"));
}

static void test_w1_faults(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    assert_int_equal(DRV_OPEN(&d, "ds18b20", err, f->w1, "retries=2", "retry_delay=1ms"), 0);
    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_W1_CRC);
    update(f, 1);
    n = 9;
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_int_equal(n, 0);
    assert_string_equal(err, TERN_SIMFS_W1_ID ": CRC check failed (3 tries)");

    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_W1_POWER_ON);
    update(f, 2);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_string_equal(err,
                        TERN_SIMFS_W1_ID ": 85 Cel power-on value (conversion did not run) (3 tries)");

    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_GARBAGE);
    update(f, 3);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "malformed"));

    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_MISSING);
    update(f, 4);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_ERROR);
    assert_non_null(strstr(err, "w1_slave: No such file or directory"));

    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_OK);
    update(f, 5);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    near(m[0].value, tern_simfs_truth(f->fs)->w1_c, 1e-9);
    drv_close(&d);

    /* A process really at 85 Cel can opt in. */
    assert_int_equal(DRV_OPEN(&d, "ds18b20", err, f->w1, "accept_85=yes"), 0);
    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_W1_POWER_ON);
    update(f, 6);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    assert_true(m[0].value == 85.0);
    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_OK);
    update(f, 7);
    drv_close(&d);
}

/* Fixes the sensor as soon as the driver has read the bad file once. */
struct healer {
    struct fixture *f;
    int ino;
};

static void *heal_after_first_read(void *arg)
{
    struct healer *h = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(h->ino, buf, sizeof buf);
        if (n <= 0)
            return NULL;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if ((ev->mask & IN_CLOSE_NOWRITE) && ev->len && strcmp(ev->name, "w1_slave") == 0) {
                char err[256];
                tern_simfs_set_fault(h->f->fs, SIMFS_W1, SIMFS_OK);
                tern_simfs_update(h->f->fs, 8, err, sizeof err);
                return NULL;
            }
            p += sizeof *ev + ev->len;
        }
    }
}

static void test_w1_retry_recovers(void **state)
{
    struct fixture *f = *state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    tern_simfs_set_fault(f->fs, SIMFS_W1, SIMFS_W1_CRC);
    update(f, 7);
    /* A long retry delay leaves the healer ample time; the read does not
     * wait for it otherwise. */
    assert_int_equal(DRV_OPEN(&d, "ds18b20", err, f->w1, "retries=3", "retry_delay=500ms"), 0);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/bus/w1/devices/%s", f->root, TERN_SIMFS_W1_ID);
    struct healer h = {f, inotify_init1(IN_CLOEXEC)};
    assert_true(h.ino >= 0);
    assert_true(inotify_add_watch(h.ino, dir, IN_CLOSE_NOWRITE) >= 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, heal_after_first_read, &h), 0);
    assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
    pthread_join(th, NULL);
    close(h.ino);
    near(m[0].value, tern_simfs_truth(f->fs)->w1_c, 1e-9);
    drv_close(&d);
}

/* Every allocation of open() failing in turn: open fails cleanly with a
 * message (LeakSanitizer checks nothing is left behind) or succeeds. */
static void test_alloc_failures(void **state)
{
    struct fixture *f = *state;
    char hw[320], ii[320];
    snprintf(hw, sizeof hw, "%s", f->hwmon);
    snprintf(ii, sizeof ii, "%s", f->iio);
    static const char *const names[] = {"thermal", "hwmon", "iio", "ds18b20"};
    const char *roots[] = {f->thermal, hw, ii, f->w1};
    for (int k = 0; k < 4; k++) {
        int failed = 0;
        for (unsigned long nth = 1; nth < 8; nth++) {
            struct drv d;
            char err[256] = "";
            tern_alloc_fail_at(nth);
            int rc = drv_open(&d, names[k], err, sizeof err, 1, &roots[k]);
            tern_alloc_fail_at(0);
            if (rc < 0) {
                assert_string_equal(err, "out of memory");
                failed++;
            } else {
                drv_close(&d);
            }
        }
        assert_true(failed >= 1);
    }
}

/* ---- the host's own sensors ---- */

static void test_host_sysfs(void **state)
{
    (void)state;
    struct drv d;
    char err[256];
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    int checked = 0;
    if (tern_sysfs_count("/sys/class/thermal", "thermal_zone") &&
        DRV_OPEN(&d, "thermal", err, "root=/sys/class/thermal") == 0) {
        assert_int_equal(drv_read(&d, m, &n, err, sizeof err), TERN_READ_OK);
        printf("host thermal_zone0: %.3f Cel\n", m[0].value);
        assert_true(m[0].value > -40 && m[0].value < 150);
        drv_close(&d);
        checked++;
    }
    if (tern_sysfs_count("/sys/class/hwmon", "hwmon") &&
        DRV_OPEN(&d, "hwmon", err, "root=/sys/class/hwmon", "inputs=temp1") == 0) {
        if (drv_read(&d, m, &n, err, sizeof err) == TERN_READ_OK) {
            printf("host hwmon0 %s: %.3f %s\n", m[0].name, m[0].value, m[0].unit);
            assert_true(m[0].value > -40 && m[0].value < 150);
            checked++;
        }
        drv_close(&d);
    }
    if (!checked) {
        /* Not applicable here (container or VM without sensors): make sure
         * that is really so, rather than a driver failing quietly. */
        assert_int_equal(tern_sysfs_count("/sys/class/thermal", "thermal_zone"), 0);
        assert_true(!tern_sysfs_count("/sys/class/hwmon", "hwmon") ||
                    DRV_OPEN(&d, "hwmon", err, "root=/sys/class/hwmon", "inputs=temp1") < 0);
        printf("host sysfs: not applicable (no thermal zones, no hwmon temp1 on this host)\n");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thermal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thermal_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hwmon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hwmon_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_w1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_w1_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_w1_retry_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        cmocka_unit_test(test_host_sysfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
