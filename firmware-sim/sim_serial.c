/* sim_serial.c - a microcontroller printing readings on a pseudo-terminal.
 * The emulator keeps the slave side open in raw mode (so nothing echoes back
 * and data waits for the driver) and writes to the master side. Line k
 * carries T = 20 + 0.1 * (k % 10) and H = 40 + (k % 10): tests can check that
 * a value belongs to one line by the T/H relation. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "rng.h"
#include "sim_pty.h"
#include "simdev.h"

struct tern_sim_serial {
    int master, slave;
    char path[128];
    enum tern_sim_serial_format fmt;
    int interval_ms;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t lock;
    enum tern_sim_serial_fault fault;
    struct tern_rng rng;
    struct tern_sim_serial_truth truth;
    unsigned long k;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nobody reading and buffer full: the line is lost, as on a UART */
        p += w;
        n -= (size_t)w;
    }
}

/* Sends one line according to the current fault (under lock). */
static void send_line(struct tern_sim_serial *s)
{
    if (s->fault == SIMSER_SILENT || s->fault == SIMSER_DISCONNECT || s->master < 0)
        return;
    if (s->fault != SIMSER_STUCK || s->truth.lines == 0) {
        unsigned long k = s->k++;
        s->truth.temperature_c = 20 + 0.1 * (double)(k % 10);
        s->truth.humidity_pct = 40 + (double)(k % 10);
    }
    char line[96];
    if (s->fmt == SIMSER_KV)
        snprintf(line, sizeof line, "T=%.2f H=%.1f\r\n", s->truth.temperature_c,
                 s->truth.humidity_pct);
    else
        snprintf(line, sizeof line, "%.2f,%.1f\r\n", s->truth.temperature_c,
                 s->truth.humidity_pct);
    if (s->fault == SIMSER_GARBAGE) {
        /* Noise: random bytes (NULs included), then an over-long line. */
        char junk[40];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (char)tern_rng_u64(&s->rng);
        junk[sizeof junk - 1] = '\n';
        write_all(s->master, junk, sizeof junk);
        char longline[700];
        memset(longline, 'x', sizeof longline);
        longline[0] = 'T';
        longline[1] = '=';
        longline[sizeof longline - 1] = '\n';
        write_all(s->master, longline, sizeof longline);
    }
    if (s->fault == SIMSER_CORRUPT) {
        /* Cut inside the number or with a mangled key: never a valid line. */
        size_t cut = strlen(line) / 2;
        line[cut] = '#';
        line[cut + 1] = '\n';
        line[cut + 2] = '\0';
        write_all(s->master, line, strlen(line));
        return;
    }
    write_all(s->master, line, strlen(line));
    s->truth.lines++;
}

/* The emulator thread owns the pty fds: other threads ask it to change state
 * through the control pipe ('x' = stop, 'f' = fault changed). */
static void *run(void *arg)
{
    struct tern_sim_serial *s = arg;
    char buf[128];
    for (;;) {
        struct pollfd pfd[2] = {{.fd = s->stop_pipe[0], .events = POLLIN},
                                {.fd = s->master, .events = POLLIN}};
        int pr = poll(pfd, s->master >= 0 ? 2 : 1, s->interval_ms > 0 ? s->interval_ms : -1);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr < 0)
            continue;
        pthread_mutex_lock(&s->lock);
        if (pfd[0].revents) {
            char cmd = 'x';
            if (read(s->stop_pipe[0], &cmd, 1) != 1 || cmd == 'x') {
                pthread_mutex_unlock(&s->lock);
                break;
            }
            if (s->fault == SIMSER_DISCONNECT && s->master >= 0) {
                /* Hang up: the driver's reads now fail with EIO. */
                close(s->master);
                close(s->slave);
                s->master = s->slave = -1;
            }
        } else if (s->master >= 0 && (pfd[1].revents & POLLIN)) {
            /* Polled mode: one line per newline received; otherwise requests
             * are read and ignored. */
            ssize_t n = read(s->master, buf, sizeof buf);
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\n' && s->interval_ms == 0)
                    send_line(s);
        } else if (s->interval_ms > 0 && pr == 0) {
            send_line(s);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

struct tern_sim_serial *tern_sim_serial_start(enum tern_sim_serial_format fmt, int interval_ms,
                                              uint64_t seed, char *err, size_t errcap)
{
    struct tern_sim_serial *s = tern_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    s->master = s->slave = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    s->fmt = fmt;
    s->interval_ms = interval_ms;
    tern_rng_seed(&s->rng, seed);
    pthread_mutex_init(&s->lock, NULL);
    if (tern_sim_pty_open(&s->master, s->path, sizeof s->path) < 0) {
        snprintf(err, errcap, "pseudo-terminal: %s", strerror(errno));
        goto fail;
    }
    s->slave = tern_sim_pty_open_raw(s->path);
    if (s->slave < 0 || pipe(s->stop_pipe) < 0) {
        snprintf(err, errcap, "%s: %s", s->path, strerror(errno));
        goto fail;
    }
    /* Writes must never block the emulator (nobody may be reading). */
    fcntl(s->master, F_SETFL, fcntl(s->master, F_GETFL) | O_NONBLOCK);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        snprintf(err, errcap, "cannot start emulator thread");
        goto fail;
    }
    return s;
fail:
    if (s->master >= 0)
        close(s->master);
    if (s->slave >= 0)
        close(s->slave);
    if (s->stop_pipe[0] >= 0) {
        close(s->stop_pipe[0]);
        close(s->stop_pipe[1]);
    }
    pthread_mutex_destroy(&s->lock);
    tern_free(s);
    return NULL;
}

const char *tern_sim_serial_path(const struct tern_sim_serial *s) { return s->path; }

void tern_sim_serial_fault(struct tern_sim_serial *s, enum tern_sim_serial_fault f)
{
    pthread_mutex_lock(&s->lock);
    s->fault = f;
    pthread_mutex_unlock(&s->lock);
    if (write(s->stop_pipe[1], "f", 1) < 0) {
        /* cannot fail short of a full pipe, and the thread drains it */
    }
}

void tern_sim_serial_truth(struct tern_sim_serial *s, struct tern_sim_serial_truth *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->truth;
    pthread_mutex_unlock(&s->lock);
}

void tern_sim_serial_stop(struct tern_sim_serial *s)
{
    if (!s)
        return;
    if (write(s->stop_pipe[1], "x", 1) < 0) {
        /* cannot happen: nothing else writes to the pipe */
    }
    pthread_join(s->thread, NULL);
    if (s->master >= 0)
        close(s->master);
    if (s->slave >= 0)
        close(s->slave);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->lock);
    tern_free(s);
}
