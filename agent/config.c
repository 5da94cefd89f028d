/* config.c - see config.h. The tables below are the single description of
 * every fixed key; the parser, --check printer, --help and the Markdown
 * reference all walk them. */
#define INI_HANDLER_LINENO 1
#include "config.h"
#include "wire.h"

#include <ctype.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "kv.h"
#include "log.h"
#include "storage.h"
#include "units.h"

enum cfg_type {
    CFG_STRING,
    CFG_ID,          /* string of letters, digits, . _ - : (or empty) */
    CFG_PATH,
    CFG_TAGS,
    CFG_INT,
    CFG_BOOL,
    CFG_DURATION_S,  /* bare numbers are seconds */
    CFG_DURATION_MS, /* bare numbers are milliseconds */
    CFG_SIZE,
    CFG_ENUM,        /* int index into choices "a|b|c" */
};

struct cfg_key {
    const char *key;
    enum cfg_type type;
    const char *def; /* text, parsed like a value from the file; NULL = required */
    size_t off;      /* where the value goes in the section's struct */
    const char *choices; /* CFG_ENUM: "a|b|c"; CFG_INT: "min..max" */
    const char *help;
};

#define A(f) offsetof(struct tern_agent_cfg, f)
static const struct cfg_key agent_keys[] = {
    {"device_id", CFG_ID, "", A(device_id), NULL,
     "Device identity in every reading (letters, digits, . _ - :, at most 63 bytes). "
     "Empty: the host name."},
    {"data_dir", CFG_PATH, "/var/lib/tern-agent", A(data_dir), NULL,
     "Directory for the queue database and the status socket; created when missing."},
    {"tags", CFG_TAGS, "", A(tags), NULL,
     "Tags added to every reading, as \"key=value,key2=value2\"."},
    {"log_level", CFG_ENUM, "info", A(log_level), "error|warn|info|debug", "Least severe level logged."},
    {"log", CFG_ENUM, "stderr", A(log), "stderr|syslog", "Where logs go (syslog: facility daemon)."},
    {"status_socket", CFG_PATH, "", A(status_socket), NULL,
     "Unix socket served for `tern-agent status`. Empty: DATA_DIR/tern-agent.sock."},
    {"queue_readings", CFG_INT, "2048", A(queue_readings), "16..16777216",
     "Capacity (readings) of the in-memory queue from sensor threads to the storage writer; "
     "readings that do not fit are dropped and counted (reason queue_full)."},
    {"shutdown_timeout", CFG_DURATION_S, "10s", A(shutdown_timeout_ms), NULL,
     "On SIGTERM, how long uplinks may take to deliver what is in flight."},
    {"watchdog_stale", CFG_DURATION_S, "60s", A(watchdog_stale_ms), NULL,
     "systemd watchdog is fed only if some sensor read successfully within this."},
    {"clock_check", CFG_ENUM, "build_date", A(clock_check), "off|build_date|adjtimex",
     "When the system clock counts as unsynchronised, so that readings get flags bit 0 "
     "(clock_unsynced): build_date = while it is before the build date; adjtimex = also while the "
     "kernel reports STA_UNSYNC (use with NTP/chrony); off = never. Readings of the same boot "
     "still queued when the clock gets synchronised are corrected by the step it took and lose "
     "the flag (DATA_DIR/clock.state keeps the offset)."},
    {NULL, 0, NULL, 0, NULL, NULL},
};
#undef A

#define S(f) offsetof(struct tern_storage_cfg, f)
static const struct cfg_key storage_keys[] = {
    {"path", CFG_PATH, "", S(path), NULL, "Queue database file. Empty: DATA_DIR/queue.db."},
    {"commit_every", CFG_INT, "1000", S(commit_every), "1..1000000",
     "Readings per transaction commit."},
    {"commit_ms", CFG_DURATION_MS, "1000ms", S(commit_ms), NULL,
     "Longest time a reading stays uncommitted (not durable, not sent)."},
    {"synchronous", CFG_ENUM, "full", S(synchronous), "off|normal|full",
     "SQLite durability: off and normal survive a process crash; only full also survives "
     "power loss (one fsync per commit). See docs/storage.md."},
    {"max_bytes", CFG_SIZE, "256MiB", S(max_bytes), NULL, "Cap of the queue file size."},
    {"max_age", CFG_DURATION_S, "0", S(max_age_ms), NULL,
     "Readings older than this are dropped (counted, reason age). 0: no limit."},
    {"overflow", CFG_ENUM, "drop_oldest", S(overflow), "drop_oldest|drop_newest",
     "What to drop when max_bytes is reached."},
    {NULL, 0, NULL, 0, NULL, NULL},
};
#undef S

#define SC(f) offsetof(struct tern_sensor_common, f)
static const struct cfg_key sensor_keys[] = {
    {"driver", CFG_STRING, NULL, SC(driver), NULL, "Driver name (see the driver options below). Required."},
    {"interval", CFG_DURATION_S, "1s", SC(interval_ms), NULL,
     "Polling period on the monotonic clock."},
    {"tags", CFG_TAGS, "", SC(tags), NULL,
     "Tags added to this sensor's readings; override [agent] tags with the same key."},
    {"retry_max", CFG_DURATION_S, "60s", SC(retry_max_ms), NULL,
     "Cap of the backoff between retries of a failing sensor (exponential, full jitter, from interval)."},
    {"enabled", CFG_BOOL, "true", SC(enabled), NULL, "false keeps the section but does not poll."},
    {NULL, 0, NULL, 0, NULL, NULL},
};
#undef SC

