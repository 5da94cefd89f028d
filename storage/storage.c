/* storage.c - the crash-safe SQLite queue (contract in storage.h, design and
 * guarantees in docs/storage.md).
 *
 * One connection, one open write transaction at a time. Appends, ack
 * deletions, drops and cursor updates all go into the current transaction,
 * which is committed every commit_every readings or commit_ms milliseconds.
 * Everything the transaction changed has a "committed" twin in memory
 * (the *_c fields) so that when a write fails (disk full, read-only, I/O
 * error) the transaction is rolled back, memory is put back to the last
 * committed state, and the loss is counted: the store keeps running and
 * simply tries again with the next append. */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ackset.h"
#include "block.h"
#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "sql.h"
#include "strdict.h"

/* Readings appended between two capacity checks: bounds how far past the cap
 * the data can grow (~64 KiB with typical readings) while keeping the two
 * pragma queries off the per-reading path. */
#define CAP_CHECK_EVERY 128u
/* Oldest readings looked at per tick for the age limit. */
#define AGE_SCAN_ROWS 4096
/* Reclaim file space once at least this many pages (1 MiB) and a quarter of
 * the file are free; below that, free pages are cheaper to reuse than to
 * give back and grow into again (flash wear). */
#define VACUUM_MIN_FREE_PAGES 256
/* At most one reclaim step (128 pages, 512 KiB) per second: each step moves
 * live pages and checkpoints, so doing it on every tick while a backlog
 * drains would cost more flash writes than the space is worth. */
#define VACUUM_EVERY_MS 1000
/* A transaction that deleted this many times commit_every readings is
 * committed early, so acks alone cannot grow the WAL without bound. */
#define DELETE_COMMIT_FACTOR 64u

/* The "cap reached" warning repeats at most this often while it lasts. */
#define OVERFLOW_LOG_EVERY_MS 60000

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT,
    ST_READ,
    ST_LAST_LE,
    ST_DELETE_UPTO,
    ST_PAGE_COUNT,
    ST_FREELIST_COUNT,
    ST_VACUUM_STEP,
    ST_META_GET,
    ST_META_PUT,
    ST_UPLINK_PUT,
    ST_STR_INSERT,
    ST_STR_CLEAR,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = SQL_BEGIN,
    [ST_COMMIT] = SQL_COMMIT,
    [ST_ROLLBACK] = SQL_ROLLBACK,
    [ST_INSERT] = SQL_BLOCKS_INSERT,
    [ST_READ] = SQL_BLOCKS_READ,
    [ST_LAST_LE] = SQL_BLOCKS_LAST_LE,
    [ST_DELETE_UPTO] = SQL_BLOCKS_DELETE_UPTO,
    [ST_PAGE_COUNT] = SQL_PAGE_COUNT,
    [ST_FREELIST_COUNT] = SQL_FREELIST_COUNT,
    [ST_VACUUM_STEP] = SQL_INCREMENTAL_VACUUM_STEP,
    [ST_META_GET] = SQL_META_GET,
    [ST_META_PUT] = SQL_META_PUT,
    [ST_UPLINK_PUT] = SQL_UPLINK_PUT,
    [ST_STR_INSERT] = SQL_STRINGS_INSERT,
    [ST_STR_CLEAR] = SQL_STRINGS_CLEAR,
};

/* Columns of SQL_BLOCKS_READ. */
enum { RC_LAST, RC_FIRST, RC_DATA };

struct store_uplink {
    char *name;
    struct ackset acks;      /* in memory, ahead of the db */
    int64_t acked_db;        /* cursor as written in the current transaction */
    int64_t acked_c;         /* cursor as last committed */
};

struct tern_store {
    /* Fixed at open. */
    char *path;
    char *vfs;
    uint32_t commit_every;
    uint32_t commit_ms;
    enum tern_store_sync sync;
    uint64_t max_bytes;
    int64_t max_age_ms;
    enum tern_store_overflow overflow;
    struct store_uplink *up;
    size_t n_up;

    /* The connection (replaced when a corrupt file is moved aside). */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int64_t page_size;
    int64_t wal_pages;       /* checkpoint threshold (the WAL budget) */
    int64_t row_bytes;       /* live bytes per queued reading, last measured */
    uint64_t data_budget;    /* bytes of live pages the main file may hold */
    uint64_t epoch;

    /* Queue state; the *_c twin is the last committed value. */
    int64_t last_seq;        /* highest seq assigned (maybe uncommitted) */
    int64_t durable_seq;     /* highest committed seq */
    int64_t hwm_db, hwm_c;   /* meta seq_hwm */
    /* Seqs are consecutive in the file, so counts are seq differences. */
    int64_t deleted_upto, deleted_upto_c; /* all blocks <= this are gone */
    int64_t dropped_upto, dropped_upto_c; /* highest seq dropped by cap/age */
    struct block_enc blk;    /* readings appended since the last block row */
    struct strdict *dict;    /* mirror of the strings table */
    int dict_off;            /* mirror could not be reloaded: store inline */
    int dangling_logged;

    /* Open transaction. */
    int in_txn;
    uint32_t pending;        /* readings appended in it */
    uint64_t txn_deleted;    /* readings deleted in it */
    int64_t txn_start_ms;

    uint32_t since_cap_check;
    int64_t last_reclaim_ms; /* tick time of the last reclaim step */
    int full;                /* over the cap (drop-newest refuses) */
    int overflow_logged;
    int64_t overflow_log_ms; /* last "cap reached" warning (rate limit) */
    int write_failing;       /* a write error episode is in progress */
    int corrupt;             /* corruption seen at run time: recover in tick */

    /* Counters (since open). */
    uint64_t appended;
    uint64_t commits;
    uint64_t corrupt_moved;
    uint64_t dropped[TERN_DROP_REASON_COUNT];
    uint64_t dropped_c[TERN_DROP_REASON_COUNT]; /* at BEGIN, for rollback */
    int64_t io_base;         /* /proc/self/io write_bytes at open, -1 unknown */
};

/* ---------------------------------------------------------------- helpers */

static int is_corrupt_rc(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

static void set_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (!err || !errcap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

/* write_bytes from /proc/self/io: bytes this process caused to be sent to
 * the storage layer. -1 when the file is not there (some containers). */
static int64_t proc_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "re");
    if (!f)
        return -1;
    char line[128];
    int64_t v = -1;
    while (fgets(line, sizeof line, f)) {
        long long x;
        if (sscanf(line, "write_bytes: %lld", &x) == 1) {
            v = x;
            break;
        }
    }
    fclose(f);
    return v;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Steps a statement that returns no rows, then resets it. Returns the
 * SQLite code (SQLITE_DONE on success). */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) /* pragmas such as incremental_vacuum */
        rc = sqlite3_step(st);
    int rc2 = sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_DONE : (rc2 != SQLITE_OK ? rc2 : rc);
}

/* First column of the first row as an integer; *v untouched on no row. */
static int step_int(sqlite3_stmt *st, int64_t *v)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    int rc2 = sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_DONE : (rc2 != SQLITE_OK ? rc2 : rc);
}

/* One-off query on db returning one integer (set-up only). */
static int query_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = step_int(st, v);
    sqlite3_finalize(st);
    return rc;
}

/* The effective ack cursor of uplink u: dropped readings count as acked. */
static int64_t cursor_of(const tern_store *s, const struct store_uplink *u)
{
    return u->acks.cursor > s->dropped_upto ? u->acks.cursor : s->dropped_upto;
}

static int64_t min_cursor(const tern_store *s)
{
    int64_t m = INT64_MAX;
    for (size_t i = 0; i < s->n_up; i++) {
        int64_t c = cursor_of(s, &s->up[i]);
        if (c < m)
            m = c;
    }
    return m;
}

