"""test_store_tenants.py - the server on the module store, and tenants.

Scale-out: several `pcache serve` processes on loopback ports share one Redis
(the store's remote tier). A schema registered on the first is encoded there;
the second, never told of it, finds it in the shared registry and answers a
prompt importing it with the very same greedy text, encoding zero tokens
(every piece comes from Redis) and reporting each module's source; POSTing it
there is a no-op; another PML under the same name is 409 on a third; a DELETE
on any removes it from all, and a TTL ends it on all. Tenants stay apart
through the registry too. /v1/cache and /metrics show the tiers.

Tenants (API keys mapped to tenants): a tenant's schema is invisible to
another tenant (listing, lookup, prompts, removal), whose own registration
of the same PML encodes every token again (no KV, no cached_tokens, no
faster TTFT from the other's text); a schema registered as shared by a key
allowed to is seen by both; a key not allowed to gets 403. The prefix cache
of plain prompts: a tenant's repeated system prompt is reused (cached_tokens
in whole blocks), another tenant's identical text is not, and the answer is
the same either way.

Redis: $PC_TEST_REDIS (scripts/test.sh runs one) under a prefix of this
process's own, else a private redis-server on a free port, stopped at the
end; the Redis part says it skips when neither is there.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import SLOW, Server

SCHEMA = """<schema name="atlas">
  <system>You answer questions about rivers in one short sentence.</system>
  <user>
    <module name="rhine">The Rhine rises in the Swiss Alps and flows north into the North Sea, passing Basel,
      Strasbourg, Cologne and Rotterdam on its way.</module>
    <module name="danube">The Danube rises in the Black Forest and flows east into the Black Sea, passing Vienna,
      Budapest and Belgrade on its way.</module>
  </user>
