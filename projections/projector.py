"""The projector: tails the ledger from its checkpoint and keeps the views current.

Each step reads receipts after the checkpoint and derives their facts (pure), plans the
fold on a read snapshot, then in one write transaction re-checks (and, on PostgreSQL,
locks) the checkpoint, writes the plan and advances it — facts, states, checkpoint and
policy hash always move together, and a step that finds the checkpoint moved (another
projector, a rebuild) writes nothing: no receipt is folded twice or skipped, whoever
projects.

A projector either follows the ledger's active policy (the one the projection was last
rebuilt under: a policy change reaches it without a restart) or is pinned to one policy
and refuses (PolicyMismatch) a projection built under another.

With several instances on one database only the holder of the store's projector lease
steps; the others follow the checkpoint, and take the lease over when its holder dies.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable

from ledger import Store, StoreUnavailable
from ledger.sql import Tx
from projections import policy_history, views
from projections.errors import PolicyMismatch
from projections.facts import Keyed, derive
from projections.mapping import Mapper
from projections.policy import DEFAULT_POLICY, Policy, policy_hash

log = logging.getLogger("bounceledger.projector")

_STEP = 1000  # receipts per projector transaction, at most
_HANDED_MAX = 20_000
# Serializes creating the projection's tables between PostgreSQL instances starting at once.
_SCHEMA_LOCK = 0x626C5F7669657773  # "bl_views"


def _reason() -> str:
    """The exception being handled, as one line."""
    exc = sys.exc_info()[1]
    return f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"


async def ensure_schema(tx: Tx) -> None:
    """Create the projection tables (one instance at a time); drop a layout older than the
    fact index (it is all derived data, rebuilt from the ledger)."""
    await tx.lock(_SCHEMA_LOCK)
    columns = await tx.columns("projection_meta")
    if columns and "derivation" not in columns:
        for table in ("projection_meta", "recipient_events", *views.STATE_TABLES):
            await tx.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in views.schema(tx.types):
        await tx.execute(statement)


class Projector:
    """Keeps the projection of one store current, under the ledger's active policy or,
    pinned, under `policy` alone."""

    def __init__(self, store: Store, policy: Policy | None = None) -> None:
        self.store = store
        self.pinned = policy is not None
        self._adopt(policy if policy is not None else DEFAULT_POLICY)
        self.projected_seq = 0
        self.error: str | None = None
        self.leading = True  # whether it steps: until the lease says otherwise
        # Facts the door already derived while checking the body, by receipt seq: the
        # projector takes them instead of parsing the body a second time.
        self._handed: dict[int, list[Keyed]] = {}
        # Hears, after each step this projector commits, the arrival times (µs since the
        # epoch) of the receipts it folded: for the projection-delay metric. Must not raise.
        self.on_step: Callable[[list[int]], None] | None = None
        # Hears of each receipt set aside (its seq, and why): for a metric. Must not raise.
        self.on_set_aside: Callable[[int, str], None] | None = None
        # Whether it folds without the lease because the holder does not (see run).
        self.stalled = False
        self._stalled_since: float | None = None

    def _adopt(self, policy: Policy) -> None:
        self.policy = policy
        self.policy_hash = policy_hash(policy)
        self.mapper = Mapper(policy)

    async def start(self) -> None:
        """Create the tables; a new projection records this projector's policy.

        Raises PolicyMismatch when pinned and the projection was built under another
        policy (or by code whose fold or fact derivation differs).
        """
        async with self.store.writing() as tx:
            await ensure_schema(tx)
            meta = await views.read_meta(tx)
        if meta is None and not self.pinned:
            # a new projection (a migrated or restored ledger): the latest policy the
            # ledger recorded, if it has one — looked up only now, as it reads the ledger
            recorded = await policy_history.latest(self.store)
            if recorded is not None:
                self._adopt(recorded)
        async with self.store.writing() as tx:
            meta = await views.read_meta(tx, lock=True)
            if meta is None:
                await views.write_meta(tx, 0, self.policy_hash, self.policy)
                seq = 0
            else:
                seq = self._check(meta)
        self.projected_seq = seq

    def _check(self, meta: views.Meta | None) -> int:
        if meta is None:
            raise PolicyMismatch("(none)", self.policy_hash)
        if meta.policy_hash != self.policy_hash:
            if self.pinned:
                raise PolicyMismatch(meta.policy_hash, self.policy_hash)
            if policy_hash(meta.policy) != meta.policy_hash:
                # folded by another version of this code (its fold or fact derivation):
                # the same rules, but not this code's state — it needs a rebuild
                raise PolicyMismatch(meta.policy_hash, policy_hash(meta.policy))
            log.info("following the ledger's policy %s", meta.policy_hash[:12])
            self._adopt(meta.policy)
        return meta.seq

    async def step(self, limit: int = _STEP) -> int:
        """Project the next receipts; returns how many receipts were folded.

        A batch that cannot be folded — a value the database refuses, a fold that fails —
        is folded again one receipt at a time, and the receipt at fault is set aside
        (views.set_aside, a log line, `on_set_aside`): one receipt never stops the
        projection. An unreachable database (StoreUnavailable) stops the step instead, to
        be retried: its receipts are not at fault."""
        after = self.projected_seq
        keyed, arrived = await self._next(after, limit)
        if not arrived:
            return 0
        try:
            folded = await self._fold(keyed, after, arrived[-1][0])
        except (PolicyMismatch, StoreUnavailable):
            raise
        except Exception:
            if len(arrived) == 1:
                folded = await self._set_aside(after, arrived[0][0])
            else:
                return await self._one_by_one(keyed, arrived)
        if not folded:
            await self.follow()
            return await self.step(limit)
        self._advance(arrived)
        return len(arrived)

    async def _fold(self, keyed: list[Keyed], after: int, upto: int) -> bool:
        """Plan the facts on a snapshot, then write them and move the checkpoint from
        `after` to `upto`; False (nothing written) when the checkpoint had moved."""
        # Fold on a snapshot; in the write transaction only check nothing moved and write.
        async with self.store.reading() as tx:
            seq = self._check(await views.read_meta(tx))
            planned = await views.plan(tx, keyed, self.mapper) if seq == after else None
        return planned is not None and await self._commit(planned, after, upto)

    async def _one_by_one(self, keyed: list[Keyed], arrived: list[tuple[int, int]]) -> int:
        """Fold a batch receipt by receipt, setting aside each one that cannot be folded."""
        by_seq: dict[int, list[Keyed]] = {seq: [] for seq, _ in arrived}
        for item in keyed:
            by_seq[item.fact.seq].append(item)
        done: list[tuple[int, int]] = []
        for seq, received_at in arrived:
            after = self.projected_seq
            try:
                folded = await self._fold(by_seq[seq], after, seq)
            except (PolicyMismatch, StoreUnavailable):
                raise
            except Exception:
                folded = await self._set_aside(after, seq)
            if not folded:  # another projector or a rebuild moved the checkpoint
                await self.follow()
                break
            self.projected_seq = seq
            done.append((seq, received_at))
        if done:
            self._advance(done)
        return len(done)

    async def _set_aside(self, after: int, seq: int) -> bool:
        """Move the checkpoint past receipt `seq` without folding it, recording why (the
        exception being handled); False when the checkpoint had moved."""
        reason = _reason()
        log.error(
            "receipt %d set aside: it cannot be folded (%s); the projection goes on without it",
            seq,
            reason,
            exc_info=True,
        )
        async with self.store.writing(durable=False) as tx:
            if await views.read_checkpoint(tx, lock=True) != (after, self.policy_hash):
                return False
            await views.set_aside(tx, seq, reason, time.time_ns() // 1000)
            await tx.execute("UPDATE projection_meta SET seq = ? WHERE id = 1", seq)
        if self.on_set_aside is not None:
            self.on_set_aside(seq, reason)
        return True

    def _advance(self, arrived: list[tuple[int, int]]) -> None:
        """The checkpoint moved to the last of `arrived`: hear of it, forget what was handed."""
        self.projected_seq = arrived[-1][0]
        if self.on_step is not None:
            self.on_step([received_at for _, received_at in arrived])
        handed = self._handed
        if handed and next(iter(handed)) <= self.projected_seq:  # left behind by a rebuild
            self._handed = {seq: k for seq, k in handed.items() if seq > self.projected_seq}

    async def _next(self, after: int, limit: int) -> tuple[list[Keyed], list[tuple[int, int]]]:
        """The facts of the next receipts and their (seq, received_at). Facts handed over
        by the door are taken as they are; the bodies are read (and decoded) only when
        some receipt's facts were not handed over — under load, reading every body back
        was a large share of the reader's thread (bench/README.md, "Measured reasons")."""
        arrived = await self.store.arrivals(after, limit)
        handed = self._handed
        if all(seq in handed for seq, _ in arrived):
            return [item for seq, _ in arrived for item in handed.pop(seq)], arrived
        receipts = await self.store.read(after, len(arrived))
        keyed = [
            item
            for receipt in receipts
            for item in (handed.pop(receipt.seq) if receipt.seq in handed else derive(receipt))
        ]
        return keyed, [(receipt.seq, receipt.received_at) for receipt in receipts]

    async def _commit(self, planned: views.Plan, after: int, seq: int) -> bool:
        """Write a planned step if the checkpoint and policy are still where the plan
        started; False (nothing written) when another projector or a rebuild moved them."""
        # Derived data may commit without waiting for the disk (Store.writing) — unless
        # it changes a verdict: a feed entry a client has read is never taken back.
        async with self.store.writing(durable=bool(planned.changes)) as tx:
            if await views.read_checkpoint(tx, lock=True) != (after, self.policy_hash):
                return False
            await views.write_plan(tx, planned)
            await tx.execute("UPDATE projection_meta SET seq = ? WHERE id = 1", seq)
        return True

    async def follow(self) -> None:
        """Take the checkpoint (and, following, the policy) from the stored projection."""
        async with self.store.reading() as tx:
            meta = await views.read_meta(tx)
        self.projected_seq = self._check(meta)
        if not self.leading:
            self._handed.clear()

    def hand_over(self, seq: int, keyed: list[Keyed]) -> None:
        """Offer the facts of receipt `seq`, derived from the bytes just committed (kept
        only while the projector is not far behind: it can always derive them itself)."""
        if self.leading and seq > self.projected_seq and len(self._handed) < _HANDED_MAX:
            self._handed[seq] = keyed

    async def catch_up(self) -> int:
        """Project everything in the ledger now (a graceful shutdown's last step too: the
        checkpoint then stands at the last receipt); returns receipts folded."""
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

    async def run(
        self, idle: float = 0.5, coalesce: float = 0.1, takeover_after: float | None = None
    ) -> None:
        """Tail the ledger until cancelled; wakes on every commit it hears of (this
        instance's, or another's on PostgreSQL), polls every `idle` seconds otherwise.

        Steps while holding the store's projector lease, and follows the checkpoint
        otherwise — but when the checkpoint has not moved for `takeover_after` seconds
        while receipts wait, whoever holds the lease (a dead instance, or any role that
        can connect to the database and took the lock), it steps without it: correctness
        never rested on the lease (a step re-checks the checkpoint under a row lock), so
        nothing acknowledged waits on it. `stalled` says so while it lasts.

        After a wake-up it waits `coalesce` seconds so that one step folds what a burst
        appended, instead of contending with every group commit: a step holds the write
        lock, and frequent small steps queued group commits behind them; fewer, larger
        steps cost less per receipt in all, and the projection still trails the ledger by
        well under a second (bench/README.md, "Measured reasons").
        """
        while True:
            try:
                self.leading = await self.store.leader_lease()
                if self.leading:
                    self._stalled_since, self.stalled = None, False
                    count = await self.step()
                else:
                    count = await self._follow_or_take_over(takeover_after)
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

    async def _follow_or_take_over(self, takeover_after: float | None) -> int:
        """Follow the lease holder's checkpoint; step without the lease once it has not
        moved for `takeover_after` seconds while receipts wait."""
        before = self.projected_seq
        await self.follow()
        waiting = self.projected_seq < await self.store.last_seq()
        now = time.monotonic()
        if not waiting or self.projected_seq != before or takeover_after is None:
            if self.stalled:
                log.warning("the projector lease holder folds again")
            self._stalled_since, self.stalled = None, False
            return 0
        if self._stalled_since is None:
            self._stalled_since = now
        if now - self._stalled_since < takeover_after:
            return 0
        if not self.stalled:
            log.error(
                "the projector lease holder has not folded for %.0f s while receipts wait "
                "(receipt %d): folding without the lease. Another instance stopped, or a "
                "role other than bounceledger's connected to the database and holds the "
                "lock: see the README, Security (database roles)",
                now - self._stalled_since,
                self.projected_seq + 1,
            )
            self.stalled = True
        return await self.step()
