/* sensor.c - see sensor.h: sensors, and the scheduler thread plus worker
 * pool that polls them. */
#include "sensor.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

#define GRACE_MS 10          /* a due read waits at most this for a worker before
                                another one is started */
#define LINGER_MS 30000      /* a spare idle worker exits after this */
#define WORKER_STACK (128 * 1024) /* drivers may use libmodbus, stdio: room to spare */
#define SCHED_STACK (64 * 1024)

struct tern_sensor {
    char name[TERN_ID_MAX];
    char tags[TERN_TAGS_MAX];
    char *signature;              /* config as text, for reload comparisons */
    const struct tern_driver *drv;
    struct tern_kv *opt_items;    /* deep copy: drivers may keep pointers */
    size_t n_opts;
    int64_t interval_ms, retry_max_ms;
    int clock_check;
    tern_readq *q;
    /* Touched only by the worker that holds the sensor (busy), and by
     * tern_sensor_free once it is off the schedule. */
    void *state;                  /* driver state; NULL until opened */
    struct tern_backoff bo;

    /* Schedule, guarded by pool->mu. */
    tern_sensor_pool *pool;
    struct tern_sensor *prev, *next; /* the pool's sensors */
    struct tern_sensor *run_next;    /* the pool's run queue */
    int64_t due_ms;               /* next read, monotonic clock */
    int64_t queued_ms;            /* when it joined the run queue */
    int linked, queued, busy, stopping;
    int detached;                 /* a stop timed out during this read: drop its results */
    int orphan;                   /* abandoned mid-read: its worker frees it */

    pthread_mutex_t mu;           /* guards st */
    struct tern_sensor_stats st;
};

struct worker {
    tern_sensor_pool *pool;
    pthread_t thread;
    struct worker *next;
    int done; /* returned from its loop: join it (guarded by pool->mu) */
};

struct tern_sensor_pool {
    pthread_mutex_t mu;
    pthread_cond_t sched_cv;  /* scheduler: a sensor was added or is due sooner */
    pthread_cond_t work_cv;   /* idle workers: the run queue has work */
    pthread_cond_t done_cv;   /* a read finished (tern_sensor_stop waits) */
    pthread_t sched;
    int sched_started;
    int shutdown;
    tern_sensor *sensors;     /* scheduled sensors */
    size_t n_sensors;
    tern_sensor *run_head, *run_tail; /* due, waiting for a worker (FIFO) */
    struct worker *workers;   /* alive or done-but-not-joined */
    size_t n_workers, n_idle, high_water;
    int64_t sched_wake_ms;    /* when the waiting scheduler wakes by itself */
    int spawn_failed;         /* logged once until a spawn works again */
    size_t n_orphans;         /* abandoned sensors still inside a read */
};

/* Waits on cv until signalled or until the monotonic deadline (ms;
 * INT64_MAX = no deadline). cv must use CLOCK_MONOTONIC. */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    if (deadline_ms == INT64_MAX) {
        pthread_cond_wait(cv, mu);
        return;
    }
    if (deadline_ms < 0)
        deadline_ms = 0;
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(cv, mu, &ts);
}

