#!/usr/bin/env python3
"""demo_test.py - runs `scripts/demo --duration 20 --devices 3` against the
suite's running stack and prebuilt binaries, and checks that readings arrived
in ClickHouse, that the demo's own accounting found nothing missing, that it
left no process behind and that it did not stop a stack it did not start."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

src = os.environ["TERN_SOURCE_DIR"]
env = dict(os.environ)
run_dir = tempfile.mkdtemp(prefix="tern-e2e-demo-")
env["TERN_DEMO_DIR"] = run_dir
# The suite's broker is shared: the demo's relay must neither see other
# tests' readings nor send receipts to their devices.
env["TERN_DEMO_MQTT_ROOT"] = "tern-e2e-demo"
db = "e2e_demo"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def stack_running():
    return subprocess.run([os.path.join(src, "compose/local/stack"), "status"], env=env,
                          capture_output=True).returncode == 0


def procs_mentioning(text):
    """pids of live processes whose command line contains text."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            out.append((int(pid), cmd.strip()))
    return out


if not stack_running():
    fail("the suite's stack is not running (fixture stack_up)")
p = subprocess.run([os.path.join(src, "scripts/demo"), "--duration", "20", "--devices", "3",
                    "--database", db],
                   env=env, capture_output=True, text=True, timeout=240)
print(p.stdout[-4000:])
print(p.stderr[-4000:], file=sys.stderr)
if p.returncode != 0:
    fail("scripts/demo exited %d" % p.returncode)
kv = dict(re.findall(r"^(\w+)=(\d+)$", p.stdout, re.M))
for k in ("stored", "clickhouse_rows", "missing"):
    if k not in kv:
        fail("final summary lacks %s=" % k)
if int(kv["clickhouse_rows"]) <= 0:
    fail("no rows arrived in ClickHouse")
if int(kv["missing"]) != 0:
    fail("%s readings missing" % kv["missing"])
prefix = re.search(r"devices (demo-[0-9a-f]+)-NN", p.stderr)
if not prefix:
    fail("demo did not name its devices")
url = "http://127.0.0.1:%d/" % (int(os.environ["TERN_PORT_BASE"]) + 4)
q = "SELECT count() FROM %s.readings FINAL WHERE device_id LIKE '%s-%%'" % (db, prefix.group(1))
with urllib.request.urlopen(urllib.request.Request(url, data=q.encode()), timeout=10) as r:
    n = int(r.read().decode().strip())
if n != int(kv["clickhouse_rows"]) or n < int(kv["stored"]) - int(re.search(r"still_queued=(\d+)", p.stdout).group(1)):
    fail("ClickHouse has %d rows for %s, the demo reported %s" % (n, prefix.group(1), kv))
left = procs_mentioning(run_dir)
if left:
    fail("processes left behind: %s" % left)
if not stack_running():
    fail("the demo stopped the suite's stack, which it did not start")
shutil.rmtree(run_dir, ignore_errors=True)
print("ok: %d readings from 3 devices in ClickHouse, nothing missing, nothing left running" % n)
