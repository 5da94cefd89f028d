/* clock.c - see clock.h. */
#include "clock.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int64_t tern_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tern_utc_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tern_sleep_ms(int64_t ms, volatile int *stop)
{
    int64_t end = tern_mono_ms() + ms;
    for (;;) {
        int64_t left = end - tern_mono_ms();
        if (left <= 0 || (stop && *stop))
            return;
        /* Sleep in slices so a stop flag set by a signal handler is seen soon. */
        if (left > 100)
            left = 100;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

void tern_backoff_init(struct tern_backoff *b, int64_t base_ms, int64_t cap_ms)
{
    b->base_ms = base_ms > 0 ? base_ms : 1;
    b->cap_ms = cap_ms > b->base_ms ? cap_ms : b->base_ms;
    b->attempt = 0;
    b->seed = (unsigned int)(tern_mono_ms() ^ ((int64_t)getpid() << 16));
}

int64_t tern_backoff_next(struct tern_backoff *b)
{
    int64_t ceil = b->base_ms;
    for (unsigned i = 0; i < b->attempt && ceil < b->cap_ms; i++)
        ceil *= 2;
    if (ceil > b->cap_ms)
        ceil = b->cap_ms;
    if (b->attempt < 63)
        b->attempt++;
    return (int64_t)(rand_r(&b->seed) % (ceil + 1));
}

void tern_backoff_reset(struct tern_backoff *b) { b->attempt = 0; }
