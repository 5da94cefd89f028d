/* sim_sysfs.c - fake sysfs trees for the thermal, hwmon, iio and ds18b20
 * drivers, laid out as the kernel does (see simdev.h for what is in them). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "parse.h"
#include "rng.h"
#include "simdev.h"

struct tern_simfs {
    char root[512];
    struct tern_rng rng;
    enum tern_simfs_fault fault[SIMFS_CLASSES];
    struct tern_simfs_truth truth;
    int have_truth;
};

static const char *const fault_names[] = {"ok", "stuck", "garbage", "missing", "empty",
                                          "fault_flag", "crc", "power_on", NULL};
static const char *const class_names[] = {"thermal", "hwmon", "iio", "w1", NULL};

int tern_simfs_fault_parse(const char *name)
{
    for (int i = 0; fault_names[i]; i++)
        if (strcmp(name, fault_names[i]) == 0)
            return i;
    return -1;
}

int tern_simfs_class_parse(const char *name)
{
    for (int i = 0; class_names[i]; i++)
        if (strcmp(name, class_names[i]) == 0)
            return i;
    return -1;
}

static int mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Writes text to root/rel atomically (temp file + rename). */
static int put(struct tern_simfs *fs, const char *rel, const char *text)
{
    char path[1024], tmp[1100];
    snprintf(path, sizeof path, "%s/%s", fs->root, rel);
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    close(fd);
    if (w != (ssize_t)len || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int putf(struct tern_simfs *fs, const char *rel, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int putf(struct tern_simfs *fs, const char *rel, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return put(fs, rel, text);
}

/* A value file under a fault: the number, or what the fault makes of it. */
static int put_value(struct tern_simfs *fs, enum tern_simfs_class cls, const char *rel,
                     long long v)
{
    char path[1024];
    switch (fs->fault[cls]) {
    case SIMFS_GARBAGE:
        return put(fs, rel, "\x03garbage\xff\n");
    case SIMFS_EMPTY:
        return put(fs, rel, "");
    case SIMFS_MISSING:
        snprintf(path, sizeof path, "%s/%s", fs->root, rel);
        unlink(path);
        return 0;
    default:
        return putf(fs, rel, "%lld\n", v);
    }
}

/* The kernel's w1_slave text for a temperature (or a fault). */
static void w1_text(double c, enum tern_simfs_fault f, char *out, size_t cap)
{
    uint8_t b[9];
    int16_t raw = (int16_t)lround(c * 16.0);
    if (f == SIMFS_W1_POWER_ON)
        raw = 0x0550; /* 85 Cel, what the scratchpad holds before a conversion */
    b[0] = (uint8_t)(raw & 0xff);
    b[1] = (uint8_t)((uint16_t)raw >> 8);
    b[2] = 0x4b; /* TH, TL, config (12-bit), reserved: a real part's defaults */
    b[3] = 0x46;
    b[4] = 0x7f;
    b[5] = 0xff;
    b[6] = 0x0c;
    b[7] = 0x10;
    b[8] = tern_w1_crc8(b, 8);
    int ok = 1;
    if (f == SIMFS_W1_CRC) {
        b[3] ^= 0x20; /* a flipped bit on the wire */
        ok = 0;
    }
    char hex[40];
    size_t o = 0;
    for (int i = 0; i < 9; i++)
        o += (size_t)snprintf(hex + o, sizeof hex - o, "%02x ", b[i]);
    snprintf(out, cap, "%s: crc=%02x %s\n%st=%ld\n", hex, b[8], ok ? "YES" : "NO", hex,
             (long)raw * 1000 / 16);
}

static const char *const dirs[] = {
    "class/thermal/thermal_zone0", "class/thermal/thermal_zone1", "class/hwmon/hwmon0",
    "class/hwmon/hwmon1",          "bus/iio/devices/iio:device0", "bus/iio/devices/iio:device1",
    "bus/w1/devices/w1_bus_master1", ("bus/w1/devices/" TERN_SIMFS_W1_ID), /* one path, not two */
};

struct tern_simfs *tern_simfs_create(const char *root, uint64_t seed, char *err, size_t errcap)
{
    struct tern_simfs *fs = tern_calloc(1, sizeof *fs);
    if (!fs) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (strlen(root) >= sizeof fs->root - 64) {
        snprintf(err, errcap, "%.200s: path too long", root);
        goto fail;
    }
    snprintf(fs->root, sizeof fs->root, "%s", root);
    tern_rng_seed(&fs->rng, seed);
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        if (mkdirs(path) < 0) {
            snprintf(err, errcap, "%s: %s", path, strerror(errno));
            goto fail;
        }
    }
    /* Static attributes. */
    if (put(fs, "class/thermal/thermal_zone0/type", "x86_pkg_temp\n") < 0 ||
        put(fs, "class/thermal/thermal_zone1/type", "acpitz\n") < 0 ||
        put(fs, "class/hwmon/hwmon0/name", "coretemp\n") < 0 ||
        put(fs, "class/hwmon/hwmon0/temp1_label", "Package id 0\n") < 0 ||
        put(fs, "class/hwmon/hwmon0/temp2_label", "Core 0\n") < 0 ||
        put(fs, "class/hwmon/hwmon1/name", "tern_board\n") < 0 ||
        put(fs, "class/hwmon/hwmon1/in0_label", "12V\n") < 0 ||
        put(fs, "bus/iio/devices/iio:device0/name", "bme280\n") < 0 ||
        put(fs, "bus/iio/devices/iio:device1/name", "ads1015\n") < 0 ||
        /* ADC: 3 mV per count; temperature (raw + offset) * 62.5 milli-Cel. */
        put(fs, "bus/iio/devices/iio:device1/in_voltage_scale", "3.000000\n") < 0 ||
        put(fs, "bus/iio/devices/iio:device1/in_temp_scale", "62.500000\n") < 0 ||
        put(fs, "bus/iio/devices/iio:device1/in_temp_offset", "-400\n") < 0 ||
        put(fs, "bus/w1/devices/w1_bus_master1/w1_master_slave_count", "1\n") < 0) {
        snprintf(err, errcap, "%s: cannot write: %s", root, strerror(errno));
        goto fail;
    }
    if (tern_simfs_update(fs, 0, err, errcap) < 0)
        goto fail;
    return fs;
fail:
    tern_free(fs);
    return NULL;
}

static double wave(double t, double period, double phase)
{
    return sin(6.283185307179586 * (t / period + phase));
}

int tern_simfs_update(struct tern_simfs *fs, double t, char *err, size_t errcap)
{
    struct tern_simfs_truth n;
    double g = tern_rng_gauss(&fs->rng);
    /* Quantise as the files do, so the truth is exactly what a driver can see. */
    n.cpu_c = round((45 + 10 * wave(t, 60, 0) + g) * 1000) / 1000;
    n.acpi_c = round((38 + 2 * wave(t, 600, 0.2)) * 1000) / 1000;
    n.pkg_c = n.cpu_c;
    n.core0_c = round((n.cpu_c - 2) * 1000) / 1000;
    n.rail_v = round((12.05 + 0.05 * wave(t, 30, 0)) * 1000) / 1000;
    n.curr_a = round((1.5 + 0.4 * wave(t, 45, 0.1)) * 1000) / 1000;
    n.power_w = round(n.rail_v * n.curr_a * 1e6) / 1e6;
    n.fan_rpm = round(1800 + 300 * wave(t, 90, 0.3));
    n.board_hum = round((40 + 5 * wave(t, 3600, 0)) * 1000) / 1000;
    n.board_pa = round(101325 + 200 * wave(t, 7200, 0));
    n.board_c = round((30 + 3 * wave(t, 300, 0.5)) * 1000) / 1000;
    n.env_c = round((21 + 3 * wave(t, 86400, -0.375) + 0.1 * g) * 1000) / 1000;
    n.env_hum = round((45 - 7.5 * wave(t, 86400, -0.375)) * 1000) / 1000;
    n.env_pa = round(101325 + 250 * wave(t, 86400 * 3.7, 0)); /* whole Pa, kPa file */
    long adc_counts = lround(1100 + 100 * wave(t, 20, 0));
    n.adc_v = (double)adc_counts * 3.0 / 1000;
    long temp_counts = lround(25 * 16 + 400 + 16 * wave(t, 120, 0)); /* (raw - 400) / 16 Cel */
    n.adc_c = (double)(temp_counts - 400) * 62.5 / 1000;
    /* 12-bit register in 1/16 Cel; the kernel prints raw * 1000 / 16 in integer
     * arithmetic, so 19.1875 shows as t=19187. */
    n.w1_c = (double)(lround((18 + 2 * wave(t, 1800, 0.1)) * 16) * 1000 / 16) / 1000;

    if (fs->have_truth) {
        /* A stuck class keeps presenting the previous values. */
        const struct tern_simfs_truth *o = &fs->truth;
        if (fs->fault[SIMFS_THERMAL] == SIMFS_STUCK) {
            n.cpu_c = o->cpu_c;
            n.acpi_c = o->acpi_c;
        }
        if (fs->fault[SIMFS_HWMON] == SIMFS_STUCK) {
            n.pkg_c = o->pkg_c, n.core0_c = o->core0_c, n.rail_v = o->rail_v;
            n.curr_a = o->curr_a, n.power_w = o->power_w, n.fan_rpm = o->fan_rpm;
            n.board_hum = o->board_hum, n.board_pa = o->board_pa, n.board_c = o->board_c;
        }
        if (fs->fault[SIMFS_IIO] == SIMFS_STUCK) {
            n.env_c = o->env_c, n.env_hum = o->env_hum, n.env_pa = o->env_pa;
            n.adc_v = o->adc_v, n.adc_c = o->adc_c;
            adc_counts = lround(o->adc_v * 1000 / 3.0);
            temp_counts = lround(o->adc_c * 1000 / 62.5) + 400;
        }
        if (fs->fault[SIMFS_W1] == SIMFS_STUCK)
            n.w1_c = o->w1_c;
    }
    fs->truth = n;
    fs->have_truth = 1;

    int rc = 0;
    rc |= put_value(fs, SIMFS_THERMAL, "class/thermal/thermal_zone0/temp", llround(n.cpu_c * 1000));
    rc |= put_value(fs, SIMFS_THERMAL, "class/thermal/thermal_zone1/temp", llround(n.acpi_c * 1000));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon0/temp1_input", llround(n.pkg_c * 1000));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon0/temp2_input", llround(n.core0_c * 1000));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon1/in0_input", llround(n.rail_v * 1000));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon1/curr1_input", llround(n.curr_a * 1000));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon1/power1_input", llround(n.power_w * 1e6));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon1/fan1_input", llround(n.fan_rpm));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon1/humidity1_input",
                    llround(n.board_hum * 1000));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon1/pressure1_input", llround(n.board_pa));
    rc |= put_value(fs, SIMFS_HWMON, "class/hwmon/hwmon1/temp1_input", llround(n.board_c * 1000));
    rc |= putf(fs, "class/hwmon/hwmon1/temp1_fault", "%d\n",
               fs->fault[SIMFS_HWMON] == SIMFS_FAULT_FLAG);
    rc |= put_value(fs, SIMFS_IIO, "bus/iio/devices/iio:device0/in_temp_input",
                    llround(n.env_c * 1000));
    rc |= put_value(fs, SIMFS_IIO, "bus/iio/devices/iio:device0/in_humidityrelative_input",
                    llround(n.env_hum * 1000));
    /* The kernel's bme280 reports kPa with decimals. */
    if (fs->fault[SIMFS_IIO] == SIMFS_OK || fs->fault[SIMFS_IIO] == SIMFS_STUCK)
        rc |= putf(fs, "bus/iio/devices/iio:device0/in_pressure_input", "%.3f\n", n.env_pa / 1000);
    else
        rc |= put_value(fs, SIMFS_IIO, "bus/iio/devices/iio:device0/in_pressure_input", 0);
    rc |= put_value(fs, SIMFS_IIO, "bus/iio/devices/iio:device1/in_voltage0_raw", adc_counts);
    rc |= put_value(fs, SIMFS_IIO, "bus/iio/devices/iio:device1/in_temp_raw", temp_counts);

    char w1[160];
    enum tern_simfs_fault wf = fs->fault[SIMFS_W1];
    w1_text(n.w1_c, wf, w1, sizeof w1);
    const char *w1rel = "bus/w1/devices/" TERN_SIMFS_W1_ID "/w1_slave";
    if (wf == SIMFS_GARBAGE)
        rc |= put(fs, w1rel, "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 4\x01 t=\n");
    else if (wf == SIMFS_EMPTY)
        rc |= put(fs, w1rel, "");
    else if (wf == SIMFS_MISSING) {
        /* Unplugged: the kernel removes the whole device directory. */
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", fs->root, w1rel);
        unlink(path);
        snprintf(path, sizeof path, "%s/bus/w1/devices/" TERN_SIMFS_W1_ID, fs->root);
        rmdir(path);
    } else {
        char path[1024];
        snprintf(path, sizeof path, "%s/bus/w1/devices/" TERN_SIMFS_W1_ID, fs->root);
        mkdirs(path);
        rc |= put(fs, w1rel, w1);
    }
    if (rc) {
        snprintf(err, errcap, "%s: cannot update: %s", fs->root, strerror(errno));
        return -1;
    }
    return 0;
}

void tern_simfs_set_fault(struct tern_simfs *fs, enum tern_simfs_class cls,
                          enum tern_simfs_fault fault)
{
    if ((int)cls >= 0 && cls < SIMFS_CLASSES)
        fs->fault[cls] = fault;
}

const struct tern_simfs_truth *tern_simfs_truth(const struct tern_simfs *fs) { return &fs->truth; }
const char *tern_simfs_root(const struct tern_simfs *fs) { return fs->root; }

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tern_simfs_free(struct tern_simfs *fs, int remove_tree)
{
    if (!fs)
        return;
    if (remove_tree)
        nftw(fs->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    tern_free(fs);
}
