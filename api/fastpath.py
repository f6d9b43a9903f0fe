"""The webhook route's accepted deliveries, answered without the framework in the way.

Under load litestar's request pipeline — the exception middleware, routing, the
throttle as route middleware, guards, the signature model, the response object — took
more of the event loop's time per webhook than appending it (bench/README.md, "Measured
reasons"). A delivery that is accepted needs none of it: read the body,
authenticate, decode, append, answer 200 after the commit. That is what this path does,
with the route's own code (api/webhooks.py: `endpoint`, `accept`).

Everything else goes to the litestar route, with the messages read so far replayed, and
is decided and answered there exactly as before: a refusal of any kind (and the
throttle's count of it), an unreadable body (kept aside there), a replayed identity, a
ledger that cannot commit, a body over the limit, one too slow to arrive, a source the
throttle blocks. Nothing is written before such a hand-over but what would be written
anyway: a commit happens only on the way to a 200 (or a replay refusal, which writes
nothing). tests/api/test_fast_path.py holds both paths to the same answers.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Request
from litestar.types import ASGIApp, HTTPReceiveMessage, HTTPScope, Message, Receive, Scope, Send

from api.network import Network
from api.runtime import Runtime
from api.throttle import FailureCounter, source_of
from api.webhooks import accept, endpoint

PREFIX, SUFFIX = "/v1/webhooks/", "/events"
_JSON = [(b"content-type", b"application/json")]
_encode = msgspec.json.Encoder().encode


def webhook_provider(scope: HTTPScope) -> str | None:
    """The provider named by a POST to the webhook route, else None."""
    if scope["method"] != "POST":
        return None
    path = scope["path"]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    provider = path[len(PREFIX) : -len(SUFFIX)]
    return provider if provider and "/" not in provider else None


def _replay(messages: list[Message], receive: Receive, error: BaseException | None) -> Receive:
    """`receive` that first gives back `messages`, then raises `error` (if reading ended
    with one), then goes on reading."""
    pending = list(messages)

    async def replayed() -> Message:
        nonlocal error
        if pending:
            return pending.pop(0)
        if error is not None:
            raised, error = error, None
            raise raised
        return cast(Message, await receive())

    return cast(Receive, replayed)


class FastWebhooks:
    """Answers accepted webhook deliveries itself; hands everything else to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        runtime: Runtime,
        counter: FailureCounter,
        trusted: tuple[Network, ...],
        max_body: int,
    ) -> None:
        self._app, self._runtime, self._counter = app, runtime, counter
        self._trusted, self._max_body = trusted, max_body
        self.answered = 0  # deliveries answered here (the rest went to the route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, provider: str) -> None:
        if self._announced(scope) > self._max_body or self._blocked(scope):
            await self._app(scope, receive, send)  # 413 / 429, decided by the route
            return
        messages, body, error = await self._read(receive)
        fallback = _replay(messages, receive, error)
        if body is None:  # too big, too slow, or the client went away: the route says
            await self._app(scope, fallback, send)
            return
        runtime = self._runtime
        request: Request[Any, Any, Any] = Request(scope)
        try:
            module, door = endpoint(runtime, provider, request)
            accepted = await accept(
                runtime, provider, module, door, request, body, keep_aside=False
            )
        except Exception:  # every refusal and failure is the route's to answer
            await self._app(scope, fallback, send)
            return
        self.answered += 1
        content = _encode(accepted)
        headers = [*_JSON, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})

    def _blocked(self, scope: Scope) -> bool:
        counter = self._counter
        return counter.limit > 0 and counter.blocked_for(source_of(scope, self._trusted)) > 0

    @staticmethod
    def _announced(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return int(value) if value.isdigit() else 0
        return 0

    async def _read(
        self, receive: Receive
    ) -> tuple[list[Message], bytes | None, BaseException | None]:
        """(messages read, the whole body or None, the error that ended reading)."""
        messages: list[Message] = []
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = cast(HTTPReceiveMessage, await receive())
            except Exception as exc:  # the read deadline's 408, raised in `receive`
                return messages, None, exc
            messages.append(cast(Message, message))
            if message["type"] != "http.request":
                return messages, None, None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return messages, None, None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return messages, b"".join(chunks), None
