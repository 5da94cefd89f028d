/* test_sensor.c - the sensor scheduler and worker pool (agent/sensor.c)
 * with in-process fake drivers: every sensor is read on its own schedule,
 * a read that blocks (a hung bus) never holds up the other sensors, stop
 * waits for a read in progress, a stop that gives up leaves the read behind
 * without it reaching the readq, a pool with a read that never returns can
 * still be freed, failed opens are retried and counted, and readings reach
 * the readq tagged with their sensor. Conditions are awaited
 * with deadlines; nothing asserts how long anything took. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "readq.h"
#include "sensor.h"

#define DEADLINE_MS 20000

/* ---- fake drivers ------------------------------------------------------- */

/* "count": value = number of reads so far. "block": read blocks while
 * g_block.hold is set. "flaky": open fails the first two times. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hold;     /* block readers while set */
    int inside;   /* readers currently blocked */
    int opens_failed;
} g_block = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

struct fake_state {
    double n;
};

static int fake_open(const struct tern_kv_list *o, void **state, char *err, size_t cap)
{
    struct fake_state *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    *state = s;
    return 0;
}
static int flaky_open(const struct tern_kv_list *o, void **state, char *err, size_t cap)
{
    pthread_mutex_lock(&g_block.mu);
    int fail = g_block.opens_failed < 2;
    if (fail)
        g_block.opens_failed++;
    pthread_mutex_unlock(&g_block.mu);
    if (fail) {
        snprintf(err, cap, "no such device (fake)");
        return -1;
    }
    return fake_open(o, state, err, cap);
}
static void fake_close(void *state) { free(state); }
static int count_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err, size_t cap)
{
    struct fake_state *s = state;
    snprintf(out[0].name, sizeof out[0].name, "count");
    snprintf(out[0].unit, sizeof out[0].unit, "1");
    out[0].value = s->n++;
    snprintf(out[1].name, sizeof out[1].name, "twice");
    snprintf(out[1].unit, sizeof out[1].unit, "1");
    out[1].value = 2 * out[0].value;
    *n = 2;
    return TERN_READ_OK;
}
static int block_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err, size_t cap)
{
    pthread_mutex_lock(&g_block.mu);
    g_block.inside++;
    pthread_cond_broadcast(&g_block.cv);
    while (g_block.hold)
        pthread_cond_wait(&g_block.cv, &g_block.mu);
    g_block.inside--;
    pthread_mutex_unlock(&g_block.mu);
    return count_read(state, out, max, n, err, cap);
}

static const struct tern_driver drv_count = {
    .name = "count", .open = fake_open, .read = count_read, .close = fake_close};
static const struct tern_driver drv_block = {
    .name = "block", .open = fake_open, .read = block_read, .close = fake_close};
static const struct tern_driver drv_flaky = {
    .name = "flaky", .open = flaky_open, .read = count_read, .close = fake_close};

static struct tern_sensor_cfg make_cfg(const char *name, const struct tern_driver *d, int64_t interval_ms)
{
    struct tern_sensor_cfg c;
    memset(&c, 0, sizeof c);
    c.name = (char *)name;
    c.driver = d;
    c.c.driver = (char *)d->name;
    c.c.interval_ms = interval_ms;
    c.c.retry_max_ms = interval_ms;
    c.c.enabled = 1;
    return c;
}

