/* ackset.c - per-uplink acknowledged set (see ackset.h). The range list is a
 * small sorted array: acks arrive per batch, so it holds a handful of
 * entries, and insertion by memmove beats anything cleverer at that size. */
#include "ackset.h"

#include <string.h>

#include "alloc.h"

void ackset_init(struct ackset *a, int64_t cursor)
{
    memset(a, 0, sizeof *a);
    a->cursor = cursor;
}

void ackset_free(struct ackset *a)
{
    tern_free(a->r);
    a->r = NULL;
    a->n = a->cap = 0;
}

/* Folds ranges that reach the cursor into it and drops those below it. */
static void absorb(struct ackset *a)
{
    size_t k = 0;
    while (k < a->n && a->r[k].first <= a->cursor + 1) {
        if (a->r[k].last > a->cursor)
            a->cursor = a->r[k].last;
        k++;
    }
    if (k > 0) {
        memmove(a->r, a->r + k, (a->n - k) * sizeof a->r[0]);
        a->n -= k;
    }
}

int ackset_add(struct ackset *a, int64_t first, int64_t last)
{
    if (last <= a->cursor)
        return 0;
    if (first <= a->cursor + 1) {
        a->cursor = last;
        absorb(a);
        return 0;
    }
    /* i: first range that overlaps or touches [first, last] or lies after it. */
    size_t i = 0;
    while (i < a->n && a->r[i].last + 1 < first)
        i++;
    size_t j = i;
    int64_t nf = first, nl = last;
    while (j < a->n && a->r[j].first <= nl + 1) {
        if (a->r[j].first < nf)
            nf = a->r[j].first;
        if (a->r[j].last > nl)
            nl = a->r[j].last;
        j++;
    }
    if (j == i) { /* disjoint: insert at i */
        if (a->n >= ACKSET_MAX_RANGES)
            return -1;
        if (a->n == a->cap) {
            size_t ncap = a->cap ? a->cap * 2 : 8;
            struct ack_range *nr = tern_realloc(a->r, ncap * sizeof *nr);
            if (!nr)
                return -1;
            a->r = nr;
            a->cap = ncap;
        }
        memmove(a->r + i + 1, a->r + i, (a->n - i) * sizeof a->r[0]);
        a->n++;
    } else if (j > i + 1) { /* merged several: keep slot i, close the gap */
        memmove(a->r + i + 1, a->r + j, (a->n - j) * sizeof a->r[0]);
        a->n -= j - i - 1;
    }
    a->r[i].first = nf;
    a->r[i].last = nl;
    return 0;
}

void ackset_raise(struct ackset *a, int64_t seq)
{
    if (seq > a->cursor)
        a->cursor = seq;
    absorb(a);
}

int64_t ackset_covering(const struct ackset *a, int64_t seq)
{
    if (seq <= a->cursor)
        return a->cursor;
    for (size_t k = 0; k < a->n && a->r[k].first <= seq; k++)
        if (seq <= a->r[k].last)
            return a->r[k].last;
    return 0;
}
