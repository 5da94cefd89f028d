/* kv.c - option lookup, --check validation with "did you mean", typed getters. */
#include "kv.h"

#include "modbus_map.h"
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tern_list_next(const char **p, const char **item, size_t *len)
{
    const char *b = *p;
    while (*b == ' ' || *b == ',')
        b++;
    if (!*b) {
        *p = b;
        return 0;
    }
    const char *e = b;
    while (*e && *e != ',')
        e++;
    const char *t = e;
    while (t > b && t[-1] == ' ')
        t--;
    *item = b;
    *len = (size_t)(t - b);
    *p = e;
    return 1;
}

static int key_matches(const char *pattern, const char *key)
{
    size_t n = strlen(pattern);
    /* "register.*" accepts "register.temp" but not "register." alone. */
    if (n >= 2 && pattern[n - 1] == '*' && pattern[n - 2] == '.')
        return strncmp(pattern, key, n - 1) == 0 && key[n - 1] != '\0';
    return strcmp(pattern, key) == 0;
}

const struct tern_driver_option *tern_opt_find(const struct tern_driver_option *opts,
                                               const char *key)
{
    for (const struct tern_driver_option *o = opts; o && o->key; o++)
        if (key_matches(o->key, key))
            return o;
    return NULL;
}

static const struct tern_kv *kv_find(const struct tern_kv_list *l, const char *key)
{
    if (!l)
        return NULL;
    /* The last occurrence wins, as in most INI readers; --check flags repeats. */
    for (size_t i = l->n; i-- > 0;)
        if (l->items[i].key && strcmp(l->items[i].key, key) == 0)
            return &l->items[i];
    return NULL;
}

const char *tern_kv_get(const struct tern_kv_list *l, const char *key, const char *def)
{
    const struct tern_kv *kv = kv_find(l, key);
    return kv && kv->value ? kv->value : def;
}

int tern_kv_line(const struct tern_kv_list *l, const char *key)
{
    const struct tern_kv *kv = kv_find(l, key);
    return kv ? kv->line : 0;
}

unsigned tern_edit_distance(const char *a, const char *b)
{
    /* Two-row dynamic programme; option keys are short, so cap the length
     * and keep the rows on the stack. */
    enum { CAP = 64 };
    unsigned row0[CAP + 1], row1[CAP + 1];
    size_t la = strlen(a), lb = strlen(b);
    if (la > CAP)
        la = CAP;
    if (lb > CAP)
        lb = CAP;
    unsigned *prev = row0, *cur = row1;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                          tolower((unsigned char)b[j - 1]));
            unsigned del = prev[j] + 1, ins = cur[j - 1] + 1;
            unsigned m = sub < del ? sub : del;
            cur[j] = m < ins ? m : ins;
        }
        unsigned *t = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > 255 ? 255 : prev[lb];
}

static const char *closest_key(const struct tern_driver_option *opts, const char *key)
{
    const char *best = NULL;
    unsigned best_d = 0;
    for (const struct tern_driver_option *o = opts; o && o->key; o++) {
        unsigned d = tern_edit_distance(o->key, key);
        if (!best || d < best_d) {
            best = o->key;
            best_d = d;
        }
    }
    /* Only suggest what is plausibly a typo: a third of the key, at least 2. */
    size_t len = strlen(key);
    unsigned limit = len / 3 > 2 ? (unsigned)(len / 3) : 2;
    return best && best_d <= limit ? best : NULL;
}

static int bool_word(const char *s, int *out);

/* Checks a value against its option's type, so --check catches bad values
 * without opening any device. Types it does not know (string, path, list)
 * take any text. 0, or -1 with why. */
