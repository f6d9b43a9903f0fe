"""The five invariants of design.md, as property tests over random SMTP2GO histories.

1. Deterministic — 2. Incremental equals rebuild — 3. Order-independent —
4. Idempotent — 5. Versioned. Database-backed properties run each example on a fresh
SQLite ledger in its own temporary directory (sync tests driving `asyncio.run`).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger import NewReceipt, Receipt
from ledger.sqlite import SQLiteStore
from projections import (
    Policy,
    PolicyMismatch,
    Projector,
    operator,
    policy_hash,
    queries,
    rebuild,
)
from projections.state import encode_state
from tests.conftest import examples
from tests.properties.histories import (
    ADDRESSES,
    POLICIES,
    Delivery,
    deliveries_of,
    histories,
    logical_events,
    project,
    receipts,
    redeliveries,
    resend_histories,
    verdict,
)

DB = settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PURE = settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

Dump = dict[str, list[tuple[Any, ...]]]

# A memory-backed filesystem where there is one: the ledger syncs at every commit, and
# these properties test what is stored, not how durably.
# (mkdtemp makes a private, randomly named directory in it, so sharing it is safe)
_SHM = "/dev/shm"  # noqa: S108
_SCRATCH = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A fresh directory for one example's databases."""
    return tempfile.TemporaryDirectory(prefix="bounceledger-", dir=_SCRATCH)


_DUMP_QUERIES = {
    "meta": "SELECT seq, policy_hash, policy, derivation FROM projection_meta",
    "facts": (
        "SELECT email, at, seq, ord, key, fact FROM recipient_facts ORDER BY email, at, seq, ord"
    ),
    "echoes": "SELECT email, seq FROM recipient_echoes ORDER BY email, seq",
    "state": "SELECT email, state FROM recipient_state ORDER BY email",
    "suppressions": "SELECT email, reason, since, seq FROM suppressions ORDER BY email",
}


async def dump(store: SQLiteStore) -> Dump:
    """The projection's tables, canonically ordered, byte for byte."""
    out: Dump = {}
    async with store.reading() as tx:
        for name, sql in _DUMP_QUERIES.items():
            out[name] = [tuple(row) for row in await tx.fetch(sql)]
    return out


async def open_store(directory: str, name: str = "ledger.db") -> SQLiteStore:
    return await SQLiteStore.open(Path(directory) / name)


async def append_all(store: SQLiteStore, deliveries: list[Delivery]) -> None:
    for delivery in deliveries:
        await store.append(delivery.new_receipt())


async def ledger(store: SQLiteStore) -> list[Receipt]:
    return await store.read(0, 1_000_000)


async def projected(deliveries: list[Delivery], policy: Policy) -> tuple[Dump, list[Receipt]]:
    """Append everything to a fresh ledger and let one projector catch up."""
    with scratch() as directory:
        store = await open_store(directory)
        try:
            await append_all(store, deliveries)
            projector = Projector(store, policy)
            await projector.start()
            await projector.catch_up()
            return await dump(store), await ledger(store)
        finally:
            await store.close()


def encoded(states: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(email, encode_state(state)) for email, state in sorted(states.items())]


# -- 1. Deterministic -----------------------------------------------------------------------


@PURE
@given(history=histories(), policy=POLICIES)
def test_the_same_receipts_and_policy_give_byte_identical_states(
    history: list[Delivery], policy: Policy
) -> None:
    ledger_ = receipts(history)
    first = encoded(project(ledger_, policy))
    with mock.patch("time.time", return_value=4_102_444_800.0):  # the year 2100
        again = encoded(project(receipts(history), Policy(**_fields(policy))))
    assert first == again


def _fields(policy: Policy) -> dict[str, Any]:
    """An equal but distinct Policy object: nothing may hang on object identity."""
    return {name: getattr(policy, name) for name in policy.__struct_fields__}


