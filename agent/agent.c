/* agent.c - see agent.h. The main thread is the only one touching the store
 * and the uplinks; the sensor pool's workers only push into the readq. */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "clockfix.h"
#include "forwarder.h"
#include "log.h"
#include "notify.h"
#include "readq.h"
#include "sensor.h"
#include "status.h"
#include "storage.h"

#define POP_CHUNK 256 /* readings moved from the readq per append */
/* How long a reload or shutdown waits for a sensor read in progress (a slow
 * bus) before leaving it behind: bounds SIGHUP and SIGTERM. */
#define SENSOR_STOP_MS 2000

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_reload;

struct tern_agent {
    struct tern_config *cfg;
    char *config_path;
    tern_readq *q;
    tern_store *store;
    tern_sensor_pool *pool;
    tern_sensor **sensors;
    size_t n_sensors;
    tern_forwarder **fw;
    size_t n_fw;
    int status_fd;
    char status_path[512];
    struct tern_readq_item pop[POP_CHUNK];
    struct tern_reading rd[POP_CHUNK];
    int64_t started_ms;
    uint64_t stored, append_failures, reloads, reload_failures;
    /* Totals of sensors and forwarders replaced by reloads. */
    uint64_t retired_reads_failed, retired_handed, retired_rejected;
    int last_append_ok;
    char last_error[256];
    uint64_t watchdog_usec;
    int64_t last_watchdog_ms, last_sd_status_ms, last_clock_ms;
};

static void on_stop(int sig) { (void)sig; g_stop = 1; }
static void on_hup(int sig) { (void)sig; g_reload = 1; }

void tern_agent_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

void tern_agent_request_stop(void) { g_stop = 1; }

static void set_last_error(tern_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_last_error(tern_agent *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->last_error, sizeof a->last_error, fmt, ap);
    va_end(ap);
}

static int mkdir_p(const char *path, char *err, size_t errcap)
{
    char tmp[512];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        snprintf(err, errcap, "path too long: %s", path);
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0750) < 0 && errno != EEXIST) {
            snprintf(err, errcap, "cannot create %s: %s", tmp, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errcap, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* Names of the enabled uplinks, for the store. */
static size_t uplink_names(const struct tern_config *c, const char **names, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_uplinks && n < max; i++)
        if (c->uplinks[i].c.enabled)
            names[n++] = c->uplinks[i].name;
    if (n == 0)
        names[n++] = "none"; /* keep collecting locally with no uplink */
    return n;
}

static int open_store(const struct tern_config *c, tern_store **out, char *err, size_t errcap)
{
    const char *names[64];
    struct tern_store_options so = {
        .path = c->storage_path,
        .uplinks = names,
        .n_uplinks = uplink_names(c, names, 64),
        .commit_every = (uint32_t)c->storage.commit_every,
        .commit_ms = (uint32_t)c->storage.commit_ms,
        .synchronous = (enum tern_store_sync)c->storage.synchronous,
        .max_bytes = c->storage.max_bytes,
        .max_age_ms = c->storage.max_age_ms,
        .overflow = (enum tern_store_overflow)c->storage.overflow,
    };
    return tern_store_open(&so, out, err, errcap);
}

static int same_uplink_set(const struct tern_config *a, const struct tern_config *b)
{
    const char *na[64], *nb[64];
    size_t n = uplink_names(a, na, 64), m = uplink_names(b, nb, 64);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(na[i], nb[i]) != 0)
            return 0;
    return 1;
}

