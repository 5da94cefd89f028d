#!/usr/bin/env python3
"""relay_it.py - tern-relay integration tests against the real local stack
(Kafka + ClickHouse 18.16 from compose/local/stack). Each test uses its own
topic, consumer group and database, so tests can run side by side.

Usage: relay_it.py exact|sigkill|outage|two_relays|malformed|old_vectors|chdb

Every test asserts exact results: N distinct readings produced -> N rows in
`readings FINAL` and N counted by the per-minute rollup view. Waits are for a
condition with a deadline, never a bare sleep-and-hope."""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

SRC = os.environ.get("TERN_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BIN = os.environ.get("TERN_BINARY_DIR", os.path.join(SRC, "build"))
RELAY = os.path.join(BIN, "relay", "tern-relay")
STACK = os.path.join(SRC, "compose", "local", "stack")
VECTORS = os.environ.get("TERN_VECTORS_DIR", os.path.join(SRC, "tests", "vectors"))


def log(*a):
    print("[relay_it %s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def stack_env():
    out = subprocess.run([STACK, "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        m = re.match(r"^(?:export\s+)?(\w+)=['\"]?([^'\"]*)['\"]?$", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    return env


ENV = stack_env()
KAFKA = ENV["TERN_KAFKA_BOOTSTRAP"]
CH_URL = ENV["TERN_CLICKHOUSE_URL"]


def ch(sql, body=None, timeout=30):
    """Runs sql over ClickHouse HTTP; returns the text answer or raises."""
    if body is None:
        req = urllib.request.Request(CH_URL + "/", data=sql.encode())
    else:
        req = urllib.request.Request(CH_URL + "/?query=" + urllib.parse.quote(sql), data=body)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def ch_int(sql):
    return int(ch(sql).strip() or 0)


def wait_for(what, cond, deadline_s, every=0.25):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            last = cond()
            if last is True or (isinstance(last, tuple) and last[0]):
                return last
        except Exception as e:  # service restarting
            last = e
        time.sleep(every)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (deadline_s, what, last))


def reading_line(dev, epoch, seq, ts_ms, value):
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + ".%03dZ" % (ts_ms % 1000)
    return json.dumps({"v": 1, "device_id": dev, "sensor": "env", "metric": "temperature", "value": value,
                       "unit": "Cel", "ts": ts, "epoch": "%016x" % epoch, "seq": seq, "flags": 0},
                      separators=(",", ":"))


def make_readings(n, devices=7, seed=1):
    """n distinct readings: (device, epoch, seq) unique; spread over a few minutes."""
    rnd = random.Random(seed)
    epochs = [rnd.getrandbits(64) for _ in range(devices)]
    base = (int(time.time()) // 60 - 10) * 60000
    out = []
    for i in range(n):
        d = i % devices
        out.append(reading_line("dev-%02d" % d, epochs[d], i // devices + 1, base + i * 37, 20.0 + (i % 100) / 10))
    return out


class Case:
    """One test's topic, group, database, config files and relay processes."""

    def __init__(self, name, partitions=4, overrides=None, init=True):
        tag = "%s_%d" % (name, os.getpid())
        self.name = name
        self.topic = "relay_it_" + tag
        self.group = "relay_it_" + tag
        self.db = "relay_it_" + tag
        self.dir = tempfile.mkdtemp(prefix="relay_it_")
        self.procs = []
        self.partitions = partitions
        self.overrides = overrides or {}
        self.config = self.write_config("relay.ini")
        if not init:
            return
        out = subprocess.run([RELAY, "--config", self.config, "init"], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError("init failed: " + out.stderr)

    def write_config(self, fname, extra=None):
        conf = {
            ("kafka", "brokers"): KAFKA, ("kafka", "topic"): self.topic, ("kafka", "group"): self.group,
            ("kafka", "partitions"): str(self.partitions), ("kafka", "session_timeout_ms"): "6000",
            ("clickhouse", "url"): CH_URL, ("clickhouse", "database"): self.db,
            ("clickhouse", "timeout_ms"): "5000",
            ("batch", "max_rows"): "2000", ("batch", "max_delay_ms"): "200",
            ("relay", "metrics_listen"): "", ("relay", "retry_base_ms"): "100", ("relay", "retry_max_ms"): "1000",
        }
        conf.update(self.overrides)
        conf.update(extra or {})
        sections = {}
        for (s, k), v in conf.items():
            sections.setdefault(s, []).append("%s = %s" % (k, v))
        path = os.path.join(self.dir, fname)
        with open(path, "w") as f:
            for s, lines in sections.items():
                f.write("[%s]\n%s\n" % (s, "\n".join(lines)))
        return path

    def start_relay(self, config=None, label="relay"):
        logf = open(os.path.join(self.dir, "%s.log" % label), "ab")
        p = subprocess.Popen([RELAY, "--config", config or self.config, "run"], stdout=logf, stderr=logf)
        self.procs.append(p)
        return p

    def produce(self, lines):
        path = os.path.join(self.dir, "batch-%d.jsonl" % random.getrandbits(32))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run(["kcat", "-P", "-b", KAFKA, "-t", self.topic, "-l", path], check=True, timeout=120)
        os.unlink(path)

    def final_count(self):
        return ch_int("SELECT count() FROM %s.readings FINAL" % self.db)

    def check_exact(self, n, deadline=120):
        wait_for("%d rows in readings FINAL" % n, lambda: (self.final_count() == n, self.final_count()), deadline)
        distinct = ch_int("SELECT uniqExact(device_id, epoch, seq) FROM %s.readings FINAL" % self.db)
        final = self.final_count()
        rollup = ch_int("SELECT sum(readings) FROM %s.readings_1m" % self.db)
        raw = ch_int("SELECT count() FROM %s.readings" % self.db)
        log("%s: produced %d, FINAL %d, distinct %d, rollup %d, physical rows %d" %
            (self.name, n, final, distinct, rollup, raw))
        assert final == n, "FINAL has %d rows, want %d" % (final, n)
        assert distinct == n, "distinct identities %d, want %d" % (distinct, n)
        assert rollup == n, "rollup counts %d readings, want %d" % (rollup, n)

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def cleanup(self, ok):
        self.stop_all()
        if ok:
            try:
                ch("DROP DATABASE IF EXISTS %s" % self.db)
            except Exception:
                pass
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            for f in sorted(os.listdir(self.dir)):
                if f.endswith(".log"):
                    log("---- %s (last 40 lines)" % f)
                    with open(os.path.join(self.dir, f), errors="replace") as fh:
                        print("".join(fh.readlines()[-40:]))


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


# ---- tests ----------------------------------------------------------------

def metrics_text(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def t_exact(c):
    lines = make_readings(20000)
    port = int(os.environ.get("TERN_PORT_BASE", "18800")) + 40
    c.produce(lines[:10000])
    c.start_relay(c.write_config("metrics.ini", {("relay", "metrics_listen"): "127.0.0.1:%d" % port}))
    c.produce(lines[10000:])
    # Re-publish a slice: the same readings again must not count twice.
    c.produce(lines[5000:7000])
    c.check_exact(20000)
    # Observability: counters add up, lag drains to 0 on every partition.
    def drained():
        t = metrics_text(port)
        lags = re.findall(r"^tern_relay_consumer_lag\{[^}]*\} (\d+)$", t, re.M)
        return (metric(t, "tern_relay_messages_consumed_total") == 22000 and len(lags) == c.partitions
                and all(l == "0" for l in lags), lags)
    wait_for("metrics to show everything consumed", drained, 30)
    t = metrics_text(port)
    inserted = metric(t, "tern_relay_rows_inserted_total")
    dups = metric(t, "tern_relay_duplicates_dropped_total")
    assert inserted + dups == 22000, (inserted, dups)
    assert metric(t, "tern_relay_insert_duration_seconds_count") >= 1
    assert metric(t, "tern_relay_end_to_end_seconds_count") == inserted
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5) as r:
        assert r.status == 200
    c.stop_all()
    # A restarted relay starts after the committed offsets: it consumes only
    # the 100 new readings, not the 22000 already stored.
    c.start_relay(label="restart")
    extra = make_readings(20100)[20000:]
    c.produce(extra)
    c.check_exact(20100)
    c.stop_all()
    with open(os.path.join(c.dir, "restart.log")) as f:
        m = re.search(r"stopping: consumed (\d+)", f.read())
    assert m, "restarted relay did not report its counts"
    assert int(m.group(1)) == 100, "restarted relay consumed %s messages, want 100" % m.group(1)


def t_sigkill(c):
    n = 30000
    lines = make_readings(n, seed=2)
    chunks = [lines[i:i + 500] for i in range(0, n, 500)]
    done = threading.Event()

    def producer():
        for ch_ in chunks:
            c.produce(ch_)
            time.sleep(0.2)
        done.set()

    th = threading.Thread(target=producer)
    th.start()
    rnd = random.Random(7)
    kills = 0
    while kills < 12 or not done.is_set():
        p = c.start_relay(label="kill%02d" % kills)
        time.sleep(rnd.uniform(0.2, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        log("SIGKILL %d at %d rows in FINAL" % (kills, c.final_count()))
    th.join()
    c.start_relay(label="final")
    c.check_exact(n, deadline=180)
    assert kills >= 10


def t_outage(c):
    n = 24000
    lines = make_readings(n, seed=3)
    p = c.start_relay()
    c.produce(lines[:4000])
    wait_for("first rows", lambda: c.final_count() >= 4000, 60)
    rss_before = rss_kb(p.pid)
    subprocess.run([STACK, "down", "clickhouse"], check=True, timeout=120)
    log("clickhouse down")
    t_end = time.monotonic() + 30
    rss_max = rss_before
    i = 4000
    while time.monotonic() < t_end:
        if i < 20000:
            c.produce(lines[i:i + 2000])
            i += 2000
        rss_max = max(rss_max, rss_kb(p.pid))
        assert p.poll() is None, "relay died while ClickHouse was down"
        time.sleep(0.5)
    subprocess.run([STACK, "up", "clickhouse"], check=True, timeout=300)
    log("clickhouse up")
    c.produce(lines[i:])
    c.check_exact(n, deadline=180)
    rss_max = max(rss_max, rss_kb(p.pid))
    log("relay RSS before outage %d kB, max during/after %d kB" % (rss_before, rss_max))
    # Bounded: one batch (max_rows 2000) plus librdkafka's bounded prefetch,
    # not the 20000 readings that piled up in Kafka meanwhile.
    assert rss_max < 150 * 1024, "relay RSS grew to %d kB" % rss_max
    assert rss_max - rss_before < 80 * 1024, "relay RSS grew by %d kB during the outage" % (rss_max - rss_before)


def t_kafka_restart(c):
    n = 40000
    lines = make_readings(n, seed=6)
    c.produce(lines[:30000])
    p = c.start_relay()
    wait_for("first rows", lambda: c.final_count() >= 1000, 60)
    subprocess.run([STACK, "down", "kafka"], check=True, timeout=120)
    log("kafka down at %d rows" % c.final_count())
    subprocess.run([STACK, "up", "kafka"], check=True, timeout=300)
    log("kafka up")
    c.produce(lines[30000:])
    c.check_exact(n, deadline=180)
    assert p.poll() is None, "relay died when Kafka restarted"


def t_two_relays(c):
    n = 24000
    lines = make_readings(n, seed=4)
    a = c.start_relay(c.write_config("a.ini", {("kafka", "client_id"): "relay-a"}), label="a")
    b = c.start_relay(c.write_config("b.ini", {("kafka", "client_id"): "relay-b"}), label="b")
    c.produce(lines[:8000])
    wait_for("both relays working", lambda: c.final_count() >= 4000, 60)
    a.send_signal(signal.SIGKILL)
    a.wait()
    log("relay a killed at %d rows" % c.final_count())
    c.produce(lines[8000:])
    c.check_exact(n, deadline=180)
    assert b.poll() is None, "relay b died"


def t_malformed(c):
    good = make_readings(3000, seed=5)
    bad = [
        ('{"v":1,"device_id":', "JSON"),
        ('{"v":1,"device_id":"d","sensor":"s","metric":"m","value":1,"ts":"2026-11-25T11:38:05Z","epoch":"0000000000000001"}',
         "seq"),
        ('{"v":1,"device_id":"d","sensor":"s","metric":"m","value":"hot","ts":"2026-11-25T11:38:05Z","epoch":"0000000000000001","seq":1}',
         "value"),
        ('{"v":1,"device_id":"d","sensor":"s","metric":"m","value":1e300,"ts":"2026-11-25T11:38:05Z","epoch":"0000000000000001","seq":2}',
         "out of range"),
        ('{"v":9,"device_id":"d","sensor":"s","metric":"m","value":1,"ts":"2026-11-25T11:38:05Z","epoch":"0000000000000001","seq":3}',
         "version"),
        ('{"id":"e-bad","timestamp":"2026-11-25T11:38:05Z","value":{"temperature":1}}', "sensor_id"),
        ('{"id":"e-bad2","timestamp":"2026-11-25T11:38:05Z","value":{"sensor_id":"s9","temperature":"warm"}}',
         "temperature"),
        ('{"id":"e-bad3","value":{"sensor_id":"s9","temperature":1}}', "timestamp"),
    ]
    # Envelopes: 40 messages x 3 measurements, each published twice.
    env = []
    for i in range(40):
        env.append(json.dumps({"id": "msg-%d" % i, "timestamp": "2026-11-25T11:%02d:05Z" % (i % 60),
                               "value": {"sensor_id": "sensor-%d" % (i % 4), "temperature": 23.5,
                                         "humidity": 45, "pressure": 1013}}))
    mixed = []
    for i, g in enumerate(good):
        mixed.append(g)
        if i % 300 == 0 and bad:
            mixed.append(bad[(i // 300) % len(bad)][0])
    mixed += [b for b, _ in bad] + env + env
    nbad = len(mixed) - len(good) - 2 * len(env)
    c.produce(mixed)
    c.start_relay()
    want = len(good) + 40 * 3
    c.check_exact(want)
    wait_for("%d rejected" % nbad, lambda: ch_int("SELECT count() FROM %s.rejected FINAL" % c.db) == nbad, 60)
    rows = ch("SELECT payload, reason, src_topic, src_partition, src_offset FROM %s.rejected FINAL FORMAT JSONEachRow" % c.db)
    got = [json.loads(l) for l in rows.splitlines() if l.strip()]
    for payload, why in bad:
        match = [r for r in got if r["payload"] == payload]
        assert match, "bad message not in rejected table: %s" % payload
        for r in match:
            assert why.lower() in r["reason"].lower(), "reason %r lacks %r" % (r["reason"], why)
            assert r["src_topic"] == c.topic and int(r["src_offset"]) >= 0
    env_rows = ch_int("SELECT count() FROM %s.readings FINAL WHERE sensor = 'envelope'" % c.db)
    assert env_rows == 120, "envelope readings %d, want 120" % env_rows


def t_wide(c):
    """Adopting an existing wide table: one row per envelope."""
    ch("CREATE TABLE %s.sensor_metrics (message_id String, event_time DateTime, sensor_id String, "
       "temperature Float64, humidity Float64, pressure Float64) "
       "ENGINE = ReplacingMergeTree() ORDER BY message_id" % c.db)
    conf = c.write_config("wide.ini", {
        ("output", "mode"): "wide", ("output", "wide_table"): "sensor_metrics",
        ("output", "wide_columns"): "message_id=id, event_time=timestamp, sensor_id=device, "
                                    "temperature=metric:temperature, humidity=metric:humidity, "
                                    "pressure=metric:pressure"})
    env = [json.dumps({"id": "m-%d" % i, "timestamp": "2026-11-25T11:%02d:05Z" % (i % 60),
                       "value": {"sensor_id": "s-%d" % (i % 5), "temperature": 20 + i % 7, "humidity": 45,
                                 "pressure": 1013}}) for i in range(500)]
    c.produce(env + env[:200] + ['{"id":"x","value":{}}'])
    c.start_relay(conf, label="wide")
    q = "SELECT count() FROM %s.sensor_metrics FINAL" % c.db
    wait_for("500 wide rows", lambda: (ch_int(q) == 500, ch_int(q)), 60)
    row = ch("SELECT message_id, event_time, sensor_id, temperature, humidity, pressure FROM %s.sensor_metrics "
             "FINAL WHERE message_id = 'm-8' FORMAT TSV" % c.db).strip()
    assert row == "m-8\t2026-11-25 11:08:05\ts-3\t21\t45\t1013", row
    wait_for("1 rejected", lambda: ch_int("SELECT count() FROM %s.rejected FINAL" % c.db) == 1, 60)


def vector_identities():
    ids = set()
    with open(os.path.join(VECTORS, "valid.jsonl")) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                ids.add((o["device_id"], o["epoch"], o["seq"]))
    return len(ids)


def apply_ddl(ddl, run):
    for stmt in ddl.split(";\n"):
        stmt = "\n".join(l for l in stmt.splitlines() if not l.startswith("--")).strip()
        if stmt:
            run(stmt)


# The relay's RowBinary inserts name their columns (relay/schema_sql.h).
BIN_COLUMNS = {
    "old": "device_id, sensor, metric, unit, value, ts, ts_ms, epoch, seq, tags, flags, inserted_at",
    "modern": "device_id, sensor, metric, unit, value, ts, epoch, seq, tags, flags, inserted_at",
}


def encode_vectors(c, mode, fmt):
    """The shared valid vectors as the relay encodes them (fmt: rowbinary or jsoneachrow)."""
    conf = c.write_config("encode-%s.ini" % fmt, {("clickhouse", "insert_format"): fmt})
    with open(os.path.join(VECTORS, "valid.jsonl"), "rb") as f:
        return subprocess.run([RELAY, "--config", conf, "--mode", mode, "encode"], stdin=f, check=True,
                              capture_output=True).stdout


def t_old_vectors(c):
    """Old-mode DDL, rollup and inserts of the shared test vectors in 18.16,
    in both insert formats: each twice, and the copies of one reading in the
    two formats must collapse too (same ts, so the same partition)."""
    ddl = subprocess.run([RELAY, "--mode", "old", "schema"], check=True, capture_output=True, text=True).stdout
    ddl = ddl.replace("tern.", c.db + "_v.").replace("EXISTS tern", "EXISTS " + c.db + "_v")
    apply_ddl(ddl, ch)
    binary = encode_vectors(c, "old", "rowbinary")
    text = encode_vectors(c, "old", "jsoneachrow")
    for _ in range(2):  # twice: duplicates must not count
        ch("INSERT INTO %s_v.readings (%s) FORMAT RowBinary" % (c.db, BIN_COLUMNS["old"]), binary)
        ch("INSERT INTO %s_v.readings FORMAT JSONEachRow" % c.db, text)
    n = vector_identities()
    final = ch_int("SELECT count() FROM %s_v.readings FINAL" % c.db)
    rollup = ch_int("SELECT sum(readings) FROM %s_v.readings_1m" % c.db)
    ch("DROP DATABASE IF EXISTS %s_v" % c.db)
    log("old mode: %d identities, FINAL %d, rollup %d" % (n, final, rollup))
    assert final == n and rollup == n


CHDB_SCRIPT = r'''
import sys, chdb
from chdb import session
ddl, rows, binary, want, columns = (open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3],
                                    int(sys.argv[4]), sys.argv[5])
s = session.Session()
for stmt in ddl.split(";\n"):
    stmt = "\n".join(l for l in stmt.splitlines() if not l.startswith("--")).strip()
    if stmt:
        s.query(stmt)
for _ in range(2):
    s.query("INSERT INTO tern.readings (%s) FROM INFILE '%s' FORMAT RowBinary" % (columns, binary))
final = int(str(s.query("SELECT count() FROM tern.readings FINAL", "CSV")).strip())
rollup = int(str(s.query("SELECT sum(readings) FROM tern.readings_1m", "CSV")).strip())
types = str(s.query("SELECT type FROM system.columns WHERE database='tern' AND table='readings' AND name IN ('ts','tags') ORDER BY name", "CSV"))
ver = str(s.query("SELECT version()", "CSV")).strip()
print("chdb", ver, "RowBinary: final", final, "rollup", rollup, "types", types.replace("\n", " "))
assert final == want and rollup == want, (final, rollup, want)
assert "DateTime64" in types and "Map" in types, types
tags = str(s.query("SELECT tags['site'] FROM tern.readings FINAL WHERE tags['site'] != '' ORDER BY seq LIMIT 1", "TSV")).strip()
assert tags, "no tags read back from the Map"
# The same vectors as JSONEachRow into a fresh table (modern JSON parsing maps
# year 0000 to another partition, so the formats are not mixed in one table).
s.query("TRUNCATE TABLE tern.readings")
for _ in range(2):
    s.query("INSERT INTO tern.readings FORMAT JSONEachRow\n" + rows)
final = int(str(s.query("SELECT count() FROM tern.readings FINAL", "CSV")).strip())
rollup = int(str(s.query("SELECT sum(readings) FROM tern.readings_1m", "CSV")).strip())
print("chdb JSONEachRow: final", final, "rollup", rollup)
assert final == want and rollup == want, (final, rollup, want)
'''


def t_chdb(c):
    """Modern-mode DDL, rollup and inserts of the test vectors in chDB (current ClickHouse)."""
    py = subprocess.run([os.path.join(SRC, "scripts", "install-chdb"), "--print-python"], check=True,
                        capture_output=True, text=True, timeout=900).stdout.strip()
    ddl = subprocess.run([RELAY, "--mode", "modern", "schema"], check=True, capture_output=True, text=True).stdout
    rows = encode_vectors(c, "modern", "jsoneachrow")
    binary = encode_vectors(c, "modern", "rowbinary")
    paths = []
    for name, data in (("ddl.sql", ddl.encode()), ("rows.jsonl", rows), ("rows.bin", binary),
                       ("check.py", CHDB_SCRIPT.encode())):
        p = os.path.join(c.dir, name)
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
    out = subprocess.run([py, paths[3], paths[0], paths[1], paths[2], str(vector_identities()), BIN_COLUMNS["modern"]],
                         capture_output=True, text=True, timeout=300, cwd=c.dir)
    print(out.stdout, out.stderr[-3000:])
    assert out.returncode == 0, "chdb check failed"


TESTS = {"exact": t_exact, "sigkill": t_sigkill, "outage": t_outage, "two_relays": t_two_relays, "kafka_restart": t_kafka_restart,
         "malformed": t_malformed, "wide": t_wide, "old_vectors": t_old_vectors, "chdb": t_chdb}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
        print(__doc__)
        return 2
    name = sys.argv[1]
    overrides = {}
    if name == "sigkill":
        # Static membership: a restarted relay takes its partitions back at
        # once instead of waiting for the killed one's session to expire.
        overrides[("kafka", "instance_id")] = "relay-sigkill"
        overrides[("batch", "max_rows")] = "500"
        overrides[("batch", "max_delay_ms")] = "50"
    if name == "kafka_restart":
        # Small batches: Kafka goes down while most of the topic is unread.
        overrides[("batch", "max_rows")] = "100"
        overrides[("batch", "max_delay_ms")] = "20"
    if name == "malformed":
        overrides[("envelope", "metrics")] = "temperature:Cel,humidity:%,pressure:hPa"
    c = Case(name, overrides=overrides, init=name != "chdb")
    ok = False
    try:
        TESTS[name](c)
        ok = True
        print("1 passed, 0 failed")
    finally:
        c.cleanup(ok)
    return 0


if __name__ == "__main__":
    sys.exit(main())
