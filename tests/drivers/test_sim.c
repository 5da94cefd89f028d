/* test_sim.c - the sim driver: plausible signals, reproducibility, each fault
 * mode, and option errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "driver.h"

/* Opens the sim driver with "key=value" strings; returns the state or NULL
 * with err filled. */
static void *open_sim(char *err, size_t errcap, int n, const char *const *kv)
{
    static char keys[32][64], vals[32][64];
    struct tern_kv items[32];
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        snprintf(keys[i], sizeof keys[i], "%.*s", (int)(eq - kv[i]), kv[i]);
        snprintf(vals[i], sizeof vals[i], "%s", eq + 1);
        items[i] = (struct tern_kv){keys[i], vals[i], 10 + i};
    }
    struct tern_kv_list l = {items, (size_t)n};
    void *st = NULL;
    const struct tern_driver *d = tern_driver_find("sim");
    assert_non_null(d);
    if (d->open(&l, &st, err, errcap) < 0)
        return NULL;
    return st;
}
#define OPEN(err, ...)                                                                  \
    open_sim(err, sizeof err, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)), \
             (const char *[]){__VA_ARGS__})

static const struct tern_driver *sim(void) { return tern_driver_find("sim"); }

static void test_env_plausible(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "kind=env", "seed=42", "time_step=5m");
    assert_non_null(s);
    struct tern_metric m[TERN_METRICS_MAX];
    size_t n;
    double tmin = 1e9, tmax = -1e9;
    for (int i = 0; i < 2 * 288; i++) { /* two simulated days */
        assert_int_equal(sim()->read(s, m, TERN_METRICS_MAX, &n, err, sizeof err), TERN_READ_OK);
        assert_int_equal(n, 3);
        assert_string_equal(m[0].name, "temperature");
        assert_string_equal(m[0].unit, "Cel");
        assert_string_equal(m[1].name, "humidity");
        assert_string_equal(m[1].unit, "%");
        assert_string_equal(m[2].name, "pressure");
        assert_string_equal(m[2].unit, "Pa");
        assert_true(m[0].value > 16 && m[0].value < 26);
        assert_true(m[1].value >= 0 && m[1].value <= 100);
        assert_true(m[1].value > 25 && m[1].value < 65);
        assert_true(m[2].value > 100900 && m[2].value < 101750);
        tmin = fmin(tmin, m[0].value);
        tmax = fmax(tmax, m[0].value);
    }
    /* The daily cycle is visible: about 2 x temp_amplitude from trough to peak. */
    assert_true(tmax - tmin > 7 && tmax - tmin < 9);
    char desc[128];
    sim()->describe(s, desc, sizeof desc);
    assert_non_null(strstr(desc, "env"));
    sim()->close(s);
}

static void test_env_daily_phase(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "seed=1", "time_step=1h", "noise=0");
    assert_non_null(s);
    struct tern_metric m[4];
    size_t n;
    double t[24];
    for (int h = 0; h < 24; h++) {
        assert_int_equal(sim()->read(s, m, 4, &n, err, sizeof err), TERN_READ_OK);
        t[h] = m[0].value;
    }
    /* Warmest at 15:00, coolest at 03:00 (UTC of the simulated day). */
    assert_true(fabs(t[15] - 25) < 1e-9);
    assert_true(fabs(t[3] - 17) < 1e-9);
    sim()->close(s);
}

static void test_wall_clock_mode(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "kind=env");
    assert_non_null(s);
    struct tern_metric m[4];
    size_t n;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sim()->read(s, m, 4, &n, err, sizeof err), TERN_READ_OK);
        assert_int_equal(n, 3);
        assert_true(m[0].value > 16 && m[0].value < 26);
        assert_true(isfinite(m[2].value));
    }
    sim()->close(s);
}

