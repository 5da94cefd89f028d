/* iio.c - the `iio` driver: channels of one Industrial I/O device
 * (/sys/bus/iio/devices/iio:deviceN). A channel is in_<chan>_input (already
 * scaled) or in_<chan>_raw with _scale and _offset, value = (raw + offset) *
 * scale (Documentation/ABI/testing/sysfs-bus-iio), then IIO units -> SI. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "kv.h"
#include "sysfs.h"

static const struct tern_driver_option iio_options[] = {
    {"root", "path", "/sys/bus/iio/devices", "IIO devices directory (tests: a simulated tree)"},
    {"device", "string", "", "iio:deviceN or the device name (e.g. bme280); empty = first"},
    {"channels", "list", "", "comma-separated channels (e.g. temp,pressure); empty = all"},
    {NULL, NULL, NULL, NULL},
};

/* IIO channel type -> metric name, unit and factor from IIO units to SI. */
static const struct {
    const char *type;
    const char *metric;
    const char *unit;
    double factor;
} types[] = {
    {"temp", "temperature", "Cel", 1e-3},  /* milli-Cel */
    {"humidityrelative", "humidity", "%", 1e-3}, /* milli-percent */
    {"pressure", "pressure", "Pa", 1e3},   /* kPa */
    {"voltage", "voltage", "V", 1e-3},     /* mV */
    {"current", "current", "A", 1e-3},     /* mA */
    {"power", "power", "W", 1e-3},         /* mW */
    {"illuminance", "illuminance", "lx", 1},
    {"accel", "accel", "m/s2", 1},
    {"anglvel", "anglvel", "rad/s", 1},
    {"concentration", "concentration", "%", 1},
    {"resistance", "resistance", "Ohm", 1},
};

/* Reads an attribute that may exist per channel or per type; *v unchanged
 * when neither exists, -1 when one exists but is not a number. */
static int read_shared(const char *dir, const char *chan, const char *type, const char *what,
                       double *v, char *err, size_t errcap)
{
    char path[700];
    if (tern_pathf(path, sizeof path, "%s/in_%s_%s", dir, chan, what) < 0)
        return 0;
    char buf[8];
    size_t len;
    if (tern_sysfs_read(path, buf, sizeof buf, &len, err, errcap) < 0) {
        if (tern_pathf(path, sizeof path, "%s/in_%s_%s", dir, type, what) < 0 ||
            tern_sysfs_read(path, buf, sizeof buf, &len, err, errcap) < 0)
            return 0;
    }
    return tern_sysfs_read_number(path, v, err, errcap);
}

static int add_channel(struct tern_sysfs_device *s, const char *dir, const char *file, int raw,
                       char *err, size_t errcap)
{
    /* file is in_<chan>_input or in_<chan>_raw; chan is e.g. voltage0, temp. */
    size_t flen = strlen(file), slen = raw ? 4 : 6;
    char chan[64], type[64];
    if (flen - 3 - slen >= sizeof chan)
        return 0;
    memcpy(chan, file + 3, flen - 3 - slen);
    chan[flen - 3 - slen] = '\0';
    size_t t = 0;
    while (chan[t] && isalpha((unsigned char)chan[t]))
        t++;
    memcpy(type, chan, t);
    type[t] = '\0';
    if (s->n >= TERN_METRICS_MAX) {
        snprintf(err, errcap, "%s: more than %d channels; choose some with 'channels'", dir,
                 TERN_METRICS_MAX);
        return -1;
    }
    struct tern_sysfs_channel *ch = &s->ch[s->n];
    memset(ch, 0, sizeof *ch);
    if (tern_pathf(ch->input, sizeof ch->input, "%s/%s", dir, file) < 0) {
        snprintf(err, errcap, "%s: path too long", dir);
        return -1;
    }
    double factor = 1;
    const char *metric = chan;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(types[i].type, type) == 0) {
            factor = types[i].factor;
            snprintf(ch->unit, sizeof ch->unit, "%s", types[i].unit);
            /* "temp" -> "temperature", but "voltage0" keeps its index. */
            if (strcmp(chan, type) == 0)
                metric = types[i].metric;
        }
    }
    snprintf(ch->metric, sizeof ch->metric, "%s", metric);
    double scale = 1, offset = 0;
    if (raw && (read_shared(dir, chan, type, "scale", &scale, err, errcap) < 0 ||
                read_shared(dir, chan, type, "offset", &offset, err, errcap) < 0))
        return -1;
    ch->scale = scale * factor;
    ch->offset = offset;
    s->n++;
    return 0;
}

static int iio_open(const struct tern_kv_list *l, void **state, char *err, size_t errcap)
{
    const struct tern_driver_option *o = iio_options;
    struct tern_sysfs_device *s = NULL;
    struct dirent **list = NULL;
    int n = 0;
    if (tern_kv_check(l, o, err, errcap) < 0 ||
        tern_sysfs_device_open(tern_kv_str(l, o, "root"), "iio:device",
                               tern_kv_str(l, o, "device"), &s, err, errcap) < 0)
        return -1;
    const char *dir = s->dir;
    n = scandir(dir, &list, NULL, versionsort);
    if (n < 0) {
        snprintf(err, errcap, "%s: cannot list", dir);
        goto fail;
    }
    const char *want = tern_kv_str(l, o, "channels");
    for (int i = 0; i < n; i++) {
        const char *f = list[i]->d_name;
        size_t fl = strlen(f);
        if (strncmp(f, "in_", 3) != 0)
            continue;
        int is_input = fl > 9 && strcmp(f + fl - 6, "_input") == 0;
        int is_raw = fl > 7 && strcmp(f + fl - 4, "_raw") == 0;
        if (!is_input && !is_raw)
            continue;
        char chan[64];
        size_t cl = fl - 3 - (is_raw ? 4 : 6);
        if (cl >= sizeof chan)
            continue;
        memcpy(chan, f + 3, cl);
        chan[cl] = '\0';
        if (!tern_list_has(want, chan))
            continue;
        if (is_raw) {
            /* When a channel offers both, the processed value wins. */
            char in[700];
            if (tern_pathf(in, sizeof in, "%s/in_%s_input", dir, chan) < 0)
                continue;
            FILE *f2 = fopen(in, "r");
            if (f2) {
                fclose(f2);
                continue;
            }
        }
        if (add_channel(s, dir, f, is_raw, err, errcap) < 0)
            goto fail;
    }
    if (s->n == 0) {
        snprintf(err, errcap, "%s: no %sin_*_input or in_*_raw channels", dir,
                 *want ? "matching " : "");
        goto fail;
    }
    tern_sysfs_unique_names(s->ch, s->n);
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    *state = s;
    return 0;
fail:
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    tern_sysfs_device_close(s);
    return -1;
}

static void iio_describe(void *state, char *buf, size_t cap)
{
    struct tern_sysfs_device *s = state;
    snprintf(buf, cap, "IIO device %s, %zu channels", s->name, s->n);
}

const struct tern_driver tern_driver_iio = {
    .name = "iio",
    .summary = "Linux IIO device channels (raw with scale/offset, or processed)",
    .options = iio_options,
    .open = iio_open,
    .read = tern_sysfs_device_read,
    .close = tern_sysfs_device_close,
    .describe = iio_describe,
};
