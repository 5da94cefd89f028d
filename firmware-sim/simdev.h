/* simdev.h - simulated sensor hardware (library tern_simdev), used by
 * tern-sim and linked directly by the driver tests:
 *   - fake sysfs trees (thermal, hwmon, IIO, 1-Wire) whose values change;
 *   - a BME280 register model behind struct tern_regbus;
 *   - a Modbus TCP server (libmodbus) with a changing register map;
 *   - a microcontroller printing lines on a pseudo-terminal.
 * Each has fault injection, and each reports the "true" physical values it
 * last presented so tests can check what a driver read. */
#ifndef TERN_SIMDEV_H
#define TERN_SIMDEV_H

#include <stddef.h>
#include <stdint.h>
#include "regbus.h"

/* ---- sysfs trees --------------------------------------------------------- */

enum tern_simfs_fault {
    SIMFS_OK = 0,
    SIMFS_STUCK,      /* values stop changing */
    SIMFS_GARBAGE,    /* value files hold unparsable text */
    SIMFS_MISSING,    /* value files removed (device unplugged) */
    SIMFS_EMPTY,      /* value files empty (driver returned nothing) */
    SIMFS_FAULT_FLAG, /* hwmon temp*_fault reads 1 */
    SIMFS_W1_CRC,     /* w1_slave says "crc=.. NO" */
    SIMFS_W1_POWER_ON /* w1_slave holds the 85 Cel power-on scratchpad */
};
enum tern_simfs_class { SIMFS_THERMAL, SIMFS_HWMON, SIMFS_IIO, SIMFS_W1, SIMFS_CLASSES };

/* What the tree shows, in SI units (what a correct driver must report, up to
 * the integer resolution of the files). */
struct tern_simfs_truth {
    double cpu_c, acpi_c;                  /* thermal_zone0, thermal_zone1 */
    double pkg_c, core0_c;                 /* hwmon0 coretemp temp1, temp2 */
    double rail_v, curr_a, power_w, fan_rpm, board_hum, board_pa, board_c; /* hwmon1 */
    double env_c, env_hum, env_pa;         /* iio:device0 bme280 (processed) */
    double adc_v, adc_c;                   /* iio:device1 (raw + scale/offset) */
    double w1_c;                           /* 28-00000a1b2c3d */
};

#define TERN_SIMFS_W1_ID "28-00000a1b2c3d"

struct tern_simfs;
/* Creates the tree under root (created if missing) and writes values for
 * t = 0. Returns NULL with err on failure; the caller owns the result. */
struct tern_simfs *tern_simfs_create(const char *root, uint64_t seed, char *err,
                                     size_t errcap);
/* Writes the values for simulated time t_s (seconds). Each file is replaced
 * atomically (write + rename), as a sysfs read never sees half a value. */
int tern_simfs_update(struct tern_simfs *fs, double t_s, char *err, size_t errcap);
void tern_simfs_set_fault(struct tern_simfs *fs, enum tern_simfs_class cls,
                          enum tern_simfs_fault fault);
const struct tern_simfs_truth *tern_simfs_truth(const struct tern_simfs *fs);
const char *tern_simfs_root(const struct tern_simfs *fs);
/* Frees fs; remove != 0 also deletes the tree. */
void tern_simfs_free(struct tern_simfs *fs, int remove);
/* Parses "stuck", "garbage", ...; -1 when unknown. */
int tern_simfs_fault_parse(const char *name);
int tern_simfs_class_parse(const char *name);

/* ---- BME280 register model ----------------------------------------------- */

enum tern_sim_bme280_fault {
    SIMBME_OK = 0,
    SIMBME_BUS_ERROR,  /* every transfer fails (NACK) */
    SIMBME_FLAKY,      /* transfers fail at the configured rate */
    SIMBME_DISCONNECT, /* the bus reads all 0xFF (pull-ups, no chip) */
    SIMBME_STUCK,      /* data registers stop updating */
    SIMBME_SLOW,       /* the measuring bit never clears */
    SIMBME_GARBAGE,    /* data registers read random bytes */
    SIMBME_WRONG_ID    /* chip id 0x58 (a BMP280) */
};

struct tern_sim_bme280;
struct tern_sim_bme280 *tern_sim_bme280_new(uint64_t seed);
void tern_sim_bme280_free(struct tern_sim_bme280 *m);
/* Conditions the next measurement converts (Cel, Pa, %RH). */
void tern_sim_bme280_set(struct tern_sim_bme280 *m, double t_c, double p_pa, double h_pct);
void tern_sim_bme280_fault(struct tern_sim_bme280 *m, enum tern_sim_bme280_fault f,
                           double rate);
