"""The deliverer: the change feed pushed to every active endpoint, in order.

Every `poll` seconds it looks for the endpoints behind the feed's head with no retry
waiting, claims each (api/push/endpoints.py `claim`: with several instances on one
database, one of them pushes an endpoint at a time) and POSTs its entries one per
request, oldest first: `{"type", "timestamp", "data"}` with the Standard Webhooks headers
(api/push/signing.py), to the endpoint's URL alone (no redirect is followed, no proxy or
netrc of the environment is used), within `timeout` seconds. A 2xx moves the endpoint's
`delivered` on; anything else stops it at that entry, to be retried on the schedule, and
a 410 disables it. Everything it knows is in the endpoints' table, so a restart carries
on where it stopped; an entry whose 2xx was not recorded is sent again (at least once:
`webhook-id` is the receiver's idempotency key).

At most `concurrency` endpoints are pushed at once; the secret of each is derived per
delivery from the endpoint key and never logged, nor is an endpoint's URL (it may hold a
token): the log names endpoints by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec

from api.push import endpoints, signing
from api.push.endpoints import Claim, Schedule
from api.push.signing import NO_KEY, EndpointKey, EndpointKeyMissing
from ledger import Store, StoreUnavailable
from projections import feed
from projections.recipients import format_time

log = logging.getLogger("bounceledger.push")

TIMEOUT = 15.0  # seconds a receiver has to answer (Svix's)
LEASE = 60.0  # seconds a claim holds without a delivery renewing it (> TIMEOUT)
POLL = 0.5  # seconds between looks at the feed's head
CONCURRENCY = 4  # endpoints pushed at once, per instance
BATCH = 100  # entries read at a time
_SHOWN = 200  # characters of a receiver's answer kept as the error


class Attempt(msgspec.Struct, frozen=True):
    """What one POST got: whether it was acknowledged (2xx), the status (None: no
    answer), how long it took, what went wrong (the start of the receiver's answer
    included), and the kind of outcome, for the log (`HTTP 500`, `timeout`, the
    connection error's name: never the receiver's words, which may echo a body)."""

    ok: bool
    status: int | None
    seconds: float
    error: str | None
    kind: str


class Probe(msgspec.Struct, frozen=True, kw_only=True):
    """A test delivery (`endpoint.test`) and what it got; the endpoint's cursor stays."""

    endpoint: str
    message_id: str
    at: str | None
    ok: bool
    status: int | None
    seconds: float
    error: str | None


def _now() -> int:
    return time.time_ns() // 1000


def message(kind: str, timestamp: str | None, data: Any) -> bytes:
    """A delivery's body: `{"type", "timestamp", "data"}` as JSON."""
    return msgspec.json.encode({"type": kind, "timestamp": timestamp, "data": data})


def entry_message(entry: feed.Entry) -> bytes:
    """The body that delivers a feed entry (its type is the entry's own)."""
    return message(str(entry.__struct_config__.tag), entry.at, entry)


def new_client() -> httpx.AsyncClient:
    """The HTTP client deliveries go through: to the URL given and nowhere else."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,  # no proxy, netrc credentials or certificate file from the environment
        timeout=TIMEOUT,
        headers={"user-agent": "bounceledger-webhooks"},
    )


def _shown(text: str) -> str:
    """A receiver's text, one short printable line."""
    line = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(line.split())[:_SHOWN]


