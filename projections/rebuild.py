"""Rebuild: fold the whole ledger under a policy into fresh tables, then swap them in.

The fold runs outside any write transaction and the shadow tables fill in short
transactions, so ingestion goes on meanwhile. The swap is one transaction: it replaces
the live tables, then folds whatever arrived since the rebuild read the ledger (the
tail) and records the checkpoint and policy hash — nothing appended is missed.
`dry_run` stops before writing and reports who would change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import aiosqlite
import msgspec

from ledger import SQLiteStore
from projections import views
from projections.events import NormalizedEvent
from projections.fold import replay
from projections.mapping import Mapper
from projections.policy import Policy, policy_hash
from projections.projector import statements
from projections.state import RecipientState

Progress = Callable[[int, int], None]
_READ_CHUNK = 2000
_WRITE_CHUNK = 20_000


class Verdict(msgspec.Struct, frozen=True):
    """Whether an address is suppressed, and why."""

    suppressed: bool
    reason: str | None


class Change(msgspec.Struct, frozen=True):
    """An address whose verdict differs between the live projection and the rebuild."""

    email: str
    before: Verdict
    after: Verdict


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a rebuild read and what it changed (or would change, on a dry run)."""

    dry_run: bool
    policy_hash: str
    receipts: int
    events: int
    recipients: int
    suppressed: int
    changed: list[Change]


class _History(msgspec.Struct):
    rows: list[tuple[str, int, int, int, bytes, bytes]]
    states: dict[str, RecipientState]
    receipts: int


async def rebuild(
    store: SQLiteStore, policy: Policy, *, dry_run: bool = False, progress: Progress | None = None
) -> RebuildReport:
    """Re-read all of history under `policy`; see the module docstring."""
    head = await store.last_seq()
    history = await _fold_history(store, Mapper(policy), head, progress)
    digest = policy_hash(policy)
    if dry_run:
        async with store.snapshot() as db:
            before = await _live_verdicts(db)
    else:
        await _write_shadow(store, history)
        before = await _swap(store, policy, digest, head)
    after = {
        email: Verdict(state.suppressed, state.reason) for email, state in history.states.items()
    }
    return RebuildReport(
        dry_run=dry_run,
        policy_hash=digest,
        receipts=history.receipts,
        events=len(history.rows),
        recipients=len(history.states),
        suppressed=sum(1 for v in after.values() if v.suppressed),
        changed=_diff(before, after),
    )


async def _fold_history(
    store: SQLiteStore, mapper: Mapper, head: int, progress: Progress | None
) -> _History:
    seen: set[bytes] = set()
    rows = []
    by_email: dict[str, list[NormalizedEvent]] = defaultdict(list)
    after = count = 0
    while after < head:
        receipts = await store.read(after, min(_READ_CHUNK, head - after))
        if not receipts:
            break
        for receipt in receipts:
            for item in mapper.placed(receipt):
                if item.key in seen:
                    continue
                seen.add(item.key)
                rows.append(views.event_row(item))
                by_email[item.event.recipient].append(item.event)
        after = receipts[-1].seq
        count += len(receipts)
        if progress:
            progress(count, head)
    states = {email: replay(email, events, mapper.policy) for email, events in by_email.items()}
    return _History(rows=rows, states=states, receipts=count)


async def _write_shadow(store: SQLiteStore, history: _History) -> None:
    async with store.write() as db:
        for table in views.TABLES:
            await db.execute(f"DROP TABLE IF EXISTS {table}_next")
        for statement in statements(views.views_script("_next")):
            await db.execute(statement)
    for start in range(0, len(history.rows), _WRITE_CHUNK):
        async with store.write() as db:
            await db.executemany(
                "INSERT INTO recipient_events_next VALUES (?, ?, ?, ?, ?, ?)",
                history.rows[start : start + _WRITE_CHUNK],
            )
    states = list(history.states.values())
    for start in range(0, len(states), _WRITE_CHUNK):
        async with store.write() as db:
            await views.write_states(db, states[start : start + _WRITE_CHUNK], suffix="_next")


async def _swap(store: SQLiteStore, policy: Policy, digest: str, head: int) -> dict[str, Verdict]:
    mapper = Mapper(policy)
    async with store.write() as db:
        for statement in statements(views.SCHEMA):
            await db.execute(statement)
        before = await _live_verdicts(db)
        for table in views.TABLES:
            await db.execute(f"DROP TABLE {table}")
            await db.execute(f"ALTER TABLE {table}_next RENAME TO {table}")
        seq = head
        # The tail: what was appended while the rebuild read. We hold the write lock,
        # so nothing more can arrive until this transaction commits.
        while receipts := await store.read(seq, _READ_CHUNK):
            placed = [item for receipt in receipts for item in mapper.placed(receipt)]
            await views.apply(db, placed, policy)
            seq = receipts[-1].seq
        await views.write_meta(db, seq, digest, policy)
    return before


async def _live_verdicts(db: aiosqlite.Connection) -> dict[str, Verdict]:
    async with db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'suppressions'"
    ) as cur:
        if await cur.fetchone() is None:
            return {}
    async with db.execute("SELECT email, reason FROM suppressions") as cur:
        return {email: Verdict(True, reason) for email, reason in await cur.fetchall()}


def _diff(before: dict[str, Verdict], after: dict[str, Verdict]) -> list[Change]:
    nobody = Verdict(False, None)
    changed = []
    for email in sorted(before.keys() | {e for e, v in after.items() if v.suppressed}):
        old = before.get(email, nobody)
        new = after.get(email, nobody)
        if not new.suppressed:
            new = nobody
        if old != new:
            changed.append(Change(email, old, new))
    return changed
