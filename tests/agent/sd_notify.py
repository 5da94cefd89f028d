#!/usr/bin/env python3
"""sd_notify.py - the systemd protocol without systemd: READY=1 after start,
STATUS= lines, and WATCHDOG=1 fed only while healthy (a sensor read recently
and storage appends work). A fake NOTIFY_SOCKET collects the datagrams."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import AGENT, Workdir, fail, spawn, wait_for


def run(wd, name, sensor_opts):
    data = os.path.join(wd.path, name)
    cfg = wd.file(name + ".ini", "[agent]\ndata_dir = %s\nwatchdog_stale = 2s\n"
                  "[sensor.s]\ndriver = sim\nkind = counter\ninterval = 50ms\n%s\n" % (data, sensor_opts))
    path = os.path.join(wd.path, name + ".notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="100000")
    env.pop("WATCHDOG_PID", None)
    log = open(os.path.join(wd.path, name + ".log"), "w")
    p = spawn([AGENT, "--config", cfg], env=env, stdout=log, stderr=subprocess.STDOUT)
    msgs = []

    def got(prefix, count=1):
        try:
            while True:
                msgs.extend(sock.recv(4096).decode().split("\n"))
        except socket.timeout:
            pass
        return sum(1 for m in msgs if m.startswith(prefix)) >= count
    return p, msgs, got, sock


wd = Workdir("sdnotify")
p, msgs, got, sock = run(wd, "healthy", "")
wait_for("READY=1", lambda: got("READY=1"), 20)
wait_for("STATUS=", lambda: got("STATUS="), 20)
wait_for("WATCHDOG=1 fed repeatedly", lambda: got("WATCHDOG=1", 5), 20)
p.send_signal(signal.SIGTERM)
if p.wait(20) != 0:
    fail("agent exited %d" % p.returncode)
wait_for("STOPPING=1", lambda: got("STOPPING=1"), 5)
sock.close()

# Its only sensor always fails: READY, but the watchdog is never fed.
p, msgs, got, sock = run(wd, "sick", "error_rate = 1")
wait_for("READY=1", lambda: got("READY=1"), 20)
end = time.monotonic() + 1.5  # 15 watchdog periods
while time.monotonic() < end:
    if got("WATCHDOG=1"):
        fail("watchdog fed while no sensor ever read successfully: %s" % msgs)
p.send_signal(signal.SIGTERM)
p.wait(20)
sock.close()
print("ok: READY/STATUS/WATCHDOG/STOPPING sent; watchdog withheld while unhealthy")
wd.cleanup()
