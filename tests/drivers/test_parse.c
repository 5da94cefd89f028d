/* test_parse.c - the text parsers: sysfs numbers, w1_slave, key=value and CSV
 * lines, line framing with resync, framing strings, Modbus register specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "modbus_map.h"
#include "parse.h"

#define S(x) x, sizeof(x) - 1

static void test_sysfs_number(void **st)
{
    (void)st;
    double v;
    assert_int_equal(tern_parse_sysfs_number(S("42000\n"), &v), 0);
    assert_true(v == 42000);
    assert_int_equal(tern_parse_sysfs_number(S("-5"), &v), 0);
    assert_true(v == -5);
    assert_int_equal(tern_parse_sysfs_number(S("0.012500000\n"), &v), 0);
    assert_true(fabs(v - 0.0125) < 1e-12);
    assert_int_equal(tern_parse_sysfs_number(S(""), &v), -1);
    assert_int_equal(tern_parse_sysfs_number(S("\n"), &v), -1);
    assert_int_equal(tern_parse_sysfs_number(S("1 2\n"), &v), -1);
    assert_int_equal(tern_parse_sysfs_number(S("12abc"), &v), -1);
    assert_int_equal(tern_parse_sysfs_number(S("\x03garbage\xff\n"), &v), -1);
    assert_int_equal(tern_parse_sysfs_number(S("4\0002"), &v), -1);
    assert_int_equal(tern_parse_sysfs_number(S("nan"), &v), -1);
    /* Not NUL-terminated: only len bytes count. */
    assert_int_equal(tern_parse_sysfs_number("123456", 3, &v), 0);
    assert_true(v == 123);
}

static void test_w1_crc8(void **st)
{
    (void)st;
    /* A real DS18B20 scratchpad: 21.125 Cel (0x0152), CRC 0x57 at byte 8... */
    const uint8_t pad[9] = {0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0x57};
    assert_int_equal(tern_w1_crc8(pad, 8), pad[8]);
    /* ...and the CRC over all nine bytes of a good block is 0. */
    assert_int_equal(tern_w1_crc8(pad, 9), 0);
}

static void test_w1_slave(void **st)
{
    (void)st;
    double c = -999;
    const char ok[] = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
                      "72 01 4b 46 7f ff 0e 10 57 t=23125\n";
    assert_int_equal(tern_parse_w1_slave(S(ok), &c), TERN_W1_OK);
    assert_true(fabs(c - 23.125) < 1e-9);

    const char crc_no[] = "72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n"
                          "72 01 4b 46 7f ff 0e 10 57 t=23125\n";
    c = -999;
    assert_int_equal(tern_parse_w1_slave(S(crc_no), &c), TERN_W1_CRC);
    assert_true(c == -999); /* never touched on error */

    /* Kernel said YES, but the bytes do not check out: still a CRC error. */
    const char crc_lie[] = "72 01 4b 46 7f ff 0e 10 58 : crc=58 YES\n"
                           "72 01 4b 46 7f ff 0e 10 58 t=23125\n";
    assert_int_equal(tern_parse_w1_slave(S(crc_lie), &c), TERN_W1_CRC);

    uint8_t pad[9] = {0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0};
    pad[8] = tern_w1_crc8(pad, 8);
    char por[200];
    snprintf(por, sizeof por,
             "50 05 4b 46 7f ff 0c 10 %02x : crc=%02x YES\n50 05 4b 46 7f ff 0c 10 %02x t=85000\n",
             pad[8], pad[8], pad[8]);
    assert_int_equal(tern_parse_w1_slave(por, strlen(por), &c), TERN_W1_POWER_ON);

    /* Negative: -10.125 Cel = 0xFF5E. */
    uint8_t neg[9] = {0x5e, 0xff, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0};
    neg[8] = tern_w1_crc8(neg, 8);
    char negt[200];
    snprintf(negt, sizeof negt,
             "5e ff 4b 46 7f ff 0c 10 %02x : crc=%02x YES\n5e ff 4b 46 7f ff 0c 10 %02x t=-10125\n",
             neg[8], neg[8], neg[8]);
    assert_int_equal(tern_parse_w1_slave(negt, strlen(negt), &c), TERN_W1_OK);
    assert_true(fabs(c + 10.125) < 1e-9);

    /* t= disagreeing with the scratchpad bytes is corrupt. */
    const char mismatch[] = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
                            "72 01 4b 46 7f ff 0e 10 57 t=99000\n";
    assert_int_equal(tern_parse_w1_slave(S(mismatch), &c), TERN_W1_MALFORMED);
    assert_int_equal(tern_parse_w1_slave(S(""), &c), TERN_W1_MALFORMED);
    assert_int_equal(tern_parse_w1_slave(S("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"), &c),
                     TERN_W1_MALFORMED);
    assert_int_equal(tern_parse_w1_slave(S("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
                                           "72 01 4b 46 7f ff 0e 10 57 t=\n"), &c),
                     TERN_W1_MALFORMED);
    assert_int_equal(tern_parse_w1_slave(S("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
                                           "72 01 4b 46 7f ff 0e 10 57 t=23125\nextra"), &c),
                     TERN_W1_MALFORMED);
    /* Truncated read of a valid file. */
    assert_int_equal(tern_parse_w1_slave(ok, 50, &c), TERN_W1_MALFORMED);
    assert_string_equal(tern_w1_status_text(TERN_W1_CRC), "CRC check failed");
}

