/* notify.h - the systemd service notification protocol (sd_notify(3)):
 * READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 sent to $NOTIFY_SOCKET.
 *
 * Written here instead of linking libsystemd: the protocol is one datagram
 * of newline-separated KEY=VALUE assignments to the AF_UNIX socket named by
 * $NOTIFY_SOCKET, documented as a stable interface that services may
 * implement themselves (sd_notify(3), NOTES; systemd's "Interface Portability
 * and Stability" page). libsystemd drags libgcrypt, libgpg-error, liblzma,
 * libzstd, liblz4 and libcap into the process: ~0.9 MiB of resident memory on
 * an edge board (bench/agent_mqtt.sh, rss_kib) for a few sendmsg() calls. */
#ifndef TERN_AGENT_NOTIFY_H
#define TERN_AGENT_NOTIFY_H

#include <stdint.h>

/* Sends state (e.g. "READY=1\nSTATUS=started") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when not running under a notifying service manager
 * ($NOTIFY_SOCKET unset), -1 on error (errno set). Never blocks for long
 * (non-blocking datagram). Thread-safe. */
int tern_notify(const char *state);
/* printf-style tern_notify; messages longer than 1 KiB are cut. */
int tern_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like sd_watchdog_enabled(0, &usec): returns 1 and the watchdog period in
 * *usec when $WATCHDOG_USEC is set (and $WATCHDOG_PID, when set, is this
 * process), else 0. */
int tern_notify_watchdog_usec(uint64_t *usec);

#endif
