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

/* A unit suffix and what it multiplies the number by. */
struct unit {
    const char *name;
    double mult;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

static const struct unit size_units[] = {
    {"B", 1},
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
    {"TB", 1e12},
};

/* Parses "<number>[blanks][unit]" into *out: the number times the unit's
 * multiplier, or times bare without a unit. The unit must be one of
 * units[0..n) exactly (case matters). 0, or -1 when there is no number, the
 * unit is unknown or the result is not finite or above max. Shared by
 * durations and sizes, which differ only in their tables and limits. */
static int parse_scaled(const char *s, const struct unit *units, size_t n, double bare,
                        double max, double *out)
{
    double v;
    size_t len = scan_number(s, &v);
    if (len == 0)
        return -1;
    const char *u = s + len;
    while (*u == ' ')
        u++;
    double mult = bare;
    if (*u) {
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(u, units[k].name) == 0)
                break;
        if (k == n)
            return -1;
        mult = units[k].mult;
    }
    double scaled = v * mult;
    if (!isfinite(scaled) || scaled > max)
        return -1;
    *out = scaled;
    return 0;
}

int tern_parse_duration_ms(const char *s, int64_t bare_unit_ms, int64_t *out_ms)
{
    double ms;
    if (parse_scaled(s, duration_units, sizeof duration_units / sizeof duration_units[0],
                     (double)bare_unit_ms, 9.0e15, &ms) < 0)
        return -1;
    *out_ms = (int64_t)llround(ms);
    return 0;
}

int tern_parse_size(const char *s, uint64_t *out_bytes)
{
    double b;
    if (parse_scaled(s, size_units, sizeof size_units / sizeof size_units[0], 1, 9.0e18,
                     &b) < 0)
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
