/* config.h - tern-agent's configuration: one INI file, parsed with inih.
 *
 * Every key of [agent], [storage], [sensor.NAME] and [uplink.NAME] is
 * described once in a declarative table in config.c (key, type, default,
 * where it goes, help); --check, --help and docs/config.md are all printed
 * from those tables, plus the option tables of the drivers and uplinks, so
 * they cannot drift apart. */
#ifndef TERN_AGENT_CONFIG_H
#define TERN_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "driver.h"
#include "reading.h"
#include "uplink.h"

enum tern_log_target { TERN_LOGTO_STDERR = 0, TERN_LOGTO_SYSLOG = 1 };
enum tern_clock_check { TERN_CLOCK_OFF = 0, TERN_CLOCK_BUILD_DATE = 1, TERN_CLOCK_ADJTIMEX = 2 };

struct tern_agent_cfg {
    char *device_id;      /* "" in the file means the host name */
    char *data_dir;
    char *tags;           /* "k=v,k2=v2" as written */
    int log_level;        /* enum tern_log_level */
    int log;              /* enum tern_log_target */
    char *status_socket;  /* "" = <data_dir>/tern-agent.sock */
    int64_t queue_readings;   /* capacity of the sensor -> main thread queue */
    int64_t shutdown_timeout_ms;
    int64_t watchdog_stale_ms; /* healthy only if a sensor read within this */
    int clock_check;      /* enum tern_clock_check */
};

struct tern_storage_cfg {
    char *path;           /* "" = <data_dir>/queue.db */
    int64_t commit_every;
    int64_t commit_ms;
    int synchronous;      /* enum tern_store_sync */
    uint64_t max_bytes;
    int64_t max_age_ms;   /* 0 = no limit */
    int overflow;         /* enum tern_store_overflow */
};

/* Keys every [sensor.NAME] section has, whatever its driver. */
struct tern_sensor_common {
    char *driver;
    int64_t interval_ms;
    char *tags;
    int64_t retry_max_ms;
    int enabled;
};

/* Keys every [uplink.NAME] section has; handled by the forwarder. */
struct tern_uplink_common {
    int enabled;
    int64_t drain_rate;   /* readings/s, 0 = unlimited */
    int64_t drain_burst;  /* readings, 0 = one second of drain_rate */
    int64_t retry_delay_ms; /* pause before re-sending after a failed batch */
};

/* A section's driver- or uplink-specific options, in file order. The key and
 * value strings are owned by the config. */
struct tern_cfg_opts {
    struct tern_kv *items;
    size_t n, cap;
};

struct tern_sensor_cfg {
    char *name;
    int line;                      /* first key's line, for messages */
    struct tern_sensor_common c;
    struct tern_cfg_opts opts;     /* handed to driver->open */
    const struct tern_driver *driver;
    char tags_json[TERN_TAGS_MAX]; /* agent tags merged with sensor tags */
};

struct tern_uplink_cfg {
    char *name;
    int line;
    struct tern_uplink_common c;
    struct tern_cfg_opts opts;     /* handed to ops->open */
    const struct tern_uplink_ops *ops;
};

struct tern_config {
    char *source;                  /* file name or "<built-in>" */
    struct tern_agent_cfg agent;
    struct tern_storage_cfg storage;
    struct tern_sensor_cfg *sensors;
    size_t n_sensors;
    struct tern_uplink_cfg *uplinks;
    size_t n_uplinks;
    char device_id[TERN_ID_MAX];   /* resolved (host name when unset) */
    char tags_json[TERN_TAGS_MAX]; /* [agent] tags as JSON */
    char status_socket[512];       /* resolved */
    char storage_path[512];        /* resolved */
};

/* Parses and validates the INI file at path. On success *out owns a new
 * config (free with tern_config_free). On failure returns -1, *out is NULL
 * and err holds one line per problem, each "FILE:LINE: message". */
int tern_config_load(const char *path, struct tern_config **out, char *err, size_t errcap);
/* Same from INI text in memory; name is used in messages. */
int tern_config_load_string(const char *name, const char *text, struct tern_config **out,
                            char *err, size_t errcap);
void tern_config_free(struct tern_config *c);

/* Prints the resolved config as INI (every key, defaults filled in, secrets
 * masked). */
void tern_config_print(const struct tern_config *c, FILE *f);
/* Prints the reference of every key as Markdown (docs/config.md). */
void tern_config_doc(FILE *f);
/* Prints a compact list of the sections and keys, for --help. */
void tern_config_help(FILE *f);

/* Whether a key names a secret whose value must never be printed. */
int tern_config_is_secret(const char *key);

/* The value of key in opts, or def. */
const char *tern_cfg_opt(const struct tern_cfg_opts *o, const char *key, const char *def);

/* Levenshtein-closest candidate to word within a small distance, or NULL. */
const char *tern_did_you_mean(const char *word, const char *const *cands, size_t n);

#endif
