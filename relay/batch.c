/* batch.c - see batch.h. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void batch_init(struct batch *b, int modern, int binary)
{
    memset(b, 0, sizeof(*b));
    b->modern = modern;
    b->binary = binary;
}

void batch_free(struct batch *b)
{
    buf_free(&b->rows);
    buf_free(&b->rejects);
    tern_free(b->row);
    tern_free(b->msgs);
    tern_free(b->marks);
    tern_free(b->keys);
    tern_free(b->streams);
    tern_free(b->stream_info);
    tern_free(b->words);
    buf_free(&b->spare);
    tern_free(b->spare_row);
    tern_free(b->sort_keys);
    memset(b, 0, sizeof(*b));
}

void batch_clear(struct batch *b)
{
    buf_reset(&b->rows);
    buf_reset(&b->rejects);
    b->nrows = b->nrejects = b->nmsgs = b->nmarks = 0;
    if (b->keys && b->nkeys)
        memset(b->keys, 0, b->key_cap * sizeof(*b->keys));
    b->nkeys = 0;
    if (b->streams && b->nstreams)
        memset(b->streams, 0, b->stream_cap * sizeof(*b->streams));
    b->nstreams = 0;
    b->nwords = 0;
    b->nencoded = 0;
    b->sorted = 0;
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
    if ((b->nkeys + 1) * 2 > b->key_cap) {
        size_t ncap = b->key_cap ? b->key_cap * 2 : 1024;
        while ((b->nkeys + 1) * 2 > ncap)
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
    b->nkeys++;
    return 0;
}

static size_t stream_slot(const struct batch_stream *t, size_t cap, uint64_t epoch, uint64_t device_hash)
{
    size_t j = mix(epoch ^ device_hash) & (cap - 1);
    while (t[j].device_hash && (t[j].epoch != epoch || t[j].device_hash != device_hash))
        j = (j + 1) & (cap - 1);
    return j;
}

/* The stream of (epoch, device_hash), added if new; NULL when out of memory. */
static struct batch_stream *stream_get(struct batch *b, uint64_t epoch, uint64_t device_hash, const char *device_id)
{
    if (grow((void **)&b->stream_info, &b->stream_info_cap, b->nstreams + 1, sizeof(*b->stream_info)) != 0)
        return NULL;
    if ((b->nstreams + 1) * 2 > b->stream_cap) {
        size_t ncap = b->stream_cap ? b->stream_cap * 2 : 256;
        struct batch_stream *nt = tern_calloc(ncap, sizeof(*nt));
        if (!nt)
            return NULL;
        for (size_t i = 0; i < b->stream_cap; i++) {
            if (b->streams[i].device_hash)
                nt[stream_slot(nt, ncap, b->streams[i].epoch, b->streams[i].device_hash)] = b->streams[i];
        }
        tern_free(b->streams);
        b->streams = nt;
        b->stream_cap = ncap;
    }
    struct batch_stream *st = &b->streams[stream_slot(b->streams, b->stream_cap, epoch, device_hash)];
    if (!st->device_hash) {
        st->epoch = epoch;
        st->device_hash = device_hash;
        st->id = (uint32_t)b->nstreams;
        b->stream_info[st->id].epoch = epoch;
        memcpy(b->stream_info[st->id].device_id, device_id, strlen(device_id) + 1);
        b->nstreams++;
    }
    return st;
}

/* Moves a stream's identities to the key set. Returns 0 or -1. */
static int stream_to_keys(struct batch *b, struct batch_stream *st)
{
    for (uint32_t w = 0; w < st->nwords; w++) {
        for (uint64_t bits = b->words[st->word + w]; bits; bits &= bits - 1) {
            struct batch_key k = {st->epoch, st->base + 64 * (int64_t)w + __builtin_ctzll(bits), st->device_hash};
            if (key_insert(b, k) < 0)
                return -1;
        }
    }
    st->sparse = 1;
    st->nwords = 0;
    return 0;
}

/* A window may always grow to STREAM_WORDS_FREE words (64k seqs, 8 KiB)
 * while the batch's windows stay within BATCH_WORDS_BUDGET (1 MiB); beyond
 * that only while it stays denser than one seq in 32 present. */
#define STREAM_WORDS_FREE 1024u
#define BATCH_WORDS_BUDGET 131072u

/* Makes the window of st cover seq (0 <= seq), doubling it towards seq;
 * when that would exceed the limits above, the stream goes to the key set
 * instead. A device's readings spread over several partitions (a topic not
 * keyed by device) arrive thousands of seqs apart from the start of a batch,
 * when its count is still small: with the density rule alone such streams
 * went to the key set at once, and key_insert was an eighth of the relay's
 * CPU. Old windows stay in words until the batch is cleared (at most as much
 * again). Returns 0 or -1 out of memory. */
