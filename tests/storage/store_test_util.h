/* store_test_util.h - helpers shared by the storage tests: scratch
 * directories, reading factories, raw SQLite checks. Header-only (static) so
 * each test binary stays one source file plus this. */
#ifndef TERN_STORE_TEST_UTIL_H
#define TERN_STORE_TEST_UTIL_H

#include <ftw.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "clock.h"
#include "reading.h"
#include "storage.h"

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Removes a scratch directory tree; ignores errors. */
static inline void util_rmtree(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates a scratch directory on a real disk (/var/tmp or $TMPDIR) into
 * buf (>= 256 bytes). Aborts the test binary when impossible. */
static inline void util_mkdtemp(char *buf, size_t cap, const char *tag)
{
    const char *base = getenv("TERN_TEST_TMPDIR");
    if (!base)
        base = "/var/tmp";
    snprintf(buf, cap, "%s/tern-%s-XXXXXX", base, tag);
    if (!mkdtemp(buf)) {
        snprintf(buf, cap, "/tmp/tern-%s-XXXXXX", tag);
        if (!mkdtemp(buf)) {
            perror("mkdtemp");
            abort();
        }
    }
}

/* The fixture of most storage tests: a scratch directory and the queue
 * file path in it. */
struct util_fx {
    char dir[256];
    char path[300]; /* dir/queue.db, not created */
};

/* A fixture with a fresh scratch directory named after tag. Aborts the test
 * binary when impossible. The caller owns it; util_fx_free releases it. */
static inline struct util_fx *util_fx_new(const char *tag)
{
    struct util_fx *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    util_mkdtemp(f->dir, sizeof f->dir, tag);
    snprintf(f->path, sizeof f->path, "%s/queue.db", f->dir);
    return f;
}

/* Removes the fixture's directory tree and frees it. */
static inline void util_fx_free(struct util_fx *f)
{
    util_rmtree(f->dir);
    free(f);
}

/* A cmocka teardown for a util_fx made by the test's setup. */
static inline int util_fx_teardown(void **state)
{
    util_fx_free(*state);
    return 0;
}

/* A reading that is a function of i, so content can be checked later. */
static inline void util_reading(struct tern_reading *r, int64_t i)
{
    memset(r, 0, sizeof *r);
    tern_copy_field(r->device_id, sizeof r->device_id, "pi-01");
    snprintf(r->sensor, sizeof r->sensor, "env%d", (int)(i % 4));
    tern_copy_field(r->metric, sizeof r->metric, (i % 2) ? "humidity" : "temperature");
    tern_copy_field(r->unit, sizeof r->unit, (i % 2) ? "%" : "Cel");
    tern_copy_field(r->tags, sizeof r->tags, "{\"site\":\"lab\"}");
    r->value = (double)i * 0.25;
    r->ts_ms = tern_utc_ms();
    r->flags = 0;
}

/* A reading with ~200 bytes of tags unique to it (a counter inside), so
 * the store's string dictionary cannot shrink it: fills caps and disks. */
static inline void util_fat_reading(struct tern_reading *r, int64_t i)
{
    static uint64_t counter;
    util_reading(r, i);
    int n = snprintf(r->tags, sizeof r->tags, "{\"n\":\"%llu", (unsigned long long)++counter);
    memset(r->tags + n, 'x', 200 - (size_t)n);
    memcpy(r->tags + 198, "\"}", 3);
}

/* PRAGMA integrity_check of a closed store file; 1 when "ok". */
static inline int util_integrity_ok(const char *path)
{
    sqlite3 *db = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            const char *r = (const char *)sqlite3_column_text(st, 0);
            ok = r && strcmp(r, "ok") == 0;
            if (!ok)
                fprintf(stderr, "integrity_check: %s\n", r ? r : "?");
        } else {
            fprintf(stderr, "integrity_check: %s\n", sqlite3_errmsg(db));
        }
        sqlite3_finalize(st);
    } else {
        fprintf(stderr, "integrity_check: cannot open %s\n", path);
    }
    sqlite3_close(db);
    return ok;
}

/* One integer from a closed store file (raw SQLite); -1 on error. */
static inline int64_t util_query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* What the blocks of a store file hold, decoded with plain SQLite (the file
 * as it is on disk, not what the store API says). */
struct util_scan {
    int64_t readings;    /* decoded readings in all blocks */
    int64_t in_range;    /* of them, with lo < seq <= hi */
    int64_t bad_values;  /* readings whose value is not their seq (util_reading) */
    int64_t bad_blocks;  /* blocks that do not decode to last-first+1 readings */
    int64_t max_seq;
    int64_t tags_id, tags_inline; /* how the tags field was stored */
};

/* Scans every block of db. With check_values, counts the readings whose
 * value is not their seq (the crash tests append such readings). Returns 0,
 * or -1 on a SQLite error. */
static inline int util_scan_db(sqlite3 *db, int64_t lo, int64_t hi, int check_values,
                               struct util_scan *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT last_seq, first_seq, data FROM blocks ORDER BY last_seq",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t last = sqlite3_column_int64(st, 0), seq = sqlite3_column_int64(st, 1);
        struct block_dec d;
        struct block_item it;
        block_dec_init(&d, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
        int k;
        while ((k = block_dec_next(&d, &it)) == 1) {
            r->readings++;
            if (seq > lo && seq <= hi)
                r->in_range++;
            if (check_values && it.value != (double)seq)
                r->bad_values++;
            if (it.str[BLOCK_TAGS].id)
                r->tags_id++;
            else
                r->tags_inline++;
            if (seq > r->max_seq)
                r->max_seq = seq;
            seq++;
        }
        if (k != 0 || seq != last + 1)
            r->bad_blocks++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* util_scan_db on a closed store file. */
static inline int util_scan(const char *path, int64_t lo, int64_t hi, int check_values,
                            struct util_scan *r)
{
    sqlite3 *db = NULL;
    int rc = -1;
    memset(r, 0, sizeof *r);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
        rc = util_scan_db(db, lo, hi, check_values, r);
    sqlite3_close(db);
    return rc;
}

#endif