static void test_kv_line(void **st)
{
    (void)st;
    struct tern_field f[4];
    assert_int_equal(tern_parse_kv_line(S("T=21.4 H=40.2"), f, 4), 2);
    assert_string_equal(f[0].key, "T");
    assert_true(f[0].value == 21.4);
    assert_string_equal(f[1].key, "H");
    assert_true(f[1].value == 40.2);
    assert_int_equal(tern_parse_kv_line(S("temp:-3.5; rh:80,co2=410"), f, 4), 3);
    assert_true(f[0].value == -3.5);
    assert_string_equal(f[2].key, "co2");
    assert_int_equal(tern_parse_kv_line(S("T=21.4 H="), f, 4), -1);
    assert_int_equal(tern_parse_kv_line(S("T=21.4x"), f, 4), -1);
    assert_int_equal(tern_parse_kv_line(S("=5"), f, 4), -1);
    assert_int_equal(tern_parse_kv_line(S("T 21.4"), f, 4), -1);
    assert_int_equal(tern_parse_kv_line(S(""), f, 4), -1);
    assert_int_equal(tern_parse_kv_line(S("a=1 b=2 c=3 d=4 e=5"), f, 4), -1);
    assert_int_equal(tern_parse_kv_line(S("T=2\001"), f, 4), -1);
}

static void test_csv_line(void **st)
{
    (void)st;
    double v[4];
    assert_int_equal(tern_parse_csv_line(S("21.4,40.2"), ',', v, 4), 2);
    assert_true(v[0] == 21.4 && v[1] == 40.2);
    assert_int_equal(tern_parse_csv_line(S("1;2;3"), ';', v, 4), 3);
    assert_int_equal(tern_parse_csv_line(S("21.4,"), ',', v, 4), -1);
    assert_int_equal(tern_parse_csv_line(S(",1"), ',', v, 4), -1);
    assert_int_equal(tern_parse_csv_line(S("21.4,,1"), ',', v, 4), -1);
    assert_int_equal(tern_parse_csv_line(S("a,b"), ',', v, 4), -1);
    assert_int_equal(tern_parse_csv_line(S(""), ',', v, 4), -1);
    assert_int_equal(tern_parse_csv_line(S("1,2,3,4,5"), ',', v, 4), -1);
}

/* Feeds a whole buffer; collects completed lines joined by '|'. */
static void feed(struct tern_linebuf *lb, const char *data, size_t n, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    while (off < n) {
        const char *line;
        off += tern_linebuf_push(lb, data + off, n - off, &line);
        if (line) {
            strncat(out, line, cap - strlen(out) - 2);
            strcat(out, "|");
        }
    }
}

static void test_linebuf_resync(void **st)
{
    (void)st;
    struct tern_linebuf lb;
    char out[512];
    /* Opened mid-line: the first fragment is dropped. */
    tern_linebuf_init(&lb, 16, 0);
    feed(&lb, S("=40.2\nT=1 H=2\r\nT=3\n"), out, sizeof out);
    assert_string_equal(out, "T=1 H=2|T=3|");
    assert_int_equal(lb.dropped, 6);
    /* An over-long line is dropped whole; the next line is intact. */
    feed(&lb, S("T=123456789012345678901234567890\nT=4\n"), out, sizeof out);
    assert_string_equal(out, "T=4|");
    /* A line split across pushes is joined. */
    feed(&lb, S("T=5"), out, sizeof out);
    assert_string_equal(out, "");
    feed(&lb, S(".5\n"), out, sizeof out);
    assert_string_equal(out, "T=5.5|");
    /* A NUL inside a line never truncates it into something valid. */
    feed(&lb, "T=6\0garbage\n", 12, out, sizeof out);
    struct tern_field f[2];
    assert_int_equal(tern_parse_kv_line(out, strlen(out) - 1, f, 2), -1);
}

static void test_framing(void **st)
{
    (void)st;
    int d, s;
    char p;
    assert_int_equal(tern_parse_framing("8N1", &d, &p, &s), 0);
    assert_true(d == 8 && p == 'N' && s == 1);
    assert_int_equal(tern_parse_framing("7e2", &d, &p, &s), 0);
    assert_true(d == 7 && p == 'E' && s == 2);
    assert_int_equal(tern_parse_framing("9N1", &d, &p, &s), -1);
    assert_int_equal(tern_parse_framing("8X1", &d, &p, &s), -1);
    assert_int_equal(tern_parse_framing("8N3", &d, &p, &s), -1);
    assert_int_equal(tern_parse_framing("8N", &d, &p, &s), -1);
}

