/* test_storage_corrupt.c - damaged files at open. Fixtures are made here:
 * a real queue file with garbage written over its pages, the same file
 * truncated, a text file, a SQLite file of someone else's, a zero-length
 * file. A damaged file must be moved aside under a timestamped name, counted,
 * logged, and replaced by a fresh queue with a new epoch; the open succeeds
 * (no crash loop) and the new queue works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>

#include "log.h"
#include "store_test_util.h"

static int setup(void **state)
{
    *state = util_fx_new("corrupt");
    return 0;
}

static const char *const ups[] = {"mqtt"};

static tern_store *open_ok(const char *path)
{
    struct tern_store_options o = {.path = path, .uplinks = ups, .n_uplinks = 1};
    tern_store *s = NULL;
    char err[256];
    if (tern_store_open(&o, &s, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    return s;
}

/* A queue file with n readings in it; returns its epoch. */
static uint64_t make_queue(const char *path, int n)
{
    tern_store *s = open_ok(path);
    uint64_t e = tern_store_epoch(s);
    struct tern_reading r;
    for (int i = 0; i < n; i++) {
        util_fat_reading(&r, i);
        assert_int_equal(tern_store_append(s, &r, 1), 0);
    }
    tern_store_close(s);
    return e;
}

static int count_moved(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, "queue.db.corrupt-") && !strstr(e->d_name, "-wal"))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void write_at(const char *path, off_t off, const void *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, n, off), (ssize_t)n);
    close(fd);
}

/* Opens the damaged file and checks it was replaced by a working queue. */
static void expect_replaced(struct util_fx *f, uint64_t old_epoch, int lost_at_least)
{
    tern_store *s = open_ok(f->path);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.corrupt_files_moved, 1);
    assert_true(st.dropped[TERN_DROP_CORRUPT] >= (uint64_t)lost_at_least);
    assert_true(st.epoch != 0 && st.epoch != old_epoch);
    assert_int_equal(st.queued, 0);
    assert_int_equal(count_moved(f->dir), 1);
    struct tern_reading r;
    util_reading(&r, 1);
    assert_int_equal(tern_store_append(s, &r, 1), 0);
    assert_int_equal(r.seq, 1);
    assert_int_equal(tern_store_flush(s), 0);
    tern_store_close(s);
    assert_true(util_integrity_ok(f->path));
    /* And it stays fixed: the next open finds a sound file. */
    s = open_ok(f->path);
    tern_store_stats(s, &st);
    assert_int_equal(st.corrupt_files_moved, 0);
    assert_int_equal(st.queued, 1);
    tern_store_close(s);
}

static void test_garbage_in_pages(void **state)
{
    struct util_fx *f = *state;
    uint64_t e = make_queue(f->path, 3000);
    unsigned char junk[4096 * 8];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    write_at(f->path, 4096 * 3, junk, sizeof junk);
    expect_replaced(f, e, 0);
}

static void test_truncated(void **state)
{
    struct util_fx *f = *state;
    uint64_t e = make_queue(f->path, 3000);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(truncate(f->path, st.st_size / 2 + 1000), 0);
    expect_replaced(f, e, 0);
}

static void test_not_a_database(void **state)
{
    struct util_fx *f = *state;
    char text[8192];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "this is not a database\n"[i % 23];
    write_at(f->path, 0, text, sizeof text);
    expect_replaced(f, 0, 0);
}

static void test_garbage_header(void **state)
{
    struct util_fx *f = *state;
    uint64_t e = make_queue(f->path, 10);
    write_at(f->path, 0, "\xff\xfe garbage header", 17);
    expect_replaced(f, e, 0);
}

static void test_someone_elses_database(void **state)
{
    struct util_fx *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE photos(id, data)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    expect_replaced(f, 0, 0);
}

static void test_wrong_schema_version(void **state)
{
    struct util_fx *f = *state;
    uint64_t e = make_queue(f->path, 10);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    expect_replaced(f, e, 10); /* the readings could still be counted */
}

static void test_empty_file_is_new(void **state)
{
    struct util_fx *f = *state;
    write_at(f->path, 0, "", 0);
    tern_store *s = open_ok(f->path);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.corrupt_files_moved, 0);
    assert_true(st.epoch != 0);
    tern_store_close(s);
    assert_int_equal(count_moved(f->dir), 0);
}

