/* fuzz_value.c - libFuzzer target for the value text of the wire encoder
 * (tern_wire_format_value, wire/value.c): every 8 bytes of input are a double
 * (raw bits, so NaN, subnormals and both zeros come up), checked together with
 * its neighbours one ulp away against the definition in docs/wire-format.md:
 * the first of glibc's %.15g/%.16g/%.17g that strtod reads back exactly, ".0"
 * when it looks integral, an integer below 2^53 as an integer. Also checks
 * that the text reads back as the same double, bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "../wire/value_reference.h"


static void check(double v)
{
    char want[64], got[TERN_WIRE_VALUE_MAX];
    value_reference(v, want, sizeof want);
    size_t n = tern_wire_format_value(v, got);
    if (n != strlen(want) || strcmp(got, want) != 0 || n >= TERN_WIRE_VALUE_MAX)
        abort();
    if (isfinite(v)) {
        double back = strtod(got, NULL);
        if (memcmp(&back, &v, sizeof v) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t bits;
        memcpy(&bits, data + i, 8);
        for (int d = -1; d <= 1; d++) {
            uint64_t b = bits + (uint64_t)(int64_t)d;
            double v;
            memcpy(&v, &b, sizeof v);
            check(v);
        }
    }
    return 0;
}
