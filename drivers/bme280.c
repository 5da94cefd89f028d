/* bme280.c - BME280 chip logic (see bme280.h) and the `bme280` driver, which
 * puts the chip logic on /dev/i2c-N (bme280_i2c.c). */
#include "bme280.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "driver.h"
#include "kv.h"

void tern_bme280_unpack_calib(const uint8_t c[26], const uint8_t h[7],
                              struct tern_bme280_calib *cal)
{
#define U16(i) ((uint16_t)(c[(i)] | (uint16_t)c[(i) + 1] << 8))
    cal->T1 = U16(0);
    cal->T2 = (int16_t)U16(2);
    cal->T3 = (int16_t)U16(4);
    cal->P1 = U16(6);
    cal->P2 = (int16_t)U16(8);
    cal->P3 = (int16_t)U16(10);
    cal->P4 = (int16_t)U16(12);
    cal->P5 = (int16_t)U16(14);
    cal->P6 = (int16_t)U16(16);
    cal->P7 = (int16_t)U16(18);
    cal->P8 = (int16_t)U16(20);
    cal->P9 = (int16_t)U16(22);
#undef U16
    cal->H1 = c[25];
    cal->H2 = (int16_t)(h[0] | (uint16_t)h[1] << 8);
    cal->H3 = h[2];
    /* H4 and H5 are signed 12-bit values sharing the nibbles of 0xE5. */
    cal->H4 = (int16_t)((int16_t)(int8_t)h[3] * 16 | (h[4] & 0x0f));
    cal->H5 = (int16_t)((int16_t)(int8_t)h[5] * 16 | (h[4] >> 4));
    cal->H6 = (int8_t)h[6];
}

/* The datasheet's formulas use << on signed values that may be negative,
 * which C leaves undefined; multiplying by the power of two is the same
 * arithmetic without the undefined behaviour. >> on negatives is
 * arithmetic on every compiler Tern supports (and what the datasheet means). */
int32_t tern_bme280_comp_temp(const struct tern_bme280_calib *cal, int32_t adc_t,
                              int32_t *t_fine)
{
    /* 64-bit intermediates: identical results for real data, and no signed
     * overflow when a corrupt transfer hands us extreme raw values. */
    int64_t var1 = (((int64_t)(adc_t >> 3) - (int64_t)cal->T1 * 2) * cal->T2) >> 11;
    int64_t d = (int64_t)(adc_t >> 4) - cal->T1;
    int64_t var2 = (((d * d) >> 12) * cal->T3) >> 14;
    *t_fine = (int32_t)(var1 + var2);
    return (int32_t)(((int64_t)*t_fine * 5 + 128) >> 8);
}

uint32_t tern_bme280_comp_press(const struct tern_bme280_calib *cal, int32_t adc_p,
                                int32_t t_fine)
{
    int64_t var1 = (int64_t)t_fine - 128000;
    int64_t var2 = var1 * var1 * (int64_t)cal->P6;
    var2 = var2 + var1 * (int64_t)cal->P5 * 131072;        /* << 17 */
    var2 = var2 + (int64_t)cal->P4 * 34359738368LL;        /* << 35 */
    var1 = ((var1 * var1 * (int64_t)cal->P3) >> 8) + var1 * (int64_t)cal->P2 * 4096; /* << 12 */
    var1 = ((((int64_t)1) << 47) + var1) * (int64_t)cal->P1 >> 33;
    if (var1 == 0)
        return 0; /* the datasheet's guard against division by zero */
    int64_t p = 1048576 - adc_p;
    p = ((p * 2147483648LL - var2) * 3125) / var1;         /* << 31 */
    var1 = ((int64_t)cal->P9 * (p >> 13) * (p >> 13)) >> 25;
    var2 = ((int64_t)cal->P8 * p) >> 19;
    p = ((p + var1 + var2) >> 8) + (int64_t)cal->P7 * 16;  /* << 4 */
    return (uint32_t)p;
}

uint32_t tern_bme280_comp_hum(const struct tern_bme280_calib *cal, int32_t adc_h,
                              int32_t t_fine)
{
    int64_t v = (int64_t)t_fine - 76800;
    int64_t a = (((int64_t)adc_h * 16384) - ((int64_t)cal->H4 * 1048576) - (cal->H5 * v) +
                 16384) >> 15;
    int64_t b = (((((v * cal->H6) >> 10) * (((v * cal->H3) >> 11) + 32768)) >> 10) + 2097152) *
                    cal->H2 + 8192;
    v = a * (b >> 14);
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal->H1) >> 4);
    v = v < 0 ? 0 : v;
    v = v > 419430400 ? 419430400 : v;
    return (uint32_t)(v >> 12);
}

