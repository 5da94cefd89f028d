/* bisect.c - see bisect.h. */
#include "bisect.h"

#include <stdio.h>

static int resolve(size_t lo, size_t hi, const char *reason, bisect_insert_fn insert,
                   bisect_reject_fn reject, void *user, size_t *requests)
{
    if (hi - lo == 1)
        return reject(user, lo, reason);
    size_t mid = lo + (hi - lo) / 2;
    size_t bounds[2][2] = {{lo, mid}, {mid, hi}};
    for (int h = 0; h < 2; h++) {
        char why[512];
        why[0] = '\0';
        (*requests)++;
        int rc = insert(user, bounds[h][0], bounds[h][1], why, sizeof(why));
        if (rc == BISECT_TRANSIENT)
            return -1;
        if (rc == BISECT_CONTENT &&
            resolve(bounds[h][0], bounds[h][1], why, insert, reject, user, requests) != 0)
            return -1;
    }
    return 0;
}

int bisect_resolve(size_t lo, size_t hi, const char *first_reason, bisect_insert_fn insert,
                   bisect_reject_fn reject, void *user, size_t *requests)
{
    *requests = 0;
    if (hi <= lo)
        return 0;
    return resolve(lo, hi, first_reason, insert, reject, user, requests);
}
