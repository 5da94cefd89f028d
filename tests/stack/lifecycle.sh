#!/usr/bin/env bash
# lifecycle.sh - compose/local/stack's promises, on a private stack (own state
# dir and port block, so it never touches the suite's shared stack):
#   `up` twice is harmless; `down` leaves no process behind; an `up` killed
#   with SIGKILL half-way does not break the next `up`; a busy port is a clear
#   error, not a hang.
set -euo pipefail
stack="$TERN_SOURCE_DIR/compose/local/stack"
export TERN_STACK_DIR="$TERN_BINARY_DIR/test-stack-lifecycle"
export TERN_PORT_BASE=$((TERN_PORT_BASE + 50))
rm -rf "$TERN_STACK_DIR"
fail() { echo "FAIL: $*" >&2; "$stack" down >/dev/null 2>&1 || true; exit 1; }
ours() { pgrep -f -- "$TERN_STACK_DIR" || true; }
trap '"$stack" down >/dev/null 2>&1 || true' EXIT

# 1. An `up` killed half-way (during Kafka's start) leaves pid files and maybe
#    half-formatted storage behind; the next `up` must still succeed.
"$stack" up >/dev/null 2>&1 &
up_pid=$!
deadline=$((SECONDS + 60))
until [ -f "$TERN_STACK_DIR/kafka.pid" ] || [ -f "$TERN_STACK_DIR/kafka/server.properties" ]; do
  [ $SECONDS -lt $deadline ] || fail "first up never reached kafka"
  sleep 0.05
done
kill -9 "$up_pid"; wait "$up_pid" 2>/dev/null || true
echo "killed an up half-way; status now:"; "$stack" status || true
"$stack" up || fail "up after an interrupted up"
"$stack" status || fail "status after up reports a stopped service"

# 2. A second `up` is harmless: same pids, all still answering.
before="$(cat "$TERN_STACK_DIR"/*.pid | sort)"
"$stack" up || fail "second up"
after="$(cat "$TERN_STACK_DIR"/*.pid | sort)"
[ "$before" = "$after" ] || fail "second up restarted services ($before -> $after)"

# 3. env prints the endpoints as shell assignments that work.
eval "$("$stack" env)"
[ "$TERN_MQTT_PORT" = $((TERN_PORT_BASE + 1)) ] || fail "env: TERN_MQTT_PORT=$TERN_MQTT_PORT"
mosquitto_pub -h "$TERN_MQTT_HOST" -p "$TERN_MQTT_PORT" -t t -m x || fail "mqtt endpoint from env"
curl -fsS "$TERN_CLICKHOUSE_URL/ping" | grep -q Ok || fail "clickhouse endpoint from env"
kcat -L -b "$TERN_KAFKA_BOOTSTRAP" | grep -q "broker 1" || fail "kafka endpoint from env"

# 4. A port taken by someone else gives a clear error (mosquitto stopped, an
#    impostor listens on its port).
"$stack" down mosquitto
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' \
  $((TERN_PORT_BASE + 1)) &
imp=$!
deadline=$((SECONDS + 10))
until (exec 3<>/dev/tcp/127.0.0.1/$((TERN_PORT_BASE + 1))) 2>/dev/null; do [ $SECONDS -lt $deadline ] || fail "impostor never listened"; sleep 0.05; done
if out="$("$stack" up mosquitto 2>&1)"; then kill $imp; fail "up succeeded on a busy port"; fi
kill $imp; wait $imp 2>/dev/null || true
echo "$out" | grep -q "already in use" || fail "busy port message was: $out"

# 5. down stops exactly what up started and leaves no process behind.
"$stack" down
sleep 0.2
left="$(ours)"
[ -z "$left" ] || fail "processes left after down: $left"
if "$stack" status >/dev/null; then fail "status says running after down"; fi
trap - EXIT
echo "lifecycle: ok"
