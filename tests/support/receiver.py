"""A local HTTP server that records what notification targets (Apprise's json://) post."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    """A local HTTP server answering every POST with ``status`` (or hanging while ``hold``)."""

    server: ThreadingHTTPServer
    status: int = 200
    hold: threading.Event | None = None
    posts: list[dict] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook", user: str = "") -> str:
        host, port = self.server.server_address[:2]
        return f"json://{user + '@' if user else ''}{host}:{port}{path}"


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["rec"]
            length = int(self.headers.get("Content-Length", 0))
            payload = json.loads(self.rfile.read(length) or b"{}")
            rec.posts.append({"path": self.path, "agent": self.headers.get("User-Agent"), **payload})
            rec.received.set()
            if rec.hold is not None:
                rec.hold.wait(30)
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec = state["rec"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield rec
    if rec.hold is not None:
        rec.hold.set()
    server.shutdown()
    server.server_close()


