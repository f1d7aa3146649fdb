"""harness.py - starting and stopping `pcache serve` for the server tests.

A server runs as a child process on a free loopback port (--port 0; the port
is read from its first line on stderr). stop() sends SIGTERM, as an operator
would, and asserts a clean exit: status 0, "stopped" logged, and no
sanitizer report (the same tests run the ASan+UBSan and TSan builds, where a
leak, a race or undefined behaviour makes the process report and fail).
"""
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

PCACHE = os.environ.get("PCACHE_BIN", "build/pcache")
MODEL = os.environ.get("PCACHE_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")
# Sanitizer builds run every step several times slower.
SLOW = float(os.environ.get("PCACHE_TEST_SLOWDOWN", "1"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer")


class Server:
    def __init__(self, *args, threads=2, ctx=4096, env=None):
        self.args = [PCACHE, "serve", "-m", MODEL, "--port", "0", "-t", str(threads), "-c", str(ctx), *args]
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=e, text=True)
        self.log = []
        self.port = None
        ready = threading.Event()

        def pump():  # keeps reading stderr so the server never blocks on a full pipe
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=pump, daemon=True)
        self.reader.start()
        if not ready.wait(120 * SLOW) or self.port is None:
            self.proc.kill()
            raise RuntimeError("server did not start: " + "".join(self.log))
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def request(self, method, path, body=None, headers=None, raw=None, timeout=600):
        """(status, headers, parsed JSON or text) of one HTTP request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
                status, hdrs, text = r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as err:
            status, hdrs, text = err.code, dict(err.headers), err.read().decode()
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def metric(self, name):
        _, _, text = self.request("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    def stop(self, test=None):
        """SIGTERM, then the checks of a clean stop (test: a unittest.TestCase)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=120 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(10)
        log = "".join(self.log)
        if test is not None:
            test.assertEqual(rc, 0, "server exit status %d; its log:\n%s" % (rc, log[-4000:]))
            test.assertIn("stopped", log)
            for mark in SANITIZER_MARKS:
                test.assertNotIn(mark, log, log[-4000:])
        return rc, log


def pcache_cli(*args, timeout=600):
    """Runs the pcache CLI; returns its stdout (raises on failure)."""
    r = subprocess.run([PCACHE, *args], capture_output=True, text=True, timeout=timeout * SLOW)
    if r.returncode != 0:
        raise RuntimeError(f"pcache {' '.join(args)}: {r.stderr}")
    return r.stdout


def wait_until(pred, timeout, step=0.05):
    end = time.time() + timeout * SLOW
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