@DB
@given(history=histories(), policy=POLICIES)
def test_two_ledgers_with_the_same_receipts_project_byte_identically_whatever_the_clock(
    history: list[Delivery], policy: Policy
) -> None:
    first, ledger_ = asyncio.run(projected(history, policy))
    far_future = 4_102_444_800.0
    with (
        mock.patch("time.time", return_value=far_future),
        mock.patch("time.time_ns", return_value=int(far_future * 1e9)),
    ):
        second, _ = asyncio.run(projected(history, policy))
    assert first == second
    # and the stored states are exactly the reference fold of the same ledger
    assert first["state"] == encoded(project(ledger_, policy))
    assert [row[0] for row in first["suppressions"]] == sorted(
        email for email, state in project(ledger_, policy).items() if state.suppressed
    )


# -- 2. Incremental equals rebuild -------------------------------------------------------------


@st.composite
def schedules(draw: st.DrawFn, length: int) -> dict[str, Any]:
    """When the projector steps (and with which batch limit), restarts, or a rebuild runs;
    and the page size of the rebuild's reads and writes."""
    return {
        "steps": [draw(st.lists(st.integers(1, 4), max_size=2)) for _ in range(length)],
        "restart_at": draw(st.none() | st.integers(0, length - 1)),
        "rebuild_at": draw(st.none() | st.integers(0, length - 1)),
        "final_limit": draw(st.integers(1, 5)),
        "chunk": draw(st.integers(1, 6)),
    }


@st.composite
def histories_with_schedules(draw: st.DrawFn) -> tuple[list[Delivery], dict[str, Any]]:
    history = draw(histories())
    return history, draw(schedules(len(history)))


async def incremental_then_rebuilt(
    history: list[Delivery], policy: Policy, schedule: dict[str, Any]
) -> tuple[Dump, Dump, Dump, list[Receipt]]:
    with scratch() as directory:
        store = await open_store(directory)
        try:
            projector = Projector(store, policy)
            await projector.start()
            for index, delivery in enumerate(history):
                await store.append(delivery.new_receipt())
                for limit in schedule["steps"][index]:
                    await projector.step(limit)
                if index == schedule["restart_at"]:  # stopped; a new process starts
                    projector = Projector(store, policy)
                    await projector.start()
                if index == schedule["rebuild_at"]:  # a rebuild runs beside the projector
                    await rebuild(store, policy)
            while await projector.step(schedule["final_limit"]) > 0:
                pass
            live = await dump(store)
            await rebuild(store, policy)
            rebuilt = await dump(store)
            ledger_ = await ledger(store)
        finally:
            await store.close()
        # the same ledger, never projected, rebuilt from scratch
        fresh_store = await open_store(directory, "fresh.db")
        try:
            await append_all(fresh_store, history)
            await rebuild(fresh_store, policy)
            fresh = await dump(fresh_store)
        finally:
            await fresh_store.close()
    return live, rebuilt, fresh, ledger_


@DB
@given(case=histories_with_schedules(), policy=POLICIES)
def test_incremental_projection_equals_a_rebuild_wherever_the_projector_stopped(
    case: tuple[list[Delivery], dict[str, Any]], policy: Policy
) -> None:
    history, schedule = case
    # Small read/write chunks, so the rebuild's paging (by receipt, by recipient) is crossed.
    with (
        mock.patch("projections.rebuild._READ_CHUNK", schedule["chunk"]),
        mock.patch("projections.rebuild._FACT_CHUNK", schedule["chunk"]),
        mock.patch("projections.rebuild._STATE_CHUNK", schedule["chunk"]),
    ):
        live, rebuilt, fresh, ledger_ = asyncio.run(
            incremental_then_rebuilt(history, policy, schedule)
        )
    assert live == rebuilt
    assert live == fresh
    assert live["meta"][0][0] == len(ledger_)  # the checkpoint is the last receipt
    assert live["state"] == encoded(project(ledger_, policy))


@settings(DB, max_examples=examples(150))
@given(
    history=resend_histories(),
    policy=POLICIES,
    limits=st.lists(st.integers(0, 3), min_size=10, max_size=10),
)
def test_shared_recipients_project_incrementally_as_a_rebuild_does(
    history: list[Delivery], policy: Policy, limits: list[int]
) -> None:
    """Issue 18, N3 and N7: events naming several recipients (Resend) — a shared bounce
    weighed against the deliveries of its message, arriving before or after it — fold
    to the same state step by step as in a rebuild, and as the reference reads them."""

    async def run() -> tuple[Dump, Dump, list[Receipt]]:
        with scratch() as directory:
            store = await open_store(directory)
            try:
                projector = Projector(store, policy)
                await projector.start()
                for delivery, limit in zip(history, limits, strict=False):
                    await store.append(delivery.new_receipt())
                    if limit:
                        await projector.step(limit)
                await projector.catch_up()
                live = await dump(store)
                await rebuild(store, policy)
                return live, await dump(store), await ledger(store)
            finally:
                await store.close()

    live, rebuilt, ledger_ = asyncio.run(run())
    assert live == rebuilt
    assert live["state"] == encoded(project(ledger_, policy))


