#!/usr/bin/env bash
# storage.sh - the SQLite queue's benchmark (bench/storage_bench.c): append
# and drain rates, bytes written to the device per reading, and a minimal raw
# SQLite insert loop on the same rows in the same run as the baseline.
#
# Usage: bench/storage.sh [ROWS [off|normal|full]]   (default 1000000 full)
# Env:   TERN_BINARY_DIR (the build holding storage/bench_storage),
#        TERN_BENCH_DIR (where the database goes; default a temp dir under
#        /var/tmp, i.e. on the real disk, not tmpfs)
# Prints key=value lines: append_rows_per_s, drain_rows_per_s,
# bytes_written_per_reading, sqlite_baseline_rows_per_s, append_vs_sqlite,
# encoded_bytes_per_reading, ...
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${TERN_BINARY_DIR:-$repo/build}/storage/bench_storage"
[ -x "$bin" ] || { echo "storage.sh: $bin not built (bench/run storage builds it)" >&2; exit 2; }
# bench_storage makes (and removes) its own directory under TMPDIR.
TMPDIR="${TERN_BENCH_DIR:-/var/tmp}" exec "$bin" "${1:-1000000}" "${2:-full}"
