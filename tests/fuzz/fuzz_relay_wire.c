/* fuzz_relay_wire.c - libFuzzer target for the relay's hot decode path
 * (relay/wire_fast.c) and its RowBinary rows (relay/rows.c). Messages from
 * Kafka or MQTT are hostile input:
 *   - the fast decoder must never crash, and whatever it accepts the codec
 *     (wire/wire.c) must accept as the same reading, alone or as the first
 *     line of a batch;
 *   - an accepted reading's RowBinary row must render back as exactly the
 *     JSONEachRow row the relay would otherwise have sent (old mode: for
 *     dates 18.16 can hold);
 *   - arbitrary bytes given to the RowBinary renderer must be refused or
 *     rendered, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rows.h"
#include "wire.h"
#include "wire_fast.h"

static int same_reading(const struct tern_reading *a, const struct tern_reading *b)
{
    return strcmp(a->device_id, b->device_id) == 0 && strcmp(a->sensor, b->sensor) == 0 &&
           strcmp(a->metric, b->metric) == 0 && strcmp(a->unit, b->unit) == 0 && strcmp(a->tags, b->tags) == 0 &&
           memcmp(&a->value, &b->value, sizeof a->value) == 0 && a->ts_ms == b->ts_ms && a->epoch == b->epoch &&
           a->seq == b->seq && a->flags == b->flags;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct tern_reading fast, codec;
    char err[256];
    struct relay_buf bin = {0}, json = {0}, want = {0};

    for (int modern = 0; modern < 2; modern++) {
        if (rows_bin_to_json(data, size, modern, &json) == 0 && json.len == 0 && !buf_failed(&json))
            abort(); /* a rendered row is never empty */
        buf_reset(&json);
    }

    size_t used = 0;
    if (wire_fast_decode_prefix(s, size, &fast, &used) == 0) {
        if (used > size || (used < size && s[used] != '\n'))
            abort();
        if (tern_wire_decode(s, used, &codec, err, sizeof err) != 0 || !same_reading(&fast, &codec))
            abort();
    }
    if (wire_fast_decode(s, size, &fast) != 0)
        goto out;
    if (tern_wire_decode(s, size, &codec, err, sizeof err) != 0 || !same_reading(&fast, &codec))
        abort();
    for (int modern = 0; modern < 2; modern++) {
        buf_reset(&bin);
        buf_reset(&json);
        buf_reset(&want);
        if (rows_encode_reading_bin(&bin, &fast, modern, 1795606685) != 0)
            abort(); /* the decoder's tags are always an object of strings */
        rows_encode_reading(&want, &fast, modern, 1795606685);
        if (buf_failed(&bin) || buf_failed(&want))
            goto out;
        if (rows_bin_to_json(bin.p, bin.len, modern, &json) != 0 || buf_failed(&json))
            abort();
        /* Old mode stores dates outside 1970..2105 as 18.16 does (day 0,
         * same time of day), so only those in range read back the same. */
        int in_range = fast.ts_ms >= 0 && fast.ts_ms <= INT64_C(4291747199999);
        if ((modern || in_range) && strcmp(json.p, want.p) != 0)
            abort();
    }
out:
    buf_free(&bin);
    buf_free(&json);
    buf_free(&want);
    return 0;
}
