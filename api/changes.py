"""The change feed over HTTP: pages (`GET /v1/changes`) and a live stream of Server-Sent
Events (`GET /v1/changes/stream`), both behind the API key (projections/feed.py says
what an entry holds and what a cursor is).

A client stores the `next` cursor after it has processed a page and asks again from it:
it sees every change at least once, in order. A cursor whose entries are no longer kept
(or that belongs to another feed: a restored or migrated database) is answered 410 with
what to do: list `GET /v1/suppressions`, then read on from the cursor the answer gives.

The stream replays from `Last-Event-ID` (or `?after=`; neither: from now), then sends
each entry as it commits, and a comment every `HEARTBEAT` seconds so that proxies keep
the connection. Each client reads the feed on its own, in short read transactions:
nothing it does holds a lock or a buffer that ingest or other clients wait on. A client
that does not take what it is sent within `SEND_TIMEOUT` seconds is disconnected (its
EventSource reconnects and resumes from the last id it received).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated
from urllib.parse import parse_qs

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.handlers import asgi
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from api.runtime import Runtime
from api.schemas import Problem
from ledger import Store
from projections import feed

HEARTBEAT = 15.0  # seconds between comments on an idle stream
SEND_TIMEOUT = 30.0  # seconds a stream client may take to accept one batch
RETRY_MS = 5000  # what an EventSource waits before it reconnects
_BATCH = 200


class ChangesPage(msgspec.Struct, frozen=True):
    """Entries after the cursor given, oldest first; `next` is the cursor to ask from
    next (also when `data` is empty); `has_more`: more entries are ready now."""

    data: list[feed.Entry]
    next: str
    has_more: bool


class Resync(msgspec.Struct, frozen=True):
    """How a client whose cursor expired starts again: list `list` (every page), then
    read the feed after `cursor`."""

    list: str
    cursor: str


class Gone(msgspec.Struct, frozen=True):
    """410: the cursor's entries are no longer kept here."""

    status_code: int
    detail: str
    resync: Resync


async def page(store: Store, after: str | None, limit: int) -> ChangesPage:
    """The entries after cursor `after` (see feed.parse_cursor), at most `limit`."""
    async with store.reading() as tx:
        at = await feed.position(tx)
        start = feed.parse_cursor(after, at)
        entries = await feed.read(tx, start, limit + 1, at)
    more = len(entries) > limit
    entries = entries[:limit]
    last = feed.number(entries[-1]) if entries else start
    return ChangesPage(data=entries, next=at.cursor(last), has_more=more)


def gone(exc: feed.Expired) -> Gone:
    """The 410 answer for an expired cursor (api/app.py maps feed.Expired to it)."""
    detail = f"{exc}: list /v1/suppressions, then read the feed after `resync.cursor`"
    return Gone(410, detail, Resync("/v1/suppressions", exc.resume))


@get(
    "/v1/changes",
    summary="Every verdict change after a cursor: suppressed, released, reasons changed",
    description=(
        "Entries strictly after `after`, oldest first, and the `next` cursor to ask from "
        "(also when there is none yet). Store `next` once a page is processed: every change "
        "arrives at least once, in order. `after` omitted: the oldest entry kept; `0`: the "
        "first; `now`: only what comes next. 410 when the cursor's entries are no longer "
        "kept, with where to resynchronise from."
    ),
    responses={
        400: ResponseSpec(data_container=Problem, description="not a cursor of this feed"),
        410: ResponseSpec(data_container=Gone, description="the cursor's entries are gone"),
    },
)
async def list_changes(
    runtime: NamedDependency[Runtime],
    after: Annotated[
        str | None, QueryParameter(description="the last cursor processed", max_length=64)
    ] = None,
    limit: Annotated[
        int, QueryParameter(ge=1, le=feed.MAX_LIMIT, description="entries at most")
    ] = 100,
) -> ChangesPage:
    return await page(runtime.store, after, limit)


def _event(entry: feed.Entry) -> bytes:
    data = msgspec.json.encode(entry)
    kind = type(entry).__struct_config__.tag
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (entry.cursor.encode(), str(kind).encode(), data)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _query(scope: Scope, name: str) -> str | None:
    values = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1")).get(name)
    return values[-1] if values else None


async def _problem(send: Send, status: int, body: msgspec.Struct) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json")],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": msgspec.json.encode(body),
        "more_body": False,
    }
    await send(end)


@asgi("/v1/changes/stream", is_mount=False, copy_scope=False)
async def stream_changes(scope: Scope, receive: Receive, send: Send) -> None:
    """Server-Sent Events: each entry as it commits (`id` is its cursor, `event` its
    type, `data` the entry), a comment every 15 s. Resumes after `Last-Event-ID` (or
    `?after=`; neither: from now). 410 before the stream when the cursor expired."""
    runtime: Runtime = scope["app"].state.runtime
    store = runtime.store
    given = _header(scope, b"last-event-id") or _query(scope, "after") or "now"
    try:
        async with store.reading() as tx:
            start = feed.parse_cursor(given, await feed.position(tx))
    except feed.CursorRefused as exc:
        await _problem(send, 400, Problem(400, str(exc)))
        return
    except feed.Expired as exc:
        await _problem(send, 410, gone(exc))
        return
    opening: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ],
    }
    await send(opening)
    disconnected = asyncio.ensure_future(_disconnect(receive))
    try:
        await _send(send, b"retry: %d\n\n" % RETRY_MS, disconnected)
        await _follow(store, runtime, start, send, disconnected)
    except (TimeoutError, _Gone):
        pass  # a slow or departed client: it resumes from the last id it received
    finally:
        disconnected.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await disconnected


class _Gone(Exception):
    """The client went away."""


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send: Send, chunk: bytes, disconnected: asyncio.Future[None]) -> None:
    if disconnected.done():
        raise _Gone
    async with asyncio.timeout(SEND_TIMEOUT):
        event: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": chunk,
            "more_body": True,
        }
        await send(event)


async def _follow(
    store: Store, runtime: Runtime, after: int, send: Send, disconnected: asyncio.Future[None]
) -> None:
    while True:
        async with store.reading() as tx:
            at = await feed.position(tx)
            entries = await feed.read(tx, after, _BATCH, at) if at.head > after else []
        if entries:
            await _send(send, b"".join(_event(entry) for entry in entries), disconnected)
            after = feed.number(entries[-1])
            continue
        arrived = await runtime.feed_watch.wait_past(after, HEARTBEAT, disconnected)
        if disconnected.done():
            raise _Gone
        if not arrived:
            await _send(send, b": keep-alive\n\n", disconnected)
