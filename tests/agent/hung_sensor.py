#!/usr/bin/env python3
"""hung_sensor.py - a sensor whose read never returns (a dead bus; here the
sim driver's slow = 1h) neither wedges a reload nor keeps the agent from
exiting on SIGTERM: the other sensors keep their pace, SIGHUP removing the
hung sensor is applied, and SIGTERM exits 0 with everything taken stored.
Needs no services (no uplink)."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Agent, Workdir, fail, wait_for

wd = Workdir("hung")
base = """
[agent]
device_id = hung-%(pid)d
data_dir = %(dir)s/data
log_level = info

[storage]
commit_ms = 100ms

[sensor.fast]
driver = sim
kind = counter
interval = 20ms
""" % {"pid": os.getpid(), "dir": wd.path}
hung = """
[sensor.hung]
driver = sim
kind = counter
interval = 100ms
slow = 1h
"""
cfg = wd.file("agent.ini", base + hung)
agent = Agent(cfg, os.path.join(wd.path, "data"), os.path.join(wd.path, "agent.log"))
agent.start()
wait_for("the hung sensor inside its read",
         lambda: agent.status()["sensor_threads_busy"] >= 1, 20)
n0 = agent.status()["sensor.fast.readings"]
wait_for("the fast sensor reading on while the other hangs",
         lambda: agent.status()["sensor.fast.readings"] >= n0 + 50, 20)
st = agent.status()
if st["sensor.hung.readings"] != 0:
    fail("the hung sensor produced readings: %d" % st["sensor.hung.readings"])

# SIGHUP without the hung sensor: applied although its read never ends.
wd.file("agent.ini", base)
agent.signal(signal.SIGHUP)
st = wait_for("the reload", lambda: (lambda s: s if s["reloads"] == 1 else None)(agent.status()), 30)
if "sensor.hung.healthy" in st:
    fail("the hung sensor is still configured after the reload")
if "read still hangs" not in agent.log():
    fail("leaving the hung read behind was not logged:\n" + agent.log())
n1 = st["sensor.fast.readings"]
wait_for("the fast sensor after the reload", lambda: agent.status()["sensor.fast.readings"] >= n1 + 20, 20)

# A new hung sensor, then SIGTERM: the agent exits, and everything the fast
# sensor took is durable.
wd.file("agent.ini", base + hung.replace("sensor.hung", "sensor.hung2"))
agent.signal(signal.SIGHUP)
wait_for("the second reload", lambda: agent.status()["reloads"] == 2, 30)
wait_for("the second hung read", lambda: agent.status()["sensor_threads_busy"] >= 1, 20)
st = agent.status()
last = agent.stop(timeout=60)
if last < st["readings_stored"]:
    fail("last seq %d at exit, but %d readings were stored before" % (last, st["readings_stored"]))
print("ok: hung reads left behind on reload and on SIGTERM; the others kept their pace")
wd.cleanup()