#define UC(f) offsetof(struct tern_uplink_common, f)
static const struct cfg_key uplink_keys[] = {
    {"enabled", CFG_BOOL, "true", UC(enabled), NULL, "false keeps the section but does not send."},
    {"drain_rate", CFG_INT, "10000", UC(drain_rate), "0..100000000",
     "Token bucket rate (readings/s) for handing readings to this uplink, so a reconnecting fleet "
     "drains its backlog without flattening the broker. 0: unlimited."},
    {"drain_burst", CFG_INT, "0", UC(drain_burst), "0..100000000",
     "Token bucket size (readings). 0: one second of drain_rate."},
    {"retry_delay", CFG_DURATION_MS, "1s", UC(retry_delay_ms), NULL,
     "Pause before re-sending from the acknowledged cursor after a batch failed."},
    {NULL, 0, NULL, 0, NULL, NULL},
};
#undef UC

static const char *const type_names[] = {
    [CFG_STRING] = "string",        [CFG_ID] = "id",         [CFG_PATH] = "path",     [CFG_TAGS] = "tags",
    [CFG_INT] = "int",              [CFG_BOOL] = "bool",     [CFG_DURATION_S] = "duration",
    [CFG_DURATION_MS] = "duration", [CFG_SIZE] = "size",     [CFG_ENUM] = "enum",
};

/* ---- helpers -------------------------------------------------------- */

struct errbuf {
    char *buf;
    size_t cap, len;
    int count;
};

static void err_add(struct errbuf *e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_add(struct errbuf *e, const char *file, int line, const char *fmt, ...)
{
    e->count++;
    if (!e->buf || e->len + 1 >= e->cap)
        return;
    int n = line > 0 ? snprintf(e->buf + e->len, e->cap - e->len, "%s%s:%d: ",
                                e->len ? "\n" : "", file, line)
                     : snprintf(e->buf + e->len, e->cap - e->len, "%s%s: ", e->len ? "\n" : "", file);
    if (n < 0 || (size_t)n >= e->cap - e->len) {
        e->len = e->cap - 1;
        return;
    }
    e->len += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= e->cap - e->len)
        e->len = e->cap - 1;
    else
        e->len += (size_t)n;
}

static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

const char *tern_did_you_mean(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t limit = strlen(word) / 3 + 1;
    if (limit < 2)
        limit = 2;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        size_t d = levenshtein(word, cands[i]);
        /* A candidate that contains the word (or vice versa) is a good hint too. */
        if (d > limit && !strstr(cands[i], word) && !strstr(word, cands[i]))
            continue;
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best;
}

int tern_config_is_secret(const char *key)
{
    size_t n = strlen(key);
    if ((n > 5 && strcmp(key + n - 5, "_file") == 0) || (n > 4 && strcmp(key + n - 4, "_env") == 0))
        return 0;
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token");
}

const char *tern_cfg_opt(const struct tern_cfg_opts *o, const char *key, const char *def)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->items[i].key, key) == 0)
            return o->items[i].value;
    return def;
}

static const struct cfg_key *find_key(const struct cfg_key *t, const char *key)
{
    for (; t->key; t++)
        if (strcmp(t->key, key) == 0)
            return t;
    return NULL;
}

/* Index of word in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *word)
{
    int idx = 0;
    const char *p = choices;
    size_t wl = strlen(word);
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == wl && strncmp(p, word, len) == 0)
            return idx;
        if (!bar)
            return -1;
        p = bar + 1;
        idx++;
    }
}

static void choice_name(const char *choices, int idx, char *buf, size_t cap)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (!p) {
        snprintf(buf, cap, "?");
        return;
    }
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    snprintf(buf, cap, "%.*s", (int)len, p);
}

static int valid_id(const char *s)
{
    if (!*s || strlen(s) >= TERN_ID_MAX)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-:", *s))
            return 0;
    return 1;
}

/* Parses "k=v,k2=v2" into JSON object text, merging into an existing object
 * body (json holds the members without braces). Returns 0 or -1 with why. */
struct tagset {
    char key[16][64];
    char val[16][128];
    int n;
};

static int tags_parse(const char *s, struct tagset *t, char *why, size_t cap)
{
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *eq = strchr(p, '=');
        const char *comma = strchr(p, ',');
        if (!eq || (comma && comma < eq)) {
            snprintf(why, cap, "tag without '=' (expected key=value,key2=value2)");
            return -1;
        }
        size_t kl = (size_t)(eq - p);
        while (kl && p[kl - 1] == ' ')
            kl--;
        const char *v = eq + 1;
        while (*v == ' ')
            v++;
        size_t vl = comma ? (size_t)(comma - v) : strlen(v);
        while (vl && v[vl - 1] == ' ')
            vl--;
        if (kl == 0 || kl >= 64 || vl >= 128) {
            snprintf(why, cap, "tag key empty or too long (key < 64, value < 128 bytes)");
            return -1;
        }
        for (size_t i = 0; i < kl; i++)
            if (!isalnum((unsigned char)p[i]) && !strchr("._-", p[i])) {
                snprintf(why, cap, "tag key '%.*s' may only hold letters, digits, '.', '_', '-'",
                         (int)kl, p);
                return -1;
            }
        for (size_t i = 0; i < vl; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == '"' || v[i] == '\\') {
                snprintf(why, cap, "tag value for '%.*s' holds a control character, quote or backslash",
                         (int)kl, p);
                return -1;
            }
        int slot = -1;
        for (int i = 0; i < t->n; i++)
            if (strlen(t->key[i]) == kl && strncmp(t->key[i], p, kl) == 0)
                slot = i;
        if (slot < 0) {
            if (t->n == 16) {
                snprintf(why, cap, "more than 16 tags");
                return -1;
            }
            slot = t->n++;
        }
        snprintf(t->key[slot], sizeof t->key[slot], "%.*s", (int)kl, p);
        snprintf(t->val[slot], sizeof t->val[slot], "%.*s", (int)vl, v);
        p = comma ? comma + 1 : v + strlen(v);
    }
    return 0;
}

