#!/usr/bin/env bash
# bench/agent_kafka.sh - tern-agent draining a pre-filled queue straight into
# Kafka through [uplink.kafka] (librdkafka, idempotent, acks=all), counting
# only readings whose delivery report came back (uplink.kafka.acked_seq).
#
# For comparison it also runs the uplink alone (tests/agent_kafka's harness:
# readings made in memory, no storage) on the same number of readings; the
# harness also warms up a freshly started broker before the drain.
#
# cpu_ms_per_1k_readings is the agent's CPU (user+sys, all its threads, start
# to last delivery report) per 1000 readings: steadier than the rate when
# other jobs share the machine.
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

# The stack's broker may have just been started: its JIT compiles the produce
# path during the first seconds of load, which a broker in service has long
# done. Warm it up with the uplink alone (not measured) so drain_s measures
# the agent, not the JVM's start.
if [ -x "$harness" ]; then
  say "warming up the broker (300000 readings, not measured)"
  "$stack" topic "${topic}_warmup" 1 >&2
  "$harness" -o brokers="$bootstrap" -o topic="${topic}_warmup" -o compression="$compression" \
    -n 300000 -b 1000 -q -t 120000 >/dev/null 2>&1 || say "warm-up failed (continuing)"
fi

say "draining to $bootstrap topic $topic"
# One watcher process samples the status socket and VmRSS every 20 ms. (A
# shell loop forked awk, tern-agent status, sed and date per sample: ~15 ms
# of CPU each time, a tenth of this two-core machine taken from the drain
# it measures.) It prints "end_ms rss_max_kib hwm_kib cpu_ticks" once
# acked_seq >= n; cpu_ticks is the agent's user+sys time so far (clock ticks),
# which a busy shared machine disturbs far less than the wall-clock rate.
watch() {
  python3 - "$1" "$2" "$3" <<'PY'
import socket, sys, time
pid, sock_path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
deadline = time.time() + 600
rss_max = 0

def proc_kib(key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def acked_seq():
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(sock_path)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
    except OSError:
        return 0
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("uplink.kafka.acked_seq="):
            return int(line.split("=", 1)[1])
    return 0

acked = 0
while True:
    rss_max = max(rss_max, proc_kib("VmRSS:"))
    acked = acked_seq()
    if acked >= n:
        break
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(") ")[-1].startswith("Z"):
                raise OSError
    except OSError:
        print("died %d" % acked)
        sys.exit(1)
    if time.time() > deadline:
        print("timeout %d" % acked)
        sys.exit(1)
    time.sleep(0.02)
def cpu_ticks():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().split(") ")[-1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime

print("%d %d %d %d" % (int(time.time() * 1000), rss_max, proc_kib("VmHWM:"), cpu_ticks()))
PY
}
"$agent" -c "$work/agent.ini" 2> "$work/agent.log" &
agent_pid=$!
start=$(now_ms)
if ! res=$(watch "$agent_pid" "$work/data/tern-agent.sock" "$n"); then
  say "agent stopped draining ($res):"; tail -20 "$work/agent.log" >&2; exit 1
fi
read -r end rss_max hwm cpu_ticks <<< "$res"
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
echo "cpu_ms_per_1k_readings=$(awk -v t="$cpu_ticks" -v hz="$(getconf CLK_TCK)" -v n="$n" \
  'BEGIN {printf "%.3f", t * 1000 / hz / (n / 1000)}')"
echo "rss_kib=$rss_max"
echo "rss_peak_kib=$hwm"
echo "messages_in_kafka=$in_kafka"
if [ -n "$uplink_ms" ] && [ "$uplink_ms" -gt 0 ]; then
  echo "uplink_only_readings_per_s=$(awk -v n="$n" -v ms="$uplink_ms" 'BEGIN {printf "%d", n * 1000 / ms}')"
fi
