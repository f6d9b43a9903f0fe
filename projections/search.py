"""Searching the suppression list: filters, sorts and keyset pages, served by indexes.

The filters are the suppression's reason (the strongest: what the `reason` column and
its index hold; every active reason is listed beside it), its provider (the source of the evidence
receipt, kept in the `suppressions` table beside the reason), a range of its `since`,
and text contained in the address; the sorts are by address, or by `since` either way.
Every filter and sort is answered from an index of `suppressions` (projections/views.py)
and every page is a keyset page — `after` is the cursor of the last row shown — so a
page costs the same on the thousandth page as on the first, over a million rows. Only
the text filter reads rows it does not return (an address contains text anywhere, so
no index can find it): at worst it reads the whole list once.

Like every read model (projections/queries.py), each read checks that the projection
was built under the caller's policy, in the same read transaction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

import msgspec

from ledger import Store
from ledger.sql import Tx
from projections.operator import SOURCE as OPERATOR
from projections.providers import PROVIDERS
from projections.queries import require_policy
from projections.recipients import to_micros
from projections.state import REASON_RANK
from projections.streams import Scope, reason_names

Sort = Literal["email", "since", "-since"]
SORTS: tuple[Sort, ...] = get_args(Sort)
REASONS: tuple[str, ...] = tuple(sorted(REASON_RANK))
# The sources a suppression's evidence can come from: every provider, and operators.
PROVIDER_NAMES: tuple[str, ...] = (*sorted(PROVIDERS), OPERATOR)
MAX_QUERY = 320  # characters of `q`: longer than any address
MAX_CURSOR = 1024  # characters of `after`: a number, `/` and an address, with room to spare
INT64 = (-(2**63), 2**63 - 1)  # what either database holds in a BIGINT / INTEGER
NARROW = 2000  # rows of a `since` range below which it is sorted (see _plan)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Each sort: the keyset condition after a cursor, and the ORDER BY it follows.
_KEYSET: dict[Sort, tuple[str, str]] = {
    "email": ("email > ?", "email"),
    "since": ("(since, email) > (?, ?)", "since, email"),
    "-since": ("(since, email) < (?, ?)", "since DESC, email DESC"),
}
_COLUMNS = "email, reason, since, seq, source, last_event, reasons"
_EPOCH_DAY = date(1970, 1, 1)
_TWO = tuple(f"{n:02d}" for n in range(100))


class BadFilter(ValueError):
    """A filter, sort or cursor that cannot be read: `param` names which, `why` says why
    (for the client: it may quote the value); `shown` is what a log line may show of the
    value (a number or a day, never an address)."""

    def __init__(self, param: str, why: str, shown: str | None = None) -> None:
        super().__init__(f"{param}: {why}")
        self.param, self.why, self.shown = param, why, shown


class Filter(msgspec.Struct, frozen=True, kw_only=True):
    """What to list, and in which order. Times are microseconds since the epoch (UTC)."""

    reason: str | None = None
    provider: str | None = None
    since_from: int | None = None  # suppressions whose `since` is at or after this
    since_before: int | None = None  # ... and before this
    contains: str | None = None  # lower-case text the address contains
    sort: Sort = "email"
    # One stream's view (projections/streams.py): the suppressions that block it, each
    # with the reasons that do (`reason` then filters the stream's strongest one).
    scope: Scope | None = None


class Entry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One suppressed address in a search: why, since when, on which receipt's evidence,
    where that evidence came from, and when its latest event happened."""

    email: str
    reason: str
    since: str
    receipt: int
    provider: str  # the source of the evidence receipt (`operator` for a manual one)
    last_event: str | None
    reasons: list[str] = []  # every active reason, strongest first (`reason` is the first)


class Page(msgspec.Struct, frozen=True):
    """One page; `next` is the cursor of the following page (None on the last one)."""

    items: list[Entry]
    next: str | None


def day_start(text: str, name: str) -> int:
    """The first microsecond (UTC) of a YYYY-MM-DD day; BadFilter when it is not one."""
    return to_micros(datetime.combine(_day(text, name), datetime.min.time(), tzinfo=UTC))


def day_end(text: str, name: str) -> int | None:
    """The first microsecond after a YYYY-MM-DD day (the day is included); None for the
    last day there is (no end)."""
    day = _day(text, name)
    if day == date.max:
        return None
    return to_micros(datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC))


def _day(text: str, name: str) -> date:
    text = text.strip()
    try:
        if _DAY.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadFilter(name, f"not a day: {text[:40]!r} (use YYYY-MM-DD)", text[:40])


