/* status.c - see status.h. */
#include "status.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int make_addr(const char *path, struct sockaddr_un *sa, char *err, size_t cap)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path) {
        snprintf(err, cap, "status socket path too long (max %zu bytes): %.200s",
                 sizeof sa->sun_path - 1, path);
        return -1;
    }
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

int tern_status_listen(const char *path, char *err, size_t errcap)
{
    struct sockaddr_un sa;
    if (make_addr(path, &sa, err, errcap) < 0)
        return -1;
    /* Is another agent serving here? Then two agents share one data_dir. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        int live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(probe);
        if (live) {
            snprintf(err, errcap,
                     "another tern-agent is running with status socket %s", path);
            return -1;
        }
    }
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
        snprintf(err, errcap, "status socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int tern_status_accept(int listen_fd)
{
    if (listen_fd < 0)
        return -1;
    return accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

void tern_status_reply(int fd, const char *text, size_t len)
{
    size_t off = 0;
    int waits = 0;
    while (off < len && waits < 10) {
        ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 10);
            waits++;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    close(fd);
}

void tern_status_close(int listen_fd, const char *path)
{
    if (listen_fd < 0)
        return;
    close(listen_fd);
    unlink(path);
}

int tern_status_query(const char *path, char *buf, size_t cap, char *err, size_t errcap)
{
    struct sockaddr_un sa;
    if (make_addr(path, &sa, err, errcap) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        snprintf(err, errcap, "no tern-agent answering on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0) {
            snprintf(err, errcap, "tern-agent on %s did not answer within 5 s", path);
            close(fd);
            return -1;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    buf[len] = '\0';
    close(fd);
    return 0;
}

static int is_number(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '-')
        i++;
    if (i == n)
        return 0;
    if (n - i > 1 && s[i] == '0' && s[i + 1] != '.')
        return 0; /* "007" and hex-looking ids stay strings */
    int dot = 0;
    for (; i < n; i++) {
        if (s[i] == '.' && !dot)
            dot = 1;
        else if (!isdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

/* Keys whose values are names or ids: strings even when they look numeric
 * (an epoch of only decimal digits must not lose precision in a parser). */
static int is_text_key(const char *key, size_t len)
{
    static const char *const suffixes[] = {"device_id", "epoch", "config", "version", "state",
                                           "last_error"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len >= sl && memcmp(key + len - sl, suffixes[i], sl) == 0)
            return 1;
    }
    return 0;
}

void tern_status_print_json(const char *text, FILE *f)
{
    fputc('{', f);
    int first = 1;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            fprintf(f, "%s\"%.*s\":", first ? "" : ",", (int)(eq - p), p);
            first = 0;
            const char *v = eq + 1;
            size_t vl = len - (size_t)(v - p);
            if (is_number(v, vl) && !is_text_key(p, (size_t)(eq - p))) {
                fwrite(v, 1, vl, f);
            } else {
                fputc('"', f);
                for (size_t i = 0; i < vl; i++) {
                    unsigned char c = (unsigned char)v[i];
                    if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                    else if (c < 0x20)
                        fprintf(f, "\\u%04x", c);
                    else
                        fputc(c, f);
                }
                fputc('"', f);
            }
        }
        p = nl ? nl + 1 : p + len;
    }
    fputs("}\n", f);
}
