/* batch.c - see batch.h. */
#include "batch.h"

#include <string.h>

#include "alloc.h"

void batch_init(struct batch *b, int modern)
{
    memset(b, 0, sizeof(*b));
    b->modern = modern;
}

void batch_free(struct batch *b)
{
    buf_free(&b->rows);
    buf_free(&b->rejects);
    tern_free(b->row);
    tern_free(b->msgs);
    tern_free(b->marks);
    tern_free(b->keys);
    memset(b, 0, sizeof(*b));
}

void batch_clear(struct batch *b)
{
    buf_reset(&b->rows);
    buf_reset(&b->rejects);
    b->nrows = b->nrejects = b->nmsgs = b->nmarks = 0;
    if (b->keys)
        memset(b->keys, 0, b->key_cap * sizeof(*b->keys));
    b->duplicates = 0;
    b->opened_ms = 0;
    b->rows_done = b->rejects_done = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 256;
    while (n < need)
        n *= 2;
    void *q = tern_realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

long batch_add_message(struct batch *b, const struct relay_pos *pos, int64_t now_mono_ms)
{
    if (grow((void **)&b->msgs, &b->msg_cap, b->nmsgs + 1, sizeof(*b->msgs)) != 0)
        return -1;
    b->msgs[b->nmsgs] = *pos;
    if (b->nmsgs == 0)
        b->opened_ms = now_mono_ms;
    size_t i;
    for (i = 0; i < b->nmarks; i++) {
        if (b->marks[i].partition == pos->partition && b->marks[i].topic == pos->topic)
            break;
    }
    if (i == b->nmarks) {
        if (grow((void **)&b->marks, &b->mark_cap, b->nmarks + 1, sizeof(*b->marks)) != 0)
            return -1;
        b->nmarks++;
    }
    /* Sources deliver in order within a partition; keep the highest anyway. */
    if (i + 1 == b->nmarks || pos->offset > b->marks[i].offset)
        b->marks[i] = *pos;
    return (long)b->nmsgs++;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* Returns 1 when k was already present, 0 when inserted, -1 out of memory.
 * An all-zero slot is empty; a real key is never all zero because
 * device_hash gets bit 0 forced on. */
static int key_insert(struct batch *b, struct batch_key k)
{
    if ((b->nrows + 1) * 2 > b->key_cap) {
        size_t ncap = b->key_cap ? b->key_cap * 2 : 1024;
        while ((b->nrows + 1) * 2 > ncap)
            ncap *= 2;
        struct batch_key *nk = tern_calloc(ncap, sizeof(*nk));
        if (!nk)
            return -1;
        for (size_t i = 0; i < b->key_cap; i++) {
            if (!b->keys[i].device_hash)
                continue;
            size_t j = mix(b->keys[i].epoch ^ (uint64_t)b->keys[i].seq ^ b->keys[i].device_hash) & (ncap - 1);
            while (nk[j].device_hash)
                j = (j + 1) & (ncap - 1);
            nk[j] = b->keys[i];
        }
        tern_free(b->keys);
        b->keys = nk;
        b->key_cap = ncap;
    }
    size_t j = mix(k.epoch ^ (uint64_t)k.seq ^ k.device_hash) & (b->key_cap - 1);
    while (b->keys[j].device_hash) {
        if (b->keys[j].epoch == k.epoch && b->keys[j].seq == k.seq && b->keys[j].device_hash == k.device_hash)
            return 1;
        j = (j + 1) & (b->key_cap - 1);
    }
    b->keys[j] = k;
    return 0;
}

int batch_add_reading(struct batch *b, uint32_t msg, uint32_t item, const struct tern_reading *r, int64_t now_s)
{
    struct batch_key k = {r->epoch, r->seq, str_hash(r->device_id) | 1u};
    int dup = key_insert(b, k);
    if (dup < 0)
        return -1;
    if (dup) {
        b->duplicates++;
        return 1;
    }
    if (grow((void **)&b->row, &b->row_cap, b->nrows + 1, sizeof(*b->row)) != 0)
        return -1;
    size_t off = b->rows.len;
    rows_encode_reading(&b->rows, r, b->modern, now_s);
    if (buf_failed(&b->rows))
        return -1;
    b->row[b->nrows].off = off;
    b->row[b->nrows].msg = msg;
    b->row[b->nrows].item = item;
    b->row[b->nrows].ts_ms = r->ts_ms;
    b->nrows++;
    return 0;
}

int batch_add_encoded(struct batch *b, uint32_t msg, uint32_t item, struct batch_key k, const char *row,
                      size_t len, int64_t ts_ms)
{
    k.device_hash |= 1u;
    int dup = key_insert(b, k);
    if (dup < 0)
        return -1;
    if (dup) {
        b->duplicates++;
        return 1;
    }
    if (grow((void **)&b->row, &b->row_cap, b->nrows + 1, sizeof(*b->row)) != 0)
        return -1;
    size_t off = b->rows.len;
    buf_append(&b->rows, row, len);
    if (buf_failed(&b->rows))
        return -1;
    b->row[b->nrows].off = off;
    b->row[b->nrows].msg = msg;
    b->row[b->nrows].item = item;
    b->row[b->nrows].ts_ms = ts_ms;
    b->nrows++;
    return 0;
}

int batch_add_reject(struct batch *b, const struct relay_reject *rj, int64_t now_s)
{
    rows_encode_rejected(&b->rejects, rj, now_s);
    if (buf_failed(&b->rejects))
        return -1;
    b->nrejects++;
    return 0;
}

int batch_due(const struct batch *b, const struct batch_limits *l, int64_t now_mono_ms)
{
    if (batch_empty(b))
        return 0;
    if (b->nrows >= l->max_rows)
        return 1;
    if (b->rows.len + b->rejects.len >= l->max_bytes)
        return 1;
    return now_mono_ms - b->opened_ms >= l->max_delay_ms;
}

size_t batch_row_len(const struct batch *b, size_t i)
{
    size_t end = i + 1 < b->nrows ? b->row[i + 1].off : b->rows.len;
    return end - b->row[i].off;
}