static void init_mono_cond(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static char *make_signature(const struct tern_sensor_cfg *cfg)
{
    size_t cap = 512 + TERN_TAGS_MAX;
    for (size_t i = 0; i < cfg->opts.n; i++)
        cap += strlen(cfg->opts.items[i].key) + strlen(cfg->opts.items[i].value) + 2;
    char *sig = tern_malloc(cap);
    if (!sig)
        return NULL;
    size_t len = (size_t)snprintf(sig, cap, "%s\n%lld\n%lld\n%s\n", cfg->c.driver,
                                  (long long)cfg->c.interval_ms, (long long)cfg->c.retry_max_ms,
                                  cfg->tags_json);
    for (size_t i = 0; i < cfg->opts.n && len < cap; i++)
        len += (size_t)snprintf(sig + len, cap - len, "%s=%s\n", cfg->opts.items[i].key,
                                cfg->opts.items[i].value);
    return sig;
}

int tern_sensor_matches(const tern_sensor *s, const struct tern_sensor_cfg *cfg)
{
    char *sig = make_signature(cfg);
    int same = sig && strcmp(sig, s->signature) == 0;
    tern_free(sig);
    return same;
}

static int64_t build_date_ms(void)
{
    /* __DATE__ is "Mmm dd yyyy": readings stamped before the day this binary
     * was built were certainly taken with a clock that was never set. */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *d = __DATE__;
    struct tm tm = {0};
    const char *m = strstr(months, (char[4]){d[0], d[1], d[2], 0});
    tm.tm_mon = m ? (int)(m - months) / 3 : 0;
    tm.tm_mday = atoi(d + 4);
    tm.tm_year = atoi(d + 7) - 1900;
    return (int64_t)timegm(&tm) * 1000;
}

int tern_clock_unsynced(int mode)
{
    static int64_t built;
    if (mode == TERN_CLOCK_OFF)
        return 0;
    if (!built)
        built = build_date_ms();
    if (tern_utc_ms() < built)
        return 1;
    if (mode == TERN_CLOCK_ADJTIMEX) {
        struct timex tx = {0};
        int rc = adjtimex(&tx);
        if (rc == TIME_ERROR || (tx.status & STA_UNSYNC))
            return 1;
    }
    return 0;
}

/* Waits until the monotonic deadline or a stop request. Returns 1 on stop. */
static void record_failure(tern_sensor *s, const char *what, const char *why)
{
    pthread_mutex_lock(&s->mu);
    int was_healthy = s->st.healthy || s->st.reads_failed == 0;
    s->st.healthy = 0;
    s->st.reads_failed++;
    snprintf(s->st.last_error, sizeof s->st.last_error, "%s: %s", what, why);
    pthread_mutex_unlock(&s->mu);
    /* Log the transition, not every retry, so a dead sensor cannot flood logs. */
    if (was_healthy)
        TERN_WARN("sensor %s: %s failed: %s (retrying with backoff)", s->name, what, why);
    else
        TERN_DEBUG("sensor %s: %s failed again: %s", s->name, what, why);
}

/* One open-if-needed and read of s, on a worker, outside the pool lock.
 * m and items are the worker's scratch space. Returns when s is due next. */
static int64_t sensor_run(tern_sensor *s, struct tern_metric *m, struct tern_readq_item *items)
{
    char err[256];
    if (!s->state) {
        struct tern_kv_list l = {.items = s->opt_items, .n = s->n_opts};
        err[0] = '\0';
        if (s->drv->open(&l, &s->state, err, sizeof err) < 0) {
            s->state = NULL;
            record_failure(s, "open", err[0] ? err : "unknown error");
            return tern_mono_ms() + tern_backoff_next(&s->bo);
        }
        char desc[256] = "";
        if (s->drv->describe)
            s->drv->describe(s->state, desc, sizeof desc);
        TERN_INFO("sensor %s: opened driver %s%s%s, every %lld ms", s->name, s->drv->name,
                  desc[0] ? ": " : "", desc, (long long)s->interval_ms);
    }
    size_t n = 0;
    err[0] = '\0';
    int rc = s->drv->read(s->state, m, TERN_METRICS_MAX, &n, err, sizeof err);
    int64_t ts = tern_utc_ms();
    int64_t now = tern_mono_ms();
    if (rc != TERN_READ_OK) {
        record_failure(s, "read", err[0] ? err : "unknown error");
        /* Retry no sooner than the next interval, later while it keeps failing. */
        int64_t delay = tern_backoff_next(&s->bo);
        return now + (delay > s->interval_ms ? delay : s->interval_ms);
    }
    tern_backoff_reset(&s->bo);
    uint32_t flags = tern_clock_unsynced(s->clock_check) ? TERN_READING_CLOCK_UNSYNCED : 0;
    size_t k = 0;
    for (size_t i = 0; i < n && i < TERN_METRICS_MAX; i++) {
        items[k] = (struct tern_readq_item){.sensor = s, .m = m[i], .ts_ms = ts, .flags = flags};
        k++;
    }
    /* Pushed under the pool lock, and not once a stop gave up waiting for
     * this read (detached): from then on no new item may point at s, so its
     * owner can drain the readq and abandon it. */
    int pushed = 0;
    pthread_mutex_lock(&s->pool->mu);
    int detached = s->detached;
    if (k && !detached)
        pushed = tern_readq_push(s->q, items, k);
    pthread_mutex_unlock(&s->pool->mu);
    if (detached)
        return now; /* nobody is waiting for these any more */
    pthread_mutex_lock(&s->mu);
    int recovered = !s->st.healthy && s->st.reads_failed > 0;
    s->st.healthy = 1;
    s->st.reads_ok++;
    s->st.last_ok_mono_ms = now;
    if (pushed == 0)
        s->st.metrics += k;
    else
        s->st.dropped += k;
    pthread_mutex_unlock(&s->mu);
    if (recovered)
        TERN_INFO("sensor %s: reading again", s->name);
    /* Fixed-rate schedule; after an overrun skip the missed slots rather
     * than bursting to catch up. due_ms is ours while the sensor is busy. */
    int64_t next = s->due_ms + s->interval_ms;
    if (next <= now)
        next = now + s->interval_ms - (now - next) % s->interval_ms;
    return next;
}

static void enqueue_locked(tern_sensor_pool *p, tern_sensor *s, int64_t now)
{
    s->queued = 1;
    s->queued_ms = now;
    s->run_next = NULL;
    if (p->run_tail)
        p->run_tail->run_next = s;
    else
        p->run_head = s;
    p->run_tail = s;
}

static void dequeue_locked(tern_sensor_pool *p, tern_sensor *s)
{
    tern_sensor *prev = NULL;
    for (tern_sensor *it = p->run_head; it; prev = it, it = it->run_next) {
        if (it != s)
            continue;
        if (prev)
            prev->run_next = s->run_next;
        else
            p->run_head = s->run_next;
        if (p->run_tail == s)
            p->run_tail = prev;
        break;
    }
    s->run_next = NULL;
    s->queued = 0;
}

static void free_sensor(tern_sensor *s);

static void unlink_locked(tern_sensor_pool *p, tern_sensor *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        p->sensors = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    p->n_sensors--;
    s->linked = 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    tern_sensor_pool *p = w->pool;
    /* Scratch for one read: ~6 KiB, on this thread's stack. */
    struct tern_metric m[TERN_METRICS_MAX];
    struct tern_readq_item items[TERN_METRICS_MAX];
    pthread_mutex_lock(&p->mu);
    int64_t idle_since = tern_mono_ms();
    for (;;) {
        tern_sensor *s = p->run_head;
        if (s) {
            dequeue_locked(p, s);
            s->busy = 1;
            p->n_idle--;
            /* Work left and nobody idle to take it: make sure the scheduler
             * looks again within the grace, in case this read blocks. */
            if (p->run_head && p->n_idle == 0 && p->sched_wake_ms > p->run_head->queued_ms + GRACE_MS)
                pthread_cond_signal(&p->sched_cv);
            pthread_mutex_unlock(&p->mu);
            int64_t due = sensor_run(s, m, items);
            pthread_mutex_lock(&p->mu);
            s->due_ms = due;
            s->busy = 0;
            p->n_idle++;
            if (s->orphan) {
                /* Its owner gave up waiting for this read (see
                 * tern_sensor_abandon): the sensor is ours to free. */
                unlink_locked(p, s);
                p->n_orphans--;
                pthread_mutex_unlock(&p->mu);
                free_sensor(s);
                pthread_mutex_lock(&p->mu);
            } else if (s->stopping) {
                pthread_cond_broadcast(&p->done_cv);
            } else if (due < p->sched_wake_ms) {
                pthread_cond_signal(&p->sched_cv);
            }
            idle_since = tern_mono_ms();
            continue;
        }
        if (p->shutdown)
            break;
        /* Keep one idle worker ready; spares left over from a burst of slow
         * reads go away once they have been idle for a while. */
        if (p->n_idle > 1 && tern_mono_ms() - idle_since >= LINGER_MS)
            break;
        wait_until(&p->work_cv, &p->mu, idle_since + LINGER_MS);
    }
    p->n_workers--;
    p->n_idle--;
    w->done = 1; /* from here on never touches the pool: safe to join */
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts one worker; it inherits the scheduler's signal mask. Returns 0 or
 * -1 (out of memory or threads). */
static int spawn_locked(tern_sensor_pool *p)
{
    struct worker *w = tern_calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->pool = p;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    int rc = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        if (!p->spawn_failed)
            TERN_WARN("sensors: cannot start another worker thread: %s (due reads wait)", strerror(rc));
        p->spawn_failed = 1;
        tern_free(w);
        return -1;
    }
    p->spawn_failed = 0;
    w->next = p->workers;
    p->workers = w;
    p->n_workers++;
    p->n_idle++; /* counts as idle from now: it takes work as soon as it runs */
    if (p->n_workers > p->high_water)
        p->high_water = p->n_workers;
    return 0;
}

/* Joins workers that have left their loop. They no longer take the lock, so
 * joining under it cannot deadlock. */
static void reap_locked(tern_sensor_pool *p)
{
    struct worker **pp = &p->workers;
    while (*pp) {
        struct worker *w = *pp;
        if (!w->done) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        pthread_join(w->thread, NULL);
        tern_free(w);
    }
}

static void *sched_main(void *arg)
{
    tern_sensor_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->shutdown) {
        reap_locked(p);
        int64_t now = tern_mono_ms();
        int64_t wake = INT64_MAX;
        size_t queued = 0;
        for (tern_sensor *s = p->sensors; s; s = s->next) {
            if (s->queued || s->busy || s->stopping)
                continue;
            if (s->due_ms <= now) {
                enqueue_locked(p, s, now);
                queued++;
            } else if (s->due_ms < wake) {
                wake = s->due_ms;
            }
        }
        if (p->run_head) {
            if (p->n_idle > 0) {
                if (queued > 1 && p->n_idle > 1)
                    pthread_cond_broadcast(&p->work_cv);
                else
                    pthread_cond_signal(&p->work_cv);
            } else if ((p->n_workers == 0 || now - p->run_head->queued_ms >= GRACE_MS) &&
                       p->n_workers < p->n_sensors) {
                /* Every worker is inside a read (maybe a slow one): the
                 * queued sensors get a thread of their own rather than wait. */
                spawn_locked(p);
            }
            if (p->n_idle == 0) {
                int64_t g = p->run_head->queued_ms + GRACE_MS;
                if (g <= now)
                    g = now + GRACE_MS;
                if (g < wake)
                    wake = g;
            }
        }
        p->sched_wake_ms = wake;
        wait_until(&p->sched_cv, &p->mu, wake);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

tern_sensor_pool *tern_sensor_pool_new(char *err, size_t errcap)
{
    tern_sensor_pool *p = tern_calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errcap, "sensors: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    init_mono_cond(&p->sched_cv);
    init_mono_cond(&p->work_cv);
    init_mono_cond(&p->done_cv);
    p->sched_wake_ms = INT64_MAX;
    /* The scheduler and the workers it starts must not take the process
     * signals: the main loop does. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SCHED_STACK);
    int rc = pthread_create(&p->sched, &attr, sched_main, p);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errcap, "sensors: cannot start the scheduler thread: %s", strerror(rc));
        tern_sensor_pool_free(p);
        return NULL;
    }
    p->sched_started = 1;
    return p;
}

void tern_sensor_pool_free(tern_sensor_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->sched_cv);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    if (p->sched_started)
        pthread_join(p->sched, NULL);
    pthread_mutex_lock(&p->mu);
    size_t orphans = p->n_orphans;
    pthread_mutex_unlock(&p->mu);
    if (orphans) {
        /* A worker is stuck in an abandoned read and may never return (a
         * hung bus): joining it would make shutdown unbounded. Its pool and
         * sensor stay allocated for it; the process is exiting anyway. */
        TERN_WARN("sensors: %zu read(s) still hanging at exit; not waiting for them", orphans);
        return;
    }
    /* No scheduler, so no new workers; the rest leave their loop now. */
    struct worker *w = p->workers;
    p->workers = NULL;
    while (w) {
        struct worker *next = w->next;
        pthread_join(w->thread, NULL);
        tern_free(w);
        w = next;
    }
    pthread_cond_destroy(&p->sched_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    tern_free(p);
}

void tern_sensor_pool_get_stats(tern_sensor_pool *p, struct tern_sensor_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->sensors = p->n_sensors;
    out->workers = p->n_workers;
    out->busy = p->n_workers - p->n_idle;
    out->workers_high_water = p->high_water;
    pthread_mutex_unlock(&p->mu);
}

tern_sensor *tern_sensor_start(tern_sensor_pool *p, const struct tern_sensor_cfg *cfg,
                               tern_readq *q, int clock_check, char *err, size_t errcap)
{
    tern_sensor *s = tern_calloc(1, sizeof *s);
    if (!s)
        goto oom;
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->name, sizeof s->name, "%s", cfg->name);
    snprintf(s->tags, sizeof s->tags, "%s", cfg->tags_json);
    s->drv = cfg->driver;
    s->interval_ms = cfg->c.interval_ms;
    s->retry_max_ms = cfg->c.retry_max_ms;
    s->clock_check = clock_check;
    s->q = q;
    tern_backoff_init(&s->bo, s->interval_ms,
                      s->retry_max_ms > s->interval_ms ? s->retry_max_ms : s->interval_ms);
    s->signature = make_signature(cfg);
    if (!s->signature)
        goto oom;
    if (cfg->opts.n) {
        s->opt_items = tern_calloc(cfg->opts.n, sizeof *s->opt_items);
        if (!s->opt_items)
            goto oom;
    }
    for (size_t i = 0; i < cfg->opts.n; i++) {
        s->opt_items[i].key = tern_strdup(cfg->opts.items[i].key);
        s->opt_items[i].value = tern_strdup(cfg->opts.items[i].value);
        s->opt_items[i].line = cfg->opts.items[i].line;
        s->n_opts = i + 1;
        if (!s->opt_items[i].key || !s->opt_items[i].value)
            goto oom;
    }
    s->pool = p;
    pthread_mutex_lock(&p->mu);
    s->due_ms = tern_mono_ms();
    s->next = p->sensors;
    if (p->sensors)
        p->sensors->prev = s;
    p->sensors = s;
    p->n_sensors++;
    s->linked = 1;
    pthread_cond_signal(&p->sched_cv);
    pthread_mutex_unlock(&p->mu);
    return s;
oom:
    snprintf(err, errcap, "sensor %s: out of memory", cfg->name);
    tern_sensor_free(s);
    return NULL;
}

int tern_sensor_stop_until(tern_sensor *s, int64_t deadline_ms)
{
    if (!s || !s->pool)
        return 0;
    tern_sensor_pool *p = s->pool;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (s->linked && !s->orphan) {
        s->stopping = 1; /* the scheduler no longer queues it, its worker no longer pushes */
        if (s->queued)
            dequeue_locked(p, s);
        while (s->busy && tern_mono_ms() < deadline_ms)
            wait_until(&p->done_cv, &p->mu, deadline_ms);
        if (s->busy) {
            s->detached = 1;
            rc = -1;
        } else {
            unlink_locked(p, s);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void tern_sensor_stop(tern_sensor *s) { tern_sensor_stop_until(s, INT64_MAX); }

void tern_sensor_abandon(tern_sensor *s)
{
    if (!s)
        return;
    tern_sensor_pool *p = s->pool;
    if (p) {
        pthread_mutex_lock(&p->mu);
        if (s->linked && s->busy) {
            s->orphan = 1;
            p->n_orphans++;
            pthread_mutex_unlock(&p->mu);
            return; /* its worker frees it when the read returns */
        }
        if (s->linked)
            unlink_locked(p, s); /* the read finished meanwhile */
        pthread_mutex_unlock(&p->mu);
    }
    free_sensor(s);
}

void tern_sensor_free(tern_sensor *s)
{
    if (!s)
        return;
    tern_sensor_stop(s);
    free_sensor(s);
}

/* Closes the driver and frees s, which is off the schedule. */
static void free_sensor(tern_sensor *s)
{
    if (s->state)
        s->drv->close(s->state);
    for (size_t i = 0; i < s->n_opts; i++) {
        tern_free((char *)s->opt_items[i].key);
        tern_free((char *)s->opt_items[i].value);
    }
    tern_free(s->opt_items);
    tern_free(s->signature);
    pthread_mutex_destroy(&s->mu);
    tern_free(s);
}

const char *tern_sensor_name(const tern_sensor *s) { return s->name; }
const char *tern_sensor_tags(const tern_sensor *s) { return s->tags; }

void tern_sensor_get_stats(tern_sensor *s, struct tern_sensor_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}