/* The highest seq no uplink still owes: every reading at or below it is
 * acknowledged by all, dropped, or deleted. */
static int64_t owed_after(const tern_store *s)
{
    int64_t m = min_cursor(s);
    return m > s->deleted_upto ? m : s->deleted_upto;
}

/* Readings stored and not yet acknowledged by every uplink (nor dropped).
 * Acknowledged readings may still sit in a partly acknowledged block; they
 * are not counted. */
static uint64_t queued_now(const tern_store *s)
{
    int64_t lo = owed_after(s);
    return s->last_seq > lo ? (uint64_t)(s->last_seq - lo) : 0;
}

/* ------------------------------------------------------ string table */

/* (Re)loads the in-memory mirror from the strings table. On failure the
 * mirror is switched off (strings are stored inline, reads of ids fail)
 * until a later tick manages to load it. */
static int dict_load(tern_store *s)
{
    sqlite3_stmt *st = NULL;
    strdict_clear(s->dict);
    int rc = sqlite3_prepare_v2(s->db, SQL_STRINGS_LOAD, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *t = (const char *)sqlite3_column_text(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (!t || strdict_put(s->dict, (uint32_t)id, t, len) != 0) {
            rc = t ? SQLITE_NOMEM : SQLITE_CORRUPT;
            break;
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        strdict_clear(s->dict);
        if (!s->dict_off)
            TERN_ERROR("storage: cannot load the string table: %s", sqlite3_errstr(rc));
        s->dict_off = 1;
        return rc;
    }
    s->dict_off = 0;
    return SQLITE_DONE;
}

/* --------------------------------------------------------- transactions */

/* A write failed with rc: roll back, put memory back to the last committed
 * state and count the readings of the lost transaction. Always returns -1. */
static int write_failed(tern_store *s, int rc, const char *what)
{
    uint64_t lost = s->pending;
    if (!sqlite3_get_autocommit(s->db))
        step_done(s->st[ST_ROLLBACK]);
    s->last_seq = s->durable_seq;
    s->hwm_db = s->hwm_c;
    s->deleted_upto = s->deleted_upto_c;
    s->dropped_upto = s->dropped_upto_c;
    block_enc_reset(&s->blk);
    for (size_t i = 0; i < s->n_up; i++)
        s->up[i].acked_db = s->up[i].acked_c;
    /* Strings added (or the table cleared) by the lost transaction. */
    dict_load(s);
    /* Drops made by the rolled-back transaction did not happen after all. */
    s->dropped[TERN_DROP_OVERFLOW_OLDEST] = s->dropped_c[TERN_DROP_OVERFLOW_OLDEST];
    s->dropped[TERN_DROP_AGE] = s->dropped_c[TERN_DROP_AGE];
    s->dropped[TERN_DROP_DISK_FULL] += lost;
    s->in_txn = 0;
    s->pending = 0;
    s->txn_deleted = 0;
    s->full = 0;
    s->since_cap_check = CAP_CHECK_EVERY;
    if (is_corrupt_rc(rc))
        s->corrupt = 1;
    if (!s->write_failing) {
        TERN_ERROR("storage: %s failed on %s: %s; %" PRIu64
                   " unsaved readings lost, retrying with the next append",
                   what, s->path, sqlite3_errstr(rc), lost);
        s->write_failing = 1;
    } else {
        TERN_DEBUG("storage: %s still failing: %s (%" PRIu64 " lost)", what,
                   sqlite3_errstr(rc), lost);
    }
    return -1;
}

static int ensure_txn(tern_store *s)
{
    if (s->in_txn)
        return 0;
    int rc = step_done(s->st[ST_BEGIN]);
    if (rc != SQLITE_DONE)
        return write_failed(s, rc, "begin");
    s->in_txn = 1;
    s->txn_start_ms = tern_mono_ms();
    memcpy(s->dropped_c, s->dropped, sizeof s->dropped);
    return 0;
}

/* Runs a prepared write inside the transaction; -1 after write_failed. */
static int run_write(tern_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = step_done(st);
    if (rc != SQLITE_DONE)
        return write_failed(s, rc, what);
    return 0;
}

static int meta_put_int(tern_store *s, const char *key, int64_t v)
{
    sqlite3_stmt *st = s->st[ST_META_PUT];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return run_write(s, st, "meta update");
}

/* Inserts block b with st (SQL_BLOCKS_INSERT) and empties it; returns the
 * SQLite code (SQLITE_DONE on success). */
static int insert_block(sqlite3_stmt *st, struct block_enc *b)
{
    sqlite3_bind_int64(st, 1, b->first_seq + b->n - 1);
    sqlite3_bind_int64(st, 2, b->first_seq);
    sqlite3_bind_blob(st, 3, b->buf, (int)b->len, SQLITE_STATIC);
    int rc = step_done(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        block_enc_reset(b);
    return rc;
}

/* Writes the block being filled as one row of the open transaction. */
static int flush_block(tern_store *s)
{
    if (s->blk.n == 0)
        return 0;
    if (ensure_txn(s) < 0)
        return -1;
    int rc = insert_block(s->st[ST_INSERT], &s->blk);
    return rc == SQLITE_DONE ? 0 : write_failed(s, rc, "append");
}

/* Deletes the blocks wholly at or below what every uplink acknowledged (or
 * was dropped), at most one chunk of seqs: each deleted row rewrites its
 * page into the WAL, so a large backlog acked at once is deleted over
 * several bounded transactions, not one huge one. Returns 1 when blocks
 * were deleted, 0 when there was nothing to delete, -1 on error. */
static int delete_acked(tern_store *s)
{
    int64_t m = min_cursor(s);
    if (m <= s->deleted_upto)
        return 0;
    int64_t chunk = (int64_t)s->commit_every * DELETE_COMMIT_FACTOR;
    /* ...and no more rows than half the WAL budget holds, for small caps. */
    int64_t fit = s->wal_pages / 2 * s->page_size / (s->row_bytes > 0 ? s->row_bytes : 100);
    if (chunk > fit)
        chunk = fit > (int64_t)s->commit_every ? fit : (int64_t)s->commit_every;
    if (m - s->deleted_upto > chunk)
        m = s->deleted_upto + chunk;
    /* A block is deleted only once all of it is acknowledged. */
    int64_t upto = 0;
    sqlite3_stmt *st = s->st[ST_LAST_LE];
    sqlite3_bind_int64(st, 1, m);
    int rc = step_int(st, &upto);
    if (rc != SQLITE_DONE)
        return write_failed(s, rc, "delete");
    if (upto <= s->deleted_upto)
        return 0;
    if (ensure_txn(s) < 0)
        return -1;
    st = s->st[ST_DELETE_UPTO];
    sqlite3_bind_int64(st, 1, upto);
    if (run_write(s, st, "delete") < 0)
        return -1;
    s->txn_deleted += (uint64_t)(upto - s->deleted_upto);
    s->deleted_upto = upto;
    s->full = 0; /* room again: drop-newest re-checks */
    return 1;
}

/* Drops the readings <= upto that some uplink has not acknowledged, for a
 * reason (the cap, their age): counts them under reason and moves the drop
 * mark, which every uplink's cursor follows (and which is written with the
 * cursors at commit), then deletes the blocks that became wholly dropped.
 * 0, or -1 when the delete failed. */
static int drop_upto(tern_store *s, int64_t upto, enum tern_drop_reason reason)
{
    int64_t from = owed_after(s);
    if (upto > s->last_seq)
        upto = s->last_seq;
    if (upto <= from)
        return 0;
    if (ensure_txn(s) < 0)
        return -1;
    s->dropped[reason] += (uint64_t)(upto - from);
    s->dropped_upto = upto;
    return delete_acked(s) < 0 ? -1 : 0;
}

/* Commits the open transaction, first adding to it what acks changed (the
 * deletion of what every uplink acknowledged, the cursors) even when no
 * transaction was open yet. Deletes one chunk; commit_all() does them all. */
static int commit(tern_store *s)
{
    if (flush_block(s) < 0 || delete_acked(s) < 0)
        return -1;
    for (size_t i = 0; i < s->n_up; i++) {
        struct store_uplink *u = &s->up[i];
        int64_t c = cursor_of(s, u);
        if (c == u->acked_db)
            continue;
        if (ensure_txn(s) < 0)
            return -1;
        sqlite3_stmt *st = s->st[ST_UPLINK_PUT];
        sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, c);
        if (run_write(s, st, "cursor update") < 0)
            return -1;
        u->acked_db = c;
    }
    if (!s->in_txn)
        return 0;
    /* An empty file refers to no string: reset a dictionary past half full
     * so strings no longer used (changed tags, renamed sensors) go away. */
    if (s->deleted_upto == s->last_seq && !s->dict_off &&
        (strdict_count(s->dict) > STRDICT_MAX_ENTRIES / 2 ||
         strdict_bytes(s->dict) > STRDICT_MAX_BYTES / 2)) {
        if (run_write(s, s->st[ST_STR_CLEAR], "string table reset") < 0)
            return -1;
        strdict_clear(s->dict);
    }
    if (s->last_seq > s->hwm_db) {
        if (meta_put_int(s, META_SEQ_HWM, s->last_seq) < 0)
            return -1;
        s->hwm_db = s->last_seq;
    }
    int rc = step_done(s->st[ST_COMMIT]);
    if (rc != SQLITE_DONE)
        return write_failed(s, rc, "commit");
    s->in_txn = 0;
    s->pending = 0;
    s->txn_deleted = 0;
    s->durable_seq = s->last_seq;
    s->hwm_c = s->hwm_db;
    s->deleted_upto_c = s->deleted_upto;
    s->dropped_upto_c = s->dropped_upto;
    for (size_t i = 0; i < s->n_up; i++) {
        s->up[i].acked_c = s->up[i].acked_db;
        /* Dropped readings are now gone for good: fold them into the sets. */
        ackset_raise(&s->up[i].acks, s->dropped_upto);
    }
    s->commits++;
    if (s->write_failing) {
        TERN_INFO("storage: writes to %s work again", s->path);
        s->write_failing = 0;
    }
    return 0;
}

static int commit_all(tern_store *s)
{
    int64_t before;
    do {
        before = s->deleted_upto;
        if (commit(s) < 0)
            return -1;
    } while (s->deleted_upto != before);
    return 0;
}

/* ---------------------------------------------------- walking readings */

/* A walk over the stored readings with seq > after, in seq order, block by
 * block. The walk holds ST_READ until walk_end. Each block is decoded once,
 * whole, into items (~9 KiB, on the caller's stack): checked before any of
 * it is handed out, then served from the array. (Checking, then decoding
 * again as the readings were handed out, cost ~270 instructions per reading
 * in bench agent-kafka.) */
struct walk {
    tern_store *s;
    sqlite3_stmt *st;
    int64_t after;     /* readings <= after are skipped (may be raised) */
    int64_t first, last; /* the current block */
    size_t pos, count; /* next item to hand out, items decoded */
    int rc;            /* SQLite error, or SQLITE_OK */
    struct block_item items[BLOCK_MAX_READINGS]; /* the current block, decoded */
};

static void walk_start(struct walk *w, tern_store *s, int64_t after)
{
    w->s = s;
    w->st = s->st[ST_READ];
    w->after = after;
    w->first = w->last = 0;
    w->pos = w->count = 0;
    w->rc = SQLITE_OK;
    sqlite3_bind_int64(w->st, 1, after);
}

/* 1 with *seq and *it set (*it and its text fields point into the walk and
 * the current block, valid until the next call), 0 at the end, -1 on a SQLite
 * error (w->rc), -2 on a malformed block (w->first..w->last; the walk goes on
 * after it). */
static int walk_next(struct walk *w, int64_t *seq, const struct block_item **it)
{
    for (;;) {
        while (w->pos < w->count) {
            size_t i = w->pos++;
            if (w->first + (int64_t)i <= w->after)
                continue;
            *seq = w->first + (int64_t)i;
            *it = &w->items[i];
            return 1;
        }
        int rc = sqlite3_step(w->st);
        if (rc == SQLITE_DONE)
            return 0;
        if (rc != SQLITE_ROW) {
            w->rc = rc;
            return -1;
        }
        w->pos = w->count = 0;
        w->last = sqlite3_column_int64(w->st, RC_LAST);
        w->first = sqlite3_column_int64(w->st, RC_FIRST);
        const void *blob = sqlite3_column_blob(w->st, RC_DATA);
        int len = sqlite3_column_bytes(w->st, RC_DATA);
        if (w->last <= w->after)
            continue; /* wholly skipped: not even decoded */
        if (w->first < 1 || w->first > w->last ||
            w->last - w->first >= (int64_t)BLOCK_MAX_READINGS || !blob)
            return -2;
        uint64_t n = (uint64_t)(w->last - w->first + 1);
        if (block_decode(blob, (size_t)len, w->items, n) != 0)
            return -2; /* bad encoding, or not the count of seqs it claims */
        w->count = (size_t)n;
    }
}

/* Ends the walk; returns its SQLite error (marking run-time corruption) or
 * SQLITE_OK. */
static int walk_end(struct walk *w)
{
    int rc2 = sqlite3_reset(w->st);
    int rc = w->rc != SQLITE_OK ? w->rc : SQLITE_OK;
    if (rc != SQLITE_OK && (is_corrupt_rc(rc) || is_corrupt_rc(rc2)))
        w->s->corrupt = 1;
    return rc;
}

/* A block that cannot be decoded (the file passed SQLite's checks, so the
 * damage is inside the blob: a bit flip, a bug): its readings are lost.
 * They are counted and marked delivered for every uplink so the queue
 * moves on past them instead of failing on them forever. */
static void bad_block(tern_store *s, int64_t first, int64_t last)
{
    if (first < 1 || last < first || last > s->last_seq) {
        s->corrupt = 1; /* nonsense seqs: SQLite's checks missed something */
        return;
    }
    TERN_ERROR("storage: %s: block of seqs %" PRId64 "..%" PRId64
               " is damaged and cannot be read; its %" PRId64 " readings are lost",
               s->path, first, last, last - first + 1);
    s->dropped[TERN_DROP_CORRUPT] += (uint64_t)(last - first + 1);
    for (size_t i = 0; i < s->n_up; i++)
        ackset_add(&s->up[i].acks, first, last);
}

/* --------------------------------------------------------------- limits */

static int live_bytes(tern_store *s, uint64_t *out)
{
    int64_t pages = 0, freep = 0;
    int rc = step_int(s->st[ST_PAGE_COUNT], &pages);
    if (rc == SQLITE_DONE)
        rc = step_int(s->st[ST_FREELIST_COUNT], &freep);
    if (rc != SQLITE_DONE) {
        if (is_corrupt_rc(rc))
            s->corrupt = 1;
        return -1;
    }
    *out = (uint64_t)(pages - freep) * (uint64_t)s->page_size;
    return 0;
}

/* Keeps the live data under data_budget: drop-oldest drops the oldest
 * readings (down to 15/16 of the budget, so it does not run on every
 * check); drop-newest marks the store full so appends are refused. */
static int enforce_cap(tern_store *s)
{
    s->since_cap_check = 0;
    uint64_t used;
    if (live_bytes(s, &used) < 0)
        return -1;
    uint64_t queued = queued_now(s);
    if (queued > 0)
        s->row_bytes = (int64_t)(used / queued) + 1;
    if (used <= s->data_budget) {
        s->full = 0;
        return 0;
    }
    int64_t now = tern_mono_ms();
    if (!s->overflow_logged || now - s->overflow_log_ms >= OVERFLOW_LOG_EVERY_MS) {
        s->overflow_log_ms = now;
        TERN_WARN("storage: %s reached its cap of %" PRIu64 " bytes: %s", s->path,
                  s->max_bytes,
                  s->overflow == TERN_OVERFLOW_DROP_NEWEST ? "refusing new readings"
                                                           : "dropping the oldest readings");
        s->overflow_logged = 1;
    }
    if (s->overflow == TERN_OVERFLOW_DROP_NEWEST || queued == 0) {
        s->full = 1;
        return 0;
    }
    uint64_t per_row = used / queued;
    if (per_row == 0)
        per_row = 1;
    uint64_t target = s->data_budget - s->data_budget / 16;
    uint64_t k = (used - target + per_row - 1) / per_row;
    if (k < 1)
        k = 1;
    if (k > queued)
        k = queued;
    /* Seqs are consecutive: the k oldest unacknowledged end at from + k. */
    return drop_upto(s, owed_after(s) + (int64_t)k, TERN_DROP_OVERFLOW_OLDEST);
}

/* Drops the oldest readings whose timestamp is past max_age_ms. Only a
 * prefix in seq order: readings flagged CLOCK_UNSYNCED carry no trustworthy
 * time and stop the scan (the cap still bounds them). */
static int enforce_age(tern_store *s)
{
    if (s->max_age_ms <= 0 || queued_now(s) == 0)
        return 0;
    int64_t cutoff = tern_utc_ms() - s->max_age_ms;
    int64_t upto = 0, seq = 0;
    const struct block_item *it;
    struct walk w;
    walk_start(&w, s, min_cursor(s));
    for (int i = 0; i < AGE_SCAN_ROWS; i++) {
        if (walk_next(&w, &seq, &it) != 1 || (it->flags & TERN_READING_CLOCK_UNSYNCED) ||
            it->ts_ms >= cutoff)
            break;
        upto = seq;
    }
    if (walk_end(&w) != SQLITE_OK)
        return -1;
    if (upto == 0)
        return 0;
    return drop_upto(s, upto, TERN_DROP_AGE);
}

/* Gives free pages back to the file system in bounded steps (only between
 * transactions: each step is its own small commit). */
static int reclaim_step(tern_store *s)
{
    int64_t pages = 0, freep = 0;
    if (step_int(s->st[ST_PAGE_COUNT], &pages) != SQLITE_DONE ||
        step_int(s->st[ST_FREELIST_COUNT], &freep) != SQLITE_DONE)
        return -1;
    if (freep < VACUUM_MIN_FREE_PAGES || freep * 4 < pages)
        return 0;
    int rc = step_done(s->st[ST_VACUUM_STEP]);
    if (rc != SQLITE_DONE)
        return write_failed(s, rc, "incremental vacuum");
    /* The main file only shrinks when the WAL is copied back into it; once
     * the free space is gone, also cut the WAL itself back to nothing. */
    freep -= STORE_VACUUM_STEP_PAGES;
    int done = freep < VACUUM_MIN_FREE_PAGES || freep * 4 < pages;
    rc = sqlite3_wal_checkpoint_v2(s->db, NULL,
                                   done ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
                                   NULL, NULL);
    if (rc != SQLITE_OK)
        TERN_DEBUG("storage: checkpoint after reclaim: %s", sqlite3_errstr(rc));
    return 0;
}

/* ------------------------------------------------------ open and attach */

static void detach(tern_store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
    s->in_txn = 0;
    s->pending = 0;
    s->txn_deleted = 0;
}

static uint64_t new_epoch(void)
{
    uint64_t e = 0;
    while (e == 0) {
        ssize_t n = getrandom(&e, sizeof e, 0);
        if (n != (ssize_t)sizeof e) {
            /* getrandom cannot fail for 8 bytes once the pool is ready; this
             * fallback only keeps a freshly booted board from blocking. */
            e = (uint64_t)tern_utc_ms() ^ ((uint64_t)getpid() << 40) ^ (uint64_t)tern_mono_ms();
        }
    }
    return e;
}

static int create_schema(tern_store *s, char *err, size_t errcap)
{
    sqlite3_stmt *put = NULL;
    int rc = sqlite3_exec(s->db, SQL_BEGIN, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, SQL_CREATE_SCHEMA, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, SQL_META_PUT, -1, &put, NULL);
    s->epoch = new_epoch();
    const struct {
        const char *key;
        int64_t v;
    } rows[] = {
        {META_EPOCH, (int64_t)s->epoch},
        {META_SCHEMA_VERSION, TERN_STORE_SCHEMA_VERSION},
        {META_SEQ_HWM, 0},
        {META_CREATED_MS, tern_utc_ms()},
    };
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof rows / sizeof rows[0]; i++) {
        sqlite3_bind_text(put, 1, rows[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(put, 2, rows[i].v);
        rc = step_done(put);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(put);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, SQL_COMMIT, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errcap, "creating the schema in %s: %s", s->path, sqlite3_errstr(rc));
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, SQL_ROLLBACK, NULL, NULL, NULL);
        return rc;
    }
    TERN_INFO("storage: created %s, epoch %016" PRIx64, s->path, s->epoch);
    return SQLITE_OK;
}

static int meta_get_int(tern_store *s, const char *key, int64_t *v, int *found)
{
    sqlite3_stmt *st = s->st[ST_META_GET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER;
    if (*found)
        *v = sqlite3_column_int64(st, 0);
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    int rc2 = sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_DONE : (rc2 != SQLITE_OK ? rc2 : rc);
}

/* Matches the uplinks table to the configured uplinks: unknown names are
 * forgotten, new ones start at the oldest queued reading. */
static int reconcile_uplinks(tern_store *s, int64_t oldest_seq)
{
    sqlite3_stmt *list = NULL, *del = NULL;
    char **forget = NULL;
    size_t n_forget = 0;
    /* A new uplink starts at the oldest reading some uplink still owes:
     * what all of them acknowledged may linger in a partly acknowledged
     * block, and is not sent again. */
    int64_t owed = INT64_MAX;
    for (size_t i = 0; i < s->n_up; i++)
        s->up[i].acked_c = -1;
    int rc = sqlite3_prepare_v2(s->db, SQL_UPLINKS_LIST, -1, &list, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(list)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(list, 0);
        int64_t acked = sqlite3_column_int64(list, 1);
        if (acked < owed)
            owed = acked;
        size_t i = 0;
        while (i < s->n_up && (!name || strcmp(s->up[i].name, name) != 0))
            i++;
        if (i < s->n_up) {
            s->up[i].acked_c = acked;
            rc = SQLITE_OK;
            continue;
        }
        char **nf = tern_realloc(forget, (n_forget + 1) * sizeof *nf);
        if (!nf) {
            rc = SQLITE_NOMEM;
            break;
        }
        forget = nf;
        forget[n_forget] = tern_strdup(name ? name : "");
        if (!forget[n_forget]) {
            rc = SQLITE_NOMEM;
            break;
        }
        n_forget++;
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(list);
    list = NULL;
    int64_t start = oldest_seq > 0 ? oldest_seq - 1 : s->last_seq;
    if (oldest_seq > 0 && owed != INT64_MAX && owed > start)
        start = owed < s->last_seq ? owed : s->last_seq;
    if (rc == SQLITE_OK && n_forget > 0)
        rc = sqlite3_prepare_v2(s->db, SQL_UPLINK_DELETE, -1, &del, NULL);
    int began = 0;
    for (size_t i = 0; rc == SQLITE_OK && i < n_forget; i++) {
        if (!began) {
            rc = sqlite3_exec(s->db, SQL_BEGIN, NULL, NULL, NULL);
            began = rc == SQLITE_OK;
            if (!began)
                break;
        }
        TERN_INFO("storage: forgetting uplink '%s' (no longer configured)", forget[i]);
        sqlite3_bind_text(del, 1, forget[i], -1, SQLITE_STATIC);
        rc = step_done(del);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    for (size_t i = 0; rc == SQLITE_OK && i < s->n_up; i++) {
        struct store_uplink *u = &s->up[i];
        if (u->acked_c >= 0)
            continue;
        if (!began) {
            rc = sqlite3_exec(s->db, SQL_BEGIN, NULL, NULL, NULL);
            began = rc == SQLITE_OK;
            if (!began)
                break;
        }
        TERN_INFO("storage: new uplink '%s' starts after seq %" PRId64, u->name, start);
        sqlite3_stmt *put = s->st[ST_UPLINK_PUT];
        sqlite3_bind_text(put, 1, u->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(put, 2, start);
        rc = step_done(put);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        u->acked_c = start;
    }
    if (began)
        rc = rc == SQLITE_OK ? sqlite3_exec(s->db, SQL_COMMIT, NULL, NULL, NULL) : rc;
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, SQL_ROLLBACK, NULL, NULL, NULL);
    sqlite3_finalize(del);
    for (size_t i = 0; i < n_forget; i++)
        tern_free(forget[i]);
    tern_free(forget);
    for (size_t i = 0; i < s->n_up; i++) {
        struct store_uplink *u = &s->up[i];
        u->acked_db = u->acked_c;
        ackset_free(&u->acks);
        ackset_init(&u->acks, u->acked_c);
    }
    return rc;
}

/* Converts a version 1 file (one row per reading) to blocks, in place and
 * crash-safe: each step moves the oldest rows into blocks and deletes them
 * in one transaction, so an interrupted conversion simply goes on at the
 * next open. Seqs, epoch, cursors and string ids are kept as they are.
 * Returns SQLITE_OK or the SQLite error. */
static int migrate_v1(tern_store *s)
{
    sqlite3_stmt *rd = NULL, *del = NULL, *ins = NULL, *put = NULL;
    int64_t total = 0;
    TERN_INFO("storage: %s: converting the queue to schema version %d", s->path,
              TERN_STORE_SCHEMA_VERSION);
    int rc = sqlite3_exec(s->db, SQL_CREATE_BLOCKS, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, SQL_V1_READ, -1, &rd, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, SQL_V1_DELETE_UPTO, -1, &del, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, SQL_BLOCKS_INSERT, -1, &ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, SQL_META_PUT, -1, &put, NULL);
    struct block_enc *b = &s->blk;
    while (rc == SQLITE_OK) {
        rc = sqlite3_exec(s->db, SQL_BEGIN, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            break;
        block_enc_reset(b);
        int64_t upto = 0, moved = 0;
        sqlite3_bind_int64(rd, 1, 65536);
        while (rc == SQLITE_OK && (rc = sqlite3_step(rd)) == SQLITE_ROW) {
            rc = SQLITE_OK;
            int64_t seq = sqlite3_column_int64(rd, 0);
            /* Cols 2-5 and 7: device, sensor, metric, unit, tags. */
            static const int col[BLOCK_NSTR] = {2, 3, 4, 5, 7};
            struct block_item it = {.ts_ms = sqlite3_column_int64(rd, 1),
                                    .value = sqlite3_column_double(rd, 6),
                                    .flags = (uint32_t)sqlite3_column_int64(rd, 8)};
            for (int f = 0; f < BLOCK_NSTR; f++) {
                struct block_str *x = &it.str[f];
                int64_t id = sqlite3_column_int64(rd, col[f]);
                if (sqlite3_column_type(rd, col[f]) == SQLITE_INTEGER && id >= 1 &&
                    id <= UINT32_MAX) {
                    x->id = (uint32_t)id;
                } else {
                    x->text = (const char *)sqlite3_column_text(rd, col[f]);
                    x->len = x->text ? (size_t)sqlite3_column_bytes(rd, col[f]) : 0;
                }
            }
            if (b->n > 0 && (block_enc_full(b) || seq != b->first_seq + b->n)) {
                rc = insert_block(ins, b);
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
            }
            block_enc_put(b, seq, &it);
            upto = seq;
            moved++;
        }
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_reset(rd);
        if (rc == SQLITE_OK && b->n > 0) {
            rc = insert_block(ins, b);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        block_enc_reset(b);
        int last = rc == SQLITE_OK && moved == 0;
        if (rc == SQLITE_OK && moved > 0) {
            sqlite3_bind_int64(del, 1, upto);
            rc = step_done(del);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        if (last) {
            rc = sqlite3_exec(s->db, SQL_V1_DROP, NULL, NULL, NULL);
            sqlite3_bind_text(put, 1, META_SCHEMA_VERSION, -1, SQLITE_STATIC);
            sqlite3_bind_int64(put, 2, TERN_STORE_SCHEMA_VERSION);
            if (rc == SQLITE_OK) {
                rc = step_done(put);
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
            }
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, SQL_COMMIT, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, SQL_ROLLBACK, NULL, NULL, NULL);
            break;
        }
        total += moved;
        if (last)
            break;
    }
    sqlite3_finalize(rd);
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    sqlite3_finalize(put);
    if (rc == SQLITE_OK)
        TERN_INFO("storage: %s: converted, %" PRId64 " queued readings kept", s->path, total);
    return rc;
}

/* Opens the connection and loads the queue state. Returns 0, or -1 with err
 * filled and the connection closed; *corrupt says whether the file itself
 * is bad (so moving it aside and starting afresh is the cure). */
static int attach(tern_store *s, int *corrupt, char *err, size_t errcap)
{
    *corrupt = 0;
    int rc = sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             s->vfs);
    const char *step = "open";
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 0); /* exclusive owner: busy means a second agent */

    step = "setting pragmas";
    const char *const pre[] = {SQL_LOCKING_EXCLUSIVE, SQL_PAGE_SIZE, SQL_AUTO_VACUUM};
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof pre / sizeof pre[0]; i++)
        rc = sqlite3_exec(s->db, pre[i], NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;

    /* The first statement that reads the file: "not a database" shows here. */
    step = "switching to WAL";
    sqlite3_stmt *jm = NULL;
    rc = sqlite3_prepare_v2(s->db, SQL_JOURNAL_WAL, -1, &jm, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(jm);
        if (rc == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(jm, 0);
            rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
        }
        int rc2 = sqlite3_finalize(jm);
        if (rc == SQLITE_OK || rc == SQLITE_DONE)
            rc = rc2;
    }
    if (rc != SQLITE_OK)
        goto fail;

    step = "setting pragmas";
    const char *sync_sql = s->sync == TERN_SYNC_FULL     ? SQL_SYNC_FULL
                           : s->sync == TERN_SYNC_NORMAL ? SQL_SYNC_NORMAL
                                                         : SQL_SYNC_OFF;
    const char *const post[] = {sync_sql, SQL_CACHE_SIZE, SQL_TEMP_STORE};
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof post / sizeof post[0]; i++)
        rc = sqlite3_exec(s->db, post[i], NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = query_int(s->db, "PRAGMA page_size", &s->page_size);
    if (rc != SQLITE_DONE)
        goto fail;
    if (s->page_size <= 0)
        s->page_size = 4096;
    /* WAL budget: an eighth of the cap, 16..1000 pages; checkpoints run when
     * the WAL reaches it, so the WAL never holds much more than that plus
     * one transaction. The rest of the cap is for live data pages. */
    int64_t wal_pages = (int64_t)(s->max_bytes / 8 / (uint64_t)s->page_size);
    if (wal_pages < 16)
        wal_pages = 16;
    if (wal_pages > 1000)
        wal_pages = 1000;
    s->data_budget = s->max_bytes - (uint64_t)wal_pages * (uint64_t)s->page_size;
    s->wal_pages = wal_pages;
    sqlite3_wal_autocheckpoint(s->db, (int)wal_pages);
    char jsl[80];
    snprintf(jsl, sizeof jsl, SQL_JOURNAL_SIZE_LIMIT_FMT,
             (long long)(2 * wal_pages * s->page_size));
    rc = sqlite3_exec(s->db, jsl, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;

    step = "reading the schema";
    int64_t ours = 0, tables = 0, has_blocks = 0, has_v1 = 0;
    rc = query_int(s->db, SQL_COUNT_OUR_TABLES, &ours);
    if (rc == SQLITE_DONE)
        rc = query_int(s->db, SQL_COUNT_TABLES, &tables);
    if (rc == SQLITE_DONE)
        rc = query_int(s->db, SQL_HAS_BLOCKS, &has_blocks);
    if (rc == SQLITE_DONE)
        rc = query_int(s->db, SQL_HAS_V1_TABLE, &has_v1);
    if (rc != SQLITE_DONE)
        goto fail;
    if (ours == 0 && tables == 0) {
        step = "creating the schema";
        rc = create_schema(s, err, errcap);
        if (rc != SQLITE_OK)
            goto fail;
    } else if (ours != SQL_OUR_TABLE_COUNT || (!has_blocks && !has_v1)) {
        set_err(err, errcap, "%s: not a Tern queue (unknown tables)", s->path);
        *corrupt = 1;
        goto fail_set;
    } else {
        step = "checking integrity";
        sqlite3_stmt *qc = NULL;
        rc = sqlite3_prepare_v2(s->db, SQL_QUICK_CHECK, -1, &qc, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(qc);
            if (rc == SQLITE_ROW) {
                const char *res = (const char *)sqlite3_column_text(qc, 0);
                if (!res || strcmp(res, "ok") != 0) {
                    set_err(err, errcap, "%s failed quick_check: %s", s->path,
                            res ? res : "?");
                    sqlite3_finalize(qc);
                    *corrupt = 1;
                    goto fail_set;
                }
                rc = SQLITE_OK;
            }
            sqlite3_finalize(qc);
        }
        if (rc != SQLITE_OK && rc != SQLITE_DONE)
            goto fail;
    }

    if (has_v1) {
        step = "converting from schema version 1";
        rc = migrate_v1(s);
        if (rc != SQLITE_OK)
            goto fail;
    }

    step = "preparing statements";
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                NULL);
        if (rc != SQLITE_OK)
            goto fail;
    }

    step = "loading the queue state";
    int64_t v = 0, version = 0, hwm = 0;
    int found = 0;
    rc = meta_get_int(s, META_SCHEMA_VERSION, &version, &found);
    if (rc != SQLITE_DONE)
        goto fail;
    if (!found || version != TERN_STORE_SCHEMA_VERSION) {
        /* Newer than this build (a downgrade), or no version at all. */
        set_err(err, errcap, "%s: missing or unsupported schema version", s->path);
        *corrupt = 1;
        goto fail_set;
    }
    rc = meta_get_int(s, META_EPOCH, &v, &found);
    if (rc != SQLITE_DONE)
        goto fail;
    if (!found || v == 0) {
        set_err(err, errcap, "%s: missing epoch", s->path);
        *corrupt = 1;
        goto fail_set;
    }
    s->epoch = (uint64_t)v;
    rc = meta_get_int(s, META_SEQ_HWM, &hwm, &found);
    if (rc != SQLITE_DONE)
        goto fail;

    /* Seqs are consecutive from the oldest block's first to the newest's
     * last (deletes and drops only ever remove a prefix). */
    sqlite3_stmt *sum = NULL;
    int64_t min_seq = 0, max_seq = 0;
    rc = sqlite3_prepare_v2(s->db, SQL_BLOCKS_SUMMARY, -1, &sum, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(sum)) == SQLITE_ROW) {
        min_seq = sqlite3_column_int64(sum, 0);
        max_seq = sqlite3_column_int64(sum, 1);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(sum);
    if (rc != SQLITE_OK)
        goto fail;
    s->last_seq = hwm > max_seq ? hwm : max_seq;
    s->durable_seq = s->last_seq;
    s->hwm_db = s->hwm_c = hwm;
    s->deleted_upto = s->deleted_upto_c = min_seq > 0 ? min_seq - 1 : s->last_seq;
    s->dropped_upto = s->dropped_upto_c = 0;
    block_enc_reset(&s->blk);
    rc = dict_load(s);
    if (rc != SQLITE_DONE)
        goto fail;

    step = "reconciling uplinks";
    rc = reconcile_uplinks(s, min_seq);
    if (rc != SQLITE_OK)
        goto fail;
    s->since_cap_check = CAP_CHECK_EVERY;
    s->full = 0;
    return 0;

fail:
    *corrupt = is_corrupt_rc(rc);
    set_err(err, errcap, "%s: %s", step, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
fail_set:
    detach(s);
    return -1;
}

/* Renames path (and its WAL) to "<path>.corrupt-<UTC time>[-n]" so the
 * evidence is kept for a human. Returns 0 or -1 (errno). */
static int move_aside(const char *path, char *dst, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int n = 0; n < 100; n++) {
        if (n == 0)
            snprintf(dst, cap, "%s.corrupt-%s", path, stamp);
        else
            snprintf(dst, cap, "%s.corrupt-%s-%d", path, stamp, n);
        if (access(dst, F_OK) == 0)
            continue;
        if (rename(path, dst) != 0)
            return -1;
        char from[4200], to[4300];
        snprintf(from, sizeof from, "%s-wal", path);
        snprintf(to, sizeof to, "%s-wal", dst);
        if (rename(from, to) != 0 && errno != ENOENT)
            TERN_WARN("storage: could not move %s aside: %s", from, strerror(errno));
        snprintf(from, sizeof from, "%s-shm", path);
        unlink(from);
        return 0;
    }
    errno = EEXIST;
    return -1;
}

/* Best effort count of the readings in a file about to be moved aside. */
static uint64_t count_lost(const char *path, const char *vfs)
{
    sqlite3 *db = NULL;
    int64_t n = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, vfs) == SQLITE_OK) {
        int64_t v1 = 0;
        query_int(db, SQL_BLOCKS_COUNT, &n);
        if (query_int(db, SQL_V1_COUNT, &v1) == SQLITE_DONE && v1 > 0)
            n = (n > 0 ? n : 0) + v1;
    }
    sqlite3_close(db);
    return n > 0 ? (uint64_t)n : 0;
}

/* Moves the corrupt file aside and attaches to a fresh one (new epoch). */
static int replace_corrupt(tern_store *s, const char *why, char *err, size_t errcap)
{
    char dst[4200];
    uint64_t lost = count_lost(s->path, s->vfs);
    if (move_aside(s->path, dst, sizeof dst) != 0) {
        set_err(err, errcap, "moving corrupt %s aside: %s", s->path, strerror(errno));
        TERN_ERROR("storage: %s is corrupt (%s) and could not be moved aside: %s", s->path,
                   why, strerror(errno));
        return -1;
    }
    TERN_ERROR("storage: %s is corrupt (%s): moved aside to %s, starting a new epoch; "
               "its unsent readings are lost (%" PRIu64 " could be counted)",
               s->path, why, dst, lost);
    s->corrupt_moved++;
    s->dropped[TERN_DROP_CORRUPT] += lost;
    int corrupt = 0;
    return attach(s, &corrupt, err, errcap);
}

/* attach(), and when the file is corrupt, replace_corrupt(). */
static int attach_or_replace(tern_store *s, char *err, size_t errcap)
{
    int corrupt = 0;
    if (attach(s, &corrupt, err, errcap) == 0)
        return 0;
    if (!corrupt)
        return -1;
    char why[512];
    snprintf(why, sizeof why, "%s", err ? err : "corrupt");
    return replace_corrupt(s, why, err, errcap);
}

void tern_store_close(tern_store *s)
{
    if (!s)
        return;
    if (s->db)
        commit_all(s);
    detach(s);
    for (size_t i = 0; i < s->n_up; i++) {
        tern_free(s->up[i].name);
        ackset_free(&s->up[i].acks);
    }
    tern_free(s->up);
    strdict_free(s->dict);
    tern_free(s->path);
    tern_free(s->vfs);
    tern_free(s);
}

int tern_store_open(const struct tern_store_options *opt, tern_store **out, char *err,
                    size_t errcap)
{
    tern_store *s = NULL;
    if (out)
        *out = NULL;
    if (!opt || !out || !opt->path || !opt->path[0] || !opt->uplinks || opt->n_uplinks == 0) {
        set_err(err, errcap, "storage: need a path and at least one uplink");
        return -1;
    }
    for (size_t i = 0; i < opt->n_uplinks; i++) {
        if (!opt->uplinks[i] || !opt->uplinks[i][0]) {
            set_err(err, errcap, "storage: empty uplink name");
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(opt->uplinks[i], opt->uplinks[j]) == 0) {
                set_err(err, errcap, "storage: uplink '%s' listed twice", opt->uplinks[i]);
                return -1;
            }
    }
    s = tern_calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    s->path = tern_strdup(opt->path);
    s->vfs = opt->vfs ? tern_strdup(opt->vfs) : NULL;
    s->up = tern_calloc(opt->n_uplinks, sizeof *s->up);
    s->dict = strdict_new();
    if (!s->path || (opt->vfs && !s->vfs) || !s->up || !s->dict)
        goto nomem;
    s->n_up = opt->n_uplinks;
    for (size_t i = 0; i < s->n_up; i++) {
        s->up[i].name = tern_strdup(opt->uplinks[i]);
        if (!s->up[i].name)
            goto nomem;
    }
    s->commit_every = opt->commit_every ? opt->commit_every : TERN_STORE_DEFAULT_COMMIT_EVERY;
    s->commit_ms = opt->commit_ms ? opt->commit_ms : TERN_STORE_DEFAULT_COMMIT_MS;
    s->sync = opt->synchronous;
    s->max_bytes = opt->max_bytes ? opt->max_bytes : TERN_STORE_DEFAULT_MAX_BYTES;
    if (s->max_bytes < TERN_STORE_MIN_MAX_BYTES)
        s->max_bytes = TERN_STORE_MIN_MAX_BYTES;
    s->max_age_ms = opt->max_age_ms > 0 ? opt->max_age_ms : 0;
    s->overflow = opt->overflow;
    s->io_base = proc_write_bytes();
    s->last_reclaim_ms = INT64_MIN / 2;

    if (attach_or_replace(s, err, errcap) != 0)
        goto fail;
    *out = s;
    return 0;

nomem:
    set_err(err, errcap, "storage: out of memory");
fail:
    tern_store_close(s);
    return -1;
}

/* Sets one string field of a block item: the id of the text in the string
 * table (added to it inside the open transaction when new), or the text
 * itself when the table is full or off. Returns 0, or -1 after write_failed. */
static int intern_str(tern_store *s, struct block_str *out, const char *str, size_t cap)
{
    size_t len = strnlen(str, cap);
    out->id = 0;
    out->text = str;
    out->len = len;
    if (s->dict_off)
        return 0;
    uint32_t id = strdict_find(s->dict, str, len);
    if (id == 0) {
        id = strdict_next_id(s->dict, len);
        if (id == 0)
            return 0;
        sqlite3_stmt *ins = s->st[ST_STR_INSERT];
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_text(ins, 2, str, (int)len, SQLITE_STATIC);
        if (run_write(s, ins, "string table insert") < 0)
            return -1;
        if (strdict_put(s->dict, id, str, len) != 0) {
            /* Out of memory: the row exists but is not mirrored; reloading
             * later fixes that, inline text is right meanwhile. */
            s->dict_off = 1;
            return 0;
        }
    }
    out->id = id;
    return 0;
}

/* Run-time corruption (seen by a statement): move the file aside and go on
 * with a fresh epoch rather than failing forever or crash-looping. */
static int recover_corrupt(tern_store *s)
{
    char err[512] = "";
    int rc;
    if (s->db) {
        s->dropped[TERN_DROP_CORRUPT] += s->pending; /* uncommitted: gone too */
        detach(s);
        s->corrupt = 0;
        rc = replace_corrupt(s, "corruption detected while running", err, sizeof err);
    } else {
        /* An earlier recovery could not open a fresh file: try again. */
        rc = attach_or_replace(s, err, sizeof err);
    }
    if (rc != 0) {
        TERN_ERROR("storage: cannot recover from corruption: %s", err);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the API */

int tern_store_append(tern_store *s, struct tern_reading *r, size_t n)
{
    if (!s || (!r && n > 0))
        return -1;
    if (!s->db)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct tern_reading *x = &r[i];
        x->epoch = s->epoch;
        if (s->since_cap_check++ >= CAP_CHECK_EVERY)
            enforce_cap(s);
        if (s->full && s->overflow == TERN_OVERFLOW_DROP_NEWEST) {
            x->seq = 0;
            s->dropped[TERN_DROP_OVERFLOW_NEWEST]++;
            continue;
        }
        if (ensure_txn(s) < 0)
            goto lost;
        if (block_enc_full(&s->blk) && flush_block(s) < 0)
            goto lost;
        struct block_item it = {.ts_ms = x->ts_ms, .flags = x->flags, .value = x->value};
        if (intern_str(s, &it.str[BLOCK_DEVICE], x->device_id, sizeof x->device_id) < 0 ||
            intern_str(s, &it.str[BLOCK_SENSOR], x->sensor, sizeof x->sensor) < 0 ||
            intern_str(s, &it.str[BLOCK_METRIC], x->metric, sizeof x->metric) < 0 ||
            intern_str(s, &it.str[BLOCK_UNIT], x->unit, sizeof x->unit) < 0 ||
            intern_str(s, &it.str[BLOCK_TAGS], x->tags, sizeof x->tags) < 0)
            goto lost;
        int64_t seq = s->last_seq + 1;
        block_enc_put(&s->blk, seq, &it);
        x->seq = seq;
        s->last_seq = seq;
        s->pending++;
        s->appended++;
        if (s->pending >= s->commit_every && commit(s) < 0) {
            /* This call's readings up to here were counted by write_failed. */
            s->dropped[TERN_DROP_DISK_FULL] += n - i - 1;
            return -1;
        }
        continue;
    lost:
        /* The failed reading and the rest of the batch were not stored. */
        s->dropped[TERN_DROP_DISK_FULL] += n - i;
        for (size_t j = i; j < n; j++)
            r[j].seq = 0;
        return -1;
    }
    if (s->in_txn && tern_mono_ms() - s->txn_start_ms >= (int64_t)s->commit_ms)
        return commit(s);
    return 0;
}

int tern_store_flush(tern_store *s)
{
    if (!s || !s->db)
        return -1;
    return commit_all(s);
}

int tern_store_tick(tern_store *s, int64_t now_ms)
{
    if (!s)
        return -1;
    if (s->corrupt || !s->db) {
        if (recover_corrupt(s) < 0)
            return -1;
    }
    int rc = 0;
    if (s->dict_off && !s->in_txn && dict_load(s) != SQLITE_DONE)
        rc = -1;
    if (s->in_txn && now_ms - s->txn_start_ms >= (int64_t)s->commit_ms)
        rc |= commit(s);
    if (enforce_age(s) < 0)
        rc = -1;
    if (enforce_cap(s) < 0)
        rc = -1;
    if (min_cursor(s) > s->deleted_upto) {
        if (delete_acked(s) < 0)
            rc = -1;
        else if (s->txn_deleted >= (uint64_t)s->commit_every * DELETE_COMMIT_FACTOR)
            rc |= commit(s);
    }
    if (!s->in_txn && now_ms - s->last_reclaim_ms >= VACUUM_EVERY_MS) {
        s->last_reclaim_ms = now_ms;
        if (reclaim_step(s) < 0)
            rc = -1;
    }
    return rc;
}

uint64_t tern_store_epoch(const tern_store *s) { return s ? s->epoch : 0; }

int64_t tern_store_durable_seq(const tern_store *s) { return s ? s->durable_seq : 0; }

int tern_store_uplink(const tern_store *s, const char *name)
{
    if (!s || !name)
        return -1;
    for (size_t i = 0; i < s->n_up; i++)
        if (strcmp(s->up[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Copies a string field of a decoded reading into a fixed-size field:
 * text resolved through the dictionary, or inline. Returns -1 only while
 * the dictionary is off (a transient state). */
static int copy_str(tern_store *s, char *dst, size_t cap, const struct block_str *x)
{
    const char *t = x->text;
    size_t len = x->len;
    if (x->id != 0) {
        if (s->dict_off)
            return -1;
        t = strdict_get(s->dict, x->id, &len);
        if (!t) {
            /* A reading pointing at no string: damaged data, keep it readable. */
            if (!s->dangling_logged)
                TERN_WARN("storage: reading refers to an unknown string id");
            s->dangling_logged = 1;
            len = 0;
            t = "";
        }
    }
    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(dst, t, len);
    dst[len] = '\0';
    return 0;
}

int tern_store_read(tern_store *s, int uplink, int64_t after_seq, struct tern_reading *out,
                    size_t max, size_t *n)
{
    if (n)
        *n = 0;
    if (!s || !s->db || !n || (!out && max > 0) || uplink < 0 || (size_t)uplink >= s->n_up)
        return -1;
    struct store_uplink *u = &s->up[uplink];
    int64_t lo = cursor_of(s, u);
    if (after_seq > lo)
        lo = after_seq;
    size_t k = 0;
    int r = 0;
    struct walk w;
    walk_start(&w, s, lo);
    while (k < max) {
        int64_t seq;
        const struct block_item *it;
        r = walk_next(&w, &seq, &it);
        if (r == -2) {
            /* Skip the damaged block, for every uplink (once: it is then
             * in their acked sets). */
            if (ackset_covering(&u->acks, w.first) < w.last)
                bad_block(s, w.first, w.last);
            if (w.last > w.after)
                w.after = w.last;
            continue;
        }
        if (r != 1 || seq > s->durable_seq)
            break; /* uncommitted readings are never handed out */
        int64_t skip = ackset_covering(&u->acks, seq);
        if (skip) {
            /* Acked out of order: jump past the acked run, seeking anew when
             * it ends beyond this block. */
            if (skip > w.last) {
                walk_end(&w);
                walk_start(&w, s, skip);
            } else {
                w.after = skip;
            }
            continue;
        }
        struct tern_reading *x = &out[k++];
        x->seq = seq;
        x->epoch = s->epoch;
        x->ts_ms = it->ts_ms;
        x->value = it->value;
        x->flags = it->flags;
        if (copy_str(s, x->device_id, sizeof x->device_id, &it->str[BLOCK_DEVICE]) < 0 ||
            copy_str(s, x->sensor, sizeof x->sensor, &it->str[BLOCK_SENSOR]) < 0 ||
            copy_str(s, x->metric, sizeof x->metric, &it->str[BLOCK_METRIC]) < 0 ||
            copy_str(s, x->unit, sizeof x->unit, &it->str[BLOCK_UNIT]) < 0 ||
            copy_str(s, x->tags, sizeof x->tags, &it->str[BLOCK_TAGS]) < 0) {
            walk_end(&w);
            return -1;
        }
    }
    int rc = walk_end(&w);
    if (r == -1 || rc != SQLITE_OK) {
        TERN_DEBUG("storage: read failed: %s", sqlite3_errstr(rc));
        return -1;
    }
    *n = k;
    return 0;
}

int tern_store_ack(tern_store *s, int uplink, int64_t first, int64_t last)
{
    if (!s || !s->db || uplink < 0 || (size_t)uplink >= s->n_up || first < 1 || last < first ||
        last > s->last_seq)
        return -1;
    if (ackset_add(&s->up[uplink].acks, first, last) < 0)
        TERN_DEBUG("storage: uplink '%s': too many out-of-order acks, %" PRId64 "..%" PRId64
                   " will be sent again",
                   s->up[uplink].name, first, last);
    /* Delete in batches rather than per ack; commit() deletes the rest. */
    if (min_cursor(s) - s->deleted_upto >= (int64_t)s->commit_every) {
        if (delete_acked(s) < 0)
            return -1;
        if (s->txn_deleted >= (uint64_t)s->commit_every * DELETE_COMMIT_FACTOR)
            return commit(s);
    }
    return 0;
}

int64_t tern_store_acked_seq(const tern_store *s, int uplink)
{
    if (!s || uplink < 0 || (size_t)uplink >= s->n_up)
        return -1;
    return cursor_of(s, &s->up[uplink]);
}

void tern_store_stats(tern_store *s, struct tern_store_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    out->epoch = s->epoch;
    out->last_seq = s->last_seq;
    out->durable_seq = s->durable_seq;
    out->queued = queued_now(s);
    if (s->db && out->queued > 0) {
        int64_t seq;
        const struct block_item *it;
        struct walk w;
        walk_start(&w, s, min_cursor(s));
        if (walk_next(&w, &seq, &it) == 1)
            out->oldest_ts_ms = it->ts_ms;
        walk_end(&w);
    }
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    out->file_bytes = file_size(s->path) + file_size(wal);
    out->appended = s->appended;
    memcpy(out->dropped, s->dropped, sizeof out->dropped);
    out->corrupt_files_moved = s->corrupt_moved;
    out->commits = s->commits;
    int64_t now = proc_write_bytes();
    if (now < 0 || s->io_base < 0)
        out->bytes_written_per_reading = -1.0;
    else if (s->appended > 0)
        out->bytes_written_per_reading = (double)(now - s->io_base) / (double)s->appended;
}
