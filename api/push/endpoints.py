"""The endpoints the change feed is pushed to, kept in the ledger's database beside it.

One row per endpoint: where it is (`url`), what it is for, who added it and when, the
generation of its secret (the secret itself is derived, never stored: api/push/signing.py),
and its delivery state, all of it here so that a restart, or another instance, carries on
where the last attempt left off:

- `delivered`: the number of the last feed entry the endpoint acknowledged (2xx); the
  next delivery is the entry after it. A new endpoint starts at the feed's head unless
  told to start from the beginning (`0`) or a cursor;
- `state`: `active`, `paused` (by an operator), `failing` (every retry of an entry
  failed: nothing more is sent until an operator resumes it, from `delivered`), or
  `disabled` (the receiver answered 410 Gone);
- `attempts`, `failing_since`, `next_attempt`: the failed attempts of the current entry,
  when the first of them failed, and when the next is due (Schedule);
- `claimed_by`, `claimed_until`: the instance delivering to it now, and until when its
  claim holds (a conditional UPDATE takes it: one instance pushes an endpoint at a time);
- `last_attempt`, `last_status`, `last_error`: what the last attempt got back.

Times are microseconds since the epoch.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import msgspec

from api.push.signing import NO_KEY, EndpointKey, EndpointKeyMissing
from ledger import Store
from ledger.sql import Row, Tx, fetchrow
from projections import feed
from projections.errors import ProjectionError
from projections.recipients import format_time

_TABLE = "feed_endpoints"
_LOCK = 0x626C5F656E6470  # "bl_endp": instances starting at once create the table in turn
MAX_URL = 2000

# DDL a backend fills in with its own words (`Tx.types`).
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    {{int}} NOT NULL,
    created_by    TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    state         TEXT NOT NULL,
    delivered     {{int}} NOT NULL,
    attempts      INTEGER NOT NULL,
    failing_since {{int}},
    next_attempt  {{int}} NOT NULL,
    last_attempt  {{int}},
    last_status   INTEGER,
    last_error    TEXT,
    claimed_by    TEXT,
    claimed_until {{int}} NOT NULL
)"""

# Svix's schedule: after the first attempt (at once), a retry 5 s, 5 min, 30 min, 2 h,
# 5 h, 10 h and 10 h after each failure: eight attempts over about 28 hours.
SVIX_RETRIES = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class UnknownEndpoint(ValueError):
    """No endpoint has that id (HTTP 404)."""


class EndpointRefused(ValueError):
    """An endpoint that cannot be added or resumed as asked: its URL, or where it should
    start reading the feed (HTTP 400)."""


class Schedule(msgspec.Struct, frozen=True):
    """The seconds to wait before each retry of an entry, after its first attempt and
    each retry failed; once the last retry failed too, the endpoint is `failing`."""

    retries: tuple[float, ...] = SVIX_RETRIES

    def wait(self, failures: int) -> float | None:
        """Seconds until the next attempt after `failures` failed attempts of an entry
        (None: no attempt is left)."""
        return self.retries[failures - 1] if 0 < failures <= len(self.retries) else None


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """An endpoint and how its deliveries stand (never its secret). `delivered` is the
    number of the last entry it acknowledged and `cursor` the same place as a feed cursor
    (GET /v1/changes?after=…, to catch up by reading); `lag` counts the entries after it;
    `next_attempt` is set while a retry waits."""

    id: str
    url: str
    description: str
    created_at: str | None
    created_by: str
    state: str
    delivered: int
    cursor: str | None
    lag: int
    attempts: int
    failing_since: str | None
    next_attempt: str | None
    last_attempt: str | None
    last_status: int | None
    last_error: str | None


class Created(Endpoint, frozen=True, kw_only=True):
    """A new endpoint, with its secret: shown this once, never again."""

    secret: str


class Claim(msgspec.Struct):
    """An endpoint an instance delivers to now: where, its secret's generation, and the
    last entry delivered (moved on by each delivery)."""

    id: str
    instance: str
    url: str
    generation: int
    delivered: int


