#!/usr/bin/env bash
# relay_kafka.sh - tern-relay throughput: Kafka -> ClickHouse against a direct
# HTTP insert baseline of the same rows. Prints key=value lines:
#   relay_rows_per_s               1M readings from a pre-filled topic into ClickHouse
#   clickhouse_baseline_rows_per_s the same rows as JSONEachRow, inserted directly
#                                  over HTTP in 100k-row batches (no Kafka, no relay)
#   relay_vs_baseline              ratio (goal >= 0.7)
# The relay's time runs from its partition assignment to the last row being
# visible in ClickHouse (startup and group join are reported apart); the
# topic is read once with kcat first, so the broker is warm.
#
# Starts its own stack on a private port block (TERN_BENCH_PORT_BASE, default
# 29300) unless TERN_BENCH_USE_STACK=1 says to use the one in TERN_PORT_BASE.
# Env: TERN_BENCH_ROWS (default 1000000), TERN_BENCH_COMPRESSION (relay's
# clickhouse.compression, default none: loopback, see docs/relay.md).
# Usage: bench/relay_kafka.sh [build-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-${TERN_BINARY_DIR:-$repo/build}}"
relay="$build/relay/tern-relay"
[ -x "$relay" ] || { echo "relay_kafka: $relay not built" >&2; exit 2; }
rows="${TERN_BENCH_ROWS:-1000000}"
compression="${TERN_BENCH_COMPRESSION:-none}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tern-bench-relay.XXXXXX")"
started=0
relay_pid=""
if [ "${TERN_BENCH_USE_STACK:-0}" != 1 ]; then
  export TERN_PORT_BASE="${TERN_BENCH_PORT_BASE:-29300}"
  export TERN_STACK_DIR="$work/stack"
fi
cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null || true
  if [ "$started" = 1 ]; then "$repo/compose/local/stack" down >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [ "${TERN_BENCH_USE_STACK:-0}" != 1 ]; then
  "$repo/compose/local/stack" up kafka clickhouse >&2
  started=1
fi
eval "$("$repo/compose/local/stack" env)"
ch() { curl -sS --fail-with-body "$TERN_CLICKHOUSE_URL/" --data-binary "$1"; }
now() { date +%s.%N; }

tag="bench_$$"
cat > "$work/relay.ini" <<INI
[kafka]
brokers = $TERN_KAFKA_BOOTSTRAP
topic = $tag
group = $tag
partitions = 6
[clickhouse]
url = $TERN_CLICKHOUSE_URL
database = $tag
compression = $compression
[relay]
metrics_listen =
INI
"$relay" --config "$work/relay.ini" init >&2

echo "relay_kafka: generating $rows readings" >&2
python3 - "$rows" > "$work/lines.jsonl" <<'PY'
import sys, random, time
n = int(sys.argv[1]); rnd = random.Random(1)
devs = 50; epochs = ["%016x" % rnd.getrandbits(64) for _ in range(devs)]
base = (int(time.time()) // 60 - 60) * 60000
out = sys.stdout
metrics = ("temperature", "humidity", "pressure")
for i in range(n):
    d = i % devs; ts = base + i * 3
    t = time.gmtime(ts // 1000)
    out.write('{"v":1,"device_id":"dev-%03d","sensor":"env","metric":"%s","value":%.2f,"unit":"Cel",'
              '"ts":"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ","epoch":"%s","seq":%d,"tags":{"site":"bench"},"flags":0}\n'
              % (d, metrics[i % 3], 20 + (i % 1000) / 100, t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min,
                 t.tm_sec, ts % 1000, epochs[d], i // devs + 1))
PY
echo "relay_kafka: producing to Kafka" >&2
kcat -P -b "$TERN_KAFKA_BOOTSTRAP" -t "$tag" -X linger.ms=50 -X batch.num.messages=10000 -l "$work/lines.jsonl"

# Baseline: the same rows, encoded as the relay encodes them, straight into
# an identical table over HTTP in 100k-row inserts.
mode="$(ch "SELECT if(position(type, 'DateTime64') > 0, 'modern', 'old') FROM system.columns WHERE database = '$tag' AND table = 'readings' AND name = 'ts'")"
"$relay" --mode "$mode" encode < "$work/lines.jsonl" > "$work/rows.jsonl"
ch "CREATE TABLE $tag.baseline AS $tag.readings" >/dev/null
split -l 100000 "$work/rows.jsonl" "$work/part."
t0="$(now)"
for f in "$work"/part.*; do
  curl -sS --fail-with-body "$TERN_CLICKHOUSE_URL/?query=INSERT%20INTO%20$tag.baseline%20FORMAT%20JSONEachRow" \
    --data-binary @"$f" >/dev/null
done
t1="$(now)"
got="$(ch "SELECT count() FROM $tag.baseline")"
[ "$got" = "$rows" ] || { echo "relay_kafka: baseline inserted $got rows, want $rows" >&2; exit 1; }
baseline="$(python3 -c "print(round($rows / ($t1 - $t0)))")"
# Settle the baseline's background merges now, or they would run during
# (and be charged to) the relay's timing.
ch "OPTIMIZE TABLE $tag.baseline FINAL" >/dev/null
ch "DROP TABLE $tag.baseline" >/dev/null

# Warm the broker's fetch path (JIT, page cache) so a freshly started stack
# does not charge its warm-up to the relay.
kcat -C -b "$TERN_KAFKA_BOOTSTRAP" -t "$tag" -o beginning -e -q > /dev/null

echo "relay_kafka: running the relay" >&2
ts="$(now)"
"$relay" --config "$work/relay.ini" run 2> "$work/relay.log" &
relay_pid=$!
deadline=$(( $(date +%s) + 600 ))
until grep -q "assigned" "$work/relay.log"; do
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/relay.log" >&2; exit 1; }
  sleep 0.05
done
ta="$(now)"
while :; do
  got="$(ch "SELECT count() FROM $tag.readings")"
  [ "$got" -ge "$rows" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { echo "relay_kafka: only $got rows after 600 s" >&2; exit 1; }
  sleep 0.05
done
te="$(now)"
final="$(ch "SELECT count() FROM $tag.readings FINAL")"
[ "$final" = "$rows" ] || { echo "relay_kafka: readings FINAL has $final rows, want $rows" >&2; exit 1; }
relay_rate="$(python3 -c "print(round($rows / ($te - $ta)))")"
ch "DROP DATABASE $tag" >/dev/null
echo "rows=$rows"
echo "relay_compression=$compression"
echo "relay_startup_s=$(python3 -c "print(round($ta - $ts, 2))")"
echo "relay_rows_per_s=$relay_rate"
echo "clickhouse_baseline_rows_per_s=$baseline"
echo "relay_vs_baseline=$(python3 -c "print(round($relay_rate / $baseline, 3))")"
