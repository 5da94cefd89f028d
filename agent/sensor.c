/* sensor.c - see sensor.h. */
#include "sensor.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

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
    void *state;                  /* driver state; NULL until opened */

    pthread_t thread;
    int started;
    pthread_mutex_t mu;           /* guards stop and the stats */
    pthread_cond_t cv;            /* wakes the thread early on stop */
    int stop;
    struct tern_sensor_stats st;
};

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
static int wait_until(tern_sensor *s, int64_t deadline_ms)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t now = tern_mono_ms();
        if (now >= deadline_ms)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = deadline_ms - now;
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

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

static void *sensor_main(void *arg)
{
    tern_sensor *s = arg;
    struct tern_backoff bo;
    tern_backoff_init(&bo, s->interval_ms, s->retry_max_ms > s->interval_ms ? s->retry_max_ms : s->interval_ms);
    struct tern_metric m[TERN_METRICS_MAX];
    struct tern_readq_item items[TERN_METRICS_MAX];
    char err[256];
    int64_t next = tern_mono_ms();
    for (;;) {
        if (wait_until(s, next))
            break;
        if (!s->state) {
            struct tern_kv_list l = {.items = s->opt_items, .n = s->n_opts};
            err[0] = '\0';
            if (s->drv->open(&l, &s->state, err, sizeof err) < 0) {
                s->state = NULL;
                record_failure(s, "open", err[0] ? err : "unknown error");
                next = tern_mono_ms() + tern_backoff_next(&bo);
                continue;
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
            int64_t delay = tern_backoff_next(&bo);
            next = now + (delay > s->interval_ms ? delay : s->interval_ms);
            continue;
        }
        tern_backoff_reset(&bo);
        uint32_t flags = tern_clock_unsynced(s->clock_check) ? TERN_READING_CLOCK_UNSYNCED : 0;
        size_t k = 0;
        for (size_t i = 0; i < n && i < TERN_METRICS_MAX; i++) {
            items[k] = (struct tern_readq_item){.sensor = s, .m = m[i], .ts_ms = ts, .flags = flags};
            k++;
        }
        int pushed = k ? tern_readq_push(s->q, items, k) : 0;
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
         * than bursting to catch up. */
        next += s->interval_ms;
        if (next <= now)
            next = now + s->interval_ms - (now - next) % s->interval_ms;
    }
    return NULL;
}

tern_sensor *tern_sensor_start(const struct tern_sensor_cfg *cfg, tern_readq *q, int clock_check,
                               char *err, size_t errcap)
{
    tern_sensor *s = tern_calloc(1, sizeof *s);
    if (!s)
        goto oom;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(s->name, sizeof s->name, "%s", cfg->name);
    snprintf(s->tags, sizeof s->tags, "%s", cfg->tags_json);
    s->drv = cfg->driver;
    s->interval_ms = cfg->c.interval_ms;
    s->retry_max_ms = cfg->c.retry_max_ms;
    s->clock_check = clock_check;
    s->q = q;
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
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* Sensor threads do little; a small stack keeps 50 of them cheap. */
    pthread_attr_setstacksize(&attr, 128 * 1024);
    int rc = pthread_create(&s->thread, &attr, sensor_main, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        snprintf(err, errcap, "sensor %s: cannot start thread: %s", cfg->name, strerror(rc));
        tern_sensor_free(s);
        return NULL;
    }
    s->started = 1;
    return s;
oom:
    snprintf(err, errcap, "sensor %s: out of memory", cfg->name);
    tern_sensor_free(s);
    return NULL;
}

void tern_sensor_stop(tern_sensor *s)
{
    if (!s || !s->started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = 0;
}

void tern_sensor_free(tern_sensor *s)
{
    if (!s)
        return;
    tern_sensor_stop(s);
    if (s->state)
        s->drv->close(s->state);
    for (size_t i = 0; i < s->n_opts; i++) {
        tern_free((char *)s->opt_items[i].key);
        tern_free((char *)s->opt_items[i].value);
    }
    tern_free(s->opt_items);
    tern_free(s->signature);
    pthread_cond_destroy(&s->cv);
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
