/* wire.h - Tern's wire format, version 1: JSON lines, one reading per line.
 * Specified in docs/wire-format.md; tests/vectors/ holds shared test vectors.
 *
 *   {"v":1,"device_id":"pi-01","sensor":"env","metric":"temperature",
 *    "value":21.5,"unit":"Cel","ts":"2026-11-25T11:38:05.123Z",
 *    "epoch":"00c0ffee00c0ffee","seq":42,"tags":{"site":"lab"},"flags":0}
 *
 * A batch (one MQTT message) is lines joined by '\n'; one Kafka message holds
 * exactly one line. */
#ifndef TERN_WIRE_H
#define TERN_WIRE_H

#include <stddef.h>
#include "reading.h"

#define TERN_WIRE_VERSION 1
/* Upper bound of one encoded line, newline excluded. */
#define TERN_WIRE_LINE_MAX 1024

/* Encodes r as one line (no trailing newline) into buf of size cap, always
 * NUL-terminated when cap > 0. Returns the encoded length; when that is >= cap
 * the output was truncated (snprintf semantics). Never fails otherwise. */
size_t tern_wire_encode(const struct tern_reading *r, char *buf, size_t cap);

/* Longest text tern_wire_format_value writes, NUL included. */
#define TERN_WIRE_VALUE_MAX 32

/* Writes v as the encoder does (docs/wire-format.md, section 3: an integer
 * below 2^53 as an integer, else the first of %.15g, %.16g and %.17g that
 * reads back as v, with ".0" when that text looks integral; "null" for NaN
 * and infinities) into out, NUL-terminated, whatever the locale. Returns the
 * length. */
size_t tern_wire_format_value(double v, char out[TERN_WIRE_VALUE_MAX]);

/* Decodes one line (len bytes, need not be NUL-terminated; a trailing "\r" or
 * "\n" is ignored) into *out. Returns 0, or -1 with a one-line human-readable
 * reason in err (e.g. "missing field 'seq'", "unsupported wire version 2"). */
int tern_wire_decode(const char *line, size_t len, struct tern_reading *out,
                     char *err, size_t errcap);

/* Builds a reading's tags field in canonical form (docs/wire-format.md: keys
 * sorted by byte value, compact, strings escaped as the encoder does) from n
 * key/value pairs, into out of size cap (TERN_TAGS_MAX for a reading). n == 0
 * gives "". Returns 0, or -1 when a key repeats or the text does not fit
 * (out is then ""). The decoder stores tags in this same form. */
int tern_wire_tags(const char *const keys[], const char *const values[], size_t n, char *out,
                   size_t cap);

/* Formats ts_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 25 bytes). */
void tern_wire_format_ts(int64_t ts_ms, char buf[25]);
/* Parses RFC 3339 UTC ("Z" or +hh:mm offset, 0-9 fraction digits) to ms. */
int tern_wire_parse_ts(const char *s, int64_t *ts_ms);

#endif
