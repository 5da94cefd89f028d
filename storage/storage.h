/* storage.h - the crash-safe SQLite queue behind store-and-forward.
 *
 * One SQLite database in WAL mode holds every reading the agent took until
 * every uplink that carries it has acknowledged it. The handle is owned by one
 * thread (the agent's main loop); it is not thread-safe.
 *
 * Durability: appends go into an open transaction that is committed every
 * commit_every readings or commit_ms milliseconds, whichever comes first
 * (tern_store_tick drives the timer). Only committed readings are durable and
 * only those are ever returned by tern_store_read, so a seq that left the
 * machine can never be reused after a crash. */
#ifndef TERN_STORAGE_H
#define TERN_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include "reading.h"

typedef struct tern_store tern_store;

enum tern_store_overflow {
    TERN_OVERFLOW_DROP_OLDEST = 0, /* default: make room by deleting the oldest */
    TERN_OVERFLOW_DROP_NEWEST = 1, /* refuse (and count) new readings when full */
};

enum tern_store_sync {
    /* What each survives is tested and spelled out in docs/storage.md. */
    TERN_SYNC_OFF = 0,    /* process crash only; power loss may lose commits or the file */
    TERN_SYNC_NORMAL = 1, /* WAL+NORMAL: process crash; power loss may lose recent commits */
    TERN_SYNC_FULL = 2,   /* WAL+FULL: process crash and power loss */
};

struct tern_store_options {
    const char *path;               /* database file; created when missing */
    const char *const *uplinks;     /* names of the uplinks that must ack each reading */
    size_t n_uplinks;               /* >= 1 */
    uint32_t commit_every;          /* readings per commit; 0 = default */
    uint32_t commit_ms;             /* max ms a reading stays uncommitted; 0 = default */
    enum tern_store_sync synchronous;
    uint64_t max_bytes;             /* capacity cap of the file; 0 = default */
    int64_t max_age_ms;             /* readings older than this are dropped; 0 = no limit */
    enum tern_store_overflow overflow;
    const char *vfs;                /* SQLite VFS name; NULL = default (tests use shims) */
};

/* Defaults for an SD card (docs/storage.md says why): commit at most once a
 * second or every 1000 readings, 256 MiB cap. */
#define TERN_STORE_DEFAULT_COMMIT_EVERY 1000u
#define TERN_STORE_DEFAULT_COMMIT_MS 1000u
#define TERN_STORE_DEFAULT_MAX_BYTES (256ull << 20)
/* Smallest accepted max_bytes (smaller values are raised to it). */
#define TERN_STORE_MIN_MAX_BYTES (256ull << 10)

/* Why readings were dropped on purpose (counted, never silent). */
enum tern_drop_reason {
    TERN_DROP_OVERFLOW_OLDEST = 0, /* cap reached, oldest deleted */
    TERN_DROP_OVERFLOW_NEWEST,     /* cap reached, new reading refused */
    TERN_DROP_AGE,                 /* older than max_age_ms */
    TERN_DROP_DISK_FULL,           /* SQLITE_FULL / read-only: could not be stored */
    TERN_DROP_CORRUPT,             /* lost with a corrupt file that was moved aside */
    TERN_DROP_REASON_COUNT
};

struct tern_store_stats {
    uint64_t epoch;
    int64_t last_seq;              /* highest seq assigned */
    int64_t durable_seq;           /* highest committed seq */
    uint64_t queued;               /* readings stored and not yet deleted */
    int64_t oldest_ts_ms;          /* ts of the oldest queued reading, 0 if none */
    uint64_t file_bytes;           /* database + WAL size on disk */
    uint64_t appended;             /* readings appended since open */
    uint64_t dropped[TERN_DROP_REASON_COUNT];
    uint64_t corrupt_files_moved;  /* since open (0 or 1 per open) */
    uint64_t commits;
    double bytes_written_per_reading; /* /proc/self/io write_bytes / appended; -1 if unknown */
};

/* Opens (creating when missing) the store. On success *out owns the handle,
 * to be freed with tern_store_close. A corrupt file is moved aside to
 * "<path>.corrupt-YYYYmmddTHHMMSSZ", logged and counted, and a fresh file with
 * a new epoch is created. Returns 0, or -1 with err filled and *out NULL. */
int tern_store_open(const struct tern_store_options *opt, tern_store **out,
                    char *err, size_t errcap);

/* Commits what is pending and closes. NULL is a no-op. */
void tern_store_close(tern_store *s);

/* Appends n readings. Assigns epoch and seq into each r[i] (device_id and the
 * rest are the caller's). A reading refused by TERN_OVERFLOW_DROP_NEWEST gets
 * seq 0 (counted, not an error). A seq above tern_store_durable_seq is not yet
 * safe: if its commit fails the reading is lost (counted) and the seq may be
 * assigned again, which is harmless since only durable readings are ever
 * read. Returns 0; -1 when the readings could not be stored
 * (disk full, read-only: counted as TERN_DROP_DISK_FULL, the store keeps
 * working and recovers by itself when space returns). */
int tern_store_append(tern_store *s, struct tern_reading *r, size_t n);

/* Commits the pending transaction now. Returns 0 or -1. */
int tern_store_flush(tern_store *s);

/* Housekeeping: time-based commit, age and capacity limits, incremental
 * space reclaim. Call at least every few hundred ms with CLOCK_MONOTONIC ms. */
int tern_store_tick(tern_store *s, int64_t now_ms);

uint64_t tern_store_epoch(const tern_store *s);
int64_t tern_store_durable_seq(const tern_store *s);

/* Index of the uplink named name in the open options, or -1. */
int tern_store_uplink(const tern_store *s, const char *name);

/* Reads up to max of the oldest durable readings with seq > after_seq that
 * the uplink has not acknowledged, in seq order, into out. *n gets the count
 * (0 when nothing is pending). Memory is bounded by max, whatever the backlog.
 * Returns 0 or -1. */
int tern_store_read(tern_store *s, int uplink, int64_t after_seq,
                    struct tern_reading *out, size_t max, size_t *n);

/* Records that the uplink delivered seq first..last (inclusive). Acks may
 * arrive out of order and overlap. A reading is deleted once every uplink
 * acknowledged it. Returns 0 or -1. */
int tern_store_ack(tern_store *s, int uplink, int64_t first, int64_t last);

/* Highest seq such that the uplink acknowledged every reading <= it. */
int64_t tern_store_acked_seq(const tern_store *s, int uplink);

void tern_store_stats(tern_store *s, struct tern_store_stats *out);

#endif
