/* modbus.c - the `modbus` driver: registers of a Modbus TCP or RTU device read
 * through libmodbus, one metric per register.<metric> option (modbus_map.h).
 * A failed transfer closes the connection; the next read reconnects, so a
 * restarted device or gateway is picked up without restarting the agent. */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "driver.h"
#include "kv.h"
#include "modbus_map.h"
#include "parse.h"

static const struct tern_driver_option modbus_options[] = {
    {"mode", "tcp|rtu", "tcp", "Modbus TCP, or RTU on a serial line"},
    {"host", "string", "127.0.0.1", "mode=tcp: device or gateway address"},
    {"port", "int", "502", "mode=tcp: TCP port"},
    {"device", "path", "/dev/ttyUSB0", "mode=rtu: serial device"},
    {"baud", "int", "9600", "mode=rtu: baud rate"},
    {"framing", "framing", "8N1", "mode=rtu: data bits, parity (N/E/O), stop bits"},
    {"unit_id", "int", "1", "Modbus unit (slave) id"},
    {"timeout", "duration", "1s", "response timeout"},
    {"register.*", "modbus-register", "",
     "register.<metric> = <addr> [holding|input] [int16|uint16|int32|uint32|float32] "
     "[abcd|cdab|badc|dcba] [scale=x] [offset=y] [unit=u]"},
    {NULL, NULL, NULL, NULL},
};

static const char *const mode_names[] = {"tcp", "rtu", NULL};

struct modbus_state {
    modbus_t *ctx;
    int connected;
    char where[160];
    size_t n;
    struct tern_modbus_reg regs[TERN_METRICS_MAX];
};

static void modbus_close_state(void *state)
{
    struct modbus_state *s = state;
    if (s->ctx) {
        modbus_close(s->ctx);
        modbus_free(s->ctx);
    }
    tern_free(s);
}

static int modbus_open_state(const struct tern_kv_list *l, void **state, char *err,
                             size_t errcap)
{
    const struct tern_driver_option *o = modbus_options;
    struct modbus_state *s = NULL;
    int mode;
    long port, baud, unit;
    long long timeout_ms;
    if (tern_kv_check(l, o, err, errcap) < 0 ||
        tern_kv_enum(l, o, "mode", mode_names, &mode, err, errcap) < 0 ||
        tern_kv_long(l, o, "port", 1, 65535, &port, err, errcap) < 0 ||
        tern_kv_long(l, o, "baud", 50, 4000000, &baud, err, errcap) < 0 ||
        tern_kv_long(l, o, "unit_id", 0, 255, &unit, err, errcap) < 0 ||
        tern_kv_duration_ms(l, o, "timeout", 60000, &timeout_ms, err, errcap) < 0)
        return -1;
    s = tern_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (size_t i = 0; l && i < l->n; i++) {
        const char *key = l->items[i].key;
        if (strncmp(key, "register.", 9) != 0)
            continue;
        if (s->n >= TERN_METRICS_MAX) {
            snprintf(err, errcap, "line %d: more than %d registers", l->items[i].line,
                     TERN_METRICS_MAX);
            goto fail;
        }
        struct tern_modbus_reg *r = &s->regs[s->n];
        char why[200];
        if (strlen(key + 9) >= sizeof r->metric) {
            snprintf(err, errcap, "line %d: metric name too long", l->items[i].line);
            goto fail;
        }
        if (tern_modbus_parse_reg(l->items[i].value, r, why, sizeof why) < 0) {
            snprintf(err, errcap, "line %d: option '%s': %s", l->items[i].line, key, why);
            goto fail;
        }
        snprintf(r->metric, sizeof r->metric, "%s", key + 9);
        s->n++;
    }
    if (s->n == 0) {
        snprintf(err, errcap, "no registers: add register.<metric> = <address> ...");
        goto fail;
    }
    if (mode == 0) {
        const char *host = tern_kv_str(l, o, "host");
        s->ctx = modbus_new_tcp(host, (int)port);
        snprintf(s->where, sizeof s->where, "tcp %.100s:%ld unit %ld", host, port, unit);
    } else {
        int data, stop;
        char parity;
        const char *dev = tern_kv_str(l, o, "device");
        if (tern_parse_framing(tern_kv_str(l, o, "framing"), &data, &parity, &stop) < 0) {
            snprintf(err, errcap, "line %d: option 'framing': expected e.g. 8N1, got '%s'",
                     tern_kv_line(l, "framing"), tern_kv_str(l, o, "framing"));
            goto fail;
        }
        s->ctx = modbus_new_rtu(dev, (int)baud, parity, data, stop);
        snprintf(s->where, sizeof s->where, "rtu %.100s %ld %d%c%d unit %ld", dev, baud, data,
                 parity, stop, unit);
    }
    if (!s->ctx) {
        snprintf(err, errcap, "libmodbus: %s", modbus_strerror(errno));
        goto fail;
    }
    modbus_set_slave(s->ctx, (int)unit);
    modbus_set_response_timeout(s->ctx, (uint32_t)(timeout_ms / 1000),
                                (uint32_t)(timeout_ms % 1000) * 1000);
    *state = s;
    return 0;
fail:
    modbus_close_state(s);
    return -1;
}

