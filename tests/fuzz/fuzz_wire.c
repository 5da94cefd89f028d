/* fuzz_wire.c - libFuzzer target for the wire codec: arbitrary bytes must
 * never crash the decoder, and whatever it accepts must survive
 * encode -> decode unchanged (and encode to the same line twice). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static int same_reading(const struct tern_reading *a, const struct tern_reading *b)
{
    return strcmp(a->device_id, b->device_id) == 0 && strcmp(a->sensor, b->sensor) == 0 &&
           strcmp(a->metric, b->metric) == 0 && strcmp(a->unit, b->unit) == 0 &&
           strcmp(a->tags, b->tags) == 0 && memcmp(&a->value, &b->value, sizeof a->value) == 0 &&
           a->ts_ms == b->ts_ms && a->epoch == b->epoch && a->seq == b->seq &&
           a->flags == b->flags;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tern_reading r, again;
    char err[256], line[TERN_WIRE_LINE_MAX + 1], line2[TERN_WIRE_LINE_MAX + 1];

    /* The timestamp parser takes a C string: give it the input as one. */
    if (size < 64) {
        char ts[64];
        int64_t ms;
        memcpy(ts, data, size);
        ts[size] = '\0';
        if (tern_wire_parse_ts(ts, &ms) == 0) {
            char back[25];
            int64_t ms2;
            tern_wire_format_ts(ms, back);
            if (tern_wire_parse_ts(back, &ms2) != 0 || ms2 != ms)
                abort();
        }
    }

    if (tern_wire_decode((const char *)data, size, &r, err, sizeof err) != 0)
        return 0;
    size_t n = tern_wire_encode(&r, line, sizeof line);
    if (n > TERN_WIRE_LINE_MAX) /* the header's bound holds for decodable readings */
        abort();
    if (tern_wire_decode(line, n, &again, err, sizeof err) != 0)
        abort();
    if (!same_reading(&r, &again))
        abort();
    if (tern_wire_encode(&again, line2, sizeof line2) != n || memcmp(line, line2, n) != 0)
        abort();
    return 0;
}
