/* buf.h - a growable byte buffer for encoded rows. Allocation failures are
 * sticky: after one, buf_failed() is true and further appends do nothing, so
 * encoders can append freely and check once at the end. */
#ifndef TERN_RELAY_BUF_H
#define TERN_RELAY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct relay_buf {
    char *p;
    size_t len;
    size_t cap;
    int failed;
};

void buf_append(struct relay_buf *b, const void *data, size_t n);
void buf_puts(struct relay_buf *b, const char *s);
void buf_printf(struct relay_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (n bytes) as a JSON string literal, quotes included. */
void buf_json_string(struct relay_buf *b, const char *s, size_t n);
/* Room for n more bytes: returns where they go (then buf_commit the number
 * actually written), or NULL after an allocation failure. */
char *buf_reserve(struct relay_buf *b, size_t n);
static inline void buf_commit(struct relay_buf *b, size_t n)
{
    b->len += n;
    b->p[b->len] = '\0';
}
static inline int buf_failed(const struct relay_buf *b) { return b->failed; }
void buf_reset(struct relay_buf *b);  /* len = 0, keeps the memory */
void buf_free(struct relay_buf *b);

#endif
