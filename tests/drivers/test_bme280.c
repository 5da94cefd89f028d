/* test_bme280.c - BME280 compensation against the datasheet's worked example
 * and floating-point formulas, and the chip logic against the simulator's
 * register model (tern_simdev) through the same bus interface as /dev/i2c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bme280.h"
#include "drvtest.h"
#include "simdev.h"

static struct tern_bme280_calib example_calib(void)
{
    uint8_t c[26], h[7];
    struct tern_bme280_calib cal;
    tern_sim_bme280_calib_bytes(c, h);
    tern_bme280_unpack_calib(c, h, &cal);
    return cal;
}

static void test_unpack(void **st)
{
    (void)st;
    struct tern_bme280_calib cal = example_calib();
    assert_int_equal(cal.T1, 27504);
    assert_int_equal(cal.T2, 26435);
    assert_int_equal(cal.T3, -1000);
    assert_int_equal(cal.P1, 36477);
    assert_int_equal(cal.P2, -10685);
    assert_int_equal(cal.P6, -7);
    assert_int_equal(cal.P8, -14600);
    assert_int_equal(cal.H1, 75);
    assert_int_equal(cal.H2, 362);
    assert_int_equal(cal.H4, 313);
    assert_int_equal(cal.H5, 50);
    assert_int_equal(cal.H6, 30);
    /* Negative 12-bit H4/H5 survive the nibble packing. */
    uint8_t c[26] = {0}, h[7] = {0x10, 0x01, 0x00, 0xff, 0xaf, 0xfe, 0xe2};
    tern_bme280_unpack_calib(c, h, &cal);
    assert_int_equal(cal.H4, -1);  /* 0xff << 4 | 0xf */
    assert_int_equal(cal.H5, -22); /* 0xfe << 4 | 0xa */
    assert_int_equal(cal.H6, -30);
}

/* The datasheet's floating-point compensation (section 8.1), as reference. */
static double ref_temp(const struct tern_bme280_calib *k, double adc, double *t_fine)
{
    double v1 = (adc / 16384.0 - k->T1 / 1024.0) * k->T2;
    double d = adc / 131072.0 - k->T1 / 8192.0;
    double v2 = d * d * k->T3;
    *t_fine = v1 + v2;
    return (v1 + v2) / 5120.0;
}

static double ref_press(const struct tern_bme280_calib *k, double adc, double t_fine)
{
    double v1 = t_fine / 2.0 - 64000.0;
    double v2 = v1 * v1 * k->P6 / 32768.0;
    v2 = v2 + v1 * k->P5 * 2.0;
    v2 = v2 / 4.0 + k->P4 * 65536.0;
    v1 = (k->P3 * v1 * v1 / 524288.0 + k->P2 * v1) / 524288.0;
    v1 = (1.0 + v1 / 32768.0) * k->P1;
    double p = 1048576.0 - adc;
    p = (p - v2 / 4096.0) * 6250.0 / v1;
    v1 = k->P9 * p * p / 2147483648.0;
    v2 = p * k->P8 / 32768.0;
    return p + (v1 + v2 + k->P7) / 16.0;
}

static double ref_hum(const struct tern_bme280_calib *k, double adc, double t_fine)
{
    double h = t_fine - 76800.0;
    h = (adc - (k->H4 * 64.0 + k->H5 / 16384.0 * h)) *
        (k->H2 / 65536.0 * (1.0 + k->H6 / 67108864.0 * h * (1.0 + k->H3 / 67108864.0 * h)));
    h = h * (1.0 - k->H1 * h / 524288.0);
    return h < 0 ? 0 : h > 100 ? 100 : h;
}

static void test_datasheet_example(void **st)
{
    (void)st;
    struct tern_bme280_calib cal = example_calib();
    int32_t t_fine;
    /* BMP280 datasheet 3.12 (same T/P formulas as the BME280): adc_T 519888
     * -> 25.08 Cel, t_fine 128422; adc_P 415148 -> 100653.27 Pa (the
     * floating-point result; the Q24.8 integer one agrees within 0.02 Pa). */
    assert_int_equal(tern_bme280_comp_temp(&cal, 519888, &t_fine), 2508);
    assert_int_equal(t_fine, 128422);
    double pa = tern_bme280_comp_press(&cal, 415148, t_fine) / 256.0;
    assert_true(fabs(pa - 100653.27) < 0.02);
    double tf;
    assert_true(fabs(ref_temp(&cal, 519888, &tf) - 25.08) < 0.005);
    assert_true(fabs(ref_press(&cal, 415148, tf) - 100653.27) < 0.005);
}

