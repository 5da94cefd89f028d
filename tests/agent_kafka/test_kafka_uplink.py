#!/usr/bin/env python3
"""Kafka uplink (agent/uplink_kafka.c) against the local stack's real broker.

Usage: test_kafka_uplink.py CASE HARNESS
The harness (kafka_uplink_harness.c) plays the agent's forwarder and checks
the event contract itself (every reading acked or failed exactly once per
send, no event for a seq that was not in flight); these cases check what
reached Kafka, read back with kcat, and the error texts an operator sees.
"""
import os
import re
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("TERN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(SRC, "compose", "local", "stack")
BASE = int(os.environ.get("TERN_PORT_BASE", "18800"))
BOOTSTRAP = "127.0.0.1:%d" % (BASE + 2)
UNUSED_PORT = BASE + 9  # inside our block, never listened on


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def wait_until(pred, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    fail("timed out after %ss waiting for %s" % (timeout_s, what))


def stack(*args):
    subprocess.run([STACK] + list(args), check=True, stdout=subprocess.DEVNULL)


def new_topic(case, partitions=1):
    name = "tern_uk_%s_%d" % (case, os.getpid())
    stack("topic", name, str(partitions))
    return name


def harness_cmd(harness, opts, *flags):
    cmd = [harness]
    for k, v in opts:
        cmd += ["-o", "%s=%s" % (k, v)]
    return cmd + [str(f) for f in flags]


def run_harness(harness, opts, *flags, timeout=120):
    p = subprocess.run(harness_cmd(harness, opts, *flags), capture_output=True, text=True,
                       timeout=timeout)
    kv = {}
    for line in p.stdout.splitlines():
        if "=" in line and not line.startswith("event="):
            k, v = line.split("=", 1)
            kv[k] = v
    return p.returncode, kv, p.stdout, p.stderr


def consume(topic, expect_at_least):
    """All messages of topic as (key, headers dict, value), read until the
    end of every partition once at least expect_at_least were seen."""
    msgs = []

    def read():
        p = subprocess.run(["kcat", "-C", "-b", BOOTSTRAP, "-t", topic, "-o", "beginning", "-e",
                            "-q", "-f", "%k\t%h\t%p\t%s\n"],
                           capture_output=True, text=True, timeout=60)
        msgs.clear()
        for line in p.stdout.splitlines():
            key, hdrs, part, value = line.split("\t", 3)
            h = dict(x.split("=", 1) for x in hdrs.split(",") if "=" in x)
            msgs.append((key, h, int(part), value))
        return len(msgs) >= expect_at_least

    wait_until(read, 60, "%d messages in %s" % (expect_at_least, topic))
    return msgs


def check_messages(msgs, device, epoch_hex, first, n, allow_dups=False):
    """Every (device, epoch, seq) in first..first+n-1 is there; value, key and
    headers agree; duplicates only when allowed, and then identical."""
    seen = {}
    for key, h, part, value in msgs:
        m_seq = re.search(r'"seq":(\d+)', value)
        m_epoch = re.search(r'"epoch":"([0-9a-f]{16})"', value)
        m_dev = re.search(r'"device_id":"([^"]*)"', value)
        if not (m_seq and m_epoch and m_dev):
            fail("undecodable message value: %r" % value)
        if m_dev.group(1) != device:
            continue
        seq = int(m_seq.group(1))
        if key != device:
            fail("key %r != device_id %r" % (key, device))
        if h.get("epoch") != m_epoch.group(1) or h.get("seq") != str(seq):
            fail("headers %r disagree with value %r" % (h, value))
        if m_epoch.group(1) != epoch_hex:
            fail("unexpected epoch in %r" % value)
        if not value.startswith('{"v":1,') or "\n" in value:
            fail("not one wire-format line: %r" % value)
        if seq in seen:
            if not allow_dups:
                fail("duplicate seq %d" % seq)
            if seen[seq][1] != value:
                fail("duplicate seq %d with a different value" % seq)
        seen[seq] = (part, value)
    want = set(range(first, first + n))
    missing = want - set(seen)
    extra = set(seen) - want
    if missing:
        fail("%d readings missing, e.g. seq %s" % (len(missing), sorted(missing)[:5]))
    if extra:
        fail("unexpected seqs %s" % sorted(extra)[:5])
    return seen


def expect_ok(rc, kv, out, err, what):
    if rc != 0 or kv.get("result") != "ok":
        fail("%s: harness rc=%d\n%s\n%s" % (what, rc, out[-3000:], err[-3000:]))


# ---- cases ------------------------------------------------------------------

def case_options(h):
    """Option validation: messages name the line and the key."""
    b = ("brokers", BOOTSTRAP)
    bad = [
        ([b, ("lingr_ms", "5")], "line 2: unknown option 'lingr_ms'", "did you mean 'linger_ms'"),
        ([b, ("kafka.no.such.prop", "1")], "line 2: kafka.no.such.prop:",
         "No such configuration property"),
        ([b, ("kafka.linger.ms", "abc")], "line 2: kafka.linger.ms:", "Invalid value"),
        ([b, ("kafka.acks", "1")], "line 2: kafka.acks cannot be set", "acks=all"),
        ([b, ("kafka.enable.idempotence", "false")], "line 2: kafka.enable.idempotence", ""),
        ([b, ("kafka.sasl.password", "x")], "line 2: kafka.sasl.password cannot be set",
         "sasl_password_file"),
        ([b, ("compression", "brotli")], "line 2: compression:", "lz4"),
        ([b, ("max_in_flight", "0")], "line 2: max_in_flight:", "integer"),
        ([b, ("linger_ms", "-1")], "line 2: linger_ms:", "integer"),
        ([("topic", "x")], "'brokers' is required", ""),
        ([b, ("sasl_mechanism", "PLAIN"), ("sasl_username", "u")], "line 2: sasl_mechanism",
         "exactly one of sasl_password_file and sasl_password_env"),
        ([b, ("sasl_mechanism", "GSSAPI")], "line 2: sasl_mechanism", "SCRAM-SHA-512"),
        ([b, ("sasl_mechanism", "PLAIN"), ("sasl_username", "u"),
          ("sasl_password_env", "TERN_TEST_SURELY_UNSET")],
         "line 4: sasl_password_env", "'TERN_TEST_SURELY_UNSET' is not set"),
        ([b, ("sasl_mechanism", "PLAIN"), ("sasl_username", "u"),
          ("sasl_password_file", "/nonexistent/pw")], "line 4: sasl_password_file",
         "cannot open '/nonexistent/pw'"),
        ([b, ("ssl_ca", "/nonexistent/ca.pem")], "line 2: ssl_ca:", ""),
    ]
    for opts, want1, want2 in bad:
        rc, kv, out, err = run_harness(h, opts, "-n", 0, "-t", 100)
        msg = kv.get("open_error", "")
        if rc != 2 or want1 not in msg or want2 not in msg:
            fail("options %r: want open error with %r and %r, got rc=%d %r" %
                 (opts, want1, want2, rc, msg))
        print("ok: %s" % msg)

    # Accepted: pass-through properties, every named option.
    topic = new_topic("options")
    rc, kv, out, err = run_harness(h, [b, ("topic", topic), ("kafka.socket.keepalive.enable", "true"),
                                       ("compression", "zstd"), ("linger_ms", "5"),
                                       ("batch_size", "500000"), ("batch_num_messages", "5000"),
                                       ("max_in_flight", "1000"), ("message_timeout_ms", "60000"),
                                       ("topic_check_ms", "5000"), ("client_id", "uk-test"),
                                       ("tls", "false")],
                                   "-n", 3000, "-q")
    expect_ok(rc, kv, out, err, "all options")
    check_messages(consume(topic, 3000), "kafka-test", "00c0ffee00c0ffee", 1, 3000)

    # The SASL password never shows, even when authentication fails.
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("s3cr3t-pw-XYZ\n")
    try:
        rc, kv, out, err = run_harness(h, [b, ("topic", topic), ("sasl_mechanism", "SCRAM-SHA-256"),
                                           ("sasl_username", "bob"), ("sasl_password_file", f.name)],
                                       "-n", 10, "-w", "authentication with", "-t", 20000, "-v")
    finally:
        os.unlink(f.name)
    if rc != 0 or "SASL" not in kv.get("last_error", ""):
        fail("SASL against a plaintext broker: want an authentication error, got rc=%d %r" %
             (rc, kv.get("last_error")))
    if "s3cr3t-pw-XYZ" in out + err:
        fail("the SASL password appeared in the output")
    if err.count("error: uplink.kafka: authentication") != 1:
        fail("authentication error not logged exactly once:\n" + err[-2000:])
    if kv.get("sent") != "0":
        fail("readings were handed over while authentication fails")
    print("ok: %s" % kv["last_error"])


def case_delivery(h):
    """Exact set delivered: two devices (keys) on a 3-partition topic, every
    reading once, key = device_id, headers epoch and seq, per-device order."""
    topic = new_topic("delivery", 3)
    opts = [("brokers", BOOTSTRAP), ("topic", topic), ("max_in_flight", "5000")]
    for dev, epoch, first, n in (("dev-a", "00000000000000aa", 1, 20000),
                                 ("dev-b", "bbbbbbbbbbbbbbbb", 1000001, 7000)):
        rc, kv, out, err = run_harness(h, opts, "-n", n, "-d", dev, "-e", epoch, "-s", first, "-q")
        expect_ok(rc, kv, out, err, dev)
        if kv["failed_readings"] != "0" or kv["acked"] != str(n):
            fail("%s: %s" % (dev, out))
        # Coalescing: far fewer events than readings.
        if int(kv["acked_events"]) > n // 20:
            fail("%s: %s acked events for %d readings: not coalesced" % (dev, kv["acked_events"], n))
    msgs = consume(topic, 27000)
    if len(msgs) != 27000:
        fail("want 27000 messages, got %d" % len(msgs))
    for dev, epoch, first, n in (("dev-a", "00000000000000aa", 1, 20000),
                                 ("dev-b", "bbbbbbbbbbbbbbbb", 1000001, 7000)):
        seen = check_messages(msgs, dev, epoch, first, n)
        parts = {p for p, _ in seen.values()}
        if len(parts) != 1:
            fail("%s spread over partitions %s: key must pin a device to one" % (dev, parts))
    # Order within the device's partition: kcat returns a partition in offset order.
    last = {}
    for key, hd, part, value in msgs:
        s = int(hd["seq"])
        if s <= last.get(key, 0):
            fail("%s: seq %d after %d" % (key, s, last[key]))
        last[key] = s
    print("ok: 27000 readings, exact set, ordered per device")


def case_drain(h):
    """drain(0) right after a big send: each reading resolved exactly once
    (acked or failed); drain with time: everything acked. (One send() takes
    what capacity() allows, at most the uplink's burst between polls.)"""
    topic = new_topic("drain")
    opts = [("brokers", BOOTSTRAP), ("topic", topic)]
    rc, kv, out, err = run_harness(h, opts, "-n", 20000, "-b", 20000, "-D", 0, "-q")
    expect_ok(rc, kv, out, err, "drain 0")
    sent = int(kv["sent"])
    if sent == 0 or int(kv["acked"]) + int(kv["failed_readings"]) != sent or \
            kv["in_flight"] != "0":
        fail("drain 0: %s" % out)
    if kv["status_in_flight"] != "0":
        fail("drain 0: status still counts readings in flight: %s" % out)
    print("ok: drain(0) sent=%d acked=%s failed=%s" % (sent, kv["acked"], kv["failed_readings"]))
    rc, kv, out, err = run_harness(h, opts, "-n", 20000, "-b", 20000, "-D", 30000, "-s", 100001,
                                   "-q")
    expect_ok(rc, kv, out, err, "drain 30000")
    if kv["sent"] == "0" or kv["acked"] != kv["sent"] or kv["failed_readings"] != "0":
        fail("drain 30s did not deliver everything: %s" % out)
    print("ok: drain(30 s) delivered all %s" % kv["sent"])


def case_fatal(h):
    """A fatal error of the idempotent producer: in-flight readings are
    reported failed, the producer is recreated, re-sends complete the set
    (duplicates allowed, identical, identifiable by epoch+seq)."""
    topic = new_topic("fatal")
    opts = [("brokers", BOOTSTRAP), ("topic", topic)]
    rc, kv, out, err = run_harness(h, opts, "-n", 50000, "-F", 20000, "-q")
    expect_ok(rc, kv, out, err, "fatal")
    if "fatal producer error" not in err or "recreat" not in err:
        fail("fatal error not reported:\n" + err[-2000:])
    if err.count("error: uplink.kafka: fatal producer error") != 1:
        fail("fatal error logged more than once:\n" + err[-2000:])
    msgs = consume(topic, 50000)
    check_messages(msgs, "kafka-test", "00c0ffee00c0ffee", 1, 50000, allow_dups=True)
    print("ok: recreated after fatal error; %d messages for 50000 readings, failed=%s" %
          (len(msgs), kv["failed_readings"]))


def case_missing_topic(h):
    """A missing topic: clear error once, nothing handed over (readings stay
    queued), and delivery starts by itself once the topic exists."""
    topic = "tern_uk_missing_%d" % os.getpid()
    p = subprocess.Popen(harness_cmd(h, [("brokers", BOOTSTRAP), ("topic", topic)], "-n", 2000,
                                     "-q", "-t", 120000),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errlines = []
    # stderr is read line by line until the error shows.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        errlines.append(line)
        if "does not exist" in line:
            break
    want = "topic '%s' does not exist on %s" % (topic, BOOTSTRAP)
    if not any(want in l for l in errlines):
        p.kill()
        fail("no missing-topic error; stderr:\n" + "".join(errlines))
    stack("topic", topic, "1")
    out, err = p.communicate(timeout=120)
    err = "".join(errlines) + err
    if p.returncode != 0 or "acked=2000" not in out:
        fail("not delivered after the topic appeared: rc=%d\n%s\n%s" % (p.returncode, out, err))
    if err.count("does not exist") != 1:
        fail("missing-topic error logged more than once:\n" + err)
    if "delivering to topic" not in err:
        fail("recovery not logged:\n" + err)
    if "failed_readings=0" not in out:
        fail("readings were handed over while the topic was missing:\n" + out)
    check_messages(consume(topic, 2000), "kafka-test", "00c0ffee00c0ffee", 1, 2000)
    print("ok: %s" % want)


def case_unreachable(h):
    """Unreachable brokers: clear error naming the address and the cause,
    nothing handed over."""
    addr = "127.0.0.1:%d" % UNUSED_PORT
    rc, kv, out, err = run_harness(h, [("brokers", addr)], "-n", 100, "-w",
                                   "cannot reach Kafka brokers", "-t", 30000)
    le = kv.get("last_error", "")
    if rc != 0 or ("cannot reach Kafka brokers %s" % addr) not in le or "Connection refused" not in le:
        fail("unreachable: rc=%d last_error=%r" % (rc, le))
    if kv.get("sent") != "0" or kv.get("connected") != "0":
        fail("unreachable: readings handed over or connected: %s" % out)
    if err.count("error: uplink.kafka: cannot reach") != 1:
        fail("unreachable error not logged exactly once:\n" + err)
    print("ok: %s" % le)
    rc, kv, out, err = run_harness(h, [("brokers", "no-such-host.invalid:9092")], "-n", 0, "-w",
                                   "cannot reach Kafka brokers", "-t", 30000)
    if rc != 0 or "resolve" not in kv.get("last_error", ""):
        fail("unresolvable: rc=%d %r" % (rc, kv.get("last_error")))
    print("ok: %s" % kv["last_error"])


def case_broker_restart(h):
    """Broker stopped for 10 s while readings keep coming, then started:
    nothing lost. (LOCK: stops the shared stack's Kafka.) The agent-level
    test does the full 30 s outage; this one checks the uplink alone."""
    topic = new_topic("restart")
    n, rate = 20000, 1000
    p = subprocess.Popen(harness_cmd(h, [("brokers", BOOTSTRAP), ("topic", topic),
                                         ("message_timeout_ms", "20000")],
                                     "-n", n, "-r", rate, "-q", "-t", 180000),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # let some readings through first
        stack("down", "kafka")
        t0 = time.monotonic()
        time.sleep(10)  # the outage under test, not a wait for a condition
        stack("up", "kafka")
        print("broker was down %.1f s" % (time.monotonic() - t0))
        out, err = p.communicate(timeout=170)
    finally:
        if p.poll() is None:
            p.kill()
        stack("up", "kafka")
    if p.returncode != 0 or ("acked=%d" % n) not in out:
        fail("restart: rc=%d\n%s\n%s" % (p.returncode, out, err[-3000:]))
    if "cannot reach" not in err and "failed_readings=0" in out:
        print("note: outage not observed by the uplink")
    check_messages(consume(topic, n), "kafka-test", "00c0ffee00c0ffee", 1, n, allow_dups=True)
    print("ok: %d readings across a broker outage\n%s" % (n, out))


def case_alloc_failures(h):
    """Every allocation of open() failing in turn: open fails cleanly with a
    message (no crash; leaks show under the ASan build), until it succeeds."""
    opts = [("brokers", "127.0.0.1:%d" % UNUSED_PORT), ("max_in_flight", "1000"),
            ("kafka.socket.keepalive.enable", "true")]
    for nth in range(1, 200):
        rc, kv, out, err = run_harness(h, opts, "-n", 0, "-t", 0, "-A", nth, timeout=30)
        if "open_error" not in kv and rc in (0, 3) and "result" in kv:  # opened, closed
            print("ok: open survives allocation failures 1..%d" % (nth - 1))
            return
        if rc != 2 or "out of memory" not in kv.get("open_error", ""):
            fail("allocation %d failing: rc=%d\n%s\n%s" % (nth, rc, out, err[-2000:]))
    fail("open never succeeded")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        print("usage: %s {%s} HARNESS" % (sys.argv[0], ",".join(CASES)))
        sys.exit(2)
    CASES[sys.argv[1]](sys.argv[2])
    print("PASS")
