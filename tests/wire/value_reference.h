/* value_reference.h - the wire format's value text rule (docs/wire-format.md)
 * written the slow, obvious way with printf and strtod, for the tests and
 * the fuzz target that check wire/value.c against it: non-finite -> null;
 * integral below 2^53 -> an integer; else the first of %.15g/%.16g/%.17g
 * that reads back exactly, with ".0" added when it looks integral. */
#ifndef TERN_TEST_VALUE_REFERENCE_H
#define TERN_TEST_VALUE_REFERENCE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void value_reference(double v, char *out, size_t cap)
{
    if (!isfinite(v)) {
        snprintf(out, cap, "null");
        return;
    }
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        snprintf(out, cap, "%lld", (long long)v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (!strpbrk(out, ".e"))
        strncat(out, ".0", cap - strlen(out) - 1);
}

#endif
