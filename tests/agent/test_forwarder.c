/* test_forwarder.c - the store-and-forward logic against a fake in-process
 * uplink and a real queue file: in-order acks, failures and re-sends, late
 * and out-of-order acks, RETRY, unsendable readings, the drain rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "forwarder.h"
#include "log.h"
#include "storage.h"

#define N 100

/* ---- the fake uplink: records batches, raises events on demand ---------- */
struct batch {
    int64_t first, last;
};
static struct fake {
    struct tern_uplink_events ev;
    size_t window;        /* readings it takes in flight */
    int mode;             /* TERN_UPLINK_* returned by send */
    struct batch b[1024]; /* sent, not yet resolved */
    size_t nb;
    unsigned sends[N + 1]; /* how often each seq was handed over */
    size_t inflight;
} fk;

static int fake_open(const struct tern_kv_list *o, const char *dev, const struct tern_uplink_events *ev,
                     void **state, char *err, size_t cap)
{
    fk.ev = *ev;
    *state = &fk;
    return 0;
}
static size_t fake_capacity(void *s) { return fk.window > fk.inflight ? fk.window - fk.inflight : 0; }
static int fake_send(void *s, const struct tern_reading *r, size_t n)
{
    if (fk.mode != TERN_UPLINK_OK)
        return fk.mode;
    assert_true(n > 0 && n <= fake_capacity(s));
    for (size_t i = 0; i < n; i++) {
        assert_true(r[i].seq >= 1 && r[i].seq <= N);
        if (i)
            assert_true(r[i].seq > r[i - 1].seq);
        fk.sends[r[i].seq]++;
    }
    fk.b[fk.nb++] = (struct batch){r[0].seq, r[n - 1].seq};
    fk.inflight += n;
    return TERN_UPLINK_OK;
}
static int fake_poll(void *s, int t) { return 0; }
static void fake_status(void *s, struct tern_uplink_status *o) { snprintf(o->state, sizeof o->state, "fake"); }
static void fake_close(void *s) {}
static const struct tern_driver_option no_opts[] = {{NULL, NULL, NULL, NULL}};
static const struct tern_uplink_ops fake_ops = {
    .name = "fake", .summary = "test", .options = no_opts, .open = fake_open,
    .capacity = fake_capacity, .send = fake_send, .poll = fake_poll, .drain = NULL,
    .status = fake_status, .close = fake_close,
};

/* Resolves batch i (index into fk.b) as acked or failed, removing it. */
static void resolve(size_t i, int ok)
{
    struct batch b = fk.b[i];
    memmove(&fk.b[i], &fk.b[i + 1], (fk.nb - i - 1) * sizeof fk.b[0]);
    fk.nb--;
    fk.inflight -= (size_t)(b.last - b.first + 1);
    if (ok)
        fk.ev.acked(fk.ev.user, b.first, b.last);
    else
        fk.ev.failed(fk.ev.user, b.first, b.last, "test");
}

/* ---- fixture -------------------------------------------------------------- */
struct fix {
    char dir[64];
    char path[96];
    tern_store *store;
    tern_forwarder *f;
};

static tern_forwarder *make_forwarder(tern_store *st, int64_t rate, int64_t burst)
{
    struct tern_uplink_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = "fake";
    cfg.ops = &fake_ops;
    cfg.c.enabled = 1;
    cfg.c.drain_rate = rate;
    cfg.c.drain_burst = burst;
    cfg.c.retry_delay_ms = 0;
    char err[256];
    tern_forwarder *f = tern_forwarder_new(&cfg, "dev", err, sizeof err);
    assert_non_null(f);
    assert_int_equal(tern_forwarder_attach(f, st), 0);
    return f;
}

