/* ch_error.c - see ch_error.h. */
#include "ch_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct code_info {
    int code;
    const char *name;
    enum ch_error_class cls;
};

/* Codes from ClickHouse's src/Common/ErrorCodes.cpp that the relay treats
 * specially. Anything not listed: content class when the server answered
 * 400/500 to an INSERT after parsing started (bisect finds out), see
 * ch_classify. */
static const struct code_info codes[] = {
    {6, "CANNOT_PARSE_TEXT", CH_ERR_CONTENT},
    {26, "CANNOT_PARSE_QUOTED_STRING", CH_ERR_CONTENT},
    {27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", CH_ERR_CONTENT},
    {32, "ATTEMPT_TO_READ_AFTER_EOF", CH_ERR_CONTENT},
    {38, "CANNOT_PARSE_DATE", CH_ERR_CONTENT},
    {41, "CANNOT_PARSE_DATETIME", CH_ERR_CONTENT},
    {53, "TYPE_MISMATCH", CH_ERR_CONTENT},
    {69, "ARGUMENT_OUT_OF_BOUND", CH_ERR_CONTENT},
    {70, "CANNOT_CONVERT_TYPE", CH_ERR_CONTENT},
    {72, "CANNOT_PARSE_NUMBER", CH_ERR_CONTENT},
    {117, "INCORRECT_DATA", CH_ERR_CONTENT},
    {131, "TOO_LARGE_STRING_SIZE", CH_ERR_CONTENT},
    {321, "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE", CH_ERR_CONTENT},
    {16, "NO_SUCH_COLUMN_IN_TABLE", CH_ERR_FATAL},
    {47, "UNKNOWN_IDENTIFIER", CH_ERR_FATAL},
    {60, "UNKNOWN_TABLE", CH_ERR_FATAL},
    {62, "SYNTAX_ERROR", CH_ERR_FATAL},
    {81, "UNKNOWN_DATABASE", CH_ERR_FATAL},
    {115, "UNKNOWN_SETTING", CH_ERR_FATAL},
    {164, "READONLY", CH_ERR_FATAL},
    {192, "UNKNOWN_USER", CH_ERR_FATAL},
    {193, "WRONG_PASSWORD", CH_ERR_FATAL},
    {497, "ACCESS_DENIED", CH_ERR_FATAL},
    {516, "AUTHENTICATION_FAILED", CH_ERR_FATAL},
    {159, "TIMEOUT_EXCEEDED", CH_ERR_TRANSIENT},
    {202, "TOO_MANY_SIMULTANEOUS_QUERIES", CH_ERR_TRANSIENT},
    {209, "SOCKET_TIMEOUT", CH_ERR_TRANSIENT},
    {210, "NETWORK_ERROR", CH_ERR_TRANSIENT},
    {241, "MEMORY_LIMIT_EXCEEDED", CH_ERR_TRANSIENT},
    {242, "TABLE_IS_READ_ONLY", CH_ERR_TRANSIENT},
    {252, "TOO_MANY_PARTS", CH_ERR_TRANSIENT},
    {319, "UNKNOWN_STATUS_OF_INSERT", CH_ERR_TRANSIENT},
    {394, "QUERY_WAS_CANCELLED", CH_ERR_TRANSIENT},
};

static const struct code_info *find(int code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].code == code)
            return &codes[i];
    return NULL;
}

const char *ch_code_name(int code)
{
    const struct code_info *ci = find(code);
    return ci ? ci->name : NULL;
}

enum ch_error_class ch_classify(long http_status, int code)
{
    if (http_status == 200)
        return CH_ERR_NONE;
    if (http_status == 0)
        return CH_ERR_TRANSIENT;
    const struct code_info *ci = find(code);
    if (ci)
        return ci->cls;
    /* 401/403: credentials; 404: wrong URL; other 5xx without a known code
     * (proxy, restart in progress): retry. */
    if (http_status == 401 || http_status == 403 || http_status == 404)
        return CH_ERR_FATAL;
    if (code == 0)
        return CH_ERR_TRANSIENT;
    return CH_ERR_FATAL;
}

static const char *memfind(const char *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle));
}

void ch_parse_error(const char *body, size_t len, int *code, char *msg, size_t msgcap)
{
    *code = 0;
    if (msgcap)
        msg[0] = '\0';
    if (!body || len == 0)
        return;
    const char *c = memfind(body, len, "Code: ");
    if (c) {
        long v = 0;
        const char *p = c + 6;
        const char *end = body + len;
        while (p < end && *p >= '0' && *p <= '9' && v < 100000) {
            v = v * 10 + (*p - '0');
            p++;
        }
        *code = (int)v;
    }
    const char *start = body;
    const char *m = memfind(body, len, "DB::Exception: ");
    if (m)
        start = m + strlen("DB::Exception: ");
    size_t rest = len - (size_t)(start - body);
    size_t n = rest;
    const char *cut = memfind(start, rest, ", e.what() =");
    if (cut)
        n = (size_t)(cut - start);
    cut = memfind(start, n, " (version ");
    if (cut)
        n = (size_t)(cut - start);
    while (n > 0 && (start[n - 1] == '\n' || start[n - 1] == '\r' || start[n - 1] == ' '))
        n--;
    if (msgcap == 0)
        return;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < msgcap; i++) {
        char ch = start[i];
        msg[o++] = (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
    }
    msg[o] = '\0';
}
