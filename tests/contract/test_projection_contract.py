"""The projection contract: what the views, the projector, rebuild, the policy history and
the quarantine do is the same on every backend (SQLite and PostgreSQL).

Each test runs on both; a backend's class provides the `ledgers` fixture
(tests/contract/backends.py). Two store instances opened on one ledger name stand for
two instances of the service on one database.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ledger import NewReceipt, Store
from ledger import quarantine as kept
from projections import (
    DEFAULT_POLICY,
    Policy,
    PolicyMismatch,
    Projector,
    policy_history,
    queries,
    rebuild,
)
from projections.audit import explain, timeline
from projections.policy import policy_hash
from tests.api.helpers import event
from tests.contract.backends import Ledgers, OnPostgres, OnSQLite

STRICT = Policy(soft_bounce_threshold=1)


def webhook(kind: str, rcpt: str, event_id: str, **fields: str) -> NewReceipt:
    body = json.dumps(event(kind, rcpt, event_id, **fields)).encode()
    return NewReceipt(
        source="smtp2go", received_at=1_780_000_000_000_000, content_type="application/json",
        body=body,
    )  # fmt: skip


HISTORY = [
    webhook("bounce", "hard@example.org", "e1", bounce="hard"),
    webhook("bounce", "soft@example.org", "e2", bounce="soft"),
    webhook("spam", "annoyed@example.org", "e3"),
    webhook("delivered", "fine@example.org", "e4"),
]


async def append_all(store: Store, receipts: list[NewReceipt]) -> list[int]:
    return [(await store.append(receipt)).seq for receipt in receipts]


def change(policy: Policy, note: str = "stricter from today") -> NewReceipt:
    return policy_history.change_receipt(
        policy, "soft_bounce_threshold = 1\n", actor="ops@host", note=note, at=1_780_000_100_000_000
    )


class ProjectionContract:
    """Behaviour of the projection on every backend. Subclasses provide `ledgers`."""

    async def test_the_projector_folds_what_was_appended(self, ledgers: Ledgers) -> None:
        store = await ledgers.open("a")
        projector = Projector(store)
        await projector.start()
        seqs = await append_all(store, HISTORY)
        assert await projector.catch_up() == len(HISTORY)
        assert projector.projected_seq == seqs[-1]
        digest = projector.policy_hash
        hard = await queries.status(store, "Hard@Example.org", digest)
        assert (hard.suppressed, hard.reason, hard.receipt) == (True, "hard_bounce", seqs[0])
        listed = await queries.suppressions(store, digest)
        assert [s.email for s in listed] == ["annoyed@example.org", "hard@example.org"]
        page = await queries.suppressions(store, digest, after="annoyed@example.org", limit=1)
        assert [s.email for s in page] == ["hard@example.org"]
        found = await queries.check(store, digest, ["HARD@example.org", "fine@example.org"])
        assert list(found) == ["HARD@example.org"]
        assert await queries.suppression_counts(store) == {"complaint": 1, "hard_bounce": 1}
        entries = await timeline(store, "soft@example.org", projector.mapper, digest)
        assert [(e.receipt, e.kind) for e in entries] == [(seqs[1], "bounce")]
        why = await explain(store, "annoyed@example.org", projector.mapper, digest)
        assert why.status.reason == "complaint"
        assert [step.event.receipt for step in why.evidence] == [seqs[2]]

    async def test_a_redelivered_event_is_folded_once(self, ledgers: Ledgers) -> None:
        store = await ledgers.open("a")
        projector = Projector(store)
        await projector.start()
        first = webhook("bounce", "soft@example.org", "same-id", bounce="soft")
        # the same event (same id) in another body: a second receipt, one event
        again = webhook("bounce", "soft@example.org", "same-id", bounce="soft", extra="x")
        await append_all(store, [first, again])
        await projector.catch_up()
        state = await queries.status(store, "soft@example.org", projector.policy_hash)
        assert (state.events, state.soft_bounces) == (1, 1)

    async def test_two_instances_projecting_at_once_fold_each_receipt_once(
        self, ledgers: Ledgers
    ) -> None:
        one, two = await ledgers.open("a"), await ledgers.open("a")
        first, second = Projector(one), Projector(two)
        await first.start()
        await second.start()
        soft = [
            webhook("bounce", f"r{n % 7}@example.org", f"s{n}", bounce="soft") for n in range(60)
        ]
        for start in range(0, len(soft), 10):
            await append_all(one if start % 20 else two, soft[start : start + 10])
            await asyncio.gather(first.catch_up(), second.catch_up())
        assert first.projected_seq == second.projected_seq == 60
        reference = await ledgers.open("b")
        alone = Projector(reference)
        await alone.start()
        await append_all(reference, soft)
        await alone.catch_up()
        for n in range(7):
            email = f"r{n}@example.org"
            got = await queries.status(one, email, first.policy_hash)
            want = await queries.status(reference, email, alone.policy_hash)
            assert got == want, email

    async def test_a_step_planned_before_another_instance_committed_writes_nothing(
        self, ledgers: Ledgers
    ) -> None:
        """B plans its step; meanwhile A folds the same receipts and more. B's commit must
        find the checkpoint moved and write nothing — else it would put back states that
        lack A's later events, and move the checkpoint back over them."""
        one, two = await ledgers.open("a"), await ledgers.open("a")
        first = Projector(one)
        soft = [webhook("bounce", "x@example.org", f"s{n}", bounce="soft") for n in range(12)]

        class Overtaken(Projector):
            async def _commit(self, planned: Any, after: int, seq: int) -> bool:
                await append_all(one, soft[10:])
                await first.catch_up()  # A folds receipts 1..12 before B commits 1..10
                return await super()._commit(planned, after, seq)

        second = Overtaken(two)
        await first.start()
        await second.start()
        await append_all(one, soft[:10])
        await second.step()
        assert second.projected_seq == 12  # it followed A's checkpoint instead
        state = await queries.status(one, "x@example.org", first.policy_hash)
        assert (state.events, state.soft_bounces) == (12, 12)

    async def test_a_rebuild_records_the_change_and_every_instance_follows(
        self, ledgers: Ledgers
    ) -> None:
        cli, server = await ledgers.open("a"), await ledgers.open("a")
        serving = Projector(server)  # follows the ledger's active policy
        await serving.start()
        await append_all(server, HISTORY)
        await serving.catch_up()
        assert serving.policy == DEFAULT_POLICY
        soft = await queries.status(server, "soft@example.org", serving.policy_hash)
        assert soft.suppressed is False

        dry = await rebuild(cli, STRICT, dry_run=True)
        assert [c.email for c in dry.changed] == ["soft@example.org"]
        assert await policy_history.history(cli) == []  # a dry run writes nothing

        report = await rebuild(cli, STRICT, record=change(STRICT))
        assert [c.email for c in report.changed] == ["soft@example.org"]
        recorded = await policy_history.history(server)
        assert [(r.change.actor, r.change.note, r.change.policy) for r in recorded] == [
            ("ops@host", "stricter from today", STRICT)
        ]
        assert recorded[0].change.policy_hash == policy_hash(STRICT)
        assert recorded[0].change.toml == "soft_bounce_threshold = 1\n"
        # the running instance still holds the old policy: its queries refuse (503)...
        with pytest.raises(PolicyMismatch):
            await queries.status(server, "soft@example.org", serving.policy_hash)
        # ...until its next step, which adopts the new one
        await serving.catch_up()
        assert serving.policy == STRICT
        soft = await queries.status(server, "soft@example.org", serving.policy_hash)
        assert (soft.suppressed, soft.reason) == (True, "soft_bounce_threshold")
        # a projector pinned to the old policy refuses instead
        with pytest.raises(PolicyMismatch):
            await Projector(cli, DEFAULT_POLICY).start()

    async def test_a_fresh_projection_takes_the_latest_recorded_policy(
        self, ledgers: Ledgers
    ) -> None:
        source = await ledgers.open("a")
        await append_all(source, HISTORY)
        await rebuild(source, STRICT, record=change(STRICT))
        copy = await ledgers.open("b")  # a migration: the same receipts, no projection
        await copy.append_verbatim(await source.read(0, 100))
        projector = Projector(copy)
        await projector.start()
        await projector.catch_up()
        assert projector.policy == STRICT
        soft = await queries.status(copy, "soft@example.org", projector.policy_hash)
        assert soft.reason == "soft_bounce_threshold"

    async def test_a_rebuild_while_another_instance_appends_loses_nothing(
        self, ledgers: Ledgers
    ) -> None:
        cli, server = await ledgers.open("a"), await ledgers.open("a")
        serving = Projector(server)
        await serving.start()
        await append_all(server, HISTORY)
        stop = asyncio.Event()

        async def ingest() -> int:
            n = 0
            while not stop.is_set():
                await server.append(
                    webhook("bounce", f"late{n}@example.org", f"l{n}", bounce="hard")
                )
                await serving.catch_up()
                n += 1
                await asyncio.sleep(0)
            return n

        task = asyncio.create_task(ingest())
        await asyncio.sleep(0.05)
        await rebuild(cli, STRICT, record=change(STRICT))
        stop.set()
        sent = await task
        await serving.catch_up()
        assert serving.projected_seq == await server.last_seq()
        listed = {s.email for s in await queries.suppressions(server, serving.policy_hash)}
        assert {f"late{n}@example.org" for n in range(sent)} <= listed
        assert "soft@example.org" in listed

    async def test_the_quarantine_keeps_counts_and_replays(self, ledgers: Ledgers) -> None:
        store = await ledgers.open("a")
        bad = NewReceipt(
            source="smtp2go", received_at=1, content_type="application/json", body=b"{nope",
            headers={"user-agent": "x"}, peer="192.0.2.1",
        )  # fmt: skip
        first = await kept.keep(store, bad, "not JSON", cap=2)
        assert first is not None
        assert await kept.keep(store, bad, "not JSON", cap=2) == first  # a retry: seen again
        other = NewReceipt(source="smtp2go", received_at=2, content_type="", body=b"{x")
        second = await kept.keep(store, other, "not JSON", cap=2)
        third = NewReceipt(source="smtp2go", received_at=3, content_type="", body=b"{y")
        assert await kept.keep(store, third, "not JSON", cap=2) is None  # full: not kept
        listed = await kept.listing(store)
        assert [(item.id, item.seen, item.size) for item in listed] == [
            (first, 2, 5),
            (second, 1, 2),
        ]
        item = await kept.get(store, first)
        assert item is not None
        assert item.receipt == bad
        await kept.mark_replayed(store, first, 7)
        assert [item.id for item in await kept.listing(store)] == [second]
        replayed = await kept.listing(store, include_replayed=True, limit=1)
        assert [(item.id, item.replayed_seq) for item in replayed] == [(first, 7)]


class TestSQLiteProjection(OnSQLite, ProjectionContract):
    """The projection contract on SQLite."""


@pytest.mark.postgres
class TestPostgresProjection(OnPostgres, ProjectionContract):
    async def test_one_instance_holds_the_leader_lease_until_it_closes(
        self, ledgers: Ledgers
    ) -> None:
        one, two = await ledgers.open("a"), await ledgers.open("a")
        assert await one.leader_lease() is True
        assert await two.leader_lease() is False
        assert await one.leader_lease() is True  # held, not taken twice
        other_ledger = await ledgers.open("b")  # another schema: a lease of its own
        assert await other_ledger.leader_lease() is True
        await ledgers.close(one)
        assert await two.leader_lease() is True
