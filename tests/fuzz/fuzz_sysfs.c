/* fuzz_sysfs.c - libFuzzer target for sysfs attribute text: any bytes either
 * parse as one finite number or are refused; label text always becomes a
 * terminated metric name of [a-z0-9_]. The option-value scanners (integer,
 * duration) that read the same kind of text ride along. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "parse.h"
#include "sysfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double v = 0;
    if (tern_parse_sysfs_number((const char *)data, size, &v) == 0 && !isfinite(v))
        abort();
    char text[300], name[64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    long l;
    long long ms;
    (void)tern_text_long(text, &l);
    if (tern_text_duration_ms(text, &ms) == 0 && ms < 0)
        abort();
    tern_metric_name(text, name, sizeof name);
    if (strlen(name) >= sizeof name)
        abort();
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            abort();
    return 0;
}
