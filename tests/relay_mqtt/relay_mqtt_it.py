#!/usr/bin/env python3
"""relay_mqtt_it.py - tern-relay's MQTT source with end-to-end receipts, and the
MQTT-to-Kafka bridge, against the real local stack (mosquitto without
persistence, Kafka, ClickHouse). tern-agent runs with ack = end-to-end, so it
deletes a reading only when the relay's receipt says it is stored.

Usage: relay_mqtt_it.py sigkill|shared|identity|bridge|acl|receipts

  sigkill   agent -> mosquitto -> relay -> ClickHouse; a relay that stores rows
            but sends no receipts is killed (forced duplicates), then the relay
            is SIGKILLed at random moments several times and mosquitto is
            restarted (it keeps nothing): every reading is in `readings FINAL`
            exactly once and the rollup counts each once.
  shared    two relays in one $share group split the load; one is SIGKILLed.
  identity  a device publishing another device_id on its own topic: rejected,
            with the reason, into the rejected table.
  bridge    agent -> mosquitto -> relay (mode = bridge) -> Kafka -> relay ->
            ClickHouse, exact; the bridge is SIGKILLed once.
  acl       the shipped production mosquitto config (no anonymous access,
            per-device ACLs) behind TLS, credentials from files: exact.
  receipts  the agent's side of the protocol with hand-made receipts: exact
            overlap acked, holes, repeats, other epochs, malformed, timeout.

Each test uses its own topic prefix, database and Kafka topic, so it does not
see other tests' traffic on the shared broker. Waits are for conditions with a
deadline."""
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent"))
from agentlib import AGENT, BIN, STACK, Agent, Workdir, fail, make_test_ca, spawn, stack_env  # noqa: E402

RELAY = os.path.join(BIN, "relay", "tern-relay")
ENV = stack_env()
CH_URL = ENV["TERN_CLICKHOUSE_URL"]
MQTT_HOST, MQTT_PORT = ENV["TERN_MQTT_HOST"], ENV["TERN_MQTT_PORT"]
KAFKA = ENV["TERN_KAFKA_BOOTSTRAP"]
PORT_BASE = int(os.environ.get("TERN_PORT_BASE", "18800"))
TAG = "rmq%d" % os.getpid()


