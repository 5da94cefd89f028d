/* source_kafka.h - the Kafka source: a librdkafka high-level consumer in a
 * consumer group, offsets stored and committed only when the pipeline says
 * the rows are durable; and topic creation for `tern-relay init`. */
#ifndef TERN_RELAY_SOURCE_KAFKA_H
#define TERN_RELAY_SOURCE_KAFKA_H

#include <stddef.h>

#include "config.h"
#include "metrics.h"
#include "source.h"

/* Opens the consumer and subscribes. *out is filled; close it with
 * out->ops->close(out->self). ev (copied) is called on rebalance revokes.
 * Returns 0 or -1 with err. */
int source_kafka_open(const struct relay_config *c, const struct relay_source_events *ev,
                      struct relay_metrics *m, struct relay_source *out, char *err, size_t errcap);

/* Creates the topic with the configured partitions, replication, retention
 * and compression. An existing topic is fine (0, *existed = 1). */
int kafka_create_topic(const struct relay_config *c, int *existed, char *err, size_t errcap);

#endif
