/* bme280_i2c.c - struct tern_regbus on a Linux /dev/i2c-N adapter: a register
 * read is one I2C_RDWR transaction (write the register address, repeated
 * start, read n bytes) so no other master can slip in between. */
#include <errno.h>
#include <fcntl.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "alloc.h"
#include "regbus.h"

struct i2c_ctx {
    int fd;
    unsigned addr;
    char device[256];
};

static int i2c_read(void *ctx, uint8_t reg, uint8_t *buf, size_t n, char *err, size_t errcap)
{
    struct i2c_ctx *c = ctx;
    struct i2c_msg msgs[2] = {
        {.addr = (uint16_t)c->addr, .flags = 0, .len = 1, .buf = &reg},
        {.addr = (uint16_t)c->addr, .flags = I2C_M_RD, .len = (uint16_t)n, .buf = buf},
    };
    struct i2c_rdwr_ioctl_data xfer = {.msgs = msgs, .nmsgs = 2};
    if (ioctl(c->fd, I2C_RDWR, &xfer) < 0) {
        snprintf(err, errcap, "%s addr 0x%02x: read reg 0x%02x: %s", c->device, c->addr, reg,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int i2c_write(void *ctx, uint8_t reg, uint8_t value, char *err, size_t errcap)
{
    struct i2c_ctx *c = ctx;
    uint8_t b[2] = {reg, value};
    struct i2c_msg msg = {.addr = (uint16_t)c->addr, .flags = 0, .len = 2, .buf = b};
    struct i2c_rdwr_ioctl_data xfer = {.msgs = &msg, .nmsgs = 1};
    if (ioctl(c->fd, I2C_RDWR, &xfer) < 0) {
        snprintf(err, errcap, "%s addr 0x%02x: write reg 0x%02x: %s", c->device, c->addr, reg,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static void i2c_close(void *ctx)
{
    struct i2c_ctx *c = ctx;
    close(c->fd);
    tern_free(c);
}

static void i2c_describe(void *ctx, char *buf, size_t cap)
{
    struct i2c_ctx *c = ctx;
    snprintf(buf, cap, "%s addr 0x%02x", c->device, c->addr);
}

static const struct tern_regbus_ops i2c_ops = {
    .read = i2c_read,
    .write = i2c_write,
    .close = i2c_close,
    .describe = i2c_describe,
};

int tern_regbus_i2c_open(struct tern_regbus *bus, const char *device, unsigned addr,
                         char *err, size_t errcap)
{
    struct i2c_ctx *c = tern_calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    c->fd = open(device, O_RDWR | O_CLOEXEC);
    if (c->fd < 0) {
        snprintf(err, errcap, "%s: %s", device, strerror(errno));
        tern_free(c);
        return -1;
    }
    /* I2C_SLAVE also makes plain read()/write() work for tools sharing the
     * fd; it fails with EBUSY when a kernel driver owns the address. */
    if (ioctl(c->fd, I2C_SLAVE, (unsigned long)addr) < 0) {
        snprintf(err, errcap, "%s addr 0x%02x: %s%s", device, addr, strerror(errno),
                 errno == EBUSY ? " (a kernel driver owns this address; use the iio driver)"
                                : "");
        close(c->fd);
        tern_free(c);
        return -1;
    }
    c->addr = addr;
    snprintf(c->device, sizeof c->device, "%s", device);
    bus->ops = &i2c_ops;
    bus->ctx = c;
    return 0;
}