static void test_reproducible(void **st)
{
    (void)st;
    char err[256];
    void *a = OPEN(err, "seed=7", "time_step=10s", "error_rate=0.2", "spike_rate=0.1");
    void *b = OPEN(err, "seed=7", "time_step=10s", "error_rate=0.2", "spike_rate=0.1");
    void *c = OPEN(err, "seed=8", "time_step=10s", "error_rate=0.2", "spike_rate=0.1");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    int differ = 0;
    for (int i = 0; i < 200; i++) {
        struct tern_metric ma[4], mb[4], mc[4];
        size_t na, nb, nc;
        int ra = sim()->read(a, ma, 4, &na, err, sizeof err);
        int rb = sim()->read(b, mb, 4, &nb, err, sizeof err);
        int rc = sim()->read(c, mc, 4, &nc, err, sizeof err);
        assert_int_equal(ra, rb);
        assert_int_equal(na, nb);
        for (size_t k = 0; k < na; k++)
            assert_true(ma[k].value == mb[k].value);
        if (ra != rc || (ra == TERN_READ_OK && ma[0].value != mc[0].value))
            differ = 1;
    }
    assert_true(differ);
    sim()->close(a);
    sim()->close(b);
    sim()->close(c);
}

static void test_counter(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "kind=counter", "start=100", "step=5", "seed=3", "spike_rate=1");
    assert_non_null(s);
    struct tern_metric m[2];
    size_t n;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(sim()->read(s, m, 2, &n, err, sizeof err), TERN_READ_OK);
        assert_int_equal(n, 1);
        assert_string_equal(m[0].name, "count");
        assert_string_equal(m[0].unit, "1");
        /* Monotonic: spikes never apply to a counter. */
        assert_true(m[0].value == 100 + 5.0 * i);
    }
    sim()->close(s);
}

static void test_signal_drift(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "kind=signal", "metric=flow", "unit=m3/h", "base=100",
                   "amplitude=0", "noise=0", "drift=2", "time_step=30m");
    assert_non_null(s);
    struct tern_metric m[2];
    size_t n;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sim()->read(s, m, 2, &n, err, sizeof err), TERN_READ_OK);
        assert_string_equal(m[0].name, "flow");
        assert_string_equal(m[0].unit, "m3/h");
        assert_true(fabs(m[0].value - (100 + i)) < 1e-9);
    }
    sim()->close(s);
}

static void test_signal_sine(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "kind=signal", "base=5", "amplitude=2", "period=40s", "noise=0",
                   "time_step=10s");
    assert_non_null(s);
    struct tern_metric m[2];
    size_t n;
    const double want[] = {5, 7, 5, 3, 5};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sim()->read(s, m, 2, &n, err, sizeof err), TERN_READ_OK);
        assert_true(fabs(m[0].value - want[i]) < 1e-9);
    }
    sim()->close(s);
}

static void test_fault_errors(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "seed=11", "error_rate=0.3", "time_step=1s");
    assert_non_null(s);
    int errors = 0;
    for (int i = 0; i < 1000; i++) {
        struct tern_metric m[4];
        size_t n = 99;
        err[0] = '\0';
        int r = sim()->read(s, m, 4, &n, err, sizeof err);
        if (r == TERN_READ_ERROR) {
            errors++;
            assert_int_equal(n, 0); /* an error carries no value */
            assert_string_equal(err, "simulated read error: I/O error on bus");
        } else {
            assert_int_equal(r, TERN_READ_OK);
            assert_int_equal(n, 3);
        }
    }
    assert_true(errors > 240 && errors < 360);
    sim()->close(s);

    s = OPEN(err, "error_rate=1");
    struct tern_metric m[4];
    size_t n;
    for (int i = 0; i < 10; i++)
        assert_int_equal(sim()->read(s, m, 4, &n, err, sizeof err), TERN_READ_ERROR);
    sim()->close(s);
}

static void test_fault_dropout(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "seed=5", "dropout_rate=0.05", "dropout_reads=4", "time_step=1s");
    assert_non_null(s);
    int run = 0, runs = 0;
    for (int i = 0; i < 2000; i++) {
        struct tern_metric m[4];
        size_t n;
        int r = sim()->read(s, m, 4, &n, err, sizeof err);
        if (r == TERN_READ_ERROR) {
            assert_string_equal(err, "simulated dropout: sensor not responding");
            run++;
        } else {
            /* A dropout lasts whole periods of dropout_reads. */
            if (run) {
                assert_int_equal(run % 4, 0);
                runs++;
            }
            run = 0;
        }
    }
    assert_true(runs > 20);
    sim()->close(s);

    s = OPEN(err, "dropout_rate=1", "dropout_mode=empty");
    assert_non_null(s);
    struct tern_metric m[4];
    size_t n = 99;
    assert_int_equal(sim()->read(s, m, 4, &n, err, sizeof err), TERN_READ_OK);
    assert_int_equal(n, 0);
    sim()->close(s);
}

