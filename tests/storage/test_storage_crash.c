/* test_storage_crash.c - SIGKILL at random moments. A child appends and acks
 * (out of order, two uplinks) at full speed and reports every durable seq to
 * the parent through a pipe; the parent kills it after 5-50 ms, 200+ times,
 * and after each kill checks the file: integrity_check ok, every reading
 * reported durable is present exactly once with its content or was acked by
 * every uplink, and the next run's seqs are strictly above every durable seq
 * (nothing that may have been sent is ever reused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "store_test_util.h"

#define DEFAULT_ITERATIONS 220
/* Under valgrind every child start costs ~0.4 s: keep that run short (the
 * plain and ASan runs do the full count). */
#define VALGRIND_ITERATIONS 30

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() 0
#endif

struct msg {
    char type;   /* 'E' epoch, 'F' first seq of this run, 'D' durable seq */
    char pad[7];
    int64_t v;
};

static void send_msg(int fd, char type, int64_t v)
{
    struct msg m = {.type = type, .v = v};
    /* 16 bytes < PIPE_BUF: atomic; a kill never leaves half a message. */
    if (write(fd, &m, sizeof m) != (ssize_t)sizeof m)
        _exit(3);
}

struct flight {
    int64_t first, last;
};

/* The child: never returns. */
static void child(const char *path, int fd, unsigned seed)
{
    srand(seed);
    const char *const ups[] = {"mqtt", "kafka"};
    struct tern_store_options o = {
        .path = path,
        .uplinks = ups,
        .n_uplinks = 2,
        .commit_every = 1 + (uint32_t)(rand() % 200),
        .commit_ms = 1 + (uint32_t)(rand() % 20),
        .synchronous = (rand() % 2) ? TERN_SYNC_NORMAL : TERN_SYNC_OFF,
    };
    tern_store *s = NULL;
    char err[256];
    if (tern_store_open(&o, &s, err, sizeof err) != 0) {
        fprintf(stderr, "child open: %s\n", err);
        _exit(2);
    }
    send_msg(fd, 'E', (int64_t)tern_store_epoch(s));
    int64_t durable = tern_store_durable_seq(s);
    int64_t sent[2] = {tern_store_acked_seq(s, 0), tern_store_acked_seq(s, 1)};
    struct flight fl[2][4];
    int nfl[2] = {0, 0};
    int first = 1;
    struct tern_reading r[50], out[64];
    for (;;) {
        struct tern_store_stats st;
        tern_store_stats(s, &st);
        int k = 1 + rand() % 50;
        for (int i = 0; i < k; i++) {
            util_reading(&r[i], 0);
            /* The value is the seq the store will assign: checked later. */
            r[i].value = (double)(st.last_seq + 1 + i);
        }
        if (tern_store_append(s, r, (size_t)k) != 0)
            _exit(4);
        if (first) {
            send_msg(fd, 'F', r[0].seq);
            first = 0;
        }
        if (tern_store_durable_seq(s) != durable) {
            durable = tern_store_durable_seq(s);
            send_msg(fd, 'D', durable);
        }
        for (int u = 0; u < 2; u++) {
            if (nfl[u] < 4) {
                size_t n = 0;
                if (tern_store_read(s, u, sent[u], out, 1 + (size_t)(rand() % 64), &n) != 0)
                    _exit(5);
                if (n > 0) {
                    fl[u][nfl[u]++] = (struct flight){out[0].seq, out[n - 1].seq};
                    sent[u] = out[n - 1].seq;
                }
            }
            if (nfl[u] > 0 && (nfl[u] == 4 || rand() % 3 == 0)) {
                int j = rand() % nfl[u]; /* out of order */
                if (tern_store_ack(s, u, fl[u][j].first, fl[u][j].last) != 0)
                    _exit(6);
                fl[u][j] = fl[u][--nfl[u]];
            }
        }
        if (tern_store_tick(s, tern_mono_ms()) != 0)
            _exit(7);
        if (tern_store_durable_seq(s) != durable) {
            durable = tern_store_durable_seq(s);
            send_msg(fd, 'D', durable);
        }
    }
}

