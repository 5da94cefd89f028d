/* sim_bme280.c - a BME280 register model behind struct tern_regbus. It holds
 * the datasheet's example trimming values, converts set conditions to the raw
 * ADC words a real part with that trimming would produce (by inverting the
 * datasheet compensation), and follows the forced-mode state machine:
 * a ctrl_meas write with mode 01 starts a conversion, status bit 3 is set for
 * a few polls, then the data registers hold the result and the chip sleeps. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bme280.h"
#include "rng.h"
#include "simdev.h"

struct tern_sim_bme280 {
    uint8_t reg[256];
    struct tern_bme280_calib cal;
    struct tern_rng rng;
    double t_c, p_pa, h_pct;
    enum tern_sim_bme280_fault fault;
    double rate;
    int measuring_polls; /* status reads left with the measuring bit set */
    int im_update_polls;
    unsigned long transfers;
};

/* Datasheet example trimming: T and P from the BMP280 datasheet's worked
 * example (3.12: adc_T 519888 -> 25.08 Cel, adc_P 415148 -> 100653.27 Pa),
 * H from a typical production BME280. */
static const struct tern_bme280_calib example = {
    .T1 = 27504, .T2 = 26435, .T3 = -1000,
    .P1 = 36477, .P2 = -10685, .P3 = 3024, .P4 = 2855, .P5 = 140, .P6 = -7,
    .P7 = 15500, .P8 = -14600, .P9 = 6000,
    .H1 = 75, .H2 = 362, .H3 = 0, .H4 = 313, .H5 = 50, .H6 = 30,
};

void tern_sim_bme280_calib_bytes(uint8_t c[26], uint8_t h[7])
{
    const struct tern_bme280_calib *k = &example;
    const uint16_t w[12] = {k->T1, (uint16_t)k->T2, (uint16_t)k->T3, k->P1,
                            (uint16_t)k->P2, (uint16_t)k->P3, (uint16_t)k->P4, (uint16_t)k->P5,
                            (uint16_t)k->P6, (uint16_t)k->P7, (uint16_t)k->P8, (uint16_t)k->P9};
    for (int i = 0; i < 12; i++) {
        c[2 * i] = (uint8_t)(w[i] & 0xff);
        c[2 * i + 1] = (uint8_t)(w[i] >> 8);
    }
    c[24] = 0;
    c[25] = k->H1;
    h[0] = (uint8_t)((uint16_t)k->H2 & 0xff);
    h[1] = (uint8_t)((uint16_t)k->H2 >> 8);
    h[2] = k->H3;
    h[3] = (uint8_t)((k->H4 >> 4) & 0xff);
    h[4] = (uint8_t)((k->H4 & 0x0f) | ((k->H5 & 0x0f) << 4));
    h[5] = (uint8_t)((k->H5 >> 4) & 0xff);
    h[6] = (uint8_t)k->H6;
}

static void power_on(struct tern_sim_bme280 *m)
{
    memset(m->reg, 0, sizeof m->reg);
    m->reg[BME280_REG_CHIP_ID] = BME280_CHIP_ID;
    tern_sim_bme280_calib_bytes(&m->reg[BME280_REG_CALIB00], &m->reg[BME280_REG_CALIB26]);
    /* Data registers after reset: 0x80000 / 0x8000, "no measurement". */
    m->reg[0xF7] = 0x80;
    m->reg[0xFA] = 0x80;
    m->reg[0xFD] = 0x80;
    m->measuring_polls = 0;
    m->im_update_polls = 1;
}

struct tern_sim_bme280 *tern_sim_bme280_new(uint64_t seed)
{
    struct tern_sim_bme280 *m = tern_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cal = example;
    tern_rng_seed(&m->rng, seed);
    m->t_c = 21.0;
    m->p_pa = 101325.0;
    m->h_pct = 45.0;
    power_on(m);
    return m;
}

void tern_sim_bme280_free(struct tern_sim_bme280 *m) { tern_free(m); }

void tern_sim_bme280_set(struct tern_sim_bme280 *m, double t_c, double p_pa, double h_pct)
{
    m->t_c = t_c;
    m->p_pa = p_pa;
    m->h_pct = h_pct;
}

void tern_sim_bme280_fault(struct tern_sim_bme280 *m, enum tern_sim_bme280_fault f, double rate)
{
    m->fault = f;
    m->rate = rate;
    m->reg[BME280_REG_CHIP_ID] = f == SIMBME_WRONG_ID ? 0x58 : BME280_CHIP_ID;
}

unsigned long tern_sim_bme280_transfers(const struct tern_sim_bme280 *m) { return m->transfers; }

/* Smallest raw value in [lo, hi] whose compensated result reaches target,
 * for a result that rises with raw (sign = 1) or falls (sign = -1). */
static int32_t invert(int32_t lo, int32_t hi, double target, int sign,
                      double (*f)(const struct tern_sim_bme280 *, int32_t, int32_t),
                      const struct tern_sim_bme280 *m, int32_t t_fine)
{
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        double v = f(m, mid, t_fine) * sign;
        if (v < target * sign)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* The neighbour below may be nearer the target. */
    if (lo > 0 && fabs(f(m, lo - 1, t_fine) - target) < fabs(f(m, lo, t_fine) - target))
        return lo - 1;
    return lo;
}

static double f_temp(const struct tern_sim_bme280 *m, int32_t raw, int32_t unused)
{
    (void)unused;
    int32_t tf;
    return tern_bme280_comp_temp(&m->cal, raw, &tf) / 100.0;
}