# -- 3. Order-independent -----------------------------------------------------------------------
#
# The claim: when no two distinct events of a recipient share an event time, its state
# depends only on the set of its events, not on the order in which their receipts arrived.
# Exactly: every field of the state except the ledger coordinates it records (each cause's
# seq and the last event's (seq, ord)) is equal — suppressed, reason, since, the causes with
# their event times, the soft bounces that count, the event count and the last event time.
# Ties in event time are broken by ledger sequence by design, so with ties the claim would
# not hold; redeliveries carry the very same event, so a copy winning over its original
# changes nothing but the seq. Events without a readable time take the receipt's time,
# which is arrival-dependent by nature, so the histories here all carry readable times.


@st.composite
def shuffled_histories(draw: st.DrawFn) -> tuple[list[Delivery], list[Delivery]]:
    """A history and the same deliveries in another arrival order. An operator action
    stays where it was, with the same receipts before it: a release lifts what the
    ledger held when it was made, so the order of the webhooks *around* an operator
    action is part of what it means; between two actions, any order."""
    history = draw(histories(distinct_times=True, timed=True, collisions=False))
    shuffled: list[Delivery] = []
    segment: list[Delivery] = []
    for delivery in history:
        if delivery.source == operator.SOURCE:
            shuffled += [*draw(st.permutations(segment)), delivery]
            segment = []
        else:
            segment.append(delivery)
    shuffled += draw(st.permutations(segment))
    return history, shuffled


@PURE
@given(case=shuffled_histories(), policy=POLICIES)
def test_a_recipients_verdict_does_not_depend_on_arrival_order(
    case: tuple[list[Delivery], list[Delivery]], policy: Policy
) -> None:
    history, shuffled = case
    one = project(receipts(history), policy)
    other = project(receipts(shuffled), policy)
    assert {e: verdict(s) for e, s in one.items()} == {e: verdict(s) for e, s in other.items()}


@DB
@given(case=shuffled_histories(), policy=POLICIES, limit=st.integers(1, 3))
def test_a_projected_verdict_does_not_depend_on_arrival_order(
    case: tuple[list[Delivery], list[Delivery]], policy: Policy, limit: int
) -> None:
    history, shuffled = case

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        with scratch() as directory:
            verdicts = []
            for name, order in (("a.db", history), ("b.db", shuffled)):
                store = await open_store(directory, name)
                try:
                    projector = Projector(store, policy)
                    await projector.start()
                    for delivery in order:  # projected as it arrives: late events refold
                        await store.append(delivery.new_receipt())
                        await projector.step(limit)
                    await projector.catch_up()
                    verdicts.append(
                        {
                            email: _status_verdict(
                                await queries.status(store, email, projector.policy_hash)
                            )
                            for email in ADDRESSES
                        }
                    )
                finally:
                    await store.close()
            return verdicts[0], verdicts[1]

    first, second = asyncio.run(run())
    assert first == second


def _status_verdict(status: queries.Status) -> tuple[Any, ...]:
    return (
        status.suppressed,
        status.reason,
        status.since,
        status.soft_bounces,
        status.events,
        status.last_event_at,
    )


# -- 4. Idempotent --------------------------------------------------------------------------------


@st.composite
def histories_with_redeliveries(
    draw: st.DrawFn,
) -> tuple[list[Delivery], list[Delivery], list[Delivery]]:
    """(history, the same history with redeliveries appended after it, and with the
    redeliveries interleaved anywhere after the event they repeat)."""
    events = draw(logical_events())
    firsts = [draw(deliveries_of(event)) for event in events]
    copies = draw(redeliveries(events, firsts))
    appended = [*firsts, *(copy for _, copy in copies)]
    interleaved = list(firsts)
    for index, copy in copies:
        position = draw(st.integers(interleaved.index(firsts[index]) + 1, len(interleaved)))
        interleaved.insert(position, copy)
    return firsts, appended, interleaved


