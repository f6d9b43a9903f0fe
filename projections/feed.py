"""The change feed: every change of a verdict, in the order it was committed.

The projection writes an entry in the same transaction as the state it describes, so the
feed can never disagree with the suppression list: applying its entries in order to an
empty list gives the list (tests/properties/test_feed_properties.py). An entry is written
only when a verdict changes — an address becomes suppressed, is released, or its reasons
change (a reason's streams included) — never when only its evidence or times move.

Every writer holds the projection's checkpoint row (`projection_meta`, locked) while it
writes, so entries are numbered without gaps in commit order, on PostgreSQL too: a reader
that remembers the last number it saw never skips an entry that commits later.

- `suppression.changed`: the address (`email`; None once erased, `subject` then holds
  its keyed hash), the verdict `before` and `after`, and what caused it: `event` (a
  provider's webhook: its receipt and event id), `operator` (an operator's action, by
  its receipt), `rebuild` (a policy change re-read history), `erasure` (the keyed hash
  takes the erased address's place; `erases` names the earlier entries about the address,
  whose `email` is gone now, so a copy downstream can be found and deleted);
- `rebuild.started` / `rebuild.completed`: around a rebuild's own entries, written in its
  swap's transaction, with the policy hashes and counts.

A cursor is `<feed>-<number>`: the feed's own random id (a restored or migrated database
starts another feed, and its cursors are refused) and the number of the last entry read.
Entries older than the retention are deleted; a cursor from before them is `Expired`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from ledger.sql import Tx, fetchrow, statements
from projections import operator
from projections.erasure_keys import is_subject
from projections.errors import ProjectionError
from projections.facts import Fact, is_erasure
from projections.recipients import format_time
from projections.state import RecipientState
from projections.streams import tag

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS feed_meta (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    feed   TEXT  NOT NULL,
    head   {int} NOT NULL,
    pruned {int} NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS changes (
    seq     {int} PRIMARY KEY,
    at      {int} NOT NULL,
    email   TEXT {text},
    subject TEXT,
    entry   {blob} NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS changes_email ON changes (email)",
)

MAX_LIMIT = 1000
Cause = Literal["event", "operator", "rebuild", "erasure"]


class CursorRefused(ProjectionError):
    """A cursor that is not one of this feed's (HTTP 400)."""


class Expired(ProjectionError):
    """A cursor whose next entries are no longer kept, or that belongs to another feed
    (HTTP 410): resynchronise from the full list, then read on after `resume` (the
    feed's newest entry when the cursor was refused)."""

    def __init__(self, message: str, resume: str) -> None:
        super().__init__(message)
        self.resume = resume


class Verdict(msgspec.Struct, frozen=True):
    """Whether an address is suppressed, why (the strongest reason), and every active
    reason: a change of a reason hidden behind a stronger one is a change too. A reason
    whose evidence belongs to some streams reads `reason@stream+stream` (streams.tag): a
    change of a cause's streams is a change too."""

    suppressed: bool
    reason: str | None
    reasons: tuple[str, ...] = ()


NOBODY = Verdict(False, None)


def verdict(state: RecipientState | None) -> Verdict:
    """What the suppressions table says of a state (views.write_states writes the row)."""
    if state is None or not state.causes or state.since is None:
        return NOBODY
    return Verdict(True, state.reason, tuple(dict.fromkeys(tag(c) for c in state.causes)))


def listed(reason: str, reasons: str | None) -> Verdict:
    """The verdict of a suppressions row (`reasons` None: a projection folded before the
    table listed every reason)."""
    return Verdict(True, reason, tuple(reasons.split(",")) if reasons else (reason,))


class _Entry(msgspec.Struct, kw_only=True, tag_field="type"):
    id: str = ""  # chg_<number>: also the SSE id's entry and the webhook-id
    cursor: str = ""
    at: str = ""