def parse_filter(
    *,
    reason: str | None = None,
    provider: str | None = None,
    since: str | None = None,
    until: str | None = None,
    q: str | None = None,
    sort: str | None = None,
) -> Filter:
    """A filter from query-string values (empty values mean no filter): `since` and
    `until` are days, YYYY-MM-DD in UTC, `until` included. BadFilter names a bad one.
    (A stream's view is set apart: `for_stream`.)"""
    reason = (reason or "").strip() or None
    if reason is not None and reason not in REASONS:
        raise BadFilter("reason", f"{reason[:40]!r} is not one of {', '.join(REASONS)}")
    provider = (provider or "").strip().lower() or None
    if provider is not None and provider not in PROVIDER_NAMES:
        raise BadFilter("provider", f"{provider[:40]!r} is not one of {', '.join(PROVIDER_NAMES)}")
    chosen = (sort or "").strip() or "email"
    if chosen not in SORTS:
        raise BadFilter("sort", f"{chosen[:40]!r} is not one of {', '.join(SORTS)}")
    contains = (q or "").strip().lower() or None
    if contains is not None and len(contains) > MAX_QUERY:
        raise BadFilter("q", f"at most {MAX_QUERY} characters")
    if contains is not None and "\x00" in contains:
        raise BadFilter("q", "holds a NUL character, which no address holds")
    return Filter(
        reason=reason,
        provider=provider,
        since_from=day_start(since, "since") if since and since.strip() else None,
        since_before=day_end(until, "until") if until and until.strip() else None,
        contains=contains,
        sort=chosen,  # narrowed by the check against SORTS above
    )


def for_stream(wanted: Filter, scope: Scope | None) -> Filter:
    """The filter as the stream of `scope` sees the list (None: every stream)."""
    return wanted if scope is None else msgspec.structs.replace(wanted, scope=scope)


def cursor(entry: Entry, since: int, sort: Sort) -> str:
    """The cursor after `entry` (its `since` in microseconds) under `sort`."""
    return _cursor(entry.email, since, sort)


def _cursor(email: str, since: int, sort: Sort) -> str:
    return email if sort == "email" else f"{since}/{email}"


def _after(text: str, sort: Sort) -> tuple[Any, ...]:
    """A cursor's keyset values: the address (by address), or `since/address`, where
    `since` is a 64-bit integer (microseconds); BadFilter for anything else, before any
    database sees it."""
    if len(text) > MAX_CURSOR:
        raise BadFilter("after", f"not a cursor: longer than {MAX_CURSOR} characters")
    if "\x00" in text:
        raise BadFilter("after", "not a cursor: it holds a NUL character")
    if sort == "email":
        return (text,)
    micros, slash, email = text.partition("/")
    if not slash or not re.fullmatch(r"-?[0-9]{1,40}", micros):
        raise BadFilter("after", f"not a cursor of a list sorted by {sort} (since/address)")
    number = int(micros)
    if not INT64[0] <= number <= INT64[1]:
        raise BadFilter(
            "after",
            f"not a cursor of a list sorted by {sort}: its time is outside a 64-bit integer",
            micros,
        )
    return (number, email)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


Plan = Literal["narrow", "wide"] | None


def _query(
    wanted: Filter, after: str | None, plan: Plan = None, columns: str = _COLUMNS
) -> tuple[str, list[Any]]:
    """The SELECT (its LIMIT left as the last `?`) and its arguments. `plan` steers
    a database that keeps no statistics (SQLite), for a `since` range listed by address:
    `narrow`
    keeps the keyset and the order off the primary key (the range is read on its index
    and sorted), `wide` keeps the range off its index (addresses are read in order and
    filtered). A unary `+` keeps a term off every index and changes no value."""
    clauses: list[str] = []
    args: list[Any] = []
    if wanted.reason is not None:
        clauses.append("reason = ?")
        args.append(wanted.reason)
    if wanted.provider is not None:
        clauses.append("source = ?")
        args.append(wanted.provider)
    unary = "+" if plan == "wide" else ""
    if wanted.since_from is not None:
        clauses.append(f"{unary}since >= ?")
        args.append(wanted.since_from)
    if wanted.since_before is not None:
        clauses.append(f"{unary}since < ?")
        args.append(wanted.since_before)
    if wanted.contains is not None:
        clauses.append("email LIKE ? ESCAPE '\\'")
        args.append(_like(wanted.contains))
    keyset, order = _KEYSET[wanted.sort]
    if plan == "narrow":  # neither the keyset nor the order may be read on the primary key
        keyset, order = f"+{keyset}", f"+{order}"
    if after is not None:
        clauses.append(keyset)
        args.extend(_after(after, wanted.sort))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT {columns} FROM suppressions{where} ORDER BY {order} LIMIT ?", args


