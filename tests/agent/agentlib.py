"""agentlib.py - shared helpers of tern-agent's integration tests: run the
agent on a private data dir, query its status socket, subscribe with the real
mosquitto_sub, and check every received wire line field by field.

Every wait is for a condition with a deadline; nothing sleeps and hopes."""
import atexit
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

SRC = os.environ.get("TERN_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BIN = os.environ.get("TERN_BINARY_DIR", os.path.join(SRC, "build"))
AGENT = os.path.join(BIN, "agent", "tern-agent")
STACK = os.path.join(SRC, "compose", "local", "stack")


# Every process a test starts, so that a failing test leaves none behind.
_children = []


def spawn(*args, **kw):
    p = subprocess.Popen(*args, **kw)
    _children.append(p)
    return p


@atexit.register
def _reap():
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def wait_for(what, cond, timeout=30.0, step=0.05):
    """Polls cond() until it returns a true value; fails the test at the deadline."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            fail("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(step)


def stack_env():
    out = subprocess.run([STACK, "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v.strip("'\"")
    return env


class Workdir:
    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix="tern-%s-" % name)

    def file(self, name, text):
        p = os.path.join(self.path, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def run_ok(*cmd):
    """Runs cmd; fails the test with its stderr when it exits non-zero."""
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s: %s" % (" ".join(cmd), r.stderr))


def make_test_ca(wd):
    """A throw-away CA (wd/ca.crt, ca.key) and a server certificate for
    localhost / 127.0.0.1 (wd/server.crt, server.key), valid two days."""
    P = wd.path
    run_ok("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
           "-subj", "/CN=tern-test-ca", "-keyout", P + "/ca.key", "-out", P + "/ca.crt")
    run_ok("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
           "-keyout", P + "/server.key", "-out", P + "/server.csr")
    wd.file("ext.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run_ok("openssl", "x509", "-req", "-in", P + "/server.csr", "-CA", P + "/ca.crt",
           "-CAkey", P + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", P + "/ext.cnf",
           "-out", P + "/server.crt")


class Agent:
    """One tern-agent process on a config file."""

    def __init__(self, config, data_dir, log):
        self.config = config
        self.data_dir = data_dir
        self.log_path = log
        self.proc = None

    def start(self, *extra):
        self.logf = open(self.log_path, "a")
        self.proc = spawn([AGENT, "--config", self.config] + list(extra),
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        wait_for("the agent's status socket", lambda: self.status(quiet=True) is not None, 20)

    def status(self, quiet=False):
        if self.proc is not None and self.proc.poll() is not None:
            fail("tern-agent exited with %s; log:\n%s" % (self.proc.returncode, self.log()))
        r = subprocess.run([AGENT, "status", "--data-dir", self.data_dir, "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            if quiet:
                return None
            fail("tern-agent status failed: " + r.stderr)
        return json.loads(r.stdout)

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM, wait; returns the last seq from the shutdown log line."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("tern-agent did not stop within %d s after SIGTERM" % timeout)
        self.logf.close()
        if rc != 0:
            fail("tern-agent exited %d after SIGTERM; log:\n%s" % (rc, self.log()))
        m = re.findall(r"stopped: \d+ readings queued, last seq (\d+)", self.log())
        if not m:
            fail("no shutdown line in the agent log:\n" + self.log())
        return int(m[-1])

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()


class Subscriber:
    """mosquitto_sub on a topic, QoS 1, payloads appended to a file. start()
    returns only once a probe message proved the subscription is active."""

    def __init__(self, host, port, topic, out_path):
        self.host, self.port, self.topic, self.out = host, str(port), topic, out_path
        self.proc = None

    def start(self):
        self.f = open(self.out, "ab")
        self.proc = spawn(["mosquitto_sub", "-h", self.host, "-p", self.port, "-q", "1",
                                      "-t", self.topic, "-t", self.topic + "/probe"],
                                     stdout=self.f, stderr=subprocess.DEVNULL)
        token = "probe-%d-%f" % (os.getpid(), time.time())

        def probe():
            subprocess.run(["mosquitto_pub", "-h", self.host, "-p", self.port, "-q", "1",
                            "-t", self.topic + "/probe", "-m", token], capture_output=True)
            self.f.flush()
            with open(self.out, "rb") as f:
                return token.encode() in f.read()
        wait_for("mosquitto_sub to be subscribed", probe, 20, 0.2)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.f.close()
            self.proc = None

    def lines(self):
        with open(self.out, "rb") as f:
            data = f.read().decode()
        return [l for l in data.split("\n") if l.startswith("{")]


TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def check_reading(d, device_id, t0, t1):
    """Per-field validity of one decoded wire line; returns a problem or None."""
    for k in ("v", "device_id", "sensor", "metric", "value", "unit", "ts", "epoch", "seq"):
        if k not in d:
            return "missing field %r" % k
    if d["v"] != 1:
        return "v is %r" % d["v"]
    if d["device_id"] != device_id:
        return "device_id %r" % d["device_id"]
    if not isinstance(d["value"], (int, float)) or not math.isfinite(d["value"]):
        return "value %r" % d["value"]
    if not TS_RE.match(d["ts"]):
        return "ts %r is not RFC 3339 UTC with ms" % d["ts"]
    ts = parse_ts(d["ts"])
    if not (t0 - 1 <= ts <= t1 + 1):
        return "ts %s outside the run" % d["ts"]
    if not re.match(r"^[0-9a-f]{16}$", d["epoch"]):
        return "epoch %r" % d["epoch"]
    if not isinstance(d["seq"], int) or d["seq"] < 1:
        return "seq %r" % d["seq"]
    if d.get("flags", 0) != 0:
        return "flags %r (clock considered unsynced?)" % d.get("flags")
    return None


def decode_all(lines):
    out = []
    for l in lines:
        try:
            out.append(json.loads(l))
        except ValueError as e:
            fail("undecodable line %r: %s" % (l[:200], e))
    return out


def check_coverage(readings, last_seq, epoch=None):
    """Every seq 1..last_seq arrived; duplicates are identical (identifiable)."""
    by_seq = {}
    dups = 0
    for d in readings:
        if epoch and d["epoch"] != epoch:
            continue
        key = d["seq"]
        if key in by_seq:
            dups += 1
            a, b = dict(by_seq[key]), dict(d)
            if a != b:
                fail("seq %d arrived twice with different content:\n%s\n%s" % (key, a, b))
        else:
            by_seq[key] = d
    missing = [s for s in range(1, last_seq + 1) if s not in by_seq]
    if missing:
        fail("%d of %d readings missing, e.g. seq %s" % (len(missing), last_seq, missing[:20]))
    return dups
