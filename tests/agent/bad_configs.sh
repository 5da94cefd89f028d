#!/usr/bin/env bash
# bad_configs.sh AGENT DIR - every DIR/NAME.ini must make `tern-agent --check`
# exit 3 with the line of DIR/NAME.expect (FILE:LINE: message) on stderr.
set -u
agent="$1"; dir="$2"
cd "$dir" || exit 1
fails=0; n=0
for ini in *.ini; do
  name="${ini%.ini}"
  want="$(cat "$name.expect")"
  out="$("$agent" --config "$ini" --check 2>&1 >/dev/null)"; rc=$?
  n=$((n + 1))
  if [ "$rc" -ne 3 ]; then
    echo "FAIL $ini: exit $rc, expected 3; output: $out"; fails=$((fails + 1)); continue
  fi
  if ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL $ini: expected"; echo "    $want"; echo "  got"; echo "$out" | sed 's/^/    /'
    fails=$((fails + 1)); continue
  fi
  echo "ok   $ini"
done
echo "$((n - fails))/$n bad configs rejected with the expected message"
[ "$fails" -eq 0 ]
