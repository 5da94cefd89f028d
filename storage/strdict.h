/* strdict.h - the in-memory mirror of the queue's string table: sensor,
 * metric, unit and tags text mapped to small integer ids, so a stored
 * reading carries a 1-2 byte id instead of its strings (fewer bytes per
 * reading on flash, smaller B-tree). Bounded: past STRDICT_MAX_ENTRIES or
 * STRDICT_MAX_BYTES new strings are simply stored inline. Internal to
 * storage/; storage.c keeps the SQL table and this mirror in step. */
#ifndef TERN_STORAGE_STRDICT_H
#define TERN_STORAGE_STRDICT_H

#include <stddef.h>
#include <stdint.h>

#define STRDICT_MAX_ENTRIES 4096u
#define STRDICT_MAX_BYTES (128u << 10)

struct strdict;

/* Returns an empty dictionary owned by the caller, or NULL (out of memory). */
struct strdict *strdict_new(void);
void strdict_free(struct strdict *d);
void strdict_clear(struct strdict *d);

/* The id of s (len bytes), or 0 when it is not in the dictionary. */
uint32_t strdict_find(const struct strdict *d, const char *s, size_t len);

/* The id the next new string gets (ids are dense from 1), or 0 when the
 * dictionary is full for a string of len bytes. */
uint32_t strdict_next_id(const struct strdict *d, size_t len);

/* Adds s under id (>= 1, < STRDICT_MAX_ENTRIES + 1, not yet used). Returns 0,
 * or -1 when out of memory (the dictionary is then unchanged). */
int strdict_put(struct strdict *d, uint32_t id, const char *s, size_t len);

/* The text of id and its length, or NULL when id is unknown. */
const char *strdict_get(const struct strdict *d, uint32_t id, size_t *len);

size_t strdict_count(const struct strdict *d);
size_t strdict_bytes(const struct strdict *d);

#endif
