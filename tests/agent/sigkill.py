#!/usr/bin/env python3
"""sigkill.py - tern-agent killed with SIGKILL while publishing a backlog,
then restarted on the same data dir: every reading that was durable arrives
(duplicates allowed, and identical when they happen)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import (AGENT, Agent, Subscriber, Workdir, check_coverage, decode_all, fail, stack_env,
                      wait_for)
import subprocess

env = stack_env()
wd = Workdir("sigkill")
device = "sigkill-%d" % os.getpid()
topic = "tern/%s/readings" % device
PREFILL = 40000
cfg = wd.file("agent.ini", """
[agent]
device_id = %(device)s
data_dir = %(dir)s/data

[storage]
commit_ms = 100ms

[sensor.fast]
driver = sim
kind = counter
interval = 10ms

[uplink.mqtt]
host = %(host)s
port = %(port)s
; slow enough that the kill lands in the middle of the backlog
drain_rate = 10000
max_batch_readings = 200
""" % {"device": device, "dir": wd.path, "host": env["TERN_MQTT_HOST"], "port": env["TERN_MQTT_PORT"]})

r = subprocess.run([AGENT, "--config", cfg, "--prefill", str(PREFILL)], capture_output=True, text=True)
if r.returncode != 0:
    fail("prefill failed: " + r.stderr)

sub = Subscriber(env["TERN_MQTT_HOST"], env["TERN_MQTT_PORT"], topic, os.path.join(wd.path, "sub.out"))
sub.start()
agent = Agent(cfg, os.path.join(wd.path, "data"), os.path.join(wd.path, "agent.log"))
agent.start()
wait_for("part of the backlog acknowledged",
         lambda: agent.status()["uplink.mqtt.acked_seq"] >= PREFILL // 4, 60)
st = agent.status()
if st["uplink.mqtt.acked_seq"] >= PREFILL:
    fail("not mid-publish: %s" % {k: st[k] for k in st if k.startswith("uplink")})
agent.kill()
killed_at = st["uplink.mqtt.acked_seq"]

agent.start()
st2 = agent.status()
if st2["epoch"] != st["epoch"]:
    fail("the queue file changed epoch across the crash: %s -> %s" % (st["epoch"], st2["epoch"]))
wait_for("the backlog drained after the restart",
         lambda: (lambda s: s["uplink.mqtt.acked_seq"] >= PREFILL + 50)(agent.status()), 60)
last = agent.stop()
wait_for("readings 1..%d at the subscriber" % last,
         lambda: len({d["seq"] for d in decode_all(sub.lines())}) >= last, 30)
sub.stop()
rs = decode_all(sub.lines())
dups = check_coverage(rs, last, st["epoch"])
print("ok: killed after %d acked; %d readings 1..%d all arrived, %d duplicates (identical)"
      % (killed_at, len(rs), last, dups))
wd.cleanup()
