#!/usr/bin/env python3
"""chaos.py - the end-to-end fault scenario: the whole pipeline under a
schedule of faults, then an exact accounting of every reading.

Runs on a private stack (its own TERN_STACK_DIR, ports TERN_PORT_BASE+100) so
it can stop and start services without disturbing anything else:

  agents --MQTT (ack = end-to-end, one of them through a TCP proxy we control)--> mosquitto --> relay (source = mqtt) --+
  agents --Kafka-----------------------------------------------------------------> Kafka ----> relay (source = kafka) --+--> ClickHouse

Faults (each injected, held, repaired, then the pipeline must recover):
  malformed messages (mosquitto_pub to a device's readings topic, kcat to the
  Kafka topic), agent SIGKILL + restart, relay SIGKILL + restart (each path),
  mosquitto stop/start, Kafka stop/start, ClickHouse stop/start, network cut
  between an agent and its broker (the proxy stalls, then drops and refuses
  connections), disk full under an agent (its data_dir on a small tmpfs,
  filled with ballast, then freed), and an agent whose clock is not
  synchronised (clock_check = adjtimex on a host whose kernel says
  STA_UNSYNC; readings carry flag bit 0 throughout).

At the end every agent's sensors are switched off by a config reload, the
agents drain their queues, and the accounting compares, per device and
storage epoch, the seqs each agent stored (1..last_seq: seqs are assigned
contiguously to durable readings) with `readings FINAL`. Exit status 1 unless
missing = 0 and duplicated = 0. Readings the disk-full agent dropped on
purpose (never stored, counted by its storage as dropped_disk_full) are
reported apart, not as missing.

  chaos.py --short          ~2-3 minutes (the ctest e2e_chaos_short)
  chaos.py [--duration S]   the full run (bench/chaos.sh), default 360 s of faults
  --kv                      end with key=value lines (produced, stored, missing,
                            duplicated, faults_injected, ...)

Environment: TERN_SOURCE_DIR (default: this checkout), TERN_BINARY_DIR
(required: the build with tern-agent and tern-relay), TERN_PORT_BASE (the
scenario uses BASE+100..BASE+160), TERN_CHAOS_DIR (work dir; default a new
temporary directory, removed on success).
"""
import argparse
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("TERN_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("TERN_BINARY_DIR", "")
AGENT = os.path.join(BIN, "agent", "tern-agent")
RELAY = os.path.join(BIN, "relay", "tern-relay")
STACK = os.path.join(SRC, "compose", "local", "stack")

T0 = time.monotonic()
CLOCK_BACK_S = 2 * 365 * 86400   # how far chaos-m2's clock is behind until "NTP" steps it


def log(msg):
    sys.stderr.write("[chaos %6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class Failure(Exception):
    pass


def wait_for(what, cond, timeout, step=0.3):
    """Polls cond() until it returns something true; raises after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(step)


# --------------------------------------------------------------------- stack

class Stack:
    def __init__(self, state_dir, base):
        self.env = dict(os.environ, TERN_STACK_DIR=state_dir, TERN_PORT_BASE=str(base))
        self.base = base
        self.mqtt_port = base + 1
        self.kafka = "127.0.0.1:%d" % (base + 2)
        self.ch = "http://127.0.0.1:%d" % (base + 4)
        self.started = False

    def run(self, *args, timeout=300):
        p = subprocess.run([STACK] + list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise Failure("stack %s failed: %s" % (" ".join(args), p.stderr[-2000:]))

    def up(self, *svc):
        self.started = True
        self.run("up", *svc)

    def down(self, *svc):
        self.run("down", *svc)

    def query(self, sql, timeout=20):
        req = urllib.request.Request(self.ch + "/", data=sql.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read().decode()

    def rows(self, sql):
        return [l.split("\t") for l in self.query(sql + " FORMAT TabSeparated").splitlines() if l]

    def ch_ok(self):
        try:
            return self.query("SELECT 1", timeout=3).strip() == "1"
        except (urllib.error.URLError, OSError):
            return False


# --------------------------------------------------------------------- proxy

class Proxy:
    """A TCP proxy on 127.0.0.1 between an agent and its broker that we can
    stall (bytes held, connections kept: a black hole) and cut (connections
    reset, new ones refused) to play a broken network."""

    def __init__(self, listen_port, target_port):
        self.target = ("127.0.0.1", target_port)
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", listen_port))
        self.srv.listen(16)
        self.port = listen_port
        self.lock = threading.Lock()
        self.conns = []
        self.stalled = False
        self.cut = False
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if self.cut:
                c.close()
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append((c, u))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, c, u):
        peers = {c: u, u: c}
        try:
            while not self.closed:
                if self.stalled:
                    time.sleep(0.05)
                    continue
                r, _, _ = select.select([c, u], [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):  # ValueError: reset_all closed a socket under us
            pass
        finally:
            self._drop(c, u)

    def _drop(self, c, u):
        with self.lock:
            if (c, u) in self.conns:
                self.conns.remove((c, u))
        for s in (c, u):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            except OSError:
                pass

    def reset_all(self):
        with self.lock:
            conns = list(self.conns)
        for c, u in conns:
            self._drop(c, u)

    def close(self):
        self.closed = True
        self.reset_all()
        self.srv.close()


# --------------------------------------------------------------------- processes

class Proc:
    """A process we started in its own session; stopped only by its pid."""

    def __init__(self, name, argv, logpath, env=None):
        self.name, self.argv, self.logpath, self.env = name, argv, logpath, env
        self.p = None

    def start(self):
        logf = open(self.logpath, "ab")
        self.p = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True, env=self.env)
        logf.close()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill9(self):
        if self.alive():
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def stop(self, grace=15):
        if not self.alive():
            return
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(grace)
        except subprocess.TimeoutExpired:
            log("%s did not stop in %ds: SIGKILL" % (self.name, grace))
            self.p.kill()
            self.p.wait()


class Agent(Proc):
    def __init__(self, dev, transport, work, port, stack, opts):
        self.dev, self.transport = dev, transport
        self.data_dir = opts.get("data_dir") or os.path.join(work, "agents", dev)
        self.conf = os.path.join(work, "conf", dev + ".ini")
        self.port, self.stack, self.opts = port, stack, opts
        self.status = None          # last status seen
        self.epochs = {}            # epoch (int) -> highest last_seq seen
        self.dropped_acc = {}       # dropped_* counters of earlier incarnations
        self.dropped_cur = {}
        self.lock = threading.Lock()
        env = None
        if opts.get("fakeclock"):
            # The wall clock set back by the shim until the file says 0.
            env = dict(os.environ, LD_PRELOAD=opts["fakeclock"][0], TERN_FAKECLOCK_FILE=opts["fakeclock"][1],
                       ASAN_OPTIONS="verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", ""))
        super().__init__(dev, [AGENT, "--config", self.conf], os.path.join(work, "logs", dev + ".log"), env)
        self.write_config(sensors=True)

    def write_config(self, sensors):
        o = self.opts
        ms = max(1, int(1000 / o["rate"]))
        lines = ["[agent]", "device_id = " + self.dev, "data_dir = " + self.data_dir,
                 "shutdown_timeout = 5s", "clock_check = " + o.get("clock_check", "build_date"), ""]
        lines += ["[storage]", "commit_ms = 200ms"]
        if o.get("max_bytes"):
            # The WAL may grow to max_bytes/8 before a checkpoint: on a small
            # disk max_bytes must fit the disk, as in a real deployment.
            lines += ["max_bytes = %s" % o["max_bytes"]]
        lines += [""]
        for name, kind in (("env", "env"), ("counter", "counter")):
            lines += ["[sensor.%s]" % name, "driver = sim", "kind = " + kind, "interval = %dms" % ms,
                      "enabled = " + ("true" if sensors else "false"), ""]
        if self.transport == "mqtt":
            lines += ["[uplink.mqtt]", "host = 127.0.0.1", "port = %d" % self.port, "ack = end-to-end",
                      "reconnect_min = 200ms", "reconnect_max = 2s", "ack_timeout = 10s", "keepalive = 5s",
                      "connect_timeout = 3s", "retry_delay = 500ms"]
            if o.get("receipt_timeout_key"):
                lines += ["receipt_timeout = 10s"]
        else:
            lines += ["[uplink.kafka]", "brokers = " + self.stack.kafka, "topic = tern.readings",
                      "message_timeout_ms = 20000", "retry_delay = 500ms"]
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.conf)

    def query_status(self):
        sock = os.path.join(self.data_dir, "tern-agent.sock")
        try:
            p = subprocess.run([AGENT, "status", "--socket", sock, "--json"], capture_output=True, text=True,
                               timeout=5)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None
        try:
            st = json.loads(p.stdout)
        except ValueError:
            return None
        with self.lock:
            self.status = st
            ep = int(st["epoch"], 16)
            self.epochs[ep] = max(self.epochs.get(ep, 0), int(st["durable_seq"]))
            self.dropped_cur = {k: int(v) for k, v in st.items() if k.startswith("dropped_")}
        return st

    def retire_counters(self):
        """Before this incarnation ends: its drop counters die with it."""
        self.query_status()
        with self.lock:
            for k, v in self.dropped_cur.items():
                self.dropped_acc[k] = self.dropped_acc.get(k, 0) + v
            self.dropped_cur = {}

    def dropped(self, key):
        with self.lock:
            return self.dropped_acc.get(key, 0) + self.dropped_cur.get(key, 0)


# --------------------------------------------------------------------- scenario

class Chaos:
    def __init__(self, a):
        self.a = a
        self.work = os.environ.get("TERN_CHAOS_DIR") or tempfile.mkdtemp(prefix="tern-chaos-")
        # A given work dir starts empty: old agent queues or ClickHouse data
        # would be counted as this run's.
        if os.environ.get("TERN_CHAOS_DIR"):
            subprocess.run(["umount", os.path.join(self.work, "tmpfs-k3")], capture_output=True)
            shutil.rmtree(self.work, ignore_errors=True)
        for d in ("conf", "logs", "agents"):
            os.makedirs(os.path.join(self.work, d), exist_ok=True)
        base = int(os.environ.get("TERN_PORT_BASE", "28800")) + 100
        self.base = base
        self.stack = Stack(os.path.join(self.work, "stack"), base)
        self.agents = []
        self.relays = {}
        self.proxy = None
        self.tmpfs = None
        self.faults = []      # (name, detail)
        self.skipped = []     # (name, why)
        self.garbage = {"mqtt": 0, "kafka": 0}
        self.stop_poll = threading.Event()
        self.clock_agent = None     # clock unsynchronised all along (adjtimex)
        self.stepped_agent = None   # clock set back, then stepped (fakeclock)
        self.clock_file = None
        self.clock_stepped = False

    # ---- set-up
    def probe(self):
        ref = subprocess.run([RELAY, "--config-reference"], capture_output=True, text=True).stdout
        self.relay_mqtt = "### [mqtt]" in ref and "`source`" in ref
        doc = subprocess.run([AGENT, "--config-doc"], capture_output=True, text=True).stdout
        self.agent_e2e = "end-to-end" in doc and self._agent_accepts_e2e()
        self.receipt_timeout_key = "`receipt_timeout`" in doc
        self.mqtt = self.relay_mqtt and self.agent_e2e
        if not self.mqtt:
            why = ("tern-relay has no MQTT source" if not self.relay_mqtt
                   else "tern-agent does not accept ack = end-to-end")
            log("MQTT path unavailable (%s): running the Kafka path only" % why)
            self.skipped.append(("mqtt path", why))

    def _agent_accepts_e2e(self):
        f = os.path.join(self.work, "conf", "probe.ini")
        with open(f, "w") as fh:
            fh.write("[agent]\ndevice_id = probe\ndata_dir = %s\n[sensor.s]\ndriver = sim\n"
                     "[uplink.mqtt]\nhost = 127.0.0.1\nack = end-to-end\n" % os.path.join(self.work, "probe"))
        return subprocess.run([AGENT, "--config", f, "--check"], capture_output=True).returncode == 0

    def relay_conf(self, kind):
        port = self.base + (40 if kind == "kafka" else 41)
        lines = ["[kafka]", "brokers = " + self.stack.kafka, "topic = tern.readings", "group = chaos",
                 "partitions = 2", "session_timeout_ms = 6000", "instance_id = chaos-" + kind, "",
                 "[clickhouse]", "url = " + self.stack.ch, "compression = none", "timeout_ms = 5000", "",
                 "[batch]", "max_delay_ms = 500", "",
                 "[relay]", "metrics_listen = 127.0.0.1:%d" % port, "retry_base_ms = 100", "retry_max_ms = 2000"]
        if kind == "mqtt":
            lines += ["source = mqtt", "", "[mqtt]", "host = 127.0.0.1", "port = %d" % self.stack.mqtt_port,
                      "group = chaos", "client_id = chaos-relay-mqtt", "keepalive_s = 5"]
        path = os.path.join(self.work, "conf", "relay-%s.ini" % kind)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def setup(self):
        if not (os.access(AGENT, os.X_OK) and os.access(RELAY, os.X_OK)):
            raise Failure("TERN_BINARY_DIR=%r has no agent/tern-agent and relay/tern-relay" % BIN)
        self.probe()
        log("work dir %s, private stack on ports %d.." % (self.work, self.base))
        self.stack.up()
        conf = self.relay_conf("kafka")
        p = subprocess.run([RELAY, "--config", conf, "init"], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise Failure("tern-relay init failed: " + p.stderr[-2000:])
        kinds = ["kafka"] + (["mqtt"] if self.mqtt else [])
        for k in kinds:
            r = Proc("relay-" + k, [RELAY, "--config", self.relay_conf(k), "run"],
                     os.path.join(self.work, "logs", "relay-%s.log" % k))
            r.start()
            self.relays[k] = r
        rate = self.a.rate
        common = {"rate": rate, "receipt_timeout_key": self.receipt_timeout_key}
        # Kafka devices: k1 has the unsynchronised clock, k3 the small disk.
        clock_mode = "adjtimex" if self.host_clock_unsynced() else None
        if clock_mode:
            self.clock_agent = "chaos-k1"
        else:
            self.skipped.append(("clock unsynchronised", "this host's kernel reports a synchronised clock"))
        self.agents.append(Agent("chaos-k1", "kafka", self.work, 0, self.stack,
                                 dict(common, clock_check=clock_mode or "build_date")))
        self.agents.append(Agent("chaos-k2", "kafka", self.work, 0, self.stack, common))
        k3 = dict(common)
        if os.geteuid() == 0 and shutil.which("mount"):
            self.tmpfs = os.path.join(self.work, "tmpfs-k3")
            os.makedirs(self.tmpfs, exist_ok=True)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % self.a.tmpfs_kib, "tern-chaos",
                                self.tmpfs], capture_output=True, text=True)
            if r.returncode != 0:
                self.skipped.append(("disk full", "mount tmpfs failed: " + r.stderr.strip()))
                self.tmpfs = None
            else:
                k3["data_dir"] = os.path.join(self.tmpfs, "data")
                k3["max_bytes"] = "%dKiB" % (self.a.tmpfs_kib // 2)
        else:
            self.skipped.append(("disk full", "needs root to mount a tmpfs"))
        self.agents.append(Agent("chaos-k3", "kafka", self.work, 0, self.stack, k3))
        if self.mqtt:
            self.proxy = Proxy(self.base + 50, self.stack.mqtt_port)
            m1 = dict(common)
            lib = os.path.join(BIN, "tests", "e2e", "libtern_fakeclock.so")
            if os.path.exists(lib):
                self.clock_file = os.path.join(self.work, "m1-clock-offset")
                with open(self.clock_file, "w") as f:
                    f.write("%d\n" % -CLOCK_BACK_S)
                m1["fakeclock"] = (lib, self.clock_file)
                m1["clock_check"] = "build_date"
                self.stepped_agent = "chaos-m1"
            else:
                self.skipped.append(("clock step", "%s not built" % lib))
            self.agents.append(Agent("chaos-m1", "mqtt", self.work, self.proxy.port, self.stack, m1))
            self.agents.append(Agent("chaos-m2", "mqtt", self.work, self.stack.mqtt_port, self.stack, common))
        else:
            self.skipped.append(("clock step", "it runs on an MQTT agent, behind the proxy"))
        for ag in self.agents:
            ag.start()
        threading.Thread(target=self.poll_loop, daemon=True).start()
        wait_for("every device's first rows in ClickHouse", self.all_devices_arrived, 120, 1)
        log("pipeline up: %d agents (%s), relays: %s" % (
            len(self.agents), ", ".join("%s/%s" % (g.dev, g.transport) for g in self.agents),
            ", ".join(self.relays)))

    @staticmethod
    def host_clock_unsynced():
        import ctypes

        class Timex(ctypes.Structure):
            _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                        ("rest", ctypes.c_byte * 256)]
        try:
            t = Timex()
            rc = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.byref(t))
        except (OSError, AttributeError):
            return False
        return rc == 5 or bool(t.status & 0x40)  # TIME_ERROR or STA_UNSYNC

    def all_devices_arrived(self):
        try:
            got = {r[0] for r in self.stack.rows("SELECT DISTINCT device_id FROM tern.readings")}
        except (urllib.error.URLError, OSError):
            return False
        return all(a.dev in got for a in self.agents)

    def poll_loop(self):
        while not self.stop_poll.wait(2.0):
            for ag in self.agents:
                if ag.alive():
                    ag.query_status()

    def fault(self, name, detail=""):
        self.faults.append((name, detail))
        log("FAULT %d: %s %s" % (len(self.faults), name, detail))

    def hold(self, seconds):
        time.sleep(seconds)  # the fault's duration itself, not a wait for a condition

    def delivering(self, timeout=120):
        """Recovery check: every agent's acked count grows again and
        ClickHouse grows. Raises on timeout."""
        for proc in list(self.agents) + list(self.relays.values()):
            if not proc.alive():
                # We restart what we kill at once: a dead one crashed.
                raise Failure("%s exited by itself (status %s); see %s" % (
                    proc.name, proc.p.returncode if proc.p else "?", proc.logpath))

        def acked(ag):
            st = ag.query_status() or {}
            return sum(int(v) for k, v in st.items() if k.startswith("uplink.") and k.endswith(".acked"))
        start = {ag.dev: acked(ag) for ag in self.agents if ag.alive()}
        n0 = self.ch_count()
        wait_for("all agents delivering again", lambda: all(acked(ag) > start[ag.dev] for ag in self.agents
                                                             if ag.dev in start and ag.alive()), timeout, 1)
        wait_for("ClickHouse growing again", lambda: (self.ch_count() or 0) > (n0 or 0), timeout, 1)

    def ch_count(self):
        try:
            return int(self.stack.query("SELECT count() FROM tern.readings").strip())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def agent(self, dev):
        return next(a for a in self.agents if a.dev == dev)

    # ---- faults
    def f_garbage(self):
        # A nonce per injection: the rejected table is deduplicated, so
        # identical garbage injected twice would count once.
        self.garbage_rounds = getattr(self, "garbage_rounds", 0) + 1
        nonce = b"%d" % self.garbage_rounds
        junk = [b"\x00\xff\xfegarbage" + nonce, b"{not json " + nonce,
                b'{"v":1,"device_id":"chaos-m1","epoch":"zz","seq":-' + nonce + b'}',
                b'{"v":1,"device_id":"chaos-m2","epoch":"0000000000000001","seq":' + nonce + b',"ts":"x"}',
                b"[" + nonce + b"]"]
        if self.garbage_rounds == 1:
            junk.append(b"")
        n = 0
        if self.mqtt:
            for i, j in enumerate(junk):
                dev = "chaos-m1" if i % 2 else "chaos-m2"
                # -s: the payload from stdin, so it may hold any byte (NUL too).
                # (-n: mosquitto_pub refuses an empty stdin.)
                subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.stack.mqtt_port), "-q", "1",
                                "-t", "tern/%s/readings" % dev] + (["-s"] if j else ["-n"]),
                               input=j, check=True, timeout=10)
                n += 1
            self.garbage["mqtt"] += n
        k = 0
        for j in junk:
            if not j:
                continue  # kcat skips empty lines
            subprocess.run(["kcat", "-P", "-b", self.stack.kafka, "-t", "tern.readings", "-p", str(k % 2)],
                           input=j + b"\n", check=True, timeout=20)
            k += 1
        self.garbage["kafka"] += k
        self.fault("malformed messages", "(%d via mosquitto_pub, %d via kcat)" % (n, k))

    def f_agent_kill(self, dev="chaos-k2", down=3):
        ag = self.agent(dev)
        ag.retire_counters()
        ag.kill9()
        self.fault("agent SIGKILL", dev)
        self.hold(down)
        ag.start()

    def f_relay_kill(self, kind, down=3):
        r = self.relays.get(kind)
        if not r:
            return
        r.kill9()
        self.fault("relay SIGKILL", kind)
        self.hold(down)
        r.start()

    def f_service(self, svc, down):
        self.stack.down(svc)
        self.fault("%s stopped" % svc, "for %ds" % down)
        self.hold(down)
        self.stack.up(svc)
        log("%s back" % svc)

    def f_network_cut(self, stall, cut):
        if not self.proxy:
            self.skipped.append(("network cut", "no MQTT agent behind the proxy"))
            return
        self.proxy.stalled = True
        self.fault("network cut", "chaos-m1<->mosquitto: %ds black hole, then %ds refused" % (stall, cut))
        if self.clock_file and not self.clock_stepped:
            # What chaos-m1 sent just before the cut is in ClickHouse, but
            # its receipts are stuck in the black hole: the agent re-sends
            # those readings after the step, with corrected timestamps.
            with open(self.clock_file, "w") as f:
                f.write("0\n")
            self.clock_stepped = True
            self.fault("clock synchronised", "chaos-m1's clock steps %d days forward while readings it sent "
                       "await receipts" % (CLOCK_BACK_S // 86400))
        self.hold(stall)
        self.proxy.cut = True
        self.proxy.reset_all()
        self.proxy.stalled = False
        self.hold(cut)
        self.proxy.cut = False

    def f_kafka_disk_full(self, hold):
        """Kafka stops; meanwhile chaos-k3's disk is full. The outage makes
        its queue grow, so SQLite really needs new pages: an agent whose
        queue drains keeps reusing its WAL and never notices a full disk."""
        if not self.tmpfs:
            self.f_service("kafka", hold)
            return
        ag = self.agent("chaos-k3")
        before = ag.dropped("dropped_disk_full")
        ballast = os.path.join(self.tmpfs, "ballast")
        with open(ballast, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        self.fault("disk full", "chaos-k3 data_dir tmpfs filled")
        try:
            self.stack.down("kafka")
            self.fault("kafka stopped", "until chaos-k3 drops readings for the full disk (at least %ds)" % hold)
            self.hold(hold)
            try:
                wait_for("chaos-k3 to hit the full disk",
                         lambda: (ag.query_status() or 0) and ag.dropped("dropped_disk_full") > before, 60, 0.5)
                log("chaos-k3 dropped %d readings for the full disk" % (ag.dropped("dropped_disk_full") - before))
            except Failure as e:
                log("%s: the full disk did not bite" % e)
                self.faults[-2] = ("disk full", "chaos-k3 data_dir tmpfs filled, but it never needed space")
        finally:
            os.unlink(ballast)
            self.stack.up("kafka")
            log("kafka back, chaos-k3 has space again")

    def schedule(self):
        short = self.a.short
        d = 6 if short else 15         # service outage length, s
        steps = [
            self.f_garbage,
            lambda: self.f_agent_kill("chaos-k2"),
            lambda: self.f_relay_kill("kafka"),
            lambda: self.f_relay_kill("mqtt"),
            lambda: self.f_service("clickhouse", d),
            lambda: self.f_service("mosquitto", d) if self.mqtt else self.skipped.append(("mosquitto stop", "no MQTT path")),
            lambda: self.f_network_cut(d, 4),
            lambda: self.f_kafka_disk_full(d),
        ]
        if self.mqtt:
            steps.insert(2, lambda: self.f_agent_kill("chaos-m2"))
        if not short:
            # Overlapping faults: a relay dies while ClickHouse is away, an
            # agent dies while its broker is away.
            def relay_during_ch():
                self.stack.down("clickhouse")
                self.fault("clickhouse stopped", "for %ds, relay killed meanwhile" % d)
                self.hold(d / 2)
                self.f_relay_kill("kafka")
                self.f_relay_kill("mqtt")
                self.hold(d / 2)
                self.stack.up("clickhouse")

            def agent_during_kafka():
                self.stack.down("kafka")
                self.fault("kafka stopped", "for %ds, agent killed meanwhile" % d)
                self.f_agent_kill("chaos-k1", 2)
                self.hold(d)
                self.stack.up("kafka")
            steps += [relay_during_ch, agent_during_kafka, self.f_garbage]
        end = time.monotonic() + self.a.duration
        rounds = 0
        while True:
            for step in steps:
                step()
                self.delivering()
                time.sleep(self.a.gap)  # spacing between faults (load keeps flowing)
            rounds += 1
            if short or time.monotonic() >= end:
                break
            random.shuffle(steps)
        log("fault schedule done: %d faults in %d round(s)" % (len(self.faults), rounds))

    # ---- drain and account
    def drain(self):
        for ag in self.agents:
            ag.write_config(sensors=False)
            ag.p.send_signal(signal.SIGHUP)
        log("sensors off (SIGHUP); draining queues")

        def drained():
            ok = True
            for ag in self.agents:
                st = ag.query_status()
                if not st or int(st.get("queue_depth", 1)) != 0 or st.get("readings_taken") is None:
                    ok = False
            return ok
        wait_for("every agent's queue to drain", drained, 180, 1)
        # The final seqs: sensors are off, so durable_seq is final.
        for ag in self.agents:
            ag.query_status()
        expected = sum(sum(ag.epochs.values()) for ag in self.agents)

        def arrived():
            try:
                n = int(self.stack.query("SELECT count() FROM tern.readings FINAL").strip())
            except (urllib.error.URLError, OSError, ValueError):
                return False
            return n >= expected
        try:
            wait_for("ClickHouse to hold every stored reading", arrived, 120, 1)
        except Failure as e:
            log(str(e) + " (accounting anyway)")

    def account(self):
        s = self.stack
        per_epoch = {}
        for dev, ep, cnt, uniq, lo, hi in s.rows(
                "SELECT device_id, epoch, count(), uniqExact(seq), min(seq), max(seq) FROM tern.readings FINAL "
                "GROUP BY device_id, epoch"):
            per_epoch[(dev, int(ep))] = (int(cnt), int(uniq), int(lo), int(hi))
        dup_rows = s.rows("SELECT device_id, sum(c - 1) FROM (SELECT device_id, epoch, seq, count() AS c "
                          "FROM tern.readings FINAL GROUP BY device_id, epoch, seq HAVING c > 1) GROUP BY device_id")
        dups = {d: int(n) for d, n in dup_rows}
        roll = {d: int(n) for d, n in s.rows("SELECT device_id, sum(readings) FROM tern.readings_1m GROUP BY device_id")}
        final = {d: int(n) for d, n in s.rows("SELECT device_id, count() FROM tern.readings FINAL GROUP BY device_id")}
        raw = {d: int(n) for d, n in s.rows("SELECT device_id, count() FROM tern.readings GROUP BY device_id")}
        unsynced = {d: int(n) for d, n in s.rows(
            "SELECT device_id, count() FROM tern.readings FINAL WHERE bitAnd(flags, 1) = 1 GROUP BY device_id")}
        rejected = s.rows("SELECT reason, count() FROM tern.rejected FINAL GROUP BY reason ORDER BY count() DESC")

        tot = dict(produced=0, stored=0, dropped=0, final=0, missing=0, dup=0, extra=0, rolldiff=0)
        print("\naccounting (per device; stored = seqs 1..last_seq of each storage epoch)")
        hdr = "%-10s %-6s %7s %9s %9s %9s %8s %7s %6s %9s %9s %9s" % (
            "device", "via", "epochs", "stored", "dropped*", "FINAL", "missing", "dup", "extra", "rollup", "rawcopies", "unsynced")
        print(hdr)
        print("-" * len(hdr))
        for ag in self.agents:
            stored = sum(ag.epochs.values())
            dropped = ag.dropped("dropped_disk_full") + ag.dropped("dropped_queue_full")
            missing = extra = 0
            for ep, last in ag.epochs.items():
                cnt, uniq, lo, hi = per_epoch.get((ag.dev, ep), (0, 0, 0, 0))
                # Rows in FINAL with seq in 1..last: uniq minus any above last.
                above = 0
                if hi > last:
                    above = int(s.query("SELECT uniqExact(seq) FROM tern.readings FINAL WHERE device_id = '%s' "
                                        "AND epoch = %d AND seq > %d" % (ag.dev, ep, last)).strip())
                missing += last - (uniq - above)
                extra += above
            known = set(ag.epochs)
            for (dev, ep), (cnt, uniq, lo, hi) in per_epoch.items():
                if dev == ag.dev and ep not in known:
                    extra += uniq
            rolldiff = roll.get(ag.dev, 0) - final.get(ag.dev, 0)
            d = dups.get(ag.dev, 0)
            print("%-10s %-6s %7d %9d %9d %9d %8d %7d %6d %9d %9d %9d" % (
                ag.dev, ag.transport, len(ag.epochs), stored, dropped, final.get(ag.dev, 0), missing, d, extra,
                rolldiff, raw.get(ag.dev, 0) - final.get(ag.dev, 0), unsynced.get(ag.dev, 0)))
            tot["stored"] += stored
            tot["dropped"] += dropped
            tot["produced"] += stored + dropped
            tot["final"] += final.get(ag.dev, 0)
            tot["missing"] += missing
            tot["dup"] += d
            tot["extra"] += extra
            tot["rolldiff"] += abs(rolldiff)
        print("-" * len(hdr))
        print("dropped* = dropped on purpose by the agent's storage (disk full, memory queue full): never stored, "
              "not missing")
        print("rollup = sum(readings) in readings_1m minus count() in readings FINAL (must be 0)")
        print("rawcopies = physical duplicate rows not yet merged away (harmless: FINAL hides them)")
        print("unsynced = rows with flags bit 0 (clock_unsynced)%s" % (
            "; %s runs with an unsynchronised clock" % self.clock_agent if self.clock_agent else ""))
        print("\nrejected (tern.rejected FINAL) by reason:  [injected malformed: %d via MQTT, %d via Kafka]" % (
            self.garbage["mqtt"], self.garbage["kafka"]))
        for reason, n in rejected:
            print("  %6s  %s" % (n, reason[:150]))
        if not rejected:
            print("  (none)")
        print("\nfaults injected: %d" % len(self.faults))
        for i, (n, dtl) in enumerate(self.faults, 1):
            print("  %2d. %s %s" % (i, n, dtl))
        for n, why in self.skipped:
            print("  skipped: %s (%s)" % (n, why))
        self.totals = tot
        self.rejected_total = sum(int(n) for _, n in rejected)
        problems = []
        if tot["missing"]:
            problems.append("%d readings missing" % tot["missing"])
        if tot["dup"]:
            problems.append("%d duplicated in FINAL" % tot["dup"])
        if tot["extra"]:
            problems.append("%d rows in FINAL that no agent stored" % tot["extra"])
        if tot["rolldiff"]:
            problems.append("rollup differs from FINAL by %d" % tot["rolldiff"])
        if self.clock_agent and unsynced.get(self.clock_agent) != final.get(self.clock_agent):
            problems.append("%s's clock was never synchronised, yet %d of its readings lack clock_unsynced" % (
                self.clock_agent, final.get(self.clock_agent, 0) - unsynced.get(self.clock_agent, 0)))
        if self.stepped_agent:
            # Before the step: flagged, old time. After: unflagged, true time.
            # A reading with the old time and no flag was "corrected" wrongly.
            a = self.stepped_agent
            old_unflagged, old_flagged, new_flagged = [int(x) for x in s.rows(
                "SELECT countIf(ts < now() - %d AND bitAnd(flags, 1) = 0), countIf(ts < now() - %d AND "
                "bitAnd(flags, 1) = 1), countIf(ts >= now() - %d AND bitAnd(flags, 1) = 1) FROM tern.readings "
                "FINAL WHERE device_id = '%s'" % (CLOCK_BACK_S // 2, CLOCK_BACK_S // 2, CLOCK_BACK_S // 2, a))[0]]
            print("clock step on %s: %d readings flagged with the old time, %d with the old time unflagged, "
                  "%d flagged with the true time" % (a, old_flagged, old_unflagged, new_flagged))
            if old_unflagged:
                problems.append("%s: %d readings with the unsynchronised time but no clock_unsynced flag" % (
                    a, old_unflagged))
            if not old_flagged:
                problems.append("%s: no reading carries the unsynchronised time: the fault did not happen" % a)
        if self.rejected_total < self.garbage["mqtt"] + self.garbage["kafka"]:
            problems.append("%d malformed messages injected, only %d in rejected" % (
                self.garbage["mqtt"] + self.garbage["kafka"], self.rejected_total))
        return problems

    # ---- teardown
    def teardown(self):
        self.stop_poll.set()
        for ag in self.agents:
            try:
                ag.stop()
            except Exception as e:  # keep tearing down the rest
                log("stopping %s: %s" % (ag.dev, e))
        for r in self.relays.values():
            try:
                r.stop()
            except Exception as e:
                log("stopping %s: %s" % (r.name, e))
        if self.proxy:
            self.proxy.close()
        if self.tmpfs:
            r = subprocess.run(["umount", self.tmpfs], capture_output=True, text=True)
            if r.returncode != 0:
                log("umount %s: %s" % (self.tmpfs, r.stderr.strip()))
        if self.stack.started:
            try:
                self.stack.down()
            except Exception as e:
                log("stack down: %s" % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="one round of faults, short outages (~2-3 min)")
    ap.add_argument("--duration", type=float, default=360, help="full mode: seconds of fault rounds")
    ap.add_argument("--rate", type=float, default=2.0, help="polls per second per sensor (4 readings a poll)")
    ap.add_argument("--gap", type=float, default=2.0, help="seconds between faults")
    ap.add_argument("--tmpfs-kib", type=int, default=8192, help="size of the disk-full agent's tmpfs")
    ap.add_argument("--kv", action="store_true", help="print key=value result lines on stdout")
    ap.add_argument("--keep", action="store_true", help="keep the work dir even on success")
    a = ap.parse_args()
    c = Chaos(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 1
    problems = ["did not finish"]
    try:
        c.setup()
        c.schedule()
        c.drain()
        problems = c.account()
        rc = 0 if not problems else 1
    except Failure as e:
        log("FAILED: %s" % e)
        problems = [str(e)]
        try:
            try:
                c.drain()
            except Failure as e2:
                log("drain: %s" % e2)
            c.account()
        except Exception as e2:
            log("no accounting: %s" % e2)
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    except Exception as e:  # a bug here still tears down what we started
        log("FAILED: %r" % e)
        problems = ["internal error: %r" % e]
        import traceback
        traceback.print_exc()
    finally:
        c.teardown()
    t = getattr(c, "totals", None)
    if a.kv and t:
        print("produced=%d" % t["produced"])
        print("stored=%d" % t["stored"])
        print("missing=%d" % t["missing"])
        print("duplicated=%d" % t["dup"])
        print("faults_injected=%d" % len(c.faults))
        print("dropped_on_purpose=%d" % t["dropped"])
        print("rows_final=%d" % t["final"])
        print("rollup_difference=%d" % t["rolldiff"])
        print("rejected=%d" % c.rejected_total)
        print("mqtt_path=%d" % int(c.mqtt))
        print("duration_s=%.0f" % (time.monotonic() - T0))
    if rc == 0:
        print("\nPASS: every stored reading is in readings FINAL exactly once (%d faults injected)" % len(c.faults))
        if not a.keep and not os.environ.get("TERN_CHAOS_DIR"):
            shutil.rmtree(c.work, ignore_errors=True)
    else:
        print("\nFAIL: %s (work dir kept: %s)" % ("; ".join(problems), c.work))
    return rc


if __name__ == "__main__":
    sys.exit(main())