/* A bus onto the model; the model stays owned by the caller (close is a no-op). */
struct tern_regbus tern_sim_bme280_bus(struct tern_sim_bme280 *m);
/* Transfers seen so far (to check a driver did talk to the chip). */
unsigned long tern_sim_bme280_transfers(const struct tern_sim_bme280 *m);
/* The datasheet's example trimming (BMP280 datasheet 3.12 for T and P, a
 * typical part for H), as the 26 + 7 calibration bytes. */
void tern_sim_bme280_calib_bytes(uint8_t c88[26], uint8_t ce1[7]);

/* ---- Modbus TCP server --------------------------------------------------- */

enum tern_sim_modbus_fault {
    SIMMB_OK = 0,
    SIMMB_EXCEPTION,  /* replies "server device failure" */
    SIMMB_DISCONNECT, /* TCP: closes the connection on each request; RTU: no reply */
    SIMMB_SLOW,       /* replies after delay_ms */
    SIMMB_STUCK,      /* registers stop changing */
    SIMMB_GARBAGE,    /* replies with random bytes */
    SIMMB_NAN         /* the float32 temperature register holds NaN */
};

/* The register map (documented in tern-sim --help):
 *   holding 0-1  temperature  float32 abcd  Cel
 *   holding 2    humidity     uint16        0.1 %
 *   holding 3-4  energy       uint32 cdab   Wh, increasing
 *   holding 5    outdoor      int16         0.01 Cel (may be negative)
 *   input   0-1  pressure     uint32 dcba   Pa
 *   input   2    voltage      int16         mV */
struct tern_sim_modbus_truth {
    double temperature_c, humidity_pct, energy_wh, outdoor_c, pressure_pa, voltage_v;
};

struct tern_sim_modbus;
/* Listens on 127.0.0.1:port; when port is taken, tries the next ones up to
 * port + tries - 1. The bound port is in *bound. NULL with err on failure. */
struct tern_sim_modbus *tern_sim_modbus_start(int port, int tries, int *bound, uint64_t seed,
                                              char *err, size_t errcap);
/* The same device as Modbus RTU (9600 8N1, unit unit_id) at the far end of a
 * pseudo-terminal "cable": the driver opens the tty written to path. */
struct tern_sim_modbus *tern_sim_modbus_rtu_start(int unit_id, uint64_t seed, char *path,
                                                  size_t pathcap, char *err, size_t errcap);
void tern_sim_modbus_fault(struct tern_sim_modbus *s, enum tern_sim_modbus_fault f,
                           int delay_ms);
void tern_sim_modbus_truth(struct tern_sim_modbus *s, struct tern_sim_modbus_truth *out);
unsigned long tern_sim_modbus_requests(struct tern_sim_modbus *s);
/* Waits until the server is between requests (a slow reply is finished).
 * 0, or -1 after timeout_ms. */
int tern_sim_modbus_wait_idle(struct tern_sim_modbus *s, int timeout_ms);
void tern_sim_modbus_stop(struct tern_sim_modbus *s);

/* ---- MCU on a pseudo-terminal -------------------------------------------- */

enum tern_sim_serial_fault {
    SIMSER_OK = 0,
    SIMSER_GARBAGE,    /* random bytes and over-long lines between good lines */
    SIMSER_CORRUPT,    /* every line is cut short or mangled */
    SIMSER_SILENT,     /* stops sending (a hung MCU) */
    SIMSER_STUCK,      /* keeps sending the same values */
    SIMSER_DISCONNECT  /* closes the pty (USB unplugged) */
};
enum tern_sim_serial_format { SIMSER_KV, SIMSER_CSV };

struct tern_sim_serial_truth {
    double temperature_c, humidity_pct;
    unsigned long lines; /* good lines sent */
};

struct tern_sim_serial;
/* Creates the pty and starts sending a line every interval_ms ("T=21.40
 * H=40.2" or "21.40,40.2"). In polled mode (interval_ms == 0) a line is sent
 * for each "R\n" received. NULL with err on failure. */
struct tern_sim_serial *tern_sim_serial_start(enum tern_sim_serial_format fmt, int interval_ms,
                                              uint64_t seed, char *err, size_t errcap);
const char *tern_sim_serial_path(const struct tern_sim_serial *s); /* e.g. /dev/pts/7 */
void tern_sim_serial_fault(struct tern_sim_serial *s, enum tern_sim_serial_fault f);
void tern_sim_serial_truth(struct tern_sim_serial *s, struct tern_sim_serial_truth *out);
void tern_sim_serial_stop(struct tern_sim_serial *s);

#endif
