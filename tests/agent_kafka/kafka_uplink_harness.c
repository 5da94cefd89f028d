/* kafka_uplink_harness.c - drives the Kafka uplink alone, as the agent's
 * forwarder would, so its contract can be tested against the real broker
 * without the daemon: open with options, send readings as capacity allows,
 * poll, re-send what was reported failed, and check every event.
 *
 * Usage: kafka_uplink_harness [flags] [-o key=value]...
 *   -o key=value    an [uplink.kafka] option (its "line" is its position, 1..)
 *   -n N            readings to deliver (default 1000); 0 = only open and poll
 *   -s FIRST        first seq (default 1); -e EPOCH (hex, default 00c0ffee00c0ffee)
 *   -d DEVICE       device_id (default kafka-test)
 *   -r RATE         readings become available at RATE/s (default: all at once)
 *   -b BATCH        max readings per send() (default 500)
 *   -F K            inject a fatal producer error after K readings were sent
 *   -D MS           stop sending after the first send() and drain(MS) instead
 *   -t MS           deadline (default 60000)
 *   -w TEXT         wait until status().last_error contains TEXT (exit 3 if not)
 *   -W STATE        wait until status().state equals STATE (exit 3 if not)
 *   -q              no per-event lines
 *   -A N            make the Nth allocation (tern_malloc...) from open() on fail
 * Prints key=value lines; exit 0 when every reading was acked exactly once
 * (or the -w/-W condition held), 1 on a contract violation, 2 when open
 * failed (err printed as open_error=...), 3 on timeout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "uplink.h"

extern const struct tern_uplink_ops tern_uplink_kafka;
int tern_uplink_kafka_test_fatal(void *state);

enum { ST_WAITING = 0, ST_IN_FLIGHT = 1, ST_ACKED = 2 };

struct harness {
    int64_t first_seq;
    size_t n;
    unsigned char *st; /* per reading: enum above */
    size_t scan;       /* no waiting reading below this index */
    uint64_t acked, failed_readings, failed_events, acked_events, in_flight;
    int violation;
    int verbose;
};

static int check_range(struct harness *h, int64_t first, int64_t last, const char *what)
{
    if (first > last || first < h->first_seq || last >= h->first_seq + (int64_t)h->n) {
        printf("violation=%s range %" PRId64 "..%" PRId64 " outside what was sent\n", what,
               first, last);
        h->violation = 1;
        return -1;
    }
    for (int64_t s = first; s <= last; s++) {
        if (h->st[s - h->first_seq] != ST_IN_FLIGHT) {
            printf("violation=%s seq %" PRId64 " was not in flight (state %d)\n", what, s,
                   h->st[s - h->first_seq]);
            h->violation = 1;
            return -1;
        }
    }
    return 0;
}

static void on_acked(void *user, int64_t first, int64_t last)
{
    struct harness *h = user;
    if (h->verbose)
        printf("event=acked %" PRId64 " %" PRId64 "\n", first, last);
    if (check_range(h, first, last, "acked"))
        return;
    for (int64_t s = first; s <= last; s++)
        h->st[s - h->first_seq] = ST_ACKED;
    h->acked += (uint64_t)(last - first + 1);
    h->in_flight -= (uint64_t)(last - first + 1);
    h->acked_events++;
}

static void on_failed(void *user, int64_t first, int64_t last, const char *why)
{
    struct harness *h = user;
    if (h->verbose)
        printf("event=failed %" PRId64 " %" PRId64 " %s\n", first, last, why);
    if (why == NULL || why[0] == '\0') {
        printf("violation=failed event without a reason\n");
        h->violation = 1;
    }
    if (check_range(h, first, last, "failed"))
        return;
    for (int64_t s = first; s <= last; s++)
        h->st[s - h->first_seq] = ST_WAITING;
    if ((size_t)(first - h->first_seq) < h->scan)
        h->scan = (size_t)(first - h->first_seq);
    h->failed_readings += (uint64_t)(last - first + 1);
    h->in_flight -= (uint64_t)(last - first + 1);
    h->failed_events++;
}

