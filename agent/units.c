/* units.c - see units.h. Hand-written parsers: strtod/strtoull accept too
 * much (leading spaces, signs, hex, "inf"), so digits are checked first. */
#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reads a non-negative decimal number "123" or "1.5" at s. Returns the
 * number of characters consumed, 0 when there is no number. */
static size_t scan_number(const char *s, double *out)
{
    size_t i = 0, digits = 0;
    while (isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0 || i > 40)
        return 0;
    char tmp[48];
    memcpy(tmp, s, i);
    tmp[i] = '\0';
    *out = strtod(tmp, NULL);
    return i;
}

int tern_parse_duration_ms(const char *s, int64_t bare_unit_ms, int64_t *out_ms)
{
    static const struct {
        const char *name;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    double v;
    size_t n = scan_number(s, &v);
    if (n == 0)
        return -1;
    const char *u = s + n;
    while (*u == ' ')
        u++;
    double mult = (double)bare_unit_ms;
    if (*u) {
        size_t k;
        for (k = 0; k < sizeof units / sizeof units[0]; k++)
            if (strcmp(u, units[k].name) == 0)
                break;
        if (k == sizeof units / sizeof units[0])
            return -1;
        mult = units[k].ms;
    }
    double ms = v * mult;
    if (!isfinite(ms) || ms > 9.0e15)
        return -1;
    *out_ms = (int64_t)llround(ms);
    return 0;
}

int tern_parse_size(const char *s, uint64_t *out_bytes)
{
    static const struct {
        const char *name;
        double mult;
    } units[] = {{"B", 1},
                 {"k", 1024.0},
                 {"K", 1024.0},
                 {"KiB", 1024.0},
                 {"kB", 1e3},
                 {"KB", 1e3},
                 {"M", 1048576.0},
                 {"MiB", 1048576.0},
                 {"MB", 1e6},
                 {"G", 1073741824.0},
                 {"GiB", 1073741824.0},
                 {"GB", 1e9},
                 {"TiB", 1099511627776.0},
                 {"TB", 1e12}};
    double v;
    size_t n = scan_number(s, &v);
    if (n == 0)
        return -1;
    const char *u = s + n;
    while (*u == ' ')
        u++;
    double mult = 1;
    if (*u) {
        size_t k;
        for (k = 0; k < sizeof units / sizeof units[0]; k++)
            if (strcmp(u, units[k].name) == 0)
                break;
        if (k == sizeof units / sizeof units[0])
            return -1;
        mult = units[k].mult;
    }
    double b = v * mult;
    if (!isfinite(b) || b > 9.0e18)
        return -1;
    *out_bytes = (uint64_t)llround(b);
    return 0;
}

int tern_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
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

int tern_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int tern_parse_double(const char *s, double *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p) && *p != '.')
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

void tern_format_duration(int64_t ms, char *buf, size_t cap)
{
    if (ms == 0)
        snprintf(buf, cap, "0");
    else if (ms % 86400000 == 0)
        snprintf(buf, cap, "%" PRId64 "d", ms / 86400000);
    else if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, cap, "%" PRId64 "h", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, cap, "%" PRId64 "m", ms / 60000);
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, cap, "%" PRId64 "s", ms / 1000);
    else
        snprintf(buf, cap, "%" PRId64 "ms", ms);
}

void tern_format_size(uint64_t b, char *buf, size_t cap)
{
    if (b != 0 && b % 1073741824u == 0)
        snprintf(buf, cap, "%" PRIu64 "GiB", b / 1073741824u);
    else if (b != 0 && b % 1048576u == 0)
        snprintf(buf, cap, "%" PRIu64 "MiB", b / 1048576u);
    else if (b != 0 && b % 1024u == 0)
        snprintf(buf, cap, "%" PRIu64 "KiB", b / 1024u);
    else
        snprintf(buf, cap, "%" PRIu64, b);
}
