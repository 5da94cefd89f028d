/* sim_modbus.c - a Modbus TCP server (real protocol, libmodbus) whose
 * registers change over time, with injectable faults. One thread serves any
 * number of clients with poll(); register map in simdev.h. */
#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <modbus.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "modbus_map.h"
#include "rng.h"
#include "sim_pty.h"
#include "simdev.h"

#define MAX_CLIENTS 32

struct tern_sim_modbus {
    modbus_t *ctx;
    modbus_mapping_t *map;
    int listen_fd;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t idle_cond;
    int busy; /* inside a request (a slow reply blocks this one-thread server) */
    struct tern_rng rng;
    enum tern_sim_modbus_fault fault;
    int delay_ms;
    struct tern_sim_modbus_truth truth;
    int64_t start_ms;
    int64_t refreshed_ms; /* registers change once per second, not per request */
    int rtu;
    int pty_master[2], pty_slave_a; /* RTU: driver side (a) and server side (b) */
    char rtu_path[128];
    pthread_t bridge;
    unsigned long requests;
};

static const struct tern_modbus_reg r_temp = {.address = 0, .type = TERN_MB_FLOAT32, .order = "abcd"};
static const struct tern_modbus_reg r_energy = {.address = 3, .type = TERN_MB_UINT32, .order = "cdab"};
static const struct tern_modbus_reg r_press = {.address = 0, .type = TERN_MB_UINT32, .order = "dcba"};

/* Recomputes the registers for the current time (under lock), at most once a
 * second so that a client reading several registers sees one instant. */
static void refresh(struct tern_sim_modbus *s, int force)
{
    int64_t now = tern_mono_ms();
    if (!force && (s->fault == SIMMB_STUCK || now - s->refreshed_ms < 1000))
        return;
    s->refreshed_ms = now;
    double t = (double)(now - s->start_ms) / 1000.0;
    struct tern_sim_modbus_truth *v = &s->truth;
    /* Values as the registers can hold them, so truth == what is readable. */
    v->temperature_c = (double)(float)(22.5 + 1.5 * sin(t / 10) + 0.05 * tern_rng_gauss(&s->rng));
    v->humidity_pct = round((48 + 6 * sin(t / 30)) * 10) / 10;
    v->energy_wh = v->energy_wh + 1 + (double)(tern_rng_u64(&s->rng) % 3);
    if (v->energy_wh < 70000)
        v->energy_wh = 70000; /* above 65535: the word order matters */
    v->outdoor_c = round((-2.5 + 4 * sin(t / 50)) * 100) / 100;
    v->pressure_pa = round(101325 + 150 * sin(t / 40));
    v->voltage_v = round((24 + 0.2 * sin(t / 5)) * 1000) / 1000;

    uint16_t *h = s->map->tab_registers, *in = s->map->tab_input_registers;
    double temp = s->fault == SIMMB_NAN ? NAN : v->temperature_c;
    tern_modbus_encode(&r_temp, temp, &h[0]);
    h[2] = (uint16_t)lround(v->humidity_pct * 10);
    tern_modbus_encode(&r_energy, v->energy_wh, &h[3]);
    h[5] = (uint16_t)(int16_t)lround(v->outdoor_c * 100);
    tern_modbus_encode(&r_press, v->pressure_pa, &in[0]);
    in[2] = (uint16_t)(int16_t)lround(v->voltage_v * 1000);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Answers one request according to the current fault. fd is the link to
 * write raw garbage to. Returns -1 when the link should be dropped. */
static int respond(struct tern_sim_modbus *s, const uint8_t *query, int len, int fd)
{
    int drop = 0;
    pthread_mutex_lock(&s->lock);
    enum tern_sim_modbus_fault f = s->fault;
    int delay = s->delay_ms;
    refresh(s, 0);
    s->requests++;
    s->busy = 1;
    uint8_t junk[16];
    for (size_t k = 0; k < sizeof junk; k++)
        junk[k] = (uint8_t)tern_rng_u64(&s->rng);
    pthread_mutex_unlock(&s->lock);
    if (f == SIMMB_SLOW)
        sleep_ms(delay);
    if (f == SIMMB_DISCONNECT) {
        drop = 1; /* TCP: close; RTU: no answer at all */
    } else if (f == SIMMB_EXCEPTION) {
        modbus_reply_exception(s->ctx, query, MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE);
    } else if (f == SIMMB_GARBAGE) {
        /* TCP: keep the transaction id so the client parses past the MBAP
         * header into nonsense, as a broken gateway does; RTU: keep the
         * address byte, so the frame fails its CRC. */
        junk[0] = query[0];
        if (!s->rtu)
            junk[1] = query[1];
        ssize_t w = s->rtu ? write(fd, junk, sizeof junk)
                           : send(fd, junk, sizeof junk, MSG_NOSIGNAL);
        if (w < 0)
            drop = 1;
    } else {
        pthread_mutex_lock(&s->lock);
        modbus_reply(s->ctx, query, len, s->map);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    s->busy = 0;
    pthread_cond_broadcast(&s->idle_cond);
    pthread_mutex_unlock(&s->lock);
    return drop ? -1 : 0;
}

static void *serve(void *arg)
{
    struct tern_sim_modbus *s = arg;
    struct pollfd pfd[MAX_CLIENTS + 2];
    int clients[MAX_CLIENTS];
    int nclients = 0;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    for (;;) {
        pfd[0] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        for (int i = 0; i < nclients; i++)
            pfd[2 + i] = (struct pollfd){.fd = clients[i], .events = POLLIN};
        if (poll(pfd, (nfds_t)(2 + nclients), -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[0].revents)
            break;
        if (pfd[1].revents & POLLIN) {
            int fd = accept(s->listen_fd, NULL, NULL);
            if (fd >= 0 && nclients < MAX_CLIENTS)
                clients[nclients++] = fd;
            else if (fd >= 0)
                close(fd);
        }
        for (int i = nclients - 1; i >= 0; i--) {
            if (!pfd[2 + i].revents)
                continue;
            modbus_set_socket(s->ctx, clients[i]);
            int rc = modbus_receive(s->ctx, query);
            int drop = rc < 0;
            if (rc > 0 && respond(s, query, rc, clients[i]) < 0)
                drop = 1;
            if (drop) {
                close(clients[i]);
                clients[i] = clients[--nclients];
            }
        }
    }
    for (int i = 0; i < nclients; i++)
        close(clients[i]);
    return NULL;
}

/* Allocates a server (TCP or RTU) with its register map, no link and no
 * thread yet: every fd is -1. NULL with err on failure. Freed by sim_free. */
static struct tern_sim_modbus *sim_new(uint64_t seed, char *err, size_t errcap)
{
    struct tern_sim_modbus *s = tern_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    s->listen_fd = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    s->pty_master[0] = s->pty_master[1] = s->pty_slave_a = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle_cond, NULL);
    tern_rng_seed(&s->rng, seed);
    s->start_ms = tern_mono_ms();
    s->map = modbus_mapping_new(0, 0, 16, 16);
    if (!s->map) {
        snprintf(err, errcap, "modbus_mapping_new: %s", modbus_strerror(errno));
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->idle_cond);
        tern_free(s);
        return NULL;
    }
    return s;
}

/* Frees what sim_new made, the stop pipe and the libmodbus context. The
 * threads must be joined and the links (TCP listener, ptys) closed, and an
 * RTU context modbus_close()d, by the caller first. */
static void sim_free(struct tern_sim_modbus *s)
{
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    if (s->ctx)
        modbus_free(s->ctx);
    modbus_mapping_free(s->map);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->idle_cond);
    tern_free(s);
}

