/* token_bucket.c - see token_bucket.h. */
#include "token_bucket.h"

#include <math.h>

void tern_tb_init(struct tern_token_bucket *tb, double rate, double burst, int64_t now_ms)
{
    tb->rate = rate > 0 ? rate : 0;
    tb->burst = burst >= 1 ? burst : (rate > 1 ? rate : 1);
    tb->tokens = tb->burst;
    tb->last_ms = now_ms;
}

uint32_t tern_tb_available(struct tern_token_bucket *tb, int64_t now_ms)
{
    if (tb->rate <= 0)
        return UINT32_MAX;
    if (now_ms > tb->last_ms) {
        tb->tokens += tb->rate * (double)(now_ms - tb->last_ms) / 1000.0;
        if (tb->tokens > tb->burst)
            tb->tokens = tb->burst;
        tb->last_ms = now_ms;
    }
    return tb->tokens >= 1 ? (uint32_t)floor(tb->tokens) : 0;
}

void tern_tb_take(struct tern_token_bucket *tb, uint32_t n)
{
    if (tb->rate > 0)
        tb->tokens -= n;
}

int64_t tern_tb_wait_ms(const struct tern_token_bucket *tb)
{
    if (tb->rate <= 0 || tb->tokens >= 1)
        return 0;
    return (int64_t)ceil((1.0 - tb->tokens) * 1000.0 / tb->rate);
}