/* Moves what the sensor threads produced into the store. */
static void store_readings(tern_agent *a, size_t max_total)
{
    size_t total = 0;
    while (total < max_total) {
        size_t n = tern_readq_pop(a->q, a->pop, POP_CHUNK);
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++) {
            struct tern_reading *r = &a->rd[i];
            const struct tern_readq_item *it = &a->pop[i];
            memset(r, 0, sizeof *r);
            memcpy(r->device_id, a->cfg->device_id, sizeof r->device_id);
            tern_copy_field(r->sensor, sizeof r->sensor, tern_sensor_name(it->sensor));
            memcpy(r->metric, it->m.name, sizeof r->metric);
            memcpy(r->unit, it->m.unit, sizeof r->unit);
            r->metric[sizeof r->metric - 1] = '\0';
            r->unit[sizeof r->unit - 1] = '\0';
            tern_copy_field(r->tags, sizeof r->tags, tern_sensor_tags(it->sensor));
            r->value = it->m.value;
            r->ts_ms = it->ts_ms;
            r->flags = it->flags;
        }
        if (tern_store_append(a->store, a->rd, n) < 0) {
            /* The store counts them (disk_full) and recovers by itself. */
            if (a->last_append_ok)
                TERN_ERROR("storage: cannot append %zu readings (disk full or read-only?)", n);
            a->last_append_ok = 0;
            a->append_failures++;
            set_last_error(a, "storage append failed");
        } else {
            a->last_append_ok = 1;
            a->stored += n;
        }
        total += n;
    }
}

static int start_sensors(tern_agent *a, const struct tern_config *c, tern_sensor **out, size_t *n_out)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_sensors; i++) {
        if (!c->sensors[i].c.enabled)
            continue;
        tern_sensor *s = NULL;
        for (size_t j = 0; j < a->n_sensors; j++)
            if (a->sensors[j] && strcmp(tern_sensor_name(a->sensors[j]), c->sensors[i].name) == 0 &&
                tern_sensor_matches(a->sensors[j], &c->sensors[i])) {
                s = a->sensors[j]; /* unchanged: keep it running */
                a->sensors[j] = NULL;
            }
        if (!s) {
            char err[256];
            s = tern_sensor_start(a->pool, &c->sensors[i], a->q, c->agent.clock_check, err, sizeof err);
            if (!s) {
                TERN_ERROR("%s", err);
                continue;
            }
        }
        out[n++] = s;
    }
    *n_out = n;
    return 0;
}

/* Frees a sensor whose stop was requested and whose readings are in the
 * store; one still hanging in a read is left to its worker instead, so that a
 * dead bus can neither wedge a reload nor make SIGTERM unbounded. */
static void release_sensor(tern_sensor *s)
{
    if (tern_sensor_stop_until(s, 0) == 0) {
        tern_sensor_free(s);
        return;
    }
    TERN_WARN("sensor %s: a read still hangs after %d ms; leaving it behind (it is closed if the "
              "read ever returns)", tern_sensor_name(s), SENSOR_STOP_MS);
    tern_sensor_abandon(s);
}

static void retire_sensor(tern_agent *a, tern_sensor *s)
{
    struct tern_sensor_stats st;
    tern_sensor_get_stats(s, &st);
    a->retired_reads_failed += st.reads_failed;
}

static void retire_forwarder(tern_agent *a, tern_forwarder *f)
{
    struct tern_forwarder_stats st;
    tern_forwarder_get_stats(f, &st);
    a->retired_handed += st.handed;
    a->retired_rejected += st.rejected;
}

static int open_forwarders(const struct tern_config *c, tern_forwarder **out, size_t *n_out,
                           char *err, size_t errcap)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_uplinks; i++) {
        if (!c->uplinks[i].c.enabled)
            continue;
        out[n] = tern_forwarder_new(&c->uplinks[i], c->device_id, err, errcap);
        if (!out[n]) {
            for (size_t j = 0; j < n; j++)
                tern_forwarder_free(out[j]);
            return -1;
        }
        n++;
    }
    *n_out = n;
    return 0;
}