/* Canonical tags text (sorted keys, escaped values): the wire codec's form,
 * so tags built here and tags decoded by the relay compare byte for byte. */
static int tags_json(const struct tagset *t, char *out, size_t cap)
{
    const char *keys[16], *vals[16];
    for (int i = 0; i < t->n; i++) {
        keys[i] = t->key[i];
        vals[i] = t->val[i];
    }
    return tern_wire_tags(keys, vals, (size_t)t->n, out, cap);
}

/* Parses value into the field described by k at base. Returns 0 or -1 with why. */
static int set_value(const struct cfg_key *k, void *base, const char *value, char *why, size_t cap)
{
    char *field = (char *)base + k->off;
    switch (k->type) {
    case CFG_STRING:
    case CFG_ID:
    case CFG_PATH:
    case CFG_TAGS: {
        if (k->type == CFG_ID && value[0] && !valid_id(value)) {
            snprintf(why, cap, "'%s' is invalid (letters, digits, . _ - :, at most %d bytes)", value,
                     TERN_ID_MAX - 1);
            return -1;
        }
        if (k->type == CFG_TAGS) {
            struct tagset t = {.n = 0};
            if (tags_parse(value, &t, why, cap) < 0)
                return -1;
        }
        char *dup = tern_strdup(value);
        if (!dup) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        tern_free(*(char **)field);
        *(char **)field = dup;
        return 0;
    }
    case CFG_INT: {
        int64_t min = INT64_MIN, max = INT64_MAX, v;
        if (k->choices)
            sscanf(k->choices, "%" SCNd64 "..%" SCNd64, &min, &max);
        if (tern_parse_int(value, min, max, &v) < 0) {
            snprintf(why, cap, "'%s' is not an integer in %s", value, k->choices ? k->choices : "range");
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    case CFG_BOOL:
        if (tern_parse_bool(value, (int *)field) < 0) {
            snprintf(why, cap, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", value);
            return -1;
        }
        return 0;
    case CFG_DURATION_S:
    case CFG_DURATION_MS:
        if (tern_parse_duration_ms(value, k->type == CFG_DURATION_S ? 1000 : 1, (int64_t *)field) < 0) {
            snprintf(why, cap, "'%s' is not a duration (e.g. 500ms, 10s, 5m, 1h, 1d)", value);
            return -1;
        }
        return 0;
    case CFG_SIZE:
        if (tern_parse_size(value, (uint64_t *)field) < 0) {
            snprintf(why, cap, "'%s' is not a size (e.g. 4096, 64KiB, 256MiB, 1GB)", value);
            return -1;
        }
        return 0;
    case CFG_ENUM: {
        int idx = choice_index(k->choices, value);
        if (idx < 0) {
            snprintf(why, cap, "'%s' is not one of %s", value, k->choices);
            return -1;
        }
        *(int *)field = idx;
        return 0;
    }
    }
    return -1;
}

static void free_fields(const struct cfg_key *t, void *base)
{
    for (; t->key; t++)
        if (t->type == CFG_STRING || t->type == CFG_ID || t->type == CFG_PATH || t->type == CFG_TAGS) {
            char **f = (char **)((char *)base + t->off);
            tern_free(*f);
            *f = NULL;
        }
}

/* Validates a value against a driver/uplink option's textual type. */
static int check_opt_type(const char *type, const char *value, char *why, size_t cap)
{
    int64_t i64;
    uint64_t u64;
    double d;
    int b;
    if (!type)
        return 0;
    /* "a|b|c": an enumeration spelled out in the type. */
    if (strchr(type, '|') && choice_index(type, value) < 0) {
        snprintf(why, cap, "'%s' is not one of %s", value, type);
        return -1;
    }
    if (strcmp(type, "int") == 0 && tern_parse_int(value, INT64_MIN, INT64_MAX, &i64) < 0) {
        snprintf(why, cap, "'%s' is not an integer", value);
        return -1;
    }
    if (strcmp(type, "double") == 0 && tern_parse_double(value, &d) < 0) {
        snprintf(why, cap, "'%s' is not a number", value);
        return -1;
    }
    if (strcmp(type, "bool") == 0 && tern_parse_bool(value, &b) < 0) {
        snprintf(why, cap, "'%s' is not a boolean (true/false)", value);
        return -1;
    }
    if (strcmp(type, "duration") == 0 && tern_parse_duration_ms(value, 1000, &i64) < 0) {
        snprintf(why, cap, "'%s' is not a duration (e.g. 500ms, 10s, 5m)", value);
        return -1;
    }
    if (strcmp(type, "size") == 0 && tern_parse_size(value, &u64) < 0) {
        snprintf(why, cap, "'%s' is not a size (e.g. 64KiB, 256MiB)", value);
        return -1;
    }
    return 0;
}

/* ---- parsing ---------------------------------------------------------- */

struct raw_entry {
    char *section, *key, *value;
    int line;
};

struct parse_ctx {
    struct raw_entry *e;
    size_t n, cap;
    int oom;
};

static int on_ini(void *user, const char *section, const char *name, const char *value, int line)
{
    struct parse_ctx *p = user;
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 32;
        struct raw_entry *ne = tern_realloc(p->e, nc * sizeof *ne);
        if (!ne) {
            p->oom = 1;
            return 0;
        }
        p->e = ne;
        p->cap = nc;
    }
    struct raw_entry *r = &p->e[p->n];
    r->section = tern_strdup(section);
    r->key = tern_strdup(name);
    r->value = tern_strdup(value ? value : "");
    r->line = line;
    if (!r->section || !r->key || !r->value) {
        tern_free(r->section);
        tern_free(r->key);
        tern_free(r->value);
        p->oom = 1;
        return 0;
    }
    p->n++;
    return 1;
}

static void raw_free(struct parse_ctx *p)
{
    for (size_t i = 0; i < p->n; i++) {
        tern_free(p->e[i].section);
        tern_free(p->e[i].key);
        tern_free(p->e[i].value);
    }
    tern_free(p->e);
}

static int opts_add(struct tern_cfg_opts *o, const char *key, const char *value, int line)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        struct tern_kv *ni = tern_realloc(o->items, nc * sizeof *ni);
        if (!ni)
            return -1;
        o->items = ni;
        o->cap = nc;
    }
    char *k = tern_strdup(key), *v = tern_strdup(value);
    if (!k || !v) {
        tern_free(k);
        tern_free(v);
        return -1;
    }
    o->items[o->n++] = (struct tern_kv){.key = k, .value = v, .line = line};
    return 0;
}