async def send(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    message_id: str,
    body: bytes,
    timeout: float = TIMEOUT,
) -> Attempt:
    """POST one signed message; never raises for what the receiver does."""
    sent = {
        **signing.headers(secret, message_id, int(time.time()), body),
        "content-type": "application/json",
    }
    started = time.perf_counter()
    answer = b""
    try:
        async with (
            asyncio.timeout(timeout),
            client.stream("POST", url, content=body, headers=sent) as response,
        ):
            status = response.status_code
            if not 200 <= status < 300:
                async for chunk in response.aiter_bytes():
                    answer += chunk
                    if len(answer) >= _SHOWN:
                        break
    except (TimeoutError, httpx.TimeoutException):
        error = f"no answer within {timeout:g} s"
        return Attempt(False, None, time.perf_counter() - started, error, "timeout")
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        error = _shown(f"{type(exc).__name__}: {exc}")
        return Attempt(False, None, time.perf_counter() - started, error, type(exc).__name__)
    seconds = time.perf_counter() - started
    kind = f"HTTP {status}"
    if 200 <= status < 300:
        return Attempt(True, status, seconds, None, kind)
    why = kind + (" (redirects are not followed)" if 300 <= status < 400 else "")
    shown = _shown(answer.decode("utf-8", "replace"))
    return Attempt(False, status, seconds, f"{why}: {shown}" if shown else why, kind)


async def probe(store: Store, key: EndpointKey | None, eid: str, timeout: float = TIMEOUT) -> Probe:
    """Send an endpoint one signed `endpoint.test` message now (its cursor stays)."""
    if key is None:
        raise EndpointKeyMissing(NO_KEY)
    url, generation = await endpoints.target(store, eid)
    message_id = "test_" + secrets.token_hex(8)
    at = format_time(_now())
    body = message("endpoint.test", at, {"endpoint": eid, "note": "a test from bounceledger"})
    async with new_client() as client:
        got = await send(client, url, key.secret(eid, generation), message_id, body, timeout)
    return Probe(
        endpoint=eid, message_id=message_id, at=at, ok=got.ok, status=got.status,
        seconds=round(got.seconds, 3), error=got.error,
    )  # fmt: skip


