"""The change feed as a property, on both backends: for any history of deliveries
(SMTP2GO events, operator suppressions and releases, multi-recipient Resend bounces),
rebuilds under random policies and erasures, in any interleaving,

- a mirror that reads the feed as it grows and applies each entry's `after` ends equal to
  the projection's suppression list;
- so does a mirror that reads the whole feed once at the end, and one that reads it again
  from an earlier cursor (entries carry full state: duplicates change nothing);
- a rebuild's entries, between its markers, are exactly the addresses its dry run lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import Store
from ledger.sqlite import SQLiteStore
from projections import Policy, Projector, feed, rebuild
from projections.erasing import erase
from projections.erasure_keys import ErasureKey
from tests import pg
from tests.conftest import BACKENDS
from tests.properties.histories import ADDRESSES, POLICIES, Delivery, histories, resend_histories
from tests.properties.test_invariants import DB, scratch

KEY = ErasureKey(b"property-test-erasure-key-32-bytes!!")
Listed = dict[str, tuple[str, tuple[str, ...]]]


@dataclass(frozen=True)
class Rebuild:
    policy: Policy


@dataclass(frozen=True)
class Erase:
    address: str


Step = Delivery | Rebuild | Erase


@st.composite
def interleaved(draw: st.DrawFn) -> list[Step]:
    """Deliveries in ledger order, with rebuilds and erasures among them."""
    steps: list[Step] = [*draw(histories(collisions=False)), *draw(resend_histories())]
    extra = draw(
        st.lists(
            st.one_of(st.builds(Rebuild, POLICIES), st.builds(Erase, st.sampled_from(ADDRESSES))),
            max_size=4,
        )
    )
    for step in extra:
        steps.insert(draw(st.integers(0, len(steps))), step)
    return steps


class Mirror:
    """A downstream copy of the list kept by applying the feed (the README's consumer)."""

    def __init__(self) -> None:
        self.listed: Listed = {}
        self.keys: dict[str, str] = {}  # entry id -> the key it was applied to
        self.cursor: str | None = "0"

    def apply(self, entries: list[feed.Entry]) -> None:
        for entry in entries:
            self.cursor = entry.cursor
            if not isinstance(entry, feed.Changed):
                continue
            for erased in entry.erases:  # delete the copy an erased address left here
                if (key := self.keys.get(erased)) is not None:
                    self.listed.pop(key, None)
            key = entry.email or entry.subject
            assert key is not None
            self.keys[entry.id] = key
            if entry.after.suppressed:
                self.listed[key] = (entry.after.reason or "", entry.after.reasons)
            else:
                self.listed.pop(key, None)

    async def catch_up(self, store: Store) -> None:
        while entries := await read(store, self.cursor):
            self.apply(entries)


async def read(store: Store, cursor: str | None) -> list[feed.Entry]:
    async with store.reading() as tx:
        at = await feed.position(tx)
        return await feed.read(tx, feed.parse_cursor(cursor, at), 7, at)


async def projected(store: Store) -> Listed:
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT email, reason, reasons FROM suppressions")
    return {str(e): (str(r), tuple(str(rs).split(","))) for e, r, rs in rows}


async def rebuild_entries(store: Store, after: int) -> list[feed.Entry]:
    async with store.reading() as tx:
        at = await feed.position(tx)
        found: list[feed.Entry] = []
        while batch := await feed.read(tx, after, 1000, at):
            found += batch
            after = feed.number(batch[-1])
        return found


async def run(steps: list[Step], store: Store) -> None:
    live, early = Mirror(), Mirror()
    projector = Projector(store)
    await projector.start()
    for n, step in enumerate(steps):
        if isinstance(step, Delivery):
            await store.append(step.new_receipt())
        elif isinstance(step, Rebuild):
            await projector.catch_up()
            async with store.reading() as tx:
                head = (await feed.position(tx)).head
            planned = await rebuild(store, step.policy, dry_run=True)
            await rebuild(store, step.policy)
            await projector.follow()
            written = await rebuild_entries(store, head)
            markers = [e for e in written if not isinstance(e, feed.Changed)]
            assert [type(m) for m in markers] == [feed.RebuildStarted, feed.RebuildCompleted]
            changed = [e for e in written if isinstance(e, feed.Changed)]
            assert [e.cause for e in changed] == ["rebuild"] * len(changed)
            assert sorted(e.email or e.subject or "" for e in changed) == [
                c.email for c in planned.changed
            ]
            assert markers[1].changed == len(changed)  # type: ignore[union-attr]
        else:
            await projector.catch_up()
            await erase(store, KEY, step.address, actor="property", note="erase", at=1)
            await projector.follow()
        if n % 3 == 0:
            await projector.catch_up()
            await live.catch_up(store)
        if n == len(steps) // 2:
            early.cursor = live.cursor
    await projector.catch_up()
    await live.catch_up(store)
    whole = Mirror()
    await whole.catch_up(store)
    await early.catch_up(store)  # read again from an earlier cursor: duplicates
    expected = await projected(store)
    assert live.listed == expected
    assert whole.listed == expected
    again = Mirror()
    again.listed = dict(whole.listed)
    again.cursor = early.cursor
    await again.catch_up(store)
    assert again.listed == expected


@contextlib.asynccontextmanager
async def opened(backend: str, database: Callable[[], str]) -> AsyncIterator[Store]:
    if backend == "sqlite":
        with scratch() as directory:
            lite: Store = await SQLiteStore.open(Path(directory) / "ledger.db")
            try:
                yield lite
            finally:
                await lite.close()
        return
    from ledger.postgres import PostgresStore

    url, schema = database(), f"t_{secrets.token_hex(6)}"
    await pg.execute(url, f"CREATE SCHEMA {schema}")
    store = await PostgresStore.open(pg.with_search_path(url, schema))
    try:
        yield store
    finally:
        await store.close()
        await pg.execute(url, f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module", params=BACKENDS)
def feed_backend(request: pytest.FixtureRequest) -> tuple[str, Callable[[], str]]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        return "postgresql", lambda: url
    return "sqlite", lambda: ""


@DB
@given(steps=interleaved())
def test_applying_the_feed_gives_the_list(
    feed_backend: tuple[str, Callable[[], str]], steps: list[Step]
) -> None:
    backend, database = feed_backend

    async def example() -> None:
        async with opened(backend, database) as store:
            await run(steps, store)

    asyncio.run(example())