static void test_integer_matches_float(void **st)
{
    (void)st;
    struct tern_bme280_calib cal = example_calib();
    for (int32_t at = 400000; at <= 600000; at += 12345) {
        int32_t t_fine;
        double tf;
        double t = tern_bme280_comp_temp(&cal, at, &t_fine) / 100.0;
        double rt = ref_temp(&cal, at, &tf);
        assert_true(fabs(t - rt) < 0.01);
        for (int32_t ap = 300000; ap <= 500000; ap += 23456) {
            double p = tern_bme280_comp_press(&cal, ap, t_fine) / 256.0;
            double rp = ref_press(&cal, ap, tf);
            if (fabs(p - rp) > 1.0)
                fail_msg("adc_P %d: int %.2f float %.2f", ap, p, rp);
        }
        for (int32_t ah = 20000; ah <= 40000; ah += 1777) {
            double h = tern_bme280_comp_hum(&cal, ah, t_fine) / 1024.0;
            double rh = ref_hum(&cal, ah, tf);
            if (fabs(h - rh) > 0.1)
                fail_msg("adc_H %d: int %.3f float %.3f", ah, h, rh);
        }
    }
}

struct rig {
    struct tern_sim_bme280 *model;
    struct tern_bme280 dev;
};

static int rig_setup(void **state)
{
    static struct rig r;
    r.model = tern_sim_bme280_new(7);
    if (!r.model)
        return -1;
    *state = &r;
    return 0;
}

static int rig_teardown(void **state)
{
    struct rig *r = *state;
    tern_sim_bme280_free(r->model);
    return 0;
}

static void test_measure_matches_model(void **state)
{
    struct rig *r = *state;
    char err[256];
    assert_int_equal(tern_bme280_init(&r->dev, tern_sim_bme280_bus(r->model), 1, err, sizeof err), 0);
    static const double cond[][3] = {
        {25.0, 100000, 50},  {-10.5, 95000, 80}, {0.0, 101325, 0.5},
        {40.25, 85000, 99},  {21.37, 100653.27, 42.42}, {-39.5, 30500, 10}, {84.5, 109500, 5},
    };
    for (size_t i = 0; i < sizeof cond / sizeof cond[0]; i++) {
        tern_sim_bme280_set(r->model, cond[i][0], cond[i][1], cond[i][2]);
        struct tern_bme280_sample x;
        assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), 0);
        /* Within the part's resolution: 0.01 Cel, ~0.2 Pa, ~0.01 %RH (the
         * integer formulas' steps at x1 oversampling). */
        if (fabs(x.temperature_c - cond[i][0]) > 0.01 || fabs(x.pressure_pa - cond[i][1]) > 0.5 ||
            fabs(x.humidity_pct - cond[i][2]) > 0.05)
            fail_msg("case %zu: got %.3f %.2f %.3f", i, x.temperature_c, x.pressure_pa,
                     x.humidity_pct);
    }
    /* Oversampling x16 takes the same path with longer timeouts. */
    assert_int_equal(tern_bme280_init(&r->dev, tern_sim_bme280_bus(r->model), 5, err, sizeof err), 0);
    struct tern_bme280_sample x;
    assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), 0);
}

static void test_init_faults(void **state)
{
    struct rig *r = *state;
    char err[256];
    tern_sim_bme280_fault(r->model, SIMBME_WRONG_ID, 0);
    assert_int_equal(tern_bme280_init(&r->dev, tern_sim_bme280_bus(r->model), 1, err, sizeof err), -1);
    assert_string_equal(err, "chip id 0x58 is a BMP280 (no humidity), not a BME280");
    tern_sim_bme280_fault(r->model, SIMBME_BUS_ERROR, 0);
    assert_int_equal(tern_bme280_init(&r->dev, tern_sim_bme280_bus(r->model), 1, err, sizeof err), -1);
    assert_string_equal(err, "sim i2c: read reg 0xd0: no acknowledge (Remote I/O error)");
    tern_sim_bme280_fault(r->model, SIMBME_DISCONNECT, 0);
    assert_int_equal(tern_bme280_init(&r->dev, tern_sim_bme280_bus(r->model), 1, err, sizeof err), -1);
    assert_string_equal(err, "unexpected chip id 0xff (a BME280 has 0x60)");
    tern_sim_bme280_fault(r->model, SIMBME_OK, 0);
}

