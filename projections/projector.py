"""The projector: tails the ledger from its checkpoint and keeps the views current.

Each step reads receipts after the checkpoint and derives their facts (pure), then in
one write transaction re-checks the checkpoint, indexes and folds the facts and
advances it — facts, states, checkpoint and policy hash always move together.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import aiosqlite

from ledger import SQLiteStore, StoreUnavailable
from projections import views
from projections.errors import PolicyMismatch
from projections.facts import Keyed, derive
from projections.mapping import Mapper
from projections.policy import Policy, policy_hash

log = logging.getLogger("bounceledger.projector")

_STEP = 1000  # receipts per projector transaction, at most
_HANDED_MAX = 20_000


def _commit_step(
    conn: sqlite3.Connection, planned: views.Plan, after: int, seq: int, digest: str
) -> bool:
    """Write a planned step if the checkpoint is still where the plan started (another
    process — a rebuild, a CLI — may have moved it); False when it was not written."""
    row = conn.execute("SELECT seq, policy_hash FROM projection_meta WHERE id = 1").fetchone()
    if row is None or tuple(row) != (after, digest):
        return False
    views.write_plan(conn, planned)
    conn.execute("UPDATE projection_meta SET seq = ? WHERE id = 1", (seq,))
    return True


def statements(script: str) -> list[str]:
    """Split a DDL script (no triggers) into statements: `executescript` would COMMIT."""
    return [part.strip() for part in script.split(";") if part.strip()]


async def ensure_schema(db: aiosqlite.Connection) -> None:
    """Create the projection tables; drop a layout older than this code's (it is all
    derived data, rebuilt from the ledger)."""
    async with db.execute("PRAGMA table_info(projection_meta)") as cur:
        columns = {row[1] for row in await cur.fetchall()}
    if columns and "derivation" not in columns:
        for table in ("projection_meta", "recipient_events", *views.STATE_TABLES):
            await db.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in statements(views.SCHEMA):
        await db.execute(statement)


class Projector:
    """Keeps the projection of one store current under one policy."""

    def __init__(self, store: SQLiteStore, policy: Policy) -> None:
        self.store = store
        self.policy = policy
        self.policy_hash = policy_hash(policy)
        self.mapper = Mapper(policy)
        self.projected_seq = 0
        self.error: str | None = None
        # Facts the door already derived while checking the body, by receipt seq: the
        # projector takes them instead of parsing the body a second time.
        self._handed: dict[int, list[Keyed]] = {}

    async def start(self) -> None:
        """Create the tables; a new database records this policy as its own.

        Raises PolicyMismatch when the projection was built under another policy (or by
        code whose fold or fact derivation differs).
        """
        async with self.store.write() as db:
            await ensure_schema(db)
            meta = await views.read_meta(db)
            if meta is None:
                await views.write_meta(db, 0, self.policy_hash, self.policy)
                seq = 0
            else:
                seq = self._check(meta)
        self.projected_seq = seq

    def _check(self, meta: views.Meta | None) -> int:
        if meta is None:
            raise PolicyMismatch("(none)", self.policy_hash)
        if meta.policy_hash != self.policy_hash:
            raise PolicyMismatch(meta.policy_hash, self.policy_hash)
        return meta.seq

    async def step(self, limit: int = _STEP) -> int:
        """Project the next receipts; returns how many receipts were folded."""
        after = self.projected_seq
        receipts = await self.store.read(after, limit)
        if not receipts:
            return 0
        handed = self._handed
        keyed = [item for r in receipts for item in handed.pop(r.seq, None) or derive(r)]
        # Fold on the reader; hold the write lock only to check nothing moved and write.
        async with self.store.snapshot() as db:
            seq = self._check(await views.read_meta(db))
            planned = await views.plan(db, keyed, self.mapper) if seq == after else None
        moved = planned is None or not await self.store.transact(
            _commit_step, planned, after, receipts[-1].seq, self.policy_hash
        )
        if moved:
            self.projected_seq = seq
            return await self.step(limit)
        self.projected_seq = receipts[-1].seq
        if handed and next(iter(handed)) <= self.projected_seq:  # left behind by a rebuild
            self._handed = {seq: k for seq, k in handed.items() if seq > self.projected_seq}
        return len(receipts)

    def hand_over(self, seq: int, keyed: list[Keyed]) -> None:
        """Offer the facts of receipt `seq`, derived from the bytes just committed (kept
        only while the projector is not far behind: it can always derive them itself)."""
        if seq > self.projected_seq and len(self._handed) < _HANDED_MAX:
            self._handed[seq] = keyed

    async def catch_up(self) -> int:
        """Project everything in the ledger now; returns receipts folded."""
        total = 0
        while (count := await self.step()) > 0:
            total += count
        return total

    async def wait_until(self, seq: int, timeout: float = 5.0) -> bool:
        """Wait (polling) until receipt `seq` is folded; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.projected_seq < seq:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def run(self, idle: float = 0.5, coalesce: float = 0.02) -> None:
        """Tail the ledger until cancelled; wakes on every local commit, polls otherwise.

        After a wake-up it waits `coalesce` seconds so that one step folds what a burst
        appended, instead of contending with every group commit for the write lock.
        """
        while True:
            try:
                count = await self.step()
                self.error = None
            except (PolicyMismatch, StoreUnavailable) as exc:
                if self.error != str(exc):
                    log.error("projector paused: %s", exc)
                self.error = str(exc)
                count = 0
            except Exception as exc:  # never let one failure end the tailing for good
                log.exception("projector step failed; retrying")
                self.error = f"projector step failed: {exc}"
                count = 0
            if count == 0:
                await self.store.wait_for_appends(idle)
            await asyncio.sleep(coalesce if count < _STEP else 0)
