/* parse.h - the text parsers behind the sysfs, 1-Wire and serial drivers,
 * kept apart from any I/O so tests and fuzz targets can call them directly.
 * Every parser takes (text, len) that need not be NUL-terminated, never reads
 * past len, and rejects rather than guesses: bad input is an error, not a 0. */
#ifndef TERN_DRIVERS_PARSE_H
#define TERN_DRIVERS_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include "driver.h"

/* A sysfs attribute holding one number ("42000\n", "-5", "0.012500").
 * 0 and *out, or -1 when the text is anything else (empty, two numbers,
 * garbage, out of range). */
int tern_parse_sysfs_number(const char *text, size_t len, double *out);

/* Dallas/Maxim 1-Wire CRC-8 (polynomial x^8 + x^5 + x^4 + 1, reflected). */
uint8_t tern_w1_crc8(const uint8_t *data, size_t n);

enum tern_w1_status {
    TERN_W1_OK = 0,
    TERN_W1_MALFORMED = -1, /* not the two-line w1_slave format */
    TERN_W1_CRC = -2,       /* the kernel (or our own check) saw a bad CRC */
    TERN_W1_POWER_ON = -3,  /* 85.000 Cel: the scratchpad's power-on value */
    TERN_W1_RANGE = -4,     /* outside the DS18B20's -55..125 Cel */
};

/* Parses the w1_therm driver's w1_slave file:
 *   "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
 * Returns enum tern_w1_status; *celsius is set only on TERN_W1_OK. */
int tern_parse_w1_slave(const char *text, size_t len, double *celsius);
const char *tern_w1_status_text(int status);

/* One named number from a serial line. */
struct tern_field {
    char key[TERN_ID_MAX];
    double value;
};

/* "T=21.4 H=40.2" (also ':' for '=', and ',' or ';' between pairs). Keys are
 * [A-Za-z0-9_.-]+. Returns the number of fields (>= 1), or -1 when any token
 * is malformed or more than max fields are present. */
int tern_parse_kv_line(const char *line, size_t len, struct tern_field *out, size_t max);

/* "21.4,40.2" with sep between columns; empty columns are errors. Returns the
 * number of columns (>= 1) or -1. */
int tern_parse_csv_line(const char *line, size_t len, char sep, double *out, size_t max);

/* Line framing for byte streams (serial ports): collects bytes into lines of
 * at most TERN_LINE_MAX - 1 bytes. Until the first newline and after an
 * over-long line, bytes are discarded up to the next newline (resync), so a
 * line is only ever delivered whole. '\r' is dropped. */
#define TERN_LINE_MAX 512
struct tern_linebuf {
    char buf[TERN_LINE_MAX];
    size_t len;
    size_t max;         /* line limit, <= TERN_LINE_MAX - 1; 0 = the maximum */
    int synced;         /* 0 until a newline has been seen */
    unsigned long dropped; /* bytes discarded while resyncing */
};
void tern_linebuf_init(struct tern_linebuf *lb, size_t max, int start_synced);
/* Consumes bytes from data[0..n) up to and including the first completed
 * line. Returns the bytes consumed; *line is set (NUL-terminated, owned by lb,
 * valid until the next push) when a line completed, else NULL. */
size_t tern_linebuf_push(struct tern_linebuf *lb, const char *data, size_t n,
                         const char **line);

/* Serial framing "8N1", "7E1", "8N2": data bits 5..8, parity N/E/O, stop
 * bits 1..2. 0, or -1 when malformed. */
int tern_parse_framing(const char *text, int *data_bits, char *parity, int *stop_bits);

#endif
