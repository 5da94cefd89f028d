/* notify.c - see notify.h: sd_notify(3)'s datagram protocol. */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int tern_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    /* An absolute path, or "@name" for the abstract namespace (as systemd
     * documents). Other forms (e.g. vsock:) are not used on our targets. */
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (path[0] == '/')
        salen++; /* the terminating NUL, as sd_notify sends it */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    return 1;
}

int tern_notifyf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return tern_notify(buf);
}

int tern_notify_watchdog_usec(uint64_t *usec)
{
    const char *s = getenv("WATCHDOG_USEC");
    if (!s || !s[0])
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0)
        return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && pid[0]) {
        long p = strtol(pid, &end, 10);
        if (*end || p != (long)getpid())
            return 0; /* meant for another process of the service */
    }
    *usec = (uint64_t)v;
    return 1;
}