tern_agent *tern_agent_start(struct tern_config *cfg, const char *config_path, char *err,
                             size_t errcap)
{
    tern_agent *a = tern_calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errcap, "out of memory");
        tern_config_free(cfg);
        return NULL;
    }
    a->cfg = cfg;
    a->status_fd = -1;
    a->last_append_ok = 1;
    a->started_ms = tern_mono_ms();
    if (config_path && !(a->config_path = tern_strdup(config_path)))
        goto oom;
    if (mkdir_p(cfg->agent.data_dir, err, errcap) < 0)
        goto fail;
    snprintf(a->status_path, sizeof a->status_path, "%s", cfg->status_socket);
    a->status_fd = tern_status_listen(a->status_path, err, errcap);
    if (a->status_fd < 0)
        goto fail;
    a->q = tern_readq_new((size_t)cfg->agent.queue_readings);
    a->sensors = tern_calloc(cfg->n_sensors + 1, sizeof *a->sensors);
    a->fw = tern_calloc(cfg->n_uplinks + 1, sizeof *a->fw);
    if (!a->q || !a->sensors || !a->fw)
        goto oom;
    if (open_store(cfg, &a->store, err, errcap) < 0)
        goto fail;
    if (open_forwarders(cfg, a->fw, &a->n_fw, err, errcap) < 0)
        goto fail;
    for (size_t i = 0; i < a->n_fw; i++)
        if (tern_forwarder_attach(a->fw[i], a->store) < 0) {
            snprintf(err, errcap, "storage does not know uplink %s", tern_forwarder_name(a->fw[i]));
            goto fail;
        }
    tern_clockfix_init(cfg->agent.data_dir, cfg->agent.clock_check, tern_store_durable_seq(a->store));
    tern_clockfix_tick();
    a->pool = tern_sensor_pool_new(err, errcap);
    if (!a->pool)
        goto fail;
    start_sensors(a, cfg, a->sensors, &a->n_sensors);
    TERN_INFO("tern-agent %s started: device %s, %zu sensors, %zu uplinks, queue %s (epoch %016" PRIx64
              ", %" PRId64 " readings durable)",
              TERN_VERSION, cfg->device_id, a->n_sensors, a->n_fw, cfg->storage_path,
              tern_store_epoch(a->store), tern_store_durable_seq(a->store));
#ifdef TERN_WITH_SYSTEMD
    if (!tern_notify_watchdog_usec(&a->watchdog_usec))
        a->watchdog_usec = 0;
    tern_notify("READY=1\nSTATUS=started");
#endif
    return a;
oom:
    snprintf(err, errcap, "out of memory");
fail:
    tern_agent_free(a);
    return NULL;
}

/* Healthy: some sensor read successfully recently (or there are none) and
 * the last storage append worked. */
static int is_healthy(tern_agent *a, int64_t now)
{
    if (!a->last_append_ok)
        return 0;
    if (a->n_sensors == 0)
        return 1;
    for (size_t i = 0; i < a->n_sensors; i++) {
        struct tern_sensor_stats st;
        tern_sensor_get_stats(a->sensors[i], &st);
        if (st.last_ok_mono_ms && now - st.last_ok_mono_ms <= a->cfg->agent.watchdog_stale_ms)
            return 1;
    }
    return 0;
}

struct text {
    char *buf;
    size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
    if (!t->buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < t->cap - t->len)
        t->len += (size_t)n;
}

/* Values are printed on one line: newlines in errors become spaces. */
static const char *one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return s;
}

