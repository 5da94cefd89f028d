#!/usr/bin/env python3
"""arrive.py - readings reach a real subscriber (mosquitto_sub) with exactly
the right content: every field decoded and checked, the counter sensor's
values exact, (epoch, seq) contiguous from 1, tags merged, one epoch."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import (Agent, Subscriber, Workdir, check_coverage, check_reading, decode_all, fail,
                      stack_env, wait_for)

env = stack_env()
wd = Workdir("arrive")
device = "arrive-%d" % os.getpid()
topic = "tern/%s/readings" % device
cfg = wd.file("agent.ini", """
[agent]
device_id = %(device)s
data_dir = %(dir)s/data
tags = site=ci, rack=r1
log_level = debug

[storage]
commit_ms = 100ms

[sensor.count]
driver = sim
kind = counter
start = 1000
step = 2
interval = 50ms
tags = rack=r2

[sensor.env]
driver = sim
kind = env
seed = 42
interval = 100ms

; A failing and a slow sensor must not disturb the others.
[sensor.broken]
driver = sim
kind = counter
error_rate = 1
interval = 100ms
retry_max = 500ms

[sensor.slow]
driver = sim
kind = counter
slow = 1500ms
interval = 100ms

[uplink.mqtt]
host = %(host)s
port = %(port)s
topic = tern/{device_id}/readings
max_batch_readings = 7
""" % {"device": device, "dir": wd.path, "host": env["TERN_MQTT_HOST"], "port": env["TERN_MQTT_PORT"]})

sub = Subscriber(env["TERN_MQTT_HOST"], env["TERN_MQTT_PORT"], topic, os.path.join(wd.path, "sub.out"))
sub.start()
agent = Agent(cfg, os.path.join(wd.path, "data"), os.path.join(wd.path, "agent.log"))
t0 = time.time()
agent.start()
wait_for("100 readings acknowledged by the broker",
         lambda: agent.status()["uplink.mqtt.acked_seq"] >= 100, 30)
st = agent.status()
if st["sensor.broken.healthy"] != 0 or st["sensor.broken.reads_failed"] < 2:
    fail("the failing sensor is not marked unhealthy and counted: %s"
         % {k: v for k, v in st.items() if k.startswith("sensor.broken")})
if "simulated read error" not in st["sensor.broken.last_error"]:
    fail("sensor.broken.last_error = %r" % st["sensor.broken.last_error"])
if st["healthy"] != 1:
    fail("one failing sensor made the whole agent unhealthy")
# The slow sensor takes 1.5 s per read; the 50 ms counter kept its pace.
if st["sensor.count.readings"] < 5 * max(1, st["sensor.slow.readings"]):
    fail("the slow sensor delayed the others: count %d vs slow %d readings"
         % (st["sensor.count.readings"], st["sensor.slow.readings"]))
last = agent.stop()
t1 = time.time()
if last < st["last_seq"]:
    fail("shutdown reports last seq %d < %d seen before" % (last, st["last_seq"]))
wait_for("all %d readings at the subscriber" % last,
         lambda: len({d["seq"] for d in decode_all(sub.lines())}) >= last, 20)
sub.stop()

rs = decode_all(sub.lines())
for d in rs:
    p = check_reading(d, device, t0, t1)
    if p:
        fail("bad reading %s: %s" % (d, p))
epochs = {d["epoch"] for d in rs}
if len(epochs) != 1:
    fail("expected one epoch, got %s" % epochs)
if st["epoch"] not in epochs:
    fail("status epoch %s is not the readings' %s" % (st["epoch"], epochs))
dups = check_coverage(rs, last)
if dups:
    fail("%d duplicates in a run without faults" % dups)
if max(d["seq"] for d in rs) != last:
    fail("a seq beyond the last one produced arrived")

count = sorted((d for d in rs if d["sensor"] == "count"), key=lambda d: d["seq"])
if len(count) < 10:
    fail("only %d counter readings" % len(count))
for i, d in enumerate(count):
    if d["metric"] != "count" or d["unit"] != "1" or d["value"] != 1000 + 2 * i:
        fail("counter reading %d is %s, expected value %d" % (i, d, 1000 + 2 * i))
    if d["tags"] != {"site": "ci", "rack": "r2"}:
        fail("counter tags %s (sensor tags must override agent tags)" % d["tags"])
ts = [d["ts"] for d in count]
if ts != sorted(ts):
    fail("counter timestamps go backwards")

env_r = [d for d in rs if d["sensor"] == "env"]
units = {"temperature": "Cel", "humidity": "%", "pressure": "Pa"}
ranges = {"temperature": (-40, 85), "humidity": (0, 100), "pressure": (30000, 110000)}
for d in env_r:
    if d["metric"] not in units or d["unit"] != units[d["metric"]]:
        fail("env reading with metric/unit %s/%s" % (d["metric"], d["unit"]))
    lo, hi = ranges[d["metric"]]
    if not lo <= d["value"] <= hi:
        fail("env %s value %s out of range" % (d["metric"], d["value"]))
    if d["tags"] != {"site": "ci", "rack": "r1"}:
        fail("env tags %s" % d["tags"])
# One sample's metrics share one timestamp and consecutive seqs.
by_ts = {}
for d in env_r:
    by_ts.setdefault(d["ts"], []).append(d)
for t, group in by_ts.items():
    if sorted(x["metric"] for x in group) != ["humidity", "pressure", "temperature"]:
        fail("env sample at %s has metrics %s" % (t, [x["metric"] for x in group]))
if any(d["sensor"] == "broken" for d in rs):
    fail("a failing sensor produced readings")
print("ok: %d readings (1..%d), %d counter exact, %d env valid" % (len(rs), last, len(count), len(env_r)))
wd.cleanup()
