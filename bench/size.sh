#!/usr/bin/env bash
# size.sh - footprint of tern-agent on each architecture: the size of the
# stripped binary and the shared libraries it needs (DT_NEEDED), from the
# native build and the cross builds of tests/cross/run-cross.
#
# Usage: bench/size.sh [BUILD_DIR]   (default $TERN_BINARY_DIR or build)
# Prints key=value lines:
#   agent_bytes_<arch>=N
#   agent_needed_<arch>=libsqlite3.so.0,...
# An architecture whose tern-agent is not built yet is reported as skipped
# (stderr) and left out. Run tests/cross/run-cross aarch64|armhf first for the
# ARM numbers.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bdir=${1:-${TERN_BINARY_DIR:-$src/build}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

found=0
report() { # arch binary strip-tool
  local arch=$1 bin=$2 strip=$3
  if [ ! -x "$bin" ]; then
    echo "size.sh: skip $arch: no tern-agent at $bin" >&2
    return 0
  fi
  if ! command -v "$strip" >/dev/null; then
    echo "size.sh: skip $arch: $strip not installed" >&2
    return 0
  fi
  "$strip" -o "$work/tern-agent-$arch" "$bin"
  echo "agent_bytes_$arch=$(stat -c %s "$work/tern-agent-$arch")"
  echo "agent_needed_$arch=$(LC_ALL=C readelf -d "$bin" |
    sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd, -)"
  found=1
}
report x86_64 "$bdir/agent/tern-agent" strip
report aarch64 "$bdir/cross-aarch64/agent/tern-agent" aarch64-linux-gnu-strip
report armhf "$bdir/cross-armhf/agent/tern-agent" arm-linux-gnueabihf-strip
if [ "$found" = 0 ]; then
  echo "size.sh: no tern-agent built in $bdir yet: nothing to measure" >&2
fi
exit 0
