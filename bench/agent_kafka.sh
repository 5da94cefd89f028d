#!/usr/bin/env bash
# bench/agent_kafka.sh - tern-agent draining a pre-filled queue straight into
# Kafka through [uplink.kafka] (librdkafka, idempotent, acks=all), counting
# only readings whose delivery report came back (uplink.kafka.acked_seq).
#
# For comparison it also runs the uplink alone (tests/agent_kafka's harness:
# readings made in memory, no storage) on the same number of readings.
#
# Usage: bench/agent_kafka.sh [READINGS]        (default 1000000)
# Env:   TERN_BENCH_BUILD_DIR (default build-bench; bench/run builds it),
#        TERN_PORT_BASE / TERN_STACK_DIR (the stack; Kafka is started when not
#        running and stopped again afterwards), TERN_BENCH_COMPRESSION (lz4).
# Prints key=value lines on stdout; progress on stderr.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${TERN_BENCH_BUILD_DIR:-$repo/build-bench}"
agent="$build/agent/tern-agent"
harness="$build/tests/agent_kafka/kafka_uplink_harness"
stack="$repo/compose/local/stack"
n="${1:-1000000}"
compression="${TERN_BENCH_COMPRESSION:-lz4}"
export TERN_PORT_BASE="${TERN_PORT_BASE:-28700}"
export TERN_STACK_DIR="${TERN_STACK_DIR:-$build/stack}"
bootstrap="127.0.0.1:$((TERN_PORT_BASE + 2))"

[ -x "$agent" ] || { echo "agent_kafka: $agent missing (bench/run agent-kafka builds it)" >&2; exit 2; }
say() { echo "agent_kafka: $*" >&2; }

work="$(mktemp -d)"
started_kafka=0
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ "$started_kafka" = 1 ] && "$stack" down kafka >&2 || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! "$stack" status kafka 2>/dev/null | grep -q running; then
  "$stack" up kafka >&2
  started_kafka=1
fi
topic="bench_agent_kafka_$$"
"$stack" topic "$topic" 1 >&2

cat > "$work/agent.ini" <<EOF
[agent]
device_id = bench-kafka
data_dir = $work/data
log_level = warn
[sensor.idle]
driver = sim
enabled = false
[uplink.kafka]
brokers = $bootstrap
topic = $topic
drain_rate = 0
compression = $compression
EOF

now_ms() { date +%s%3N; }

say "pre-filling $n readings"
t0=$(now_ms)
"$agent" -c "$work/agent.ini" --prefill "$n"
t1=$(now_ms)

say "draining to $bootstrap topic $topic"
"$agent" -c "$work/agent.ini" 2> "$work/agent.log" &
agent_pid=$!
start=$(now_ms)
acked=0
rss_max=0
deadline=$((start + 600000))
while :; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status" 2>/dev/null || echo 0)
  [ "${rss:-0}" -gt "$rss_max" ] && rss_max=$rss
  acked=$("$agent" status -c "$work/agent.ini" 2>/dev/null | sed -n 's/^uplink\.kafka\.acked_seq=//p')
  [ "${acked:-0}" -ge "$n" ] && break
  if ! kill -0 "$agent_pid" 2>/dev/null; then
    say "agent died:"; tail -20 "$work/agent.log" >&2; exit 1
  fi
  [ "$(now_ms)" -lt "$deadline" ] || { say "timeout at acked_seq=$acked"; exit 1; }
  sleep 0.05
done
end=$(now_ms)
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$agent_pid/status")
kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=""

uplink_ms=""
if [ -x "$harness" ]; then
  say "uplink alone: $n readings from memory"
  "$stack" topic "${topic}_uplink" 1 >&2
  uplink_ms=$("$harness" -o brokers="$bootstrap" -o topic="${topic}_uplink" \
    -o compression="$compression" -n "$n" -b 1000 -q -t 600000 2>/dev/null |
    sed -n 's/^elapsed_ms=//p')
fi

in_kafka=$(kcat -C -b "$bootstrap" -t "$topic" -o beginning -e -q -f '.\n' | wc -l)
drain_ms=$((end - start))
[ "$drain_ms" -gt 0 ] || drain_ms=1
echo "readings=$n"
echo "compression=$compression"
echo "prefill_s=$(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.2f", ms / 1000}')"
echo "drain_s=$(awk -v ms="$drain_ms" 'BEGIN {printf "%.2f", ms / 1000}')"
echo "drain_readings_per_s=$(awk -v n="$n" -v ms="$drain_ms" 'BEGIN {printf "%d", n * 1000 / ms}')"
echo "rss_kib=$rss_max"
echo "rss_peak_kib=$hwm"
echo "messages_in_kafka=$in_kafka"
if [ -n "$uplink_ms" ] && [ "$uplink_ms" -gt 0 ]; then
  echo "uplink_only_readings_per_s=$(awk -v n="$n" -v ms="$uplink_ms" 'BEGIN {printf "%d", n * 1000 / ms}')"
fi