static double f_press(const struct tern_sim_bme280 *m, int32_t raw, int32_t t_fine)
{
    return tern_bme280_comp_press(&m->cal, raw, t_fine) / 256.0;
}

static double f_hum(const struct tern_sim_bme280 *m, int32_t raw, int32_t t_fine)
{
    return tern_bme280_comp_hum(&m->cal, raw, t_fine) / 1024.0;
}

/* Runs one conversion: the raw words for the current conditions. */
static void convert(struct tern_sim_bme280 *m)
{
    if (m->fault == SIMBME_STUCK)
        return;
    uint8_t meas = m->reg[BME280_REG_CTRL_MEAS];
    int osrs_t = meas >> 5, osrs_p = (meas >> 2) & 7, osrs_h = m->reg[BME280_REG_CTRL_HUM] & 7;
    int32_t adc_t = invert(0, (1 << 20) - 1, m->t_c, 1, f_temp, m, 0);
    int32_t t_fine;
    tern_bme280_comp_temp(&m->cal, adc_t, &t_fine);
    int32_t adc_p = invert(0, (1 << 20) - 1, m->p_pa, -1, f_press, m, t_fine);
    int32_t adc_h = invert(0, 65535, m->h_pct, 1, f_hum, m, t_fine);
    if (!osrs_t)
        adc_t = BME280_SKIPPED_20BIT;
    if (!osrs_p)
        adc_p = BME280_SKIPPED_20BIT;
    if (!osrs_h)
        adc_h = BME280_SKIPPED_16BIT;
    uint8_t *d = &m->reg[BME280_REG_DATA];
    d[0] = (uint8_t)(adc_p >> 12);
    d[1] = (uint8_t)(adc_p >> 4);
    d[2] = (uint8_t)((adc_p & 0xf) << 4);
    d[3] = (uint8_t)(adc_t >> 12);
    d[4] = (uint8_t)(adc_t >> 4);
    d[5] = (uint8_t)((adc_t & 0xf) << 4);
    d[6] = (uint8_t)(adc_h >> 8);
    d[7] = (uint8_t)adc_h;
}

static int bus_fails(struct tern_sim_bme280 *m, char *err, size_t errcap, const char *what,
                     uint8_t reg)
{
    m->transfers++;
    if (m->fault == SIMBME_BUS_ERROR ||
        (m->fault == SIMBME_FLAKY && tern_rng_chance(&m->rng, m->rate))) {
        snprintf(err, errcap, "sim i2c: %s reg 0x%02x: no acknowledge (Remote I/O error)", what,
                 reg);
        return 1;
    }
    return 0;
}

static int model_read(void *ctx, uint8_t reg, uint8_t *buf, size_t n, char *err, size_t errcap)
{
    struct tern_sim_bme280 *m = ctx;
    if (bus_fails(m, err, errcap, "read", reg))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned r = (unsigned)reg + (unsigned)i;
        if (m->fault == SIMBME_DISCONNECT) {
            buf[i] = 0xff;
            continue;
        }
        if (r > 0xff) {
            buf[i] = 0;
            continue;
        }
        if (r == BME280_REG_STATUS) {
            uint8_t st = 0;
            if (m->measuring_polls > 0 || m->fault == SIMBME_SLOW)
                st |= BME280_STATUS_MEASURING;
            if (m->im_update_polls > 0)
                st |= BME280_STATUS_IM_UPDATE;
            if (m->measuring_polls > 0 && --m->measuring_polls == 0)
                convert(m);
            if (m->im_update_polls > 0)
                m->im_update_polls--;
            buf[i] = st;
        } else if (r >= BME280_REG_DATA && m->fault == SIMBME_GARBAGE) {
            buf[i] = (uint8_t)tern_rng_u64(&m->rng);
        } else {
            buf[i] = m->reg[r];
        }
    }
    return 0;
}

static int model_write(void *ctx, uint8_t reg, uint8_t value, char *err, size_t errcap)
{
    struct tern_sim_bme280 *m = ctx;
    if (bus_fails(m, err, errcap, "write", reg))
        return -1;
    if (m->fault == SIMBME_DISCONNECT)
        return 0; /* nobody there; the write simply goes nowhere */
    switch (reg) {
    case BME280_REG_RESET:
        if (value == BME280_RESET_WORD) {
            enum tern_sim_bme280_fault f = m->fault;
            power_on(m);
            tern_sim_bme280_fault(m, f, m->rate);
        }
        break;
    case BME280_REG_CTRL_HUM:
    case BME280_REG_CONFIG:
        m->reg[reg] = value;
        break;
    case BME280_REG_CTRL_MEAS:
        m->reg[reg] = value;
        if ((value & 3) == BME280_MODE_FORCED || (value & 3) == 2) {
            /* About 10 ms at x1: the driver polls in 1 ms steps. */
            m->measuring_polls = 3;
            m->reg[reg] = value & (uint8_t)~3; /* back to sleep when done */
        }
        break;
    default:
        break; /* read-only registers ignore writes, as on the part */
    }
    return 0;
}

static void model_close(void *ctx) { (void)ctx; }

static void model_describe(void *ctx, char *buf, size_t cap)
{
    (void)ctx;
    snprintf(buf, cap, "simulated BME280 (tern_simdev)");
}

static const struct tern_regbus_ops model_ops = {
    .read = model_read,
    .write = model_write,
    .close = model_close,
    .describe = model_describe,
};

struct tern_regbus tern_sim_bme280_bus(struct tern_sim_bme280 *m)
{
    struct tern_regbus b = {&model_ops, m};
    return b;
}
