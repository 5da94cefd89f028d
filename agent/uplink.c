/* uplink.c - the registry of uplinks: built into this binary (MQTT) or
 * loaded on first use from a module (Kafka).
 *
 * Why Kafka is a module: librdkafka and what it needs (libssl, libcrypto,
 * libsasl2, libzstd, liblz4, libz) cost ~0.8 MiB of resident memory in every
 * agent once linked, whether or not an [uplink.kafka] section exists
 * (bench/agent_mqtt.sh, rss_kib). uplink_kafka.so is dlopen()ed only when a
 * configuration names it (or --config-doc/--help list every uplink); it uses
 * the agent's own runtime (log, alloc, clock, wire codec), which tern-agent
 * exports for it (uplink_module.syms). Modules are looked for in
 * $TERN_MODULE_DIR, else next to the executable (the build tree), else in
 * TERN_MODULE_DIR as installed (<libdir>/tern). A loaded module is never
 * unloaded: its library may have threads of its own. */
#include "uplink.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef TERN_WITH_KAFKA
#include <dlfcn.h>
#endif

#ifdef TERN_WITH_MQTT
extern const struct tern_uplink_ops tern_uplink_mqtt;
#endif

struct uplink_entry {
    const char *name;
    const struct tern_uplink_ops *ops; /* built in, or once loaded */
    const char *module;                /* file name of the module, or NULL */
    const char *symbol;                /* its const struct tern_uplink_ops */
    int tried;                         /* loading was attempted (and failed) */
    char error[512];                   /* why it failed */
};

static struct uplink_entry entries[] = {
#ifdef TERN_WITH_MQTT
    {.name = "mqtt", .ops = &tern_uplink_mqtt},
#endif
#ifdef TERN_WITH_KAFKA
    {.name = "kafka", .module = "uplink_kafka.so", .symbol = "tern_uplink_kafka"},
#endif
    {.name = NULL},
};
/* Entries plus the terminator; loops use i + 1 < N_SLOTS so that a build
 * without any uplink compiles without "always false" warnings. */
#define N_SLOTS (sizeof entries / sizeof entries[0])

#ifdef TERN_WITH_KAFKA
#ifndef TERN_MODULE_DIR
#define TERN_MODULE_DIR "/usr/lib/tern"
#endif

/* Directory of /proc/self/exe into dir; 0 or -1. */
static int exe_dir(char *dir, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
    if (n <= 0)
        return -1;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static void *try_open(const char *dir, const char *file, char *path, size_t cap, char *err,
                      size_t errcap)
{
    if (snprintf(path, cap, "%s/%s", dir, file) >= (int)cap)
        return NULL;
    if (access(path, F_OK) != 0)
        return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        /* Bounded so the message fits any errcap >= 512 whole. */
        snprintf(err, errcap, "cannot load %.280s: %.200s", path, why ? why : "unknown error");
    }
    return h;
}

static int load(struct uplink_entry *e)
{
    char path[PATH_MAX], dir[PATH_MAX];
    void *h = NULL;
    e->error[0] = '\0';
    const char *env = getenv("TERN_MODULE_DIR");
    if (env && env[0]) {
        h = try_open(env, e->module, path, sizeof path, e->error, sizeof e->error);
    } else {
        if (exe_dir(dir, sizeof dir) == 0)
            h = try_open(dir, e->module, path, sizeof path, e->error, sizeof e->error);
        if (!h && !e->error[0])
            h = try_open(TERN_MODULE_DIR, e->module, path, sizeof path, e->error, sizeof e->error);
    }
    if (!h) {
        if (!e->error[0])
            snprintf(e->error, sizeof e->error, "module %s not found in %s%s (is it installed?)",
                     e->module, env && env[0] ? env : TERN_MODULE_DIR,
                     env && env[0] ? " ($TERN_MODULE_DIR)" : "");
        return -1;
    }
    const struct tern_uplink_ops *ops = dlsym(h, e->symbol);
    if (!ops || !ops->name || strcmp(ops->name, e->name) != 0) {
        snprintf(e->error, sizeof e->error, "%.300s has no uplink '%s' (symbol %s)", path, e->name,
                 e->symbol);
        dlclose(h);
        return -1;
    }
    e->ops = ops;
    return 0;
}
#endif

static const struct tern_uplink_ops *entry_ops(struct uplink_entry *e)
{
#ifdef TERN_WITH_KAFKA
    if (!e->ops && e->module && !e->tried) {
        e->tried = 1;
        load(e);
    }
#endif
    return e->ops;
}

const struct tern_uplink_ops *const *tern_uplinks(void)
{
    static const struct tern_uplink_ops *list[N_SLOTS];
    size_t n = 0;
    for (size_t i = 0; i + 1 < N_SLOTS; i++) {
        const struct tern_uplink_ops *ops = entry_ops(&entries[i]);
        if (ops)
            list[n++] = ops;
    }
    list[n] = NULL;
    return list;
}

const char *const *tern_uplink_names(void)
{
    static const char *names[N_SLOTS];
    size_t n = 0;
    for (size_t i = 0; i + 1 < N_SLOTS; i++)
        names[n++] = entries[i].name;
    names[n] = NULL;
    return names;
}

const struct tern_uplink_ops *tern_uplink_load(const char *name, char *err, size_t errcap)
{
    for (size_t i = 0; i + 1 < N_SLOTS; i++) {
        struct uplink_entry *e = &entries[i];
        if (strcmp(e->name, name) != 0)
            continue;
        const struct tern_uplink_ops *ops = entry_ops(e);
        if (!ops && err)
            snprintf(err, errcap, "%s", e->error);
        return ops;
    }
    if (err)
        snprintf(err, errcap, "not built in");
    return NULL;
}

const struct tern_uplink_ops *tern_uplink_find(const char *name)
{
    return tern_uplink_load(name, NULL, 0);
}