static void build_status(tern_agent *a, struct text *t)
{
    int64_t now = tern_mono_ms();
    struct tern_store_stats ss;
    tern_store_stats(a->store, &ss);
    add(t, "version=%s\n", TERN_VERSION);
    add(t, "pid=%d\n", (int)getpid());
    add(t, "device_id=%s\n", a->cfg->device_id);
    add(t, "config=%s\n", a->cfg->source);
    add(t, "uptime_s=%" PRId64 "\n", (now - a->started_ms) / 1000);
    add(t, "healthy=%d\n", is_healthy(a, now));
    add(t, "epoch=%016" PRIx64 "\n", ss.epoch);
    add(t, "last_seq=%" PRId64 "\n", ss.last_seq);
    add(t, "durable_seq=%" PRId64 "\n", ss.durable_seq);
    add(t, "queue_depth=%" PRIu64 "\n", ss.queued);
    add(t, "oldest_unsent_age_ms=%" PRId64 "\n",
        ss.queued && ss.oldest_ts_ms ? tern_utc_ms() - ss.oldest_ts_ms : 0);
    add(t, "queue_file_bytes=%" PRIu64 "\n", ss.file_bytes);
    add(t, "memq_depth=%zu\n", tern_readq_depth(a->q));
    add(t, "memq_capacity=%zu\n", tern_readq_cap(a->q));
    add(t, "memq_high_water=%zu\n", tern_readq_high_water(a->q));
    struct tern_sensor_pool_stats ps;
    tern_sensor_pool_get_stats(a->pool, &ps);
    add(t, "sensor_threads=%zu\n", ps.workers);
    add(t, "sensor_threads_busy=%zu\n", ps.busy);
    add(t, "sensor_threads_high_water=%zu\n", ps.workers_high_water);
    uint64_t qfull = tern_readq_dropped(a->q);
    add(t, "readings_taken=%" PRIu64 "\n", tern_readq_pushed(a->q) + qfull);
    add(t, "readings_stored=%" PRIu64 "\n", a->stored);
    uint64_t handed = a->retired_handed, rejected = a->retired_rejected;
    for (size_t i = 0; i < a->n_fw; i++) {
        struct tern_forwarder_stats fs;
        tern_forwarder_get_stats(a->fw[i], &fs);
        handed += fs.handed;
        rejected += fs.rejected;
    }
    add(t, "readings_sent=%" PRIu64 "\n", handed);
    add(t, "dropped_queue_full=%" PRIu64 "\n", qfull);
    static const char *const reasons[TERN_DROP_REASON_COUNT] = {"overflow_oldest", "overflow_newest",
                                                                "age", "disk_full", "corrupt"};
    for (int i = 0; i < TERN_DROP_REASON_COUNT; i++)
        add(t, "dropped_%s=%" PRIu64 "\n", reasons[i], ss.dropped[i]);
    add(t, "dropped_uplink_rejected=%" PRIu64 "\n", rejected);
    add(t, "append_failures=%" PRIu64 "\n", a->append_failures);
    add(t, "reloads=%" PRIu64 "\n", a->reloads);
    add(t, "reload_failures=%" PRIu64 "\n", a->reload_failures);
    add(t, "last_error=%s\n", one_line(a->last_error));
    for (size_t i = 0; i < a->n_sensors; i++) {
        struct tern_sensor_stats st;
        tern_sensor_get_stats(a->sensors[i], &st);
        const char *n = tern_sensor_name(a->sensors[i]);
        add(t, "sensor.%s.healthy=%d\n", n, st.healthy);
        add(t, "sensor.%s.reads_ok=%" PRIu64 "\n", n, st.reads_ok);
        add(t, "sensor.%s.reads_failed=%" PRIu64 "\n", n, st.reads_failed);
        add(t, "sensor.%s.readings=%" PRIu64 "\n", n, st.metrics);
        add(t, "sensor.%s.dropped_queue_full=%" PRIu64 "\n", n, st.dropped);
        add(t, "sensor.%s.last_ok_age_ms=%" PRId64 "\n", n,
            st.last_ok_mono_ms ? now - st.last_ok_mono_ms : -1);
        add(t, "sensor.%s.last_error=%s\n", n, one_line(st.last_error));
    }
    for (size_t i = 0; i < a->n_fw; i++) {
        struct tern_forwarder_stats fs;
        struct tern_uplink_status us;
        tern_forwarder_get_stats(a->fw[i], &fs);
        tern_forwarder_uplink_status(a->fw[i], &us);
        const char *n = tern_forwarder_name(a->fw[i]);
        add(t, "uplink.%s.state=%s\n", n, us.state);
        add(t, "uplink.%s.connected=%d\n", n, us.connected);
        add(t, "uplink.%s.sent=%" PRIu64 "\n", n, us.sent);
        add(t, "uplink.%s.acked=%" PRIu64 "\n", n, us.acked);
        add(t, "uplink.%s.failed=%" PRIu64 "\n", n, us.failed);
        add(t, "uplink.%s.in_flight=%" PRIu64 "\n", n, us.in_flight);
        add(t, "uplink.%s.acked_seq=%" PRId64 "\n", n, fs.acked_seq);
        add(t, "uplink.%s.cursor=%" PRId64 "\n", n, fs.cursor);
        add(t, "uplink.%s.rewinds=%" PRIu64 "\n", n, fs.rewinds);
        add(t, "uplink.%s.last_error=%s\n", n, one_line(us.last_error));
    }
}