static int check_value(const char *type, const char *value, char *why, size_t cap)
{
    double d;
    long n;
    long long ms;
    int b, dd, ss;
    char p;
    if (!type || !*value)
        return 0; /* empty: "not set", each driver decides what that means */
    if (strchr(type, '|')) {
        /* An enumeration spelled out in the type, e.g. "tcp|rtu". */
        size_t vl = strlen(value);
        for (const char *t = type; *t;) {
            const char *e = strchr(t, '|');
            size_t tl = e ? (size_t)(e - t) : strlen(t);
            if (tl == vl && strncmp(t, value, vl) == 0)
                return 0;
            t += tl + (e ? 1 : 0);
        }
        size_t o = (size_t)snprintf(why, cap, "expected one of ");
        for (const char *t = type; *t && o + 3 < cap; t++) {
            if (*t == '|') {
                why[o++] = ',';
                why[o++] = ' ';
            } else {
                why[o++] = *t;
            }
        }
        why[o < cap ? o : cap - 1] = '\0';
        return -1;
    }
    if ((strcmp(type, "int") == 0 || strcmp(type, "hex") == 0) && tern_text_long(value, &n) < 0) {
        snprintf(why, cap, "expected an integer");
        return -1;
    }
    if (strcmp(type, "double") == 0 && tern_text_double(value, &d) < 0) {
        snprintf(why, cap, "expected a number");
        return -1;
    }
    if (strcmp(type, "bool") == 0 && bool_word(value, &b) < 0) {
        snprintf(why, cap, "expected true or false");
        return -1;
    }
    if (strcmp(type, "duration") == 0 && tern_text_duration_ms(value, &ms) < 0) {
        snprintf(why, cap, "expected a duration such as 500ms, 2s, 1h");
        return -1;
    }
    if (strcmp(type, "framing") == 0 && tern_parse_framing(value, &dd, &p, &ss) < 0) {
        snprintf(why, cap, "expected data bits, parity, stop bits such as 8N1 or 7E1");
        return -1;
    }
    if (strcmp(type, "modbus-register") == 0) {
        struct tern_modbus_reg r;
        return tern_modbus_parse_reg(value, &r, why, cap);
    }
    return 0;
}

int tern_kv_check(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                  char *err, size_t errcap)
{
    for (size_t i = 0; l && i < l->n; i++) {
        const struct tern_kv *kv = &l->items[i];
        if (!kv->key || !tern_opt_find(opts, kv->key)) {
            const char *k = kv->key ? kv->key : "";
            const char *hint = closest_key(opts, k);
            if (hint)
                snprintf(err, errcap, "line %d: unknown option '%s' (did you mean '%s'?)",
                         kv->line, k, hint);
            else
                snprintf(err, errcap, "line %d: unknown option '%s'", kv->line, k);
            return -1;
        }
        char why[200];
        if (kv->value && check_value(tern_opt_find(opts, kv->key)->type, kv->value, why,
                                     sizeof why) < 0) {
            snprintf(err, errcap, "line %d: option '%s': %s, got '%s'", kv->line, kv->key, why,
                     kv->value);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l->items[j].key, kv->key) == 0) {
                snprintf(err, errcap, "line %d: option '%s' repeated (first set on line %d)",
                         kv->line, kv->key, l->items[j].line);
                return -1;
            }
        }
    }
    for (const struct tern_driver_option *o = opts; o && o->key; o++) {
        if (o->def || strchr(o->key, '*'))
            continue;
        if (!kv_find(l, o->key)) {
            snprintf(err, errcap, "missing required option '%s' (%s)", o->key, o->help);
            return -1;
        }
    }
    return 0;
}

const char *tern_kv_str(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                        const char *key)
{
    const struct tern_driver_option *o = tern_opt_find(opts, key);
    const char *def = o && o->def ? o->def : "";
    return tern_kv_get(l, key, def);
}

/* Copies s without its surrounding blanks into buf[cap], NUL-terminated.
 * Its length, or 0 when nothing is left or it does not fit (cap bounds the
 * longest number a caller accepts). */
static size_t strip_copy(const char *s, char *buf, size_t cap)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 0 || len >= cap)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return len;
}

