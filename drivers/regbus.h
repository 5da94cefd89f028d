/* regbus.h - a register-addressed bus (I2C or SPI style), so chip logic
 * (bme280.c) does not know whether it talks to /dev/i2c-N (bme280_i2c.c) or to
 * the simulator's register model (firmware-sim/sim_bme280.c). */
#ifndef TERN_DRIVERS_REGBUS_H
#define TERN_DRIVERS_REGBUS_H

#include <stddef.h>
#include <stdint.h>

struct tern_regbus_ops {
    /* Reads n consecutive registers starting at reg (auto-increment).
     * 0, or -1 with err filled (bus error, NACK, device gone). */
    int (*read)(void *ctx, uint8_t reg, uint8_t *buf, size_t n, char *err, size_t errcap);
    /* Writes one register. 0, or -1 with err filled. */
    int (*write)(void *ctx, uint8_t reg, uint8_t value, char *err, size_t errcap);
    /* Optional: releases ctx. */
    void (*close)(void *ctx);
    /* Optional: "/dev/i2c-1 addr 0x76". */
    void (*describe)(void *ctx, char *buf, size_t cap);
};

struct tern_regbus {
    const struct tern_regbus_ops *ops;
    void *ctx;
};

/* Opens /dev/i2c-N style device at a 7-bit address (bme280_i2c.c). On
 * success bus->ctx is owned by the caller until bus->ops->close. */
int tern_regbus_i2c_open(struct tern_regbus *bus, const char *device, unsigned addr,
                         char *err, size_t errcap);

#endif