class Changed(_Entry, tag="suppression.changed", kw_only=True):
    """A verdict changed (see the module docstring)."""

    email: str | None = None
    subject: str | None = None
    before: Verdict
    after: Verdict
    cause: Cause
    policy_hash: str
    receipt: int | None = None
    source: str | None = None
    event_id: str | None = None
    action: str | None = None  # an operator's action: suppress, release, erase, …
    rebuild_id: str | None = None
    erases: list[str] = []


class RebuildStarted(_Entry, tag="rebuild.started", kw_only=True):
    """A rebuild's entries follow, up to its `rebuild.completed`."""

    rebuild_id: str
    policy_hash: str
    previous_policy_hash: str | None
    record: int | None = None  # the policy change's record in the ledger, if noted
    note: str | None = None


class RebuildCompleted(_Entry, tag="rebuild.completed", kw_only=True):
    """The end of a rebuild's entries, with what it read and changed."""

    rebuild_id: str
    policy_hash: str
    changed: int
    suppressed: int


Entry = Changed | RebuildStarted | RebuildCompleted
# Stored as MessagePack (the id, cursor, time, address and keyed hash are columns, filled
# in on reading); answered as JSON.
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Entry).decode


class Pending(msgspec.Struct, frozen=True):
    """A verdict change a fold is about to write, and the fact that caused it."""

    email: str
    before: Verdict
    after: Verdict
    trigger: Fact | None = None


def pending(
    before: Mapping[str, RecipientState],
    after: Iterable[RecipientState],
    triggers: Mapping[str, Fact],
) -> list[Pending]:
    """The verdict changes between stored states and their refolds, each with its cause."""
    changes = []
    for state in after:
        old, new = verdict(before.get(state.email)), verdict(state)
        if old != new:
            changes.append(Pending(state.email, old, new, triggers.get(state.email)))
    return changes


def schema(types: Mapping[str, str]) -> list[str]:
    """DDL for the feed's tables."""
    return statements(_SCHEMA, types)


_HEAD = "SELECT feed, head, pruned FROM feed_meta WHERE id = 1"


async def _head(tx: Tx) -> tuple[str, int, int]:
    """(feed id, last number, last number pruned), held to the end of the writer's
    transaction; the feed starts (gets its id) on first use."""
    row = await fetchrow(tx, _HEAD + tx.for_update)
    if row is not None:
        return str(row[0]), int(row[1]), int(row[2])
    feed = secrets.token_hex(4)
    await tx.execute("INSERT INTO feed_meta (id, feed, head, pruned) VALUES (1, ?, 0, 0)", feed)
    return feed, 0, 0


def _now() -> int:
    return time.time_ns() // 1000


async def write(tx: Tx, entries: list[tuple[Entry, str | None, str | None]]) -> list[int]:
    """Append entries ((entry, email, subject) each) inside the caller's write
    transaction, which holds the projection's checkpoint row; returns their numbers."""
    if not entries:
        return []
    _, head, _ = await _head(tx)
    at = _now()
    rows = [
        (head + i, at, email, subject, _encode(entry))
        for i, (entry, email, subject) in enumerate(entries, start=1)
    ]
    await tx.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?)", rows)
    await tx.execute("UPDATE feed_meta SET head = ? WHERE id = 1", head + len(rows))
    return [row[0] for row in rows]


def _changed(change: Pending, policy_hash: str) -> Changed:
    """The entry of a fold's verdict change, naming what caused it."""
    fact = change.trigger
    if fact is None:
        return Changed(
            before=change.before, after=change.after, cause="event", policy_hash=policy_hash
        )
    if fact.source == operator.SOURCE:
        return Changed(
            before=change.before, after=change.after, cause="operator", policy_hash=policy_hash,
            receipt=fact.seq, action=fact.raw_kind,
        )  # fmt: skip
    return Changed(
        before=change.before, after=change.after, cause="event", policy_hash=policy_hash,
        receipt=fact.seq, source=fact.source, event_id=fact.event_id,
    )  # fmt: skip


def _keyed(email: str) -> tuple[str | None, str | None]:
    """(email, subject) of an entry about `email`: an erased address's keyed hash is a
    subject, never an address."""
    return (None, email) if is_subject(email) else (email, None)