static void opts_free(struct tern_cfg_opts *o)
{
    for (size_t i = 0; i < o->n; i++) {
        tern_free((char *)o->items[i].key);
        tern_free((char *)o->items[i].value);
    }
    tern_free(o->items);
    memset(o, 0, sizeof *o);
}

/* Sets every key that has a default. Returns 0, or -1 when out of memory
 * (the defaults themselves always parse). */
static int apply_defaults(const struct cfg_key *t, void *base)
{
    char why[128];
    for (; t->key; t++)
        if (t->def && set_value(t, base, t->def, why, sizeof why) < 0)
            return -1;
    return 0;
}

/* Suggests a known key of table t or, when given, of opts. */
static void unknown_key(struct errbuf *e, const char *file, int line, const char *section,
                        const char *key, const struct cfg_key *t,
                        const struct tern_driver_option *opts, const char *owner)
{
    const char *cands[128];
    size_t n = 0;
    for (; t && t->key && n < 128; t++)
        cands[n++] = t->key;
    for (; opts && opts->key && n < 128; opts++)
        cands[n++] = opts->key;
    const char *hint = tern_did_you_mean(key, cands, n);
    if (strstr(key, "password") && tern_config_is_secret(key))
        err_add(e, file, line,
                "[%s] unknown key '%s'%s%s: passwords are never written in the config; use "
                "password_file or password_env",
                section, key, owner ? " for " : "", owner ? owner : "");
    else if (hint)
        err_add(e, file, line, "[%s] unknown key '%s'%s%s (did you mean '%s'?)", section, key,
                owner ? " for " : "", owner ? owner : "", hint);
    else
        err_add(e, file, line, "[%s] unknown key '%s'%s%s", section, key, owner ? " for " : "",
                owner ? owner : "");
}

static struct tern_sensor_cfg *find_sensor(struct tern_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_sensors; i++)
        if (strcmp(c->sensors[i].name, name) == 0)
            return &c->sensors[i];
    return NULL;
}

static struct tern_uplink_cfg *find_uplink(struct tern_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_uplinks; i++)
        if (strcmp(c->uplinks[i].name, name) == 0)
            return &c->uplinks[i];
    return NULL;
}

/* Checks a section's specific options against an option table. */
static void check_opts(struct errbuf *e, const char *file, int line, const char *section,
                       const struct tern_cfg_opts *o, const struct tern_driver_option *table,
                       const char *owner)
{
    for (size_t i = 0; i < o->n; i++) {
        const struct tern_driver_option *d = table ? tern_opt_find(table, o->items[i].key) : NULL;
        if (!d) {
            unknown_key(e, file, o->items[i].line, section, o->items[i].key, NULL, table, owner);
            continue;
        }
        char why[256];
        if (o->items[i].value[0] && check_opt_type(d->type, o->items[i].value, why, sizeof why) < 0)
            err_add(e, file, o->items[i].line, "[%s] %s: %s", section, o->items[i].key, why);
    }
    for (const struct tern_driver_option *d = table; d && d->key; d++)
        if (!d->def && !strchr(d->key, '*') && !tern_cfg_opt(o, d->key, NULL))
            err_add(e, file, line, "[%s] missing required key '%s'%s%s",
                    section, d->key, owner ? " for " : "", owner ? owner : "");
}

