/* fuzz_config.c - libFuzzer target for tern-agent's config parser: any INI
 * text must load or be rejected with a message, never crash or leak; what
 * loads must print (--check) and load again from its own printout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        tern_log_init("fuzz_config", TERN_LOG_ERROR, 0);
        init = 1;
    }
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* The value parsers take C strings; feed them short inputs directly. */
    if (size < 64) {
        int64_t ms;
        uint64_t b;
        double d;
        int v;
        (void)tern_parse_duration_ms(text, 1000, &ms);
        (void)tern_parse_size(text, &b);
        (void)tern_parse_double(text, &d);
        (void)tern_parse_bool(text, &v);
    }

    struct tern_config *c = NULL;
    char err[4096];
    if (tern_config_load_string("fuzz.ini", text, &c, err, sizeof err) == 0) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (f) {
            tern_config_print(c, f);
            fclose(f);
            struct tern_config *again = NULL;
            /* The printout is a valid config itself (masked secrets aside). */
            if (out && !strstr(out, "********") &&
                tern_config_load_string("printed.ini", out, &again, err, sizeof err) != 0)
                abort();
            tern_config_free(again);
            free(out);
        }
        tern_config_free(c);
    } else if (!err[0]) {
        abort(); /* a rejection always says why */
    }
    free(text);
    return 0;
}