static void serve_status(tern_agent *a)
{
    for (int k = 0; k < 4; k++) {
        int fd = tern_status_accept(a->status_fd);
        if (fd < 0)
            return;
        struct text t = {.buf = tern_malloc(65536), .len = 0, .cap = 65536};
        if (t.buf) {
            t.buf[0] = '\0';
            build_status(a, &t);
            tern_status_reply(fd, t.buf, t.len);
            tern_free(t.buf);
        } else {
            close(fd);
        }
    }
}

static void notify(tern_agent *a, int64_t now)
{
#ifdef TERN_WITH_SYSTEMD
    if (a->watchdog_usec && now - a->last_watchdog_ms >= (int64_t)(a->watchdog_usec / 2000)) {
        /* Fed only while healthy: a wedged agent gets restarted by systemd. */
        if (is_healthy(a, now))
            tern_notify("WATCHDOG=1");
        a->last_watchdog_ms = now;
    }
    if (now - a->last_sd_status_ms >= 5000) {
        struct tern_store_stats ss;
        tern_store_stats(a->store, &ss);
        tern_notifyf("STATUS=%zu sensors, %" PRIu64 " readings queued, last seq %" PRId64 "%s",
                     a->n_sensors, ss.queued, ss.last_seq, is_healthy(a, now) ? "" : ", UNHEALTHY");
        a->last_sd_status_ms = now;
    }
#else
    (void)a;
    (void)now;
#endif
}

/* SIGHUP: applies a new config without losing any queued reading; a bad
 * config is rejected and the running one kept. */
