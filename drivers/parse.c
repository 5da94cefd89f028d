/* parse.c - see parse.h. Hand-written scanners: no sscanf, so "12abc" or an
 * overlong field is an error instead of a silently truncated number. */
#include "parse.h"

#include <ctype.h>
#include <string.h>

#include "kv.h"

int tern_parse_sysfs_number(const char *text, size_t len, double *out)
{
    char buf[64];
    if (!text || len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len))
        return -1;
    /* One number with optional surrounding blanks (sysfs ends with '\n'). */
    return tern_text_double(buf, out);
}

uint8_t tern_w1_crc8(const uint8_t *data, size_t n)
{
    uint8_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = data[i];
        for (int bit = 0; bit < 8; bit++) {
            uint8_t mix = (crc ^ b) & 1;
            crc >>= 1;
            if (mix)
                crc ^= 0x8c;
            b >>= 1;
        }
    }
    return crc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Reads nine "hh " bytes from p (bounded by end); returns the position after
 * them or NULL. */
static const char *scan_bytes(const char *p, const char *end, uint8_t out[9])
{
    for (int i = 0; i < 9; i++) {
        if (end - p < 3)
            return NULL;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0 || p[2] != ' ')
            return NULL;
        out[i] = (uint8_t)(hi << 4 | lo);
        p += 3;
    }
    return p;
}

