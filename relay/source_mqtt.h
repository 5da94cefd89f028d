/* source_mqtt.h - the MQTT source: an MQTT 5 shared subscription
 * ($share/<group>/<topic>) through libmosquitto, and the end-to-end receipts
 * that replace the offsets MQTT does not have.
 *
 * MQTT cannot replay: libmosquitto PUBACKs a message before we stored it, so
 * what the relay holds when it dies is gone from the broker. Durability comes
 * from the devices instead: for every message the source notes the device
 * (from the topic) and the (epoch, seq) of each line; when the pipeline (or
 * the bridge) says the messages are durable, it publishes receipts to
 * tern/{device_id}/receipts, and agents in ack = end-to-end mode delete
 * readings only then, re-sending what gets no receipt. See docs/wire-format.md
 * ("Receipts") and docs/relay.md. */
#ifndef TERN_RELAY_SOURCE_MQTT_H
#define TERN_RELAY_SOURCE_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "source.h"

/* Opens the client, connects in the background (reconnecting with backoff)
 * and subscribes on every connect. *out is filled; close it with
 * out->ops->close(out->self), which also waits briefly for receipts still
 * being published. Returns 0 or -1 with err. */
int source_mqtt_open(const struct relay_config *c, struct relay_metrics *m, struct relay_source *out, char *err,
                     size_t errcap);

/* Every message delivered up to and including offset upto is settled: stored
 * = 1 publishes receipts for their readings, stored = 0 forgets them (the
 * devices re-send after their receipt timeout). For the bridge, whose
 * messages can fail one by one; durable() is settle(max offset, 1). */
void source_mqtt_settle(void *self, int64_t upto, int stored);

/* Finds "epoch":"<16 hex>" and "seq":<digits> in one wire line without a full
 * decode (the pipeline decodes it later). Returns 0, or -1 when either is
 * missing or malformed (that line then gets no receipt). */
int relay_line_identity(const char *line, size_t len, uint64_t *epoch, int64_t *seq);
/* Points *dev at the raw bytes of the line's "device_id" string value.
 * Returns 0, or -1 when missing or escaped (decode it fully then). */
int relay_line_device(const char *line, size_t len, const char **dev, size_t *devlen);

#endif
