/* fuzz_serial.c - libFuzzer target for serial input: the byte stream goes
 * through line framing (in uneven chunks, as reads deliver it) and each line
 * through the key=value and CSV parsers. Lines stay within the limit and
 * parsed values are finite. The first line also exercises the framing and
 * Modbus register-spec parsers, which read config text. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modbus_map.h"
#include "parse.h"

static void check_line(const char *line)
{
    size_t len = strlen(line);
    struct tern_field f[8];
    int n = tern_parse_kv_line(line, len, f, 8);
    if (n > 8)
        abort();
    for (int i = 0; i < n; i++)
        if (!isfinite(f[i].value) || strlen(f[i].key) >= sizeof f[i].key || !f[i].key[0])
            abort();
    double v[8];
    n = tern_parse_csv_line(line, len, ',', v, 8);
    if (n > 8)
        abort();
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tern_linebuf lb;
    tern_linebuf_init(&lb, size > 0 ? data[0] % 200 + 8 : 64, size > 1 ? data[1] & 1 : 0);
    size_t off = 0, chunk = size > 2 ? (size_t)data[2] % 17 + 1 : 1;
    int first = 1;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        const char *line;
        size_t used = tern_linebuf_push(&lb, (const char *)data + off, n, &line);
        if (used == 0 || used > n)
            abort();
        off += used;
        if (!line)
            continue;
        if (strlen(line) > lb.max)
            abort();
        check_line(line);
        if (first) {
            first = 0;
            int d, s;
            char p;
            if (tern_parse_framing(line, &d, &p, &s) == 0 && (d < 5 || d > 8 || s < 1 || s > 2))
                abort();
            struct tern_modbus_reg r;
            char err[200];
            if (tern_modbus_parse_reg(line, &r, err, sizeof err) == 0) {
                uint16_t w[2] = {(uint16_t)size, (uint16_t)off};
                double val;
                if (tern_modbus_decode(&r, w, &val) == 0 && !isfinite(val))
                    abort();
            }
        }
    }
    return 0;
}
