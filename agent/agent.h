/* agent.h - the tern-agent daemon: owns the config, the sensors, the queue
 * from sensor threads, the store and one forwarder per uplink, and runs the
 * main loop (storage writer, forwarders, status socket, signals). */
#ifndef TERN_AGENT_AGENT_H
#define TERN_AGENT_AGENT_H

#include <stdint.h>
#include "config.h"

typedef struct tern_agent tern_agent;

/* Takes ownership of cfg. config_path (may be NULL: built-in config) is
 * re-read on SIGHUP. Opens the store and the status socket and starts the
 * sensors and uplinks. Returns the agent, or NULL with err filled (cfg freed). */
tern_agent *tern_agent_start(struct tern_config *cfg, const char *config_path, char *err,
                             size_t errcap);
/* Runs until SIGTERM/SIGINT (or tern_agent_request_stop). Returns the exit
 * status for the process. */
int tern_agent_run(tern_agent *a);
/* Stops everything, flushes, drains uplinks for the bounded shutdown time. */
void tern_agent_free(tern_agent *a);

/* Installs SIGTERM/SIGINT/SIGHUP handlers that drive tern_agent_run. */
void tern_agent_install_signals(void);
void tern_agent_request_stop(void);

/* Appends n synthetic readings straight into the store of cfg (benchmarks:
 * pre-fills a backlog quickly). Returns 0 or -1 with err. */
int tern_agent_prefill(const struct tern_config *cfg, uint64_t n, char *err, size_t errcap);

#endif