struct tern_sim_modbus *tern_sim_modbus_start(int port, int tries, int *bound, uint64_t seed,
                                              char *err, size_t errcap)
{
    struct tern_sim_modbus *s = sim_new(seed, err, errcap);
    if (!s)
        return NULL;
    for (int p = port; p < port + (tries > 0 ? tries : 1); p++) {
        s->ctx = modbus_new_tcp("127.0.0.1", p);
        if (!s->ctx) {
            snprintf(err, errcap, "modbus_new_tcp: %s", modbus_strerror(errno));
            goto fail;
        }
        s->listen_fd = modbus_tcp_listen(s->ctx, 8);
        if (s->listen_fd >= 0) {
            *bound = p;
            break;
        }
        snprintf(err, errcap, "listen on 127.0.0.1:%d: %s", p, modbus_strerror(errno));
        modbus_free(s->ctx);
        s->ctx = NULL;
    }
    if (s->listen_fd < 0)
        goto fail;
    refresh(s, 1);
    if (pipe(s->stop_pipe) < 0 || pthread_create(&s->thread, NULL, serve, s) != 0) {
        snprintf(err, errcap, "cannot start server thread");
        goto fail;
    }
    return s;
fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    sim_free(s);
    return NULL;
}

void tern_sim_modbus_fault(struct tern_sim_modbus *s, enum tern_sim_modbus_fault f, int delay_ms)
{
    pthread_mutex_lock(&s->lock);
    s->fault = f;
    s->delay_ms = delay_ms;
    /* Applies at once (e.g. the NaN register), except that stuck keeps what is there. */
    if (f != SIMMB_STUCK)
        refresh(s, 1);
    pthread_mutex_unlock(&s->lock);
}

void tern_sim_modbus_truth(struct tern_sim_modbus *s, struct tern_sim_modbus_truth *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->truth;
    pthread_mutex_unlock(&s->lock);
}

