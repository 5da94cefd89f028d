/* pipeline.h - source -> decode -> batch -> ClickHouse sink -> acknowledge.
 * Source agnostic: it drives any struct relay_source. One batch is in flight
 * at a time, so the acknowledged position never passes a batch that is not in
 * ClickHouse, and memory stays bounded by [batch] limits while paused. */
#ifndef TERN_RELAY_PIPELINE_H
#define TERN_RELAY_PIPELINE_H

#include <stddef.h>

#include "batch.h"
#include "config.h"
#include "envelope.h"
#include "metrics.h"
#include "sink_ch.h"
#include "source.h"

struct relay_pipeline;

/* Creates a pipeline (owned by the caller, pipeline_free). The source is set
 * later with pipeline_set_source, because the source needs the pipeline's
 * revoke events at open. */
struct relay_pipeline *pipeline_new(const struct relay_config *c, struct ch_sink *sink, struct relay_metrics *m,
                                    int modern, char *err, size_t errcap);
void pipeline_set_source(struct relay_pipeline *p, struct relay_source *src);
/* Events to hand to the source at open (revoke -> flush or abandon). */
struct relay_source_events pipeline_events(struct relay_pipeline *p);
/* Decodes one message into the batch (readings and rejects). Returns 0 or -1
 * out of memory. Exposed for tests. */
int pipeline_take(struct relay_pipeline *p, const struct relay_msg *msg);
struct batch *pipeline_batch(struct relay_pipeline *p);
/* The input.format = auto rule: 1 when a message looks like a wire line. */
int pipeline_looks_like_wire(const char *s, size_t len);
/* Runs until *stop, then flushes what it holds (bounded wait). Returns 0, or
 * -1 on a fatal source error. */
int pipeline_run(struct relay_pipeline *p, volatile int *stop);
void pipeline_free(struct relay_pipeline *p);

#endif
