/* ds18b20.c - the `ds18b20` driver: a DS18B20 on the kernel's 1-Wire bus
 * (w1_therm: /sys/bus/w1/devices/28-xxxxxxxxxxxx/w1_slave). Reading w1_slave
 * starts a conversion. A CRC failure or the 85 Cel power-on value is retried;
 * if every try fails the read is an error: a bad value is never stored. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "driver.h"
#include "kv.h"
#include "parse.h"
#include "sysfs.h"

static const struct tern_driver_option ds18b20_options[] = {
    {"root", "path", "/sys/bus/w1/devices", "1-Wire devices directory (tests: a simulated tree)"},
    {"id", "string", "", "device id, e.g. 28-0316a2793dff; empty = the only 28-* device"},
    {"retries", "int", "3", "extra tries after a CRC failure or the 85 Cel power-on value"},
    {"retry_delay", "duration", "100ms", "pause between tries"},
    {"accept_85", "bool", "false", "treat exactly 85.000 Cel as real (hot process)"},
    {"metric", "string", "temperature", "metric name"},
    {NULL, NULL, NULL, NULL},
};

struct ds18b20_state {
    char path[600];
    char id[64];
    char metric[TERN_ID_MAX];
    long retries;
    long long retry_delay_ms;
    int accept_85;
};

static int ds18b20_open(const struct tern_kv_list *l, void **state, char *err, size_t errcap)
{
    const struct tern_driver_option *o = ds18b20_options;
    struct ds18b20_state cfg;
    memset(&cfg, 0, sizeof cfg);
    char dir[512];
    const char *root = tern_kv_str(l, o, "root");
    const char *id = tern_kv_str(l, o, "id");
    if (tern_kv_check(l, o, err, errcap) < 0 ||
        tern_kv_long(l, o, "retries", 0, 20, &cfg.retries, err, errcap) < 0 ||
        tern_kv_duration_ms(l, o, "retry_delay", 10000, &cfg.retry_delay_ms, err, errcap) < 0 ||
        tern_kv_bool(l, o, "accept_85", &cfg.accept_85, err, errcap) < 0 ||
        tern_sysfs_find_dir(root, "28-", NULL, id, dir, sizeof dir, err, errcap) < 0)
        return -1;
    /* Without an id, refuse to guess between several sensors. */
    if (!*id && tern_sysfs_count(root, "28-") > 1) {
        snprintf(err, errcap, "several DS18B20 (28-*) under %s: set option 'id'", root);
        return -1;
    }
    snprintf(cfg.path, sizeof cfg.path, "%s/w1_slave", dir);
    snprintf(cfg.id, sizeof cfg.id, "%s", strrchr(dir, '/') + 1);
    snprintf(cfg.metric, sizeof cfg.metric, "%.63s", tern_kv_str(l, o, "metric"));
    struct ds18b20_state *s = tern_malloc(sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    *s = cfg;
    *state = s;
    return 0;
}

static int ds18b20_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err,
                        size_t errcap)
{
    struct ds18b20_state *s = state;
    *n = 0;
    if (max < 1) {
        snprintf(err, errcap, "no room for a metric");
        return TERN_READ_ERROR;
    }
    int status = TERN_W1_MALFORMED;
    for (long attempt = 0; attempt <= s->retries; attempt++) {
        if (attempt > 0 && s->retry_delay_ms > 0) {
            struct timespec ts = {s->retry_delay_ms / 1000, (s->retry_delay_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
        char buf[256];
        size_t len;
        if (tern_sysfs_read(s->path, buf, sizeof buf, &len, err, errcap) < 0)
            return TERN_READ_ERROR; /* device gone: retrying the same file will not help */
        double c;
        status = tern_parse_w1_slave(buf, len, &c);
        if (status == TERN_W1_POWER_ON && s->accept_85) {
            c = 85.0;
            status = TERN_W1_OK;
        }
        if (status == TERN_W1_OK) {
            snprintf(out[0].name, sizeof out[0].name, "%s", s->metric);
            snprintf(out[0].unit, sizeof out[0].unit, "Cel");
            out[0].value = c;
            *n = 1;
            return TERN_READ_OK;
        }
        if (status != TERN_W1_CRC && status != TERN_W1_POWER_ON)
            break; /* malformed or out of range: the same on every try */
    }
    snprintf(err, errcap, "%s: %s (%ld tries)", s->id, tern_w1_status_text(status),
             s->retries + 1);
    return TERN_READ_ERROR;
}

static void ds18b20_close(void *state) { tern_free(state); }

static void ds18b20_describe(void *state, char *buf, size_t cap)
{
    struct ds18b20_state *s = state;
    snprintf(buf, cap, "DS18B20 %s on 1-Wire", s->id);
}

const struct tern_driver tern_driver_ds18b20 = {
    .name = "ds18b20",
    .summary = "DS18B20 temperature on the Linux 1-Wire bus (w1_therm)",
    .options = ds18b20_options,
    .open = ds18b20_open,
    .read = ds18b20_read,
    .close = ds18b20_close,
    .describe = ds18b20_describe,
};