async def _plan(tx: Tx, wanted: Filter) -> Plan:
    """How a database without statistics (SQLite) should read a `since` range listed by
    address: a range of fewer than NARROW rows (counted on its index, NARROW at most) is
    read on the index and sorted; a wider one is found in address order, where one row in
    NARROW or more matches — so a page reads a few thousand rows at most either way (a
    database that plans ranges itself, `Tx.plans_ranges`, is left to it)."""
    ranged = wanted.since_from is not None or wanted.since_before is not None
    if tx.plans_ranges or wanted.sort != "email" or not ranged:
        return None
    probe = msgspec.structs.replace(wanted, contains=None, sort="since")
    sql, args = _query(probe, None, columns="email")
    rows = await tx.fetch(f"SELECT COUNT(*) FROM ({sql}) AS probe", *args, NARROW)
    return "narrow" if int(rows[0][0]) < NARROW else "wide"


async def _fetch(tx: Tx, wanted: Filter, after: str | None, limit: int) -> list[tuple[Entry, int]]:
    """At most `limit` entries after `after`. For a stream, rows are read in the list's
    order and those that do not block it passed over (as the text filter does), until
    `limit` are found or the list ends."""
    scope = wanted.scope
    listed = wanted if scope is None else msgspec.structs.replace(wanted, reason=None)
    found: list[tuple[Entry, int]] = []
    while True:
        sql, args = _query(listed, after, await _plan(tx, listed))
        rows = await tx.fetch(sql, *args, limit)
        for email, reason, since, seq, source, last_event, reasons in rows:
            named = (
                reason_names(reasons, reason) if scope is None else scope.blocked(reasons, reason)
            )
            if not named or (scope is not None and wanted.reason not in (None, named[0])):
                continue
            entry = Entry(
                email=email,
                reason=named[0],
                since=iso_time(since),
                receipt=seq,
                provider=source,
                last_event=None if last_event is None else iso_time(last_event),
                reasons=named,
            )
            found.append((entry, since))
        if scope is None or len(rows) < limit or len(found) >= limit:
            return found[:limit]
        after = _cursor(rows[-1][0], rows[-1][2], wanted.sort)


@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    return (_EPOCH_DAY + timedelta(days=day)).isoformat()


def iso_time(micros: int) -> str:
    """What `format_time` (projections/recipients.py) gives, about three times as fast
    (an export formats two times a row): the day's text is cached, the rest is
    arithmetic."""
    day, rest = divmod(micros, 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    clock = f"{_day_text(day)}T{_TWO[hours]}:{_TWO[minutes]}:{_TWO[seconds]}"
    return f"{clock}.{fraction:06d}Z" if fraction else clock + "Z"


async def check_policy(store: Store, policy_hash: str) -> None:
    """PolicyMismatch unless the projection was built under `policy_hash`."""
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)


async def search(
    store: Store, policy_hash: str, wanted: Filter, *, after: str | None = None, limit: int = 100
) -> Page:
    """One page of at most `limit` suppressions matching `wanted`, after the cursor
    `after`; `next` is None when no row follows (BadFilter for an unreadable cursor)."""
    if after is not None:
        _after(after, wanted.sort)  # refuse a bad cursor before reading anything
    async with store.reading() as tx:
        await require_policy(tx, policy_hash)
        found = await _fetch(tx, wanted, after, limit + 1)
    more = len(found) > limit
    found = found[:limit]
    last = cursor(found[-1][0], found[-1][1], wanted.sort) if more else None
    return Page(items=[entry for entry, _ in found], next=last)


async def stream(
    store: Store, policy_hash: str, wanted: Filter, *, chunk: int = 5000
) -> AsyncIterator[list[Entry]]:
    """Every suppression matching `wanted`, in its order, `chunk` rows at a time.

    Each chunk is read in a transaction of its own, so a long export never holds the
    reader (SQLite has one) from other requests; chunks follow one another by keyset, so
    no row is listed twice, and a row that stays suppressed throughout is listed. A
    projection rebuilt under another policy meanwhile raises PolicyMismatch (the export
    stops short rather than mixing two policies' rows).
    """
    after: str | None = None
    while True:
        async with store.reading() as tx:
            await require_policy(tx, policy_hash)
            found = await _fetch(tx, wanted, after, chunk)
        if found:
            yield [entry for entry, _ in found]
        if len(found) < chunk:
            return
        after = cursor(found[-1][0], found[-1][1], wanted.sort)
