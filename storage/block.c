/* block.c - encoding and decoding of a block of readings (format in block.h
 * and docs/storage.md). */
#include "block.h"

#include <string.h>

#include "reading.h"

/* Inline text is cut here; every wire field is shorter (TERN_TAGS_MAX - 1). */
#define INLINE_MAX 255u

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

void block_enc_reset(struct block_enc *b)
{
    b->len = 0;
    b->n = 0;
    b->first_seq = 0;
    b->ts_prev = 0;
    b->ts_min = INT64_MAX;
    b->ts_max = INT64_MIN;
    b->unsynced = 0;
}

int block_enc_full(const struct block_enc *b)
{
    return b->n >= BLOCK_MAX_READINGS || b->len >= BLOCK_MAX_BYTES;
}

void block_enc_put(struct block_enc *b, int64_t seq, const struct block_item *it)
{
    uint8_t *p = b->buf + b->len;
    if (b->n == 0)
        b->first_seq = seq;
    p += put_varint(p, it->flags);
    /* Unsigned subtraction: wraps instead of overflowing, undone by the
     * decoder's unsigned addition (timestamps are arbitrary int64). */
    p += put_varint(p, zigzag((int64_t)((uint64_t)it->ts_ms - (uint64_t)b->ts_prev)));
    uint64_t bits;
    memcpy(&bits, &it->value, sizeof bits);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(bits >> (8 * i));
    for (int f = 0; f < BLOCK_NSTR; f++) {
        const struct block_str *s = &it->str[f];
        p += put_varint(p, s->id);
        if (s->id == 0) {
            size_t len = s->len > INLINE_MAX ? INLINE_MAX : s->len;
            p += put_varint(p, len);
            if (len)
                memcpy(p, s->text, len);
            p += len;
        }
    }
    b->len = (size_t)(p - b->buf);
    b->ts_prev = it->ts_ms;
    if (it->flags & TERN_READING_CLOCK_UNSYNCED) {
        b->unsynced++;
    } else {
        if (it->ts_ms < b->ts_min)
            b->ts_min = it->ts_ms;
        if (it->ts_ms > b->ts_max)
            b->ts_max = it->ts_ms;
    }
    b->n++;
}

void block_dec_init(struct block_dec *d, const void *blob, size_t len)
{
    d->p = blob;
    d->end = d->p ? d->p + len : NULL;
    d->ts_prev = 0;
}

static int get_varint_long(struct block_dec *d, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (d->p >= d->end)
            return -1;
        uint8_t c = *d->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

/* Flags, ts deltas and string ids are almost always one byte: that case is
 * inlined, the loop is not. */
static inline int get_varint(struct block_dec *d, uint64_t *v)
{
    if (d->p < d->end && *d->p < 0x80) {
        *v = *d->p++;
        return 0;
    }
    return get_varint_long(d, v);
}

int block_dec_next(struct block_dec *d, struct block_item *it)
{
    if (!d->p || d->p == d->end)
        return 0;
    uint64_t flags, ts;
    if (get_varint(d, &flags) < 0 || flags > UINT32_MAX || get_varint(d, &ts) < 0)
        return -1;
    it->flags = (uint32_t)flags;
    it->ts_ms = (int64_t)((uint64_t)d->ts_prev + (uint64_t)unzigzag(ts));
    d->ts_prev = it->ts_ms;
    if (d->end - d->p < 8)
        return -1;
    uint64_t bits = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&bits, d->p, 8); /* one load; the loop below was ~50 instructions */
#else
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)d->p[i] << (8 * i);
#endif
    d->p += 8;
    memcpy(&it->value, &bits, sizeof bits);
    for (int f = 0; f < BLOCK_NSTR; f++) {
        struct block_str *s = &it->str[f];
        uint64_t id, len;
        if (get_varint(d, &id) < 0 || id > UINT32_MAX)
            return -1;
        s->id = (uint32_t)id;
        s->text = NULL;
        s->len = 0;
        if (id != 0)
            continue;
        if (get_varint(d, &len) < 0 || len > INLINE_MAX || (uint64_t)(d->end - d->p) < len)
            return -1;
        s->text = (const char *)d->p;
        s->len = (size_t)len;
        d->p += len;
    }
    return 1;
}

int block_decode(const void *blob, size_t len, struct block_item *items, uint64_t n)
{
    struct block_dec d;
    struct block_item extra;
    block_dec_init(&d, blob, len);
    for (uint64_t k = 0; k < n; k++)
        if (block_dec_next(&d, &items[k]) != 1)
            return -1;
    return block_dec_next(&d, &extra) == 0 ? 0 : -1; /* nothing after the n-th */
}