@PURE
@given(case=histories_with_redeliveries(), policy=POLICIES)
def test_redelivered_events_change_nothing(
    case: tuple[list[Delivery], list[Delivery], list[Delivery]], policy: Policy
) -> None:
    history, appended, interleaved = case
    once = project(receipts(history), policy)
    # appended after the history: byte-identical states
    assert encoded(project(receipts(appended), policy)) == encoded(once)
    # interleaved: later receipts move in the ledger, but nothing else changes
    assert {e: verdict(s) for e, s in project(receipts(interleaved), policy).items()} == {
        e: verdict(s) for e, s in once.items()
    }


@DB
@given(case=histories_with_redeliveries(), policy=POLICIES)
def test_projected_redeliveries_change_nothing(
    case: tuple[list[Delivery], list[Delivery], list[Delivery]], policy: Policy
) -> None:
    history, appended, _ = case
    redelivered = appended[len(history) :]

    async def run() -> tuple[Dump, Dump, Dump]:
        with scratch() as directory:
            store = await open_store(directory)
            try:
                projector = Projector(store, policy)
                await projector.start()
                await append_all(store, history)
                await projector.catch_up()
                before = await dump(store)
                await append_all(store, redelivered)
                await projector.catch_up()
                after = await dump(store)
                await rebuild(store, policy)
                return before, after, await dump(store)
            finally:
                await store.close()

    before, after, rebuilt = asyncio.run(run())
    for table in ("facts", "state", "suppressions"):
        assert after[table] == before[table], table
    assert after == rebuilt


# -- 5. Versioned ---------------------------------------------------------------------------------


@st.composite
def two_policies(draw: st.DrawFn) -> tuple[Policy, Policy]:
    first, second = draw(POLICIES), draw(POLICIES)
    assume(policy_hash(first) != policy_hash(second))
    return first, second


@DB
@given(history=histories(), policies=two_policies(), email=st.sampled_from(ADDRESSES))
def test_a_projection_is_never_served_under_another_policy(
    history: list[Delivery], policies: tuple[Policy, Policy], email: str
) -> None:
    built_under, configured = policies
    old, new = policy_hash(built_under), policy_hash(configured)

    async def run() -> None:
        with scratch() as directory:
            store = await open_store(directory)
            try:
                running = Projector(store, built_under)
                await running.start()
                await append_all(store, history)
                await running.catch_up()
                assert (await queries.status(store, email, old)).email == email

                with pytest.raises(PolicyMismatch):
                    await Projector(store, configured).start()
                with pytest.raises(PolicyMismatch):
                    await queries.status(store, email, new)
                with pytest.raises(PolicyMismatch):
                    await queries.suppressions(store, new)
                with pytest.raises(PolicyMismatch):
                    await queries.check(store, new, [email])

                await rebuild(store, configured)
                expected = project(await ledger(store), configured)
                got = await queries.status(store, email, new)
                assert got.suppressed == (email in expected and expected[email].suppressed)
                listed = [s.email for s in await queries.suppressions(store, new)]
                assert listed == sorted(e for e, s in expected.items() if s.suppressed)

                # now the old policy is the stranger
                with pytest.raises(PolicyMismatch):
                    await queries.status(store, email, old)
                with pytest.raises(PolicyMismatch):
                    await Projector(store, built_under).start()
                await store.append(
                    NewReceipt(
                        source="smtp2go",
                        received_at=0,
                        content_type="",
                        body=b"event=open&rcpt=late%40example.com",
                    )
                )
                with pytest.raises(PolicyMismatch):
                    await running.step()  # the projector still running the old policy stops
                follower = Projector(store, configured)
                await follower.start()
                assert await follower.catch_up() == 1
            finally:
                await store.close()

    asyncio.run(run())


@PURE
@given(first=POLICIES, second=POLICIES)
def test_the_policy_hash_tells_policies_apart_and_equal_policies_alike(
    first: Policy, second: Policy
) -> None:
    assert (policy_hash(first) == policy_hash(second)) == (first == second)