static int setup(void **state)
{
    struct fix *x = calloc(1, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "/tmp/tern-fwd-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->path, sizeof x->path, "%s/q.db", x->dir);
    const char *ups[] = {"fake"};
    struct tern_store_options o = {.path = x->path, .uplinks = ups, .n_uplinks = 1,
                                   .synchronous = TERN_SYNC_OFF};
    char err[256];
    assert_int_equal(tern_store_open(&o, &x->store, err, sizeof err), 0);
    struct tern_reading r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        snprintf(r[i].device_id, sizeof r[i].device_id, "dev");
        snprintf(r[i].sensor, sizeof r[i].sensor, "s");
        snprintf(r[i].metric, sizeof r[i].metric, "m");
        r[i].value = i;
        r[i].ts_ms = 1700000000000LL + i;
    }
    assert_int_equal(tern_store_append(x->store, r, N), 0);
    assert_int_equal(tern_store_flush(x->store), 0);
    memset(&fk, 0, sizeof fk);
    fk.window = 30;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fix *x = *state;
    tern_forwarder_free(x->f);
    tern_store_close(x->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", x->dir);
    if (system(cmd) != 0)
        return -1;
    free(x);
    return 0;
}

static void test_in_order(void **state)
{
    struct fix *x = *state;
    x->f = make_forwarder(x->store, 0, 0);
    int fk_rounds = 0;
    while (tern_store_acked_seq(x->store, 0) < N && fk_rounds++ < 100) {
        tern_forwarder_pump(x->f, tern_mono_ms());
        assert_true(fk.inflight <= fk.window); /* never beyond the uplink's window */
        while (fk.nb)
            resolve(0, 1);
    }
    assert_int_equal(tern_store_acked_seq(x->store, 0), N);
    for (int s = 1; s <= N; s++)
        assert_int_equal(fk.sends[s], 1); /* each exactly once without faults */
    /* Nothing left: the next pump sends nothing. */
    tern_forwarder_pump(x->f, tern_mono_ms());
    assert_int_equal(fk.nb, 0);
    struct tern_forwarder_stats st;
    tern_forwarder_get_stats(x->f, &st);
    assert_int_equal(st.handed, N);
    assert_int_equal(st.acked, N);
    tern_store_tick(x->store, tern_mono_ms());
    struct tern_store_stats ss;
    tern_store_stats(x->store, &ss);
    assert_int_equal(ss.queued, 0);
}

static void test_failure_resends(void **state)
{
    struct fix *x = *state;
    fk.window = 10;
    x->f = make_forwarder(x->store, 0, 0);
    tern_forwarder_pump(x->f, tern_mono_ms()); /* 1..10 */
    assert_int_equal(fk.nb, 1);
    resolve(0, 1);
    tern_forwarder_pump(x->f, tern_mono_ms()); /* 11..20 */
    resolve(0, 0);                             /* fails */
    tern_forwarder_pump(x->f, tern_mono_ms()); /* rewound: 11..20 again */
    assert_int_equal(fk.nb, 1);
    assert_int_equal(fk.b[0].first, 11);
    assert_int_equal(fk.sends[11], 2);
    for (int i = 0; i < 50 && tern_store_acked_seq(x->store, 0) < N; i++) {
        tern_forwarder_pump(x->f, tern_mono_ms());
        while (fk.nb)
            resolve(0, 1);
    }
    assert_int_equal(tern_store_acked_seq(x->store, 0), N);
    struct tern_forwarder_stats st;
    tern_forwarder_get_stats(x->f, &st);
    assert_int_equal(st.rewinds, 1);
    assert_int_equal(st.failed, 10);
}

/* Acks arrive late and out of order (end-to-end receipts would): batch 3
 * then 1, then batch 2 fails. Only batch 2 is sent again. */
static void test_out_of_order(void **state)
{
    struct fix *x = *state;
    fk.window = 30;
    x->f = make_forwarder(x->store, 0, 0);
    /* Three batches of 10: make the fake take 10 at a time. */
    fk.window = 10;
    tern_forwarder_pump(x->f, tern_mono_ms());
    fk.window = 20;
    tern_forwarder_pump(x->f, tern_mono_ms());
    fk.window = 30;
    tern_forwarder_pump(x->f, tern_mono_ms());
    assert_int_equal(fk.nb, 3);
    assert_int_equal(fk.b[2].first, 21);
    resolve(2, 1); /* 21..30 */
    resolve(0, 1); /* 1..10 */
    assert_int_equal(tern_store_acked_seq(x->store, 0), 10);
    resolve(0, 0); /* 11..20 fails */
    fk.window = 10;
    tern_forwarder_pump(x->f, tern_mono_ms());
    assert_int_equal(fk.nb, 1);
    assert_int_equal(fk.b[0].first, 11);
    assert_int_equal(fk.b[0].last, 20); /* 21..30 were acked: not sent again */
    resolve(0, 1);
    assert_int_equal(tern_store_acked_seq(x->store, 0), 30);
    assert_int_equal(fk.sends[25], 1);
}

static void test_retry_and_error(void **state)
{
    struct fix *x = *state;
    fk.window = 10;
    x->f = make_forwarder(x->store, 0, 0);
    fk.mode = TERN_UPLINK_RETRY;
    assert_int_equal(tern_forwarder_pump(x->f, tern_mono_ms()), 0);
    struct tern_forwarder_stats st;
    tern_forwarder_get_stats(x->f, &st);
    assert_int_equal(st.handed, 0);
    assert_int_equal(st.cursor, 0);
    fk.mode = TERN_UPLINK_ERROR; /* unsendable: counted, acked so the queue moves on */
    tern_forwarder_pump(x->f, tern_mono_ms());
    tern_forwarder_get_stats(x->f, &st);
    assert_true(st.rejected >= 10);
    assert_true(tern_store_acked_seq(x->store, 0) >= 10);
}

static void test_drain_rate(void **state)
{
    struct fix *x = *state;
    fk.window = 1000;
    x->f = make_forwarder(x->store, 10, 10); /* 10 readings/s, bucket of 10 */
    int64_t now = tern_mono_ms();
    tern_forwarder_pump(x->f, now);
    tern_forwarder_pump(x->f, now);
    assert_int_equal(fk.inflight, 10);
    tern_forwarder_pump(x->f, now + 500); /* half a second later: 5 more */
    assert_int_equal(fk.inflight, 15);
}

int main(void)
{
    tern_log_init("test_forwarder", TERN_LOG_ERROR, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_resends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_and_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_rate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