static void test_unmovable_fails_cleanly(void **state)
{
    struct util_fx *f = *state;
    /* A directory where the file should be (root ignores permissions, so
     * this is the unopenable case we can make): refused, no crash. */
    char sub[320];
    snprintf(sub, sizeof sub, "%s/dir.db", f->dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    struct tern_store_options o = {.path = sub, .uplinks = ups, .n_uplinks = 1};
    tern_store *s = NULL;
    char err[256] = "";
    int rc = tern_store_open(&o, &s, err, sizeof err);
    if (rc == 0)
        tern_store_close(s);
    else
        assert_true(strlen(err) > 0);
}

/* Corruption met while running (a page read fails): the next tick moves the
 * file aside and carries on with a new epoch. */
static void test_corruption_while_running(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open_ok(f->path);
    uint64_t e = tern_store_epoch(s);
    struct tern_reading r;
    for (int i = 0; i < 6000; i++) {
        util_fat_reading(&r, i);
        assert_int_equal(tern_store_append(s, &r, 1), 0);
    }
    assert_int_equal(tern_store_flush(s), 0);
    /* Garbage over most pages, in the database and in the WAL, beyond what
     * the 256 KiB page cache can still hold. */
    static unsigned char junk[1 << 20];
    srand(11);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    char wal[320];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    write_at(f->path, 8192, junk, sizeof junk);
    write_at(wal, 8192, junk, sizeof junk);
    struct tern_reading out[100];
    size_t n = 0;
    int failed = 0;
    int64_t after = 0;
    for (int i = 0; i < 100 && !failed; i++) {
        failed = tern_store_read(s, 0, after, out, 100, &n) != 0;
        if (!failed && n == 0)
            break;
        if (!failed)
            after = out[n - 1].seq;
    }
    assert_true(failed);
    assert_int_equal(tern_store_tick(s, tern_mono_ms()), 0);
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.corrupt_files_moved, 1);
    assert_true(st.epoch != e);
    assert_int_equal(st.queued, 0);
    util_reading(&r, 1);
    assert_int_equal(tern_store_append(s, &r, 1), 0);
    assert_int_equal(r.seq, 1);
    assert_int_equal(tern_store_flush(s), 0);
    assert_int_equal(tern_store_read(s, 0, 0, out, 100, &n), 0);
    assert_int_equal(n, 1);
    tern_store_close(s);
    assert_int_equal(count_moved(f->dir), 1);
    assert_true(util_integrity_ok(f->path));
}

/* A block whose bytes were damaged inside a sound SQLite file (a bit flip
 * SQLite cannot see): its readings are lost and counted, every other one is
 * delivered, and the queue moves on instead of failing on it forever. */
static void test_damaged_block(void **state)
{
    struct util_fx *f = *state;
    tern_store *s = open_ok(f->path);
    struct tern_reading r[200];
    for (int i = 0; i < 200; i++)
        util_reading(&r[i], i);
    assert_int_equal(tern_store_append(s, r, 200), 0);
    tern_store_close(s);
    /* Blocks hold 64 readings: 1-64, 65-128, 129-192, 193-200. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE blocks SET data = x'ff' WHERE last_seq = 128;"
                                  "UPDATE blocks SET data = substr(data, 1, 40)"
                                  " WHERE last_seq = 200",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    s = open_ok(f->path);
    struct tern_reading out[300];
    size_t n = 0, got = 0;
    int64_t after = 0;
    do {
        assert_int_equal(tern_store_read(s, 0, after, out + got, 50, &n), 0);
        if (n)
            after = out[got + n - 1].seq;
        got += n;
    } while (n > 0);
    assert_int_equal(got, 128);
    for (size_t i = 0; i < got; i++) {
        int64_t want = i < 64 ? (int64_t)i + 1 : (int64_t)i + 65;
        assert_int_equal(out[i].seq, want);
        assert_true(out[i].value == r[want - 1].value);
        assert_string_equal(out[i].sensor, r[want - 1].sensor);
    }
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    assert_int_equal(st.dropped[TERN_DROP_CORRUPT], 64 + 8);
    assert_int_equal(st.corrupt_files_moved, 0);
    assert_int_equal(tern_store_ack(s, 0, 1, 64), 0);
    assert_int_equal(tern_store_ack(s, 0, 129, 192), 0);
    assert_int_equal(tern_store_flush(s), 0);
    tern_store_stats(s, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(tern_store_acked_seq(s, 0), 200);
    tern_store_close(s);
    assert_int_equal(count_moved(f->dir), 0);
    assert_int_equal(util_query_int(f->path, "SELECT count(*) FROM blocks"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_garbage_in_pages, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_header, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_someone_elses_database, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_schema_version, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_is_new, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_unmovable_fails_cleanly, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_corruption_while_running, setup, util_fx_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_block, setup, util_fx_teardown),
    };
    tern_log_init("test_storage_corrupt", TERN_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