static void test_measure_faults(void **state)
{
    struct rig *r = *state;
    char err[256];
    struct tern_bme280_sample x;
    tern_sim_bme280_fault(r->model, SIMBME_OK, 0);
    assert_int_equal(tern_bme280_init(&r->dev, tern_sim_bme280_bus(r->model), 1, err, sizeof err), 0);
    tern_sim_bme280_set(r->model, 22, 99000, 55);
    assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), 0);

    tern_sim_bme280_fault(r->model, SIMBME_SLOW, 0);
    assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), -1);
    assert_non_null(strstr(err, "measurement did not finish within"));

    tern_sim_bme280_fault(r->model, SIMBME_BUS_ERROR, 0);
    assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), -1);
    assert_non_null(strstr(err, "no acknowledge"));

    /* Unplugged: pull-ups read 0xFF, so the measuring bit never clears. */
    tern_sim_bme280_fault(r->model, SIMBME_DISCONNECT, 0);
    assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), -1);

    /* Random data bytes: the range check rejects what it can. A BME280 has
     * no CRC, so random bytes that decode to plausible weather cannot be
     * told apart; count that they are the minority. */
    tern_sim_bme280_fault(r->model, SIMBME_GARBAGE, 0);
    int rejected = 0;
    for (int i = 0; i < 200; i++) {
        if (tern_bme280_measure(&r->dev, &x, err, sizeof err) < 0) {
            rejected++;
            assert_non_null(strstr(err, "implausible result"));
        } else {
            assert_true(x.temperature_c >= -40 && x.temperature_c <= 85);
            assert_true(x.pressure_pa >= 30000 && x.pressure_pa <= 110000);
        }
    }
    assert_true(rejected > 100);

    /* Flaky bus: failures are errors, successes are exact. */
    tern_sim_bme280_fault(r->model, SIMBME_FLAKY, 0.3);
    tern_sim_bme280_set(r->model, 18.5, 97000, 60);
    int ok = 0, bad = 0;
    for (int i = 0; i < 100; i++) {
        if (tern_bme280_measure(&r->dev, &x, err, sizeof err) < 0) {
            bad++;
            assert_non_null(strstr(err, "no acknowledge"));
        } else {
            ok++;
            assert_true(fabs(x.temperature_c - 18.5) <= 0.01);
            assert_true(fabs(x.pressure_pa - 97000) <= 0.5);
        }
    }
    assert_true(ok > 0 && bad > 0);

    /* Stuck data registers: the part's values repeat and the driver cannot
     * tell (no fault flag on a BME280); health checks above it must. */
    tern_sim_bme280_fault(r->model, SIMBME_STUCK, 0);
    tern_sim_bme280_set(r->model, 30, 100000, 20);
    assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), 0);
    assert_true(fabs(x.temperature_c - 30) > 1);

    tern_sim_bme280_fault(r->model, SIMBME_OK, 0);
    assert_int_equal(tern_bme280_measure(&r->dev, &x, err, sizeof err), 0);
    assert_true(fabs(x.temperature_c - 30) <= 0.01);
    assert_true(tern_sim_bme280_transfers(r->model) > 100);
}

static void test_driver_open_errors(void **st)
{
    (void)st;
    struct drv d;
    char err[256];
    assert_int_equal(DRV_OPEN(&d, "bme280", err, "device=/dev/i2c-99"), -1);
    assert_string_equal(err, "/dev/i2c-99: No such file or directory");
    assert_int_equal(DRV_OPEN(&d, "bme280", err, "oversampling=3"), -1);
    assert_non_null(strstr(err, "must be 1, 2, 4, 8 or 16"));
    assert_int_equal(DRV_OPEN(&d, "bme280", err, "address=0x99"), -1);
    assert_non_null(strstr(err, "option 'address'"));
    /* A file that is not an I2C adapter is refused at I2C_SLAVE. */
    assert_int_equal(DRV_OPEN(&d, "bme280", err, "device=/dev/null"), -1);
    assert_non_null(strstr(err, "/dev/null addr 0x76"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unpack),
        cmocka_unit_test(test_datasheet_example),
        cmocka_unit_test(test_integer_matches_float),
        cmocka_unit_test_setup_teardown(test_measure_matches_model, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_init_faults, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_measure_faults, rig_setup, rig_teardown),
        cmocka_unit_test(test_driver_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
