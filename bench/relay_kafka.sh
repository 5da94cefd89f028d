#!/usr/bin/env bash
# relay_kafka.sh - tern-relay throughput: Kafka -> ClickHouse against a direct
# HTTP insert baseline of the same rows. Prints key=value lines:
#   relay_rows_per_s               1M readings from a pre-filled topic into ClickHouse
#                                  (the median of TERN_BENCH_ROUNDS rounds, default 3;
#                                  each round reads the whole topic with a consumer
#                                  group of its own, its offsets committed at the
#                                  start, into a fresh database)
#   clickhouse_baseline_rows_per_s the same rows, encoded as the relay encodes them and
#                                  in the same format (clickhouse_baseline_format:
#                                  RowBinary by default), inserted directly over HTTP
#                                  in 100k-row batches on one keep-alive connection
#                                  (no broker, no relay): ClickHouse's own best
#   relay_vs_baseline              ratio (goal >= 0.7): the median of the rounds'
#                                  ratios, each round timing the direct insert and
#                                  then the relay (relay_vs_baseline_rounds lists them)
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
# rowbinary), TERN_BENCH_ROUNDS (3), TERN_BENCH_KAFKA_CODEC (the producer's
# compression.codec, default lz4 as the agents send).
# Usage: bench/relay_kafka.sh [build-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
RELAY_BENCH_BUILD="${1:-}"
. "$here/relay_common.sh"
relay_bench_setup relay_kafka 29300 kafka clickhouse

tag="bench_$$"
rounds="${TERN_BENCH_ROUNDS:-3}"
# relay_config DATABASE GROUP: the relay's configuration for one round.
relay_config() {
  cat <<INI
[kafka]
brokers = $TERN_KAFKA_BOOTSTRAP
topic = $tag
group = $2
partitions = 6
[clickhouse]
url = $TERN_CLICKHOUSE_URL
database = $1
compression = $compression
insert_format = $format
[relay]
metrics_listen =
INI
}
relay_config "$tag" "$tag" > "$work/relay.ini"
"$relay" --config "$work/relay.ini" init >&2

relay_bench_lines
# Produced as the agents (and the MQTT bridge) produce: one reading a
# message, keyed by device_id (a device's readings in one partition, in
# order), lz4-compressed batches kept as they are by the topic (init's
# compression.type = producer).
echo "relay_kafka: producing to Kafka" >&2
sed 's/^\(.*"device_id":"\([^"]*\)".*\)$/\2\t\1/' "$work/lines.jsonl" > "$work/keyed.tsv"
kcat -P -b "$TERN_KAFKA_BOOTSTRAP" -t "$tag" -K $'\t' -X linger.ms=50 -X batch.num.messages=10000 \
  -X compression.codec="${TERN_BENCH_KAFKA_CODEC:-lz4}" -l "$work/keyed.tsv"
rm -f "$work/keyed.tsv"

# The JSONEachRow baseline, once, for reference; the same-format one is
# measured in every round, next to the relay.
baseline_json=""
if [ "$format" != jsoneachrow ]; then
  relay_bench_baseline "$tag" jsoneachrow
  baseline_json="$baseline_rate"
fi

# Warm the broker's fetch path (JIT, page cache) so a freshly started stack
# does not charge its warm-up to the relay.
kcat -C -b "$TERN_KAFKA_BOOTSTRAP" -t "$tag" -o beginning -e -q > /dev/null

# relay_round N: the relay reads the whole topic from the start (a consumer
# group of its own) into a database of its own. Sets relay_rate, startup_s
# and cpu_us.
relay_round() {
  local db="${tag}_r$1" ta te cpu0 cpu1 final
  relay_config "$db" "${tag}_r$1" > "$work/relay-$1.ini"
  "$relay" --config "$work/relay-$1.ini" init >&2
  # The group starts with its offsets committed at the start of the topic,
  # as a relay restarting on a backlog does (a group without any makes
  # librdkafka wait 100 ms per partition before it looks up where to begin).
  "$repo/compose/local/stack" rewind "${tag}_r$1" "$tag" >&2
  relay_bench_start "$db.readings" "$work/relay-$1.ini" "assigned"
  ta="$(now)"
  cpu0="$(awk '{ print $14 + $15 }' "/proc/$relay_pid/stat")"
  wait "$poller" || { cat "$work/relay.log" >&2; exit 1; }
  poller=""
  te="$(cat "$work/te")"
  cpu1="$(awk '{ print $14 + $15 }' "/proc/$relay_pid/stat")"
  kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true; relay_pid=""
  final="$(ch "SELECT count() FROM $db.readings FINAL")"
  [ "$final" = "$rows" ] || { echo "relay_kafka: readings FINAL has $final rows, want $rows" >&2; exit 1; }
  ch "DROP DATABASE $db" >/dev/null
  relay_rate="$(python3 -c "print(round($rows / ($te - $ta)))")"
  startup_s="$(python3 -c "print(round($ta - $relay_t0, 2))")"
  cpu_us="$(python3 -c "print(round(($cpu1 - $cpu0) / $(getconf CLK_TCK) * 1e6 / $rows, 2))")"
}

# Rounds of (direct insert, relay), alternating, so that both see the same
# machine: the machine is shared and a single 1-2 s run of either swings by
# tens of percent. Each figure is the median of its rounds; relay_vs_baseline
# is the median of the rounds' own ratios.
rates=(); bases=(); ratios=(); starts=(); cpus=()
for r in $(seq 1 "$rounds"); do
  echo "relay_kafka: round $r of $rounds: direct insert" >&2
  relay_bench_baseline "$tag" "$format"
  bases+=("$baseline_rate")
  echo "relay_kafka: round $r of $rounds: relay" >&2
  relay_round "$r"
  rates+=("$relay_rate"); starts+=("$startup_s"); cpus+=("$cpu_us")
  ratios+=("$(python3 -c "print(round($relay_rate / $baseline_rate, 3))")")
  echo "relay_kafka: round $r: relay $relay_rate rows/s, direct $baseline_rate rows/s, ratio ${ratios[-1]}" >&2
done
ch "DROP DATABASE $tag" >/dev/null
relay_rate="$(python3 -c "print(round($(median "${rates[@]}")))")"
baseline="$(python3 -c "print(round($(median "${bases[@]}")))")"
relay_vs_baseline="$(median "${ratios[@]}")"
[ -n "$baseline_json" ] || baseline_json="$baseline"
echo "rows=$rows"
echo "rounds=$rounds"
echo "relay_compression=$compression"
echo "relay_format=$format"
echo "relay_startup_s=$(median "${starts[@]}")"
echo "relay_rows_per_s=$relay_rate"
relay_bench_report_baselines "$relay_rate" "$relay_vs_baseline"
echo "relay_vs_baseline_rounds=$(IFS=,; echo "${ratios[*]}")"
echo "relay_cpu_us_per_row=$(median "${cpus[@]}")"