static void reload(tern_agent *a)
{
    char err[4096];
    struct tern_config *nc = NULL;
    if (!a->config_path) {
        TERN_WARN("SIGHUP: running the built-in configuration; nothing to reload");
        return;
    }
    TERN_INFO("SIGHUP: reloading %s", a->config_path);
    if (tern_config_load(a->config_path, &nc, err, sizeof err) < 0) {
        TERN_ERROR("reload rejected, the running configuration stays in effect:\n%s", err);
        set_last_error(a, "reload rejected: %s", err);
        a->reload_failures++;
        return;
    }
    const struct tern_config *oc = a->cfg;
    if (strcmp(nc->storage_path, oc->storage_path) != 0 ||
        strcmp(nc->status_socket, oc->status_socket) != 0 ||
        strcmp(nc->agent.data_dir, oc->agent.data_dir) != 0) {
        TERN_ERROR("reload rejected: data_dir, status_socket or [storage] path changed; that needs a "
                   "restart");
        set_last_error(a, "reload rejected: data_dir/storage path change needs a restart");
        a->reload_failures++;
        tern_config_free(nc);
        return;
    }
    /* Uplinks: open the new ones first so a failure leaves everything as it was. */
    const struct tern_storage_cfg *os = &oc->storage, *nst = &nc->storage;
    int store_reopen = !same_uplink_set(oc, nc) || os->commit_every != nst->commit_every ||
                       os->commit_ms != nst->commit_ms || os->synchronous != nst->synchronous ||
                       os->max_bytes != nst->max_bytes || os->max_age_ms != nst->max_age_ms ||
                       os->overflow != nst->overflow;
    int fw_change = store_reopen || strcmp(oc->device_id, nc->device_id) != 0;
    tern_forwarder **nfw = tern_calloc(nc->n_uplinks + 1, sizeof *nfw);
    size_t n_nfw = 0;
    if (!nfw)
        goto oom;
    for (size_t i = 0; i < nc->n_uplinks && !fw_change; i++) {
        if (!nc->uplinks[i].c.enabled)
            continue;
        int same = 0;
        for (size_t j = 0; j < a->n_fw; j++)
            if (strcmp(tern_forwarder_name(a->fw[j]), nc->uplinks[i].name) == 0 &&
                tern_forwarder_matches(a->fw[j], &nc->uplinks[i], nc->device_id))
                same = 1;
        if (!same)
            fw_change = 1;
    }
    if (fw_change && open_forwarders(nc, nfw, &n_nfw, err, sizeof err) < 0) {
        TERN_ERROR("reload rejected, the running configuration stays in effect: %s", err);
        set_last_error(a, "reload rejected: %s", err);
        a->reload_failures++;
        tern_free(nfw);
        tern_config_free(nc);
        return;
    }
    /* From here on the new config is applied. */
    tern_log_set_level((enum tern_log_level)nc->agent.log_level);
    tern_sensor **ns = tern_calloc(nc->n_sensors + 1, sizeof *ns);
    if (!ns) {
        for (size_t i = 0; i < n_nfw; i++)
            tern_forwarder_free(nfw[i]);
        tern_free(nfw);
        goto oom;
    }
    size_t n_ns = 0;
    start_sensors(a, nc, ns, &n_ns);
    /* What is left in a->sensors was removed or changed: stop it, then move
     * its last readings (still pointing at it) into the store before freeing. */
    int64_t deadline = tern_mono_ms() + SENSOR_STOP_MS;
    for (size_t i = 0; i < a->n_sensors; i++)
        if (a->sensors[i])
            tern_sensor_stop_until(a->sensors[i], deadline);
    struct tern_config *old_cfg = a->cfg;
    store_readings(a, (size_t)-1);
    for (size_t i = 0; i < a->n_sensors; i++)
        if (a->sensors[i]) {
            retire_sensor(a, a->sensors[i]);
            release_sensor(a->sensors[i]);
        }
    tern_free(a->sensors);
    a->sensors = ns;
    a->n_sensors = n_ns;
    if (fw_change) {
        /* Old uplinks get a short drain; what they had in flight and never
         * acked is simply sent again by the new ones. */
        for (size_t i = 0; i < a->n_fw; i++) {
            tern_forwarder_drain(a->fw[i], 2000);
            retire_forwarder(a, a->fw[i]);
            tern_forwarder_free(a->fw[i]);
        }
        tern_free(a->fw);
        a->fw = nfw;
        a->n_fw = n_nfw;
        nfw = NULL;
        if (store_reopen) {
            tern_store *ns_store = NULL;
            tern_store_close(a->store);
            a->store = NULL;
            if (open_store(nc, &ns_store, err, sizeof err) < 0) {
                /* Without a store the agent cannot work: stop, systemd restarts. */
                TERN_ERROR("reload: cannot reopen the queue: %s; stopping", err);
                set_last_error(a, "reload: cannot reopen the queue");
                g_stop = 1;
            }
            a->store = ns_store;
        }
        for (size_t i = 0; i < a->n_fw; i++)
            if (a->store)
                tern_forwarder_attach(a->fw[i], a->store);
    }
    tern_free(nfw);
    a->cfg = nc;
    tern_config_free(old_cfg);
    a->reloads++;
    TERN_INFO("reloaded: %zu sensors, %zu uplinks%s", a->n_sensors, a->n_fw,
              fw_change ? " (uplinks restarted)" : "");
    return;
oom:
    TERN_ERROR("reload: out of memory; keeping the running configuration");
    a->reload_failures++;
    tern_config_free(nc);
}

int tern_agent_run(tern_agent *a)
{
    while (!g_stop) {
        if (g_reload) {
            g_reload = 0;
            reload(a);
            if (!a->store)
                break;
        }
        int64_t now = tern_mono_ms();
        store_readings(a, 8192);
        tern_store_tick(a->store, now);
        int more = 0;
        for (size_t i = 0; i < a->n_fw; i++)
            more |= tern_forwarder_pump(a->fw[i], now);
        serve_status(a);
        notify(a, now);
        if (now - a->last_clock_ms >= 1000) {
            tern_clockfix_tick();
            a->last_clock_ms = now;
        }
        int timeout = more || tern_readq_depth(a->q) >= POP_CHUNK ? 0 : 20;
        if (a->n_fw) {
            /* Uplinks block in their own I/O wait; readings and status
             * clients wait at most one timeout (20 ms). */
            for (size_t i = 0; i < a->n_fw; i++)
                tern_forwarder_poll(a->fw[i], i == 0 ? timeout : 0);
        } else {
            struct pollfd p = {.fd = a->status_fd, .events = POLLIN};
            poll(&p, 1, timeout);
        }
    }
    return a->store ? 0 : 1;
}