unsigned long tern_sim_modbus_requests(struct tern_sim_modbus *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned long n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void tern_sim_modbus_stop(struct tern_sim_modbus *s)
{
    if (!s)
        return;
    /* Both loops watch the pipe (the RTU server between indication timeouts). */
    if (write(s->stop_pipe[1], "x", 1) < 0) {
        /* The pipe cannot be full: nothing else writes to it. */
    }
    pthread_join(s->thread, NULL);
    if (s->rtu) {
        pthread_join(s->bridge, NULL);
        modbus_close(s->ctx);
        close(s->pty_master[0]);
        close(s->pty_master[1]);
        close(s->pty_slave_a);
    } else {
        close(s->listen_fd);
    }
    sim_free(s);
}

/* ---- RTU over a pair of pseudo-terminals ------------------------------- */

/* The null-modem cable: copies bytes between the two pty masters. */
static void *bridge(void *arg)
{
    struct tern_sim_modbus *s = arg;
    char buf[512];
    for (;;) {
        struct pollfd pfd[3] = {{.fd = s->stop_pipe[0], .events = POLLIN},
                                {.fd = s->pty_master[0], .events = POLLIN},
                                {.fd = s->pty_master[1], .events = POLLIN}};
        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (pfd[0].revents)
            return NULL;
        for (int i = 0; i < 2; i++) {
            if (!(pfd[1 + i].revents & POLLIN))
                continue;
            ssize_t n = read(s->pty_master[i], buf, sizeof buf);
            if (n > 0 && write(s->pty_master[1 - i], buf, (size_t)n) < 0) {
                /* the other side is not listening: bytes lost, as on a wire */
            }
        }
    }
}

static void *serve_rtu(void *arg)
{
    struct tern_sim_modbus *s = arg;
    uint8_t query[MODBUS_RTU_MAX_ADU_LENGTH];
    for (;;) {
        struct pollfd stop = {.fd = s->stop_pipe[0], .events = POLLIN};
        if (poll(&stop, 1, 0) > 0)
            return NULL;
        int rc = modbus_receive(s->ctx, query);
        if (rc > 0)
            respond(s, query, rc, modbus_get_socket(s->ctx));
        else if (rc < 0 && errno != ETIMEDOUT)
            modbus_flush(s->ctx); /* a garbled request: resync on silence */
    }
}

struct tern_sim_modbus *tern_sim_modbus_rtu_start(int unit_id, uint64_t seed, char *path,
                                                  size_t pathcap, char *err, size_t errcap)
{
    struct tern_sim_modbus *s = sim_new(seed, err, errcap);
    char server_path[128];
    int started = 0;
    if (!s)
        return NULL;
    s->rtu = 1;
    if (tern_sim_pty_open(&s->pty_master[0], s->rtu_path, sizeof s->rtu_path) < 0 ||
        tern_sim_pty_open(&s->pty_master[1], server_path, sizeof server_path) < 0 ||
        pipe(s->stop_pipe) < 0) {
        snprintf(err, errcap, "RTU link: %s", strerror(errno));
        goto fail;
    }
    /* Hold the driver's end open in raw mode so nothing echoes before the
     * driver opens it. */
    s->pty_slave_a = tern_sim_pty_open_raw(s->rtu_path);
    if (s->pty_slave_a < 0) {
        snprintf(err, errcap, "%s: %s", s->rtu_path, strerror(errno));
        goto fail;
    }
    s->ctx = modbus_new_rtu(server_path, 9600, 'N', 8, 1);
    if (!s->ctx || modbus_set_slave(s->ctx, unit_id) < 0 || modbus_connect(s->ctx) < 0) {
        snprintf(err, errcap, "RTU server on %s: %s", server_path, modbus_strerror(errno));
        goto fail;
    }
    modbus_set_indication_timeout(s->ctx, 0, 100000); /* wake up to check for stop */
    refresh(s, 1);
    if (pthread_create(&s->bridge, NULL, bridge, s) != 0)
        goto fail;
    started = 1;
    if (pthread_create(&s->thread, NULL, serve_rtu, s) != 0) {
        snprintf(err, errcap, "cannot start server thread");
        goto fail;
    }
    snprintf(path, pathcap, "%s", s->rtu_path);
    return s;
fail:
    if (started) {
        if (write(s->stop_pipe[1], "x", 1) < 0) {
            /* cannot fail on a fresh pipe */
        }
        pthread_join(s->bridge, NULL);
    }
    if (s->ctx)
        modbus_close(s->ctx);
    for (int i = 0; i < 2; i++)
        if (s->pty_master[i] >= 0)
            close(s->pty_master[i]);
    if (s->pty_slave_a >= 0)
        close(s->pty_slave_a);
    sim_free(s);
    return NULL;
}

int tern_sim_modbus_wait_idle(struct tern_sim_modbus *s, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    while (s->busy && rc == 0)
        rc = pthread_cond_timedwait(&s->idle_cond, &s->lock, &dl);
    int busy = s->busy;
    pthread_mutex_unlock(&s->lock);
    return busy ? -1 : 0;
}