static uint64_t reads_ok(tern_sensor *s)
{
    struct tern_sensor_stats st;
    tern_sensor_get_stats(s, &st);
    return st.reads_ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until every sensor in s[0..n) has at least min reads. */
static int wait_reads(tern_sensor **s, size_t n, uint64_t min, tern_readq *q)
{
    struct tern_readq_item drain[256];
    int64_t end = tern_mono_ms() + DEADLINE_MS;
    while (tern_mono_ms() < end) {
        while (q && tern_readq_pop(q, drain, 256) > 0) {
        }
        size_t ok = 0;
        for (size_t i = 0; i < n; i++)
            ok += reads_ok(s[i]) >= min;
        if (ok == n)
            return 1;
        sleep_ms(5);
    }
    return 0;
}

static void wait_blocked(int count)
{
    int64_t end = tern_mono_ms() + DEADLINE_MS;
    pthread_mutex_lock(&g_block.mu);
    while (g_block.inside < count && tern_mono_ms() < end) {
        pthread_mutex_unlock(&g_block.mu);
        sleep_ms(2);
        pthread_mutex_lock(&g_block.mu);
    }
    int inside = g_block.inside;
    pthread_mutex_unlock(&g_block.mu);
    assert_int_equal(inside, count);
}

static void release_blocked(void)
{
    pthread_mutex_lock(&g_block.mu);
    g_block.hold = 0;
    pthread_cond_broadcast(&g_block.cv);
    pthread_mutex_unlock(&g_block.mu);
}

static void hold_blocked(void)
{
    pthread_mutex_lock(&g_block.mu);
    g_block.hold = 1;
    g_block.inside = 0;
    pthread_mutex_unlock(&g_block.mu);
}

/* ---- tests -------------------------------------------------------------- */

/* 30 sensors on one pool: each is read on its own schedule, and the pool
 * needs far fewer threads than sensors. */
static void test_many_sensors(void **unused)
{
    char err[256];
    tern_readq *q = tern_readq_new(4096);
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    assert_non_null(p);
    enum { N = 30 };
    tern_sensor *s[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        struct tern_sensor_cfg c = make_cfg(names[i], &drv_count, 10);
        s[i] = tern_sensor_start(p, &c, q, TERN_CLOCK_OFF, err, sizeof err);
        assert_non_null(s[i]);
    }
    assert_true(wait_reads(s, N, 10, q));
    struct tern_sensor_pool_stats ps;
    tern_sensor_pool_get_stats(p, &ps);
    assert_int_equal(ps.sensors, N);
    assert_true(ps.workers >= 1 && ps.workers < N);
    for (int i = 0; i < N; i++) {
        tern_sensor_stop(s[i]);
        struct tern_sensor_stats st;
        tern_sensor_get_stats(s[i], &st);
        assert_int_equal(st.reads_failed, 0);
        assert_int_equal(st.healthy, 1);
    }
    struct tern_readq_item drain[256];
    while (tern_readq_pop(q, drain, 256) > 0) {
    }
    for (int i = 0; i < N; i++)
        tern_sensor_free(s[i]);
    tern_sensor_pool_get_stats(p, &ps);
    assert_int_equal(ps.sensors, 0);
    tern_sensor_pool_free(p);
    tern_readq_free(q);
}

/* Readings carry their sensor, the driver's metrics in order, a UTC stamp. */
static void test_readings_reach_readq(void **unused)
{
    char err[256];
    tern_readq *q = tern_readq_new(64);
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    struct tern_sensor_cfg c = make_cfg("one", &drv_count, 10);
    int64_t before = tern_utc_ms();
    tern_sensor *s = tern_sensor_start(p, &c, q, TERN_CLOCK_OFF, err, sizeof err);
    assert_non_null(s);
    assert_true(wait_reads(&s, 1, 2, NULL));
    tern_sensor_stop(s);
    struct tern_readq_item it[64];
    size_t n = tern_readq_pop(q, it, 64);
    assert_true(n >= 4 && n % 2 == 0);
    for (size_t i = 0; i < n; i += 2) {
        assert_ptr_equal(it[i].sensor, s);
        assert_string_equal(it[i].m.name, "count");
        assert_string_equal(it[i + 1].m.name, "twice");
        assert_true(it[i].m.value == (double)(i / 2));
        assert_true(it[i + 1].m.value == 2 * it[i].m.value);
        assert_true(it[i].ts_ms >= before && it[i].ts_ms == it[i + 1].ts_ms);
    }
    assert_string_equal(tern_sensor_name(s), "one");
    tern_sensor_free(s);
    tern_sensor_pool_free(p);
    tern_readq_free(q);
}

/* Three sensors hang inside read(): the fast one keeps being read, each hung
 * read holds only its own worker. */
static void test_hung_reads_do_not_delay_others(void **unused)
{
    char err[256];
    tern_readq *q = tern_readq_new(4096);
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    hold_blocked();
    struct tern_sensor_cfg cb[3] = {make_cfg("hung0", &drv_block, 10), make_cfg("hung1", &drv_block, 10),
                                    make_cfg("hung2", &drv_block, 10)};
    tern_sensor *hung[3];
    for (int i = 0; i < 3; i++) {
        hung[i] = tern_sensor_start(p, &cb[i], q, TERN_CLOCK_OFF, err, sizeof err);
        assert_non_null(hung[i]);
    }
    wait_blocked(3);
    struct tern_sensor_cfg cf = make_cfg("fast", &drv_count, 10);
    tern_sensor *fast = tern_sensor_start(p, &cf, q, TERN_CLOCK_OFF, err, sizeof err);
    assert_non_null(fast);
    assert_true(wait_reads(&fast, 1, 50, q));
    pthread_mutex_lock(&g_block.mu);
    int inside = g_block.inside;
    pthread_mutex_unlock(&g_block.mu);
    assert_int_equal(inside, 3); /* still hung while fast made 50 reads */
    struct tern_sensor_pool_stats ps;
    tern_sensor_pool_get_stats(p, &ps);
    assert_true(ps.workers >= 4);
    assert_true(ps.busy >= 3);
    release_blocked();
    assert_true(wait_reads(hung, 3, 2, q));
    tern_sensor_stop(fast);
    for (int i = 0; i < 3; i++)
        tern_sensor_stop(hung[i]);
    struct tern_readq_item drain[256];
    while (tern_readq_pop(q, drain, 256) > 0) {
    }
    tern_sensor_free(fast);
    for (int i = 0; i < 3; i++)
        tern_sensor_free(hung[i]);
    tern_sensor_pool_free(p);
    tern_readq_free(q);
}

struct stopper {
    tern_sensor *s;
    int returned;
    pthread_mutex_t mu;
};
static void *stop_thread(void *arg)
{
    struct stopper *st = arg;
    tern_sensor_stop(st->s);
    pthread_mutex_lock(&st->mu);
    st->returned = 1;
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* tern_sensor_stop waits for the read in progress, and no read starts after
 * it returned. */
static void test_stop_waits_for_read(void **unused)
{
    char err[256];
    tern_readq *q = tern_readq_new(256);
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    hold_blocked();
    struct tern_sensor_cfg c = make_cfg("hung", &drv_block, 10);
    tern_sensor *s = tern_sensor_start(p, &c, q, TERN_CLOCK_OFF, err, sizeof err);
    wait_blocked(1);
    struct stopper st = {.s = s, .mu = PTHREAD_MUTEX_INITIALIZER};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_thread, &st), 0);
    sleep_ms(100); /* gives a wrong early return the chance to show */
    pthread_mutex_lock(&st.mu);
    assert_int_equal(st.returned, 0);
    pthread_mutex_unlock(&st.mu);
    release_blocked();
    pthread_join(t, NULL);
    assert_int_equal(st.returned, 1);
    uint64_t after_stop = reads_ok(s);
    assert_int_equal(after_stop, 1);
    sleep_ms(50);
    assert_int_equal(reads_ok(s), after_stop); /* off the schedule */
    tern_sensor_free(s);
    tern_sensor_pool_free(p);
    tern_readq_free(q);
}

