#!/usr/bin/env bash
# relay_mqtt.sh - tern-relay throughput: MQTT -> ClickHouse (with end-to-end
# receipts published) against a direct HTTP insert baseline of the same rows.
# Prints key=value lines:
#   relay_rows_per_s               readings published to mosquitto in batches
#                                  (1000 wire lines per QoS 1 message, 50 devices)
#                                  until the last row is visible in ClickHouse
#   publish_rows_per_s             how fast the publisher pushed them (an upper
#                                  bound the relay cannot beat)
#   clickhouse_baseline_rows_per_s the same rows, encoded as the relay encodes them and
#                                  in the same format (clickhouse_baseline_format:
#                                  RowBinary by default), inserted directly over HTTP
#                                  in 100k-row batches on one keep-alive connection
#                                  (no broker, no relay): ClickHouse's own best
#   relay_vs_baseline              ratio (goal >= 0.5)
#   clickhouse_baseline_jsoneachrow_rows_per_s, relay_vs_jsoneachrow_baseline
#                                  the same with the baseline as JSONEachRow text
#                                  (for reference; only when the relay sends another
#                                  format)
#   relay_cpu_s                    CPU seconds the relay process used in total
#   receipts                       receipts the relay published
#
# Starts its own stack on a private port block (TERN_BENCH_PORT_BASE, default
# 29850) unless TERN_BENCH_USE_STACK=1 says to use the one in TERN_PORT_BASE.
# Env: TERN_BENCH_ROWS (default 1000000), TERN_BENCH_BATCH (lines per MQTT
# message, default 1000), TERN_BENCH_COMPRESSION (relay's
# clickhouse.compression, default none: loopback), TERN_BENCH_FORMAT
# (the relay's clickhouse.insert_format, default rowbinary).
# Usage: bench/relay_mqtt.sh [build-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
RELAY_BENCH_BUILD="${1:-}"
batch="${TERN_BENCH_BATCH:-1000}"
. "$here/relay_common.sh"
relay_bench_setup relay_mqtt 29850 mosquitto clickhouse

tag="bench_mqtt_$$"
cat > "$work/relay.ini" <<INI
[clickhouse]
url = $TERN_CLICKHOUSE_URL
database = $tag
compression = $compression
insert_format = $format
[mqtt]
host = $TERN_MQTT_HOST
port = $TERN_MQTT_PORT
topic = $tag/+/readings
group = $tag
receipt_topic = $tag/{device_id}/receipts
[relay]
source = mqtt
metrics_listen =
log_level = ${TERN_BENCH_LOG_LEVEL:-info}
INI
"$relay" --config "$work/relay.ini" init >&2

relay_bench_lines

relay_bench_baselines "$tag"

echo "relay_mqtt: starting the relay" >&2
relay_bench_start "$tag.readings" "$work/relay.ini" "mqtt: subscribed"

# The publisher: a minimal MQTT 3.1.1 client (stdlib only), QoS 1 with up to
# 64 messages awaiting PUBACK, each message one device's next `batch` lines,
# as tern-agent sends them. Prints when it started sending (the relay's clock
# starts there, after the publisher prepared its messages) and how long it
# took.
echo "relay_mqtt: publishing" >&2
pub="$(python3 - "$work/lines.jsonl" "$TERN_MQTT_HOST" "$TERN_MQTT_PORT" "$tag" "$batch" <<'PY'
import socket, struct, sys, threading, time, json
path, host, port, tag, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
def rl(n):
    out = b""
    while True:
        b = n % 128; n //= 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
def utf(s):
    b = s.encode(); return struct.pack("!H", len(b)) + b
by_dev = {}
for line in open(path, "rb"):
    dev = json.loads(line)["device_id"]
    by_dev.setdefault(dev, []).append(line.rstrip(b"\n"))
msgs = []
for dev, ls in by_dev.items():
    for i in range(0, len(ls), batch):
        msgs.append((("%s/%s/readings" % (tag, dev)), b"\n".join(ls[i:i + batch])))
# Interleave devices as a fleet would.
msgs.sort(key=lambda m: (int(m[1].split(b'"seq":', 1)[1].split(b",", 1)[0]), m[0]))
s = socket.create_connection((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
body = utf("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + utf("bench-pub-%d" % time.time_ns())
s.sendall(bytes([0x10]) + rl(len(body)) + body)
assert s.recv(4)[:2] == b"\x20\x02"
window = threading.Semaphore(64)
acked = [0]
def reader():
    buf = b""
    while acked[0] < len(msgs):
        d = s.recv(65536)
        if not d:
            return
        buf += d
        while len(buf) >= 4:
            assert buf[0] == 0x40, buf[:4]
            buf = buf[4:]
            acked[0] += 1
            window.release()
t = threading.Thread(target=reader, daemon=True); t.start()
t0 = time.time()
for i, (topic, payload) in enumerate(msgs):
    window.acquire()
    mid = i % 65535 + 1
    vh = utf(topic) + struct.pack("!H", mid)
    s.sendall(bytes([0x32]) + rl(len(vh) + len(payload)) + vh + payload)
t.join(600)
print("%.6f %.3f" % (t0, time.time() - t0))
s.sendall(b"\xe0\x00"); s.close()
PY
)"
ta="${pub% *}"; pub_s="${pub#* }"
wait "$poller" || { cat "$work/relay.log" >&2; exit 1; }
poller=""
te="$(cat "$work/te")"
final="$(ch "SELECT count() FROM $tag.readings FINAL")"
[ "$final" = "$rows" ] || { echo "relay_mqtt: readings FINAL has $final rows, want $rows" >&2; exit 1; }
# CPU seconds the relay used (user + system), from /proc: the relay shares
# the machine with the publisher, mosquitto and ClickHouse during its run.
relay_cpu_s="$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$relay_pid/stat")"
kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true; relay_pid=""
receipts="$(sed -n 's/.*mqtt: \([0-9]*\) receipt(s) published.*/\1/p' "$work/relay.log" | tail -1)"
relay_rate="$(python3 -c "print(round($rows / ($te - $ta)))")"
ch "DROP DATABASE $tag" >/dev/null
echo "rows=$rows"
echo "batch_lines=$batch"
echo "relay_compression=$compression"
echo "relay_format=$format"
echo "publish_rows_per_s=$(python3 -c "print(round($rows / max($pub_s, 0.001)))")"
echo "relay_rows_per_s=$relay_rate"
relay_bench_report_baselines "$relay_rate"
echo "relay_cpu_s=$relay_cpu_s"
echo "receipts=${receipts:-0}"
