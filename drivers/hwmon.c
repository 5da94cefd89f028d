/* hwmon.c - the `hwmon` driver: every *_input attribute of one hwmon chip,
 * scaled from the kernel's units (Documentation/hwmon/sysfs-interface) to SI. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "kv.h"
#include "sysfs.h"

static const struct tern_driver_option hwmon_options[] = {
    {"root", "path", "/sys/class/hwmon", "hwmon class directory (tests: a simulated tree)"},
    {"chip", "string", "", "hwmonN directory or chip name (e.g. coretemp); empty = first chip"},
    {"inputs", "list", "", "comma-separated inputs (e.g. temp1,fan1); empty = all"},
    {NULL, NULL, NULL, NULL},
};

/* Kernel unit -> SI. pressure has no kernel ABI; it is taken as Pa. */
static const struct {
    const char *prefix;
    const char *unit;
    double scale;
} classes[] = {
    {"temp", "Cel", 1e-3},  {"in", "V", 1e-3},       {"curr", "A", 1e-3},
    {"power", "W", 1e-6},   {"energy", "J", 1e-6},   {"fan", "/min", 1},
    {"humidity", "%", 1e-3}, {"pressure", "Pa", 1},
};

/* "temp1_input" -> class index and stem "temp1"; -1 if not an input file. */
static int classify(const char *file, char *stem, size_t cap)
{
    size_t len = strlen(file);
    if (len < 7 || strcmp(file + len - 6, "_input") != 0 || len - 6 >= cap)
        return -1;
    memcpy(stem, file, len - 6);
    stem[len - 6] = '\0';
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        size_t pl = strlen(classes[c].prefix);
        if (strncmp(stem, classes[c].prefix, pl) != 0 || stem[pl] == '\0')
            continue;
        const char *d = stem + pl;
        while (*d >= '0' && *d <= '9')
            d++;
        if (*d == '\0')
            return (int)c;
    }
    return -1;
}

static int scan_inputs(struct tern_sysfs_device *s, const char *dir, const char *want, char *err,
                       size_t errcap)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, versionsort);
    if (n < 0)
        return 0;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char stem[64];
        int c = classify(list[i]->d_name, stem, sizeof stem);
        if (c < 0 || !tern_list_has(want, stem))
            continue;
        if (s->n >= TERN_METRICS_MAX) {
            snprintf(err, errcap, "%s: more than %d inputs; choose some with 'inputs'", dir,
                     TERN_METRICS_MAX);
            rc = -1;
            break;
        }
        struct tern_sysfs_channel *ch = &s->ch[s->n++];
        if (tern_pathf(ch->input, sizeof ch->input, "%s/%s", dir, list[i]->d_name) < 0) {
            snprintf(err, errcap, "%s: path too long", dir);
            rc = -1;
            break;
        }
        if (tern_pathf(ch->fault, sizeof ch->fault, "%s/%s_fault", dir, stem) < 0 ||
            access(ch->fault, R_OK) != 0)
            ch->fault[0] = '\0';
        char label_path[600], label[64];
        snprintf(label_path, sizeof label_path, "%s/%s_label", dir, stem);
        if (tern_sysfs_read_line(label_path, label, sizeof label) == 0 && label[0])
            tern_metric_name(label, ch->metric, sizeof ch->metric);
        if (!ch->metric[0])
            snprintf(ch->metric, sizeof ch->metric, "%s", stem);
        snprintf(ch->unit, sizeof ch->unit, "%s", classes[c].unit);
        ch->scale = classes[c].scale;
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

static int hwmon_open(const struct tern_kv_list *l, void **state, char *err, size_t errcap)
{
    const struct tern_driver_option *o = hwmon_options;
    struct tern_sysfs_device *s = NULL;
    if (tern_kv_check(l, o, err, errcap) < 0 ||
        tern_sysfs_device_open(tern_kv_str(l, o, "root"), "hwmon", tern_kv_str(l, o, "chip"),
                               &s, err, errcap) < 0)
        return -1;
    const char *dir = s->dir;
    char path[1100];
    const char *want = tern_kv_str(l, o, "inputs");
    if (scan_inputs(s, dir, want, err, errcap) < 0)
        goto fail;
    /* Older drivers keep their attributes in the device/ subdirectory. */
    snprintf(path, sizeof path, "%s/device", dir);
    if (s->n == 0 && scan_inputs(s, path, want, err, errcap) < 0)
        goto fail;
    if (s->n == 0) {
        snprintf(err, errcap, "%s: no %s*_input attributes", dir, *want ? "matching " : "");
        goto fail;
    }
    tern_sysfs_unique_names(s->ch, s->n);
    *state = s;
    return 0;
fail:
    tern_sysfs_device_close(s);
    return -1;
}

static void hwmon_describe(void *state, char *buf, size_t cap)
{
    struct tern_sysfs_device *s = state;
    snprintf(buf, cap, "hwmon chip %s, %zu inputs", s->name, s->n);
}

const struct tern_driver tern_driver_hwmon = {
    .name = "hwmon",
    .summary = "Linux hwmon chip inputs (temp, in, curr, power, energy, fan, humidity)",
    .options = hwmon_options,
    .open = hwmon_open,
    .read = tern_sysfs_device_read,
    .close = tern_sysfs_device_close,
    .describe = hwmon_describe,
};
