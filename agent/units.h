/* units.h - parsing of the value types used in config files: durations with
 * units ("500ms", "10s", "5m"), sizes ("64MiB"), booleans and integers.
 * Every parser rejects trailing garbage, negative numbers and overflow. */
#ifndef TERN_AGENT_UNITS_H
#define TERN_AGENT_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parses a duration into milliseconds. Units: ms, s, m, h, d; a bare number
 * is in bare_unit_ms milliseconds (1000 for keys documented in seconds, 1 for
 * keys ending in _ms). Fractions are allowed ("1.5s"). Returns 0 or -1. */
int tern_parse_duration_ms(const char *s, int64_t bare_unit_ms, int64_t *out_ms);

/* Parses a size into bytes. Units: B, kB/MB/GB (powers of 1000), KiB/MiB/GiB
 * (powers of 1024), k/K/M/G alone mean the binary multiples. Returns 0 or -1. */
int tern_parse_size(const char *s, uint64_t *out_bytes);

/* true/yes/on/1 and false/no/off/0 (case-insensitive). Returns 0 or -1. */
int tern_parse_bool(const char *s, int *out);

/* Decimal integer in [min, max]. Returns 0 or -1. */
int tern_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Finite decimal number. Returns 0 or -1. */
int tern_parse_double(const char *s, double *out);

/* Formats ms as the shortest exact unit form ("250ms", "10s", "5m"). */
void tern_format_duration(int64_t ms, char *buf, size_t cap);
/* Formats bytes as the shortest exact binary unit form ("64MiB", "1000"). */
void tern_format_size(uint64_t bytes, char *buf, size_t cap);

#endif
