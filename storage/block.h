/* block.h - the encoding of one row of the queue: a block of readings.
 *
 * The queue stores readings in blocks of up to BLOCK_MAX_READINGS with
 * consecutive seqs, one SQLite row each, instead of one row per reading:
 * draining a backlog then costs one B-tree delete per block rather than per
 * reading, and a reading takes ~16 bytes instead of ~60 (flash wear). The
 * format is documented in docs/storage.md ("Block format"). Per reading:
 *
 *   flags    varint
 *   ts_ms    zigzag varint, delta from the previous reading of the block
 *            (from 0 for the first)
 *   value    8 bytes, IEEE 754 binary64, little endian
 *   device, sensor, metric, unit, tags: each a varint v; v >= 1 is the id of
 *            the text in the strings table, v = 0 is followed by the text
 *            inline (varint length, bytes; used when the dictionary is full)
 *
 * Blocks come from the database file, which may be damaged: the decoder
 * checks every length and never reads past the blob (fuzzed by
 * tests/fuzz/fuzz_block.c). */
#ifndef TERN_STORAGE_BLOCK_H
#define TERN_STORAGE_BLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Readings per block: large enough that deletes and row overheads vanish,
 * small enough that a block of typical readings (~1 KiB) fits a 4 KiB page
 * with room to spare and partial acks keep little acknowledged data. */
#define BLOCK_MAX_READINGS 64u
/* A block is closed before it would pass this size (bytes), so fat readings
 * (inline strings) never make a row spill into overflow pages much. */
#define BLOCK_MAX_BYTES 3072u
/* Worst case bytes one reading can take: 3 varints (10 each), the value,
 * five fields with inline text up to 255 bytes plus two length varints. */
#define BLOCK_READING_MAX (3u * 10u + 8u + 5u * (10u + 10u + 255u))

enum { BLOCK_DEVICE, BLOCK_SENSOR, BLOCK_METRIC, BLOCK_UNIT, BLOCK_TAGS, BLOCK_NSTR };

/* One string field of an item: an id, or (id 0) inline text. */
struct block_str {
    uint32_t id;
    const char *text; /* inline text, not terminated; points into the blob */
    size_t len;
};

struct block_item {
    int64_t ts_ms;
    uint32_t flags;
    double value;
    struct block_str str[BLOCK_NSTR];
};

/* Encoder: the block being filled (owned by the store, reused). */
struct block_enc {
    uint8_t buf[BLOCK_MAX_BYTES + BLOCK_READING_MAX];
    size_t len;
    uint32_t n;
    int64_t first_seq;
    int64_t ts_prev;
    int64_t ts_min, ts_max; /* over readings with a synced clock */
    uint32_t unsynced;      /* readings flagged CLOCK_UNSYNCED */
};

void block_enc_reset(struct block_enc *b);
/* Nonzero when the block must be written before another reading is added. */
int block_enc_full(const struct block_enc *b);
/* Appends one reading (the caller checked block_enc_full). Text fields
 * longer than 255 bytes are cut (the wire limits are far below). */
void block_enc_put(struct block_enc *b, int64_t seq, const struct block_item *it);

/* Decoder over one blob. */
struct block_dec {
    const uint8_t *p, *end;
    int64_t ts_prev;
};

void block_dec_init(struct block_dec *d, const void *blob, size_t len);
/* Decodes the next reading into it. Returns 1 on a reading, 0 at the clean
 * end of the blob, -1 when the blob is malformed. */
int block_dec_next(struct block_dec *d, struct block_item *it);
/* Decodes the whole blob into items[0..n): 0 when it holds exactly n
 * readings (n <= BLOCK_MAX_READINGS), else -1 (items then undefined). A block
 * is checked whole before any of it is handed out, so a damaged block is lost
 * whole rather than half delivered; decoding into items at the same time
 * means a block is decoded once, not once to check and again to read. Text
 * pointers in items point into blob. */
int block_decode(const void *blob, size_t len, struct block_item *items, uint64_t n);

#endif