def log(*a):
    print("[relay_mqtt %s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def wait_for(what, cond, timeout, step=0.2):
    """Like agentlib.wait_for, but tolerates a service that is restarting."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - a restarting service
            last = e
        if time.monotonic() > end:
            fail("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(step)


def ch(sql):
    req = urllib.request.Request(CH_URL + "/", data=sql.encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def ch_int(sql):
    return int(ch(sql).strip() or 0)


class Relay:
    """One tern-relay process on its own config file."""

    def __init__(self, wd, name, db, overrides):
        self.wd, self.name = wd, name
        self.log_path = os.path.join(wd.path, name + ".log")
        conf = {
            "kafka": {"brokers": KAFKA, "topic": TAG + "_" + name, "group": TAG + "_" + name,
                      "partitions": "2"},
            "clickhouse": {"url": CH_URL, "database": db},
            "batch": {"max_delay_ms": "200"},
            "mqtt": {"host": MQTT_HOST, "port": MQTT_PORT, "topic": TAG + "/+/readings", "group": TAG,
                     "receipt_topic": TAG + "/{device_id}/receipts", "client_id": TAG + "-" + name},
            "relay": {"source": "mqtt", "metrics_listen": ""},
        }
        for (sec, key), v in overrides.items():
            conf.setdefault(sec, {})[key] = v
        text = "".join("[%s]\n%s\n" % (s, "".join("%s = %s\n" % kv for kv in kvs.items()))
                       for s, kvs in conf.items())
        self.config = wd.file(name + ".ini", text)
        self.proc = None
        self.starts = 0

    def init(self):
        r = subprocess.run([RELAY, "--config", self.config, "init"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            fail("tern-relay init (%s) failed: %s" % (self.name, r.stderr))

    def start(self, wait_subscribed=True):
        self.logf = open(self.log_path, "a")
        self.proc = spawn([RELAY, "--config", self.config], stdout=self.logf, stderr=subprocess.STDOUT)
        self.starts += 1
        if wait_subscribed:
            n = self.starts
            wait_for("relay %s subscribed" % self.name,
                     lambda: self.alive() and self.log().count("mqtt: subscribed to") >= n, 30)

    def alive(self):
        if self.proc.poll() is not None:
            fail("tern-relay %s exited with %s; log:\n%s" % (self.name, self.proc.returncode, self.log()[-4000:]))
        return True

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("tern-relay %s did not stop after SIGTERM" % self.name)
        self.logf.close()
        text = self.log()
        if self.proc.returncode != 0 or "Sanitizer" in text or "runtime error:" in text:
            fail("tern-relay %s exited %d; log:\n%s" % (self.name, self.proc.returncode, text[-6000:]))


def make_agent(wd, device, prefill, extra="", port=None, prefix=None):
    """A prefilled agent (ack = end-to-end). extra: "key = value" lines for
    [uplink.mqtt] that replace or add to the defaults below."""
    data = os.path.join(wd.path, "data-" + device)
    prefix = prefix or TAG
    uplink = {
        "host": MQTT_HOST, "port": port or MQTT_PORT,
        "topic": prefix + "/{device_id}/readings", "receipt_topic": prefix + "/{device_id}/receipts",
        "ack": "end-to-end", "receipt_timeout": "3s", "retry_delay": "500ms",
        "reconnect_min": "200ms", "reconnect_max": "1s", "max_batch_readings": "250",
    }
    for line in extra.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            uplink[k.strip()] = v.strip()
    cfg = wd.file("agent-%s.ini" % device, """
[agent]
device_id = %s
data_dir = %s

[storage]
commit_ms = 100ms

[sensor.slow]
driver = sim
kind = counter
interval = 1h

[uplink.mqtt]
%s""" % (device, data, "".join("%s = %s\n" % kv for kv in uplink.items())))
    r = subprocess.run([AGENT, "--config", cfg, "--prefill", str(prefill)], capture_output=True, text=True)
    if r.returncode != 0:
        fail("prefill failed: " + r.stderr)
    return Agent(cfg, data, os.path.join(wd.path, "agent-%s.log" % device))


def drained(agent):
    st = agent.status()
    return st["queue_depth"] == 0 and st["uplink.mqtt.acked_seq"] == st["last_seq"] and st["last_seq"] > 0


def check_exact(db, device, n):
    """n distinct readings of device: n rows in readings FINAL, n distinct
    seqs 1..n, and the rollup counts n."""
    wait_for("%d rows of %s in %s.readings FINAL" % (n, device, db),
             lambda: ch_int("SELECT count() FROM %s.readings FINAL WHERE device_id = '%s'" % (db, device)) >= n,
             60)
    rows = ch_int("SELECT count() FROM %s.readings FINAL WHERE device_id = '%s'" % (db, device))
    uniq = ch_int("SELECT uniqExact(seq) FROM %s.readings WHERE device_id = '%s'" % (db, device))
    lo_hi = ch("SELECT min(seq), max(seq) FROM %s.readings WHERE device_id = '%s'" % (db, device)).split()
    rollup = ch_int("SELECT sum(readings) FROM %s.readings_1m WHERE device_id = '%s'" % (db, device))
    raw = ch_int("SELECT count() FROM %s.readings WHERE device_id = '%s'" % (db, device))
    if rows != n or uniq != n or lo_hi != ["1", str(n)] or rollup != n:
        fail("%s: want %d; FINAL rows %d, distinct seqs %d, seq range %s, rollup %d" % (device, n, rows, uniq, lo_hi,
                                                                                      rollup))
    log("exact: %d readings -> %d rows FINAL, rollup %d (%d physical rows at this moment)" % (n, rows, rollup, raw))


def finish_agent(agent, timeout=120):
    wait_for("the agent's queue fully receipted", lambda: drained(agent), timeout, 0.25)
    return agent.stop()


def test_sigkill():
    wd = Workdir("relay-mqtt-sigkill")
    db = TAG + "_sigkill"
    relay = Relay(wd, "r1", db, {})
    relay.init()
    N = 40000
    device = TAG + "-dev"
    agent = make_agent(wd, device, N, "drain_rate = 2500\n")
    rnd = random.Random(os.getpid())
    # First a relay whose receipts never arrive (the worst moment to die:
    # rows stored, receipts not sent): the agent must re-send what it stored,
    # and the copies must deduplicate.
    mport = PORT_BASE + 73
    mute = Relay(wd, "mute", db, {("mqtt", "receipts"): "false",
                                  ("relay", "metrics_listen"): "127.0.0.1:%d" % mport})
    mute.start()
    agent.start()
    wait_for("rows stored without receipts", lambda: metric(mport, "tern_relay_rows_inserted_total") >= 2000, 60)
    if metric(mport, "tern_relay_receipts_published_total") != 0 or agent.status()["uplink.mqtt.acked_seq"] != 0:
        fail("receipts = false published receipts")
    stored_unreceipted = metric(mport, "tern_relay_rows_inserted_total")
    mute.kill()
    log("relay without receipts SIGKILLed after storing %d rows" % stored_unreceipted)
    relay.start()

    def acked():
        return agent.status()["uplink.mqtt.acked_seq"]

    def kill_while_flowing(i):
        # A random moment while readings are flowing (mid-batch, mid-insert,
        # between an insert and its receipts): first some progress since the
        # last restart, then a random delay.
        prev = acked()
        wait_for("receipts flowing again", lambda: acked() > prev + 300 or drained(agent), 60, 0.05)
        time.sleep(rnd.uniform(0.0, 0.8))
        at = acked()
        relay.kill()
        log("relay SIGKILLed (%d), agent acked %d of %d" % (i, at, N))
        time.sleep(rnd.uniform(0.0, 0.5))
        relay.start(wait_subscribed=False)

    kill_while_flowing(1)
    kill_while_flowing(2)
    # mosquitto forgets everything it held: sessions, queued messages and
    # receipts in flight.
    r = subprocess.run([STACK, "down", "mosquitto"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("stack down mosquitto: " + r.stderr)
    log("mosquitto stopped, agent acked %d" % acked())
    time.sleep(rnd.uniform(0.2, 1.0))
    r = subprocess.run([STACK, "up", "mosquitto"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("stack up mosquitto: " + r.stderr)
    log("mosquitto restarted (no persistence)")
    kill_while_flowing(3)
    kill_while_flowing(4)
    if drained(agent):
        fail("the backlog drained before the faults were over: nothing was tested (raise N)")
    last = finish_agent(agent, 180)
    check_exact(db, device, last)
    log("agent re-sent after %d receipt timeout(s)" % agent.log().count("no receipt within"))
    relay.stop()
    wd.cleanup()


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^%s(?:\{[^}]*\})? (\d+)" % name, text, re.M)
    return int(m.group(1)) if m else 0


def test_shared():
    wd = Workdir("relay-mqtt-shared")
    db = TAG + "_shared"
    ports = (PORT_BASE + 71, PORT_BASE + 72)
    a = Relay(wd, "a", db, {("relay", "metrics_listen"): "127.0.0.1:%d" % ports[0]})
    b = Relay(wd, "b", db, {("relay", "metrics_listen"): "127.0.0.1:%d" % ports[1]})
    a.init()
    a.start()
    b.start()
    N = 20000
    agents = [make_agent(wd, "%s-d%d" % (TAG, i), N // 2, "drain_rate = 2000\n") for i in range(2)]
    for ag in agents:
        ag.start()
    name = "tern_relay_messages_consumed_total"
    wait_for("both relays consuming from the shared subscription",
             lambda: metric(ports[0], name) > 0 and metric(ports[1], name) > 0, 60)
    log("shared: relay a consumed %d, b %d messages; killing a" % (metric(ports[0], name), metric(ports[1], name)))
    a.kill()
    for i, ag in enumerate(agents):
        last = finish_agent(ag, 120)
        check_exact(db, "%s-d%d" % (TAG, i), last)
    receipts = metric(ports[1], "tern_relay_receipts_published_total")
    if receipts < 1:
        fail("relay b reports no receipts published")
    log("shared: relay b published %d receipts" % receipts)
    b.stop()
    wd.cleanup()


def test_identity():
    wd = Workdir("relay-mqtt-identity")
    db = TAG + "_identity"
    relay = Relay(wd, "r", db, {})
    relay.init()
    relay.start()
    line = ('{"v":1,"device_id":"%s","sensor":"env","metric":"temperature","value":21.5,"unit":"Cel",'
            '"ts":"2026-11-25T11:38:05.123Z","epoch":"00c0ffee00c0ffee","seq":%d}')
    own, spoof = TAG + "-a", TAG + "-b"
    topic = "%s/%s/readings" % (TAG, own)
    # One message: a reading of its own, then one claiming to be another device.
    payload = line % (own, 1) + "\n" + line % (spoof, 2)
    r = subprocess.run(["mosquitto_pub", "-h", MQTT_HOST, "-p", MQTT_PORT, "-q", "1", "-t", topic, "-m", payload],
                       capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        fail("mosquitto_pub: " + r.stderr)
    wait_for("the spoofed reading in %s.rejected" % db,
             lambda: ch_int("SELECT count() FROM %s.rejected WHERE src_topic = '%s'" % (db, topic)) >= 1, 30)
    reason = ch("SELECT reason FROM %s.rejected WHERE src_topic = '%s' FORMAT TabSeparatedRaw" % (db, topic)).strip()
    want = "device_id '%s' does not match the topic %s" % (spoof, topic)
    if reason != want:
        fail("rejected reason %r, want %r" % (reason, want))
    wait_for("the device's own reading stored",
             lambda: ch_int("SELECT count() FROM %s.readings FINAL WHERE device_id = '%s'" % (db, own)) == 1, 30)
    if ch_int("SELECT count() FROM %s.readings WHERE device_id = '%s'" % (db, spoof)) != 0:
        fail("the spoofed reading reached the readings table")
    log("identity: spoofed reading rejected with reason %r" % reason)
    relay.stop()
    wd.cleanup()


def test_bridge():
    wd = Workdir("relay-mqtt-bridge")
    db = TAG + "_bridge"
    ktopic = TAG + "_bridge_topic"
    bridge = Relay(wd, "bridge", db, {("relay", "mode"): "bridge", ("kafka", "topic"): ktopic})
    sink = Relay(wd, "sink", db, {("relay", "source"): "kafka", ("kafka", "topic"): ktopic})
    bridge.init()  # the Kafka topic
    sink.init()    # the ClickHouse schema
    bridge.start()
    sink.logf = open(sink.log_path, "a")
    sink.proc = spawn([RELAY, "--config", sink.config], stdout=sink.logf, stderr=subprocess.STDOUT)
    N = 12000
    device = TAG + "-br"
    agent = make_agent(wd, device, N, "drain_rate = 4000\n")
    agent.start()
    wait_for("part of the stream receipted through Kafka",
             lambda: agent.status()["uplink.mqtt.acked_seq"] > N // 4, 90)
    bridge.kill()
    log("bridge SIGKILLed at agent acked %d" % agent.status()["uplink.mqtt.acked_seq"])
    bridge.start()
    # Device identity on the bridge: a reading naming another device on this
    # device's topic is not forwarded (counted and logged instead).
    spoof = TAG + "-spoof"
    line = ('{"v":1,"device_id":"%s","sensor":"env","metric":"temperature","value":1,"unit":"Cel",'
            '"ts":"2026-11-25T11:38:05.123Z","epoch":"00c0ffee00c0ffee","seq":1}' % spoof)
    r = subprocess.run(["mosquitto_pub", "-h", MQTT_HOST, "-p", MQTT_PORT, "-q", "1",
                        "-t", "%s/%s/readings" % (TAG, device), "-m", line], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        fail("mosquitto_pub: " + r.stderr)
    wait_for("the bridge dropping the spoofed reading",
             lambda: "dropped a reading on %s/%s/readings whose device_id is not" % (TAG, device) in bridge.log(), 30)
    last = finish_agent(agent, 120)
    check_exact(db, device, last)
    if ch_int("SELECT count() FROM %s.readings WHERE device_id = '%s'" % (db, spoof)) != 0:
        fail("the bridge forwarded a spoofed reading")
    bridge.stop()
    sink.stop()
    wd.cleanup()


def test_acl():
    """The shipped production broker config (compose/mosquitto: no anonymous
    access, per-device ACLs), here behind TLS, with credentials from files on
    both sides: the relay may take its $share subscription and write
    receipts, the device may read its receipts, and the end-to-end path is
    exact."""
    import shutil
    import socket
    wd = Workdir("relay-mqtt-acl")
    port = PORT_BASE + 61
    conf = open(os.path.join(os.path.dirname(STACK), "..", "mosquitto", "mosquitto.conf")).read()
    conf = conf.replace("/mosquitto/config/", wd.path + "/").replace("/mosquitto/data/", wd.path + "/")
    P = wd.path

    make_test_ca(wd)
    conf = re.sub(r"^listener 1883$", "listener %d 127.0.0.1\ncafile %s/ca.crt\ncertfile %s/server.crt\n"
                  "keyfile %s/server.key" % (port, P, P, P), conf, flags=re.M)
    wd.file("mosquitto.conf", conf)
    shutil.copy(os.path.join(os.path.dirname(STACK), "..", "mosquitto", "acl"), os.path.join(wd.path, "acl"))
    passwd = wd.file("passwd", "")
    device = TAG + "-acl"
    users = {device: "device-secret", "tern-relay": "relay-secret"}
    for u, pw in users.items():
        subprocess.run(["mosquitto_passwd", "-b", passwd, u, pw], check=True)
        wd.file(u + ".pw", pw + "\n")
    os.chmod(wd.path, 0o755)
    for f in os.listdir(wd.path):  # mosquitto started as root drops privileges
        os.chmod(os.path.join(wd.path, f), 0o644)
    broker = spawn(["mosquitto", "-c", os.path.join(wd.path, "mosquitto.conf")],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("the private mosquitto", lambda: socket.create_connection(("127.0.0.1", port), 0.2).close() or True, 20)
    db = TAG + "_acl"
    relay = Relay(wd, "r", db, {("mqtt", "host"): "localhost", ("mqtt", "port"): str(port),
                                ("mqtt", "tls_ca_file"): P + "/ca.crt", ("mqtt", "topic"): "tern/+/readings",
                                ("mqtt", "receipt_topic"): "tern/{device_id}/receipts",
                                ("mqtt", "username"): "tern-relay",
                                ("mqtt", "password_file"): os.path.join(wd.path, "tern-relay.pw")})
    relay.init()
    relay.start()
    if "refused" in relay.log():
        fail("the relay's subscription was refused:\n" + relay.log())
    N = 5000
    agent = make_agent(wd, device, N, "host = localhost\ntls_ca_file = %s/ca.crt\nusername = %s\npassword_file = %s\n"
                       % (P, device, os.path.join(wd.path, device + ".pw")), port=port, prefix="tern")
    agent.start()
    last = finish_agent(agent, 90)
    check_exact(db, device, last)
    if "broker refused a receipt" in relay.log():
        fail("the ACL refused the relay's receipts")
    relay.stop()
    broker.terminate()
    broker.wait()
    wd.cleanup()


def test_receipts():
    """The agent's side of the protocol, exactly, with receipts published by
    hand (no relay): a receipt acks exactly the overlap with what is pending,
    a hole in the middle stays pending, repeats / other epochs / malformed
    receipts change nothing, and what never gets a receipt is re-sent after
    receipt_timeout."""
    wd = Workdir("relay-mqtt-receipts")
    device = TAG + "-rc"
    agent = make_agent(wd, device, 100, "receipt_timeout = 600s\nmax_batch_readings = 40\n")
    rtopic = "%s/%s/receipts" % (TAG, device)

    def receipt(payload):
        r = subprocess.run(["mosquitto_pub", "-h", MQTT_HOST, "-p", MQTT_PORT, "-q", "1", "-t", rtopic, "-m", payload],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            fail("mosquitto_pub: " + r.stderr)

    agent.start()
    # Everything sent and awaiting its receipt.
    st = wait_for("the agent sent its queue", lambda: (lambda s: s["uplink.mqtt.in_flight"] == s["last_seq"] and s)(
        agent.status()), 30)
    last, epoch = st["last_seq"], st["epoch"]

    def state():
        s_ = agent.status()
        return s_["uplink.mqtt.acked_seq"], s_["uplink.mqtt.in_flight"]

    def expect(what, want):
        end = time.monotonic() + 15
        while state() != want:
            if time.monotonic() > end:
                fail("%s: (acked_seq, awaiting receipt) is %r, want %r" % (what, state(), want))
            time.sleep(0.1)
        log("receipts: %s -> %r" % (what, want))

    # PUBACKs alone ack nothing.
    expect("PUBACK only", (0, last))
    receipt('{"v":1,"epoch":"%s","ranges":[[1,10],[20,30]]}' % epoch)
    expect("[1,10],[20,30]", (10, last - 21))
    receipt('{"v":1,"epoch":"%s","ranges":[[1,10],[20,30]]}' % epoch)
    receipt('{"v":1,"epoch":"%016x","ranges":[[1,%d]]}' % (int(epoch, 16) ^ 1, last))
    receipt('{"v":1,"epoch":"%s","ranges":[[5,1]]}' % epoch)
    receipt('not a receipt')
    expect("repeat, other epoch, malformed", (10, last - 21))
    # A hole in the middle of a pending run: [11,19] stays split around 15.
    receipt('{"v":1,"epoch":"%s","ranges":[[15,15],[31,%d]]}' % (epoch, last))
    expect("[15,15],[31,last]", (10, 8))
    receipt('{"v":1,"epoch":"%s","ranges":[[11,14],[16,19]]}' % (epoch,))
    expect("[11,14],[16,19]", (last, 0))
    wait_for("the queue emptied", lambda: agent.status()["queue_depth"] == 0, 15)
    if "ignoring a malformed receipt" not in agent.log():
        fail("the malformed receipt was not reported")
    agent.stop()

    # Without receipts, readings are re-sent after receipt_timeout, and not
    # deleted.
    agent2 = make_agent(wd, device + "t", 50, "receipt_timeout = 1s\nretry_delay = 200ms\n")
    agent2.start()
    wait_for("a receipt timeout", lambda: agent2.status()["uplink.mqtt.rewinds"] >= 2, 30)
    st = agent2.status()
    if st["uplink.mqtt.acked_seq"] != 0 or st["queue_depth"] != st["last_seq"]:
        fail("readings were acked without a receipt: %r" % st)
    log("receipts: no receipt -> %d rewinds, nothing deleted" % st["uplink.mqtt.rewinds"])
    agent2.stop()
    wd.cleanup()


TESTS = {"sigkill": test_sigkill, "shared": test_shared, "identity": test_identity, "bridge": test_bridge,
         "acl": test_acl, "receipts": test_receipts}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        sys.exit("usage: relay_mqtt_it.py " + "|".join(TESTS))
    t0 = time.monotonic()
    TESTS[sys.argv[1]]()
    log("ok: %s in %.1f s" % (sys.argv[1], time.monotonic() - t0))
