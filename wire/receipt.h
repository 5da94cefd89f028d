/* receipt.h - end-to-end receipts: what tern-relay publishes to a device on
 * tern/{device_id}/receipts once that device's readings are stored, and what
 * tern-agent (ack = end-to-end) decodes to delete them. Specified in
 * docs/wire-format.md, section "Receipts".
 *
 *   {"v":1,"epoch":"00c0ffee00c0ffee","ranges":[[1,500],[502,900]]}
 *
 * Ranges are inclusive seq ranges of one epoch, ascending, not overlapping
 * and not adjacent (coalesced). */
#ifndef TERN_RECEIPT_H
#define TERN_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#define TERN_RECEIPT_VERSION 1
/* Most ranges one receipt carries; a sender splits longer lists. Also the
 * bound a decoder needs for its output array. */
#define TERN_RECEIPT_MAX_RANGES 512
/* Upper bound of one encoded receipt: header plus 512 ranges of two 19-digit
 * numbers. */
#define TERN_RECEIPT_MAX_BYTES (64 + TERN_RECEIPT_MAX_RANGES * 44)

struct tern_seq_range {
    int64_t first, last; /* inclusive, 1 <= first <= last */
};

/* Sorts r[0..n) by first and merges overlapping and adjacent ranges in
 * place ([1,5],[6,9] -> [1,9]). Ranges with first > last are dropped.
 * Returns the new count. */
size_t tern_receipt_coalesce(struct tern_seq_range *r, size_t n);

/* Encodes a receipt for epoch and n (<= TERN_RECEIPT_MAX_RANGES, coalesced)
 * ranges into buf (NUL-terminated). Returns the length, or -1 when n is 0 or
 * too large or buf is too small. */
int tern_receipt_encode(uint64_t epoch, const struct tern_seq_range *r, size_t n, char *buf, size_t cap);

/* Decodes a receipt of len bytes. out must hold TERN_RECEIPT_MAX_RANGES.
 * Accepts unknown extra fields; rejects anything else malformed: wrong "v",
 * epoch not 16 lowercase hex digits, a range that is not [first,last] with
 * 1 <= first <= last, more than TERN_RECEIPT_MAX_RANGES ranges. The ranges
 * come back coalesced. Returns 0, or -1 with a reason in err. */
int tern_receipt_decode(const char *s, size_t len, uint64_t *epoch, struct tern_seq_range *out, size_t *n,
                        char *err, size_t errcap);

#endif
