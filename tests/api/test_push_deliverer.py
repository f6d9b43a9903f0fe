"""The deliverer against the store, on both backends: two deliverers on one database
never push the same entry at once (their claims), a dead one's claim lapses and another
carries on, a delivery abandoned by a stop is sent again, entries pruned before they
were delivered leave the endpoint failing until it is resumed from a new place."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from api.push import endpoints
from api.push.deliverer import Deliverer
from api.push.endpoints import Endpoint
from api.push.signing import EndpointKey
from ledger import Store, open_store
from projections import Projector, feed, operator
from tests.api.test_push import ids, numbered
from tests.receiver import Receiver, receiving

pytestmark = pytest.mark.both_backends

KEY = EndpointKey(b"endpoint-key-for-the-deliverer-tests-0123")


def _now() -> int:
    return time.time_ns() // 1000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiving()


@contextlib.asynccontextmanager
async def ledger(db: Path | str) -> AsyncIterator[tuple[Store, Projector]]:
    """A store with its projection started and the endpoints' table."""
    store = await open_store(db)
    try:
        projector = Projector(store)
        await projector.start()
        await endpoints.ensure(store)
        yield store, projector
    finally:
        await store.close()


async def suppress(store: Store, projector: Projector, *emails: str) -> None:
    """An operator suppression of each address (one feed entry each), folded."""
    for email in emails:
        await operator.record(store, "suppress", email, actor="test", note="test", at=_now())
    await projector.catch_up()


async def add(store: Store, url: str, start: str | None = "0") -> str:
    created = await endpoints.add(
        store, KEY, url, description="", actor="test", start=start, now=_now()
    )
    return created.id


@contextlib.asynccontextmanager
async def delivering(deliverer: Deliverer) -> AsyncIterator[Deliverer]:
    deliverer.start()
    try:
        yield deliverer
    finally:
        await deliverer.stop()


async def delivered(store: Store, eid: str, number: int, timeout: float = 5.0) -> Endpoint:
    """The endpoint, once it records entry `number` delivered."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (shown := await endpoints.get(store, eid)).delivered < number:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"entry {number} not recorded delivered: {shown}")
        await asyncio.sleep(0.02)
    return shown


async def test_two_deliverers_never_push_the_same_entry_at_once(
    db_path: Path, receiver: Receiver
) -> None:
    receiver.delay = lambda path, mid, n: 0.02
    emails = [f"user{n}@example.org" for n in range(8)]
    paths = [f"/{n}" for n in range(3)]
    async with ledger(db_path) as (store, projector):
        for path in paths:
            await add(store, receiver.url + path)
        await suppress(store, projector, *emails[:4])
        other = await open_store(db_path)  # a second instance on the same database
        try:
            one = Deliverer(store, KEY, poll=0.01, instance="one")
            two = Deliverer(other, KEY, poll=0.01, instance="two")
            async with delivering(one), delivering(two):
                await suppress(store, projector, *emails[4:])
                await receiver.wait(
                    lambda: all(len(receiver.accepted(path)) >= 8 for path in paths)
                )
                # taken while both deliver: stopping one abandons what it has in flight,
                # which the other may then send again (at least once), overlapping the
                # receiver's answer to the abandoned request
                overlaps = list(receiver.overlaps)
                accepted = {path: ids(receiver.accepted(path)) for path in paths}
        finally:
            await other.close()
    assert overlaps == []
    for path in paths:  # each entry once, in order: no instance pushed what another did
        assert accepted[path] == numbered(0, 8), path


async def test_the_claim_of_a_deliverer_that_died_lapses(db_path: Path, receiver: Receiver) -> None:
    async with ledger(db_path) as (store, projector):
        eid = await add(store, receiver.url)
        await suppress(store, projector, "a@example.org", "b@example.org")
        held = await endpoints.claim(store, eid, "died", _now(), lease=1_000_000)
        assert held is not None
        assert held.delivered == 0
        async with delivering(Deliverer(store, KEY, poll=0.02)):
            await asyncio.sleep(0.4)
            assert receiver.all() == []  # held by the instance that died
            await receiver.wait(lambda: len(receiver.accepted()) == 2, timeout=5)
            # the receiver answers before the deliverer records it: wait for the record,
            # or stopping now abandons the last delivery (to be sent again: at least once)
            shown = await delivered(store, eid, 2)
    assert ids(receiver.accepted()) == numbered(0, 2)
    assert (shown.delivered, shown.lag) == (2, 0)


async def test_a_delivery_a_stop_abandons_is_sent_again(db_path: Path, receiver: Receiver) -> None:
    receiver.delay = lambda path, mid, n: 1.0 if mid == "chg_3" and n == 2 else 0.0
    async with ledger(db_path) as (store, projector):
        eid = await add(store, receiver.url)
        await suppress(store, projector, *(f"u{n}@example.org" for n in range(4)))
        first = Deliverer(store, KEY, poll=0.02)
        first.start()
        await receiver.wait(lambda: "chg_3" in ids(receiver.all()))
        started = time.monotonic()
        await first.stop()  # while the third entry waits for its answer
        assert time.monotonic() - started < 0.5
        assert (await endpoints.get(store, eid)).delivered == 2
        async with delivering(Deliverer(store, KEY, poll=0.02)):
            await receiver.wait(lambda: len(receiver.all()) == 5)
        shown = await endpoints.get(store, eid)
    # at least once: the abandoned one again, then the rest, in order
    assert ids(receiver.all()) == ["chg_1", "chg_2", "chg_3", "chg_3", "chg_4"]
    assert (shown.delivered, shown.state) == (4, "active")


async def test_entries_pruned_before_delivery_leave_the_endpoint_failing(
    db_path: Path, receiver: Receiver
) -> None:
    async with ledger(db_path) as (store, projector):
        eid = await add(store, receiver.url)
        await suppress(store, projector, "a@example.org", "b@example.org")
        async with store.writing() as tx:
            assert await feed.prune(tx, _now() + 1_000_000) == 2
        deliverer = Deliverer(store, KEY, poll=0.02)
        await deliverer.push(eid)
        stranded = await endpoints.get(store, eid)
        assert stranded.state == "failing"
        assert "no longer kept" in (stranded.last_error or "")
        assert receiver.all() == []
        resumed = await endpoints.resume(store, eid, start="now", now=_now())
        assert (resumed.state, resumed.delivered, resumed.attempts) == ("active", 2, 0)
        await suppress(store, projector, "c@example.org")
        await deliverer.push(eid)
        await deliverer.stop()
    assert ids(receiver.accepted()) == ["chg_3"]
