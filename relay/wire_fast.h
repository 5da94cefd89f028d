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

/* Returns 0 with *out filled as tern_wire_decode would fill it (every field;
 * bytes after a string's NUL are left alone), or -1 when the line is not in
 * canonical shape (valid or not: ask the codec); *out is then undefined. */
int wire_fast_decode(const char *line, size_t len, struct tern_reading *out);
/* The same for the line at the start of s (avail bytes, which may hold more
 * lines): on 0, *used is the line's length, and s[*used] is the end of the
 * input or the line's '\n'. Saves finding the newline first. */
int wire_fast_decode_prefix(const char *s, size_t avail, struct tern_reading *out, size_t *used);

/* Decodes with the fast path, falling back to tern_wire_decode. */
int relay_wire_decode(const char *line, size_t len, struct tern_reading *out, char *err, size_t errcap);

#endif
