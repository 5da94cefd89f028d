/* storage_bench.c - throughput and write cost of the storage queue.
 *
 * Usage: bench_storage [rows] [off|normal|full]   (default 1000000 full)
 * Prints key=value lines: append_rows_per_s, drain_rows_per_s (read + ack +
 * delete), bytes_written_per_reading (device writes from /proc/self/io over
 * append + drain), sqlite_baseline_rows_per_s (a raw SQLite insert loop: same
 * columns, prepared statement, one transaction per commit_every rows, same
 * synchronous, WAL and cache), append_vs_sqlite, encoded_bytes_per_reading
 * (tern_wire_encode). Scratch files go to $TMPDIR or /var/tmp (a real disk:
 * tmpfs would report zero device writes). */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "reading.h"
#include "storage.h"
#include "wire.h"

#define BATCH 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Typical agent readings: a few sensors and metrics, one device, one tag. */
static void make_reading(struct tern_reading *r, int64_t i, int64_t ts0)
{
    static const char *const metrics[] = {"temperature", "humidity", "pressure"};
    static const char *const units[] = {"Cel", "%", "Pa"};
    memset(r, 0, sizeof *r);
    tern_copy_field(r->device_id, sizeof r->device_id, "pi-01");
    snprintf(r->sensor, sizeof r->sensor, "bme280-%d", (int)(i % 4));
    tern_copy_field(r->metric, sizeof r->metric, metrics[i % 3]);
    tern_copy_field(r->unit, sizeof r->unit, units[i % 3]);
    tern_copy_field(r->tags, sizeof r->tags, "{\"site\":\"lab\"}");
    r->value = 20.0 + (double)(i % 1000) * 0.013;
    r->ts_ms = ts0 + i * 10;
}

static void rm_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static int64_t proc_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "re");
    long long v = -1;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "write_bytes: %lld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* The baseline: what plain SQLite does with the same rows and settings. */
struct baseline {
    sqlite3 *db;
    sqlite3_stmt *ins;
    uint32_t commit_every;
    long in_txn;
};

static int baseline_open(struct baseline *b, const char *path, const char *sync_sql,
                         uint32_t commit_every)
{
    memset(b, 0, sizeof *b);
    b->commit_every = commit_every;
    if (sqlite3_open(path, &b->db) != SQLITE_OK)
        return -1;
    const char *setup[] = {
        "PRAGMA locking_mode = EXCLUSIVE", "PRAGMA journal_mode = WAL", sync_sql,
        "PRAGMA cache_size = -256",
        "CREATE TABLE readings(seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, device TEXT,"
        " sensor TEXT NOT NULL, metric TEXT NOT NULL, unit TEXT NOT NULL, value REAL NOT NULL,"
        " tags TEXT NOT NULL, flags INTEGER NOT NULL)",
    };
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++)
        if (sqlite3_exec(b->db, setup[i], NULL, NULL, NULL) != SQLITE_OK)
            return -1;
    return sqlite3_prepare_v3(b->db,
                              "INSERT INTO readings(ts_ms, device, sensor, metric, unit, value,"
                              " tags, flags) VALUES(?, NULL, ?, ?, ?, ?, ?, ?)",
                              -1, SQLITE_PREPARE_PERSISTENT, &b->ins, NULL) == SQLITE_OK
               ? 0
               : -1;
}

static int baseline_insert(struct baseline *b, const struct tern_reading *rs, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const struct tern_reading *r = &rs[k];
        if (b->in_txn == 0)
            sqlite3_exec(b->db, "BEGIN", NULL, NULL, NULL);
        sqlite3_bind_int64(b->ins, 1, r->ts_ms);
        sqlite3_bind_text(b->ins, 2, r->sensor, (int)strlen(r->sensor), SQLITE_STATIC);
        sqlite3_bind_text(b->ins, 3, r->metric, (int)strlen(r->metric), SQLITE_STATIC);
        sqlite3_bind_text(b->ins, 4, r->unit, (int)strlen(r->unit), SQLITE_STATIC);
        sqlite3_bind_double(b->ins, 5, r->value);
        sqlite3_bind_text(b->ins, 6, r->tags, (int)strlen(r->tags), SQLITE_STATIC);
        sqlite3_bind_int64(b->ins, 7, r->flags);
        if (sqlite3_step(b->ins) != SQLITE_DONE)
            return -1;
        sqlite3_reset(b->ins);
        if (++b->in_txn == (long)b->commit_every) {
            sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL);
            b->in_txn = 0;
        }
    }
    return 0;
}