static void test_fault_spikes(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "kind=signal", "base=10", "amplitude=0", "noise=0", "spike_rate=1",
                   "spike_size=50", "seed=9");
    assert_non_null(s);
    int up = 0, down = 0;
    for (int i = 0; i < 100; i++) {
        struct tern_metric m[2];
        size_t n;
        assert_int_equal(sim()->read(s, m, 2, &n, err, sizeof err), TERN_READ_OK);
        if (m[0].value == 60)
            up++;
        else if (m[0].value == -40)
            down++;
        else
            fail_msg("not a spike: %g", m[0].value);
    }
    assert_true(up > 20 && down > 20);
    sim()->close(s);
}

static void test_fault_stuck(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "stuck_after=5", "noise=1", "seed=2", "time_step=1m");
    assert_non_null(s);
    struct tern_metric m[4], frozen[4];
    size_t n;
    double prev = NAN;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sim()->read(s, m, 4, &n, err, sizeof err), TERN_READ_OK);
        assert_true(m[0].value != prev); /* noisy while healthy */
        prev = m[0].value;
    }
    memcpy(frozen, m, sizeof m);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(sim()->read(s, m, 4, &n, err, sizeof err), TERN_READ_OK);
        for (size_t k = 0; k < 3; k++)
            assert_true(m[k].value == frozen[k].value);
    }
    sim()->close(s);
}

static void test_fault_slow(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "slow=60ms");
    assert_non_null(s);
    struct tern_metric m[4];
    size_t n;
    int64_t t0 = tern_mono_ms();
    assert_int_equal(sim()->read(s, m, 4, &n, err, sizeof err), TERN_READ_OK);
    /* A lower bound only: the read slept at least the configured delay. */
    assert_true(tern_mono_ms() - t0 >= 60);
    sim()->close(s);
}

static void test_small_buffer(void **st)
{
    (void)st;
    char err[256];
    void *s = OPEN(err, "kind=env");
    struct tern_metric m[2];
    size_t n = 7;
    assert_int_equal(sim()->read(s, m, 2, &n, err, sizeof err), TERN_READ_ERROR);
    assert_int_equal(n, 0);
    sim()->close(s);
}

static void test_bad_options(void **st)
{
    (void)st;
    char err[256];
    assert_null(OPEN(err, "kind=weather"));
    assert_string_equal(err,
                        "line 10: option 'kind': expected one of env, counter, signal, got 'weather'");
    assert_null(OPEN(err, "seed=1", "nosie=0.1"));
    assert_string_equal(err, "line 11: unknown option 'nosie' (did you mean 'noise'?)");
    assert_null(OPEN(err, "error_rate=1.5"));
    assert_string_equal(err, "line 10: option 'error_rate': must be between 0 and 1, got '1.5'");
    assert_null(OPEN(err, "period=0"));
    assert_string_equal(err, "line 10: option 'period': must be greater than 0");
    assert_null(OPEN(err, "slow=fast"));
    assert_non_null(strstr(err, "option 'slow': expected a duration"));
}

static void test_alloc_failure(void **st)
{
    (void)st;
    char err[256];
    tern_alloc_fail_at(1);
    void *s = OPEN(err, "kind=env");
    tern_alloc_fail_at(0);
    assert_null(s);
    assert_string_equal(err, "out of memory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_plausible),  cmocka_unit_test(test_env_daily_phase),
        cmocka_unit_test(test_wall_clock_mode), cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_counter),        cmocka_unit_test(test_signal_drift),
        cmocka_unit_test(test_signal_sine),    cmocka_unit_test(test_fault_errors),
        cmocka_unit_test(test_fault_dropout),  cmocka_unit_test(test_fault_spikes),
        cmocka_unit_test(test_fault_stuck),    cmocka_unit_test(test_fault_slow),
        cmocka_unit_test(test_small_buffer),   cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
