/* test_storage_powerloss.c - power cuts through a VFS that holds writes until
 * xSync (test_vfs.c). With synchronous FULL, every reading the store reported
 * durable must survive a cut that keeps a random part of the unsynced writes,
 * and the file must stay sound with the same epoch. With NORMAL (and OFF) a
 * cut right after a commit must lose it: those settings are documented as
 * surviving a process crash only, and this shows that is no understatement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "log.h"
#include "store_test_util.h"
#include "test_vfs.h"

static int setup(void **state)
{
    *state = util_fx_new("powerloss");
    assert_int_equal(testvfs_register(), 0);
    return 0;
}

static int teardown(void **state)
{
    struct util_fx *f = *state;
    testvfs_set_buffering(0);
    testvfs_recover();
    util_fx_free(f);
    return 0;
}

static tern_store *open_shim(const char *path, enum tern_store_sync sync, uint32_t every)
{
    static const char *const ups[] = {"mqtt"};
    struct tern_store_options o = {
        .path = path,
        .uplinks = ups,
        .n_uplinks = 1,
        .commit_every = every,
        .commit_ms = 100000,
        .synchronous = sync,
        .max_bytes = 4u << 20,
        .vfs = TESTVFS_NAME,
    };
    tern_store *s = NULL;
    char err[256];
    if (tern_store_open(&o, &s, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    return s;
}

/* Appends k readings whose value is their seq. */
static void append_k(tern_store *s, int k)
{
    struct tern_reading r[64];
    while (k > 0) {
        int n = k < 64 ? k : 64;
        struct tern_store_stats st;
        tern_store_stats(s, &st);
        for (int i = 0; i < n; i++) {
            util_reading(&r[i], 0);
            r[i].value = (double)(st.last_seq + 1 + i);
        }
        assert_int_equal(tern_store_append(s, r, (size_t)n), 0);
        k -= n;
    }
}

/* Cuts the power under the open store s and closes what is left of it. */
static long power_cut(tern_store *s, int keep_percent)
{
    long dropped = testvfs_crash(keep_percent);
    tern_store_close(s); /* nothing it writes now reaches the disk */
    testvfs_recover();
    return dropped;
}

static void test_full_survives_power_loss(void **state)
{
    struct util_fx *f = *state;
    testvfs_set_buffering(1);
    srand(12345);
    uint64_t epoch = 0;
    int64_t max_durable = 0;
    int cuts = 0;
    for (int trial = 0; trial < 40; trial++) {
        tern_store *s = open_shim(f->path, TERN_SYNC_FULL, 1 + (uint32_t)(rand() % 60));
        if (epoch == 0)
            epoch = tern_store_epoch(s);
        assert_true(tern_store_epoch(s) == epoch); /* never corrupted */
        assert_true(tern_store_durable_seq(s) >= max_durable);
        /* The cut lands somewhere in the next writes: maybe mid-commit,
         * mid-checkpoint or mid-vacuum. What counts is what the store had
         * reported durable before the call during which the power went. */
        testvfs_crash_after(1 + rand() % 400, rand() % 100);
        for (int i = 0; i < 200 && !testvfs_crashed(); i++) {
            int64_t before = tern_store_durable_seq(s);
            int op = rand() % 10;
            if (op < 6) {
                append_k(s, 1 + rand() % 200);
            } else if (op < 8) {
                /* Deliver a prefix so deletes and checkpoints are in the mix. */
                struct tern_reading out[300];
                size_t n = 0;
                assert_int_equal(tern_store_read(s, 0, 0, out, 300, &n), 0);
                if (n > 0)
                    assert_int_equal(tern_store_ack(s, 0, out[0].seq, out[n - 1].seq), 0);
            } else if (op < 9) {
                assert_int_equal(tern_store_flush(s), 0);
            } else {
                tern_store_tick(s, tern_mono_ms());
            }
            int64_t d = testvfs_crashed() ? before : tern_store_durable_seq(s);
            if (d > max_durable)
                max_durable = d;
        }
        if (!testvfs_crashed())
            testvfs_crash(rand() % 100);
        cuts++;
        tern_store_close(s); /* nothing it writes now reaches the disk */
        testvfs_recover();

        /* Check with plain SQLite (default VFS: what is really on disk). */
        assert_true(util_integrity_ok(f->path));
        int64_t acked = util_query_int(f->path, "SELECT acked_seq FROM uplinks");
        int64_t hwm = util_query_int(f->path, "SELECT value FROM meta WHERE key='seq_hwm'");
        assert_true(hwm >= max_durable);
        struct util_scan sc;
        assert_int_equal(util_scan(f->path, acked, max_durable, 1, &sc), 0);
        assert_int_equal(sc.bad_values, 0);
        assert_int_equal(sc.bad_blocks, 0);
        if (max_durable > acked) {
            int64_t present = sc.in_range;
            if (present != max_durable - acked)
                fail_msg("trial %d: %" PRId64 " of %" PRId64 " durable readings survived", trial,
                         present, max_durable - acked);
        }
    }
    print_message("FULL: %d power cuts, max durable %" PRId64 "\n", cuts, max_durable);
    assert_true(max_durable > 0);
}

/* A commit followed at once by a cut that drops every unsynced write. */
static int64_t lost_after_cut(const char *path, enum tern_store_sync sync)
{
    tern_store *s = open_shim(path, sync, 1000);
    append_k(s, 50);
    assert_int_equal(tern_store_flush(s), 0);
    int64_t durable = tern_store_durable_seq(s);
    power_cut(s, 0);
    /* A weaker mode may also damage the file: the store then moves it
     * aside, which loses everything. Either way the reading is gone. */
    static const char *const ups[] = {"mqtt"};
    struct tern_store_options o = {.path = path, .uplinks = ups, .n_uplinks = 1};
    tern_store *t = NULL;
    assert_int_equal(tern_store_open(&o, &t, NULL, 0), 0);
    int64_t after = tern_store_durable_seq(t);
    tern_store_close(t);
    return durable - after;
}

static void test_normal_and_off_are_not_power_safe(void **state)
{
    struct util_fx *f = *state;
    testvfs_set_buffering(1);
    int64_t lost_normal = lost_after_cut(f->path, TERN_SYNC_NORMAL);
    char p2[320];
    snprintf(p2, sizeof p2, "%s/off.db", f->dir);
    int64_t lost_off = lost_after_cut(p2, TERN_SYNC_OFF);
    char p3[320];
    snprintf(p3, sizeof p3, "%s/full.db", f->dir);
    int64_t lost_full = lost_after_cut(p3, TERN_SYNC_FULL);
    print_message("readings reported durable then lost by a power cut: normal %" PRId64
                  ", off %" PRId64 ", full %" PRId64 "\n",
                  lost_normal, lost_off, lost_full);
    assert_true(lost_normal > 0);
    assert_true(lost_off > 0);
    assert_int_equal(lost_full, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_survives_power_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normal_and_off_are_not_power_safe, setup, teardown),
    };
    tern_log_init("test_storage_powerloss", TERN_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
