"""A webhook receiver for the outbound webhook tests: an HTTP server on loopback (an
ephemeral port, threads of its own, so it answers while a test's event loop is blocked
by the test client) that records every POST and answers what the test tells it to."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Received:
    """One POST: its path, headers (lower-cased names), body, and the status answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> Any:
        """The body, parsed, once the signature verifies with `secret` (raises if not)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """Answers each POST with `answer(path, webhook-id, attempt)` (attempt: how many POSTs
    came before it), after `delay(path, webhook-id, attempt)` seconds; at once, 200, unless
    told otherwise."""

    def __init__(self) -> None:
        self.answer: Callable[[str, str, int], int] = lambda path, mid, n: 200
        self.delay: Callable[[str, str, int], float] = lambda path, mid, n: 0.0
        self.refusal = b"no"  # the body of an answer other than 2xx
        self.received: list[Received] = []
        # (path, webhook-id) pairs being answered now, and any seen twice at once
        self.overlaps: list[tuple[str, str]] = []
        self._busy: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda *_: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_first(self, count: int, status: int = 500) -> None:
        """Answer `status` to the first `count` POSTs, then 200."""
        self.answer = lambda path, mid, n: status if n < count else 200

    def accepted(self, path: str | None = None) -> list[Received]:
        """The POSTs answered 2xx (to `path`, when given), in arrival order."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300 and path in (None, r.path)]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    async def wait(self, done: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait until `done()` holds (AssertionError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: not done within {timeout} s: {self.all()}")
            await asyncio.sleep(0.02)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                key = (self.path, headers.get("webhook-id", ""))
                with receiver._lock:
                    status = receiver.answer(self.path, key[1], len(receiver.received))
                    delay = receiver.delay(self.path, key[1], len(receiver.received))
                    receiver.received.append(Received(self.path, headers, body, status))
                    receiver._busy[key] += 1
                    if receiver._busy[key] > 1:
                        receiver.overlaps.append(key)
                try:
                    time.sleep(delay)
                    reply = b"ok" if status < 300 else receiver.refusal
                    self.send_response(status)
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                finally:
                    with receiver._lock:
                        receiver._busy[key] -= 1

            def log_message(self, *_: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def receiving() -> Iterator[Receiver]:
    """A fixture body: a started receiver, shut down after the test."""
    with Receiver() as receiver:
        yield receiver