void tern_agent_free(tern_agent *a)
{
    if (!a)
        return;
#ifdef TERN_WITH_SYSTEMD
    tern_notify("STOPPING=1");
#endif
    /* Stop polling first, then make everything taken durable. */
    int64_t deadline = tern_mono_ms() + SENSOR_STOP_MS;
    for (size_t i = 0; i < a->n_sensors; i++)
        tern_sensor_stop_until(a->sensors[i], deadline);
    if (a->store && a->q) {
        store_readings(a, (size_t)-1);
        tern_store_flush(a->store);
    }
    if (a->n_fw && a->store) {
        /* Drain uplinks for a bounded time: hand over what is durable and
         * wait for acks of what is in flight. */
        int64_t end = tern_mono_ms() + a->cfg->agent.shutdown_timeout_ms;
        for (size_t i = 0; i < a->n_fw; i++)
            tern_forwarder_pump(a->fw[i], tern_mono_ms());
        for (size_t i = 0; i < a->n_fw; i++) {
            int64_t left = end - tern_mono_ms();
            tern_forwarder_drain(a->fw[i], left > 0 ? (int)left : 0);
        }
    }
    for (size_t i = 0; i < a->n_fw; i++)
        tern_forwarder_free(a->fw[i]);
    tern_free(a->fw);
    if (a->store) {
        struct tern_store_stats ss;
        tern_store_stats(a->store, &ss);
        TERN_INFO("stopped: %" PRIu64 " readings queued, last seq %" PRId64, ss.queued, ss.last_seq);
    }
    tern_store_close(a->store);
    for (size_t i = 0; i < a->n_sensors; i++)
        release_sensor(a->sensors[i]);
    tern_free(a->sensors);
    tern_sensor_pool_free(a->pool);
    tern_readq_free(a->q);
    tern_status_close(a->status_fd, a->status_path);
    tern_config_free(a->cfg);
    tern_free(a->config_path);
    tern_free(a);
}

int tern_agent_prefill(const struct tern_config *cfg, uint64_t n, char *err, size_t errcap)
{
    tern_store *st = NULL;
    if (mkdir_p(cfg->agent.data_dir, err, errcap) < 0 || open_store(cfg, &st, err, errcap) < 0)
        return -1;
    enum { CHUNK = 1000 };
    struct tern_reading *r = tern_calloc(CHUNK, sizeof *r);
    if (!r) {
        snprintf(err, errcap, "out of memory");
        tern_store_close(st);
        return -1;
    }
    int64_t ts = tern_utc_ms();
    int rc = 0;
    for (uint64_t done = 0; done < n && rc == 0;) {
        size_t k = n - done < CHUNK ? (size_t)(n - done) : CHUNK;
        for (size_t i = 0; i < k; i++) {
            memset(&r[i], 0, sizeof r[i]);
            snprintf(r[i].device_id, sizeof r[i].device_id, "%s", cfg->device_id);
            snprintf(r[i].sensor, sizeof r[i].sensor, "bench%u", (unsigned)((done + i) % 50));
            snprintf(r[i].metric, sizeof r[i].metric, "temperature");
            snprintf(r[i].unit, sizeof r[i].unit, "Cel");
            snprintf(r[i].tags, sizeof r[i].tags, "%s", cfg->tags_json);
            r[i].value = 20.0 + (double)((done + i) % 1000) / 100.0;
            r[i].ts_ms = ts + (int64_t)((done + i) / 50);
        }
        if (tern_store_append(st, r, k) < 0) {
            snprintf(err, errcap, "append failed after %" PRIu64 " readings", done);
            rc = -1;
        }
        done += k;
    }
    if (rc == 0 && tern_store_flush(st) < 0) {
        snprintf(err, errcap, "flush failed");
        rc = -1;
    }
    tern_free(r);
    tern_store_close(st);
    return rc;
}
