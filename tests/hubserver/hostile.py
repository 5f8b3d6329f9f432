"""A hostile Hub on loopback: one server, one misbehaviour per endpoint prefix.

``HF_ENDPOINT=http://127.0.0.1:PORT/<mode>`` selects the misbehaviour for every request:

silent     accepts the connection, reads the request, never answers
trickle    answers 200 with a long Content-Length, then one byte every 0.3 s
garbage    200 application/json whose body is binary garbage
list       200 with a JSON list where an object belongs
redirect   302 to file:///etc/passwd
echo       401 whose error text echoes the request's Authorization header and URL
controls   400 whose error text holds terminal control sequences
endless    a repo whose tree listing pages forever (1,000 new files per page)
emptypages a repo whose tree listing (and model search) pages forever with empty pages
badfields  a repo listing files whose size is a string and whose path is a number
controlmeta model search whose ids, tags and library hold terminal control sequences

Run standalone: ``python -m tests.hubserver.hostile`` prints the URL.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COMMIT = "c0ffee" + "0" * 34
CONTROL_TEXT = "denied \x1b]0;owned\x07\x1b[2J\x1b[31mred\u202eevil\r"
MODES = ("silent", "trickle", "garbage", "list", "redirect", "echo", "controls", "endless", "emptypages",
         "badfields", "controlmeta")


class HostileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "HostileHub"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, doc, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        split = urlsplit(self.path)
        mode, _, rest = split.path.lstrip("/").partition("/")
        self.server.hits.append(f"{self.command} {self.path}")
        getattr(self, f"mode_{mode}", self.mode_unknown)("/" + rest, parse_qs(split.query))

    do_GET = do_HEAD = do_POST = do_PUT = lambda self: self._dispatch()  # noqa: E731

    # -- misbehaviours ---------------------------------------------------------------

    def mode_unknown(self, path, query):
        self._json({"error": "unknown mode"}, 404)

    def mode_silent(self, path, query):
        self.server.stop.wait(300)
        self.close_connection = True

    def mode_trickle(self, path, query):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        while not self.server.stop.wait(0.3):
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return

    def mode_garbage(self, path, query):
        self._send(200, b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage {not json", {"Content-Type": "application/json"})

    def mode_list(self, path, query):
        self._json([{"id": "x", "sha": COMMIT}, 2, "three"])

    def mode_redirect(self, path, query):
        self._send(302, b"", {"Location": "file:///etc/passwd"})

    def mode_echo(self, path, query):
        text = f"rejected Authorization={self.headers.get('Authorization')} for http://{self.headers.get('Host')}" \
               f"{self.path} (url http://user:{self.headers.get('Authorization', '').split(' ')[-1]}@host/)"
        self._json({"error": text}, 401, {"X-Error-Message": text.replace("\n", " ")})

    def mode_controls(self, path, query):
        self._json({"error": CONTROL_TEXT}, 400)

    def _repo(self, path, query, page):
        """A normal model_info; the tree listing comes from ``page(cursor)`` -> (entries, has_next)."""
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
            return self._json({"_id": "1", "id": m.group(1), "sha": COMMIT, "siblings": [], "private": False})
        if re.fullmatch(r"/api/models/[^/]+/[^/]+/tree/.*", path) or path == "/api/models":
            cursor = int((query.get("cursor") or ["0"])[0])
            entries = page(cursor) if path != "/api/models" else []
            mode = self.path.lstrip("/").split("/", 1)[0]
            link = f'<http://127.0.0.1:{self.server.server_address[1]}/{mode}{path}?cursor={cursor + 1}>; rel="next"'
            return self._json(entries, 200, {"Link": link})
        return self._json({"error": "not here"}, 404)

    def mode_endless(self, path, query):
        self._repo(path, query, lambda c: [{"type": "file", "path": f"f{c}/{i}.txt", "size": 1, "oid": "0" * 40}
                                           for i in range(1000)])

    def mode_emptypages(self, path, query):
        self._repo(path, query, lambda c: [])

    def mode_badfields(self, path, query):
        if "/tree/" in path:
            return self._json([{"type": "file", "path": 42, "size": "big", "oid": "0" * 40}])
        self._repo(path, query, lambda c: [])


    def mode_controlmeta(self, path, query):
        self._json([{"_id": "1", "id": "org/evil\x1b[2J\x1b[H", "tags": ["peft", "base_model:adapter:org/base",
                                                                         "\x1b]0;owned\x07", "rtl\u202eevil"],
                     "downloads": 7, "likes": 1, "library_name": "peft\r\x1b[31m", "private": False}])


class HostileHub(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HostileHandler)
        self.stop = threading.Event()
        self.hits: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def endpoint(self, mode: str, userinfo: str | None = None) -> str:
        assert mode in MODES, mode
        host = f"{userinfo}@127.0.0.1:{self.server_address[1]}" if userinfo else self.url.split("//", 1)[1]
        return f"http://{host}/{mode}"

    def start(self) -> "HostileHub":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()


if __name__ == "__main__":
    hub = HostileHub().start()
    print(json.dumps({"url": hub.url, "modes": MODES}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.close()
