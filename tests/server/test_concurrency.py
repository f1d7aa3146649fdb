"""test_concurrency.py - many clients at once.

16 clients stream mixed prompts (plain and PML, short and long) at the same
time through a server that batches at most 8 (the rest wait in its queue):
all complete, and each greedy answer is the very answer that request gets
alone (batching changes no bit: every row's numbers are independent of the
rows beside it). A second identical round leaves the resident memory where
the first left it (no per-request growth). A client that disconnects in the
middle of a stream frees its slot at once: with one slot, the next request is
answered right away instead of after the abandoned one's 1000 tokens.
"""
import http.client
import json
import threading
import time
import unittest

import openai

from harness import SLOW, Server

SCHEMA = """<schema name="atlas"><system>You answer questions about places in one sentence.</system><user>
<module name="rome">Rome is the capital of Italy. It lies on the Tiber and has about three million people.</module>
<module name="oslo">Oslo is the capital of Norway, at the head of the Oslofjord.</module>
<module name="lima">Lima is the capital of Peru, on the Pacific coast.</module>
<module name="note">Visitor: <parameter name="who" length="5" scaffold="someone"/>.</module>
</user></schema>"""

LONG = "Summarise: " + " ".join(f"Sentence {i} says that the weather was fine on day {i}." for i in range(40))


def requests():
    out = []
    for i in range(16):
        k = i % 4
        if k == 0:
            out.append(("chat", {"messages": [{"role": "user", "content": f"Give me fact number {i} about the sea."}]}))
        elif k == 1:
            out.append(("chat", {"messages": [{"role": "user", "content": LONG[: 300 + 40 * i]}]}))
        elif k == 2:
            mods = ["<rome/>", "<oslo/>", "<lima/>"][: 1 + i % 3]
            out.append(("chat", {"pml": f'<prompt schema="atlas">{"".join(mods)}<note who="Ana{i}"/></prompt>',
                                 "messages": [{"role": "user", "content": "Which capital is on a fjord?"}]}))
        else:
            out.append(("completions", {"prompt": f'<prompt schema="atlas"><lima/><user>Tell me about Lima, item {i}.'
                                                  f"</user></prompt>"}))
    return out


class Concurrency(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--parallel", "8", "--queue", "16", "--batch", "64")
        cls.client = openai.OpenAI(base_url=cls.srv.url("/v1"), api_key="x", max_retries=0, timeout=900 * SLOW)
        cls.model = cls.client.models.list().data[0].id
        st, _, body = cls.srv.request("POST", "/v1/schemas", {"pml": SCHEMA})
        assert st in (200, 201), body

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop(test=cls())

    def stream(self, kind, body):
        kw = dict(model=self.model, max_tokens=24, temperature=0, stream=True)
        if kind == "chat":
            extra = {"pml": body["pml"]} if "pml" in body else None
            s = self.client.chat.completions.create(messages=body["messages"], extra_body=extra, **kw)
            return "".join(c.choices[0].delta.content or "" for c in s if c.choices)
        s = self.client.completions.create(prompt=body["prompt"], **kw)
        return "".join(c.choices[0].text for c in s if c.choices)

    def round(self, reqs):
        answers, errors = [None] * len(reqs), []

        def run(i):
            try:
                answers[i] = self.stream(*reqs[i])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((i, e))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(reqs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        return answers

    def test_sixteen_streams_equal_solo(self):
        reqs = requests()
        solo = [self.stream(*r) for r in reqs]
        self.assertTrue(all(solo))
        busy = self.round(reqs)
        for i, (a, b) in enumerate(zip(solo, busy)):
            self.assertEqual(a, b, f"request {i} ({reqs[i][0]}) differs when batched")
        rss1 = self.srv.rss_kib()
        busy2 = self.round(reqs)
        rss2 = self.srv.rss_kib()
        self.assertEqual(busy, busy2)
        # Sanitizer builds hold freed memory in quarantine, so RSS says nothing there; their leak check does.
        if SLOW == 1:
            self.assertLess(rss2, rss1 + 32 * 1024, f"RSS grew from {rss1} KiB to {rss2} KiB over a second round")
        self.assertLess(rss2, 2 * 1024 * 1024, f"RSS {rss2} KiB")
        self.assertGreater(self.srv.metric("pcache_batch_rows_total"), self.srv.metric("pcache_batch_steps_total"))


class Disconnect(unittest.TestCase):
    def test_disconnect_frees_slot(self):
        srv = Server("--parallel", "1")
        try:
            body = json.dumps({"prompt": "Count: 1, 2, 3,", "max_tokens": 1000, "temperature": 0, "stream": True,
                               "ignore_eos": True})
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120 * SLOW)
            conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            for _ in range(3):  # a few chunks, then hang up mid-stream
                self.assertTrue(resp.fp.readline())
            conn.sock.close()
            conn.close()
            t0 = time.time()
            st, _, r = srv.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 4, "temperature": 0})
            waited = time.time() - t0
            self.assertEqual(st, 200, r)
            # the abandoned request had ~1000 tokens to go (seconds of work); the slot came free within steps
            self.assertLess(waited, 5 * SLOW, f"the next request waited {waited:.1f} s")
            self.assertEqual(srv.metric("pcache_client_disconnects_total"), 1)
        finally:
            srv.stop(test=self)


if __name__ == "__main__":
    unittest.main()