def check_url(url: str) -> str:
    """The URL, if deliveries may go there (http or https, a host, no credentials);
    EndpointRefused saying why not (never repeating the URL: it may hold a secret)."""
    text = url.strip()
    if not text or len(text) > MAX_URL:
        raise EndpointRefused(
            f"url: give an http:// or https:// URL of at most {MAX_URL} characters"
        )
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text):
        raise EndpointRefused("url: spaces and control characters are not allowed in a URL")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}:" if scheme.isalnum() and len(scheme) <= 20 else "no scheme"
        raise EndpointRefused(f"url: deliveries go to http:// and https:// URLs only, not {shown}")
    if "@" in parts.netloc:
        raise EndpointRefused(
            "url: credentials in the URL are refused (they would be stored and shown): "
            "receivers authenticate a delivery by its webhook-signature"
        )
    try:
        parts.port  # noqa: B018  (a port that is no number raises)
    except ValueError:
        raise EndpointRefused("url: the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise EndpointRefused("url: no host")
    if parts.fragment:
        raise EndpointRefused("url: a fragment (#…) is never sent: leave it out")
    return text


async def ensure(store: Store) -> None:
    """Create the table (at the service's start, and by the CLI; one instance at a time)."""
    async with store.writing() as tx:
        await tx.lock(_LOCK)
        await tx.execute(_SCHEMA.format(**tx.types))


def _start(text: str | None, at: feed.Position) -> int:
    """The number after which an endpoint starts reading: `now` (or nothing): the feed's
    head; `0`: the beginning; else a feed cursor."""
    try:
        return feed.parse_cursor("now" if text is None or text == "" else text, at)
    except ProjectionError as exc:  # CursorRefused, Expired
        raise EndpointRefused(f"from: {exc}") from exc


_COLUMNS = (
    "id, url, description, created_at, created_by, state, delivered, attempts, "
    "failing_since, next_attempt, last_attempt, last_status, last_error"
)


def _view(row: Row, at: feed.Position) -> Endpoint:
    (eid, url, description, created_at, created_by, state, delivered, attempts,
     failing_since, next_attempt, last_attempt, last_status, last_error) = row  # fmt: skip
    waits = state == "active" and attempts > 0
    return Endpoint(
        id=eid,
        url=url,
        description=description,
        created_at=format_time(created_at),
        created_by=created_by,
        state=state,
        delivered=delivered,
        cursor=at.cursor(delivered) if at.feed else None,
        lag=max(0, at.head - delivered),
        attempts=attempts,
        failing_since=format_time(failing_since),
        next_attempt=format_time(next_attempt) if waits else None,
        last_attempt=format_time(last_attempt),
        last_status=last_status,
        last_error=last_error,
    )


# The operator's side: add, list, look at, remove, pause, resume.


async def add(
    store: Store,
    key: EndpointKey | None,
    url: str,
    *,
    description: str,
    actor: str,
    start: str | None,
    now: int,
) -> Created:
    """Add an endpoint that receives the feed's entries after `start` (`now`, `0` or a
    cursor: see _start); its secret is returned this once. EndpointKeyMissing without a
    key to derive the secret from; EndpointRefused for a URL or a start it refuses."""
    if key is None:
        raise EndpointKeyMissing(NO_KEY)
    url = check_url(url)
    eid = "ep_" + secrets.token_hex(6)
    async with store.writing() as tx:
        at = await feed.position(tx)
        delivered = _start(start, at)
        await tx.execute(
            f"INSERT INTO {_TABLE} (id, url, description, created_at, created_by, generation, "
            "state, delivered, attempts, next_attempt, claimed_until) "
            "VALUES (?, ?, ?, ?, ?, 1, 'active', ?, 0, 0, 0)",
            eid, url, description, now, actor, delivered,
        )  # fmt: skip
    shown = await get(store, eid)
    return Created(**msgspec.structs.asdict(shown), secret=key.secret(eid, 1))


async def listing(store: Store) -> list[Endpoint]:
    """Every endpoint, oldest first, with how its deliveries stand."""
    async with store.reading() as tx:
        at = await feed.position(tx)
        rows = await tx.fetch(f"SELECT {_COLUMNS} FROM {_TABLE} ORDER BY created_at, id")
    return [_view(row, at) for row in rows]


async def get(store: Store, eid: str) -> Endpoint:
    """One endpoint; UnknownEndpoint when there is none of that id."""
    async with store.reading() as tx:
        at = await feed.position(tx)
        row = await fetchrow(tx, f"SELECT {_COLUMNS} FROM {_TABLE} WHERE id = ?", eid)
    if row is None:
        raise UnknownEndpoint(f"no endpoint {eid[:40]!r}")
    return _view(row, at)


async def target(store: Store, eid: str) -> tuple[str, int]:
    """Where an endpoint is, and its secret's generation; UnknownEndpoint when there is none."""
    async with store.reading() as tx:
        row = await fetchrow(tx, f"SELECT url, generation FROM {_TABLE} WHERE id = ?", eid)
    if row is None:
        raise UnknownEndpoint(f"no endpoint {eid[:40]!r}")
    return str(row[0]), int(row[1])


async def _changed(tx: Tx, eid: str, sql: str, *args: object) -> None:
    """Run an UPDATE or DELETE of one endpoint (`… WHERE id = ? RETURNING id`, `eid`
    last); UnknownEndpoint when it matched no row."""
    if not await tx.fetch(sql, *args, eid):
        raise UnknownEndpoint(f"no endpoint {eid[:40]!r}")


async def remove(store: Store, eid: str) -> None:
    """Delete an endpoint: nothing more is sent to it (a delivery under way ends unrecorded)."""
    async with store.writing() as tx:
        await _changed(tx, eid, f"DELETE FROM {_TABLE} WHERE id = ? RETURNING id")


async def pause(store: Store, eid: str) -> Endpoint:
    """Stop deliveries to an endpoint until it is resumed (a delivery under way ends)."""
    async with store.writing() as tx:
        await _changed(tx, eid, f"UPDATE {_TABLE} SET state = 'paused' WHERE id = ? RETURNING id")
    return await get(store, eid)


async def resume(store: Store, eid: str, *, start: str | None = None, now: int) -> Endpoint:
    """Deliver to an endpoint again (paused, failing or disabled), at once: the entry
    after `delivered`, retried on the whole schedule — or the entry after `start` (`0`
    or a cursor: after its entries expired, a receiver resynchronised from the list)."""
    async with store.writing() as tx:
        moved, args = "", [now]
        if start:
            moved, args = ", delivered = ?", [now, _start(start, await feed.position(tx))]
        await _changed(
            tx,
            eid,
            f"UPDATE {_TABLE} SET state = 'active', attempts = 0, failing_since = NULL, "
            f"next_attempt = ?{moved} WHERE id = ? RETURNING id",
            *args,
        )
    return await get(store, eid)


# The deliverer's side: find what is due, claim it, record each attempt.

# An endpoint whose claim has lapsed, or that nobody claims.
_FREE = "(claimed_by IS NULL OR claimed_by = ? OR claimed_until <= ?)"


async def due(store: Store, instance: str, now: int) -> list[str]:
    """The endpoints with entries to deliver now that no other instance is delivering
    to: active, no retry waiting, behind the feed's head."""
    async with store.reading() as tx:
        at = await feed.position(tx)
        rows = await tx.fetch(
            f"SELECT id FROM {_TABLE} WHERE state = 'active' AND next_attempt <= ? "
            f"AND delivered < ? AND {_FREE} ORDER BY next_attempt, id",
            now, at.head, instance, now,
        )  # fmt: skip
    return [str(row[0]) for row in rows]


async def claim(store: Store, eid: str, instance: str, now: int, lease: int) -> Claim | None:
    """Take an endpoint for `lease` µs, if it is due and no other instance holds it: one
    conditional UPDATE, so of several instances trying at once one gets it (None: not
    this one, or it is not due any more)."""
    async with store.writing() as tx:
        row = await fetchrow(
            tx,
            f"UPDATE {_TABLE} SET claimed_by = ?, claimed_until = ? WHERE id = ? "
            f"AND state = 'active' AND next_attempt <= ? AND {_FREE} "
            "RETURNING url, generation, delivered",
            instance, now + lease, eid, now, instance, now,
        )  # fmt: skip
    if row is None:
        return None
    return Claim(eid, instance, str(row[0]), int(row[1]), int(row[2]))


# Only while the claim is this instance's, and at the entry it claimed: an operator who
# removed the endpoint or resumed it from elsewhere meanwhile is not overwritten.
_HELD = "WHERE id = ? AND claimed_by = ? AND delivered = ?"


async def advance(
    store: Store, held: Claim, number: int, status: int, now: int, lease: int
) -> bool | None:
    """Record that entry `number` was delivered (answered `status`) and hold the claim
    `lease` µs more. Whether the endpoint is still active (None: the claim is lost)."""
    async with store.writing() as tx:
        row = await fetchrow(
            tx,
            f"UPDATE {_TABLE} SET delivered = ?, attempts = 0, failing_since = NULL, "
            "last_attempt = ?, last_status = ?, last_error = NULL, claimed_until = ? "
            f"{_HELD} RETURNING state",
            number, now, status, now + lease, held.id, held.instance, held.delivered,
        )  # fmt: skip
    if row is None:
        return None
    held.delivered = number
    return bool(row[0] == "active")


async def fail(
    store: Store,
    held: Claim,
    schedule: Schedule,
    now: int,
    *,
    status: int | None,
    error: str,
    stop: str | None = None,
) -> str | None:
    """Record a failed attempt of the entry after `held.delivered` and give the claim up:
    the next attempt is due by the schedule, or the endpoint is `failing` once it is
    exhausted — or takes the state `stop` at once (`disabled`: the receiver answered 410
    Gone; `failing`: the entry is no longer kept). The endpoint's state afterwards (None:
    the claim was lost meanwhile)."""
    async with store.writing() as tx:
        row = await fetchrow(
            tx, f"SELECT attempts FROM {_TABLE} {_HELD}{tx.for_update}",
            held.id, held.instance, held.delivered,
        )  # fmt: skip
        if row is None:
            return None
        failures = int(row[0]) + 1
        wait = schedule.wait(failures)
        state = stop or ("active" if wait is not None else "failing")
        await tx.execute(
            f"UPDATE {_TABLE} SET state = ?, attempts = ?, "
            "failing_since = COALESCE(failing_since, ?), next_attempt = ?, last_attempt = ?, "
            f"last_status = ?, last_error = ?, claimed_by = NULL, claimed_until = 0 {_HELD}",
            state, failures, now, now + int((wait or 0) * 1_000_000), now, status, error,
            held.id, held.instance, held.delivered,
        )  # fmt: skip
    return state


async def release(store: Store, instance: str, eid: str | None = None) -> None:
    """Give up an instance's claim on `eid` (None: on every endpoint), so that another
    instance, or this one after a restart, may deliver at once."""
    which, args = ("", [instance]) if eid is None else (" AND id = ?", [instance, eid])
    async with store.writing() as tx:
        await tx.execute(
            f"UPDATE {_TABLE} SET claimed_by = NULL, claimed_until = 0 WHERE claimed_by = ?{which}",
            *args,
        )
