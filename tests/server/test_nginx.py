"""test_nginx.py - the README's nginx setup, run: two `pcache serve` processes on one Redis
behind nginx with examples/nginx/pcache.conf, the very file the README points to (only its three
ports are rewritten to free loopback ones).

Routing by schema name: requests naming a schema in X-Pcache-Schema (16 names, several requests
each) always reach the same server, whose own request counter (/metrics) rises by exactly
their number, and the names spread over both servers. A schema registered through nginx and
prompts naming it (streamed, through the proxy) go to one server, which answers from its memory
tier: no piece comes from Redis or is encoded again.

nginx runs in the foreground under a private prefix (pid, temp files, logs in a temporary folder)
and is stopped with the servers at the end. Skips with a line when nginx or Redis is absent
(scripts/setup.sh installs Debian's nginx-light).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import SLOW, Server
from test_store_tenants import PROMPT, SCHEMA, Redis, free_port

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "nginx", "pcache.conf")


def nginx_bin():
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)


class Nginx(unittest.TestCase):
    def setUp(self):
        self.nginx = nginx_bin()
        if not self.nginx:
            self.skipTest("nginx is not installed (scripts/setup.sh installs nginx-light)")
        self.redis = Redis()
        self.addCleanup(self.redis.stop)
        if self.redis.why:
            self.skipTest(self.redis.why)
        opts = ["--cache-redis", self.redis.addr, "--cache-redis-prefix", f"pctest-nginx:{os.getpid()}:{time.time()}:"]
        self.a, self.b = Server(*opts), Server(*opts)
        self.addCleanup(lambda: self.b.stop(test=self))
        self.addCleanup(lambda: self.a.stop(test=self))
        self.port = self.start_nginx()

    def start_nginx(self):
        with open(CONF) as f:
            conf = f.read()
        # the README's ports: 8080 in front, 8081 and 8082 behind
        self.assertEqual(len(re.findall(r"127\.0\.0\.1:808[012]\b", conf)), 3, conf)
        port = free_port()
        conf = (conf.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("127.0.0.1:8081", f"127.0.0.1:{self.a.port}")
                .replace("127.0.0.1:8082", f"127.0.0.1:{self.b.port}"))
        tmp = tempfile.mkdtemp(prefix="pcache-nginx-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(tmp, "pcache.conf"), "w") as f:
            f.write(conf)
        temps = "".join(f"{k}_temp_path {tmp}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        main = (f"daemon off;\nmaster_process on;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
                f"error_log {tmp}/error.log warn;\nevents {{ worker_connections 64; }}\n"
                f"http {{\naccess_log off;\n{temps}include {tmp}/pcache.conf;\n}}\n")
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(main)
        self.tmp = tmp
        proc = subprocess.Popen([self.nginx, "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"), "-e", f"{tmp}/error.log"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)

        def stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)
        for _ in range(100):
            try:
                st, _ = self.get(port, "/health")
                if st == 200:
                    return port
            except OSError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(os.path.join(tmp, "error.log")) as f:
            self.fail("nginx did not start: " + f.read())

    def get(self, port, path, schema=None, body=None):
        h = {"Content-Type": "application/json"}
        if schema:
            h["X-Pcache-Schema"] = schema
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body else None,
                                     headers=h, method="POST" if body else "GET")
        try:
            with urllib.request.urlopen(req, timeout=300 * SLOW) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def counts(self, endpoint):
        return [s.metric(f'pcache_requests_total{{endpoint="{endpoint}"}}') for s in (self.a, self.b)]

    def test_routing_by_schema(self):
        went = {0: [], 1: []}
        for i in range(16):
            name = f"schema{i}"
            before = self.counts("schemas")
            for _ in range(3):
                st, body = self.get(self.port, f"/v1/schemas/{name}?try={_}", schema=name)  # URIs differ: the header routes
                self.assertEqual(st, 404, body)
            after = self.counts("schemas")
            grew = [after[k] - before[k] for k in (0, 1)]
            self.assertIn(grew, ([3, 0], [0, 3]), f"{name}: requests per server {grew}")
            went[grew.index(3)].append(name)
        self.assertTrue(went[0] and went[1], f"every name went to one server: {went}")

    def test_schema_stays_hot_on_its_server(self):
        st, body = self.get(self.port, "/v1/schemas", schema="atlas", body={"pml": SCHEMA})
        self.assertEqual(st, 201, body)
        home = [s.metric('pcache_requests_total{endpoint="schemas"}') for s in (self.a, self.b)].index(1)
        for _ in range(3):
            before = self.counts("completions")
            st, text = self.get(self.port, "/v1/completions", schema="atlas",
                                body={"prompt": PROMPT, "max_tokens": 8, "temperature": 0, "stream": True,
                                      "stream_options": {"include_usage": True}})
            self.assertEqual(st, 200, text)
            events = [ln[6:] for ln in text.splitlines() if ln.startswith("data: ")]
            self.assertEqual(events[-1], "[DONE]", text)
            last = json.loads(events[-2])
            mods = last["pcache"]["modules"]
            self.assertTrue(mods, last)
            self.assertEqual({m["source"] for m in mods}, {"memory"}, mods)  # hot where it was registered
            after = self.counts("completions")
            self.assertEqual(after[home] - before[home], 1)
            self.assertEqual(after[1 - home], before[1 - home])


if __name__ == "__main__":
    unittest.main()
