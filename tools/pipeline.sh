# pipeline.sh - shell helpers shared by scripts/demo and bench/chaos.sh:
# probing what this build's relay and agent support, and writing their
# configuration files. Sourced, not run.
#
# Capabilities are probed from the binaries themselves (config reference and
# --check), never assumed, so the scripts keep working while the MQTT source
# and end-to-end receipts are being added.

# relay_sections RELAY_BIN: "section key" lines from `tern-relay --config-reference`.
relay_keys() {
  "$1" --config-reference 2>/dev/null | awk '
    /^#+ *\[/ { s = $0; sub(/^#+ *\[/, "", s); sub(/\].*/, "", s); next }
    /^\| *`/ && s != "" { k = $0; sub(/^\| *`/, "", k); sub(/`.*/, "", k); print s, k }'
}

# relay_has_mqtt RELAY_BIN: true when the relay has an [mqtt] source section.
relay_has_mqtt() { relay_keys "$1" | grep -q '^mqtt '; }

# relay_has_key RELAY_BIN SECTION KEY
relay_has_key() { relay_keys "$1" | grep -qx "$2 $3"; }

# agent_has_e2e AGENT_BIN DIR: true when the agent accepts
# [uplink.mqtt] ack = end-to-end (checked with --check on a scratch config).
agent_has_e2e() {
  local bin="$1" dir="$2" f
  mkdir -p "$dir"
  f="$dir/probe-e2e.ini"
  cat > "$f" <<EOF
[agent]
device_id = probe
data_dir = $dir/probe-data
[sensor.s]
driver = sim
[uplink.mqtt]
host = 127.0.0.1
ack = end-to-end
EOF
  "$bin" --config "$f" --check >/dev/null 2>&1
}

# agent_has_key AGENT_BIN KEY: the agent's config reference names KEY.
agent_has_key() { [ -n "$1" ] && "$1" --config-doc 2>/dev/null | grep -q "^| \`$2\` "; }

# write_agent_config FILE DEVICE DATA_DIR TRANSPORT RATE_HZ MQTT_PORT KAFKA_BOOTSTRAP TOPIC ACK [EXTRA_AGENT_LINES]
# (AGENT_BIN_FOR_CONFIG, if set, is probed for optional keys; MQTT_ROOT, if
# set, replaces the first level "tern" of the MQTT topics.)
# One device: an env sensor (temperature, humidity, pressure) and a counter,
# each polled RATE_HZ times a second.
write_agent_config() {
  local f="$1" dev="$2" dd="$3" tr="$4" rate="$5" mport="$6" kboot="$7" topic="$8" ack="$9" extra="${10:-}"
  local ms
  ms=$(awk -v r="$rate" 'BEGIN { v = 1000 / r; if (v < 1) v = 1; printf "%d", v }')
  {
    echo "[agent]"
    echo "device_id = $dev"
    echo "data_dir = $dd"
    echo "tags = site=demo"
    echo "shutdown_timeout = 5s"
    [ -n "$extra" ] && printf '%s\n' "$extra"
    echo
    echo "[sensor.env]"
    echo "driver = sim"
    echo "kind = env"
    echo "interval = ${ms}ms"
    echo
    echo "[sensor.counter]"
    echo "driver = sim"
    echo "kind = counter"
    echo "interval = ${ms}ms"
    echo
    if [ "$tr" = mqtt ]; then
      echo "[uplink.mqtt]"
      echo "host = 127.0.0.1"
      echo "port = $mport"
      if [ "${MQTT_ROOT:-tern}" != tern ]; then
        echo "topic = $MQTT_ROOT/{device_id}/readings"
        agent_has_key "$AGENT_BIN_FOR_CONFIG" receipt_topic && echo "receipt_topic = $MQTT_ROOT/{device_id}/receipts"
      fi
      echo "reconnect_max = 2s"
      echo "ack_timeout = 10s"
      if [ -n "$ack" ]; then
        echo "ack = $ack"
        # Re-send unreceipted readings sooner than the default after a fault.
        agent_has_key "$AGENT_BIN_FOR_CONFIG" receipt_timeout && echo "receipt_timeout = 15s"
      fi
    else
      echo "[uplink.kafka]"
      echo "brokers = $kboot"
      echo "topic = $topic"
      echo "message_timeout_ms = 30000"
    fi
    true
  } > "$f"
}

# write_relay_config FILE RELAY_BIN TRANSPORT KAFKA_BOOTSTRAP TOPIC GROUP CH_URL DATABASE METRICS_LISTEN MQTT_PORT [MQTT_CLIENT_ID]
# MQTT keys are written only if this relay knows them (probed).
write_relay_config() {
  local f="$1" bin="$2" tr="$3" kboot="$4" topic="$5" group="$6" ch="$7" db="$8" listen="$9" mport="${10}" cid="${11:-tern-relay-demo}"
  local keys
  keys="$(relay_keys "$bin")"
  has() { grep -qx "$1 $2" <<<"$keys"; }
  {
    if [ "$tr" = kafka ] || has relay source; then
      echo "[kafka]"
      echo "brokers = $kboot"
      echo "topic = $topic"
      echo "group = $group"
      echo "partitions = 2"
      echo "session_timeout_ms = 6000"
      echo
    fi
    echo "[clickhouse]"
    echo "url = $ch"
    echo "database = $db"
    echo "compression = none"
    echo
    echo "[relay]"
    echo "metrics_listen = $listen"
    echo "retry_max_ms = 2000"
    if [ "$tr" = mqtt ]; then
      has relay source && echo "source = mqtt"
      has relay sources && echo "sources = mqtt"
      echo
      echo "[mqtt]"
      has mqtt host && echo "host = 127.0.0.1"
      has mqtt port && echo "port = $mport"
      has mqtt url && echo "url = mqtt://127.0.0.1:$mport"
      has mqtt broker && echo "broker = 127.0.0.1:$mport"
      has mqtt brokers && echo "brokers = 127.0.0.1:$mport"
      has mqtt enabled && echo "enabled = true"
      has mqtt client_id && echo "client_id = $cid"
      has mqtt group && echo "group = $group"
      if [ "${MQTT_ROOT:-tern}" != tern ]; then
        has mqtt topic && echo "topic = $MQTT_ROOT/+/readings"
        has mqtt receipt_topic && echo "receipt_topic = $MQTT_ROOT/{device_id}/receipts"
      fi
    fi
    true
  } > "$f"
  unset -f has
}