int tern_text_double(const char *s, double *out)
{
    char buf[64];
    size_t n = strip_copy(s, buf, sizeof buf);
    if (n == 0)
        return -1;
    /* strtod also takes "nan", "inf" and hex floats; a sensor value must be
     * a finite decimal, so refuse what is not. */
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", buf[i]))
            return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int tern_text_long(const char *s, long *out)
{
    char buf[32];
    size_t n = strip_copy(s, buf, sizeof buf);
    if (n == 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(buf, &end, 0);
    if (end == buf || *end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

int tern_text_duration_ms(const char *s, long long *out_ms)
{
    char buf[48];
    size_t n = strip_copy(s, buf, sizeof buf);
    if (n == 0)
        return -1;
    size_t u = n;
    while (u > 0 && isalpha((unsigned char)buf[u - 1]))
        u--;
    const char *unit = buf + u;
    double mult;
    if (*unit == '\0' || strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "m") == 0 || strcmp(unit, "min") == 0)
        mult = 60e3;
    else if (strcmp(unit, "h") == 0)
        mult = 3600e3;
    else if (strcmp(unit, "d") == 0)
        mult = 86400e3;
    else
        return -1;
    char num[48];
    memcpy(num, buf, u);
    num[u] = '\0';
    double v;
    if (tern_text_double(num, &v) < 0 || v < 0 || v * mult > 9.2e18)
        return -1;
    *out_ms = (long long)llround(v * mult);
    return 0;
}

static int bad(const struct tern_kv_list *l, const char *key, const char *why, char *err,
               size_t errcap)
{
    snprintf(err, errcap, "line %d: option '%s': %s, got '%s'", tern_kv_line(l, key), key,
             why, tern_kv_get(l, key, ""));
    return -1;
}

int tern_kv_double(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                   const char *key, double min, double max, double *out, char *err,
                   size_t errcap)
{
    double v;
    if (tern_text_double(tern_kv_str(l, opts, key), &v) < 0)
        return bad(l, key, "expected a number", err, errcap);
    if (v < min || v > max) {
        char why[96];
        snprintf(why, sizeof why, "must be between %g and %g", min, max);
        return bad(l, key, why, err, errcap);
    }
    *out = v;
    return 0;
}

int tern_kv_long(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                 const char *key, long min, long max, long *out, char *err, size_t errcap)
{
    long v;
    if (tern_text_long(tern_kv_str(l, opts, key), &v) < 0)
        return bad(l, key, "expected an integer", err, errcap);
    if (v < min || v > max) {
        char why[96];
        snprintf(why, sizeof why, "must be between %ld and %ld", min, max);
        return bad(l, key, why, err, errcap);
    }
    *out = v;
    return 0;
}

static int bool_word(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    static const char *const no[] = {"0", "false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int tern_kv_bool(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                 const char *key, int *out, char *err, size_t errcap)
{
    if (bool_word(tern_kv_str(l, opts, key), out) < 0)
        return bad(l, key, "expected true or false", err, errcap);
    return 0;
}

int tern_kv_duration_ms(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                        const char *key, long long max_ms, long long *out_ms, char *err,
                        size_t errcap)
{
    long long v;
    if (tern_text_duration_ms(tern_kv_str(l, opts, key), &v) < 0)
        return bad(l, key, "expected a duration such as 500ms, 2s, 1h", err, errcap);
    if (v > max_ms) {
        char why[96];
        snprintf(why, sizeof why, "must be at most %lld ms", max_ms);
        return bad(l, key, why, err, errcap);
    }
    *out_ms = v;
    return 0;
}

int tern_kv_enum(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                 const char *key, const char *const *names, int *out, char *err,
                 size_t errcap)
{
    const char *s = tern_kv_str(l, opts, key);
    char why[160];
    size_t off = (size_t)snprintf(why, sizeof why, "expected one of");
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
        if (off < sizeof why)
            off += (size_t)snprintf(why + off, sizeof why - off, "%s%s", i ? ", " : " ",
                                    names[i]);
    }
    return bad(l, key, why, err, errcap);
}

void tern_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}
