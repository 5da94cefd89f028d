/* fakeclock.c - an LD_PRELOAD shim that sets a process's wall clock back, so
 * the chaos scenario can play "clock not yet synchronised" and then "NTP
 * stepped the clock" on one agent without touching the host's clock.
 *
 * TERN_FAKECLOCK_FILE names a file holding an offset in seconds (e.g.
 * -63072000 for two years back). CLOCK_REALTIME (clock_gettime,
 * gettimeofday, time) is shifted by it; removing the file or writing 0 is
 * the synchronisation step. The file is re-read at most every 100 ms of
 * monotonic time. Other clocks are untouched, as on a real unsynchronised
 * board (CLOCK_MONOTONIC and CLOCK_BOOTTIME run normally). */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime(void)
{
    static _Atomic(clock_gettime_fn) fn;
    clock_gettime_fn f = atomic_load(&fn);
    if (!f) {
        f = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
        atomic_store(&fn, f);
    }
    return f;
}

/* Offset in seconds, refreshed from the file at most every 100 ms. Races
 * between threads only re-read the file twice; the value is one atomic. */
static int64_t offset_s(void)
{
    static _Atomic int64_t offset;
    static _Atomic int64_t next_check_ms;
    struct timespec now;
    if (real_clock_gettime()(CLOCK_MONOTONIC, &now) != 0)
        return atomic_load(&offset);
    int64_t ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (ms >= atomic_load(&next_check_ms)) {
        atomic_store(&next_check_ms, ms + 100);
        const char *path = getenv("TERN_FAKECLOCK_FILE");
        long long v = 0;
        FILE *f = path ? fopen(path, "r") : NULL;
        if (f) {
            if (fscanf(f, "%lld", &v) != 1)
                v = 0;
            fclose(f);
        }
        atomic_store(&offset, (int64_t)v);
    }
    return atomic_load(&offset);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = real_clock_gettime()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += (time_t)offset_s();
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    /* glibc declares tv nonnull. */
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
