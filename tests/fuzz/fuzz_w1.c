/* fuzz_w1.c - libFuzzer target for the 1-Wire w1_slave parser: never a crash,
 * never a value unless the status is OK, and an OK value is a DS18B20
 * temperature (-55..125 Cel, not the 85 Cel power-on value). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double c = -1000;
    int st = tern_parse_w1_slave((const char *)data, size, &c);
    if (st == TERN_W1_OK) {
        if (!isfinite(c) || c < -55 || c > 125 || c == 85.0)
            abort();
    } else {
        if (c != -1000)
            abort(); /* an error must not leave a value behind */
        if (st != TERN_W1_MALFORMED && st != TERN_W1_CRC && st != TERN_W1_POWER_ON &&
            st != TERN_W1_RANGE)
            abort();
    }
    (void)tern_w1_status_text(st);
    (void)tern_w1_crc8(data, size);
    return 0;
}