async def record(tx: Tx, changes: list[Pending], policy_hash: str) -> None:
    """Write the entries of a fold's verdict changes (an erasure's own: `erased`)."""
    await write(
        tx,
        [
            (_changed(change, policy_hash), *_keyed(change.email))
            for change in changes
            if change.trigger is None or not is_erasure(change.trigger)  # it writes its own
        ],
    )


async def erase(tx: Tx, email: str, subject: str) -> list[int]:
    """An erasure: the entries about `email` keep its keyed hash instead (`subject`);
    returns their numbers."""
    rows = await tx.fetch("SELECT seq FROM changes WHERE email = ? ORDER BY seq", email)
    await tx.execute("UPDATE changes SET email = NULL, subject = ? WHERE email = ?", subject, email)
    return [int(row[0]) for row in rows]


async def erased(
    tx: Tx,
    subject: str,
    change: tuple[Verdict, Verdict],
    *,
    erases: list[int],
    receipt: int,
    policy_hash: str,
) -> None:
    """The erasure's entry, always written (also when the keyed hash was suppressed
    already, by an earlier erasure): the keyed hash's verdict, and the entries `erase`
    made anonymous, so that a copy downstream made from them is found and deleted."""
    before, after = change
    entry = Changed(
        before=before, after=after, cause="erasure", policy_hash=policy_hash, receipt=receipt,
        action="erase", erases=[f"chg_{seq}" for seq in erases],
    )  # fmt: skip
    await write(tx, [(entry, None, subject)])


async def rebuilt(
    tx: Tx, suffix: str, *, previous: str | None, policy_hash: str, listed_reasons: bool
) -> tuple[int, int]:
    """A rebuild's swap, before the tables `*{suffix}` replace the live ones: write the
    start marker, one entry per address whose verdict differs between them (what the
    dry run lists), and the end marker. Returns (the start marker's number, changes)."""
    reasons = "a.reasons" if listed_reasons else "NULL"
    differ = "a.reason <> b.reason" + (" OR a.reasons <> b.reasons" if listed_reasons else "")
    rows = await tx.fetch(
        f"SELECT a.email, a.reason, {reasons}, b.reason, b.reasons FROM suppressions a "
        f"LEFT JOIN suppressions{suffix} b ON b.email = a.email "
        f"WHERE b.email IS NULL OR {differ} "
        f"UNION ALL SELECT b.email, NULL, NULL, b.reason, b.reasons FROM suppressions{suffix} b "
        "WHERE NOT EXISTS (SELECT 1 FROM suppressions a WHERE a.email = b.email) ORDER BY 1"
    )
    _, head, _ = await _head(tx)
    rebuild_id = f"rb_{head + 1}"
    counted = await fetchrow(tx, f"SELECT COUNT(*) FROM suppressions{suffix}")
    entries: list[tuple[Entry, str | None, str | None]] = [
        (
            RebuildStarted(
                rebuild_id=rebuild_id, policy_hash=policy_hash, previous_policy_hash=previous
            ),
            None,
            None,
        )
    ]
    for email, old, old_reasons, new, new_reasons in rows:
        before = NOBODY if old is None else listed(old, old_reasons)
        after = NOBODY if new is None else listed(new, new_reasons)
        entry = Changed(
            before=before, after=after, cause="rebuild", policy_hash=policy_hash,
            rebuild_id=rebuild_id,
        )  # fmt: skip
        entries.append((entry, *_keyed(email)))
    done = RebuildCompleted(
        rebuild_id=rebuild_id,
        policy_hash=policy_hash,
        changed=len(rows),
        suppressed=int(counted[0]) if counted else 0,
    )
    entries.append((done, None, None))
    numbers = await write(tx, entries)
    return numbers[0], len(rows)


async def note_record(tx: Tx, started: int, record: int, note: str | None) -> None:
    """Name the policy change's record (appended last in the swap) in its start marker."""
    row = await fetchrow(tx, "SELECT entry FROM changes WHERE seq = ?", started)
    if row is None:
        return
    entry = _decode(bytes(row[0]))
    if isinstance(entry, RebuildStarted):
        entry = msgspec.structs.replace(entry, record=record, note=note)
        await tx.execute("UPDATE changes SET entry = ? WHERE seq = ?", _encode(entry), started)


