/* readq.c - see readq.h. A mutex-protected ring: pushes are a few per
 * sensor interval, so a lock-free design would buy nothing measurable. */
#include "readq.h"

#include <pthread.h>
#include <string.h>

#include "alloc.h"

struct tern_readq {
    pthread_mutex_t mu;
    struct tern_readq_item *ring;
    size_t cap, head, len, high_water;
    uint64_t dropped, pushed;
};

tern_readq *tern_readq_new(size_t cap)
{
    tern_readq *q = tern_calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->ring = tern_calloc(cap ? cap : 1, sizeof *q->ring);
    if (!q->ring) {
        tern_free(q);
        return NULL;
    }
    q->cap = cap ? cap : 1;
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

void tern_readq_free(tern_readq *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    tern_free(q->ring);
    tern_free(q);
}

int tern_readq_push(tern_readq *q, const struct tern_readq_item *items, size_t n)
{
    pthread_mutex_lock(&q->mu);
    if (q->cap - q->len < n) {
        q->dropped += n;
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        q->ring[(q->head + q->len + i) % q->cap] = items[i];
    q->len += n;
    q->pushed += n;
    if (q->len > q->high_water)
        q->high_water = q->len;
    pthread_mutex_unlock(&q->mu);
    return 0;
}

size_t tern_readq_pop(tern_readq *q, struct tern_readq_item *out, size_t max)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len < max ? q->len : max;
    for (size_t i = 0; i < n; i++)
        out[i] = q->ring[(q->head + i) % q->cap];
    q->head = (q->head + n) % q->cap;
    q->len -= n;
    /* Emptied (the usual case: the main thread drains it every loop): start
     * over at slot 0, so only as much of the ring as the deepest backlog is
     * ever touched and resident, not the whole ring as head goes round. */
    if (q->len == 0)
        q->head = 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

#define GETTER(type, name, expr)                                                                   \
    type name(tern_readq *q)                                                                       \
    {                                                                                              \
        pthread_mutex_lock(&q->mu);                                                                \
        type v = (expr);                                                                           \
        pthread_mutex_unlock(&q->mu);                                                              \
        return v;                                                                                  \
    }
GETTER(size_t, tern_readq_depth, q->len)
GETTER(uint64_t, tern_readq_dropped, q->dropped)
GETTER(uint64_t, tern_readq_pushed, q->pushed)
GETTER(size_t, tern_readq_high_water, q->high_water)

size_t tern_readq_cap(const tern_readq *q) { return q->cap; }
