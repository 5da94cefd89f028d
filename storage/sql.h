/* sql.h - every SQL text the storage queue runs, as named constants.
 *
 * Nothing here is assembled from data: values travel as bound parameters
 * (named, numbered in order of appearance, which is the index storage.c binds
 * by). The only formatted statement is the journal_size_limit pragma, whose
 * argument is an integer computed from the options (pragmas take no
 * parameters). Schema version 1 is described in docs/storage.md. */
#ifndef TERN_STORAGE_SQL_H
#define TERN_STORAGE_SQL_H

#define TERN_STORE_SCHEMA_VERSION 1

/* --- connection set-up (run once per open, in this order) --------------- */

/* One process owns the queue: an exclusive lock keeps a second agent off the
 * file, and in WAL mode it keeps the wal-index in heap memory instead of a
 * -shm file (no shared memory, fewer writes). Must precede the first access. */
#define SQL_LOCKING_EXCLUSIVE "PRAGMA locking_mode = EXCLUSIVE"
/* Only takes effect on a new, empty file; set before the schema exists. */
#define SQL_PAGE_SIZE "PRAGMA page_size = 4096"
#define SQL_AUTO_VACUUM "PRAGMA auto_vacuum = INCREMENTAL"
#define SQL_JOURNAL_WAL "PRAGMA journal_mode = WAL"
/* Page cache: 256 KiB (negative = KiB), the agent aims at RSS <= 4 MiB. */
#define SQL_CACHE_SIZE "PRAGMA cache_size = -256"
#define SQL_TEMP_STORE "PRAGMA temp_store = MEMORY"
#define SQL_SYNC_OFF "PRAGMA synchronous = OFF"
#define SQL_SYNC_NORMAL "PRAGMA synchronous = NORMAL"
#define SQL_SYNC_FULL "PRAGMA synchronous = FULL"
/* printf format: the WAL is truncated to this many bytes when it is reset. */
#define SQL_JOURNAL_SIZE_LIMIT_FMT "PRAGMA journal_size_limit = %lld"
/* One row "ok" when the file is sound; anything else lists problems. */
#define SQL_QUICK_CHECK "PRAGMA quick_check(1)"

/* --- schema ------------------------------------------------------------- */

#define SQL_COUNT_TABLES "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
#define SQL_COUNT_OUR_TABLES                                                      \
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "        \
    "('meta', 'readings', 'uplinks', 'strings')"
#define SQL_OUR_TABLE_COUNT 4

/* readings.seq is the rowid. It is assigned by storage.c from a high-water
 * mark kept in meta ('seq_hwm', written in the same transaction as the rows),
 * which gives AUTOINCREMENT's never-reuse guarantee for one meta update per
 * commit instead of one sqlite_sequence update per row. device is NULL when
 * it equals meta 'device_id' (one device per file is the normal case).
 * sensor, metric, unit and tags hold either an INTEGER, the id of their text
 * in strings, or the TEXT itself when the bounded dictionary is full; they
 * are declared without a type so SQLite keeps whichever was stored. */
#define SQL_CREATE_SCHEMA                                                         \
    "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;"     \
    "CREATE TABLE readings("                                                      \
    " seq INTEGER PRIMARY KEY,"                                                   \
    " ts_ms INTEGER NOT NULL,"                                                    \
    " device TEXT,"                                                               \
    " sensor NOT NULL,"                                                           \
    " metric NOT NULL,"                                                           \
    " unit NOT NULL,"                                                             \
    " value REAL NOT NULL,"                                                       \
    " tags NOT NULL,"                                                             \
    " flags INTEGER NOT NULL);"                                                   \
    "CREATE TABLE strings(id INTEGER PRIMARY KEY, text TEXT NOT NULL);"          \
    "CREATE TABLE uplinks(name TEXT PRIMARY KEY NOT NULL,"                        \
    " acked_seq INTEGER NOT NULL) WITHOUT ROWID;"

/* --- meta --------------------------------------------------------------- */