</schema>"""
PROMPT = '<prompt schema="atlas"><danube/><user>Where does the Danube rise?</user></prompt>'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    """$PC_TEST_REDIS, or a redis-server of our own (close_fds: it inherits no lock)."""

    def __init__(self):
        self.proc = None
        self.addr = os.environ.get("PC_TEST_REDIS", "")
        self.why = ""
        if self.addr:
            if not self.ping():
                self.why = f"no Redis answers at PC_TEST_REDIS={self.addr}"
            return
        if not shutil.which("redis-server"):
            self.why = "redis-server is not installed"
            return
        port = free_port()
        self.addr = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
        for _ in range(100):
            if self.ping():
                return
            time.sleep(0.05)
        self.why = "redis-server did not answer"

    def ping(self):
        host, port = self.addr.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def completion(srv, prompt, key=None, **kw):
    body = {"prompt": prompt, "max_tokens": 16, "temperature": 0, **kw}
    h = {"Authorization": f"Bearer {key}"} if key else {}
    return srv.request("POST", "/v1/completions", body, headers=h)


class SharedRedis(unittest.TestCase):
    def setUp(self):
        self.redis = Redis()
        self.addCleanup(self.redis.stop)
        if self.redis.why:
            self.skipTest(self.redis.why)
        # our own key prefix, so a shared Redis holds nothing of ours yet
        self.opts = ["--cache-redis", self.redis.addr, "--cache-redis-prefix", f"pctest-serve:{os.getpid()}:{time.time()}:"]

    def start(self):
        srv = Server(*self.opts)
        self.addCleanup(lambda: srv.stop(test=self))
        return srv

    def test_second_server_encodes_nothing(self):
        a = self.start()
        st, _, s1 = a.request("POST", "/v1/schemas", {"pml": SCHEMA})
        self.assertEqual(st, 201, s1)
        self.assertGreater(s1["encoded_tokens"], 0)
        self.assertEqual(s1["pieces_from"]["encoded"], s1["pieces"])
        st, _, ra = completion(a, PROMPT)
        self.assertEqual(st, 200, ra)

        # a second process (an empty memory tier, the same Redis) serves the schema registered on the
        # first without being told of it: it finds it in the shared registry, its pieces in Redis
        b = self.start()
        st, _, rb = completion(b, PROMPT)
        self.assertEqual(st, 200, rb)
        self.assertEqual(rb["choices"][0]["text"], ra["choices"][0]["text"])  # greedy: the same tokens
        self.assertEqual(rb["usage"]["prompt_tokens_details"]["cached_tokens"],
                         ra["usage"]["prompt_tokens_details"]["cached_tokens"])
        self.assertGreater(rb["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        mods = rb["pcache"]["modules"]
        self.assertTrue(any(m["path"].startswith("danube") for m in mods), mods)
        self.assertNotIn("encoded", {m["source"] for m in mods}, mods)
        self.assertEqual(sum(m["tokens"] for m in mods), rb["usage"]["prompt_tokens_details"]["cached_tokens"])
        st, _, s2 = b.request("GET", "/v1/schemas/atlas")
        self.assertEqual(st, 200, s2)
        self.assertEqual(s2["encoded_tokens"], 0, s2)  # nothing encoded on this server
        self.assertEqual(s2["pieces_from"]["remote"], s2["pieces"], s2)
        # POSTing it there too is the no-op of a registered schema
        st, _, again = b.request("POST", "/v1/schemas", {"pml": SCHEMA})
        self.assertEqual(st, 200, again)
        self.assertEqual(again["encoded_tokens"], 0, again)

        st, _, cache = b.request("GET", "/v1/cache")
        self.assertEqual(st, 200, cache)
        self.assertTrue(cache["tiers"]["remote"]["enabled"])
        self.assertEqual(cache["tiers"]["remote"]["hits"], s2["pieces"])
        self.assertFalse(cache["tiers"]["disk"]["enabled"])
        self.assertEqual([s["name"] for s in cache["schemas"]], ["atlas"])
        self.assertEqual(b.metric('pcache_store_hits_total{tier="remote"}'), s2["pieces"])

        # one name, one schema across the servers: another PML under it is refused on either
        other = SCHEMA.replace("Swiss Alps", "Alps")
        c = self.start()  # holds nothing yet
        st, _, r = c.request("POST", "/v1/schemas", {"pml": other})
        self.assertEqual(st, 409, r)
        self.assertIn("on a server sharing this Redis", r["error"]["message"])

        # DELETE on one removes it everywhere
        st, _, r = b.request("DELETE", "/v1/schemas/atlas")
        self.assertEqual(st, 200, r)
        for srv in (a, b, c):
            st, _, r = completion(srv, PROMPT)
            self.assertEqual(st, 404, r)
            self.assertEqual(srv.request("GET", "/v1/schemas/atlas")[0], 404)
        st, _, r = c.request("POST", "/v1/schemas", {"pml": other})  # the name is free again
        self.assertEqual(st, 201, r)
        st, _, r = a.request("GET", "/v1/schemas/atlas")  # and the first server follows the new version
        self.assertEqual(st, 200, r)
        self.assertEqual(r["positions"], s1["positions"] - 1, (r, s1))  # "Alps" is one token shorter

    def test_ttl_ends_registration_everywhere(self):
        a, b = self.start(), self.start()
        st, _, r = a.request("POST", "/v1/schemas", {"pml": SCHEMA, "ttl": 2})
        self.assertEqual(st, 201, r)
        self.assertEqual(completion(b, PROMPT)[0], 200)
        time.sleep(2.5)
        for srv in (a, b):
            st, _, r = completion(srv, PROMPT)
            self.assertEqual(st, 404, r)

    def test_tenants_across_servers(self):
        tmp = tempfile.mkdtemp(prefix="pcache-keys-")
        self.addCleanup(shutil.rmtree, tmp, True)
        keys = os.path.join(tmp, "keys")
        with open(keys, "w") as f:
            f.write(KEYS)
        self.opts += ["--api-key-file", keys]
        a, b = self.start(), self.start()
        st, _, r = a.request("POST", "/v1/schemas", {"pml": SCHEMA}, headers={"Authorization": "Bearer key-alice"})
        self.assertEqual(st, 201, r)
        shared = SCHEMA.replace('name="atlas"', 'name="atlas_pub"')
        st, _, r = a.request("POST", "/v1/schemas", {"pml": shared, "shared": True},
                             headers={"Authorization": "Bearer key-alice"})
        self.assertEqual(st, 201, r)
        # on the other server: alice's own schema is alice's only; the shared one is everybody's
        st, _, r = completion(b, PROMPT, key="key-bob-0001")
        self.assertEqual(st, 404, r)
        self.assertNotIn("alice", r["error"]["message"])
        st, _, r = b.request("GET", "/v1/schemas/atlas", headers={"Authorization": "Bearer key-bob-0001"})
        self.assertEqual(st, 404, r)
        st, _, r = completion(b, PROMPT, key="key-alice")
        self.assertEqual(st, 200, r)
        self.assertGreater(r["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        st, _, r = completion(b, PROMPT.replace('"atlas"', '"atlas_pub"'), key="key-bob-0001")
        self.assertEqual(st, 200, r)
        self.assertGreater(r["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        # bob's own schema of the same name on b is his: alice's stays hers on a
        st, _, r = b.request("POST", "/v1/schemas", {"pml": SCHEMA.replace("Swiss Alps", "Alps")},
                             headers={"Authorization": "Bearer key-bob-0001"})
        self.assertEqual(st, 201, r)
        st, _, r = a.request("GET", "/v1/schemas/atlas", headers={"Authorization": "Bearer key-alice"})
        self.assertEqual(st, 200, r)
        st, _, r = a.request("GET", "/v1/schemas/atlas", headers={"Authorization": "Bearer key-bob-0001"})
        self.assertEqual(st, 200, r)  # bob's, found on a through the registry
        self.assertNotEqual(r["positions"], 0)


KEYS = """# key tenant [share]
key-alice alice share
key-bob-0001 bob
"""


class Tenants(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pcache-keys-")
        path = os.path.join(cls.tmp, "keys")
        with open(path, "w") as f:
            f.write(KEYS)
        cls.srv = Server("--api-key-file", path)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop(test=cls())
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def req(self, method, path, key, body=None):
        return self.srv.request(method, path, body, headers={"Authorization": f"Bearer {key}"})

    def names(self, key):
        st, _, r = self.req("GET", "/v1/schemas", key)
        self.assertEqual(st, 200, r)
        return sorted(s["name"] for s in r["data"])

    def test_isolation_and_sharing(self):
        st, _, a = self.req("POST", "/v1/schemas", "key-alice", {"pml": SCHEMA})
        self.assertEqual(st, 201, a)
        self.assertFalse(a["shared"])
        st, _, ra = completion(self.srv, PROMPT, key="key-alice")
        self.assertEqual(st, 200, ra)
        self.assertGreater(ra["usage"]["prompt_tokens_details"]["cached_tokens"], 0)

        # bob sees nothing of alice's: not listed, not found, not usable, not removable
        self.assertNotIn("atlas", self.names("key-bob-0001"))
        self.assertEqual(self.req("GET", "/v1/schemas/atlas", "key-bob-0001")[0], 404)
        self.assertEqual(self.req("GET", "/v1/schemas/alice%2Fatlas", "key-bob-0001")[0], 404)
        self.assertEqual(self.req("DELETE", "/v1/schemas/atlas", "key-bob-0001")[0], 404)
        st, _, rb = completion(self.srv, PROMPT, key="key-bob-0001")
        self.assertEqual(st, 404, rb)
        self.assertNotIn("alice", rb["error"]["message"])
        st, _, c = self.req("GET", "/v1/cache", "key-bob-0001")
        self.assertEqual(c["schemas"], [])

        # bob's own registration of the very same PML reuses none of alice's KV
        st, _, b = self.req("POST", "/v1/schemas", "key-bob-0001", {"pml": SCHEMA})
        self.assertEqual(st, 201, b)
        self.assertEqual(b["encoded_tokens"], b["positions"], b)
        self.assertEqual(b["pieces_from"]["encoded"], b["pieces"], b)
        st, _, rb = completion(self.srv, PROMPT, key="key-bob-0001")
        self.assertEqual(st, 200, rb)
        self.assertEqual(rb["choices"][0]["text"], ra["choices"][0]["text"])

        # sharing: only a key allowed to; then every tenant sees it, only such a key removes it
        shared = SCHEMA.replace('name="atlas"', 'name="atlas_pub"')
        st, _, r = self.req("POST", "/v1/schemas", "key-bob-0001", {"pml": shared, "shared": True})
        self.assertEqual(st, 403, r)
        st, _, r = self.req("POST", "/v1/schemas", "key-alice", {"pml": shared, "shared": True, "pin": True})
        self.assertEqual(st, 201, r)
        self.assertTrue(r["shared"])
        self.assertEqual(self.names("key-bob-0001"), ["atlas", "atlas_pub"])
        st, _, r = completion(self.srv, PROMPT.replace('"atlas"', '"atlas_pub"'), key="key-bob-0001")
        self.assertEqual(st, 200, r)
        self.assertEqual(self.req("DELETE", "/v1/schemas/atlas_pub", "key-bob-0001")[0], 403)
        self.assertEqual(self.req("DELETE", "/v1/schemas/atlas_pub", "key-alice")[0], 200)
        self.assertEqual(self.req("DELETE", "/v1/schemas/atlas", "key-bob-0001")[0], 200)
        self.assertEqual(self.names("key-alice"), ["atlas"])  # bob removed his own, not alice's
        self.assertEqual(self.req("DELETE", "/v1/schemas/atlas", "key-alice")[0], 200)

    def test_prefix_cache_per_tenant(self):
        system = " ".join(f"Rule {i}: answer in one short sentence and name the rule you used." for i in range(20))

        def chat(key, question):
            body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                    "max_tokens": 8, "temperature": 0}
            st, _, r = self.req("POST", "/v1/chat/completions", key, body)
            self.assertEqual(st, 200, r)
            return r

        def metric(name):  # /metrics wants a key too
            st, _, text = self.req("GET", "/metrics", "key-bob-0001")
            self.assertEqual(st, 200, text)
            return float(next(ln for ln in text.splitlines() if ln.startswith(name + " ")).rsplit(" ", 1)[1])

        queries = metric("pcache_prefix_cache_queries_total")
        first = chat("key-alice", "Which rule is the first?")
        self.assertEqual(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        again = chat("key-alice", "Which rule is the last?")  # the same system prompt: its blocks are reused
        cached = again["usage"]["prompt_tokens_details"]["cached_tokens"]
        self.assertGreaterEqual(cached, 128)
        self.assertLess(cached, again["usage"]["prompt_tokens"])
        # reuse goes to the token: the very same prompt again computes only its last token
        same = chat("key-alice", "Which rule is the last?")
        self.assertEqual(same["usage"]["prompt_tokens_details"]["cached_tokens"], same["usage"]["prompt_tokens"] - 1)
        self.assertEqual(same["choices"][0]["message"]["content"], again["choices"][0]["message"]["content"])
        bob = chat("key-bob-0001", "Which rule is the last?")  # the very same text, another tenant: nothing
        self.assertEqual(bob["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        self.assertEqual(bob["choices"][0]["message"]["content"], again["choices"][0]["message"]["content"])
        self.assertEqual(metric("pcache_prefix_cache_queries_total"), queries + 4)
        self.assertGreaterEqual(metric("pcache_prefix_cache_hit_tokens_total"), cached)
        # the device tier's counters are listed beside the others; this server computes on the CPU: none
        st, _, cache = self.req("GET", "/v1/cache", "key-alice")
        self.assertEqual(st, 200, cache)
        gpu = cache["tiers"]["gpu"]
        self.assertEqual((gpu["enabled"], gpu["hits"], gpu["writes"], gpu["entries"]), (False, 0, 0, 0), gpu)
        self.assertGreater(cache["tiers"]["memory"]["hits"], 0)
        st, _, text = self.req("GET", "/metrics", "key-bob-0001")
        self.assertNotIn('tier="gpu"', text)
        self.assertIn('pcache_store_writes_total{tier="memory"}', text)

    def test_bad_registration_options(self):
        for body, param in (({"pml": SCHEMA, "ttl": -1}, "ttl"), ({"pml": SCHEMA, "pin": "yes"}, "pin"),
                            ({"pml": SCHEMA, "shared": 1}, "shared")):
            st, _, r = self.req("POST", "/v1/schemas", "key-alice", body)
            self.assertEqual(st, 400, r)
            self.assertEqual(r["error"]["param"], param)


QUOTA_KEYS = """key-alice alice
key-bob-0001 bob quota=4M
"""


class Quotas(unittest.TestCase):
    """Per-tenant quotas of the memory tier: bob, limited to 4 MiB, floods the store with prefix blocks (about
    70 MiB against a 16 MiB budget) and never evicts one of alice's entries; a schema of his that cannot fit, or
    whose pin his pinned schemas leave no room for, is refused with 429."""

    def setUp(self):
        tmp = tempfile.mkdtemp(prefix="pcache-keys-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "keys")
        with open(path, "w") as f:
            f.write(QUOTA_KEYS)
        self.srv = Server("--api-key-file", path, "--cache-mem", "16M")
        self.addCleanup(lambda: self.srv.stop(test=self))

    def req(self, method, path, key, body=None):
        return self.srv.request(method, path, body, headers={"Authorization": f"Bearer {key}"})

    def chat(self, key, system, question="Which rule is the last?"):
        body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                "max_tokens": 2, "temperature": 0}
        st, _, r = self.req("POST", "/v1/chat/completions", key, body)
        self.assertEqual(st, 200, r)
        return r["usage"]["prompt_tokens_details"]["cached_tokens"]

    def evictions(self):
        st, _, text = self.req("GET", "/metrics", "key-alice")
        self.assertEqual(st, 200, text)
        line = next(ln for ln in text.splitlines() if ln.startswith('pcache_store_evictions_total{tier="memory"} '))
        return float(line.rsplit(" ", 1)[1])

    def usage(self, key):
        st, _, c = self.req("GET", "/v1/cache", key)
        self.assertEqual(st, 200, c)
        return c["tenant"]

    def test_one_tenant_never_evicts_another(self):
        st, _, r = self.req("POST", "/v1/schemas", "key-alice", {"pml": SCHEMA})
        self.assertEqual(st, 201, r)
        rules = " ".join(f"Rule {i}: answer in one short sentence and name the rule you used." for i in range(16))
        self.chat("key-alice", rules)
        alice_cached = self.chat("key-alice", rules, "Which rule is the first?")
        self.assertGreaterEqual(alice_cached, 128)
        alice = self.usage("key-alice")
        self.assertEqual(alice["memory_quota"], 0)
        self.assertGreater(alice["memory_bytes"], 0)
        self.assertEqual(self.usage("key-bob-0001"), {"memory_bytes": 0, "memory_quota": 4 << 20})
        evictions = self.evictions()

        for i in range(12):  # each about 5.9 MB of blocks: more than bob's quota, together far more than the budget
            topic = f"Topic {i}: " + " ".join(f"fact {i}.{j} is that item {j} weighs {i * j + 3} grams." for j in range(24))
            self.chat("key-bob-0001", topic)
            self.assertLessEqual(self.usage("key-bob-0001")["memory_bytes"], 4 << 20)
        self.assertGreater(self.evictions(), evictions)  # bob's own

        self.assertEqual(self.usage("key-alice"), alice)  # nothing of alice's left memory
        st, _, r = completion(self.srv, PROMPT, key="key-alice")
        self.assertEqual(st, 200, r)
        self.assertEqual({m["source"] for m in r["pcache"]["modules"]}, {"memory"}, r["pcache"])
        # a question not asked yet diverges where "first" did: it reuses as much, so nothing was evicted
        self.assertEqual(self.chat("key-alice", rules, "Which rule is the second?"), alice_cached)

    def test_refused_over_quota(self):
        long_doc = " ".join(f"Clause {i}: the tenant shall keep record {i} for {i + 2} years." for i in range(40))
        big = f'<schema name="big"><module name="terms">{long_doc}</module></schema>'
        st, _, r = self.req("POST", "/v1/schemas", "key-bob-0001", {"pml": big})
        self.assertEqual(st, 429, r)
        self.assertEqual(r["error"]["code"], "insufficient_quota", r)
        self.assertIn("more than tenant bob's memory quota of 4194304 bytes", r["error"]["message"])
        st, _, r = self.req("POST", "/v1/schemas", "key-alice", {"pml": big})  # alice has no quota
        self.assertEqual(st, 201, r)

        # pinned schemas stay: a second pin that does not fit beside the first is refused, the first kept
        st, _, one = self.req("POST", "/v1/schemas", "key-bob-0001", {"pml": SCHEMA, "pin": True})
        self.assertEqual(st, 201, one)
        two = SCHEMA.replace('name="atlas"', 'name="atlas2"').replace("Swiss Alps", "Alps of Switzerland")
        st, _, r = self.req("POST", "/v1/schemas", "key-bob-0001", {"pml": two, "pin": True})
        self.assertEqual(st, 429, r)
        self.assertIn("pinned or in-use entries", r["error"]["message"])
        st, _, r = completion(self.srv, PROMPT, key="key-bob-0001")
        self.assertEqual(st, 200, r)
        self.assertEqual({m["source"] for m in r["pcache"]["modules"]}, {"memory"}, r["pcache"])
        self.assertEqual(self.req("GET", "/v1/schemas/atlas2", "key-bob-0001")[0], 404)
        self.assertLessEqual(self.usage("key-bob-0001")["memory_bytes"], 4 << 20)


if __name__ == "__main__":
    unittest.main()