static void baseline_close(struct baseline *b)
{
    if (b->in_txn)
        sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(b->ins);
    sqlite3_close(b->db);
}

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 1000000;
    const char *sync_name = argc > 2 ? argv[2] : "full";
    if (rows <= 0) {
        fprintf(stderr, "usage: bench_storage [rows] [off|normal|full]\n");
        return 2;
    }
    enum tern_store_sync sync = TERN_SYNC_FULL;
    const char *sync_sql = "PRAGMA synchronous = FULL";
    if (strcmp(sync_name, "normal") == 0) {
        sync = TERN_SYNC_NORMAL;
        sync_sql = "PRAGMA synchronous = NORMAL";
    } else if (strcmp(sync_name, "off") == 0) {
        sync = TERN_SYNC_OFF;
        sync_sql = "PRAGMA synchronous = OFF";
    }
    tern_log_init("bench_storage", TERN_LOG_WARN, 0);

    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    char dir[512], path[600], base_path[600];
    snprintf(dir, sizeof dir, "%s/tern-bench-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/queue.db", dir);
    snprintf(base_path, sizeof base_path, "%s/baseline.db", dir);

    const char *const uplinks[] = {"bench"};
    /* The cap is out of the way: this measures throughput, not overflow. */
    struct tern_store_options o = {
        .path = path, .uplinks = uplinks, .n_uplinks = 1, .synchronous = sync,
        .max_bytes = 4ull << 30};
    uint32_t commit_every = TERN_STORE_DEFAULT_COMMIT_EVERY;
    tern_store *s = NULL;
    char err[256];
    if (tern_store_open(&o, &s, err, sizeof err) != 0) {
        fprintf(stderr, "bench_storage: %s\n", err);
        return 1;
    }
    int64_t ts0 = tern_utc_ms();

    struct baseline base;
    if (baseline_open(&base, base_path, sync_sql, commit_every) != 0) {
        fprintf(stderr, "bench_storage: baseline set-up failed\n");
        return 1;
    }

    /* Append, in batches as the agent's sensor loop would. The baseline runs
     * on the same rows in alternating slices of 50 000, so both see the same
     * machine (the VMs this runs on are noisy). */
    struct tern_reading batch[BATCH];
    int64_t io0 = proc_write_bytes();
    double append_s = 0, base_s = 0;
    const long slice = 50000;
    for (long lo = 0; lo < rows; lo += slice) {
        long hi = lo + slice < rows ? lo + slice : rows;
        double t0 = now_s();
        for (long i = lo; i < hi; i += BATCH) {
            size_t k = (size_t)(hi - i < BATCH ? hi - i : BATCH);
            for (size_t j = 0; j < k; j++)
                make_reading(&batch[j], i + (long)j, ts0);
            if (tern_store_append(s, batch, k) != 0) {
                fprintf(stderr, "bench_storage: append failed\n");
                return 1;
            }
            if ((i / BATCH) % 16 == 0)
                tern_store_tick(s, tern_mono_ms());
        }
        if (hi == rows)
            tern_store_flush(s);
        append_s += now_s() - t0;
        int64_t io_a = proc_write_bytes();
        t0 = now_s();
        for (long i = lo; i < hi; i += BATCH) {
            size_t k = (size_t)(hi - i < BATCH ? hi - i : BATCH);
            for (size_t j = 0; j < k; j++)
                make_reading(&batch[j], i + (long)j, ts0);
            if (baseline_insert(&base, batch, k) != 0) {
                fprintf(stderr, "bench_storage: baseline insert failed\n");
                return 1;
            }
        }
        if (hi == rows)
            baseline_close(&base);
        base_s += now_s() - t0;
        /* The baseline's writes are not the store's. */
        io0 += proc_write_bytes() - io_a;
    }
    int64_t io1 = proc_write_bytes();

    /* Drain: read a batch, ack it (which deletes), as the forwarder does. */
    static struct tern_reading out[1000];
    long drained = 0;
    int64_t after = 0;
    double t0 = now_s();
    for (;;) {
        size_t n = 0;
        if (tern_store_read(s, 0, after, out, 1000, &n) != 0) {
            fprintf(stderr, "bench_storage: read failed\n");
            return 1;
        }
        if (n == 0)
            break;
        tern_store_ack(s, 0, out[0].seq, out[n - 1].seq);
        after = out[n - 1].seq;
        drained += (long)n;
        tern_store_tick(s, tern_mono_ms());
    }
    tern_store_flush(s);
    double drain_s = now_s() - t0;
    int64_t io2 = proc_write_bytes();
    struct tern_store_stats st;
    tern_store_stats(s, &st);
    tern_store_close(s);
    if (drained != rows)
        fprintf(stderr, "bench_storage: drained %ld of %ld\n", drained, rows);

    double base_rate = (double)rows / base_s;

    /* Encoded size of the same readings on the wire. */
    size_t enc = 0;
    char line[TERN_WIRE_LINE_MAX + 1];
    for (int i = 0; i < 300; i++) {
        struct tern_reading r;
        make_reading(&r, i, ts0);
        r.epoch = st.epoch;
        r.seq = rows / 2 + i;
        enc += tern_wire_encode(&r, line, sizeof line);
    }
    double append_rate = (double)rows / append_s;

    printf("rows=%ld\n", rows);
    printf("synchronous=%s\n", sync_name);
    printf("commit_every=%u\n", commit_every);
    printf("append_rows_per_s=%.0f\n", append_rate);
    printf("drain_rows_per_s=%.0f\n", (double)drained / drain_s);
    if (io0 >= 0) {
        printf("bytes_written_per_reading=%.1f\n", (double)(io2 - io0) / (double)rows);
        printf("bytes_written_per_reading_append=%.1f\n", (double)(io1 - io0) / (double)rows);
    } else {
        printf("bytes_written_per_reading=-1\n");
    }
    printf("sqlite_baseline_rows_per_s=%.0f\n", base_rate);
    printf("append_vs_sqlite=%.3f\n", base_rate > 0 ? append_rate / base_rate : 0.0);
    printf("encoded_bytes_per_reading=%.1f\n", (double)enc / 300.0);
    printf("commits=%" PRIu64 "\n", st.commits);

    rm_db(path);
    rm_db(base_path);
    rmdir(dir);
    return 0;
}
