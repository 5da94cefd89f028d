#!/usr/bin/env python3
"""tls_auth.py - the MQTT uplink over TLS with a user name and a password
from password_file, against a private mosquitto (TLS listener, no anonymous
access) started here: readings arrive; a wrong password is refused, reported
in status, and never appears in the log."""
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Agent, Workdir, fail, make_test_ca, run_ok, spawn, wait_for

wd = Workdir("tls")
P = wd.path


make_test_ca(wd)
run_ok("mosquitto_passwd", "-b", "-c", P + "/passwd", "dev1", "s3cret-Pw")

# mosquitto started as root drops to the mosquitto user: let it read these.
os.chmod(P, 0o755)
for f in os.listdir(P):
    os.chmod(os.path.join(P, f), 0o644)

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
wd.file("mosquitto.conf", """per_listener_settings false
listener %d 127.0.0.1
cafile %s/ca.crt
certfile %s/server.crt
keyfile %s/server.key
allow_anonymous false
password_file %s/passwd
persistence false
log_dest stderr
""" % (port, P, P, P, P))
broker = spawn(["mosquitto", "-c", P + "/mosquitto.conf"], stdout=subprocess.DEVNULL,
                          stderr=open(P + "/mosquitto.log", "w"))
try:
    def broker_up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    wait_for("the TLS broker", broker_up, 20)

    wd.file("pw", "s3cret-Pw\n")
    wd.file("badpw", "wrong-Pw\n")
    device = "tls-%d" % os.getpid()

    def config(name, pwfile):
        return wd.file(name + ".ini", """
[agent]
device_id = %s
data_dir = %s/%s
[sensor.c]
driver = sim
kind = counter
interval = 50ms
[uplink.mqtt]
host = localhost
port = %d
tls_ca_file = %s/ca.crt
username = dev1
password_file = %s
reconnect_min = 200ms
reconnect_max = 1s
""" % (device, P, name, port, P, pwfile))

    # The subscriber has the whole run to connect: the check below only
    # needs some readings, not all.
    out = P + "/sub.out"
    sub = spawn(["mosquitto_sub", "-h", "localhost", "-p", str(port), "--cafile", P + "/ca.crt",
                            "-u", "dev1", "-P", "s3cret-Pw", "-q", "1", "-t", "tern/%s/readings" % device],
                           stdout=open(out, "wb"), stderr=subprocess.DEVNULL)

    good = Agent(config("good", P + "/pw"), P + "/good", P + "/good.log")
    good.start()
    wait_for("readings acknowledged over TLS", lambda: good.status()["uplink.mqtt.acked_seq"] >= 20, 30)
    good.stop()

    bad = Agent(config("bad", P + "/badpw"), P + "/bad", P + "/bad.log")
    bad.start()
    st = wait_for("the refusal reported", lambda: (lambda s: s if "refused" in s["uplink.mqtt.last_error"]
                                                    else None)(bad.status()), 30)
    if st["uplink.mqtt.acked_seq"] != 0:
        fail("readings acked with a wrong password")
    bad.stop()
    for a in (good, bad):
        for secret in ("s3cret-Pw", "wrong-Pw"):
            if secret in a.log():
                fail("a password appears in the agent log")

    wait_for("readings at the TLS subscriber",
             lambda: len([l for l in open(out).read().split("\n") if l.startswith("{")]) >= 20, 20)
    sub.terminate()
    sub.wait()
    print("ok: TLS + password_file delivered; wrong password refused: %s" % st["uplink.mqtt.last_error"])
finally:
    broker.send_signal(signal.SIGTERM)
    broker.wait()
wd.cleanup()
