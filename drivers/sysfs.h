/* sysfs.h - small file helpers shared by the sysfs-based drivers (thermal,
 * hwmon, iio, ds18b20). Internal to drivers/. */
#ifndef TERN_DRIVERS_SYSFS_H
#define TERN_DRIVERS_SYSFS_H

#include <stddef.h>
#include "driver.h"

/* One value file of a device and how to turn its text into SI units:
 * value = (number + offset) * scale. */
struct tern_sysfs_channel {
    char input[512];
    char fault[512]; /* a "<x>_fault" file that reads 1 on a fault; "" if none */
    char metric[TERN_ID_MAX];
    char unit[TERN_UNIT_MAX];
    double scale;
    double offset;
};

/* Reads every channel into out. All or nothing: one unreadable channel makes
 * the whole sample an error (err names it), never a partial or zero value. */
int tern_sysfs_channels_read(const struct tern_sysfs_channel *ch, size_t n,
                             struct tern_metric *out, size_t max, size_t *nout, char *err,
                             size_t errcap);
/* Gives ch[i].metric a unique name: on a clash, "_2", "_3"... are appended. */
void tern_sysfs_unique_names(struct tern_sysfs_channel *ch, size_t n);

/* Room for a device directory path, NUL included. */
#define TERN_SYSFS_DIR_MAX 1024

/* A device read as a set of channels found at open (a hwmon chip, an IIO
 * device): the whole state of the hwmon and iio drivers. */
struct tern_sysfs_device {
    char dir[TERN_SYSFS_DIR_MAX]; /* the device directory */
    char name[64];                /* its "name" attribute; "?" when unreadable */
    size_t n;                     /* channels in use */
    struct tern_sysfs_channel ch[TERN_METRICS_MAX];
};

/* Finds the device under root (tern_sysfs_find_dir with attribute "name", so
 * want is an entry name or a device name) and allocates its state with dir
 * and name filled and no channels yet. On success *out is the caller's, freed
 * with tern_sysfs_device_close; -1 with err and nothing allocated otherwise. */
int tern_sysfs_device_open(const char *root, const char *prefix, const char *want,
                           struct tern_sysfs_device **out, char *err, size_t errcap);
/* The read and close operations of a driver whose state is a
 * struct tern_sysfs_device (struct tern_driver .read and .close). */
int tern_sysfs_device_read(void *state, struct tern_metric *out, size_t max, size_t *n,
                           char *err, size_t errcap);
void tern_sysfs_device_close(void *state);

/* snprintf for paths: 0, or -1 when the result did not fit in cap (out
 * then holds a truncated path that must not be used). */
int tern_pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads at most cap - 1 bytes of path into buf (NUL-terminated), *len set.
 * 0, or -1 with err ("<path>: <strerror>") when it cannot be read. A sysfs
 * attribute is read in one read(2), as the kernel produces it in one go. */
int tern_sysfs_read(const char *path, char *buf, size_t cap, size_t *len, char *err,
                    size_t errcap);
/* Reads a one-number attribute. 0, or -1 with err naming the path and why. */
int tern_sysfs_read_number(const char *path, double *out, char *err, size_t errcap);
/* Reads a one-line text attribute (e.g. "name", "type"), newline stripped. */
int tern_sysfs_read_line(const char *path, char *buf, size_t cap);

/* Resolves a device directory under root: `want` is either an entry name
 * ("hwmon0") or the content of the entry's attribute file `attr` (e.g. the
 * hwmon "name" file, "coretemp"); entries are tried in sorted order and only
 * those starting with prefix count. Empty want = the first entry. Writes the
 * directory path to out. 0, or -1 with err. */
int tern_sysfs_find_dir(const char *root, const char *prefix, const char *attr,
                        const char *want, char *out, size_t outcap, char *err,
                        size_t errcap);

/* Number of entries of root starting with prefix (0 when unreadable). */
int tern_sysfs_count(const char *root, const char *prefix);

/* Makes a metric name from free text (a hwmon label): lower case, runs of
 * anything but [a-z0-9] become '_'. */
void tern_metric_name(const char *text, char *out, size_t cap);

/* Is name one of the comma-separated items of list? (Blanks around items are
 * ignored.) An empty list matches everything. */
int tern_list_has(const char *list, const char *name);

#endif
