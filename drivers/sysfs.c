/* sysfs.c - see sysfs.h. */
#include "sysfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "kv.h"
#include "parse.h"

int tern_pathf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int tern_sysfs_read(const char *path, char *buf, size_t cap, size_t *len, char *err,
                    size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n;
    do {
        n = read(fd, buf, cap - 1);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (n < 0) {
        /* hwmon returns EIO/ENODATA for a disconnected or faulty input. */
        snprintf(err, errcap, "%s: %s", path, strerror(saved));
        return -1;
    }
    buf[n] = '\0';
    *len = (size_t)n;
    return 0;
}

int tern_sysfs_read_number(const char *path, double *out, char *err, size_t errcap)
{
    char buf[64];
    size_t len;
    if (tern_sysfs_read(path, buf, sizeof buf, &len, err, errcap) < 0)
        return -1;
    if (tern_parse_sysfs_number(buf, len, out) < 0) {
        /* Show what was there, but keep the message printable. */
        for (size_t i = 0; i < len; i++)
            if (!isprint((unsigned char)buf[i]))
                buf[i] = buf[i] == '\n' ? '\0' : '?';
        snprintf(err, errcap, "%s: not a number: '%.24s'", path, buf);
        return -1;
    }
    return 0;
}

int tern_sysfs_read_line(const char *path, char *buf, size_t cap)
{
    char err[8];
    size_t len;
    if (tern_sysfs_read(path, buf, cap, &len, err, sizeof err) < 0)
        return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int prefix_filter_cmp(const struct dirent **a, const struct dirent **b)
{
    /* Natural order, so hwmon10 sorts after hwmon9. */
    return strverscmp((*a)->d_name, (*b)->d_name);
}

int tern_sysfs_find_dir(const char *root, const char *prefix, const char *attr,
                        const char *want, char *out, size_t outcap, char *err,
                        size_t errcap)
{
    struct dirent **list = NULL;
    int n = scandir(root, &list, NULL, prefix_filter_cmp);
    if (n < 0) {
        snprintf(err, errcap, "%s: %s", root, strerror(errno));
        return -1;
    }
    int found = -1;
    for (int i = 0; i < n && found < 0; i++) {
        const char *name = list[i]->d_name;
        if (strncmp(name, prefix, strlen(prefix)) != 0)
            continue;
        if (!want || !*want || strcmp(want, name) == 0) {
            found = i;
            break;
        }
        if (attr) {
            char path[4096], text[128];
            snprintf(path, sizeof path, "%s/%s/%s", root, name, attr);
            if (tern_sysfs_read_line(path, text, sizeof text) == 0 && strcmp(text, want) == 0)
                found = i;
        }
    }
    if (found >= 0)
        snprintf(out, outcap, "%s/%s", root, list[found]->d_name);
    else if (want && *want)
        snprintf(err, errcap, "%s: no %s* entry named '%s'%s%s", root, prefix, want,
                 attr ? " or with " : "", attr ? attr : "");
    else
        snprintf(err, errcap, "%s: no %s* entry", root, prefix);
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return found >= 0 ? 0 : -1;
}

int tern_sysfs_count(const char *root, const char *prefix)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

void tern_metric_name(const char *text, char *out, size_t cap)
{
    size_t o = 0;
    int gap = 0;
    for (const char *p = text; *p && o + 1 < cap; p++) {
        if (isalnum((unsigned char)*p)) {
            if (gap && o > 0 && o + 2 < cap)
                out[o++] = '_';
            out[o++] = (char)tolower((unsigned char)*p);
            gap = 0;
        } else {
            gap = 1;
        }
    }
    out[o] = '\0';
}

int tern_list_has(const char *list, const char *name)
{
    if (!list || !*list)
        return 1;
    size_t nl = strlen(name), len;
    const char *p = list, *item;
    while (tern_list_next(&p, &item, &len))
        if (len == nl && memcmp(item, name, nl) == 0)
            return 1;
    return 0;
}

int tern_sysfs_channels_read(const struct tern_sysfs_channel *ch, size_t n,
                             struct tern_metric *out, size_t max, size_t *nout, char *err,
                             size_t errcap)
{
    *nout = 0;
    if (n > max) {
        snprintf(err, errcap, "%zu channels but room for %zu metrics", n, max);
        return TERN_READ_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        double v, fault;
        if (ch[i].fault[0] && tern_sysfs_read_number(ch[i].fault, &fault, err, errcap) == 0 &&
            fault != 0) {
            snprintf(err, errcap, "%s: the chip reports a fault on this input", ch[i].fault);
            return TERN_READ_ERROR;
        }
        if (tern_sysfs_read_number(ch[i].input, &v, err, errcap) < 0)
            return TERN_READ_ERROR;
        v = (v + ch[i].offset) * ch[i].scale;
        snprintf(out[i].name, sizeof out[i].name, "%s", ch[i].metric);
        snprintf(out[i].unit, sizeof out[i].unit, "%s", ch[i].unit);
        out[i].value = v;
    }
    *nout = n;
    return TERN_READ_OK;
}

void tern_sysfs_unique_names(struct tern_sysfs_channel *ch, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        for (int k = 2;; k++) {
            int clash = 0;
            for (size_t j = 0; j < i && !clash; j++)
                clash = strcmp(ch[i].metric, ch[j].metric) == 0;
            if (!clash)
                break;
            char base[TERN_ID_MAX];
            snprintf(base, sizeof base, "%s", ch[i].metric);
            char *u = strrchr(base, '_');
            if (k > 2 && u)
                *u = '\0';
            snprintf(ch[i].metric, sizeof ch[i].metric, "%.50s_%d", base, k);
        }
    }
}

int tern_sysfs_device_open(const char *root, const char *prefix, const char *want,
                           struct tern_sysfs_device **out, char *err, size_t errcap)
{
    char dir[TERN_SYSFS_DIR_MAX];
    if (tern_sysfs_find_dir(root, prefix, "name", want, dir, sizeof dir, err, errcap) < 0)
        return -1;
    struct tern_sysfs_device *d = tern_calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    memcpy(d->dir, dir, sizeof dir);
    char path[sizeof dir + 8];
    snprintf(path, sizeof path, "%s/name", dir);
    if (tern_sysfs_read_line(path, d->name, sizeof d->name) < 0)
        snprintf(d->name, sizeof d->name, "?");
    *out = d;
    return 0;
}

int tern_sysfs_device_read(void *state, struct tern_metric *out, size_t max, size_t *n,
                           char *err, size_t errcap)
{
    struct tern_sysfs_device *d = state;
    return tern_sysfs_channels_read(d->ch, d->n, out, max, n, err, errcap);
}

void tern_sysfs_device_close(void *state) { tern_free(state); }
