/* receipt.c - see receipt.h. The decoder uses jansson (strict JSON, duplicate
 * keys rejected) like the reading decoder's slow path; receipts are small and
 * rare compared with readings. */
#include "receipt.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_range(const void *a, const void *b)
{
    const struct tern_seq_range *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->last < y->last ? -1 : x->last > y->last;
}

size_t tern_receipt_coalesce(struct tern_seq_range *r, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (r[i].first <= r[i].last)
            r[w++] = r[i];
    n = w;
    if (n < 2)
        return n;
    qsort(r, n, sizeof(*r), cmp_range);
    w = 0;
    for (size_t i = 1; i < n; i++) {
        /* Adjacent merges too; last < INT64_MAX guards the +1. */
        if (r[w].last == INT64_MAX || r[i].first <= r[w].last + 1) {
            if (r[i].last > r[w].last)
                r[w].last = r[i].last;
        } else {
            r[++w] = r[i];
        }
    }
    return w + 1;
}

int tern_receipt_encode(uint64_t epoch, const struct tern_seq_range *r, size_t n, char *buf, size_t cap)
{
    if (n == 0 || n > TERN_RECEIPT_MAX_RANGES)
        return -1;
    int len = snprintf(buf, cap, "{\"v\":%d,\"epoch\":\"%016" PRIx64 "\",\"ranges\":[", TERN_RECEIPT_VERSION, epoch);
    if (len < 0 || (size_t)len >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(buf + len, cap - (size_t)len, "%s[%" PRId64 ",%" PRId64 "]", i ? "," : "", r[i].first,
                         r[i].last);
        if (k < 0 || (size_t)k >= cap - (size_t)len)
            return -1;
        len += k;
    }
    if ((size_t)len + 3 > cap)
        return -1;
    memcpy(buf + len, "]}", 3);
    return len + 2;
}

static int parse_epoch(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (strlen(s) != 16)
        return -1;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

int tern_receipt_decode(const char *s, size_t len, uint64_t *epoch, struct tern_seq_range *out, size_t *n,
                        char *err, size_t errcap)
{
    json_error_t je;
    int rc = -1;
    *n = 0;
    json_t *root = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errcap, "not JSON: %s", je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errcap, "not a JSON object");
        goto out;
    }
    json_t *v = json_object_get(root, "v");
    if (!json_is_integer(v) || json_integer_value(v) != TERN_RECEIPT_VERSION) {
        snprintf(err, errcap, "unsupported or missing receipt version");
        goto out;
    }
    json_t *e = json_object_get(root, "epoch");
    if (!json_is_string(e) || parse_epoch(json_string_value(e), epoch) != 0) {
        snprintf(err, errcap, "epoch must be 16 lowercase hex digits");
        goto out;
    }
    json_t *ranges = json_object_get(root, "ranges");
    if (!json_is_array(ranges)) {
        snprintf(err, errcap, "missing array 'ranges'");
        goto out;
    }
    size_t count = json_array_size(ranges);
    if (count > TERN_RECEIPT_MAX_RANGES) {
        snprintf(err, errcap, "%zu ranges, more than %d", count, TERN_RECEIPT_MAX_RANGES);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *pair = json_array_get(ranges, i);
        json_t *a = json_array_get(pair, 0), *b = json_array_get(pair, 1);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_integer(a) || !json_is_integer(b) ||
            json_integer_value(a) < 1 || json_integer_value(a) > json_integer_value(b)) {
            snprintf(err, errcap, "range %zu is not [first,last] with 1 <= first <= last", i);
            goto out;
        }
        out[i].first = json_integer_value(a);
        out[i].last = json_integer_value(b);
    }
    *n = tern_receipt_coalesce(out, count);
    rc = 0;
out:
    json_decref(root);
    return rc;
}
