# relay_common.sh - sourced by relay_kafka.sh and relay_mqtt.sh: the parts of
# a relay benchmark that do not depend on the source (private stack, the
# generated readings, the direct-insert baseline), so both measure the same
# rows against the same baseline.
#
# relay_bench_setup NAME PORT_BASE SERVICE...
#   checks the relay binary, makes $work, starts SERVICE... on a private port
#   block (TERN_BENCH_PORT_BASE, default PORT_BASE) unless
#   TERN_BENCH_USE_STACK=1, and stops them on exit. Sets: bench, build,
#   relay, rows, compression, format, work, relay_pid; defines ch and now.
#   The relay's config sets clickhouse.insert_format = $format.
relay_bench_setup() {
  bench="$1"
  local port_base="$2"
  shift 2
  build="${RELAY_BENCH_BUILD:-${TERN_BINARY_DIR:-$repo/build}}"
  relay="$build/relay/tern-relay"
  [ -x "$relay" ] || { echo "$bench: $relay not built" >&2; exit 2; }
  rows="${TERN_BENCH_ROWS:-1000000}"
  compression="${TERN_BENCH_COMPRESSION:-none}"
  format="${TERN_BENCH_FORMAT:-rowbinary}"
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
  [ -n "${poller:-}" ] && kill "$poller" 2>/dev/null || true
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null || true
  if [ "$relay_bench_started" = 1 ]; then "$repo/compose/local/stack" down >/dev/null 2>&1 || true; fi
  [ -n "${TERN_BENCH_KEEP:-}" ] && cp "$work/relay.log" "$TERN_BENCH_KEEP" 2>/dev/null
  rm -rf "$work"
}

ch() { curl -sS --fail-with-body "$TERN_CLICKHOUSE_URL/" --data-binary "$1"; }
# insert_sql TABLE MODE FORMAT: the relay's INSERT (relay/schema_sql.h).
insert_sql() {
  local table="$1" mode="$2" fmt="$3"
  if [ "$fmt" = jsoneachrow ]; then
    echo "INSERT INTO $table FORMAT JSONEachRow"
  elif [ "$mode" = modern ]; then
    echo "INSERT INTO $table (device_id, sensor, metric, unit, value, ts, epoch, seq, tags, flags, inserted_at) FORMAT RowBinary"
  else
    echo "INSERT INTO $table (device_id, sensor, metric, unit, value, ts, ts_ms, epoch, seq, tags, flags, inserted_at) FORMAT RowBinary"
  fi
}
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

# relay_bench_encode DATABASE FORMAT: the rows of $work/lines.jsonl encoded
# as the relay encodes them (`tern-relay encode`) for DATABASE's readings
# table, in FORMAT (jsoneachrow or rowbinary), as 100k-row bodies in
# $work/body-FORMAT/. Done once; every baseline round sends the same bodies.
relay_bench_encode() {
  local db="$1" fmt="$2" f
  baseline_mode="$(ch "SELECT if(position(type, 'DateTime64') > 0, 'modern', 'old') FROM system.columns WHERE database = '$db' AND table = 'readings' AND name = 'ts'")"
  [ -d "$work/body-$fmt" ] && return 0
  mkdir -p "$work/body-$fmt"
  printf '[clickhouse]\ninsert_format = %s\n' "$fmt" > "$work/encode.ini"
  split -l 100000 "$work/lines.jsonl" "$work/in."
  for f in "$work"/in.*; do
    "$relay" --config "$work/encode.ini" --mode "$baseline_mode" encode < "$f" > "$work/body-$fmt/${f##*.}"
    rm -f "$f"
  done
}

# relay_bench_baseline DATABASE FORMAT: the direct insert. The bodies of
# relay_bench_encode go straight into a table like DATABASE.readings over
# HTTP on one keep-alive connection, read into memory first (no process
# start-up or disk read inside the timing). Sets baseline_rate (rows/s). The
# table's background merges are settled and the table dropped afterwards, so
# they are not charged to the relay's timing.
relay_bench_baseline() {
  local db="$1" fmt="$2" t got
  relay_bench_encode "$db" "$fmt"
  ch "CREATE TABLE $db.baseline AS $db.readings" >/dev/null
  t="$(python3 - "$TERN_CLICKHOUSE_URL" "$(insert_sql "$db.baseline" "$baseline_mode" "$fmt")" "$work/body-$fmt"/* <<'PY'
import http.client, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); q = "/?query=" + urllib.parse.quote(sys.argv[2])
bodies = [open(p, "rb").read() for p in sys.argv[3:]]
c = http.client.HTTPConnection(u.hostname, u.port)
t0 = time.monotonic()
for b in bodies:
    c.request("POST", q, body=b)
    r = c.getresponse(); text = r.read()
    if r.status != 200:
        sys.exit("baseline insert: HTTP %d: %s" % (r.status, text[:300]))