static int parse_entries(struct tern_config *c, struct parse_ctx *p, struct errbuf *e)
{
    const char *file = c->source;
    /* Duplicate keys are errors: the last one silently winning hides typos. */
    for (size_t i = 0; i < p->n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->e[i].section, p->e[j].section) == 0 && strcmp(p->e[i].key, p->e[j].key) == 0) {
                err_add(e, file, p->e[i].line, "[%s] duplicate key '%s' (first set on line %d)",
                        p->e[i].section, p->e[i].key, p->e[j].line);
                break;
            }
    for (size_t i = 0; i < p->n; i++) {
        struct raw_entry *r = &p->e[i];
        char why[256];
        const struct cfg_key *k;
        if (strcmp(r->section, "agent") == 0 || strcmp(r->section, "storage") == 0) {
            int is_agent = r->section[0] == 'a';
            const struct cfg_key *t = is_agent ? agent_keys : storage_keys;
            void *base = is_agent ? (void *)&c->agent : (void *)&c->storage;
            k = find_key(t, r->key);
            if (!k)
                unknown_key(e, file, r->line, r->section, r->key, t, NULL, NULL);
            else if (set_value(k, base, r->value, why, sizeof why) < 0)
                err_add(e, file, r->line, "[%s] %s: %s", r->section, r->key, why);
        } else if (strncmp(r->section, "sensor.", 7) == 0) {
            const char *name = r->section + 7;
            if (!valid_id(name)) {
                err_add(e, file, r->line,
                        "[%s] invalid sensor name '%s' (letters, digits, . _ - :, at most 63 bytes)",
                        r->section, name);
                continue;
            }
            struct tern_sensor_cfg *s = find_sensor(c, name);
            if (!s) {
                struct tern_sensor_cfg *ns =
                    tern_realloc(c->sensors, (c->n_sensors + 1) * sizeof *ns);
                if (!ns)
                    return -1;
                c->sensors = ns;
                s = &c->sensors[c->n_sensors++];
                memset(s, 0, sizeof *s);
                s->name = tern_strdup(name);
                s->line = r->line;
                if (!s->name || apply_defaults(sensor_keys, &s->c) < 0)
                    return -1;
            }
            k = find_key(sensor_keys, r->key);
            if (k) {
                if (set_value(k, &s->c, r->value, why, sizeof why) < 0)
                    err_add(e, file, r->line, "[%s] %s: %s", r->section, r->key, why);
            } else if (opts_add(&s->opts, r->key, r->value, r->line) < 0) {
                return -1;
            }
        } else if (strncmp(r->section, "uplink.", 7) == 0) {
            const char *name = r->section + 7;
            char lerr[512];
            const struct tern_uplink_ops *ops = tern_uplink_load(name, lerr, sizeof lerr);
            if (!ops) {
                const char *cands[16];
                size_t n = 0;
                const char *const *all = tern_uplink_names();
                int known = 0;
                for (; all[n] && n < 16; n++) {
                    cands[n] = all[n];
                    known |= strcmp(all[n], name) == 0;
                }
                const char *hint = known ? NULL : tern_did_you_mean(name, cands, n);
                if (!find_uplink(c, name)) {
                    /* Report the section once, not once per key. */
                    struct tern_uplink_cfg *nu = tern_realloc(c->uplinks, (c->n_uplinks + 1) * sizeof *nu);
                    if (!nu)
                        return -1;
                    c->uplinks = nu;
                    memset(&c->uplinks[c->n_uplinks], 0, sizeof *nu);
                    c->uplinks[c->n_uplinks].name = tern_strdup(name);
                    c->uplinks[c->n_uplinks].line = r->line;
                    if (!c->uplinks[c->n_uplinks].name)
                        return -1;
                    c->n_uplinks++;
                    if (known)
                        err_add(e, file, r->line, "[%s] the %s uplink cannot be loaded: %s",
                                r->section, name, lerr);
                    else if (hint)
                        err_add(e, file, r->line, "[%s] unknown uplink '%s' (did you mean '%s'?)",
                                r->section, name, hint);
                    else
                        err_add(e, file, r->line, "[%s] unknown uplink '%s' (not built in)",
                                r->section, name);
                }
                continue;
            }
            struct tern_uplink_cfg *u = find_uplink(c, name);
            if (!u) {
                struct tern_uplink_cfg *nu = tern_realloc(c->uplinks, (c->n_uplinks + 1) * sizeof *nu);
                if (!nu)
                    return -1;
                c->uplinks = nu;
                u = &c->uplinks[c->n_uplinks++];
                memset(u, 0, sizeof *u);
                u->name = tern_strdup(name);
                u->line = r->line;
                u->ops = ops;
                if (!u->name || apply_defaults(uplink_keys, &u->c) < 0)
                    return -1;
            }
            k = find_key(uplink_keys, r->key);
            if (k) {
                if (set_value(k, &u->c, r->value, why, sizeof why) < 0)
                    err_add(e, file, r->line, "[%s] %s: %s", r->section, r->key, why);
            } else if (opts_add(&u->opts, r->key, r->value, r->line) < 0) {
                return -1;
            }
        } else if (r->section[0] == '\0') {
            err_add(e, file, r->line, "key '%s' outside of any section (start with [agent])", r->key);
        } else {
            /* Suggest by the part before the dot: [sensors.x] -> [sensor.x]. */
            static const char *const plain[] = {"agent", "storage"};
            static const char *const named[] = {"sensor", "uplink"};
            char prefix[64], hint[160] = "";
            const char *dot = strchr(r->section, '.');
            snprintf(prefix, sizeof prefix, "%.*s", dot ? (int)(dot - r->section) : 63, r->section);
            const char *h = tern_did_you_mean(prefix, dot ? named : plain, 2);
            if (h)
                snprintf(hint, sizeof hint, " (did you mean [%s%s]?)", h, dot ? dot : "");
            /* Report an unknown section once. */
            int seen = 0;
            for (size_t j = 0; j < i; j++)
                if (strcmp(p->e[j].section, r->section) == 0)
                    seen = 1;
            if (!seen)
                err_add(e, file, r->line, "unknown section [%s]%s", r->section, hint);
        }
    }
    return 0;
}