/* The readings differ only in seq, value and ts: the text fields are
 * formatted once (snprintf per reading showed up in uplink_only of bench
 * agent-kafka, which runs this harness). */
static void make_reading(struct tern_reading *r, const char *device, uint64_t epoch, int64_t seq)
{
    static struct tern_reading tmpl;
    static const char *tmpl_device;
    if (tmpl_device != device) {
        memset(&tmpl, 0, sizeof tmpl);
        snprintf(tmpl.device_id, sizeof tmpl.device_id, "%s", device);
        snprintf(tmpl.sensor, sizeof tmpl.sensor, "env");
        snprintf(tmpl.metric, sizeof tmpl.metric, "temperature");
        snprintf(tmpl.unit, sizeof tmpl.unit, "Cel");
        snprintf(tmpl.tags, sizeof tmpl.tags, "{\"site\":\"lab\"}");
        tmpl_device = device;
    }
    *r = tmpl;
    r->value = 20.0 + (double)(seq % 1000) / 100.0;
    r->ts_ms = INT64_C(1795000000000) + seq;
    r->epoch = epoch;
    r->seq = seq;
}

static void print_status(const struct tern_uplink_ops *ops, void *state)
{
    struct tern_uplink_status s;
    ops->status(state, &s);
    printf("state=%s\nconnected=%d\nstatus_sent=%" PRIu64 "\nstatus_acked=%" PRIu64
           "\nstatus_failed=%" PRIu64 "\nstatus_in_flight=%" PRIu64 "\nlast_error=%s\n",
           s.state, s.connected, s.sent, s.acked, s.failed, s.in_flight, s.last_error);
}