# Reading


class Position(msgspec.Struct, frozen=True):
    """Where the feed stands: its id, the newest entry's number, and the last number no
    longer kept (entries (pruned, head] are readable)."""

    feed: str
    head: int
    pruned: int

    def cursor(self, seq: int) -> str:
        """The cursor after entry `seq` (`0` while the feed has not started)."""
        return f"{self.feed}-{seq}" if self.feed else "0"


async def position(tx: Tx) -> Position:
    """The feed's position (an empty feed before its first entry)."""
    if not await tx.has_table("feed_meta"):
        return Position("", 0, 0)
    row = await fetchrow(tx, _HEAD)
    if row is None:
        return Position("", 0, 0)
    return Position(str(row[0]), int(row[1]), int(row[2]))


def parse_cursor(text: str | None, at: Position) -> int:
    """The number after which a cursor reads: None or empty: the oldest kept entry;
    `0`: the very first; `now`: the newest. CursorRefused for text that is no cursor;
    Expired for a cursor of another feed, ahead of this one, or before what is kept."""
    if text is None or text == "":
        return at.pruned
    if text == "now":
        return at.head
    if text == "0":
        seq = 0
    else:
        feed, _, number = text.rpartition("-")
        if not feed or not number.isdigit() or len(number) > 18:
            raise CursorRefused(f"not a cursor of this feed: {text[:40]!r}")
        if feed != at.feed:
            raise Expired(
                "this cursor belongs to another feed (a restored or migrated database)",
                at.cursor(at.head),
            )
        seq = int(number)
        if seq > at.head:
            raise Expired(
                "this cursor is ahead of the feed (a database restored from a backup?)",
                at.cursor(at.head),
            )
    if seq < at.pruned:
        raise Expired(
            f"the entries after this cursor are no longer kept (kept: after {at.pruned})",
            at.cursor(at.head),
        )
    return seq


async def read(tx: Tx, after: int, limit: int, at: Position) -> list[Entry]:
    """Entries numbered after `after`, oldest first, at most `limit`."""
    rows = await tx.fetch(
        "SELECT seq, at, email, subject, entry FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
        after,
        max(limit, 1),
    )
    entries: list[Entry] = []
    # The entries a transaction wrote share its time: formatted once (a third of a page's
    # time went to formatting the same instant again, bench/feed.py under cProfile).
    times: dict[int, str | None] = {}
    for seq, when, email, subject, blob in rows:
        entry = _decode(bytes(blob))
        fields: dict[str, object] = {"id": f"chg_{seq}", "cursor": at.cursor(int(seq))}
        micros = int(when)
        if micros not in times:
            times[micros] = format_time(micros)
        fields["at"] = times[micros]
        if isinstance(entry, Changed):
            fields.update(email=email, subject=subject)
        entries.append(msgspec.structs.replace(entry, **fields))
    return entries


def number(entry: Entry) -> int:
    """An entry's number (its place in the feed)."""
    return int(entry.id.removeprefix("chg_"))


async def prune(tx: Tx, before: int) -> int:
    """Delete the entries written before `before` (µs since the epoch), oldest first, up
    to the first one written later; returns how many."""
    at = await position(tx)
    upto = at.pruned
    while rows := await tx.fetch(
        "SELECT seq, at FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000", upto
    ):
        young = next((i for i, (_, when) in enumerate(rows) if int(when) >= before), None)
        if young is not None:
            upto = int(rows[young - 1][0]) if young else upto
            break
        upto = int(rows[-1][0])
    if upto == at.pruned:
        return 0
    await _head(tx)  # held: no entry is written meanwhile
    await tx.execute("DELETE FROM changes WHERE seq <= ?", upto)
    await tx.execute("UPDATE feed_meta SET pruned = ? WHERE id = 1", upto)
    return upto - at.pruned
