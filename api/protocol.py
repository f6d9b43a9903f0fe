"""HTTP/1.1 for `bounceledger serve`: uvicorn's httptools protocol with a read deadline.

uvicorn times only idle keep-alive connections: a client that opens a connection and
sends nothing, or sends its request head a byte at a time, holds a connection (and a file
descriptor) for as long as it likes, and a few hundred of them starve everyone else. Here
every request's head must arrive within `read_timeout` seconds of its first byte (and a
new connection must start one within as long): otherwise the client is answered 408 (or,
if it sent nothing, just disconnected). The body has its own deadline in the app
(api.app), which answers 408 itself; a body still trickling in after the response has
gone out ends the connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("bounceledger.access")

_BODY = b"request not received in time\n"
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"connection: close\r\n\r\n" + _BODY
)


class _ReadDeadline:
    """The read deadline for uvicorn's httptools protocol: armed when a connection opens
    and when a request's first byte arrives, re-armed when its head is complete, disarmed
    when the whole request is in (idle keep-alive is uvicorn's timeout). While the app
    answers, the body is the app's to time; after the answer, a body still arriving ends
    the connection."""

    read_timeout: float = 15.0
    _deadline: asyncio.TimerHandle | None = None
    _in_head = False
    # provided by HttpToolsProtocol
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_message_begin(self) -> None:
        self._in_head = True
        if self._deadline is None:
            self._arm()
        super().on_message_begin()  # type: ignore[misc]

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm()  # now for the body: the app times it while it reads (api.app)
        super().on_headers_complete()  # type: ignore[misc]

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()  # type: ignore[misc]

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_head:
            self.transport.write(TIMEOUT_RESPONSE)
            client = self.client
            log.info(
                "- - 408 (request head not received within %g s)",
                self.read_timeout,
                extra={
                    "method": None,
                    "path": None,
                    "status": 408,
                    "peer": client[0] if client else None,
                },
            )
            self.transport.close()
            return
        cycle = getattr(self, "cycle", None)
        if cycle is None:
            self.transport.close()  # a connection that never sent a request
        elif not cycle.response_complete:
            self._arm()  # the app is reading the body under its own deadline, or answering
        else:
            self.transport.close()  # a body still trickling in after the answer went out


def read_deadline_protocol(read_timeout: float) -> type[Any]:
    """The protocol class for uvicorn's `http=`, with this deadline, on httptools (h11
    took fewer webhooks/s: bench/README.md, "Measured reasons")."""
    base = type("HttpToolsReadDeadline", (_ReadDeadline, HttpToolsProtocol), {})
    return type("Configured", (base,), {"read_timeout": read_timeout})