int main(int argc, char **argv)
{
    const struct tern_uplink_ops *ops = &tern_uplink_kafka;
    struct tern_kv kvs[64];
    size_t nkv = 0;
    struct harness h = {.first_seq = 1, .n = 1000, .verbose = 1};
    uint64_t epoch = UINT64_C(0x00c0ffee00c0ffee);
    const char *device = "kafka-test";
    double rate = 0;
    size_t batch = 500;
    long fatal_after = -1, drain_ms = -1;
    int64_t timeout_ms = 60000;
    const char *wait_error = NULL, *wait_state = NULL;
    unsigned long fail_alloc = 0;
    int opt;

    tern_log_init("kafka_uplink_harness", TERN_LOG_INFO, 0);
    while ((opt = getopt(argc, argv, "o:n:s:e:d:r:b:F:D:t:w:W:qvA:")) != -1) {
        switch (opt) {
        case 'o': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || nkv == sizeof kvs / sizeof kvs[0]) {
                fprintf(stderr, "bad -o %s\n", optarg);
                return 2;
            }
            *eq = '\0';
            kvs[nkv] = (struct tern_kv){optarg, eq + 1, (int)nkv + 1};
            nkv++;
            break;
        }
        case 'n': h.n = strtoull(optarg, NULL, 10); break;
        case 's': h.first_seq = strtoll(optarg, NULL, 10); break;
        case 'e': epoch = strtoull(optarg, NULL, 16); break;
        case 'd': device = optarg; break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'F': fatal_after = strtol(optarg, NULL, 10); break;
        case 'D': drain_ms = strtol(optarg, NULL, 10); break;
        case 't': timeout_ms = strtoll(optarg, NULL, 10); break;
        case 'w': wait_error = optarg; break;
        case 'W': wait_state = optarg; break;
        case 'q': h.verbose = 0; break;
        case 'A': fail_alloc = strtoul(optarg, NULL, 10); break;
        case 'v': tern_log_set_level(TERN_LOG_DEBUG); break;
        default: return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct tern_kv_list opts = {kvs, nkv};
    struct tern_uplink_events ev = {.user = &h, .acked = on_acked, .failed = on_failed};
    char err[512] = "";
    void *state = NULL;
    h.st = calloc(h.n ? h.n : 1, 1);
    struct tern_reading *rbuf = calloc(batch ? batch : 1, sizeof *rbuf);
    if (h.st == NULL || rbuf == NULL)
        return 2;
    if (fail_alloc > 0)
        tern_alloc_fail_at(fail_alloc);
    int open_rc = ops->open(&opts, device, &ev, &state, err, sizeof err);
    tern_alloc_fail_at(0);
    if (open_rc != 0) {
        printf("open_error=%s\n", err);
        free(h.st);
        free(rbuf);
        return 2;
    }

    int rc = 3;
    int64_t start = tern_mono_ms(), deadline = start + timeout_ms;
    uint64_t sent_readings = 0, retries = 0;
    int fatal_done = 0, drained = 0;
    while (tern_mono_ms() < deadline && !h.violation) {
        struct tern_uplink_status s;
        ops->status(state, &s);
        if (wait_error != NULL && strstr(s.last_error, wait_error) != NULL) {
            rc = 0;
            break;
        }
        if (wait_state != NULL && strcmp(s.state, wait_state) == 0) {
            rc = 0;
            break;
        }
        if (h.n > 0 && h.acked == h.n) {
            rc = 0;
            break;
        }
        if (drained)
            break;
        /* Readings available so far (a sensor producing at rate/s). */
        size_t avail = h.n;
        if (rate > 0) {
            double due = (double)(tern_mono_ms() - start) * rate / 1000.0;
            avail = due < (double)h.n ? (size_t)due : h.n;
        }
        size_t cap = ops->capacity(state);
        size_t k = 0;
        while (h.scan < avail && h.st[h.scan] != ST_WAITING)
            h.scan++;
        for (size_t i = h.scan; i < avail && k < cap && k < batch; i++)
            if (h.st[i] == ST_WAITING)
                make_reading(&rbuf[k++], device, epoch, h.first_seq + (int64_t)i);
        if (k > 0) {
            int r = ops->send(state, rbuf, k);
            if (r == TERN_UPLINK_OK) {
                for (size_t i = 0; i < k; i++)
                    h.st[rbuf[i].seq - h.first_seq] = ST_IN_FLIGHT;
                h.in_flight += k;
                sent_readings += k;
            } else if (r == TERN_UPLINK_RETRY) {
                retries++;
            } else {
                printf("violation=send returned ERROR\n");
                h.violation = 1;
            }
            if (drain_ms >= 0) {
                ops->drain(state, (int)drain_ms);
                drained = 1;
                continue;
            }
        }
        if (fatal_after >= 0 && !fatal_done && sent_readings >= (uint64_t)fatal_after) {
            if (tern_uplink_kafka_test_fatal(state) != 0) {
                printf("violation=could not inject a fatal error\n");
                h.violation = 1;
            }
            fatal_done = 1;
        }
        ops->poll(state, k > 0 ? 0 : 50);
    }
    if (drained) {
        rc = h.in_flight == 0 && h.acked + h.failed_readings >= sent_readings ? 0 : 1;
        if (h.in_flight != 0)
            printf("violation=%" PRIu64 " readings unresolved after drain\n", h.in_flight);
    }
    if (h.violation)
        rc = 1;

    printf("elapsed_ms=%" PRId64 "\nsent=%" PRIu64 "\nacked=%" PRIu64 "\nacked_events=%" PRIu64
           "\nfailed_readings=%" PRIu64 "\nfailed_events=%" PRIu64 "\nretries=%" PRIu64
           "\nin_flight=%" PRIu64 "\n",
           tern_mono_ms() - start, sent_readings, h.acked, h.acked_events, h.failed_readings,
           h.failed_events, retries, h.in_flight);
    print_status(ops, state);
    if (!drained && h.n > 0) {
        ops->drain(state, 5000);
        if (h.in_flight != 0) {
            printf("violation=%" PRIu64 " readings unresolved after the final drain\n",
                   h.in_flight);
            rc = 1;
        }
    }
    ops->close(state);
    printf("result=%s\n", rc == 0 ? "ok" : rc == 1 ? "violation" : "timeout");
    free(h.st);
    free(rbuf);
    return rc;
}
