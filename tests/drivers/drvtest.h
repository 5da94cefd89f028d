/* drvtest.h - helpers for driver tests: open a driver from "key=value"
 * strings and read one sample, as the agent would. */
#ifndef TERN_TEST_DRVTEST_H
#define TERN_TEST_DRVTEST_H

#include <stdio.h>
#include <string.h>

#include "driver.h"

struct drv {
    const struct tern_driver *d;
    void *st;
};

/* Opens driver name with n "key=value" options (config lines 10, 11, ...).
 * Returns 0, or -1 with err filled. */
static inline int drv_open(struct drv *x, const char *name, char *err, size_t errcap, int n,
                           const char *const *kv)
{
    static char keys[32][64], vals[32][256];
    struct tern_kv items[32];
    for (int i = 0; i < n && i < 32; i++) {
        /* Split at the first '=' and trim blanks, as the INI reader does. */
        const char *eq = strchr(kv[i], '=');
        int kl = (int)(eq - kv[i]);
        while (kl > 0 && kv[i][kl - 1] == ' ')
            kl--;
        const char *v = eq + 1;
        while (*v == ' ')
            v++;
        snprintf(keys[i], sizeof keys[i], "%.*s", kl, kv[i]);
        snprintf(vals[i], sizeof vals[i], "%s", v);
        items[i] = (struct tern_kv){keys[i], vals[i], 10 + i};
    }
    struct tern_kv_list l = {items, (size_t)n};
    x->d = tern_driver_find(name);
    x->st = NULL;
    if (!x->d) {
        snprintf(err, errcap, "no driver %s", name);
        return -1;
    }
    return x->d->open(&l, &x->st, err, errcap);
}
#define DRV_OPEN(x, name, err, ...)                                                         \
    drv_open(x, name, err, sizeof err,                                                      \
             (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)),                 \
             (const char *[]){__VA_ARGS__})

static inline int drv_read(struct drv *x, struct tern_metric *m, size_t *n, char *err,
                           size_t errcap)
{
    err[0] = '\0';
    return x->d->read(x->st, m, TERN_METRICS_MAX, n, err, errcap);
}

static inline void drv_close(struct drv *x)
{
    if (x->st)
        x->d->close(x->st);
    x->st = NULL;
}

/* The metric called name in m[0..n), or NULL. */
static inline const struct tern_metric *drv_metric(const struct tern_metric *m, size_t n,
                                                   const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].name, name) == 0)
            return &m[i];
    return NULL;
}

#endif