static int stream_cover(struct batch *b, struct batch_stream *st, int64_t seq)
{
    int64_t a = seq & ~INT64_C(63), lo, hi;
    if (st->nwords == 0) {
        lo = a;
        hi = a + 4 * 64;
    } else {
        int64_t span = 64 * (int64_t)st->nwords, end = st->base + span;
        lo = st->base;
        hi = end;
        if (a < lo)
            lo = a < lo - span ? a : (lo - span < 0 ? 0 : lo - span);
        if (a >= hi)
            hi = a + 64 > end + span ? a + 64 : end + span;
    }
    uint64_t n = (uint64_t)(hi - lo) / 64;
    if (n > 8 + st->count / 2 && (n > STREAM_WORDS_FREE || b->nwords + n > BATCH_WORDS_BUDGET))
        return stream_to_keys(b, st);
    if (grow((void **)&b->words, &b->word_cap, b->nwords + n, sizeof(*b->words)) != 0)
        return -1;
    uint64_t *w = b->words + b->nwords;
    memset(w, 0, n * sizeof(*w));
    if (st->nwords)
        memcpy(w + (st->base - lo) / 64, b->words + st->word, st->nwords * sizeof(*w));
    st->word = b->nwords;
    st->nwords = (uint32_t)n;
    st->base = lo;
    b->nwords += n;
    return 0;
}

/* Records (device_hash, epoch, seq) of a reading of device_id. Returns 1 when
 * it was already there, 0 when added (*stream = its stream's id), -1 out of
 * memory. */
static int identity_insert(struct batch *b, uint64_t epoch, int64_t seq, uint64_t device_hash, const char *device_id,
                           uint32_t *stream)
{
    struct batch_stream *st = stream_get(b, epoch, device_hash, device_id);
    if (!st)
        return -1;
    *stream = st->id;
    if (!st->sparse && seq >= 0 && (seq < st->base || seq >= st->base + 64 * (int64_t)st->nwords || !st->nwords)) {
        if (stream_cover(b, st, seq) != 0)
            return -1;
    }
    if (st->sparse || seq < 0) {
        int rc = key_insert(b, (struct batch_key){epoch, seq, device_hash});
        st->count += rc == 0;
        return rc;
    }
    uint64_t off = (uint64_t)(seq - st->base);
    uint64_t *w = &b->words[st->word + off / 64], m = UINT64_C(1) << (off % 64);
    if (*w & m)
        return 1;
    *w |= m;
    st->count++;
    return 0;
}

