#!/usr/bin/env python3
"""outage.py - the broker is stopped for 30 s while sensors keep producing,
then started again: every reading arrives; the (epoch, seq) received cover
1..last produced. Needs the ctest LOCK (it stops the stack's mosquitto)."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import (STACK, Agent, Subscriber, Workdir, check_coverage, decode_all, fail, stack_env,
                      wait_for)

OUTAGE_S = float(os.environ.get("TERN_OUTAGE_S", "30"))
env = stack_env()
wd = Workdir("outage")
device = "outage-%d" % os.getpid()
topic = "tern/%s/readings" % device
cfg = wd.file("agent.ini", """
[agent]
device_id = %(device)s
data_dir = %(dir)s/data

[storage]
commit_ms = 200ms

[sensor.env]
driver = sim
kind = env
interval = 50ms

[sensor.count]
driver = sim
kind = counter
interval = 20ms

[uplink.mqtt]
host = %(host)s
port = %(port)s
reconnect_min = 200ms
reconnect_max = 2s
""" % {"device": device, "dir": wd.path, "host": env["TERN_MQTT_HOST"], "port": env["TERN_MQTT_PORT"]})


def stack(*args):
    r = subprocess.run([STACK] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        fail("stack %s failed: %s" % (" ".join(args), r.stderr))


out = os.path.join(wd.path, "sub.out")
sub = Subscriber(env["TERN_MQTT_HOST"], env["TERN_MQTT_PORT"], topic, out)
sub.start()
agent = Agent(cfg, os.path.join(wd.path, "data"), os.path.join(wd.path, "agent.log"))
agent.start()
wait_for("first readings acknowledged", lambda: agent.status()["uplink.mqtt.acked_seq"] >= 50, 30)

try:
    stack("down", "mosquitto")
    sub.stop()
    down_at = time.monotonic()
    wait_for("the agent to notice the outage",
             lambda: agent.status()["uplink.mqtt.connected"] == 0, 30)
    before = agent.status()
    # The outage itself lasts OUTAGE_S; sensors keep producing meanwhile.
    while time.monotonic() - down_at < OUTAGE_S:
        time.sleep(0.5)
        s = agent.status()
        if s["uplink.mqtt.connected"]:
            fail("uplink reports connected while the broker is down")
    during = agent.status()
    if during["last_seq"] <= before["last_seq"] + 100:
        fail("sensors did not keep producing during the outage: %d -> %d"
             % (before["last_seq"], during["last_seq"]))
    if during["queue_depth"] < during["last_seq"] - during["uplink.mqtt.acked_seq"] - 1000:
        fail("backlog not queued: %s" % during)
    # Freeze the agent while the broker and the subscriber come back, so the
    # backlog cannot be published before the subscriber is there to see it.
    agent.signal(signal.SIGSTOP)
    try:
        stack("up", "mosquitto")
        sub.start()
    finally:
        agent.signal(signal.SIGCONT)
finally:
    stack("up", "mosquitto")

wait_for("the agent to reconnect", lambda: agent.status()["uplink.mqtt.connected"] == 1, 30)
target = agent.status()["last_seq"]
wait_for("the backlog (seq %d) acknowledged" % target,
         lambda: agent.status()["uplink.mqtt.acked_seq"] >= target, 60)
last = agent.stop()
wait_for("readings 1..%d at the subscriber" % last,
         lambda: len({d["seq"] for d in decode_all(sub.lines())}) >= last, 30)
sub.stop()
rs = decode_all(sub.lines())
dups = check_coverage(rs, last, during["epoch"])
print("ok: %.0f s outage, %d readings queued during it, all %d arrived (%d duplicates)"
      % (OUTAGE_S, during["last_seq"] - before["last_seq"], last, dups))
wd.cleanup()