/* A device that is not there yet: open is retried with backoff, counted as a
 * failure, and reading starts once it opens. */
static void test_open_retried(void **unused)
{
    char err[256];
    tern_readq *q = tern_readq_new(256);
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    g_block.opens_failed = 0;
    struct tern_sensor_cfg c = make_cfg("flaky", &drv_flaky, 10);
    tern_sensor *s = tern_sensor_start(p, &c, q, TERN_CLOCK_OFF, err, sizeof err);
    assert_true(wait_reads(&s, 1, 3, q));
    tern_sensor_stop(s);
    struct tern_sensor_stats st;
    tern_sensor_get_stats(s, &st);
    assert_int_equal(st.reads_failed, 2);
    assert_int_equal(st.healthy, 1);
    assert_non_null(strstr(st.last_error, "no such device (fake)"));
    struct tern_readq_item drain[256];
    while (tern_readq_pop(q, drain, 256) > 0) {
    }
    tern_sensor_free(s);
    tern_sensor_pool_free(p);
    tern_readq_free(q);
}

/* A stop that times out during a read: nothing more reaches the readq for
 * that sensor, and once abandoned its worker frees it when the read returns. */
static void test_stop_until_and_abandon(void **unused)
{
    char err[256];
    tern_readq *q = tern_readq_new(256);
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    hold_blocked();
    struct tern_sensor_cfg c = make_cfg("hung", &drv_block, 10);
    tern_sensor *s = tern_sensor_start(p, &c, q, TERN_CLOCK_OFF, err, sizeof err);
    wait_blocked(1);
    assert_int_equal(tern_sensor_stop_until(s, tern_mono_ms() + 20), -1);
    assert_int_equal(tern_readq_depth(q), 0);
    tern_sensor_abandon(s); /* s is the worker's now */
    release_blocked();
    struct tern_sensor_pool_stats ps;
    int64_t end = tern_mono_ms() + DEADLINE_MS;
    do {
        sleep_ms(2);
        tern_sensor_pool_get_stats(p, &ps);
    } while ((ps.sensors != 0 || ps.busy != 0) && tern_mono_ms() < end);
    assert_int_equal(ps.sensors, 0);
    assert_int_equal(tern_readq_depth(q), 0); /* the late read was dropped */
    tern_sensor_pool_free(p);
    tern_readq_free(q);
}