int batch_add_reading(struct batch *b, uint32_t msg, uint32_t item, const struct tern_reading *r, int64_t now_s)
{
    if (grow((void **)&b->row, &b->row_cap, b->nrows + 1, sizeof(*b->row)) != 0)
        return -1;
    /* Encode first: a reading that cannot be encoded leaves no identity
     * behind; a duplicate's bytes are taken back. */
    size_t off = b->rows.len;
    if (b->binary) {
        if (rows_encode_reading_bin(&b->rows, r, b->modern, now_s) != 0)
            return 2;
    } else {
        rows_encode_reading(&b->rows, r, b->modern, now_s);
    }
    if (buf_failed(&b->rows))
        return -1;
    uint32_t stream = 0;
    int dup = identity_insert(b, r->epoch, r->seq, str_hash(r->device_id) | 1u, r->device_id, &stream);
    if (dup != 0) {
        b->rows.len = off;
        if (dup < 0)
            return -1;
        b->duplicates++;
        return 1;
    }
    b->row[b->nrows].off = off;
    b->row[b->nrows].msg = msg;
    b->row[b->nrows].item = item;
    b->row[b->nrows].ts_ms = r->ts_ms;
    b->row[b->nrows].seq = r->seq;
    b->row[b->nrows].stream = stream;
    b->nrows++;
    b->sorted = 0;
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
    b->row[b->nrows].seq = 0;
    b->row[b->nrows].stream = 0;
    b->nrows++;
    b->nencoded++;
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

int batch_due_early(const struct batch *b, const struct batch_limits *l, int64_t idle_ms, int source_dry)
{
    if (b->nrows < batch_early_rows(l))
        return 0;
    return source_dry || idle_ms < 0 || idle_ms >= l->max_delay_ms;
}

struct batch_sort_key {
    int64_t seq;
    uint32_t row;
};

/* Sorts a[0..n) by seq, tmp having room for n: a natural merge sort. A
 * stream's rows come as a few ascending runs (one per partition its readings
 * were read from), so this takes a pass or two where a general sort would
 * compare every row log n times. */
static void sort_by_seq(struct batch_sort_key *a, struct batch_sort_key *tmp, size_t n)
{
    struct batch_sort_key *src = a, *dst = tmp;
    for (;;) {
        size_t i = 0, out = 0, runs = 0;
        while (i < n) {
            size_t m = i + 1;
            while (m < n && src[m - 1].seq <= src[m].seq)
                m++;
            size_t e = m;
            if (m < n) {
                e = m + 1;
                while (e < n && src[e - 1].seq <= src[e].seq)
                    e++;
            }
            runs++;
            size_t x = i, y = m;
            while (x < m && y < e)
                dst[out++] = src[y].seq < src[x].seq ? src[y++] : src[x++];
            while (x < m)
                dst[out++] = src[x++];
            while (y < e)
                dst[out++] = src[y++];
            i = e;
        }
        struct batch_sort_key *t = src;
        src = dst;
        dst = t;
        if (runs <= 1)
            break;
    }
    if (src != a)
        memcpy(a, src, n * sizeof(*a));
}

/* Streams in the order ClickHouse compares (device_id, epoch): String bytes
 * as unsigned, a prefix first (as strcmp), then the number. */
static _Thread_local const struct batch_stream_info *sort_info;

static int cmp_stream(const void *a, const void *b)
{
    const struct batch_stream_info *x = &sort_info[*(const uint32_t *)a], *y = &sort_info[*(const uint32_t *)b];
    int c = strcmp(x->device_id, y->device_id);
    return c ? c : (x->epoch > y->epoch) - (x->epoch < y->epoch);
}

int batch_sort(struct batch *b)
{
    if (b->sorted || b->nencoded || b->nrows < 2)
        return 0;
    size_t n = b->nrows, ns = b->nstreams;
    /* rank[stream id] = place of the stream in key order; then a counting
     * sort of the rows by stream rank, and each stream's rows by seq (they
     * usually are already: a device's readings arrive in order). */
    uint32_t *ids = tern_malloc((3 * ns + 1) * sizeof(*ids));
    if (!ids || grow((void **)&b->sort_keys, &b->sort_key_cap, 2 * n, sizeof(*b->sort_keys)) != 0 ||
        grow((void **)&b->spare_row, &b->spare_row_cap, n, sizeof(*b->spare_row)) != 0) {
        tern_free(ids);
        return -1;
    }
    uint32_t *rank = ids + ns, *start = ids + 2 * ns;
    for (size_t i = 0; i < ns; i++)
        ids[i] = (uint32_t)i;
    sort_info = b->stream_info;
    qsort(ids, ns, sizeof(*ids), cmp_stream);
    for (size_t i = 0; i < ns; i++)
        rank[ids[i]] = (uint32_t)i;
    memset(start, 0, (ns + 1) * sizeof(*start));
    for (size_t i = 0; i < n; i++)
        start[rank[b->row[i].stream] + 1]++;
    for (size_t r = 0; r < ns; r++)
        start[r + 1] += start[r];
    /* start[r] is now where rank r begins; fill (stable) with a cursor copy. */
    struct batch_sort_key *k = b->sort_keys;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rank[b->row[i].stream];
        k[start[r]].seq = b->row[i].seq;
        k[start[r]].row = (uint32_t)i;
        start[r]++;
    }
    /* start[r] is now where rank r ends (= where r + 1 begins). */
    for (size_t r = 0, lo = 0; r < ns; lo = start[r], r++) {
        size_t hi = start[r];
        for (size_t j = lo + 1; j < hi; j++) {
            if (k[j].seq < k[j - 1].seq) {
                sort_by_seq(k + lo, k + n, hi - lo);
                break;
            }
        }
    }
    tern_free(ids);
    buf_reset(&b->spare);
    char *o = buf_reserve(&b->spare, b->rows.len);
    if (!o)
        return -1;
    for (size_t j = 0; j < n; j++) {
        /* Gathering jumps around the old buffer; ask for rows ahead. */
        if (j + 8 < n) {
            __builtin_prefetch(b->rows.p + b->row[k[j + 8].row].off);
            __builtin_prefetch(&b->row[k[j + 16 < n ? j + 16 : n - 1].row]);
        }
        size_t i = k[j].row, len = batch_row_len(b, i);
        b->spare_row[j] = b->row[i];
        b->spare_row[j].off = (size_t)(o - b->spare.p);
        memcpy(o, b->rows.p + b->row[i].off, len);
        o += len;
    }
    buf_commit(&b->spare, (size_t)(o - b->spare.p));
    struct relay_buf t = b->rows;
    b->rows = b->spare;
    b->spare = t;
    struct batch_row *tr = b->row;
    size_t tc = b->row_cap;
    b->row = b->spare_row;
    b->row_cap = b->spare_row_cap;
    b->spare_row = tr;
    b->spare_row_cap = tc;
    b->sorted = 1;
    return 0;
}

size_t batch_row_len(const struct batch *b, size_t i)
{
    size_t end = i + 1 < b->nrows ? b->row[i + 1].off : b->rows.len;
    return end - b->row[i].off;
}
