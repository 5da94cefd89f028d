#!/usr/bin/env python3
"""reload.py - SIGHUP applies a new config (a sensor removed, one added,
uplink settings changed) without losing any queued reading; a bad config is
rejected and the running one keeps working."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Agent, Subscriber, Workdir, check_coverage, decode_all, fail, stack_env, wait_for

env = stack_env()
wd = Workdir("reload")
device = "reload-%d" % os.getpid()
topic = "tern/%s/readings" % device
base = """
[agent]
device_id = %(device)s
data_dir = %(dir)s/data

[storage]
commit_ms = 100ms
""" % {"device": device, "dir": wd.path}
uplink = """
[uplink.mqtt]
host = %s
port = %s
max_batch_readings = %%d
""" % (env["TERN_MQTT_HOST"], env["TERN_MQTT_PORT"])


def sensor(name, interval="50ms"):
    return "\n[sensor.%s]\ndriver = sim\nkind = counter\ninterval = %s\n" % (name, interval)


cfg = wd.file("agent.ini", base + sensor("a") + sensor("b") + uplink % 10)
sub = Subscriber(env["TERN_MQTT_HOST"], env["TERN_MQTT_PORT"], topic, os.path.join(wd.path, "sub.out"))
sub.start()
agent = Agent(cfg, os.path.join(wd.path, "data"), os.path.join(wd.path, "agent.log"))
agent.start()
wait_for("readings of a and b", lambda: (lambda s: s.get("sensor.a.readings", 0) > 5
                                         and s.get("sensor.b.readings", 0) > 5)(agent.status()), 20)

wd.file("agent.ini", base + sensor("a") + sensor("c", "30ms") + uplink % 50)
agent.signal(signal.SIGHUP)
st = wait_for("the reload", lambda: (lambda s: s if s["reloads"] == 1 else None)(agent.status()), 20)
if "sensor.b.healthy" in st or "sensor.c.healthy" not in st:
    fail("sensors after reload: %s" % sorted(k for k in st if k.startswith("sensor.")))
if st["sensor.a.reads_ok"] < 5:
    fail("unchanged sensor a was restarted (its counters reset)")
wait_for("readings of c", lambda: agent.status().get("sensor.c.readings", 0) > 5, 20)

wd.file("agent.ini", base + sensor("a") + "\n[sensor.d]\ndriver = nosuchdriver\n" + uplink % 50)
agent.signal(signal.SIGHUP)
wait_for("the rejected reload", lambda: agent.status()["reload_failures"] == 1, 20)
st = agent.status()
if "sensor.c.healthy" not in st or "sensor.d.healthy" in st:
    fail("a rejected config changed the running sensors")
if "nosuchdriver" not in agent.log():
    fail("the rejected config's error was not logged")
n0 = st["last_seq"]
wait_for("the agent still producing and sending",
         lambda: agent.status()["uplink.mqtt.acked_seq"] > n0 + 20, 20)

last = agent.stop()
wait_for("readings 1..%d at the subscriber" % last,
         lambda: len({d["seq"] for d in decode_all(sub.lines())}) >= last, 30)
sub.stop()
rs = decode_all(sub.lines())
check_coverage(rs, last)
sensors = {d["sensor"] for d in rs}
if sensors != {"a", "b", "c"}:
    fail("sensors seen: %s" % sensors)
print("ok: reload applied (b -> c), bad reload rejected, all %d readings arrived" % last)
wd.cleanup()