#define META_EPOCH "epoch"
#define META_SCHEMA_VERSION "schema_version"
#define META_SEQ_HWM "seq_hwm"
#define META_DEVICE_ID "device_id"
#define META_CREATED_MS "created_ms"

/* :key */
#define SQL_META_GET "SELECT value FROM meta WHERE key = :key"
/* :key, :value */
#define SQL_META_PUT                                                              \
    "INSERT INTO meta(key, value) VALUES(:key, :value)"                           \
    " ON CONFLICT(key) DO UPDATE SET value = excluded.value"

/* --- uplink cursors ----------------------------------------------------- */

#define SQL_UPLINKS_LIST "SELECT name, acked_seq FROM uplinks"
/* :name */
#define SQL_UPLINK_DELETE "DELETE FROM uplinks WHERE name = :name"
/* :name, :acked_seq */
#define SQL_UPLINK_PUT                                                            \
    "INSERT INTO uplinks(name, acked_seq) VALUES(:name, :acked_seq)"              \
    " ON CONFLICT(name) DO UPDATE SET acked_seq = excluded.acked_seq"

/* --- string dictionary (mirrored in memory by strdict.c) ---------------- */

/* :id, :text */
#define SQL_STRINGS_INSERT "INSERT INTO strings(id, text) VALUES(:id, :text)"
#define SQL_STRINGS_LOAD "SELECT id, text FROM strings ORDER BY id"
/* Only when the queue is empty: no reading refers to any id any more. */
#define SQL_STRINGS_CLEAR "DELETE FROM strings"

/* --- readings ----------------------------------------------------------- */

/* :seq, :ts_ms, :device, :sensor, :metric, :unit, :value, :tags, :flags */
#define SQL_READINGS_INSERT                                                       \
    "INSERT INTO readings(seq, ts_ms, device, sensor, metric, unit, value, tags, flags)" \
    " VALUES(:seq, :ts_ms, :device, :sensor, :metric, :unit, :value, :tags, :flags)"

/* :after, :upto. Column order is READ_COL_* in storage.c. A rowid range scan:
 * cost is proportional to the rows stepped, whatever the backlog. */
#define SQL_READINGS_READ                                                         \
    "SELECT seq, ts_ms, device, sensor, metric, unit, value, tags, flags"         \
    " FROM readings WHERE seq > :after AND seq <= :upto ORDER BY seq"

/* :upto. Deletes a prefix of the queue (acked by all, dropped, aged out). */
#define SQL_READINGS_DELETE_UPTO "DELETE FROM readings WHERE seq <= :upto"

/* :n. The seq of the (n+1)th oldest reading: where a drop of n+1 ends. */
#define SQL_READINGS_NTH_SEQ "SELECT seq FROM readings ORDER BY seq LIMIT 1 OFFSET :n"

/* :n. The oldest readings, for the age limit. */
#define SQL_READINGS_HEAD "SELECT seq, ts_ms, flags FROM readings ORDER BY seq LIMIT :n"

#define SQL_READINGS_OLDEST_TS "SELECT ts_ms FROM readings ORDER BY seq LIMIT 1"

/* Only at open: the count is a full scan, kept in memory afterwards. */
#define SQL_READINGS_SUMMARY "SELECT min(seq), max(seq), count(*) FROM readings"

/* --- transactions and space --------------------------------------------- */

#define SQL_BEGIN "BEGIN"
#define SQL_COMMIT "COMMIT"
#define SQL_ROLLBACK "ROLLBACK"
#define SQL_PAGE_COUNT "PRAGMA page_count"
#define SQL_FREELIST_COUNT "PRAGMA freelist_count"
/* Returns up to 128 free pages (512 KiB) to the file system: a bounded step,
 * run from tern_store_tick so reclaiming never stalls the main loop long. */
#define SQL_INCREMENTAL_VACUUM_STEP "PRAGMA incremental_vacuum(128)"
#define STORE_VACUUM_STEP_PAGES 128

#endif
