/* strdict.c - see strdict.h. Open addressing over a power-of-two slot array
 * (at most half full), FNV-1a hashing: a lookup is one hash and usually one
 * memcmp, cheap next to the B-tree insert it saves bytes for. */
#include "strdict.h"

#include <string.h>

#include "alloc.h"

#define SLOTS (STRDICT_MAX_ENTRIES * 2u)

struct entry {
    char *text;
    uint32_t len;
};

struct strdict {
    struct entry e[STRDICT_MAX_ENTRIES + 1]; /* by id; [0] unused */
    uint16_t slot[SLOTS];                    /* id, 0 = empty */
    uint32_t max_id;
    size_t count;
    size_t bytes;
};

static uint32_t hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

struct strdict *strdict_new(void) { return tern_calloc(1, sizeof(struct strdict)); }

void strdict_clear(struct strdict *d)
{
    for (uint32_t i = 1; i <= d->max_id; i++)
        tern_free(d->e[i].text);
    memset(d, 0, sizeof *d);
}

void strdict_free(struct strdict *d)
{
    if (!d)
        return;
    strdict_clear(d);
    tern_free(d);
}

uint32_t strdict_find(const struct strdict *d, const char *s, size_t len)
{
    for (uint32_t i = hash(s, len) & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        uint32_t id = d->slot[i];
        if (id == 0)
            return 0;
        if (d->e[id].len == len && memcmp(d->e[id].text, s, len) == 0)
            return id;
    }
}

uint32_t strdict_next_id(const struct strdict *d, size_t len)
{
    if (d->max_id >= STRDICT_MAX_ENTRIES || d->bytes + len + 1 > STRDICT_MAX_BYTES)
        return 0;
    return d->max_id + 1;
}

int strdict_put(struct strdict *d, uint32_t id, const char *s, size_t len)
{
    if (id == 0 || id > STRDICT_MAX_ENTRIES || d->e[id].text)
        return -1;
    char *t = tern_malloc(len + 1);
    if (!t)
        return -1;
    memcpy(t, s, len);
    t[len] = '\0';
    d->e[id].text = t;
    d->e[id].len = (uint32_t)len;
    uint32_t i = hash(s, len) & (SLOTS - 1);
    while (d->slot[i])
        i = (i + 1) & (SLOTS - 1);
    d->slot[i] = (uint16_t)id;
    if (id > d->max_id)
        d->max_id = id;
    d->count++;
    d->bytes += len + 1;
    return 0;
}

const char *strdict_get(const struct strdict *d, uint32_t id, size_t *len)
{
    if (id == 0 || id > d->max_id || !d->e[id].text)
        return NULL;
    *len = d->e[id].len;
    return d->e[id].text;
}

size_t strdict_count(const struct strdict *d) { return d->count; }
size_t strdict_bytes(const struct strdict *d) { return d->bytes; }
