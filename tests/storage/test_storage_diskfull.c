/* test_storage_diskfull.c - a full disk. The store runs on a 1 MiB tmpfs
 * mounted for the test (we run as root in CI); when mounting is not allowed
 * the same scenario runs on the quota VFS (test_vfs.c) and the test says so
 * loudly. A second case always runs on the quota VFS. In both: appends fail
 * and are counted, nothing durable is lost, the store keeps serving reads,
 * and once space returns it writes again by itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>

#include "log.h"
#include "store_test_util.h"
#include "test_vfs.h"

struct fx {
    char dir[256];
    char path[300];
    char filler[300];
    int mounted;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    util_mkdtemp(f->dir, sizeof f->dir, "diskfull");
    snprintf(f->path, sizeof f->path, "%s/queue.db", f->dir);
    snprintf(f->filler, sizeof f->filler, "%s/filler", f->dir);
    *state = f;
    assert_int_equal(testvfs_register(), 0);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    testvfs_set_quota(-1);
    testvfs_set_write_error(0);
    if (f->mounted && umount2(f->dir, MNT_DETACH) != 0)
        fprintf(stderr, "umount %s: %s\n", f->dir, strerror(errno));
    util_rmtree(f->dir);
    free(f);
    return 0;
}

static tern_store *open_store(const char *path, const char *vfs)
{
    static const char *const ups[] = {"mqtt"};
    struct tern_store_options o = {
        .path = path,
        .uplinks = ups,
        .n_uplinks = 1,
        .commit_every = 50,
        .synchronous = TERN_SYNC_NORMAL,
        .max_bytes = 64u << 20, /* far above the disk: the disk fills first */
        .vfs = vfs,
    };
    tern_store *s = NULL;
    char err[256];
    if (tern_store_open(&o, &s, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    return s;
}

/* Appends one batch of 10 big readings (value = seq); returns append's rc. */
static int append_batch(tern_store *s)
{
    struct tern_reading r[10];
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    for (int i = 0; i < 10; i++) {
        util_fat_reading(&r[i], 0);
        r[i].value = (double)(st.last_seq + 1 + i);
    }
    return tern_store_append(s, r, 10);
}

/* The scenario; make_room() gives space back (removes a filler file or
 * raises the quota). */
static void run_disk_full(const char *path, const char *vfs, void (*make_room)(void *),
                          void *arg)
{
    tern_store *s = open_store(path, vfs);
    int failed = 0;
    for (int i = 0; i < 20000 && !failed; i++)
        failed = append_batch(s) != 0;
    assert_true(failed);
    int64_t durable = tern_store_durable_seq(s);
    assert_true(durable > 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    uint64_t lost = st.dropped[TERN_DROP_DISK_FULL];
    assert_true(lost > 0);

    /* Still full: it keeps running, and counts what it cannot keep. */
    int fails = 0;
    for (int i = 0; i < 50; i++) {
        fails += append_batch(s) != 0;
        /* A commit by time fails in tick rather than in append. */
        fails += tern_store_tick(s, tern_mono_ms() + 10000) != 0;
    }
    assert_true(fails > 0);
    tern_store_stats(s, &st);
    assert_true(st.dropped[TERN_DROP_DISK_FULL] > lost);
    assert_int_equal(st.dropped[TERN_DROP_OVERFLOW_OLDEST], 0);
    /* Reads still work and return only durable readings. */
    struct tern_reading out[100];
    size_t n = 0;
    assert_int_equal(tern_store_read(s, 0, 0, out, 100, &n), 0);
    assert_true(n > 0);
    assert_int_equal(out[0].seq, 1);
    assert_true(out[n - 1].seq <= tern_store_durable_seq(s));

    /* Space returns: it writes again without being told. */
    make_room(arg);
    int ok = 0;
    for (int i = 0; i < 20 && !ok; i++)
        ok = append_batch(s) == 0 && tern_store_flush(s) == 0;
    assert_true(ok);
    assert_true(tern_store_durable_seq(s) > durable);
    int64_t durable2 = tern_store_durable_seq(s);
    tern_store_close(s);

    /* Nothing durable was lost and every row is what was appended. */
    assert_true(util_integrity_ok(path));
    struct util_scan sc;
    assert_int_equal(util_scan(path, 0, INT64_MAX, 1, &sc), 0);
    assert_int_equal(sc.bad_values, 0);
    assert_int_equal(sc.bad_blocks, 0);
    assert_true(sc.readings >= durable);
    assert_true(sc.max_seq >= durable2);
    print_message("durable before full %" PRId64 ", after recovery %" PRId64 "\n", durable,
                  durable2);
}

static void remove_filler(void *arg) { unlink((const char *)arg); }

static void raise_quota(void *arg)
{
    (void)arg;
    testvfs_set_quota(-1);
}

static void test_disk_full_tmpfs(void **state)
{
    struct fx *f = *state;
    if (mount("tmpfs", f->dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") == 0) {
        f->mounted = 1;
        /* Half the disk held by a filler file: deleting it is "space returns"
         * (enough for the checkpoint to move the WAL into the database). */
        int fd = open(f->filler, O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        static char buf[512 << 10];
        memset(buf, 'x', sizeof buf);
        assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
        close(fd);
        print_message("disk full on a real 1 MiB tmpfs at %s\n", f->dir);
        run_disk_full(f->path, NULL, remove_filler, f->filler);
        return;
    }
    /* Not silently skipped: the same scenario on the quota VFS, reported. */
    print_message("NOTE: mounting a tmpfs failed (%s); disk full is simulated by the quota "
                  "VFS instead\n",
                  strerror(errno));
    testvfs_set_quota(1 << 20);
    run_disk_full(f->path, TESTVFS_NAME, raise_quota, NULL);
}

static void test_disk_full_quota_vfs(void **state)
{
    struct fx *f = *state;
    testvfs_set_quota(768 << 10);
    long before = testvfs_full_errors();
    run_disk_full(f->path, TESTVFS_NAME, raise_quota, NULL);
    assert_true(testvfs_full_errors() > before);
}

/* Writes failing with an I/O error (read-only remount, worn-out card): the
 * same contract as a full disk. */
static void test_write_errors(void **state)
{
    struct fx *f = *state;
    tern_store *s = open_store(f->path, TESTVFS_NAME);
    for (int i = 0; i < 20; i++)
        assert_int_equal(append_batch(s), 0);
    assert_int_equal(tern_store_flush(s), 0);
    int64_t durable = tern_store_durable_seq(s);
    testvfs_set_write_error(SQLITE_IOERR_WRITE);
    int fails = 0;
    for (int i = 0; i < 30; i++) {
        fails += append_batch(s) != 0;
        fails += tern_store_tick(s, tern_mono_ms() + 10000) != 0;
    }
    assert_true(fails > 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_true(st.dropped[TERN_DROP_DISK_FULL] > 0);
    assert_int_equal(st.corrupt_files_moved, 0);
    assert_int_equal(tern_store_durable_seq(s), durable);
    struct tern_reading out[10];
    size_t n = 0;
    assert_int_equal(tern_store_read(s, 0, 0, out, 10, &n), 0);
    assert_int_equal(n, 10);
    testvfs_set_write_error(0);
    int ok = 0;
    for (int i = 0; i < 20 && !ok; i++)
        ok = append_batch(s) == 0 && tern_store_flush(s) == 0;
    assert_true(ok);
    assert_true(tern_store_durable_seq(s) > durable);
    tern_store_close(s);
    assert_true(util_integrity_ok(f->path));
    struct util_scan sc;
    assert_int_equal(util_scan(f->path, 0, INT64_MAX, 1, &sc), 0);
    assert_int_equal(sc.bad_values, 0);
    assert_int_equal(sc.bad_blocks, 0);
    assert_true(sc.readings > durable);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_quota_vfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
    };
    tern_log_init("test_storage_diskfull", TERN_LOG_WARN, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
