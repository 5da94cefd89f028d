#!/usr/bin/env bash
# relay_kafka.sh - tern-relay throughput: Kafka -> ClickHouse against a direct
# HTTP insert baseline of the same rows. Prints key=value lines:
#   relay_rows_per_s               1M readings from a pre-filled topic into ClickHouse
#   clickhouse_baseline_rows_per_s the same rows, encoded as the relay encodes them and
#                                  in the same format (clickhouse_baseline_format:
#                                  RowBinary by default), inserted directly over HTTP
#                                  in 100k-row batches on one keep-alive connection
#                                  (no broker, no relay): ClickHouse's own best
#   relay_vs_baseline              ratio (goal >= 0.7)
#   clickhouse_baseline_jsoneachrow_rows_per_s, relay_vs_jsoneachrow_baseline
#                                  the same with the baseline as JSONEachRow text
#                                  (for reference; only when the relay sends another
#                                  format)
#   relay_cpu_us_per_row           CPU the relay process used per row (all threads)
# The relay's time runs from its partition assignment to the last row being
# visible in ClickHouse (startup and group join are reported apart); the
# topic is read once with kcat first, so the broker is warm.
#
# Starts its own stack on a private port block (TERN_BENCH_PORT_BASE, default
# 29300) unless TERN_BENCH_USE_STACK=1 says to use the one in TERN_PORT_BASE.
# Env: TERN_BENCH_ROWS (default 1000000), TERN_BENCH_COMPRESSION (relay's
# clickhouse.compression, default none: loopback, see docs/relay.md),
# TERN_BENCH_FORMAT (the relay's clickhouse.insert_format, default
# rowbinary).
# Usage: bench/relay_kafka.sh [build-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
RELAY_BENCH_BUILD="${1:-}"
. "$here/relay_common.sh"
relay_bench_setup relay_kafka 29300 kafka clickhouse

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
insert_format = $format
[relay]
metrics_listen =
INI
"$relay" --config "$work/relay.ini" init >&2

relay_bench_lines
echo "relay_kafka: producing to Kafka" >&2
kcat -P -b "$TERN_KAFKA_BOOTSTRAP" -t "$tag" -X linger.ms=50 -X batch.num.messages=10000 -l "$work/lines.jsonl"

relay_bench_baselines "$tag"

# Warm the broker's fetch path (JIT, page cache) so a freshly started stack
# does not charge its warm-up to the relay.
kcat -C -b "$TERN_KAFKA_BOOTSTRAP" -t "$tag" -o beginning -e -q > /dev/null

echo "relay_kafka: running the relay" >&2
relay_bench_wait_rows "$tag.readings" "$work/relay.pid" > "$work/te" &
poller=$!
ts="$(now)"
"$relay" --config "$work/relay.ini" run 2> "$work/relay.log" &
relay_pid=$!
echo "$relay_pid" > "$work/relay.pid"
deadline=$(( $(date +%s) + 600 ))
until grep -q "assigned" "$work/relay.log"; do
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/relay.log" >&2; exit 1; }
  sleep 0.05
done
ta="$(now)"
cpu0="$(awk '{ print $14 + $15 }' "/proc/$relay_pid/stat")"
wait "$poller" || { cat "$work/relay.log" >&2; exit 1; }
poller=""
te="$(cat "$work/te")"
cpu1="$(awk '{ print $14 + $15 }' "/proc/$relay_pid/stat")"
final="$(ch "SELECT count() FROM $tag.readings FINAL")"
[ "$final" = "$rows" ] || { echo "relay_kafka: readings FINAL has $final rows, want $rows" >&2; exit 1; }
relay_rate="$(python3 -c "print(round($rows / ($te - $ta)))")"
ch "DROP DATABASE $tag" >/dev/null
echo "rows=$rows"
echo "relay_compression=$compression"
echo "relay_format=$format"
echo "relay_startup_s=$(python3 -c "print(round($ta - $ts, 2))")"
echo "relay_rows_per_s=$relay_rate"
relay_bench_report_baselines "$relay_rate"
echo "relay_cpu_us_per_row=$(python3 -c "print(round(($cpu1 - $cpu0) / $(getconf CLK_TCK) * 1e6 / $rows, 2))")"