static void test_sigkill_loop(void **state)
{
    (void)state;
    char dir[256], path[300];
    util_mkdtemp(dir, sizeof dir, "crash");
    snprintf(path, sizeof path, "%s/queue.db", dir);
    int iterations = UNDER_VALGRIND() ? VALGRIND_ITERATIONS : DEFAULT_ITERATIONS;
    if (getenv("TERN_CRASH_ITERATIONS"))
        iterations = atoi(getenv("TERN_CRASH_ITERATIONS"));
    srand((unsigned)time(NULL));
    unsigned base_seed = (unsigned)rand();
    print_message("seed %u, %d kills\n", base_seed, iterations);

    uint64_t epoch = 0;
    int64_t max_durable = 0;
    int runs_with_progress = 0;
    for (int it = 0; it < iterations; it++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child(path, p[1], base_seed + (unsigned)it);
        }
        close(p[1]);
        /* Three kills in four land after the open (so slow builds such as
         * valgrind's still crash mid-work); the rest may hit the open. */
        struct msg m;
        int64_t first_seq = 0, run_durable = 0;
        if (it % 4 != 0) {
            struct pollfd pfd = {.fd = p[0], .events = POLLIN};
            if (poll(&pfd, 1, 20000) == 1 && read(p[0], &m, sizeof m) == (ssize_t)sizeof m) {
                assert_true(m.type == 'E');
                if (epoch == 0)
                    epoch = (uint64_t)m.v;
                assert_true((uint64_t)m.v == epoch);
            }
        }
        struct timespec d = {0, (5 + rand() % 46) * 1000000L};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("child exited by itself (status %d) in run %d", status, it);

        ssize_t got;
        while ((got = read(p[0], &m, sizeof m)) == (ssize_t)sizeof m) {
            if (m.type == 'E') {
                if (epoch == 0)
                    epoch = (uint64_t)m.v;
                /* A file that was sound must never be replaced. */
                assert_true((uint64_t)m.v == epoch);
            } else if (m.type == 'F') {
                first_seq = m.v;
            } else if (m.type == 'D' && m.v > run_durable) {
                run_durable = m.v;
            }
        }
        assert_int_equal(got, 0);
        close(p[0]);
        /* Seqs of this run start above everything durable before it. */
        if (first_seq)
            assert_true(first_seq > max_durable);
        if (run_durable > max_durable) {
            max_durable = run_durable;
            runs_with_progress++;
        }

        /* Killed before the first open finished: there is no queue yet. */
        if (epoch == 0)
            continue;
        /* Check the file as the kill left it (no checkpoint on close, so the
         * next child recovers the same WAL). */
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        sqlite3_stmt *st = NULL;
        const char *sql =
            "SELECT (SELECT integrity_check FROM pragma_integrity_check LIMIT 1),"
            " (SELECT min(acked_seq) FROM uplinks),"
            " (SELECT value FROM meta WHERE key = 'seq_hwm'),"
            " 0,"
            " (SELECT value FROM meta WHERE key = 'epoch')";
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        const char *ic = (const char *)sqlite3_column_text(st, 0);
        if (!ic || strcmp(ic, "ok") != 0)
            fail_msg("run %d: integrity_check: %s", it, ic ? ic : "(null)");
        int64_t acked = sqlite3_column_int64(st, 1);
        int64_t hwm = sqlite3_column_int64(st, 2);
        int64_t bad_values = sqlite3_column_int64(st, 3);
        if (epoch)
            assert_true((uint64_t)sqlite3_column_int64(st, 4) == epoch);
        sqlite3_finalize(st);
        /* Every block decodes, every value is its seq, and every durable
         * reading not acked by all uplinks is still there exactly once. */
        struct util_scan sc;
        assert_int_equal(util_scan_db(db, acked, max_durable, 1, &sc), 0);
        bad_values = sc.bad_values;
        assert_int_equal(bad_values, 0);
        assert_int_equal(sc.bad_blocks, 0);
        if (hwm < max_durable)
            fail_msg("run %d: seq high-water mark %" PRId64 " below durable %" PRId64, it, hwm,
                     max_durable);
        if (max_durable > acked && sc.in_range != max_durable - acked)
            fail_msg("run %d: %" PRId64 " of %" PRId64 " durable unacked readings present"
                     " (acked %" PRId64 ", durable %" PRId64 ")",
                     it, sc.in_range, max_durable - acked, acked, max_durable);
        sqlite3_close(db);
    }
    print_message("max durable seq %" PRId64 ", %d runs made progress\n", max_durable,
                  runs_with_progress);
    assert_true(max_durable > 0);
    assert_true(runs_with_progress > 0);
    assert_true(util_integrity_ok(path));
    util_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sigkill_loop)};
    tern_log_init("test_storage_crash", TERN_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
