/* bme280.h - Bosch BME280 chip logic (temperature, pressure, humidity) over a
 * struct tern_regbus: chip id check, calibration read-out, forced-mode
 * measurement and the datasheet's integer compensation (BME280 datasheet
 * rev 1.6, section 4.2.3 and 8.2). Register map and formulas are public so
 * the simulator models the same part and tests can check the arithmetic. */
#ifndef TERN_DRIVERS_BME280_H
#define TERN_DRIVERS_BME280_H

#include <stdint.h>
#include "regbus.h"

#define BME280_REG_CALIB00 0x88 /* 0x88..0xA1: T1..P9, H1 at 0xA1 */
#define BME280_REG_CHIP_ID 0xD0
#define BME280_REG_RESET 0xE0
#define BME280_REG_CALIB26 0xE1 /* 0xE1..0xE7: H2..H6 */
#define BME280_REG_CTRL_HUM 0xF2
#define BME280_REG_STATUS 0xF3
#define BME280_REG_CTRL_MEAS 0xF4
#define BME280_REG_CONFIG 0xF5
#define BME280_REG_DATA 0xF7 /* 0xF7..0xFE: press[3] temp[3] hum[2] */
#define BME280_CHIP_ID 0x60
#define BME280_RESET_WORD 0xB6
#define BME280_STATUS_MEASURING 0x08
#define BME280_STATUS_IM_UPDATE 0x01
#define BME280_MODE_FORCED 0x01
#define BME280_SKIPPED_20BIT 0x80000 /* data value of a disabled measurement */
#define BME280_SKIPPED_16BIT 0x8000

struct tern_bme280_calib {
    uint16_t T1;
    int16_t T2, T3;
    uint16_t P1;
    int16_t P2, P3, P4, P5, P6, P7, P8, P9;
    uint8_t H1;
    int16_t H2;
    uint8_t H3;
    int16_t H4, H5;
    int8_t H6;
};

/* Unpacks the two calibration blocks (26 bytes from 0x88, 7 from 0xE1). */
void tern_bme280_unpack_calib(const uint8_t c88[26], const uint8_t ce1[7],
                              struct tern_bme280_calib *cal);
/* The datasheet's integer compensation. t_fine carries temperature into the
 * other two. Temperature in 0.01 Cel, pressure in Pa * 256 (Q24.8; 0 when
 * the calibration would divide by zero), humidity in %RH * 1024 (Q22.10). */
int32_t tern_bme280_comp_temp(const struct tern_bme280_calib *cal, int32_t adc_t,
                              int32_t *t_fine);
uint32_t tern_bme280_comp_press(const struct tern_bme280_calib *cal, int32_t adc_p,
                                int32_t t_fine);
uint32_t tern_bme280_comp_hum(const struct tern_bme280_calib *cal, int32_t adc_h,
                              int32_t t_fine);

struct tern_bme280_sample {
    double temperature_c;
    double pressure_pa;
    double humidity_pct;
};

struct tern_bme280 {
    struct tern_regbus bus; /* borrowed, not closed by tern_bme280 */
    struct tern_bme280_calib cal;
    uint8_t osrs;           /* oversampling code 1..5 (x1..x16) for all three */
    int max_polls;          /* status polls before a measurement times out */
    int poll_us;            /* pause between status polls */
};

/* Checks the chip id, soft-resets, reads the calibration. 0, or -1 with err. */
int tern_bme280_init(struct tern_bme280 *dev, struct tern_regbus bus, uint8_t osrs,
                     char *err, size_t errcap);
/* One forced-mode measurement, compensated. 0, or -1 with err: a bus error,
 * a timeout, a skipped measurement or a result outside the chip's range is
 * an error, never a value. */
int tern_bme280_measure(struct tern_bme280 *dev, struct tern_bme280_sample *out, char *err,
                        size_t errcap);

#endif
