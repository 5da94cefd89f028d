#!/usr/bin/env python3
"""tern-agent with [uplink.kafka] against the local stack's real broker.

Usage: test_agent_kafka.py CASE TERN_AGENT
What reached Kafka is read back with a real consumer (kcat) and compared
with what the agent's queue assigned: nothing lost, duplicates only after a
crash or outage and then identical and identifiable by (epoch, seq).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("TERN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(SRC, "compose", "local", "stack")
BASE = int(os.environ.get("TERN_PORT_BASE", "18800"))
BOOTSTRAP = "127.0.0.1:%d" % (BASE + 2)
UNUSED_PORT = BASE + 9
DEVICE = "kafka-agent-test"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def stack(*args):
    subprocess.run([STACK] + list(args), check=True, stdout=subprocess.DEVNULL)


class Agent:
    def __init__(self, binary, workdir, topic, brokers=BOOTSTRAP, sensor_interval=None,
                 extra_uplink=""):
        self.binary = binary
        self.dir = workdir
        self.conf = os.path.join(workdir, "agent.ini")
        self.log = os.path.join(workdir, "agent.log")
        sensor = ""
        if sensor_interval:
            sensor = ("[sensor.env1]\ndriver = sim\nkind = env\nseed = 7\ninterval = %s\n"
                      % sensor_interval)
        else:  # the agent wants a sensor section; this one never polls
            sensor = "[sensor.env1]\ndriver = sim\nenabled = false\n"
        with open(self.conf, "w") as f:
            f.write("[agent]\ndevice_id = %s\ndata_dir = %s\nshutdown_timeout = 10s\n"
                    "[storage]\ncommit_ms = 100ms\n%s"
                    "[uplink.kafka]\nbrokers = %s\ntopic = %s\ndrain_rate = 0\n"
                    "retry_delay = 500ms\n%s"
                    % (DEVICE, os.path.join(workdir, "data"), sensor, brokers, topic,
                       extra_uplink))
        self.proc = None

    def check(self):
        p = subprocess.run([self.binary, "-c", self.conf, "--check"], capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 0:
            fail("config rejected:\n" + p.stderr)

    def prefill(self, n):
        p = subprocess.run([self.binary, "-c", self.conf, "--prefill", str(n)],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            fail("prefill failed:\n" + p.stderr)

    def start(self):
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT)

    def status(self):
        p = subprocess.run([self.binary, "status", "-c", self.conf], capture_output=True,
                           text=True, timeout=10)
        if p.returncode != 0:
            return {}
        return dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)

    def wait(self, pred, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        st = {}
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                fail("agent exited (%d) while waiting for %s:\n%s" %
                     (self.proc.returncode, what, self.read_log()[-3000:]))
            st = self.status()
            if st and pred(st):
                return st
            time.sleep(0.2)
        fail("timed out after %ss waiting for %s; status:\n%s\nlog:\n%s" %
             (timeout_s, what, st, self.read_log()[-3000:]))

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.logf.close()
        self.proc = None
        log = self.read_log()
        if "Sanitizer" in log or "runtime error:" in log:
            fail("sanitizer report:\n" + log[-6000:])
        if sig == signal.SIGTERM and rc != 0:
            fail("agent exited %d after SIGTERM:\n%s" % (rc, log[-3000:]))
        return rc

    def read_log(self):
        with open(self.log) as f:
            return f.read()


def consume(topic):
    """(epoch, seq) -> list of values, from every message of the topic."""
    p = subprocess.run(["kcat", "-C", "-b", BOOTSTRAP, "-t", topic, "-o", "beginning", "-e", "-q",
                        "-f", "%k\t%h\t%s\n"], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        fail("kcat failed: " + p.stderr)
    got = {}
    for line in p.stdout.splitlines():
        key, hdrs, value = line.split("\t", 2)
        h = dict(x.split("=", 1) for x in hdrs.split(",") if "=" in x)
        if key != DEVICE:
            fail("key %r is not the device_id" % key)
        m = re.search(r'"epoch":"([0-9a-f]{16})","seq":(\d+)', value)
        if not m or h.get("epoch") != m.group(1) or h.get("seq") != m.group(2):
            fail("headers %r do not match value %r" % (h, value))
        got.setdefault((m.group(1), int(m.group(2))), []).append(value)
    return got


def check_nothing_lost(got, epoch, upto, allow_dups):
    """Every seq 1..upto of epoch is in Kafka; copies are identical."""
    seqs = {s for (e, s) in got if e == epoch}
    missing = set(range(1, upto + 1)) - seqs
    if missing:
        fail("%d readings lost, e.g. seq %s" % (len(missing), sorted(missing)[:10]))
    dups = 0
    for k, vals in got.items():
        if len(vals) > 1:
            dups += len(vals) - 1
            if len(set(vals)) != 1:
                fail("duplicates of %s differ: %s" % (k, vals[:2]))
    if dups and not allow_dups:
        fail("%d duplicates on a clean run" % dups)
    return dups


def new_topic(case, partitions=1):
    name = "tern_ak_%s_%d" % (case, os.getpid())
    stack("topic", name, str(partitions))
    return name


# ---- cases --------------------------------------------------------------

def case_exact(binary, work):
    """A pre-filled queue is delivered exactly: every (epoch, seq) once."""
    topic = new_topic("exact", 2)
    a = Agent(binary, work, topic)
    a.check()
    n = 50000
    a.prefill(n)
    a.start()
    st = a.wait(lambda s: int(s.get("uplink.kafka.acked_seq", 0)) >= n, 120, "all acked")
    epoch = st["epoch"]
    a.stop()
    got = consume(topic)
    check_nothing_lost(got, epoch, n, allow_dups=False)
    if len(got) != n:
        fail("want exactly %d readings, got %d" % (n, len(got)))
    if st.get("uplink.kafka.state") != "connected":
        fail("state %r" % st.get("uplink.kafka.state"))
    print("ok: %d readings, exact set" % n)


def case_broker_down(binary, work):
    """Broker stopped for 30 s during production, then started: nothing lost."""
    topic = new_topic("down")
    a = Agent(binary, work, topic, sensor_interval="2ms",
              extra_uplink="message_timeout_ms = 15000\n")
    a.start()
    try:
        a.wait(lambda s: int(s.get("uplink.kafka.acked", 0)) > 1000, 60, "first acks")
        stack("down", "kafka")
        a.wait(lambda s: s.get("uplink.kafka.connected") == "0", 60, "the outage noticed")
        t0 = time.monotonic()
        time.sleep(30)  # the outage under test, not a wait for a condition
        st_down = a.status()
        stack("up", "kafka")
        print("broker down %.1f s; queued meanwhile: %s" % (time.monotonic() - t0,
                                                            st_down.get("queue_depth")))
        target = int(st_down["last_seq"])
        st = a.wait(lambda s: int(s.get("uplink.kafka.acked_seq", 0)) >= target, 120,
                    "backlog delivered after the restart")
    finally:
        stack("up", "kafka")
    a.stop()
    log = a.read_log()
    if "uplink.kafka: cannot reach Kafka brokers %s" % BOOTSTRAP not in log:
        fail("outage not reported:\n" + log[-3000:])
    got = consume(topic)
    dups = check_nothing_lost(got, st["epoch"], int(st["uplink.kafka.acked_seq"]), True)
    print("ok: nothing lost across the outage; %d readings in Kafka, %d duplicates" %
          (len(got), dups))


def case_sigkill(binary, work):
    """SIGKILL during heavy production: nothing lost after the restart,
    duplicates identical and identifiable by (epoch, seq)."""
    topic = new_topic("kill")
    a = Agent(binary, work, topic, sensor_interval="1ms")
    n = 200000
    a.prefill(n)
    a.start()
    a.wait(lambda s: int(s.get("uplink.kafka.acked", 0)) > n // 4, 120, "delivery under way")
    st_before = a.status()
    rc = a.stop(signal.SIGKILL)
    if rc != -signal.SIGKILL:
        fail("agent did not die of SIGKILL: %d" % rc)
    a.start()
    st = a.wait(lambda s: int(s.get("uplink.kafka.acked_seq", 0)) >= int(st_before["last_seq"]),
                180, "everything from before the kill delivered")
    a.stop()
    got = consume(topic)
    epoch = st["epoch"]
    if epoch != st_before["epoch"]:
        fail("epoch changed across a crash: %s -> %s" % (st_before["epoch"], epoch))
    dups = check_nothing_lost(got, epoch, int(st["uplink.kafka.acked_seq"]), True)
    print("ok: killed at acked=%s; after restart nothing lost; %d duplicates" %
          (st_before.get("uplink.kafka.acked"), dups))


def case_missing_topic(binary, work):
    """A missing topic: a clear error, readings stay queued, delivery starts
    once the topic exists."""
    topic = "tern_ak_missing_%d" % os.getpid()
    a = Agent(binary, work, topic, sensor_interval="20ms")
    a.start()
    st = a.wait(lambda s: s.get("uplink.kafka.state") == "topic_missing", 60, "topic_missing")
    want = "topic '%s' does not exist on %s" % (topic, BOOTSTRAP)
    if want not in st.get("uplink.kafka.last_error", ""):
        fail("status last_error %r" % st.get("uplink.kafka.last_error"))
    a.wait(lambda s: int(s.get("queue_depth", 0)) > 50, 60, "readings queued")
    if int(a.status().get("uplink.kafka.sent", -1)) != 0:
        fail("readings handed to librdkafka while the topic is missing")
    stack("topic", topic, "1")
    st = a.wait(lambda s: int(s.get("uplink.kafka.acked", 0)) > 50, 60, "delivery after create")
    a.stop()
    log = a.read_log()
    if log.count(want) != 1:
        fail("missing-topic error not logged exactly once:\n" + log[-3000:])
    check_nothing_lost(consume(topic), st["epoch"], int(st["uplink.kafka.acked_seq"]), False)
    print("ok: %s" % want)


def case_unreachable(binary, work):
    """Unreachable broker: a clear error in the log and in status."""
    addr = "127.0.0.1:%d" % UNUSED_PORT
    a = Agent(binary, work, "sensor_readings", brokers=addr, sensor_interval="20ms")
    a.start()
    want = "cannot reach Kafka brokers %s" % addr
    st = a.wait(lambda s: want in s.get("uplink.kafka.last_error", ""), 60, "unreachable error")
    if "Connection refused" not in st["uplink.kafka.last_error"]:
        fail("cause missing: %r" % st["uplink.kafka.last_error"])
    if st.get("uplink.kafka.connected") != "0" or st.get("uplink.kafka.sent") != "0":
        fail("status: %s" % st)
    a.wait(lambda s: int(s.get("queue_depth", 0)) > 50, 60, "readings queued")
    a.stop()
    log = a.read_log()
    if log.count("error: uplink.kafka: " + want) != 1:
        fail("unreachable error not logged exactly once:\n" + log[-3000:])
    print("ok: %s" % st["uplink.kafka.last_error"])


def case_with_mqtt(binary, work):
    """MQTT and Kafka uplinks side by side, each with its own cursor: while
    the Kafka topic is missing MQTT delivers everything and the queue keeps
    the readings for Kafka; once the topic exists Kafka catches up and the
    queue empties."""
    topic = "tern_ak_mqtt_%d" % os.getpid()
    mqtt = ("[uplink.mqtt]\nhost = 127.0.0.1\nport = %d\ntopic = tern/%s/readings\n"
            "drain_rate = 0\n" % (BASE + 1, topic))
    a = Agent(binary, work, topic)
    with open(a.conf, "a") as f:
        f.write(mqtt)
    a.check()
    n = 20000
    a.prefill(n)
    a.start()
    a.wait(lambda s: int(s.get("uplink.mqtt.acked_seq", 0)) >= n, 120, "MQTT delivered all")
    st = a.status()
    if st.get("uplink.kafka.state") != "topic_missing" or int(st.get("queue_depth", 0)) != n:
        fail("want Kafka topic_missing and %d queued for it: %s" % (n, st))
    stack("topic", topic, "1")
    st = a.wait(lambda s: int(s.get("uplink.kafka.acked_seq", 0)) >= n, 120, "Kafka caught up")
    a.wait(lambda s: int(s.get("queue_depth", -1)) == 0, 60, "queue emptied")
    a.stop()
    got = consume(topic)
    check_nothing_lost(got, st["epoch"], n, allow_dups=False)
    if len(got) != n:
        fail("want exactly %d readings in Kafka, got %d" % (n, len(got)))
    print("ok: MQTT and Kafka each delivered %d with their own cursors" % n)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        print("usage: %s {%s} TERN_AGENT" % (sys.argv[0], ",".join(CASES)))
        sys.exit(2)
    work = tempfile.mkdtemp(prefix="tern-ak-")
    try:
        CASES[sys.argv[1]](sys.argv[2], work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")
