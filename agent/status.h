/* status.h - `tern-agent status`: the running agent serves a snapshot of its
 * counters on a Unix socket in data_dir (no periodic status file: SD cards
 * wear out). The server writes "key=value" lines and closes; it never reads,
 * so a stuck client cannot stall the main loop. */
#ifndef TERN_AGENT_STATUS_H
#define TERN_AGENT_STATUS_H

#include <stddef.h>
#include <stdio.h>

/* Binds a non-blocking listening socket at path. A stale socket file is
 * replaced; a live one (another agent on this data_dir) is an error. Returns
 * the fd, or -1 with err filled. */
int tern_status_listen(const char *path, char *err, size_t errcap);
/* Accepts one pending client, if any, without blocking. Returns its fd or -1. */
int tern_status_accept(int listen_fd);
/* Writes text to a client (bounded wait) and closes it. */
void tern_status_reply(int client_fd, const char *text, size_t len);
/* Closes the listener and removes the socket file. */
void tern_status_close(int listen_fd, const char *path);

/* Client side: reads the whole snapshot into buf (NUL-terminated). Returns
 * 0, or -1 with err filled (e.g. "no agent running: ..."). */
int tern_status_query(const char *path, char *buf, size_t cap, char *err, size_t errcap);
/* Prints key=value text as one flat JSON object (numbers unquoted). */
void tern_status_print_json(const char *text, FILE *f);

#endif
