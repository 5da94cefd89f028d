#!/usr/bin/env python3
"""validate.py - compose/docker-compose.yml is a valid Compose file (checked
against the Compose Specification JSON schema) and describes the same central
stack as compose/local/stack: the same services, published on the host ports
that `stack env` prints for the default port block."""
import json, os, subprocess, sys

import jsonschema
import yaml

src = os.environ["TERN_SOURCE_DIR"]
schema_path = subprocess.run([f"{src}/scripts/fetch-compose-schema"], check=True,
                             capture_output=True, text=True).stdout.strip()
schema = json.load(open(schema_path))
doc = yaml.safe_load(open(f"{src}/compose/docker-compose.yml"))

errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
for e in errors:
    print(f"schema: {'/'.join(map(str, e.path))}: {e.message}")
if errors:
    sys.exit(1)

# The negative control: the validator really rejects a broken file.
bad = {"services": {"x": {"ports": 5, "image": []}}}
if not list(jsonschema.Draft7Validator(schema).iter_errors(bad)):
    sys.exit("schema check accepted a broken document: validator not working")

env = dict(os.environ, TERN_PORT_BASE="18800")
env.pop("TERN_STACK_DIR", None)
out = subprocess.run([f"{src}/compose/local/stack", "env"], check=True, capture_output=True,
                     text=True, env=env).stdout
stack = dict(line.split("=", 1) for line in out.split())

def host_ports(svc):
    ports = set()
    for p in doc["services"][svc].get("ports", []):
        parts = str(p).split(":")
        ports.add(int(parts[-2]))  # [ip:]host:container
    return ports

want = {
    "mosquitto": {int(stack["TERN_MQTT_PORT"])},
    "kafka": {int(stack["TERN_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])},
    "clickhouse": {int(stack["TERN_CLICKHOUSE_URL"].rsplit(":", 1)[1]), int(stack["TERN_CLICKHOUSE_PORT"])},
}
fail = False
services = set(doc["services"])
if services != set(want) | {"relay"}:
    print(f"services {sorted(services)} != local stack's {sorted(want)} + relay")
    fail = True
for svc, ports in want.items():
    got = host_ports(svc) if svc in doc["services"] else set()
    if got != ports:
        print(f"{svc}: compose publishes host ports {sorted(got)}, local stack uses {sorted(ports)}")
        fail = True
adv = doc["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
if f"127.0.0.1:{min(want['kafka'])}" not in adv:
    print(f"kafka advertises {adv}, not the host port clients use")
    fail = True
if not os.path.exists(f"{src}/compose/" + doc["services"]["relay"]["build"]["dockerfile"].split("/", 1)[1]):
    print("relay Dockerfile missing")
    fail = True
if fail:
    sys.exit(1)
print(f"compose: valid against the Compose Specification; {len(services)} services match the local stack")
