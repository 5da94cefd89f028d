/* token_bucket.h - rate limit for backlog drain: rate tokens (readings) per
 * second, at most burst saved up. After an outage a fleet of agents drains
 * at a bounded rate instead of flattening the broker. */
#ifndef TERN_AGENT_TOKEN_BUCKET_H
#define TERN_AGENT_TOKEN_BUCKET_H

#include <stdint.h>

struct tern_token_bucket {
    double rate;   /* tokens per second; 0 = unlimited */
    double burst;  /* bucket size in tokens */
    double tokens; /* available now */
    int64_t last_ms;
};

/* Starts full. rate 0 disables limiting. */
void tern_tb_init(struct tern_token_bucket *tb, double rate, double burst, int64_t now_ms);
/* Whole tokens available at now_ms (refills first); UINT32_MAX when unlimited. */
uint32_t tern_tb_available(struct tern_token_bucket *tb, int64_t now_ms);
/* Spends n tokens (may go negative after a larger batch; refills repay it). */
void tern_tb_take(struct tern_token_bucket *tb, uint32_t n);
/* Milliseconds until at least one token is available (0 = now). */
int64_t tern_tb_wait_ms(const struct tern_token_bucket *tb);

#endif