static void sleep_us(int us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

int tern_bme280_init(struct tern_bme280 *dev, struct tern_regbus bus, uint8_t osrs, char *err,
                     size_t errcap)
{
    memset(dev, 0, sizeof *dev);
    dev->bus = bus;
    dev->osrs = osrs >= 1 && osrs <= 5 ? osrs : 1;
    /* Datasheet 9.1: max time = 1.25 + 2.3*T + (2.3*P + 0.575) + (2.3*H + 0.575) ms,
     * with T, P, H the oversampling factors. Allow 50% margin on 1 ms polls. */
    int factor = 1 << (dev->osrs - 1);
    double max_ms = 1.25 + 3 * 2.3 * factor + 2 * 0.575;
    dev->poll_us = 1000;
    dev->max_polls = (int)(max_ms * 1.5) + 5;

    uint8_t id;
    if (bus.ops->read(bus.ctx, BME280_REG_CHIP_ID, &id, 1, err, errcap) < 0)
        return -1;
    if (id != BME280_CHIP_ID) {
        if (id == 0x56 || id == 0x57 || id == 0x58)
            snprintf(err, errcap, "chip id 0x%02x is a BMP280 (no humidity), not a BME280", id);
        else
            snprintf(err, errcap, "unexpected chip id 0x%02x (a BME280 has 0x60)", id);
        return -1;
    }
    if (bus.ops->write(bus.ctx, BME280_REG_RESET, BME280_RESET_WORD, err, errcap) < 0)
        return -1;
    /* After reset the chip copies its NVM; im_update is set until done (2 ms). */
    uint8_t status = BME280_STATUS_IM_UPDATE;
    for (int i = 0; i < 20 && (status & BME280_STATUS_IM_UPDATE); i++) {
        sleep_us(dev->poll_us);
        if (bus.ops->read(bus.ctx, BME280_REG_STATUS, &status, 1, err, errcap) < 0)
            return -1;
    }
    if (status & BME280_STATUS_IM_UPDATE) {
        snprintf(err, errcap, "chip still copying its calibration after reset");
        return -1;
    }
    uint8_t c88[26], ce1[7];
    if (bus.ops->read(bus.ctx, BME280_REG_CALIB00, c88, sizeof c88, err, errcap) < 0 ||
        bus.ops->read(bus.ctx, BME280_REG_CALIB26, ce1, sizeof ce1, err, errcap) < 0)
        return -1;
    tern_bme280_unpack_calib(c88, ce1, &dev->cal);
    if (dev->cal.T1 == 0 || dev->cal.P1 == 0) {
        snprintf(err, errcap, "calibration data is blank (T1=%u P1=%u)", dev->cal.T1,
                 dev->cal.P1);
        return -1;
    }
    /* Filter off, standby irrelevant in forced mode. */
    return bus.ops->write(bus.ctx, BME280_REG_CONFIG, 0x00, err, errcap);
}

int tern_bme280_measure(struct tern_bme280 *dev, struct tern_bme280_sample *out, char *err,
                        size_t errcap)
{
    const struct tern_regbus *bus = &dev->bus;
    /* ctrl_hum only takes effect after a write to ctrl_meas (datasheet 5.4.3). */
    uint8_t meas = (uint8_t)(dev->osrs << 5 | dev->osrs << 2 | BME280_MODE_FORCED);
    if (bus->ops->write(bus->ctx, BME280_REG_CTRL_HUM, dev->osrs, err, errcap) < 0 ||
        bus->ops->write(bus->ctx, BME280_REG_CTRL_MEAS, meas, err, errcap) < 0)
        return -1;
    uint8_t status = BME280_STATUS_MEASURING;
    int polls = 0;
    while (status & BME280_STATUS_MEASURING) {
        if (polls++ >= dev->max_polls) {
            snprintf(err, errcap, "measurement did not finish within %d ms",
                     dev->max_polls * dev->poll_us / 1000);
            return -1;
        }
        sleep_us(dev->poll_us);
        if (bus->ops->read(bus->ctx, BME280_REG_STATUS, &status, 1, err, errcap) < 0)
            return -1;
    }
    uint8_t d[8];
    if (bus->ops->read(bus->ctx, BME280_REG_DATA, d, sizeof d, err, errcap) < 0)
        return -1;
    int32_t adc_p = (int32_t)((uint32_t)d[0] << 12 | (uint32_t)d[1] << 4 | d[2] >> 4);
    int32_t adc_t = (int32_t)((uint32_t)d[3] << 12 | (uint32_t)d[4] << 4 | d[5] >> 4);
    int32_t adc_h = (int32_t)((uint32_t)d[6] << 8 | d[7]);
    if (adc_t == BME280_SKIPPED_20BIT || adc_p == BME280_SKIPPED_20BIT ||
        adc_h == BME280_SKIPPED_16BIT) {
        snprintf(err, errcap, "measurement skipped (data registers hold the reset value)");
        return -1;
    }
    int32_t t_fine;
    int32_t t = tern_bme280_comp_temp(&dev->cal, adc_t, &t_fine);
    uint32_t p = tern_bme280_comp_press(&dev->cal, adc_p, t_fine);
    uint32_t h = tern_bme280_comp_hum(&dev->cal, adc_h, t_fine);
    double tc = t / 100.0, pa = p / 256.0, rh = h / 1024.0;
    /* Outside the operating range (datasheet 1: -40..85 Cel, 300..1100 hPa)
     * the data is corrupt (an all-0xFF bus reads as 0xFFFFF), not weather. */
    if (tc < -40 || tc > 85 || pa < 30000 || pa > 110000) {
        snprintf(err, errcap, "implausible result %.2f Cel %.0f Pa (raw %05x %05x): bus data corrupt?",
                 tc, pa, (unsigned)adc_t, (unsigned)adc_p);
        return -1;
    }
    out->temperature_c = tc;
    out->pressure_pa = pa;
    out->humidity_pct = rh;
    return 0;
}

/* --- the `bme280` driver on /dev/i2c-N ------------------------------------ */

static const struct tern_driver_option bme280_options[] = {
    {"device", "path", "/dev/i2c-1", "I2C bus device node"},
    {"address", "hex", "0x76", "7-bit I2C address, hex or decimal (0x76 or 0x77)"},
    {"oversampling", "int", "1", "oversampling for all three measurements: 1, 2, 4, 8 or 16"},
    {NULL, NULL, NULL, NULL},
};

struct bme280_state {
    struct tern_regbus bus;
    struct tern_bme280 chip;
};

static int bme280_open(const struct tern_kv_list *l, void **state, char *err, size_t errcap)
{
    const struct tern_driver_option *o = bme280_options;
    long addr, os;
    if (tern_kv_check(l, o, err, errcap) < 0 ||
        tern_kv_long(l, o, "address", 0x03, 0x77, &addr, err, errcap) < 0 ||
        tern_kv_long(l, o, "oversampling", 1, 16, &os, err, errcap) < 0)
        return -1;
    uint8_t code = os == 1 ? 1 : os == 2 ? 2 : os == 4 ? 3 : os == 8 ? 4 : os == 16 ? 5 : 0;
    if (!code) {
        snprintf(err, errcap, "line %d: option 'oversampling': must be 1, 2, 4, 8 or 16, got '%ld'",
                 tern_kv_line(l, "oversampling"), os);
        return -1;
    }
    struct bme280_state *s = tern_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (tern_regbus_i2c_open(&s->bus, tern_kv_str(l, o, "device"), (unsigned)addr, err,
                             errcap) < 0) {
        tern_free(s);
        return -1;
    }
    if (tern_bme280_init(&s->chip, s->bus, code, err, errcap) < 0) {
        s->bus.ops->close(s->bus.ctx);
        tern_free(s);
        return -1;
    }
    *state = s;
    return 0;
}

/* Shared with tests: fills metrics from a sample. */
static int fill(const struct tern_bme280_sample *x, struct tern_metric *out, size_t max,
                size_t *n, char *err, size_t errcap)
{
    if (max < 3) {
        snprintf(err, errcap, "no room for 3 metrics");
        return TERN_READ_ERROR;
    }
    snprintf(out[0].name, sizeof out[0].name, "temperature");
    snprintf(out[0].unit, sizeof out[0].unit, "Cel");
    out[0].value = x->temperature_c;
    snprintf(out[1].name, sizeof out[1].name, "humidity");
    snprintf(out[1].unit, sizeof out[1].unit, "%%");
    out[1].value = x->humidity_pct;
    snprintf(out[2].name, sizeof out[2].name, "pressure");
    snprintf(out[2].unit, sizeof out[2].unit, "Pa");
    out[2].value = x->pressure_pa;
    *n = 3;
    return TERN_READ_OK;
}

static int bme280_read(void *state, struct tern_metric *out, size_t max, size_t *n, char *err,
                       size_t errcap)
{
    struct bme280_state *s = state;
    struct tern_bme280_sample x;
    *n = 0;
    if (tern_bme280_measure(&s->chip, &x, err, errcap) < 0)
        return TERN_READ_ERROR;
    return fill(&x, out, max, n, err, errcap);
}

static void bme280_close(void *state)
{
    struct bme280_state *s = state;
    s->bus.ops->close(s->bus.ctx);
    tern_free(s);
}

static void bme280_describe(void *state, char *buf, size_t cap)
{
    struct bme280_state *s = state;
    char where[128] = "?";
    if (s->bus.ops->describe)
        s->bus.ops->describe(s->bus.ctx, where, sizeof where);
    snprintf(buf, cap, "BME280 on %s (chip id 0x60)", where);
}

const struct tern_driver tern_driver_bme280 = {
    .name = "bme280",
    .summary = "Bosch BME280 temperature, humidity, pressure on I2C (/dev/i2c-N)",
    .options = bme280_options,
    .open = bme280_open,
    .read = bme280_read,
    .close = bme280_close,
    .describe = bme280_describe,
};
