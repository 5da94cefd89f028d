#!/usr/bin/env bash
# test_cli.sh - tern-relay's command line without services: --help, --check
# (exit 0 and masked password; exit 2 and every problem for a bad file),
# `schema --mode`, `encode`, unknown commands.
set -euo pipefail
relay="$1"
vectors="${TERN_VECTORS_DIR:?}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

help="$("$relay" --help)"
grep -q "^SYNOPSIS" <<<"$help" || fail "--help lacks SYNOPSIS"
grep -q "max_rows" <<<"$help" || fail "--help lacks the config keys"
grep -q "^tern-relay " <<<"$("$relay" --version)" || fail "--version"

printf '[kafka]\nbrokers = k:9092\n[clickhouse]\npassword = hunter2\n' > "$tmp/ok.ini"
out="$("$relay" --config "$tmp/ok.ini" --check 2>&1)" || fail "--check of a good file failed"
grep -q "brokers = k:9092" <<<"$out" || fail "--check does not print the effective config"
grep -q "hunter2" <<<"$out" && fail "--check printed the password"

printf '[kafka]\nbogus = 1\n[batch]\nmax_rows = lots\n' > "$tmp/bad.ini"
set +e
out="$("$relay" --config "$tmp/bad.ini" --check 2>&1)"; rc=$?
set -e
[ "$rc" = 2 ] || fail "--check of a bad file exited $rc, want 2"
grep -q "unknown key 'bogus'" <<<"$out" || fail "bad key not reported: $out"
grep -q "max_rows: 'lots' is not an integer" <<<"$out" || fail "bad value not reported: $out"

printf '[clickhouse]\nurl = http://u:p@ch:8123\n' > "$tmp/cred.ini"
set +e; "$relay" --config "$tmp/cred.ini" --check >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || fail "credentials in the URL accepted"

grep -q "ReplacingMergeTree" <<<"$("$relay" --mode old schema)" || fail "schema --mode old"
grep -q "DateTime64(3, 'UTC')" <<<"$("$relay" --mode modern schema)" || fail "schema --mode modern"
printf '[clickhouse]\ninsert_format = jsoneachrow\n' > "$tmp/json.ini"
n="$("$relay" --config "$tmp/json.ini" --mode modern encode < "$vectors/valid.jsonl" | wc -l)"
want="$(grep -c . "$vectors/valid.jsonl")"
[ "$n" = "$want" ] || fail "encode wrote $n rows for $want valid lines"
# RowBinary (the default) is binary: no newlines to count, but every valid
# line gives a row, so it is far from empty and holds every device id.
"$relay" --mode old encode < "$vectors/valid.jsonl" > "$tmp/rows.bin"
[ "$(wc -c < "$tmp/rows.bin")" -gt $((want * 40)) ] || fail "encode wrote too little RowBinary"
grep -q "pi-01" "$tmp/rows.bin" || fail "RowBinary lacks the device ids"
set +e; "$relay" frobnicate >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || fail "unknown command exited $rc"
echo "1 passed, 0 failed"
