/* sim_pty.c - see sim_pty.h. */
#include "sim_pty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

int tern_sim_pty_open(int *master, char *path, size_t cap)
{
    *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*master < 0 || grantpt(*master) < 0 || unlockpt(*master) < 0 ||
        ptsname_r(*master, path, cap) != 0)
        return -1;
    return 0;
}

int tern_sim_pty_open_raw(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios tio;
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        if (tcsetattr(fd, TCSANOW, &tio) == 0)
            return fd;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
