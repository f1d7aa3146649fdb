"""test_bad_input.py - every bad request gets its 4xx in OpenAI's error shape
and the server keeps serving the others.

Malformed JSON, wrong types, missing fields, a 100 MB body, invalid UTF-8, a
slow client sending a byte a second, unknown schema and module, bad PML
(line and column within the submitted document), an argument longer than its
parameter, a missing or wrong API key, unknown URL and method. A well-formed
request is answered between and after them, and the server stops cleanly.
"""
import json
import select
import socket
import threading
import time
import unittest

from harness import SLOW, Server

SCHEMA = ('<schema name="lib"><user><module name="doc">The library opens at nine.</module>'
          '<module name="who">Reader: <parameter name="name" length="3"/>.</module></user></schema>')
KEY = "test-key-0123456789"


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--api-key", KEY, "--upload-timeout", "3", "--max-body-mb", "1")
        cls.auth = {"Authorization": "Bearer " + KEY}
        st, _, body = cls.srv.request("POST", "/v1/schemas", {"pml": SCHEMA}, headers=cls.auth)
        assert st in (200, 201), body

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop(test=cls())

    def call(self, path, body=None, raw=None, headers=None, method="POST"):
        return self.srv.request(method, path, body=body, raw=raw, headers={**self.auth, **(headers or {})})

    def assertError(self, resp, status, param=None, contains=None):
        st, _, body = resp
        self.assertEqual(st, status, body)
        self.assertIsInstance(body, dict, body)
        err = body["error"]
        self.assertTrue(err["message"])
        self.assertIn("type", err)
        self.assertIn("code", err)
        if param is not None:
            self.assertEqual(err["param"], param, err)
        if contains:
            self.assertIn(contains, err["message"])
        self.assertServes()

    def assertServes(self):
        st, _, body = self.call("/v1/completions", {"prompt": "Hello", "max_tokens": 2, "temperature": 0})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["usage"]["completion_tokens"], 2)

    def test_json(self):
        self.assertError(self.call("/v1/chat/completions", raw=b"{not json"), 400, contains="JSON")
        self.assertError(self.call("/v1/chat/completions", raw=b"[]"), 400)
        self.assertError(self.call("/v1/chat/completions", raw=b""), 400)
        self.assertError(self.call("/v1/chat/completions", raw=b'{"prompt": "a\xff\xfe"}'), 400)  # invalid UTF-8
        self.assertError(self.call("/v1/completions", raw=b'{"prompt": "\xc3\x28"}'), 400)

    def test_types_and_fields(self):
        m = [{"role": "user", "content": "hi"}]
        self.assertError(self.call("/v1/chat/completions", {}), 400, "messages")
        self.assertError(self.call("/v1/chat/completions", {"messages": "hi"}), 400, "messages")
        self.assertError(self.call("/v1/chat/completions", {"messages": [{"role": "user"}]}), 400, "messages[0].content")
        self.assertError(self.call("/v1/chat/completions", {"messages": m, "max_tokens": "9"}), 400, "max_tokens")
        self.assertError(self.call("/v1/chat/completions", {"messages": m, "temperature": "hot"}), 400, "temperature")
        self.assertError(self.call("/v1/chat/completions", {"messages": m, "n": 3}), 400, "n")
        self.assertError(self.call("/v1/chat/completions", {"messages": m, "stop": 7}), 400, "stop")
        self.assertError(self.call("/v1/completions", {"max_tokens": 3}), 400, "prompt")
        self.assertError(self.call("/v1/completions", {"prompt": [999999999]}), 400, "prompt")  # not in the vocabulary
        self.assertError(self.call("/v1/chat/completions", {"messages": m, "model": "gpt-9"}), 404, "model")

    def test_routes_and_keys(self):
        self.assertError(self.call("/v1/nothing", {}), 404)
        self.assertError(self.call("/v1/completions", method="GET"), 405)
        no_key = self.srv.request("POST", "/v1/completions", {"prompt": "a"})
        self.assertError(no_key, 401)
        wrong = self.srv.request("POST", "/v1/completions", {"prompt": "a"}, headers={"Authorization": "Bearer nope"})
        self.assertError(wrong, 401)
        x_api = self.srv.request("POST", "/v1/completions", {"prompt": "a", "max_tokens": 1},
                                 headers={"X-Api-Key": KEY})
        self.assertEqual(x_api[0], 200)
        self.assertEqual(self.srv.request("GET", "/health")[0], 200)  # health needs no key

    def test_pml_errors(self):
        q = [{"role": "user", "content": "When?"}]
        self.assertError(self.call("/v1/chat/completions", {"messages": q, "pml": '<prompt schema="nope"><doc/></prompt>'}),
                         404, contains="nope")
        self.assertError(self.call("/v1/chat/completions", {"messages": q, "pml": '<prompt schema="lib"><nodoc/></prompt>'}),
                         404, contains="nodoc")
        bad = '<prompt schema="lib">\n  <doc>\n  <who name="x">\n</prompt>'
        st, _, body = self.call("/v1/chat/completions", {"messages": q, "pml": bad})
        self.assertEqual(st, 400, body)
        self.assertRegex(body["error"]["message"], r"pml:\d+:\d+")  # line and column in the submitted document
        long_arg = '<prompt schema="lib"><who name="a very long name indeed, far past three tokens"/></prompt>'
        self.assertError(self.call("/v1/chat/completions", {"messages": q, "pml": long_arg}), 422, contains="name")
        self.assertError(self.call("/v1/completions", {"prompt": '<prompt schema="lib"><doc/>'}), 400)
        self.assertError(self.call("/v1/schemas", {"pml": "<schema name='x'><module>no name</module></schema>"}), 400,
                         contains="pml:")
        self.assertError(self.call("/v1/schemas", {"pml": 5}), 400, "pml")
        self.assertError(self.call("/v1/schemas/none", method="DELETE"), 404)
        ctl = [{"role": "user", "content": "bell \u0007"}]
        self.assertError(self.call("/v1/chat/completions", {"messages": ctl, "pml": '<prompt schema="lib"/>'}), 400,
                         "messages")

    def raw_exchange(self, head, body_parts, pause=0.0, read_timeout=60):
        """Sends head then body parts over a raw socket; returns the status line's code."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=read_timeout * SLOW)
        try:
            s.sendall(head)
            for part in body_parts:
                if select.select([s], [], [], 0)[0]:
                    break  # the server answered already: stop sending, read it
                try:
                    s.sendall(part)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server answered and closed: what a too-large body should get
                if pause:
                    time.sleep(pause)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return int(data.split(b" ")[1]) if data else None
        finally:
            s.close()

    def test_huge_body(self):
        size = 100 << 20
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
        t0 = time.time()
        self.assertEqual(self.raw_exchange(head, [b"x" * 65536] * 4), 413)
        self.assertLess(time.time() - t0, 30 * SLOW)  # refused at once, not after reading 100 MB
        self.assertServes()

    def test_slow_client(self):
        body = json.dumps({"prompt": "Hello", "max_tokens": 2}).encode()
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        result = {}
        t = threading.Thread(target=lambda: result.setdefault(
            "status", self.raw_exchange(head, [body[i:i + 1] for i in range(len(body))], pause=1.0)))
        t.start()
        time.sleep(0.5)
        self.assertServes()  # while the slow client trickles in, others are served
        t.join(120 * SLOW)
        self.assertEqual(result.get("status"), 408)


if __name__ == "__main__":
    unittest.main()
