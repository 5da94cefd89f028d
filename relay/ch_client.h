/* ch_client.h - a small ClickHouse HTTP client on libcurl: one keep-alive
 * connection, credentials in basic auth or X-ClickHouse-* headers (never in
 * the URL), optional gzip request bodies. Not thread safe: one per thread. */
#ifndef TERN_RELAY_CH_CLIENT_H
#define TERN_RELAY_CH_CLIENT_H

#include <stddef.h>

struct ch_client;

struct ch_client_conf {
    const char *url;       /* http://host:port, no credentials */
    const char *user;
    const char *password;
    int auth_headers;      /* 0 = HTTP basic auth, 1 = X-ClickHouse-User/Key */
    int gzip;              /* compress request bodies (Content-Encoding: gzip) */
    long timeout_ms;
};

struct ch_result {
    long http_status;      /* 0 when no HTTP answer came (refused, timeout) */
    int code;              /* ClickHouse exception code, 0 when none */
    char message[512];     /* one line: curl's or ClickHouse's error text */
    const char *body;      /* response body, owned by the client, valid until the next call */
    size_t len;
    double seconds;        /* request duration */
};

/* Returns a client (owned by the caller, free with ch_client_close) or NULL
 * with a reason in err. Does not connect yet. */
struct ch_client *ch_client_open(const struct ch_client_conf *conf, char *err, size_t errcap);
void ch_client_close(struct ch_client *c);

/* Runs one statement. With data (len bytes, may be 0 only when data is NULL)
 * the statement travels in the URL's query parameter and data is the POST body
 * (an INSERT ... FORMAT X); without data the statement is the body.
 * settings: extra URL parameters already URL-safe, e.g. "database=tern", or
 * NULL. Returns 0 on HTTP 200, else -1 with *res describing the failure. */
int ch_client_query(struct ch_client *c, const char *sql, const char *settings,
                    const void *data, size_t len, struct ch_result *res);

#endif