print("%.6f" % (time.monotonic() - t0))
PY
)"
  got="$(ch "SELECT count() FROM $db.baseline")"
  [ "$got" = "$rows" ] || { echo "$bench: baseline inserted $got rows, want $rows" >&2; exit 1; }
  baseline_rate="$(python3 -c "print(round($rows / $t))")"
  ch "OPTIMIZE TABLE $db.baseline FINAL" >/dev/null
  ch "DROP TABLE $db.baseline" >/dev/null
}

# relay_bench_baselines DATABASE: the direct-insert baseline in the format
# the relay sends (baseline: ClickHouse's own best for these rows, what the
# relay is judged against) and, when that is not JSONEachRow, the same rows as
# JSONEachRow too (baseline_json: the text format a hand-written loader would
# send, for reference).
relay_bench_baselines() {
  relay_bench_baseline "$1" "$format"
  baseline="$baseline_rate"
  baseline_json="$baseline"
  if [ "$format" != jsoneachrow ]; then
    relay_bench_baseline "$1" jsoneachrow
    baseline_json="$baseline_rate"
  fi
}

# median V...: the middle value (the mean of the two middle ones).
median() { python3 -c "import statistics, sys; print(statistics.median(float(a) for a in sys.argv[1:]))" "$@"; }

# relay_bench_report_baselines RELAY_RATE [RATIO]: the baseline key=value
# lines; relay_vs_baseline is RATIO when given (a median of rounds), else
# RELAY_RATE / baseline.
relay_bench_report_baselines() {
  echo "clickhouse_baseline_rows_per_s=$baseline"
  echo "clickhouse_baseline_format=$format"
  echo "relay_vs_baseline=${2:-$(python3 -c "print(round($1 / $baseline, 3))")}"
  if [ "$format" != jsoneachrow ]; then
    echo "clickhouse_baseline_jsoneachrow_rows_per_s=$baseline_json"
    echo "relay_vs_jsoneachrow_baseline=$(python3 -c "print(round($1 / $baseline_json, 3))")"
  fi
}

# relay_bench_wait_rows DB.TABLE PIDFILE: waits (600 s at most, and while the
# process whose pid PIDFILE holds lives, once it exists) until the table's
# active parts hold $rows rows, asking every 20 ms over one keep-alive
# connection (a curl process per poll cost the machine more CPU than the
# relay's own decoding); prints the wall-clock time it first saw them. The
# question is system.parts, metadata only: 18.16 has no trivial count(), and
# a count() read a column of every part each time, on the server the relay
# inserts into. A part is active once its insert is committed. Start it
# before the relay, in the background, so that its start-up is not inside
# the timing.
relay_bench_wait_rows() {
  python3 - "$TERN_CLICKHOUSE_URL" \
    "SELECT sum(rows) FROM system.parts WHERE database = '${1%%.*}' AND table = '${1#*.}' AND active" \
    "$rows" "$2" <<'PY'
import http.client, os, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); sql = sys.argv[2].encode(); want = int(sys.argv[3]); pidfile = sys.argv[4]
c = http.client.HTTPConnection(u.hostname, u.port)
deadline = time.monotonic() + 600
got = 0
while True:
    try:
        c.request("POST", "/", body=sql); r = c.getresponse(); body = r.read()
        if r.status == 200:
            got = int(body)
    except (OSError, http.client.HTTPException, ValueError):
        c.close(); c = http.client.HTTPConnection(u.hostname, u.port)
    if got >= want:
        print("%.6f" % time.time())
        break
    try:
        with open(pidfile) as f:
            os.kill(int(f.read()), 0)
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        sys.exit("the relay exited with %d of %d rows in" % (got, want))
    if time.monotonic() > deadline:
        sys.exit("only %d of %d rows after 600 s" % (got, want))
    time.sleep(0.02)
PY
}

# relay_bench_start TABLE CONFIG READY: starts the row poller on TABLE (see
# relay_bench_wait_rows; its time goes to $work/te) and then the relay with
# CONFIG (log in $work/relay.log), and waits until the log shows READY (a
# grep pattern). Sets poller, relay_pid and relay_t0 (when the relay was
# started); exits if the relay dies first.
relay_bench_start() {
  rm -f "$work/relay.pid"
  relay_bench_wait_rows "$1" "$work/relay.pid" > "$work/te" &
  poller=$!
  relay_t0="$(now)"
  "$relay" --config "$2" run 2> "$work/relay.log" &
  relay_pid=$!
  echo "$relay_pid" > "$work/relay.pid"
  local deadline=$(( $(date +%s) + 600 ))
  until grep -q "$3" "$work/relay.log"; do
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/relay.log" >&2; exit 1; }
    kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.log" >&2; exit 1; }
    sleep 0.05
  done
}
