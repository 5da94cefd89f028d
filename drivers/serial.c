/* serial.c - the `serial` driver: a microcontroller that prints readings as
 * text lines on a tty ("T=21.4 H=40.2" or "21.4,40.2"). Each read() drops
 * lines that were already buffered (stale), then waits for the next complete
 * line that parses. Garbage and over-long lines are discarded up to the next
 * newline (tern_linebuf), so the driver resyncs by itself after line noise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "driver.h"
#include "kv.h"
#include "parse.h"

static const struct tern_driver_option serial_options[] = {
    {"device", "path", NULL, "tty device, e.g. /dev/ttyACM0"},
    {"baud", "int", "9600", "baud rate"},
    {"framing", "framing", "8N1", "data bits, parity (N/E/O), stop bits"},
    {"format", "kv|csv", "kv", "kv (T=21.4 H=40.2) or csv (21.4,40.2)"},
    {"separator", "string", ",", "format=csv: column separator (one character)"},
    {"columns", "list", "",
     "format=csv: metric[:unit] per column, '-' skips one (e.g. temperature:Cel,humidity:%)"},
    {"field.*", "string", "",
     "format=kv: field.<key> = <metric> [unit] renames a key (e.g. field.T = temperature Cel)"},
    {"strict", "bool", "false", "format=kv: only keys with a field.<key> option (others dropped)"},
    {"request", "string", "", "text sent before each read for polled devices (\\n, \\r escapes)"},
    {"timeout", "duration", "2s", "wait at most this long for a valid line"},
    {"max_line", "int", "256", "longest accepted line in bytes; longer lines are discarded"},
    {NULL, NULL, NULL, NULL},
};

static const char *const format_names[] = {"kv", "csv", NULL};

struct column {
    char metric[TERN_ID_MAX];
    char unit[TERN_UNIT_MAX];
    int skip;
};

struct field_map {
    char key[TERN_ID_MAX];
    char metric[TERN_ID_MAX];
    char unit[TERN_UNIT_MAX];
};

struct serial_state {
    /* fixed at open */
    char device[256];
    int csv;
    char sep;
    int strict;
    char request[64];
    size_t request_len;
    long long timeout_ms;
    size_t ncols, nfields;
    struct column cols[TERN_METRICS_MAX];
    struct field_map fields[TERN_METRICS_MAX];
    /* changing */
    int fd;
    struct tern_linebuf lb;
    unsigned long garbage_lines;
};

static speed_t baud_constant(long baud)
{
    static const struct {
        long baud;
        speed_t c;
    } t[] = {{1200, B1200},     {2400, B2400},     {4800, B4800},     {9600, B9600},
             {19200, B19200},   {38400, B38400},   {57600, B57600},   {115200, B115200},
             {230400, B230400}, {460800, B460800}, {921600, B921600}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].baud == baud)
            return t[i].c;
    return 0;
}

static int configure_tty(int fd, speed_t speed, int data, char parity, int stop, char *err,
                         size_t errcap, const char *dev)
{
    struct termios tio;
    if (tcgetattr(fd, &tio) < 0) {
        snprintf(err, errcap, "%s: not a tty: %s", dev, strerror(errno));
        return -1;
    }
    cfmakeraw(&tio);
    cfsetispeed(&tio, speed);
    cfsetospeed(&tio, speed);
    tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
    tio.c_cflag |= CLOCAL | CREAD;
    tio.c_cflag |= data == 5 ? CS5 : data == 6 ? CS6 : data == 7 ? CS7 : CS8;
    if (parity != 'N')
        tio.c_cflag |= PARENB | (parity == 'O' ? PARODD : 0);
    if (stop == 2)
        tio.c_cflag |= CSTOPB;
    tio.c_cc[VMIN] = 0;
    tio.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &tio) < 0) {
        snprintf(err, errcap, "%s: cannot configure: %s", dev, strerror(errno));
        return -1;
    }
    return 0;
}

static void unescape(const char *in, char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < cap; p++) {
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 'r' || p[1] == '\\')) {
            out[o++] = p[1] == 'n' ? '\n' : p[1] == 'r' ? '\r' : '\\';
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    *len = o;
}

/* "temperature:Cel, humidity:%, -" -> columns. */
static int parse_columns(struct serial_state *s, const char *list, char *err, size_t errcap,
                         int line)
{
    const char *p = list, *it;
    size_t len;
    while (tern_list_next(&p, &it, &len)) {
        if (s->ncols >= TERN_METRICS_MAX) {
            snprintf(err, errcap, "line %d: option 'columns': too many columns", line);
            return -1;
        }
        struct column *c = &s->cols[s->ncols++];
        char item[TERN_ID_MAX + TERN_UNIT_MAX];
        snprintf(item, sizeof item, "%.*s", (int)len, it);
        char *colon = strchr(item, ':');
        if (colon)
            *colon = '\0';
        c->skip = strcmp(item, "-") == 0;
        if (strlen(item) >= sizeof c->metric || (colon && strlen(colon + 1) >= sizeof c->unit) ||
            !item[0]) {
            snprintf(err, errcap, "line %d: option 'columns': bad item '%s'", line, item);
            return -1;
        }
        /* Lengths were checked above; tern_copy_field cannot truncate here. */
        tern_copy_field(c->metric, sizeof c->metric, item);
        tern_copy_field(c->unit, sizeof c->unit, colon ? colon + 1 : "");
    }
    return 0;
}