class Deliverer:
    """Pushes the feed to the endpoints (see the module docstring); `on_outcome` hears
    `delivered`, `failed` or `disabled` after each attempt."""

    def __init__(
        self,
        store: Store,
        key: EndpointKey,
        *,
        schedule: Schedule | None = None,
        on_outcome: Callable[[str], None] | None = None,
        poll: float = POLL,
        wake: Callable[[float], Awaitable[object]] | None = None,
        lease: float = LEASE,
        concurrency: int = CONCURRENCY,
        timeout: float = TIMEOUT,
        instance: str | None = None,
    ) -> None:
        self.store, self.key = store, key
        self.schedule = schedule or Schedule()
        self.on_outcome = on_outcome
        self.poll, self.timeout, self.concurrency = poll, timeout, concurrency
        # waits up to its argument's seconds, returning early when the feed moved
        self._wake = wake or asyncio.sleep
        self._lease = int(lease * 1_000_000)
        # who claims: unique per deliverer, so that a restarted process claims afresh
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._client = new_client()
        self._task: asyncio.Task[None] | None = None
        self._pushing: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Start delivering, in the background."""
        self._task = asyncio.create_task(self.run(), name="webhook deliveries")

    async def stop(self) -> None:
        """Stop: deliveries under way are abandoned (their entries are sent again later),
        this instance's claims given up, the client closed."""
        tasks = [task for task in (self._task, *self._pushing.values()) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        with contextlib.suppress(StoreUnavailable):
            await endpoints.release(self.store, self.instance)
        await self._client.aclose()

    async def run(self) -> None:
        """Look for endpoints due every `poll` seconds, until cancelled."""
        while True:
            try:
                await self.tick()
            except StoreUnavailable:
                pass  # readiness reports the ledger; the next look tries again
            except Exception:  # the loop must outlive any one failure
                log.exception("looking for webhook endpoints due failed")
            await self._wake(self.poll)

    async def tick(self) -> None:
        """Start pushing each endpoint due that is not being pushed (up to `concurrency`)."""
        for eid in await endpoints.due(self.store, self.instance, _now()):
            if len(self._pushing) >= self.concurrency:
                break
            if eid not in self._pushing:
                task = asyncio.create_task(self._guarded(eid), name=f"push {eid}")
                self._pushing[eid] = task
                task.add_done_callback(functools.partial(self._done, eid))

    def _done(self, eid: str, _: asyncio.Task[None]) -> None:
        self._pushing.pop(eid, None)

    async def _guarded(self, eid: str) -> None:
        try:
            await self.push(eid)
        except StoreUnavailable as exc:
            log.warning("endpoint %s: deliveries stopped for now: %s", eid, exc)
        except Exception:
            log.exception("endpoint %s: delivering failed", eid)

    async def push(self, eid: str) -> None:
        """Claim an endpoint and deliver its entries until it is caught up, an attempt
        fails, or it stops being active; then give the claim up."""
        held = await endpoints.claim(self.store, eid, self.instance, _now(), self._lease)
        if held is None:
            return
        try:
            while await self._deliver(held):
                pass
        finally:
            await endpoints.release(self.store, self.instance, eid)

    async def _deliver(self, held: Claim) -> bool:
        """Deliver the next entries, at most BATCH; whether to go on."""
        async with self.store.reading() as tx:
            at = await feed.position(tx)
            fresh = at.pruned <= held.delivered < at.head
            entries = await feed.read(tx, held.delivered, BATCH, at) if fresh else []
        if held.delivered < at.pruned:
            error = (
                f"the entries after {held.delivered} are no longer kept (the feed keeps those "
                f"after {at.pruned}): resynchronise from GET /v1/suppressions, then resume "
                "from its cursor"
            )
            stranded = Attempt(False, None, 0.0, error, "entries no longer kept")
            await self._failed(held, stranded, stop="failing")
            return False
        secret = self.key.secret(held.id, held.generation)
        for entry in entries:
            got = await send(
                self._client, held.url, secret, entry.id, entry_message(entry), self.timeout
            )
            if not got.ok:
                await self._failed(held, got, stop="disabled" if got.status == 410 else None)
                return False
            active = await endpoints.advance(
                self.store, held, feed.number(entry), got.status or 200, _now(), self._lease
            )
            self._count("delivered")
            if not active:
                return False
        return bool(entries)

    async def _failed(self, held: Claim, got: Attempt, stop: str | None) -> None:
        """Record a failed attempt; log it by endpoint id and the kind of failure (the
        whole error is kept in the endpoint's row: GET /v1/endpoints shows it)."""
        entry = f"chg_{held.delivered + 1}"
        state = await endpoints.fail(
            self.store, held, self.schedule, _now(), status=got.status, error=got.error or "",
            stop=stop,
        )  # fmt: skip
        self._count("disabled" if state == "disabled" else "failed")
        if state == "active":
            log.warning("endpoint %s: %s not delivered (%s); retrying", held.id, entry, got.kind)
        elif state is not None:
            log.error(
                "endpoint %s is %s at %s (%s): nothing more is sent until an operator "
                "resumes it (bounceledger endpoints resume %s)",
                held.id, state, entry, got.kind, held.id,
            )  # fmt: skip

    def _count(self, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(outcome)


async def started(
    store: Store,
    key: EndpointKey | None,
    schedule: Schedule,
    on_outcome: Callable[[str], None] | None = None,
    wake: Callable[[float], Awaitable[object]] | None = None,
) -> Deliverer | None:
    """At the service's start: the endpoints' table created, and a deliverer delivering
    — none without an endpoint key (a warning says so when endpoints are waiting).
    `wake(seconds)` waits between looks, returning early when the feed moves."""
    await endpoints.ensure(store)
    if key is None:
        waiting = await endpoints.listing(store)
        if waiting:
            log.warning(
                "%d outbound webhook endpoints, and nothing is delivered to them: %s",
                len(waiting), NO_KEY,
            )  # fmt: skip
        return None
    deliverer = Deliverer(store, key, schedule=schedule, on_outcome=on_outcome, wake=wake)
    deliverer.start()
    return deliverer
