/* forwarder.c - see forwarder.h. */
#include "forwarder.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "clockfix.h"
#include "log.h"
#include "token_bucket.h"

/* Readings read from storage per send(); the uplink splits them further
 * into its own batches. Bounds the forwarder's memory (about 0.5 MiB). */
#define FWD_CHUNK 1000

struct tern_forwarder {
    char name[TERN_ID_MAX];
    char *signature;
    const struct tern_uplink_ops *ops;
    void *up;                 /* uplink state */
    struct tern_uplink_events ev;
    tern_store *store;
    int idx;                  /* uplink index in the store */
    int64_t cursor;
    int rewind;               /* a failed event asks for a re-send */
    int64_t rewind_at_ms;     /* ... not before this (monotonic) */
    int64_t retry_delay_ms;
    struct tern_token_bucket tb;
    struct tern_reading *buf;
    size_t bufcap;
    struct tern_forwarder_stats st;
};

static void on_acked(void *user, int64_t first, int64_t last)
{
    tern_forwarder *f = user;
    if (last < first)
        return;
    f->st.acked += (uint64_t)(last - first + 1);
    if (!f->store)
        return;
    if (tern_store_ack(f->store, f->idx, first, last) < 0) {
        /* The readings stay queued and are sent again after a restart. */
        f->st.ack_errors++;
        TERN_WARN("uplink %s: cannot record ack of seq %" PRId64 "..%" PRId64 " in storage", f->name,
                  first, last);
    }
}

static void on_failed(void *user, int64_t first, int64_t last, const char *why)
{
    tern_forwarder *f = user;
    if (last >= first)
        f->st.failed += (uint64_t)(last - first + 1);
    TERN_DEBUG("uplink %s: seq %" PRId64 "..%" PRId64 " failed: %s", f->name, first, last,
               why ? why : "");
    if (!f->rewind) {
        f->rewind = 1;
        f->rewind_at_ms = tern_mono_ms() + f->retry_delay_ms;
    }
}

static char *make_signature(const struct tern_uplink_cfg *cfg, const char *device_id)
{
    size_t cap = 256 + strlen(device_id);
    for (size_t i = 0; i < cfg->opts.n; i++)
        cap += strlen(cfg->opts.items[i].key) + strlen(cfg->opts.items[i].value) + 2;
    char *sig = tern_malloc(cap);
    if (!sig)
        return NULL;
    size_t len = (size_t)snprintf(sig, cap, "%s\n%s\n%lld/%lld/%lld\n", cfg->name, device_id,
                                  (long long)cfg->c.drain_rate, (long long)cfg->c.drain_burst,
                                  (long long)cfg->c.retry_delay_ms);
    for (size_t i = 0; i < cfg->opts.n && len < cap; i++)
        len += (size_t)snprintf(sig + len, cap - len, "%s=%s\n", cfg->opts.items[i].key,
                                cfg->opts.items[i].value);
    return sig;
}

tern_forwarder *tern_forwarder_new(const struct tern_uplink_cfg *cfg, const char *device_id,
                                   char *err, size_t errcap)
{
    tern_forwarder *f = tern_calloc(1, sizeof *f);
    if (!f)
        goto oom;
    snprintf(f->name, sizeof f->name, "%s", cfg->name);
    f->ops = cfg->ops;
    f->idx = -1;
    f->retry_delay_ms = cfg->c.retry_delay_ms;
    tern_tb_init(&f->tb, (double)cfg->c.drain_rate,
                 (double)(cfg->c.drain_burst ? cfg->c.drain_burst : cfg->c.drain_rate), tern_mono_ms());
    f->signature = make_signature(cfg, device_id);
    f->bufcap = FWD_CHUNK;
    f->buf = tern_malloc(f->bufcap * sizeof *f->buf);
    if (!f->signature || !f->buf)
        goto oom;
    f->ev = (struct tern_uplink_events){.user = f, .acked = on_acked, .failed = on_failed};
    struct tern_kv_list l = {.items = cfg->opts.items, .n = cfg->opts.n};
    if (f->ops->open(&l, device_id, &f->ev, &f->up, err, errcap) < 0) {
        f->up = NULL;
        tern_forwarder_free(f);
        return NULL;
    }
    return f;
oom:
    snprintf(err, errcap, "uplink %s: out of memory", cfg->name);
    tern_forwarder_free(f);
    return NULL;
}