/* A read that never returns does not keep tern_sensor_pool_free from
 * returning (bounded exit). Last: its worker stays blocked until exit. */
static pthread_mutex_t g_forever_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_forever_cv = PTHREAD_COND_INITIALIZER;
static int g_forever_inside;
static int forever_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err,
                        size_t cap)
{
    pthread_mutex_lock(&g_forever_mu);
    g_forever_inside = 1;
    for (;;)
        pthread_cond_wait(&g_forever_cv, &g_forever_mu);
    return TERN_READ_ERROR;
}
static const struct tern_driver drv_forever = {
    .name = "forever", .open = fake_open, .read = forever_read, .close = fake_close};

static void test_pool_free_with_hung_read(void **unused)
{
    char err[256];
    tern_readq *q = tern_readq_new(256);
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    struct tern_sensor_cfg c = make_cfg("dead-bus", &drv_forever, 10);
    tern_sensor *s = tern_sensor_start(p, &c, q, TERN_CLOCK_OFF, err, sizeof err);
    int64_t end = tern_mono_ms() + DEADLINE_MS;
    for (;;) {
        pthread_mutex_lock(&g_forever_mu);
        int inside = g_forever_inside;
        pthread_mutex_unlock(&g_forever_mu);
        if (inside || tern_mono_ms() > end)
            break;
        sleep_ms(2);
    }
    assert_int_equal(tern_sensor_stop_until(s, tern_mono_ms() + 20), -1);
    tern_sensor_abandon(s);
    tern_sensor_pool_free(p); /* returns although a worker is stuck */
    tern_readq_free(q);
}

/* A pool with no sensors, and sensors freed without an explicit stop. */
static void test_empty_pool_and_free(void **unused)
{
    char err[256];
    tern_sensor_pool *p = tern_sensor_pool_new(err, sizeof err);
    assert_non_null(p);
    struct tern_sensor_pool_stats ps;
    tern_sensor_pool_get_stats(p, &ps);
    assert_int_equal(ps.workers, 0);
    tern_readq *q = tern_readq_new(256);
    struct tern_sensor_cfg c = make_cfg("x", &drv_count, 1000);
    tern_sensor *s = tern_sensor_start(p, &c, q, TERN_CLOCK_OFF, err, sizeof err);
    assert_true(wait_reads(&s, 1, 1, NULL));
    tern_sensor_free(s); /* stops it first */
    tern_sensor_pool_free(p);
    tern_readq_free(q);
}

int main(void)
{
    tern_log_init("test_sensor", TERN_LOG_WARN, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_sensors),
        cmocka_unit_test(test_readings_reach_readq),
        cmocka_unit_test(test_hung_reads_do_not_delay_others),
        cmocka_unit_test(test_stop_waits_for_read),
        cmocka_unit_test(test_open_retried),
        cmocka_unit_test(test_empty_pool_and_free),
        cmocka_unit_test(test_stop_until_and_abandon),
        cmocka_unit_test(test_pool_free_with_hung_read), /* last: leaves a thread blocked */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
