/* http.h - the /metrics (Prometheus) and /health (readiness) endpoint, served
 * by libmicrohttpd from its own thread. */
#ifndef TERN_RELAY_HTTP_H
#define TERN_RELAY_HTTP_H

#include <stddef.h>

#include "metrics.h"

struct relay_http;

/* listen: "host:port" (port 0 = any free port). Returns a server owned by the
 * caller (stop with relay_http_stop) or NULL with err. */
struct relay_http *relay_http_start(const char *listen, struct relay_metrics *m, char *err, size_t errcap);
/* The bound port (useful with port 0). */
int relay_http_port(const struct relay_http *h);
void relay_http_stop(struct relay_http *h);

#endif
