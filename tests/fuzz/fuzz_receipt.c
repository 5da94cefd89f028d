/* fuzz_receipt.c - libFuzzer target for the receipt codec (wire/receipt.h):
 * arbitrary bytes must never crash the decoder; whatever it accepts comes back
 * coalesced (ascending, no overlap, no adjacency, 1 <= first <= last) and
 * survives encode -> decode unchanged. Needs tern_wire. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "receipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tern_seq_range r[TERN_RECEIPT_MAX_RANGES], again[TERN_RECEIPT_MAX_RANGES];
    static char buf[TERN_RECEIPT_MAX_BYTES];
    char err[256];
    uint64_t epoch = 0, epoch2 = 0;
    size_t n = 0, n2 = 0;
    if (tern_receipt_decode((const char *)data, size, &epoch, r, &n, err, sizeof err) != 0)
        return 0;
    if (n > TERN_RECEIPT_MAX_RANGES)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (r[i].first < 1 || r[i].first > r[i].last)
            abort();
        if (i > 0 && r[i].first <= r[i - 1].last + 1)
            abort();
    }
    if (n == 0)
        return 0;
    int len = tern_receipt_encode(epoch, r, n, buf, sizeof buf);
    if (len < 0)
        abort();
    if (tern_receipt_decode(buf, (size_t)len, &epoch2, again, &n2, err, sizeof err) != 0)
        abort();
    if (epoch2 != epoch || n2 != n || memcmp(r, again, n * sizeof r[0]) != 0)
        abort();
    return 0;
}
