/* fuzz_ch_reply.c - libFuzzer target for reading ClickHouse's error replies:
 * any bytes must parse without crashing into a terminated one-line message,
 * and classification must be total. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ch_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[512], tiny[2];
    int code = -1;
    ch_parse_error((const char *)data, size, &code, msg, sizeof(msg));
    if (strlen(msg) >= sizeof(msg) || strchr(msg, '\n'))
        abort();
    if (code < 0)
        abort();
    ch_parse_error((const char *)data, size, &code, tiny, sizeof(tiny));
    if (strlen(tiny) > 1)
        abort();
    long status = size ? (long)data[0] * 3 : 0;
    enum ch_error_class c = ch_classify(status, code);
    if (c < CH_ERR_NONE || c > CH_ERR_FATAL)
        abort();
    (void)ch_code_name(code);
    return 0;
}
