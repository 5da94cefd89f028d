/* ch_client.c - see ch_client.h. */
#include "ch_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "alloc.h"
#include "ch_error.h"
#include "clock.h"

struct ch_client {
    CURL *curl;
    struct curl_slist *headers;      /* without Content-Encoding */
    struct curl_slist *headers_gzip; /* with it */
    char *base;                      /* url without trailing slash */
    int gzip;
    char *resp;
    size_t resp_len, resp_cap;
    unsigned char *zbuf;
    size_t zcap;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct ch_client *c = user;
    size_t n = size * nmemb;
    /* Error texts are short; cap what we keep so a huge SELECT result cannot
     * exhaust memory (the relay never reads large results). */
    const size_t limit = 16u << 20;
    if (c->resp_len + n + 1 > c->resp_cap && c->resp_len + n + 1 <= limit) {
        size_t cap = c->resp_cap ? c->resp_cap : 4096;
        while (cap < c->resp_len + n + 1)
            cap *= 2;
        char *p = tern_realloc(c->resp, cap);
        if (!p)
            return 0;
        c->resp = p;
        c->resp_cap = cap;
    }
    if (c->resp_len + n + 1 <= c->resp_cap) {
        memcpy(c->resp + c->resp_len, ptr, n);
        c->resp_len += n;
        c->resp[c->resp_len] = '\0';
    }
    return n;
}

struct ch_client *ch_client_open(const struct ch_client_conf *conf, char *err, size_t errcap)
{
    static int global_done;
    struct ch_client *c = NULL;
    char hdr[600];
    if (!global_done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_done = 1;
    }
    c = tern_calloc(1, sizeof(*c));
    if (!c)
        goto nomem;
    c->gzip = conf->gzip;
    c->base = tern_strdup(conf->url);
    if (!c->base)
        goto nomem;
    size_t bl = strlen(c->base);
    while (bl > 0 && c->base[bl - 1] == '/')
        c->base[--bl] = '\0';
    c->curl = curl_easy_init();
    if (!c->curl) {
        snprintf(err, errcap, "curl_easy_init failed");
        goto fail;
    }
    /* No "Expect: 100-continue" round trip per insert. */
    c->headers = curl_slist_append(NULL, "Expect:");
    if (conf->auth_headers) {
        snprintf(hdr, sizeof(hdr), "X-ClickHouse-User: %s", conf->user);
        c->headers = curl_slist_append(c->headers, hdr);
        snprintf(hdr, sizeof(hdr), "X-ClickHouse-Key: %s", conf->password);
        c->headers = curl_slist_append(c->headers, hdr);
    }
    c->headers_gzip = curl_slist_append(NULL, "Expect:");
    c->headers_gzip = curl_slist_append(c->headers_gzip, "Content-Encoding: gzip");
    if (conf->auth_headers) {
        snprintf(hdr, sizeof(hdr), "X-ClickHouse-User: %s", conf->user);
        c->headers_gzip = curl_slist_append(c->headers_gzip, hdr);
        snprintf(hdr, sizeof(hdr), "X-ClickHouse-Key: %s", conf->password);
        c->headers_gzip = curl_slist_append(c->headers_gzip, hdr);
    }
    memset(hdr, 0, sizeof(hdr));
    if (!c->headers || !c->headers_gzip)
        goto nomem;
    if (!conf->auth_headers) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c->curl, CURLOPT_USERNAME, conf->user);
        curl_easy_setopt(c->curl, CURLOPT_PASSWORD, conf->password);
    }
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, conf->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, conf->timeout_ms < 5000 ? conf->timeout_ms : 5000L);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    return c;
nomem:
    snprintf(err, errcap, "out of memory");
fail:
    ch_client_close(c);
    return NULL;
}

void ch_client_close(struct ch_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->headers_gzip);
    tern_free(c->base);
    tern_free(c->resp);
    tern_free(c->zbuf);
    tern_free(c);
}

/* gzip-compresses data into c->zbuf at level 1: on a LAN the CPU is the
 * bottleneck, and level 1 already gets most of the ratio on JSON rows. */
static int compress_body(struct ch_client *c, const void *data, size_t len, size_t *out_len)
{
    size_t need = len + len / 1000 + 64;
    if (need > c->zcap) {
        unsigned char *p = tern_realloc(c->zbuf, need);
        if (!p)
            return -1;
        c->zbuf = p;
        c->zcap = need;
    }
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = c->zbuf;
    z.avail_out = (uInt)c->zcap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}

int ch_client_query(struct ch_client *c, const char *sql, const char *settings,
                    const void *data, size_t len, struct ch_result *res)
{
    char *url = NULL;
    char *esc = NULL;
    memset(res, 0, sizeof(*res));
    c->resp_len = 0;
    if (c->resp)
        c->resp[0] = '\0';
    int64_t t0 = tern_mono_ms();

    const void *body = data ? data : sql;
    size_t blen = data ? len : strlen(sql);
    int gz = 0;
    size_t zlen = 0;
    if (c->gzip && blen > 512 && len < 0xffffffffu && compress_body(c, body, blen, &zlen) == 0) {
        body = c->zbuf;
        blen = zlen;
        gz = 1;
    }
    size_t ul = strlen(c->base) + 16 + (settings ? strlen(settings) : 0);
    if (data) {
        esc = curl_easy_escape(c->curl, sql, 0);
        if (!esc)
            goto nomem;
        ul += strlen(esc);
    }
    url = tern_malloc(ul);
    if (!url)
        goto nomem;
    snprintf(url, ul, "%s/?%s%s%s%s", c->base, data ? "query=" : "", data ? esc : "",
             (data && settings && *settings) ? "&" : "", settings ? settings : "");
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, gz ? c->headers_gzip : c->headers);
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);

    CURLcode cc = curl_easy_perform(c->curl);
    res->seconds = (double)(tern_mono_ms() - t0) / 1000.0;
    res->body = c->resp ? c->resp : "";
    res->len = c->resp_len;
    if (cc != CURLE_OK) {
        snprintf(res->message, sizeof(res->message), "%s", curl_easy_strerror(cc));
        goto fail;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &res->http_status);
    if (res->http_status != 200) {
        ch_parse_error(res->body, res->len, &res->code, res->message, sizeof(res->message));
        if (!res->message[0])
            snprintf(res->message, sizeof(res->message), "HTTP status %ld", res->http_status);
        goto fail;
    }
    curl_free(esc);
    tern_free(url);
    return 0;
nomem:
    snprintf(res->message, sizeof(res->message), "out of memory");
fail:
    curl_free(esc);
    tern_free(url);
    return -1;
}
