/* ch_error.h - reading ClickHouse's error replies: the exception code and
 * message from an HTTP response body (18.x and current formats), and what the
 * relay should do about each kind of failure. Pure functions, unit tested. */
#ifndef TERN_RELAY_CH_ERROR_H
#define TERN_RELAY_CH_ERROR_H

#include <stddef.h>

enum ch_error_class {
    CH_ERR_NONE = 0,
    CH_ERR_TRANSIENT, /* down, overloaded, too many parts: pause and retry the same batch */
    CH_ERR_CONTENT,   /* the data was refused: bisect to find the bad rows */
    CH_ERR_FATAL,     /* schema, auth or config problem: retry slowly, needs an operator */
};

/* Parses "Code: N, e.displayText() = DB::Exception: MSG, e.what() = ..." (18.x)
 * or "Code: N. DB::Exception: MSG (NAME) (version V)" (current) into *code
 * (0 when absent) and a one-line message in msg (always NUL-terminated). */
void ch_parse_error(const char *body, size_t len, int *code, char *msg, size_t msgcap);

/* Classifies a failed request. http_status 0 = no HTTP answer (refused,
 * timeout, reset): always transient. */
enum ch_error_class ch_classify(long http_status, int code);

/* Symbolic name of a few common codes ("TOO_MANY_PARTS"), or NULL. */
const char *ch_code_name(int code);

#endif