static void test_modbus_spec(void **st)
{
    (void)st;
    struct tern_modbus_reg r;
    char err[200];
    assert_int_equal(
        tern_modbus_parse_reg("40001 holding float32 abcd scale=0.1 offset=-5 unit=Cel", &r,
                              err, sizeof err), 0);
    assert_int_equal(r.address, 0);
    assert_int_equal(r.fn, TERN_MB_HOLDING);
    assert_int_equal(r.type, TERN_MB_FLOAT32);
    assert_true(r.scale == 0.1 && r.offset == -5);
    assert_string_equal(r.unit, "Cel");
    assert_int_equal(tern_modbus_parse_reg("30005 int16", &r, err, sizeof err), 0);
    assert_int_equal(r.address, 4);
    assert_int_equal(r.fn, TERN_MB_INPUT);
    assert_int_equal(tern_modbus_parse_reg("7 input uint32 cdab", &r, err, sizeof err), 0);
    assert_int_equal(r.address, 7);
    assert_string_equal(r.order, "cdab");
    assert_int_equal(tern_modbus_parse_reg("30001 holding", &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "contradicts"));
    assert_int_equal(tern_modbus_parse_reg("12 float64", &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown word 'float64'"));
    assert_int_equal(tern_modbus_parse_reg("", &r, err, sizeof err), -1);
    assert_int_equal(tern_modbus_parse_reg("70000", &r, err, sizeof err), -1);
    assert_int_equal(tern_modbus_parse_reg("65535 float32", &r, err, sizeof err), -1);
    assert_int_equal(tern_modbus_parse_reg("1 scale=0", &r, err, sizeof err), -1);
    assert_int_equal(tern_modbus_parse_reg("1 abca", &r, err, sizeof err), -1);
}

static void test_modbus_codec(void **st)
{
    (void)st;
    static const char *const orders[] = {"abcd", "cdab", "badc", "dcba"};
    struct tern_modbus_reg r;
    char err[100];
    uint16_t w[2];
    double v;
    for (int o = 0; o < 4; o++) {
        char spec[64];
        snprintf(spec, sizeof spec, "0 float32 %s", orders[o]);
        assert_int_equal(tern_modbus_parse_reg(spec, &r, err, sizeof err), 0);
        tern_modbus_encode(&r, 21.5, w);
        assert_int_equal(tern_modbus_decode(&r, w, &v), 0);
        assert_true(v == 21.5);
        snprintf(spec, sizeof spec, "0 int32 %s", orders[o]);
        tern_modbus_parse_reg(spec, &r, err, sizeof err);
        tern_modbus_encode(&r, -123456, w);
        assert_int_equal(tern_modbus_decode(&r, w, &v), 0);
        assert_true(v == -123456);
    }
    /* Known wire images: 21.5f = 0x41AC0000. */
    tern_modbus_parse_reg("0 float32 abcd", &r, err, sizeof err);
    w[0] = 0x41ac;
    w[1] = 0x0000;
    assert_int_equal(tern_modbus_decode(&r, w, &v), 0);
    assert_true(v == 21.5);
    tern_modbus_parse_reg("0 float32 cdab", &r, err, sizeof err);
    w[0] = 0x0000;
    w[1] = 0x41ac;
    assert_int_equal(tern_modbus_decode(&r, w, &v), 0);
    assert_true(v == 21.5);
    tern_modbus_parse_reg("0 uint32 badc", &r, err, sizeof err);
    w[0] = 0x3412;
    w[1] = 0x7856;
    assert_int_equal(tern_modbus_decode(&r, w, &v), 0);
    assert_true(v == 0x12345678);
    /* NaN is an error, not a value. */
    tern_modbus_parse_reg("0 float32", &r, err, sizeof err);
    w[0] = 0x7fc0;
    w[1] = 0;
    assert_int_equal(tern_modbus_decode(&r, w, &v), -1);
    tern_modbus_parse_reg("0 int16 scale=0.01", &r, err, sizeof err);
    w[0] = 0xff38; /* -200 */
    assert_int_equal(tern_modbus_decode(&r, w, &v), 0);
    assert_true(fabs(v + 2.0) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sysfs_number), cmocka_unit_test(test_w1_crc8),
        cmocka_unit_test(test_w1_slave),     cmocka_unit_test(test_kv_line),
        cmocka_unit_test(test_csv_line),     cmocka_unit_test(test_linebuf_resync),
        cmocka_unit_test(test_framing),      cmocka_unit_test(test_modbus_spec),
        cmocka_unit_test(test_modbus_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
