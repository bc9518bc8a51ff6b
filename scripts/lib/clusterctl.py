"""Shared by the scripts that drive cluster-run under load (reload-under-load,
faults, soak): start it on a loopback port, read its event lines with
deadlines, run wrk, stop only what was started, by pid."""

import os
import re
import select
import signal
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CLUSTER_RUN = os.path.join(REPO, "build", "supervisor", "cluster-run")
# cluster-run's own event line (workers write to the same stderr)
LISTENING = r"^cluster-run: worker \d+ \(pid \d+\) listening on"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_hello(outdir):
    """scripts/bench-servers/hello.c, which dies at once on SIGTERM."""
    exe = os.path.join(outdir, "hello")
    src = os.path.join(REPO, "scripts", "bench-servers", "hello.c")
    subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
    return exe


class Lines:
    """A stream read line by line, every wait with a deadline."""

    def __init__(self, stream):
        self.stream = stream
        self.buf = b""
        self.lines = []

    def pump(self, timeout):
        r, _, _ = select.select([self.stream], [], [], max(timeout, 0))
        if not r:
            return False
        chunk = os.read(self.stream.fileno(), 65536)
        if not chunk:
            return False
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode(errors="replace"))
        return True

    def pump_until(self, when):
        while time.monotonic() < when:
            self.pump(when - time.monotonic())

    def count(self, pattern):
        rx = re.compile(pattern)
        return sum(1 for l in self.lines if rx.search(l))

    def wait_for(self, pattern, count, deadline):
        while self.count(pattern) < count:
            if time.monotonic() > deadline:
                return False
            self.pump(deadline - time.monotonic())
        return True


class Cluster:
    """cluster-run with the given options over a server command."""

    def __init__(self, cluster_run, options, command, preexec=None):
        self.proc = subprocess.Popen([cluster_run] + options + ["--"] + command,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     preexec_fn=preexec)
        self.pid = self.proc.pid
        self.lines = Lines(self.proc.stderr)

    def worker_pids(self):
        """Live workers by id, from the forked/exited lines so far."""
        live = {}
        for l in self.lines.lines:
            m = re.search(r"worker (\d+) \(pid (\d+)\) (forked|exited|killed)", l)
            if not m:
                continue
            if m.group(3) == "forked":
                live[int(m.group(1))] = int(m.group(2))
            elif live.get(int(m.group(1))) == int(m.group(2)):
                del live[int(m.group(1))]
        return live

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        while self.lines.pump(0):
            pass
        return self.proc.returncode


def start_wrk(port, seconds, connections=16, keepalive=False):
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--timeout", "5s"]
    if not keepalive:
        cmd += ["-H", "Connection: close"]
    return subprocess.Popen(cmd + ["http://127.0.0.1:%d/" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish_wrk(wrk, seconds):
    """(requests, socket errors, non-2xx, text) of a wrk run."""
    out, _ = wrk.communicate(timeout=seconds + 30)
    text = out.decode(errors="replace")

    def num(rx):
        m = re.search(rx, text)
        return int(m.group(1)) if m else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    sock = sum(int(x) for x in errors.groups()) if errors else 0
    return num(r"(\d+) requests in"), sock, num(r"Non-2xx or 3xx responses: (\d+)"), text


def wait_answering(port, deadline):
    """True once 127.0.0.1:port accepts a connection and answers."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if s.recv(64):
                    return True
        except OSError:
            pass
        select.select([], [], [], 0.05)  # paced retry until the deadline
    return False
