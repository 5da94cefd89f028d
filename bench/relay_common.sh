# relay_common.sh - sourced by relay_kafka.sh and relay_mqtt.sh: the parts of
# a relay benchmark that do not depend on the source (private stack, the
# generated readings, the direct-insert baseline), so both measure the same
# rows against the same baseline.
#
# relay_bench_setup NAME PORT_BASE SERVICE...
#   checks the relay binary, makes $work, starts SERVICE... on a private port
#   block (TERN_BENCH_PORT_BASE, default PORT_BASE) unless
#   TERN_BENCH_USE_STACK=1, and stops them on exit. Sets: bench, build,
#   relay, rows, compression, work, relay_pid; defines ch and now.
relay_bench_setup() {
  bench="$1"
  local port_base="$2"
  shift 2
  build="${RELAY_BENCH_BUILD:-${TERN_BINARY_DIR:-$repo/build}}"
  relay="$build/relay/tern-relay"
  [ -x "$relay" ] || { echo "$bench: $relay not built" >&2; exit 2; }
  rows="${TERN_BENCH_ROWS:-1000000}"
  compression="${TERN_BENCH_COMPRESSION:-none}"
  work="$(mktemp -d "${TMPDIR:-/tmp}/tern-bench-$bench.XXXXXX")"
  relay_bench_started=0
  relay_pid=""
  if [ "${TERN_BENCH_USE_STACK:-0}" != 1 ]; then
    export TERN_PORT_BASE="${TERN_BENCH_PORT_BASE:-$port_base}"
    export TERN_STACK_DIR="$work/stack"
  fi
  trap relay_bench_cleanup EXIT
  if [ "${TERN_BENCH_USE_STACK:-0}" != 1 ]; then
    "$repo/compose/local/stack" up "$@" >&2
    relay_bench_started=1
  fi
  eval "$("$repo/compose/local/stack" env)"
}

relay_bench_cleanup() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null || true
  if [ "$relay_bench_started" = 1 ]; then "$repo/compose/local/stack" down >/dev/null 2>&1 || true; fi
  [ -n "${TERN_BENCH_KEEP:-}" ] && cp "$work/relay.log" "$TERN_BENCH_KEEP" 2>/dev/null
  rm -rf "$work"
}

ch() { curl -sS --fail-with-body "$TERN_CLICKHOUSE_URL/" --data-binary "$1"; }
now() { date +%s.%N; }

# relay_bench_lines: $rows wire lines from 50 devices into $work/lines.jsonl
# (deterministic, timestamps in the last hour).
relay_bench_lines() {
  echo "$bench: generating $rows readings" >&2
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
}

# relay_bench_baseline DATABASE: the same rows, encoded as the relay encodes
# them, straight into an identical table over HTTP in 100k-row inserts. Sets
# baseline (rows/s). The table's background merges are settled and the table
# dropped afterwards, so they are not charged to the relay's timing.
relay_bench_baseline() {
  local db="$1" mode f t0 t1 got
  mode="$(ch "SELECT if(position(type, 'DateTime64') > 0, 'modern', 'old') FROM system.columns WHERE database = '$db' AND table = 'readings' AND name = 'ts'")"
  "$relay" --mode "$mode" encode < "$work/lines.jsonl" > "$work/rows.jsonl"
  ch "CREATE TABLE $db.baseline AS $db.readings" >/dev/null
  split -l 100000 "$work/rows.jsonl" "$work/part."
  t0="$(now)"
  for f in "$work"/part.*; do
    curl -sS --fail-with-body "$TERN_CLICKHOUSE_URL/?query=INSERT%20INTO%20$db.baseline%20FORMAT%20JSONEachRow" \
      --data-binary @"$f" >/dev/null
  done
  t1="$(now)"
  got="$(ch "SELECT count() FROM $db.baseline")"
  [ "$got" = "$rows" ] || { echo "$bench: baseline inserted $got rows, want $rows" >&2; exit 1; }
  baseline="$(python3 -c "print(round($rows / ($t1 - $t0)))")"
  ch "OPTIMIZE TABLE $db.baseline FINAL" >/dev/null
  ch "DROP TABLE $db.baseline" >/dev/null
}
