#!/usr/bin/env python3
"""mqtt_acl.py - the production mosquitto config shipped in compose/mosquitto/
enforces device identity: anonymous clients are refused; a device with valid
credentials can publish only to its own readings topic and subscribe only to
its own receipts; the relay user reads every device's readings and writes
receipts. Runs a private mosquitto with the shipped config and ACL file (only
paths and the port rewritten) and uses the real mosquitto_pub/mosquitto_sub."""
import os, re, shutil, signal, socket, subprocess, sys, tempfile, time

src = os.environ["TERN_SOURCE_DIR"]
port = int(os.environ["TERN_PORT_BASE"]) + 60
work = tempfile.mkdtemp(prefix="tern-acl-")
failures = []

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)

# The shipped config, with container paths mapped to the temp dir.
conf = open(f"{src}/compose/mosquitto/mosquitto.conf").read()
conf = conf.replace("/mosquitto/config/", work + "/").replace("/mosquitto/data/", work + "/")
conf = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", conf, flags=re.M)
check(f"listener {port}" in conf, "shipped config has a single listener on 1883")
open(f"{work}/mosquitto.conf", "w").write(conf)
shutil.copy(f"{src}/compose/mosquitto/acl", f"{work}/acl")
passwd = f"{work}/passwd"
open(passwd, "w").close()
users = {"dev-a": "pa", "dev-b": "pb", "tern-relay": "pr"}
for u, p in users.items():
    subprocess.run(["mosquitto_passwd", "-b", passwd, u, p], check=True)
os.chmod(passwd, 0o644)
os.chmod(work, 0o755)

broker = subprocess.Popen(["mosquitto", "-c", f"{work}/mosquitto.conf"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
try:
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.time() > deadline or broker.poll() is not None:
                sys.exit("mosquitto did not start: " + broker.stdout.read().decode(errors="replace"))
            time.sleep(0.05)

    def pub(user, topic, msg, v="mqttv5"):
        args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-V", v,
                "-t", topic, "-m", msg, "-i", f"pub-{user}-{time.time_ns()}"]
        if user:
            args += ["-u", user, "-P", users[user]]
        return subprocess.run(args, capture_output=True, text=True, timeout=10)

    def sub(user, topic, count, wait=3):
        args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-V", "mqttv5",
                "-t", topic, "-C", str(count), "-W", str(wait), "-v",
                "-u", user, "-P", users[user], "-i", f"sub-{user}-{time.time_ns()}"]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # Anonymous clients are refused.
    r = pub(None, "tern/dev-a/readings", "anon")
    check(r.returncode != 0, "anonymous publish refused (exit %d: %s)" % (r.returncode, (r.stderr or r.stdout).strip()))
    r = pub("dev-a", "tern/dev-a/readings", "x")
    r2 = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "t", "-m", "x",
                         "-u", "dev-a", "-P", "wrong"], capture_output=True, text=True, timeout=10)
    check(r2.returncode != 0, "wrong password refused")

    # The relay sees dev-a's own readings, and nothing dev-a publishes as dev-b.
    s = sub("tern-relay", "tern/+/readings", 10, wait=4)
    time.sleep(0.5)  # let the subscription settle before publishing
    r_own = pub("dev-a", "tern/dev-a/readings", "own")
    r_spoof = pub("dev-a", "tern/dev-b/readings", "spoof")
    r_spoof311 = pub("dev-a", "tern/dev-b/readings", "spoof311", v="mqttv311")
    out, _ = s.communicate(timeout=15)
    check(r_own.returncode == 0, "device publishes to its own readings topic")
    check("tern/dev-a/readings own" in out, "relay receives the device's own reading")
    check("spoof" not in out, "a device cannot publish under another device's id (relay saw: %r)" % out)
    # "own" was published before the spoofs on the same subscription, so its
    # arrival proves the subscription was live when the spoofs were sent.

    # Receipts: the relay may write them, only the device itself may read them.
    sa = sub("dev-a", "tern/dev-a/receipts", 1, wait=4)
    sb = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-V", "mqttv5",
                           "-t", "tern/dev-a/receipts", "-t", "tern/dev-b/receipts", "-C", "2", "-W", "4", "-v",
                           "-u", "dev-b", "-P", users["dev-b"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    rr = pub("tern-relay", "tern/dev-a/receipts", "receipt-for-a")
    pub("tern-relay", "tern/dev-b/receipts", "receipt-for-b")
    outa, _ = sa.communicate(timeout=15)
    outb, _ = sb.communicate(timeout=15)
    check(rr.returncode == 0, "relay publishes a receipt")
    check("receipt-for-a" in outa, "device reads its own receipts")
    check("receipt-for-b" in outb, "device b's subscriber was live (got its own receipt)")
    check("receipt-for-a" not in outb, "another device cannot read them")
    # A device cannot forge receipts for itself or others.
    sa2 = sub("dev-a", "tern/dev-a/receipts", 1, wait=4)
    time.sleep(0.5)
    pub("dev-b", "tern/dev-a/receipts", "forged")
    pub("dev-a", "tern/dev-a/receipts", "self-forged")
    pub("tern-relay", "tern/dev-a/receipts", "genuine")
    outa2, _ = sa2.communicate(timeout=15)
    check("genuine" in outa2, "the receipt subscriber was live")
    check("forged" not in outa2, "devices cannot publish receipts")
finally:
    broker.send_signal(signal.SIGTERM)
    try:
        broker.wait(10)
    except subprocess.TimeoutExpired:
        broker.kill()
    shutil.rmtree(work, ignore_errors=True)

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
