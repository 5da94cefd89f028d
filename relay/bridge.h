/* bridge.h - relay.mode = bridge: devices speak MQTT, the datacenter speaks
 * Kafka. Every reading line from the MQTT source becomes one Kafka message on
 * [kafka] topic (key = device_id, headers epoch and seq, the same shape the
 * agent's Kafka uplink writes), through an idempotent producer with
 * acks=all; a message's receipt goes out only once Kafka acknowledged all
 * its lines. A relay in clickhouse mode consumes the topic as usual. */
#ifndef TERN_RELAY_BRIDGE_H
#define TERN_RELAY_BRIDGE_H

#include "config.h"
#include "metrics.h"

/* Runs until *stop, then waits up to 10 s for Kafka to acknowledge what is in
 * flight. Returns 0, or -1 on a fatal error (logged). */
int bridge_run(const struct relay_config *c, struct relay_metrics *m, volatile int *stop);

#endif