void tern_forwarder_free(tern_forwarder *f)
{
    if (!f)
        return;
    if (f->up)
        f->ops->close(f->up);
    tern_free(f->buf);
    tern_free(f->signature);
    tern_free(f);
}

int tern_forwarder_attach(tern_forwarder *f, tern_store *store)
{
    f->store = store;
    f->rewind = 0;
    if (!store) {
        f->idx = -1;
        return 0;
    }
    f->idx = tern_store_uplink(store, f->name);
    if (f->idx < 0)
        return -1;
    f->cursor = tern_store_acked_seq(store, f->idx);
    return 0;
}

int tern_forwarder_pump(tern_forwarder *f, int64_t now_ms)
{
    if (!f->store || f->idx < 0)
        return 0;
    if (f->rewind) {
        if (now_ms < f->rewind_at_ms)
            return 0;
        /* Everything after the contiguous acked point is sent again; acks
         * that arrived out of order are skipped by tern_store_read. */
        f->cursor = tern_store_acked_seq(f->store, f->idx);
        f->rewind = 0;
        f->st.rewinds++;
    }
    for (int rounds = 0; rounds < 64; rounds++) {
        size_t cap = f->ops->capacity(f->up);
        if (cap == 0)
            return 0;
        uint32_t tokens = tern_tb_available(&f->tb, now_ms);
        if (tokens == 0)
            return 0;
        size_t want = cap < f->bufcap ? cap : f->bufcap;
        if (tokens < want)
            want = tokens;
        size_t n = 0;
        if (tern_store_read(f->store, f->idx, f->cursor, f->buf, want, &n) < 0) {
            TERN_WARN("uplink %s: cannot read the queue", f->name);
            return 0;
        }
        if (n == 0)
            return 0;
        tern_clockfix_apply(f->buf, n);
        int rc = f->ops->send(f->up, f->buf, n);
        if (rc == TERN_UPLINK_RETRY)
            return 0;
        if (rc == TERN_UPLINK_ERROR) {
            /* These can never be sent (e.g. too large): ack them so the queue
             * does not stall forever, and count them as rejected. */
            f->st.rejected += n;
            TERN_ERROR("uplink %s: rejected seq %" PRId64 "..%" PRId64 " as unsendable; dropping them",
                       f->name, f->buf[0].seq, f->buf[n - 1].seq);
            tern_store_ack(f->store, f->idx, f->buf[0].seq, f->buf[n - 1].seq);
        } else {
            f->st.handed += n;
        }
        tern_tb_take(&f->tb, (uint32_t)n);
        f->cursor = f->buf[n - 1].seq;
        if (f->rewind)
            return 0; /* a failure was reported inside send() */
    }
    return 1;
}

void tern_forwarder_poll(tern_forwarder *f, int timeout_ms) { f->ops->poll(f->up, timeout_ms); }

void tern_forwarder_drain(tern_forwarder *f, int timeout_ms)
{
    if (f->ops->drain)
        f->ops->drain(f->up, timeout_ms);
}

const char *tern_forwarder_name(const tern_forwarder *f) { return f->name; }

int tern_forwarder_matches(const tern_forwarder *f, const struct tern_uplink_cfg *cfg,
                           const char *device_id)
{
    char *sig = make_signature(cfg, device_id);
    int same = sig && strcmp(sig, f->signature) == 0;
    tern_free(sig);
    return same;
}

void tern_forwarder_get_stats(tern_forwarder *f, struct tern_forwarder_stats *out)
{
    *out = f->st;
    out->cursor = f->cursor;
    out->acked_seq = f->store && f->idx >= 0 ? tern_store_acked_seq(f->store, f->idx) : 0;
}

void tern_forwarder_uplink_status(tern_forwarder *f, struct tern_uplink_status *out)
{
    memset(out, 0, sizeof *out);
    f->ops->status(f->up, out);
}