static void serial_close(void *state)
{
    struct serial_state *s = state;
    if (s->fd >= 0)
        close(s->fd);
    tern_free(s);
}

static int serial_open(const struct tern_kv_list *l, void **state, char *err, size_t errcap)
{
    const struct tern_driver_option *o = serial_options;
    struct serial_state *s = NULL;
    int fmt, data, stop;
    char parity;
    long baud, max_line;
    if (tern_kv_check(l, o, err, errcap) < 0 ||
        tern_kv_long(l, o, "baud", 50, 4000000, &baud, err, errcap) < 0 ||
        tern_kv_enum(l, o, "format", format_names, &fmt, err, errcap) < 0 ||
        tern_kv_long(l, o, "max_line", 8, TERN_LINE_MAX - 1, &max_line, err, errcap) < 0)
        return -1;
    speed_t speed = baud_constant(baud);
    if (!speed) {
        snprintf(err, errcap, "line %d: option 'baud': unsupported rate %ld",
                 tern_kv_line(l, "baud"), baud);
        return -1;
    }
    if (tern_parse_framing(tern_kv_str(l, o, "framing"), &data, &parity, &stop) < 0) {
        snprintf(err, errcap, "line %d: option 'framing': expected e.g. 8N1, got '%s'",
                 tern_kv_line(l, "framing"), tern_kv_str(l, o, "framing"));
        return -1;
    }
    s = tern_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    s->fd = -1;
    s->csv = fmt == 1;
    if (tern_kv_bool(l, o, "strict", &s->strict, err, errcap) < 0 ||
        tern_kv_duration_ms(l, o, "timeout", 600000, &s->timeout_ms, err, errcap) < 0)
        goto fail;
    const char *sep = tern_kv_str(l, o, "separator");
    if (strlen(sep) != 1) {
        snprintf(err, errcap, "line %d: option 'separator': must be one character",
                 tern_kv_line(l, "separator"));
        goto fail;
    }
    s->sep = sep[0];
    unescape(tern_kv_str(l, o, "request"), s->request, sizeof s->request, &s->request_len);
    if (parse_columns(s, tern_kv_str(l, o, "columns"), err, errcap, tern_kv_line(l, "columns")) <
        0)
        goto fail;
    if (s->csv && s->ncols == 0) {
        snprintf(err, errcap, "format=csv needs option 'columns' (e.g. temperature:Cel,humidity:%%)");
        goto fail;
    }
    for (size_t i = 0; l && i < l->n; i++) {
        if (strncmp(l->items[i].key, "field.", 6) != 0)
            continue;
        if (s->nfields >= TERN_METRICS_MAX) {
            snprintf(err, errcap, "line %d: too many field options", l->items[i].line);
            goto fail;
        }
        struct field_map *f = &s->fields[s->nfields++];
        char metric[TERN_ID_MAX + 1] = "", unit[TERN_UNIT_MAX + 1] = "";
        int got = sscanf(l->items[i].value, "%64s %16s", metric, unit);
        if (got < 1 || strlen(l->items[i].key + 6) >= sizeof f->key ||
            strlen(metric) >= sizeof f->metric || strlen(unit) >= sizeof f->unit) {
            snprintf(err, errcap, "line %d: option '%s': expected '<metric> [unit]'",
                     l->items[i].line, l->items[i].key);
            goto fail;
        }
        snprintf(f->key, sizeof f->key, "%s", l->items[i].key + 6);
        tern_copy_field(f->metric, sizeof f->metric, metric);
        tern_copy_field(f->unit, sizeof f->unit, unit);
    }
    const char *dev = tern_kv_str(l, o, "device");
    snprintf(s->device, sizeof s->device, "%s", dev);
    s->fd = open(dev, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (s->fd < 0) {
        snprintf(err, errcap, "%s: %s", dev, strerror(errno));
        goto fail;
    }
    if (configure_tty(s->fd, speed, data, parity, stop, err, errcap, dev) < 0)
        goto fail;
    tcflush(s->fd, TCIFLUSH);
    /* A streaming device is most likely mid-line now: discard up to the first
     * newline. A polled one only talks when asked, so its first line is whole. */
    tern_linebuf_init(&s->lb, (size_t)max_line, s->request_len > 0);
    *state = s;
    return 0;
fail:
    serial_close(s);
    return -1;
}

/* Turns one line into metrics. Returns the count, or -1 when it does not parse. */
static int convert_line(struct serial_state *s, const char *line, struct tern_metric *out,
                        size_t max)
{
    size_t len = strlen(line);
    size_t n = 0;
    if (s->csv) {
        double v[TERN_METRICS_MAX];
        int got = tern_parse_csv_line(line, len, s->sep, v, TERN_METRICS_MAX);
        /* The column count is part of the format: a short line is corrupt. */
        if (got < 0 || (size_t)got != s->ncols)
            return -1;
        for (size_t i = 0; i < s->ncols; i++) {
            if (s->cols[i].skip)
                continue;
            if (n >= max)
                return -1;
            snprintf(out[n].name, sizeof out[n].name, "%s", s->cols[i].metric);
            snprintf(out[n].unit, sizeof out[n].unit, "%s", s->cols[i].unit);
            out[n++].value = v[i];
        }
        return (int)n;
    }
    struct tern_field f[TERN_METRICS_MAX];
    int got = tern_parse_kv_line(line, len, f, TERN_METRICS_MAX);
    if (got < 0)
        return -1;
    for (int i = 0; i < got; i++) {
        const struct field_map *m = NULL;
        for (size_t k = 0; k < s->nfields && !m; k++)
            if (strcmp(s->fields[k].key, f[i].key) == 0)
                m = &s->fields[k];
        if (!m && s->strict)
            continue;
        if (n >= max)
            return -1;
        tern_strlcpy(out[n].name, m ? m->metric : f[i].key, sizeof out[n].name);
        tern_strlcpy(out[n].unit, m ? m->unit : "", sizeof out[n].unit);
        out[n++].value = f[i].value;
    }
    return n > 0 ? (int)n : -1;
}

static int serial_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err,
                       size_t errcap)
{
    struct serial_state *s = state;
    char buf[256];
    const char *line;
    *n = 0;
    /* Drop whole lines already waiting: they are older than this read. A
     * partial line stays in the buffer; it is being sent now. */
    for (;;) {
        ssize_t got = read(s->fd, buf, sizeof buf);
        if (got <= 0)
            break;
        size_t off = 0;
        while (off < (size_t)got)
            off += tern_linebuf_push(&s->lb, buf + off, (size_t)got - off, &line);
    }
    if (s->request_len > 0 && s->lb.len > 0) {
        /* A polled device's half line (an answer cut short) is stale too. */
        tern_linebuf_init(&s->lb, s->lb.max, 1);
    }
    if (s->request_len > 0 && write(s->fd, s->request, s->request_len) !=
                                  (ssize_t)s->request_len) {
        snprintf(err, errcap, "%s: cannot send request: %s", s->device, strerror(errno));
        return TERN_READ_ERROR;
    }
    int64_t deadline = tern_mono_ms() + s->timeout_ms;
    unsigned long bad = 0;
    char last_bad[48] = "";
    for (;;) {
        int64_t left = deadline - tern_mono_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR) {
            snprintf(err, errcap, "%s: poll: %s", s->device, strerror(errno));
            return TERN_READ_ERROR;
        }
        if (pr <= 0)
            continue;
        ssize_t got = read(s->fd, buf, sizeof buf);
        /* With VMIN = 0 a read may return 0 without meaning EOF; a hang-up
         * shows as POLLHUP or EIO (USB unplugged, pty master closed). */
        int hup = (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
        if ((got < 0 && errno != EAGAIN && errno != EINTR) || (got <= 0 && hup)) {
            snprintf(err, errcap, "%s: device disconnected (%s)", s->device,
                     got < 0 ? strerror(errno) : "hang-up");
            return TERN_READ_ERROR;
        }
        if (got <= 0)
            continue;
        size_t off = 0;
        while (off < (size_t)got) {
            off += tern_linebuf_push(&s->lb, buf + off, (size_t)got - off, &line);
            if (!line)
                continue;
            int m = convert_line(s, line, out, max);
            if (m > 0) {
                /* Bytes after this line go to the line buffer: a partial
                 * line completes at the next read; whole lines are stale. */
                while (off < (size_t)got)
                    off += tern_linebuf_push(&s->lb, buf + off, (size_t)got - off, &line);
                *n = (size_t)m;
                return TERN_READ_OK;
            }
            bad++;
            s->garbage_lines++;
            snprintf(last_bad, sizeof last_bad, "%.40s", line);
            for (char *c = last_bad; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                    *c = '?';
        }
    }
    if (bad)
        snprintf(err, errcap, "%s: no valid line within %lld ms (%lu unparsable, last '%s')",
                 s->device, s->timeout_ms, bad, last_bad);
    else
        snprintf(err, errcap, "%s: no complete line within %lld ms", s->device, s->timeout_ms);
    return TERN_READ_ERROR;
}

static void serial_describe(void *state, char *buf, size_t cap)
{
    struct serial_state *s = state;
    snprintf(buf, cap, "serial %s (%s lines), %lu garbage lines so far", s->device,
             s->csv ? "csv" : "key=value", s->garbage_lines);
}

const struct tern_driver tern_driver_serial = {
    .name = "serial",
    .summary = "text lines from a microcontroller on a tty (key=value or CSV)",
    .options = serial_options,
    .open = serial_open,
    .read = serial_read,
    .close = serial_close,
    .describe = serial_describe,
};
