/* reading.h - the reading model shared by tern-agent, tern-relay and tern-sim.
 *
 * A reading is one metric of one sensor at one instant. (device_id, epoch, seq)
 * identifies it forever: epoch is the random id of the agent's storage file,
 * seq is never reused within an epoch. Fixed-size fields keep a reading a flat
 * value that can be copied and stored in bounded buffers without allocation. */
#ifndef TERN_READING_H
#define TERN_READING_H

#include <stddef.h>
#include <stdint.h>

#define TERN_ID_MAX 64     /* device_id, sensor, metric: bytes including NUL */
#define TERN_UNIT_MAX 16   /* unit (UCUM-style, e.g. "Cel", "%", "Pa"), incl. NUL */
#define TERN_TAGS_MAX 256  /* tags as compact JSON object text, incl. NUL */

/* Reading flags (bit set). */
enum tern_reading_flag {
    /* ts_ms was taken before the system clock was synchronised and could not
     * be corrected; the value is real, its timestamp is not trustworthy. */
    TERN_READING_CLOCK_UNSYNCED = 1u << 0,
};

struct tern_reading {
    char device_id[TERN_ID_MAX];
    char sensor[TERN_ID_MAX];
    char metric[TERN_ID_MAX];
    char unit[TERN_UNIT_MAX];
    /* Compact JSON object of string values, e.g. {"site":"lab"}; "" means none. */
    char tags[TERN_TAGS_MAX];
    double value;     /* SI or the sensor's documented unit; always finite */
    int64_t ts_ms;    /* UTC, milliseconds since the Unix epoch */
    uint64_t epoch;   /* random id of the storage file that assigned seq */
    int64_t seq;      /* >= 1, strictly increasing within an epoch */
    uint32_t flags;   /* enum tern_reading_flag */
};

/* Copies src into the fixed-size field dst of size cap. Returns 0, or -1 when
 * src does not fit (dst then holds a truncated, NUL-terminated copy). */
int tern_copy_field(char *dst, size_t cap, const char *src);

#endif
