#!/usr/bin/env bash
# test_cli.sh - tern-sim's command line: help, usage errors, sysfs and fleet
# trees, fault injection, the BME280 self-check, and the modbus/serial
# servers starting and stopping on --duration.
# Usage: test_cli.sh TERN_SIM [WITH_MODBUS (1|0, default 1)]
set -euo pipefail
SIM=$1
WITH_MODBUS=${2:-1}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tern-sim-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Help: man-page sections, exit 0; bad usage: exit 2 with a hint.
out=$("$SIM" --help)
for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS FAULTS EXAMPLES "EXIT STATUS"; do
  grep -q "^$section" <<<"$out" || fail "--help lacks $section"
done
set +e
"$SIM" frobnicate 2>"$TMP/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "unknown command exit $rc, want 2"
grep -q "unknown command: frobnicate" "$TMP/err" || fail "no message for unknown command"
set +e
"$SIM" sysfs --root "$TMP/x" --fault w1=bogus --once 2>"$TMP/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "bad --fault exit $rc, want 2"

# One tree, with a fault.
"$SIM" sysfs --root "$TMP/one" --once --fault w1=crc --seed 5
[ "$(cat "$TMP/one/class/thermal/thermal_zone0/type")" = x86_pkg_temp ] || fail "thermal type"
grep -Eq '^-?[0-9]+$' "$TMP/one/class/hwmon/hwmon1/in0_input" || fail "hwmon in0 not a number"
grep -q 'crc=.. NO' "$TMP/one/bus/w1/devices/28-00000a1b2c3d/w1_slave" || fail "w1 crc fault not applied"
"$SIM" sysfs --root "$TMP/one" --once
grep -q 'crc=.. YES' "$TMP/one/bus/w1/devices/28-00000a1b2c3d/w1_slave" || fail "w1 did not recover"

# Fleet: N trees and one config section per simulated sensor.
"$SIM" fleet --devices 25 --root "$TMP/fleet" --once --config "$TMP/fleet.ini" \
  --fault thermal=garbage --faulty 5
[ "$(ls -d "$TMP"/fleet/dev* | wc -l)" -eq 25 ] || fail "fleet tree count"
[ "$(grep -c '^\[sensor\.' "$TMP/fleet.ini")" -eq 100 ] || fail "fleet config sections"
grep -q garbage "$TMP/fleet/dev0005/class/thermal/thermal_zone0/temp" || fail "faulty device 5"
grep -Eq '^[0-9]+$' "$TMP/fleet/dev0006/class/thermal/thermal_zone0/temp" || fail "healthy device 6"

# Running mode: values change between updates; stops on --duration.
"$SIM" sysfs --root "$TMP/run" --interval 100ms --duration 450ms
[ -s "$TMP/run/class/thermal/thermal_zone0/temp" ] || fail "running sysfs wrote nothing"

# BME280 self-check through the chip logic.
out=$("$SIM" bme280 --temperature 21.5 --pressure 98765 --humidity 33)
grep -q "measured: 21.50 Cel  9876[45]\.[0-9]* Pa  33.0[0-9] %RH" <<<"$out" || fail "bme280: $out"
set +e
out=$("$SIM" bme280 --fault slow); rc=$?
set -e
[ $rc -eq 1 ] && grep -q "did not finish" <<<"$out" || fail "bme280 slow fault: $out"

# Servers come up, say where, and exit at --duration.
if [ "$WITH_MODBUS" = 1 ]; then
  out=$("$SIM" modbus --port 29430 --duration 200ms)
  grep -Eq '^modbus tcp 127\.0\.0\.1:294[3-5][0-9]$' <<<"$out" || fail "modbus: $out"
  out=$("$SIM" modbus --rtu --unit 3 --duration 200ms)
  grep -Eq '^modbus rtu /dev/pts/[0-9]+ 9600 8N1 unit 3$' <<<"$out" || fail "modbus rtu: $out"
else
  set +e
  "$SIM" modbus --duration 1ms 2>"$TMP/err"; rc=$?
  set -e
  [ $rc -eq 1 ] && grep -q "built without Modbus" "$TMP/err" || fail "modbus without libmodbus"
fi
out=$("$SIM" serial --interval 50ms --duration 200ms --link "$TMP/tty")
grep -q '^serial /dev/pts/' <<<"$out" || fail "serial: $out"
[ ! -e "$TMP/tty" ] || fail "serial left its symlink behind"
echo "tern-sim CLI: ok"
