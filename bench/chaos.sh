#!/usr/bin/env bash
# chaos.sh - the full end-to-end fault scenario (tests/e2e/chaos.py): agents
# over MQTT (end-to-end receipts) and Kafka, a relay per path, several minutes
# of faults (broker, relay, ClickHouse and agent kills, disk full, network
# cut, clock step, malformed messages), then the exact accounting. Prints
# key=value lines on stdout, first these, in this order:
#   produced         readings the agents took (stored + dropped on purpose)
#   stored           readings the agents' queues stored (seqs 1..last per epoch)
#   missing          stored readings absent from readings FINAL (must be 0)
#   duplicated       extra copies visible in readings FINAL (must be 0)
#   faults_injected  faults the schedule injected
# then more (dropped_on_purpose, rows_final, rollup_difference, rejected,
# mqtt_path, duration_s). The accounting table and progress go to stderr.
# Exit status 1 when anything is missing or duplicated.
#
# Env: TERN_BENCH_BUILD_DIR or TERN_BINARY_DIR (the build; bench/run sets the
# former), TERN_BENCH_CHAOS_PORT_BASE (default 29500: the scenario's private
# stack uses BASE+100..BASE+160), TERN_CHAOS_DURATION (seconds of fault
# rounds, default 360).
# Usage: bench/chaos.sh [build-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-${TERN_BENCH_BUILD_DIR:-${TERN_BINARY_DIR:-$repo/build}}}"
[ -x "$build/agent/tern-agent" ] && [ -x "$build/relay/tern-relay" ] ||
  { echo "chaos: $build has no agent/tern-agent or relay/tern-relay" >&2; exit 2; }
out="$(mktemp "${TMPDIR:-/tmp}/tern-chaos-out.XXXXXX")"
trap 'rm -f "$out"' EXIT
rc=0
TERN_SOURCE_DIR="$repo" TERN_BINARY_DIR="$build" TERN_PORT_BASE="${TERN_BENCH_CHAOS_PORT_BASE:-29500}" \
  python3 "$repo/tests/e2e/chaos.py" --kv --duration "${TERN_CHAOS_DURATION:-360}" >"$out" || rc=$?
grep -vE '^[a-z_]+=[0-9.]+$' "$out" >&2 || true
grep -E '^[a-z_]+=[0-9.]+$' "$out" || true
exit "$rc"