static void resolve(struct tern_config *c, struct errbuf *e)
{
    const char *file = c->source;
    char why[256];
    /* Device id. */
    if (c->agent.device_id[0]) {
        snprintf(c->device_id, sizeof c->device_id, "%s", c->agent.device_id);
    } else {
        char host[256] = "tern";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        for (char *h = host; *h; h++)
            if (!isalnum((unsigned char)*h) && !strchr("._-:", *h))
                *h = '-';
        if (tern_copy_field(c->device_id, sizeof c->device_id, host) < 0)
            err_add(e, file, 0, "[agent] device_id is not set and the host name '%.80s' is "
                    "longer than %d bytes; set device_id", host, TERN_ID_MAX - 1);
    }
    struct tagset agent_tags = {.n = 0};
    if (tags_parse(c->agent.tags, &agent_tags, why, sizeof why) < 0 ||
        tags_json(&agent_tags, c->tags_json, sizeof c->tags_json) < 0)
        err_add(e, file, 0, "[agent] tags do not fit in %d bytes of JSON", TERN_TAGS_MAX);
    if (c->agent.status_socket[0])
        snprintf(c->status_socket, sizeof c->status_socket, "%s", c->agent.status_socket);
    else
        snprintf(c->status_socket, sizeof c->status_socket, "%s/tern-agent.sock", c->agent.data_dir);
    if (strlen(c->status_socket) >= 108)
        err_add(e, file, 0, "[agent] status socket path '%s' is longer than 107 bytes; set status_socket",
                c->status_socket);
    if (c->storage.path[0])
        snprintf(c->storage_path, sizeof c->storage_path, "%s", c->storage.path);
    else
        snprintf(c->storage_path, sizeof c->storage_path, "%s/queue.db", c->agent.data_dir);

    for (size_t i = 0; i < c->n_sensors; i++) {
        struct tern_sensor_cfg *s = &c->sensors[i];
        char section[80];
        snprintf(section, sizeof section, "sensor.%s", s->name);
        if (!s->c.driver) {
            err_add(e, file, s->line, "[%s] missing required key 'driver'", section);
            continue;
        }
        s->driver = tern_driver_find(s->c.driver);
        if (!s->driver) {
            const char *cands[32];
            size_t n = 0;
            const struct tern_driver *const *all = tern_drivers();
            for (; all[n] && n < 32; n++)
                cands[n] = all[n]->name;
            const char *hint = tern_did_you_mean(s->c.driver, cands, n);
            err_add(e, file, s->line, "[%s] unknown driver '%s'%s%s%s", section, s->c.driver,
                    hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
            continue;
        }
        if (s->c.interval_ms < 1)
            err_add(e, file, s->line, "[%s] interval must be at least 1ms", section);
        char owner[80];
        snprintf(owner, sizeof owner, "driver '%s'", s->driver->name);
        int before = e->count;
        check_opts(e, file, s->line, section, &s->opts, s->driver->options, owner);
        /* The driver's own checker has the last word on its keys. */
        char kerr[256];
        struct tern_kv_list l = {.items = s->opts.items, .n = s->opts.n};
        if (e->count == before && tern_kv_check(&l, s->driver->options, kerr, sizeof kerr) < 0)
            err_add(e, file, s->line, "[%s] %s", section, kerr);
        struct tagset t = agent_tags;
        if (tags_parse(s->c.tags, &t, why, sizeof why) < 0 ||
            tags_json(&t, s->tags_json, sizeof s->tags_json) < 0)
            err_add(e, file, s->line, "[%s] tags do not fit in %d bytes of JSON", section, TERN_TAGS_MAX);
    }
    for (size_t i = 0; i < c->n_uplinks; i++) {
        struct tern_uplink_cfg *u = &c->uplinks[i];
        if (!u->ops)
            continue;
        char section[80], owner[80];
        snprintf(section, sizeof section, "uplink.%s", u->name);
        snprintf(owner, sizeof owner, "uplink '%s'", u->name);
        check_opts(e, file, u->line, section, &u->opts, u->ops->options, owner);
    }
}

static int load(const char *name, const char *path, const char *text, struct tern_config **out,
                char *err, size_t errcap)
{
    struct errbuf e = {.buf = err, .cap = errcap, .len = 0, .count = 0};
    struct parse_ctx p = {0};
    struct tern_config *c = NULL;
    if (errcap)
        err[0] = '\0';
    *out = NULL;
    c = tern_calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->source = tern_strdup(name);
    if (!c->source)
        goto oom;
    if (apply_defaults(agent_keys, &c->agent) < 0 || apply_defaults(storage_keys, &c->storage) < 0)
        goto oom;
    int rc = path ? ini_parse(path, on_ini, &p) : ini_parse_string(text, on_ini, &p);
    if (p.oom || rc == -2)
        goto oom;
    if (rc == -1) {
        err_add(&e, name, 0, "cannot open config file");
        goto fail;
    }
    if (rc > 0)
        err_add(&e, name, rc, "syntax error (expected [section], key = value or a ; comment)");
    if (parse_entries(c, &p, &e) < 0)
        goto oom;
    if (e.count == 0)
        resolve(c, &e);
    if (e.count)
        goto fail;
    raw_free(&p);
    *out = c;
    return 0;
oom:
    err_add(&e, name, 0, "out of memory");
fail:
    raw_free(&p);
    tern_config_free(c);
    return -1;
}

int tern_config_load(const char *path, struct tern_config **out, char *err, size_t errcap)
{
    return load(path, path, NULL, out, err, errcap);
}

int tern_config_load_string(const char *name, const char *text, struct tern_config **out,
                            char *err, size_t errcap)
{
    return load(name, NULL, text, out, err, errcap);
}

void tern_config_free(struct tern_config *c)
{
    if (!c)
        return;
    free_fields(agent_keys, &c->agent);
    free_fields(storage_keys, &c->storage);
    for (size_t i = 0; i < c->n_sensors; i++) {
        free_fields(sensor_keys, &c->sensors[i].c);
        opts_free(&c->sensors[i].opts);
        tern_free(c->sensors[i].name);
    }
    for (size_t i = 0; i < c->n_uplinks; i++) {
        free_fields(uplink_keys, &c->uplinks[i].c);
        opts_free(&c->uplinks[i].opts);
        tern_free(c->uplinks[i].name);
    }
    tern_free(c->sensors);
    tern_free(c->uplinks);
    tern_free(c->source);
    tern_free(c);
}

/* ---- printing ----------------------------------------------------------- */

static void format_value(const struct cfg_key *k, const void *base, char *buf, size_t cap)
{
    const char *field = (const char *)base + k->off;
    switch (k->type) {
    case CFG_STRING:
    case CFG_ID:
    case CFG_PATH:
    case CFG_TAGS:
        snprintf(buf, cap, "%s", *(char *const *)field ? *(char *const *)field : "");
        break;
    case CFG_INT:
        snprintf(buf, cap, "%" PRId64, *(const int64_t *)field);
        break;
    case CFG_BOOL:
        snprintf(buf, cap, "%s", *(const int *)field ? "true" : "false");
        break;
    case CFG_DURATION_S:
    case CFG_DURATION_MS:
        tern_format_duration(*(const int64_t *)field, buf, cap);
        break;
    case CFG_SIZE:
        tern_format_size(*(const uint64_t *)field, buf, cap);
        break;
    case CFG_ENUM:
        choice_name(k->choices, *(const int *)field, buf, cap);
        break;
    }
}

static void print_table(FILE *f, const struct cfg_key *t, const void *base)
{
    char buf[512];
    for (; t->key; t++) {
        format_value(t, base, buf, sizeof buf);
        fprintf(f, "%s = %s\n", t->key, buf);
    }
}

static void print_opts(FILE *f, const struct tern_cfg_opts *o, const struct tern_driver_option *table)
{
    for (const struct tern_driver_option *d = table; d && d->key; d++) {
        size_t kl = strlen(d->key);
        if (kl >= 2 && strcmp(d->key + kl - 2, ".*") == 0) {
            /* A pass-through family ("kafka.*"): print what was given. */
            for (size_t i = 0; i < o->n; i++)
                if (strncmp(o->items[i].key, d->key, kl - 1) == 0)
                    fprintf(f, "%s = %s\n", o->items[i].key,
                            tern_config_is_secret(o->items[i].key) ? "********" : o->items[i].value);
            continue;
        }
        const char *v = tern_cfg_opt(o, d->key, NULL);
        if (v && tern_config_is_secret(d->key))
            fprintf(f, "%s = ********\n", d->key);
        else if (v)
            fprintf(f, "%s = %s\n", d->key, v);
        else
            fprintf(f, "%s = %s   ; default\n", d->key, d->def ? d->def : "");
    }
}

void tern_config_print(const struct tern_config *c, FILE *f)
{
    fprintf(f, "; resolved configuration from %s\n", c->source);
    fprintf(f, "[agent]\n");
    print_table(f, agent_keys, &c->agent);
    fprintf(f, "; device_id resolves to %s, status socket %s\n", c->device_id, c->status_socket);
    fprintf(f, "\n[storage]\n");
    print_table(f, storage_keys, &c->storage);
    fprintf(f, "; queue file %s\n", c->storage_path);
    for (size_t i = 0; i < c->n_sensors; i++) {
        fprintf(f, "\n[sensor.%s]\n", c->sensors[i].name);
        print_table(f, sensor_keys, &c->sensors[i].c);
        print_opts(f, &c->sensors[i].opts, c->sensors[i].driver ? c->sensors[i].driver->options : NULL);
    }
    for (size_t i = 0; i < c->n_uplinks; i++) {
        fprintf(f, "\n[uplink.%s]\n", c->uplinks[i].name);
        print_table(f, uplink_keys, &c->uplinks[i].c);
        print_opts(f, &c->uplinks[i].opts, c->uplinks[i].ops ? c->uplinks[i].ops->options : NULL);
    }
}

static const char *key_unit(const struct cfg_key *k)
{
    switch (k->type) {
    case CFG_DURATION_S:
        return "duration (bare number: seconds)";
    case CFG_DURATION_MS:
        return "duration (bare number: ms)";
    case CFG_SIZE:
        return "size (bare number: bytes)";
    default:
        return type_names[k->type];
    }
}

/* Markdown table cells must not contain '|' unescaped. */
static void md_cell(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

static void doc_table(FILE *f, const struct cfg_key *t)
{
    fprintf(f, "| Key | Type / unit | Default | Description |\n|---|---|---|---|\n");
    for (; t->key; t++) {
        fprintf(f, "| `%s` | ", t->key);
        md_cell(f, key_unit(t));
        if (t->type == CFG_ENUM) {
            fputs(": ", f);
            md_cell(f, t->choices);
        } else if (t->type == CFG_INT && t->choices) {
            fputs(" in ", f);
            md_cell(f, t->choices);
        }
        fputs(" | ", f);
        if (!t->def)
            fputs("(required)", f);
        else if (!t->def[0])
            fputs("(empty)", f);
        else {
            fputs("`", f);
            md_cell(f, t->def);
            fputs("`", f);
        }
        fputs(" | ", f);
        md_cell(f, t->help);
        fputs(" |\n", f);
    }
}

static void doc_opts(FILE *f, const struct tern_driver_option *o)
{
    fprintf(f, "| Key | Type | Default | Description |\n|---|---|---|---|\n");
    for (; o && o->key; o++) {
        fprintf(f, "| `%s` | ", o->key);
        md_cell(f, o->type);
        fputs(" | ", f);
        if (!o->def)
            fputs("(required)", f);
        else if (!o->def[0])
            fputs("(empty)", f);
        else {
            fputs("`", f);
            md_cell(f, o->def);
            fputs("`", f);
        }
        fputs(" | ", f);
        md_cell(f, o->help);
        fputs(" |\n", f);
    }
}

void tern_config_doc(FILE *f)
{
    fprintf(f,
            "# tern-agent configuration reference\n\n"
            "<!-- Generated by `tern-agent --config-doc` from the tables in agent/config.c and the\n"
            "     option tables of the drivers and uplinks. Do not edit by hand: the test\n"
            "     agent_config_doc fails when this file and the tables drift apart. -->\n\n"
            "One INI file (`tern-agent --config FILE`). `;` or `#` start a comment. Unknown\n"
            "sections and keys are errors (with a \"did you mean\" hint), as are duplicate keys.\n"
            "`tern-agent --config FILE --check` validates the file, prints the resolved\n"
            "configuration with secrets masked and exits 0, or prints `FILE:LINE: message` for\n"
            "every problem and exits 3. SIGHUP reloads the file; a bad file is rejected and the\n"
            "running configuration kept.\n\n"
            "Value types:\n\n"
            "- **duration**: a number with a unit `ms`, `s`, `m`, `h` or `d` (`500ms`, `10s`,\n"
            "  `1.5m`); a bare number is in the unit the table names.\n"
            "- **size**: a number with `B`, `KiB`, `MiB`, `GiB` (powers of 1024; `K`, `M`, `G`\n"
            "  alone too) or `kB`, `MB`, `GB` (powers of 1000): `64MiB`.\n"
            "- **bool**: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.\n"
            "- **tags**: `key=value,key2=value2`; keys are letters, digits, `.`, `_`, `-`.\n\n"
            "Secrets are never written in the file: a password comes from `password_file` (first\n"
            "line of the file) or `password_env` (an environment variable), and is never logged.\n\n");
    fprintf(f, "## [agent]\n\n");
    doc_table(f, agent_keys);
    fprintf(f, "\n## [storage]\n\nThe durable queue (SQLite, WAL) every reading enters before it is sent.\n\n");
    doc_table(f, storage_keys);
    fprintf(f, "\n## [sensor.NAME]\n\nA sensor is a configured instance of a driver, polled on its own "
               "interval; a slow or failing sensor never delays the others. NAME (letters, digits, "
               "`. _ - :`) is the `sensor` field of its readings. Keys every sensor has:\n\n");
    doc_table(f, sensor_keys);
    const struct tern_driver *const *drv = tern_drivers();
    for (size_t i = 0; drv && drv[i]; i++) {
        fprintf(f, "\n### driver = %s\n\n", drv[i]->name);
        md_cell(f, drv[i]->summary);
        fprintf(f, "\n\n");
        doc_opts(f, drv[i]->options);
    }
    fprintf(f, "\n## [uplink.NAME]\n\nAn uplink carries readings from the queue to a transport; a "
               "reading is deleted once every configured uplink acknowledged it. Keys every uplink "
               "has (handled by the forwarder):\n\n");
    doc_table(f, uplink_keys);
    const struct tern_uplink_ops *const *up = tern_uplinks();
    for (size_t i = 0; up && up[i]; i++) {
        fprintf(f, "\n### [uplink.%s]\n\n", up[i]->name);
        md_cell(f, up[i]->summary);
        fprintf(f, "\n\n");
        doc_opts(f, up[i]->options);
    }
}

void tern_config_help(FILE *f)
{
    const struct {
        const char *name;
        const struct cfg_key *t;
    } secs[] = {{"[agent]", agent_keys}, {"[storage]", storage_keys},
                {"[sensor.NAME]", sensor_keys}, {"[uplink.NAME]", uplink_keys}};
    for (size_t i = 0; i < 4; i++) {
        fprintf(f, "       %s\n", secs[i].name);
        for (const struct cfg_key *k = secs[i].t; k->key; k++)
            fprintf(f, "           %-18s %-9s default %s\n", k->key, type_names[k->type],
                    k->def ? (k->def[0] ? k->def : "(empty)") : "(required)");
    }
    const struct tern_driver *const *drv = tern_drivers();
    for (size_t i = 0; drv && drv[i]; i++) {
        fprintf(f, "       [sensor.NAME] driver = %s: %s\n", drv[i]->name, drv[i]->summary);
        for (const struct tern_driver_option *o = drv[i]->options; o && o->key; o++)
            fprintf(f, "           %-18s %-9s default %s\n", o->key, o->type ? o->type : "",
                    o->def ? (o->def[0] ? o->def : "(empty)") : "(required)");
    }
    const struct tern_uplink_ops *const *up = tern_uplinks();
    for (size_t i = 0; up && up[i]; i++) {
        fprintf(f, "       [uplink.%s]: %s\n", up[i]->name, up[i]->summary);
        for (const struct tern_driver_option *o = up[i]->options; o && o->key; o++)
            fprintf(f, "           %-18s %-9s default %s\n", o->key, o->type ? o->type : "",
                    o->def ? (o->def[0] ? o->def : "(empty)") : "(required)");
    }
}