static int modbus_read_state(void *state, struct tern_metric *out, size_t max, size_t *n,
                             char *err, size_t errcap)
{
    struct modbus_state *s = state;
    *n = 0;
    if (s->n > max) {
        snprintf(err, errcap, "no room for %zu metrics", s->n);
        return TERN_READ_ERROR;
    }
    if (!s->connected) {
        if (modbus_connect(s->ctx) < 0) {
            snprintf(err, errcap, "%s: connect: %s", s->where, modbus_strerror(errno));
            return TERN_READ_ERROR;
        }
        s->connected = 1;
        modbus_flush(s->ctx); /* stale bytes from before are not our reply */
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct tern_modbus_reg *r = &s->regs[i];
        uint16_t words[2] = {0, 0};
        int count = tern_modbus_reg_count(r);
        int got = r->fn == TERN_MB_HOLDING
                      ? modbus_read_registers(s->ctx, r->address, count, words)
                      : modbus_read_input_registers(s->ctx, r->address, count, words);
        if (got != count) {
            int e = errno;
            snprintf(err, errcap, "%s: read %s register %u (%s): %s", s->where,
                     r->fn == TERN_MB_HOLDING ? "holding" : "input", r->address, r->metric,
                     modbus_strerror(e));
            /* A device exception leaves the link usable; anything else
             * (timeout, reset, garbled frame) may have desynchronised it. */
            if (e <= MODBUS_ENOBASE || e > EMBXGTAR) {
                modbus_flush(s->ctx); /* RTU: drop the rest of a garbled frame */
                modbus_close(s->ctx);
                s->connected = 0;
            }
            *n = 0;
            return TERN_READ_ERROR;
        }
        double v;
        if (tern_modbus_decode(r, words, &v) < 0) {
            snprintf(err, errcap, "%s: register %u (%s) holds no finite number (0x%04x 0x%04x)",
                     s->where, r->address, r->metric, words[0], words[1]);
            *n = 0;
            return TERN_READ_ERROR;
        }
        snprintf(out[i].name, sizeof out[i].name, "%s", r->metric);
        snprintf(out[i].unit, sizeof out[i].unit, "%s", r->unit);
        out[i].value = v;
    }
    *n = s->n;
    return TERN_READ_OK;
}

static void modbus_describe_state(void *state, char *buf, size_t cap)
{
    struct modbus_state *s = state;
    snprintf(buf, cap, "Modbus %s, %zu registers", s->where, s->n);
}

const struct tern_driver tern_driver_modbus = {
    .name = "modbus",
    .summary = "Modbus TCP or RTU registers (libmodbus)",
    .options = modbus_options,
    .open = modbus_open_state,
    .read = modbus_read_state,
    .close = modbus_close_state,
    .describe = modbus_describe_state,
};
