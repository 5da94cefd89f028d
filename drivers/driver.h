/* driver.h - the sensor driver interface.
 *
 * A driver is a const table of functions registered by name (see registry.c).
 * A sensor is a configured instance of a driver: open() turns the sensor's
 * options into private state, read() takes one sample that may carry several
 * metrics taken at the same instant (a BME280 gives temperature, humidity and
 * pressure). read() may block (slow bus); the agent calls each sensor from its
 * own thread so one slow sensor never delays another. */
#ifndef TERN_DRIVER_H
#define TERN_DRIVER_H

#include <stddef.h>
#include "reading.h"

#define TERN_METRICS_MAX 32 /* metrics one read() may return */

struct tern_metric {
    char name[TERN_ID_MAX];
    char unit[TERN_UNIT_MAX];
    double value; /* must be finite: an error is an error, never a 0 */
};

/* One "key = value" option of a [sensor.NAME] section, with its source line. */
struct tern_kv {
    const char *key;
    const char *value;
    int line;
};

struct tern_kv_list {
    const struct tern_kv *items;
    size_t n;
};

/* Declarative description of one driver option: used by --check to reject
 * unknown keys (with a "did you mean"), by --help and by docs/config.md.
 * A key ending in ".*" (e.g. "register.*") stands for a family of keys with
 * that prefix ("register.temperature"); such an entry has def "" and any
 * "at least one" rule is checked by the driver's open(). */
struct tern_driver_option {
    const char *key;
    const char *type;   /* "string", "int", "double", "bool", "duration", "path", ... */
    const char *def;    /* default as text, NULL when required */
    const char *help;
};

/* Result of read(). */
enum tern_read_status {
    TERN_READ_OK = 0,     /* *n metrics filled */
    TERN_READ_ERROR = -1, /* sample failed; err says why; retried with backoff */
};

struct tern_driver {
    const char *name;
    const char *summary; /* one line for --help */
    const struct tern_driver_option *options; /* terminated by {NULL} */

    /* Validates opts and opens the device. On success *state is owned by the
     * driver until close(). Returns 0, or -1 with err filled ("line N: ..."
     * when an option is at fault) and nothing to close. */
    int (*open)(const struct tern_kv_list *opts, void **state, char *err, size_t errcap);

    /* Takes one sample. Fills out[0..*n). Returns enum tern_read_status. */
    int (*read)(void *state, struct tern_metric *out, size_t max, size_t *n,
                char *err, size_t errcap);

    void (*close)(void *state);

    /* Optional (may be NULL): one-line description of this instance, e.g.
     * "BME280 on /dev/i2c-1 addr 0x76 (chip id 0x60)". */
    void (*describe)(void *state, char *buf, size_t cap);
};

/* Looks a driver up by name; NULL when unknown. */
const struct tern_driver *tern_driver_find(const char *name);
/* NULL-terminated list of all drivers built in. */
const struct tern_driver *const *tern_drivers(void);

/* Option helpers for drivers: the value of key, or def when absent. */
const char *tern_kv_get(const struct tern_kv_list *l, const char *key, const char *def);
/* Checks every key of l against the driver's options; -1 with err naming the
 * first unknown key, its line and the closest known key. */
int tern_kv_check(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                  char *err, size_t errcap);

#endif
