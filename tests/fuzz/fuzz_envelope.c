/* fuzz_envelope.c - libFuzzer target for the JSON envelope mapper: arbitrary
 * bytes never crash it; whatever it accepts yields well-formed readings
 * (terminated fields, seq >= 1, at most the room given), and mapping the
 * same bytes twice gives the same identities (dedup depends on that). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct envelope_spec auto_spec, cfg_spec;
    static int ready;
    struct tern_reading a[16], b[16];
    size_t na = 0, nb = 0;
    char err[256];
    if (!ready) {
        struct relay_config c;
        relay_config_defaults(&c);
        if (envelope_spec_init(&auto_spec, &c, err, sizeof(err)) != 0)
            abort();
        relay_config_set(&c, "envelope", "metrics", "temperature:Cel,humidity:%,pressure:hPa", err, sizeof(err));
        relay_config_set(&c, "envelope", "dedup", "offset", err, sizeof(err));
        if (envelope_spec_init(&cfg_spec, &c, err, sizeof(err)) != 0)
            abort();
        ready = 1;
    }
    struct envelope_pos pos = {"topic", 3, 12345};
    const struct envelope_spec *specs[2] = {&auto_spec, &cfg_spec};
    for (int s = 0; s < 2; s++) {
        int ra = envelope_map(specs[s], (const char *)data, size, &pos, a, 16, &na, err, sizeof(err));
        int rb = envelope_map(specs[s], (const char *)data, size, &pos, b, 16, &nb, err, sizeof(err));
        if (ra != rb || na != nb || na > 16)
            abort();
        if (ra != 0) {
            if (na != 0 || strlen(err) >= sizeof(err))
                abort();
            continue;
        }
        for (size_t i = 0; i < na; i++) {
            if (a[i].seq < 1 || a[i].epoch != b[i].epoch || a[i].seq != b[i].seq)
                abort();
            if (strnlen(a[i].device_id, TERN_ID_MAX) == TERN_ID_MAX || strnlen(a[i].metric, TERN_ID_MAX) == TERN_ID_MAX)
                abort();
            for (size_t j = 0; j < i; j++)
                if (a[j].seq == a[i].seq)
                    abort(); /* two measurements of one message must differ */
        }
    }
    return 0;
}
