"""Slowing down repeated authentication failures, per source address.

A source that fails authentication (401 or 403) `limit` times within `window` seconds is
answered 429 with `Retry-After` — before its credentials are checked, so guessing stops
paying — until the window that began with its first counted failure has passed. A
successful request clears nothing and counts nothing: a source that keeps failing is
slowed down whatever else it sends. The table is bounded (the oldest entries go first),
so spraying addresses cannot grow it without end.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from api.network import Network, client_address, forwarded_for

MAX_SOURCES = 10_000
_REFUSED = (401, 403)


class FailureCounter:
    """Failures per source address within a sliding-start window (pure, clock injected)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked_for(self, source: str) -> float:
        """Seconds `source` must wait (0: it may try)."""
        entry = self._current(source)
        if entry is None or entry[1] < self.limit:
            return 0.0
        return max(0.0, entry[0] + self.window - self._clock())

    def failed(self, source: str) -> None:
        entry = self._current(source)
        started, count = entry if entry else (self._clock(), 0)
        self._seen[source] = (started, count + 1)
        self._seen.move_to_end(source)
        while len(self._seen) > MAX_SOURCES:
            self._seen.popitem(last=False)

    def _current(self, source: str) -> tuple[float, int] | None:
        entry = self._seen.get(source)
        if entry is not None and self._clock() - entry[0] >= self.window:
            del self._seen[source]
            return None
        return entry


def throttle_middleware(
    counter: FailureCounter, trusted: tuple[Network, ...]
) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware answering 429 to sources over the failure limit."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or counter.limit <= 0:
                await app(scope, receive, send)
                return
            source = source_of(scope, trusted)
            wait = counter.blocked_for(source)
            if wait > 0:
                await _too_many(send, math.ceil(wait))
                return

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start" and message["status"] in _REFUSED:
                    counter.failed(source)
                await send(message)

            await app(scope, receive, watch)

        return middleware

    return wrap


def source_of(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The address failures are counted against: the client, or the address a trusted
    proxy forwarded for."""
    client = scope.get("client")
    peer = client[0] if client else None
    lines = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    ]
    address = client_address(peer, forwarded_for(lines), trusted)
    return str(address) if address is not None else str(peer)


async def _too_many(send: Send, retry_after: int) -> None:
    body = (
        b'{"status_code":429,"detail":"too many failed authentication attempts from this '
        b'address: retry later"}'
    )
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 429,
        "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", str(retry_after).encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
