/* wire_fast.h - a fast path for decoding wire lines in the exact canonical
 * shape tern_wire_encode writes (fixed key order, no whitespace, ASCII text
 * without escapes). It either produces the very reading tern_wire_decode
 * would, or declines, and the caller falls back to tern_wire_decode, which
 * stays the one authority on validity and error messages. The relay decodes
 * every message, and jansson's tree building dominated its CPU profile. */
#ifndef TERN_RELAY_WIRE_FAST_H
#define TERN_RELAY_WIRE_FAST_H

#include <stddef.h>

#include "reading.h"

/* Returns 0 with *out filled exactly as tern_wire_decode would fill it, or -1
 * when the line is not in canonical shape (valid or not: ask the codec). */
int wire_fast_decode(const char *line, size_t len, struct tern_reading *out);

/* Decodes with the fast path, falling back to tern_wire_decode. */
int relay_wire_decode(const char *line, size_t len, struct tern_reading *out, char *err, size_t errcap);

#endif
