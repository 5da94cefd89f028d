/* modbus_map.h - the Modbus register map of a sensor: one option per metric,
 *   register.<metric> = <address> [holding|input] [int16|uint16|int32|uint32|float32]
 *                       [abcd|cdab|badc|dcba] [scale=<x>] [offset=<y>] [unit=<ucum>]
 * value = raw * scale + offset. <address> is the 0-based register address of
 * the protocol, or a 5-digit Modicon reference (30001-39999 = input register
 * 0-9998, 40001-49999 = holding register 0-9998). Defaults: holding (input for
 * a 3xxxx reference), uint16, abcd (big-endian words, high word first),
 * scale=1, offset=0, no unit. Kept apart from libmodbus so it is always built,
 * tested and fuzzed. */
#ifndef TERN_DRIVERS_MODBUS_MAP_H
#define TERN_DRIVERS_MODBUS_MAP_H

#include <stdint.h>
#include "driver.h"

enum tern_modbus_fn { TERN_MB_HOLDING, TERN_MB_INPUT };
enum tern_modbus_type { TERN_MB_INT16, TERN_MB_UINT16, TERN_MB_INT32, TERN_MB_UINT32,
                        TERN_MB_FLOAT32 };

struct tern_modbus_reg {
    char metric[TERN_ID_MAX];
    char unit[TERN_UNIT_MAX];
    uint16_t address;
    enum tern_modbus_fn fn;
    enum tern_modbus_type type;
    char order[5]; /* "abcd": a = most significant byte of the value */
    double scale, offset;
};

/* Parses spec into *r (metric is set by the caller). 0, or -1 with err. */
int tern_modbus_parse_reg(const char *spec, struct tern_modbus_reg *r, char *err,
                          size_t errcap);
/* Registers needed: 1 or 2. */
int tern_modbus_reg_count(const struct tern_modbus_reg *r);
/* Decodes regs[0..count) to the scaled value. 0, or -1 when the result is
 * not a finite number (a NaN float is an error, not a value). */
int tern_modbus_decode(const struct tern_modbus_reg *r, const uint16_t *regs, double *out);
/* Inverse, for the simulator: raw words for value (before scaling). */
void tern_modbus_encode(const struct tern_modbus_reg *r, double raw, uint16_t *regs);

#endif