static int starts(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

int tern_parse_w1_slave(const char *text, size_t len, double *celsius)
{
    if (!text)
        return TERN_W1_MALFORMED;
    const char *p = text, *end = text + len;
    const char *nl = memchr(p, '\n', len);
    if (!nl)
        return TERN_W1_MALFORMED;
    uint8_t b1[9], b2[9];
    /* Line 1: nine bytes, ": crc=hh YES|NO". */
    p = scan_bytes(p, nl, b1);
    if (!p || !starts(p, nl, ": crc="))
        return TERN_W1_MALFORMED;
    p += 6;
    if (nl - p < 3 || hexval(p[0]) < 0 || hexval(p[1]) < 0 || p[2] != ' ')
        return TERN_W1_MALFORMED;
    p += 3;
    int yes;
    if (nl - p == 3 && memcmp(p, "YES", 3) == 0)
        yes = 1;
    else if (nl - p == 2 && memcmp(p, "NO", 2) == 0)
        yes = 0;
    else
        return TERN_W1_MALFORMED;

    /* Line 2: the same nine bytes, "t=<millidegrees>". */
    p = nl + 1;
    const char *nl2 = memchr(p, '\n', (size_t)(end - p));
    const char *e2 = nl2 ? nl2 : end;
    p = scan_bytes(p, e2, b2);
    if (!p || !starts(p, e2, "t="))
        return TERN_W1_MALFORMED;
    p += 2;
    char num[16];
    size_t nlen = (size_t)(e2 - p);
    if (nlen == 0 || nlen >= sizeof num)
        return TERN_W1_MALFORMED;
    memcpy(num, p, nlen);
    num[nlen] = '\0';
    for (size_t i = 0; i < nlen; i++)
        if (!isdigit((unsigned char)num[i]) && !(i == 0 && num[i] == '-'))
            return TERN_W1_MALFORMED;
    long milli;
    if (tern_text_long(num, &milli) < 0)
        return TERN_W1_MALFORMED;
    /* Anything after the second line is not the kernel's format. */
    if (nl2 && nl2 + 1 != end)
        return TERN_W1_MALFORMED;
    if (memcmp(b1, b2, sizeof b1) != 0)
        return TERN_W1_MALFORMED;
    if (!yes || tern_w1_crc8(b1, 8) != b1[8])
        return TERN_W1_CRC;
    /* The temperature register (bytes 0-1, 1/16 Cel) must agree with t=;
     * kernels differ in masking low bits at 9..11-bit resolution, hence the
     * half-degree slack. */
    int16_t raw = (int16_t)((uint16_t)b1[1] << 8 | b1[0]);
    long from_raw = (long)raw * 1000 / 16;
    if (from_raw - milli > 500 || milli - from_raw > 500)
        return TERN_W1_MALFORMED;
    if (milli == 85000)
        return TERN_W1_POWER_ON;
    if (milli < -55000 || milli > 125000)
        return TERN_W1_RANGE;
    *celsius = (double)milli / 1000.0;
    return TERN_W1_OK;
}

const char *tern_w1_status_text(int status)
{
    switch (status) {
    case TERN_W1_OK: return "ok";
    case TERN_W1_MALFORMED: return "malformed w1_slave content";
    case TERN_W1_CRC: return "CRC check failed";
    case TERN_W1_POWER_ON: return "85 Cel power-on value (conversion did not run)";
    case TERN_W1_RANGE: return "temperature outside -55..125 Cel";
    default: return "unknown w1 status";
    }
}

static int is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

static int is_sep(char c) { return c == ' ' || c == '\t' || c == ',' || c == ';'; }

/* One number from the len bytes at p (a field of a serial line, not
 * NUL-terminated): 0, or -1 when empty, too long, holding a NUL, or not a
 * number (tern_text_double). */
static int field_double(const char *p, size_t len, double *out)
{
    char num[48];
    if (len == 0 || len >= sizeof num || memchr(p, '\0', len))
        return -1;
    memcpy(num, p, len);
    num[len] = '\0';
    return tern_text_double(num, out);
}

int tern_parse_kv_line(const char *line, size_t len, struct tern_field *out, size_t max)
{
    size_t i = 0, n = 0;
    if (!line)
        return -1;
    for (;;) {
        while (i < len && is_sep(line[i]))
            i++;
        if (i >= len)
            break;
        size_t k0 = i;
        while (i < len && is_key_char(line[i]) && line[i] != '-')
            i++;
        /* '-' may appear inside a key but not start it, so "T=-3" works. */
        while (i < len && is_key_char(line[i]))
            i++;
        size_t klen = i - k0;
        if (klen == 0 || klen >= TERN_ID_MAX || i >= len || (line[i] != '=' && line[i] != ':'))
            return -1;
        i++;
        size_t v0 = i;
        while (i < len && !is_sep(line[i]))
            i++;
        if (n >= max || field_double(line + v0, i - v0, &out[n].value) < 0)
            return -1;
        memcpy(out[n].key, line + k0, klen);
        out[n].key[klen] = '\0';
        n++;
    }
    return n > 0 ? (int)n : -1;
}

int tern_parse_csv_line(const char *line, size_t len, char sep, double *out, size_t max)
{
    size_t i = 0, n = 0;
    if (!line || len == 0)
        return -1;
    for (;;) {
        size_t c0 = i;
        while (i < len && line[i] != sep)
            i++;
        if (n >= max || field_double(line + c0, i - c0, &out[n]) < 0)
            return -1;
        n++;
        if (i >= len)
            break;
        i++; /* the separator; a trailing one leaves an empty column: error */
    }
    return (int)n;
}

void tern_linebuf_init(struct tern_linebuf *lb, size_t max, int start_synced)
{
    memset(lb, 0, sizeof *lb);
    lb->max = max == 0 || max > TERN_LINE_MAX - 1 ? TERN_LINE_MAX - 1 : max;
    lb->synced = start_synced;
}

size_t tern_linebuf_push(struct tern_linebuf *lb, const char *data, size_t n,
                         const char **line)
{
    *line = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (!lb->synced) {
            lb->dropped++;
            if (c == '\n')
                lb->synced = 1;
            continue;
        }
        if (c == '\n') {
            lb->buf[lb->len] = '\0';
            lb->len = 0;
            *line = lb->buf;
            return i + 1;
        }
        if (c == '\r')
            continue;
        if (lb->len >= lb->max) {
            /* Over-long: not a line we can trust; drop it through its end. */
            lb->dropped += lb->len + 1;
            lb->len = 0;
            lb->synced = 0;
            continue;
        }
        /* A NUL would cut the line short and let a prefix parse: store a
         * byte no parser accepts instead. */
        lb->buf[lb->len++] = c == '\0' ? '\x01' : c;
    }
    return n;
}

int tern_parse_framing(const char *text, int *data_bits, char *parity, int *stop_bits)
{
    if (!text || strlen(text) != 3)
        return -1;
    char p = (char)toupper((unsigned char)text[1]);
    if (text[0] < '5' || text[0] > '8' || (p != 'N' && p != 'E' && p != 'O') ||
        (text[2] != '1' && text[2] != '2'))
        return -1;
    *data_bits = text[0] - '0';
    *parity = p;
    *stop_bits = text[2] - '0';
    return 0;
}
