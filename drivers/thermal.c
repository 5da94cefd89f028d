/* thermal.c - the `thermal` driver: one Linux thermal zone
 * (/sys/class/thermal/thermal_zoneN/temp, milli-Cel) as a temperature. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "driver.h"
#include "kv.h"
#include "sysfs.h"

static const struct tern_driver_option thermal_options[] = {
    {"root", "path", "/sys/class/thermal", "thermal class directory (tests: a simulated tree)"},
    {"zone", "string", "thermal_zone0", "zone directory name or zone type (e.g. x86_pkg_temp)"},
    {"metric", "string", "temperature", "metric name"},
    {NULL, NULL, NULL, NULL},
};

struct thermal_state {
    struct tern_sysfs_channel ch;
    char type[64];
};

static int thermal_open(const struct tern_kv_list *l, void **state, char *err, size_t errcap)
{
    const struct tern_driver_option *o = thermal_options;
    if (tern_kv_check(l, o, err, errcap) < 0)
        return -1;
    char dir[1024];
    if (tern_sysfs_find_dir(tern_kv_str(l, o, "root"), "thermal_zone", "type",
                            tern_kv_str(l, o, "zone"), dir, sizeof dir, err, errcap) < 0)
        return -1;
    struct thermal_state *s = tern_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (tern_pathf(s->ch.input, sizeof s->ch.input, "%s/temp", dir) < 0) {
        snprintf(err, errcap, "%s: path too long", dir);
        tern_free(s);
        return -1;
    }
    snprintf(s->ch.metric, sizeof s->ch.metric, "%.63s", tern_kv_str(l, o, "metric"));
    snprintf(s->ch.unit, sizeof s->ch.unit, "Cel");
    s->ch.scale = 0.001; /* the kernel reports milli-degrees Celsius */
    char path[1100];
    snprintf(path, sizeof path, "%s/type", dir);
    if (tern_sysfs_read_line(path, s->type, sizeof s->type) < 0)
        snprintf(s->type, sizeof s->type, "?");
    /* Fail at open, not at the first read, when the zone has no readable temp. */
    double v;
    if (tern_sysfs_read_number(s->ch.input, &v, err, errcap) < 0) {
        tern_free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int thermal_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err,
                        size_t errcap)
{
    struct thermal_state *s = state;
    return tern_sysfs_channels_read(&s->ch, 1, out, max, n, err, errcap);
}

static void thermal_close(void *state) { tern_free(state); }

static void thermal_describe(void *state, char *buf, size_t cap)
{
    struct thermal_state *s = state;
    snprintf(buf, cap, "thermal zone %s (%s)", s->ch.input, s->type);
}

const struct tern_driver tern_driver_thermal = {
    .name = "thermal",
    .summary = "Linux thermal zone temperature (/sys/class/thermal)",
    .options = thermal_options,
    .open = thermal_open,
    .read = thermal_read,
    .close = thermal_close,
    .describe = thermal_describe,
};
