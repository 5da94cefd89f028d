/* sql.h - every SQL text the storage queue runs, as named constants.
 *
 * Nothing here is assembled from data: values travel as bound parameters
 * (named, numbered in order of appearance, which is the index storage.c binds
 * by). The only formatted statement is the journal_size_limit pragma, whose
 * argument is an integer computed from the options (pragmas take no
 * parameters). Schema version 1 is described in docs/storage.md. */
#ifndef TERN_STORAGE_SQL_H
#define TERN_STORAGE_SQL_H

/* Version 2 stores blocks of readings (block.h); version 1 stored one row
 * per reading and is migrated at open (SQL_V1_*). */
#define TERN_STORE_SCHEMA_VERSION 2

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
/* Every version has these three tables... */
#define SQL_COUNT_OUR_TABLES                                                      \
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "        \
    "('meta', 'uplinks', 'strings')"
#define SQL_OUR_TABLE_COUNT 3
/* ...and blocks (version 2), readings (version 1), or both (a migration
 * from version 1 was interrupted). */
#define SQL_HAS_BLOCKS                                                            \
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'blocks'"
#define SQL_HAS_V1_TABLE                                                          \
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'readings'"

/* blocks holds the readings, up to BLOCK_MAX_READINGS per row with
 * consecutive seqs first_seq..last_seq, encoded as in block.h. last_seq is
 * the rowid: reads, deletes and "which block holds seq s" are rowid range
 * seeks. Seqs are assigned by storage.c from a high-water mark kept in meta
 * ('seq_hwm', written in the same transaction as the blocks), which gives
 * AUTOINCREMENT's never-reuse guarantee. The strings table maps the ids
 * used in blocks to their text. */
#define SQL_CREATE_BLOCKS                                                         \
    "CREATE TABLE IF NOT EXISTS blocks(last_seq INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL," \
    " data BLOB NOT NULL);"
#define SQL_CREATE_SCHEMA                                                         \
    "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;"     \
    SQL_CREATE_BLOCKS                                                             \
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

/* --- blocks ------------------------------------------------------------- */

/* :last_seq, :first_seq, :data */
#define SQL_BLOCKS_INSERT                                                         \
    "INSERT INTO blocks(last_seq, first_seq, data) VALUES(:last_seq, :first_seq, :data)"

/* :after. The blocks holding seqs > after, oldest first: a rowid range scan
 * whose cost is proportional to the blocks stepped, whatever the backlog. */
#define SQL_BLOCKS_READ                                                           \
    "SELECT last_seq, first_seq, data FROM blocks WHERE last_seq > :after ORDER BY last_seq"

/* :upto. The newest block wholly at or below upto. */
#define SQL_BLOCKS_LAST_LE                                                        \
    "SELECT last_seq FROM blocks WHERE last_seq <= :upto ORDER BY last_seq DESC LIMIT 1"

/* :upto. Deletes a prefix of the queue (acknowledged by all, or dropped). */
#define SQL_BLOCKS_DELETE_UPTO "DELETE FROM blocks WHERE last_seq <= :upto"

/* Only at open: the first seq of the oldest block and the highest seq. */
#define SQL_BLOCKS_SUMMARY                                                        \
    "SELECT (SELECT first_seq FROM blocks ORDER BY last_seq LIMIT 1),"            \
    " (SELECT max(last_seq) FROM blocks)"

/* Readings in a file about to be moved aside (best effort). */
#define SQL_BLOCKS_COUNT "SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM blocks"

/* --- migration from version 1 (one row per reading) --------------------- */

/* :n. The oldest version 1 rows; device NULL meant meta 'device_id', the
 * string columns hold a strings id (INTEGER) or the text itself. */
#define SQL_V1_READ                                                               \
    "SELECT seq, ts_ms, coalesce(device, (SELECT value FROM meta WHERE key = 'device_id')),"\
    " sensor, metric, unit, value, tags, flags FROM readings ORDER BY seq LIMIT :n"
/* :upto */
#define SQL_V1_DELETE_UPTO "DELETE FROM readings WHERE seq <= :upto"
#define SQL_V1_COUNT "SELECT count(*) FROM readings"
#define SQL_V1_DROP "DROP TABLE readings"

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
