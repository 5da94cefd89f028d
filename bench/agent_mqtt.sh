#!/usr/bin/env bash
# agent_mqtt.sh - tern-agent's MQTT benchmarks, printed as key=value:
#   drain_readings_per_s    a pre-filled queue of 1M readings drained to the real
#                           mosquitto with QoS 1 (acked on PUBACK); goal >= 300000
#   rss_kib                 VmRSS of the agent running 50 sim sensors at 10 Hz for
#                           30 s (goal <= 4096); rss_anon_kib is its private part
#                           (shared library pages excluded), rss_file_kib the
#                           mapped library and binary pages, steady_threads the
#                           agent's threads (sensors run on a small pool)
#   cpu_ms_per_1k_readings  CPU (user+sys) of that run per 1000 readings
#
# Uses the mosquitto of the stack at TERN_PORT_BASE/TERN_STACK_DIR when it is
# running; starts it there when those are set but it is not (and stops it
# after); with no TERN_PORT_BASE, starts its own on a free private port block.
# Env: TERN_BENCH_BUILD_DIR or TERN_BINARY_DIR (build dir holding
#      agent/tern-agent, default <repo>/build), BENCH_READINGS (1000000),
#      BENCH_SECONDS (30), BENCH_SENSORS (50).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="${TERN_BENCH_BUILD_DIR:-${TERN_BINARY_DIR:-$repo/build}}/agent/tern-agent"
[ -x "$bin" ] || { echo "agent_mqtt.sh: $bin not built" >&2; exit 1; }
readings="${BENCH_READINGS:-1000000}"
seconds="${BENCH_SECONDS:-30}"
sensors="${BENCH_SENSORS:-50}"
stack="$repo/compose/local/stack"
work="$(mktemp -d /tmp/tern-bench-agent.XXXXXX)"
own_stack=0
agent_pid=""

cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  if [ "$own_stack" = 1 ]; then "$stack" down mosquitto >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${TERN_PORT_BASE:-}" ]; then
  # A free block in a range the other tools' defaults do not use.
  for _ in $(seq 1 50); do
    base=$((31000 + (RANDOM % 800) * 10))
    ss -ltnH "( sport >= :$((base + 1)) and sport <= :$((base + 6)) )" 2>/dev/null | grep -q . || break
  done
  export TERN_PORT_BASE=$base
  export TERN_STACK_DIR="$work/stack"
fi
if ! "$stack" status mosquitto >/dev/null 2>&1; then
  own_stack=1
  "$stack" up mosquitto >/dev/null 2>&1 || { echo "agent_mqtt.sh: cannot start mosquitto" >&2; exit 1; }
fi
eval "$("$stack" env)"

status() { { "$bin" status --data-dir "$1" 2>/dev/null || true; } | sed -n "s/^$2=//p"; }
now() { date +%s.%N; }

# --- 1. drain a pre-filled backlog ------------------------------------------
cat > "$work/drain.ini" <<INI
[agent]
device_id = bench-drain
data_dir = $work/drain
log_level = warn
[storage]
max_bytes = 4GiB
[uplink.mqtt]
host = $TERN_MQTT_HOST
port = $TERN_MQTT_PORT
qos = 1
drain_rate = 0
INI
"$bin" --config "$work/drain.ini" --prefill "$readings"
t0="$(now)"
"$bin" --config "$work/drain.ini" & agent_pid=$!
deadline=$(( $(date +%s) + 600 ))
while :; do
  acked="$(status "$work/drain" uplink.mqtt.acked_seq)"
  [ "${acked:-0}" -ge "$readings" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { echo "agent_mqtt.sh: drain timed out at ${acked:-0}" >&2; exit 1; }
  sleep 0.02
done
t1="$(now)"
kill "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
echo "drain_readings=$readings"
awk -v a="$t0" -v b="$t1" -v n="$readings" \
  'BEGIN { printf "drain_seconds=%.3f\ndrain_readings_per_s=%.0f\n", b - a, n / (b - a) }'

# --- 2. steady state: N sim sensors at 10 Hz ---------------------------------
{
  printf '[agent]\ndevice_id = bench-rss\ndata_dir = %s/rss\nlog_level = warn\n' "$work"
  printf '[uplink.mqtt]\nhost = %s\nport = %s\n' "$TERN_MQTT_HOST" "$TERN_MQTT_PORT"
  for i in $(seq 1 "$sensors"); do
    printf '[sensor.s%d]\ndriver = sim\nkind = counter\ninterval = 100ms\n' "$i"
  done
} > "$work/rss.ini"
"$bin" --config "$work/rss.ini" & agent_pid=$!
sleep 2 # warm-up: connection made, every sensor opened
tick="$(getconf CLK_TCK)"
cpu() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
c0="$(cpu)"; s0="$(status "$work/rss" last_seq)"
sleep "$seconds"
c1="$(cpu)"; s1="$(status "$work/rss" last_seq)"
rss="$(awk '/^VmRSS:/{print $2}' "/proc/$agent_pid/status")"
hwm="$(awk '/^VmHWM:/{print $2}' "/proc/$agent_pid/status")"
anon="$(awk '/^RssAnon:/{print $2}' "/proc/$agent_pid/status")"
file="$(awk '/^RssFile:/{print $2}' "/proc/$agent_pid/status")"
threads="$(awk '/^Threads:/{print $2}' "/proc/$agent_pid/status")"
sent_behind=$(( s1 - $(status "$work/rss" uplink.mqtt.acked_seq) ))
kill "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
n=$(( s1 - s0 ))
echo "steady_sensors=$sensors"
echo "steady_readings=$n"
echo "steady_unacked_at_end=$sent_behind"
echo "rss_kib=$rss"
echo "rss_peak_kib=$hwm"
echo "rss_anon_kib=$anon"
echo "rss_file_kib=$file"
echo "steady_threads=$threads"
awk -v c="$((c1 - c0))" -v t="$tick" -v n="$n" \
  'BEGIN { printf "cpu_ms_per_1k_readings=%.2f\n", (n > 0 ? c * 1000 / t / (n / 1000) : 0) }'
