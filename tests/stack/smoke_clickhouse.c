/* smoke_clickhouse.c - proves real ClickHouse traffic through the local
 * stack's HTTP interface with libcurl: CREATE TABLE, INSERT rows in
 * JSONEachRow, SELECT them back and compare. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stack_env.h"

struct buf {
    char data[65536];
    size_t len;
};

static size_t on_body(char *p, size_t sz, size_t n, void *u)
{
    struct buf *b = u;
    size_t len = sz * n;
    if (b->len + len >= sizeof b->data)
        return 0;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = 0;
    return len;
}

/* POSTs body as the query; returns the HTTP status, the reply in out. */
static long post(CURL *c, const char *body, struct buf *out)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", STACK_CH_HTTP_PORT());
    out->len = 0;
    out->data[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (curl_easy_perform(c) != CURLE_OK)
        return -1;
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    struct buf *out = calloc(1, sizeof *out);
    char q[512], table[64];
    int rc = 1;
    snprintf(table, sizeof table, "default.tern_smoke_%d", (int)getpid());

    snprintf(q, sizeof q,
             "CREATE TABLE %s (id UInt32, name String, v Float64) ENGINE = MergeTree ORDER BY id",
             table);
    if (post(c, q, out) != 200) {
        fprintf(stderr, "create: %s\n", out->data);
        goto done;
    }
    snprintf(q, sizeof q,
             "INSERT INTO %s FORMAT JSONEachRow\n"
             "{\"id\":1,\"name\":\"a\",\"v\":1.5}\n{\"id\":2,\"name\":\"b\\\"q\",\"v\":-2}\n"
             "{\"id\":3,\"name\":\"c\",\"v\":1e10}\n",
             table);
    if (post(c, q, out) != 200) {
        fprintf(stderr, "insert: %s\n", out->data);
        goto done;
    }
    snprintf(q, sizeof q, "SELECT id, name, v FROM %s ORDER BY id FORMAT TSV", table);
    if (post(c, q, out) != 200) {
        fprintf(stderr, "select: %s\n", out->data);
        goto done;
    }
    const char *want = "1\ta\t1.5\n2\tb\"q\t-2\n3\tc\t10000000000\n";
    if (strcmp(out->data, want) != 0) {
        fprintf(stderr, "select returned:\n%s\nexpected:\n%s", out->data, want);
        goto done;
    }
    snprintf(q, sizeof q, "SELECT nosuchcolumn FROM %s", table);
    long code = post(c, q, out);
    if (code != 404 && code != 400 && code != 500) {
        fprintf(stderr, "a bad query answered HTTP %ld\n", code);
        goto done;
    }
    printf("clickhouse: create/insert/select ok, bad query -> HTTP %ld\n", code);
    rc = 0;
done:
    snprintf(q, sizeof q, "DROP TABLE IF EXISTS %s", table);
    post(c, q, out);
    free(out);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return rc;
}
