/* http.c - see http.h. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

struct relay_http {
    struct MHD_Daemon *d;
    struct relay_metrics *m;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, struct relay_buf *b)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b->len, b->p ? b->p : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_len, void **state)
{
    struct relay_http *h = cls;
    struct relay_buf b = {0};
    unsigned status = 200;
    const char *type = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        buf_puts(&b, "method not allowed\n");
        status = 405;
    } else if (strcmp(url, "/metrics") == 0) {
        relay_metrics_format(h->m, &b);
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(url, "/health") == 0) {
        int ready = relay_metrics_ready(h->m);
        buf_puts(&b, ready ? "ok\n" : "not ready\n");
        status = ready ? 200 : 503;
    } else {
        buf_puts(&b, "not found: try /metrics or /health\n");
        status = 404;
    }
    if (buf_failed(&b)) {
        buf_free(&b);
        return MHD_NO;
    }
    enum MHD_Result rc = reply(conn, status, type, &b);
    buf_free(&b);
    return rc;
}

struct relay_http *relay_http_start(const char *listen, struct relay_metrics *m, char *err, size_t errcap)
{
    struct relay_http *h = NULL;
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errcap, "metrics_listen '%s': want host:port", listen);
        return NULL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    int port = atoi(colon + 1);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa.sin_addr) != 1) {
        snprintf(err, errcap, "metrics_listen '%s': host must be an IPv4 address", listen);
        return NULL;
    }
    h = tern_calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    h->m = m;
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
                            on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errcap, "cannot listen on %s", listen);
        tern_free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;
}

int relay_http_port(const struct relay_http *h) { return h->port; }

void relay_http_stop(struct relay_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    tern_free(h);
}
