/* kv.h - typed access to a sensor's options, for drivers.
 *
 * Defaults come from the driver's own option table (struct tern_driver_option),
 * so --help, --check and the value a driver actually uses cannot disagree.
 * Every getter returns 0, or -1 with err = "line N: option 'key': ..." naming
 * the config line at fault. */
#ifndef TERN_DRIVERS_KV_H
#define TERN_DRIVERS_KV_H

#include <stddef.h>
#include "driver.h"

/* The option entry for key (an entry "prefix.*" matches any "prefix.x");
 * NULL when unknown. */
const struct tern_driver_option *tern_opt_find(const struct tern_driver_option *opts,
                                               const char *key);
/* The config line of key in l, 0 when absent. */
int tern_kv_line(const struct tern_kv_list *l, const char *key);

/* Levenshtein distance between a and b, capped at 255 (enough to rank hints). */
unsigned tern_edit_distance(const char *a, const char *b);

/* Value of key, or the table default ("" when the table has none). */
const char *tern_kv_str(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                        const char *key);
int tern_kv_double(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                   const char *key, double min, double max, double *out, char *err,
                   size_t errcap);
int tern_kv_long(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                 const char *key, long min, long max, long *out, char *err, size_t errcap);
int tern_kv_bool(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                 const char *key, int *out, char *err, size_t errcap);
/* A duration: "250ms", "2s", "1.5m", "1h", "1d"; a bare number is seconds.
 * *out_ms in milliseconds, within [0, max_ms]. */
int tern_kv_duration_ms(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                        const char *key, long long max_ms, long long *out_ms, char *err,
                        size_t errcap);
/* One of names[] (NULL-terminated); *out = its index. */
int tern_kv_enum(const struct tern_kv_list *l, const struct tern_driver_option *opts,
                 const char *key, const char *const *names, int *out, char *err,
                 size_t errcap);

/* Steps through the value of a "list" option ("temp1, fan1,"): skips blanks
 * and commas at *p, points *item at the next item and *len at its length
 * without trailing blanks, and moves *p past it. 1, or 0 when no item is left. */
int tern_list_next(const char **p, const char **item, size_t *len);

/* Plain text to number helpers, shared with the parsers: the whole string
 * (surrounding blanks allowed) must be the number. 0, or -1 when it is not. */
int tern_text_double(const char *s, double *out);
int tern_text_long(const char *s, long *out);
int tern_text_duration_ms(const char *s, long long *out_ms);

/* Copies src into dst[cap], truncating; always NUL-terminates. */
void tern_strlcpy(char *dst, const char *src, size_t cap);

#endif
