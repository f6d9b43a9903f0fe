"""The store contract: every ledger backend passes this suite (SQLite now, PostgreSQL later).

A backend's test module subclasses StoreContract and provides the `make_store` fixture:
an async factory returning a fresh, empty, opened store (closed by the fixture).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ledger import AppendResult, NewReceipt, Receipt, SQLiteStore, Store
from ledger.chain import body_digest

MakeStore = Callable[[], Awaitable[Store]]

_counter = itertools.count(1)


def receipt(body: bytes | None = None, *, source: str = "smtp2go") -> NewReceipt:
    """A receipt with a unique body unless one is given."""
    n = next(_counter)
    return NewReceipt(
        source=source,
        received_at=1_780_000_000_000_000 + n,
        content_type="application/json",
        body=body if body is not None else b'{"event":"delivered","id":"%d"}' % n,
        headers={"user-agent": "contract-test"},
        peer="127.0.0.1",
    )


class StoreContract:
    """Behaviour every Store must have. Subclasses provide `make_store`."""

    async def test_empty_store(self, make_store: MakeStore) -> None:
        store = await make_store()
        assert await store.last_seq() == 0
        assert await store.read() == []
        assert await store.get(1) is None
        assert await store.verify() == (0, None)

    async def test_append_returns_increasing_gap_free_seqs(self, make_store: MakeStore) -> None:
        store = await make_store()
        seqs = []
        for _ in range(5):
            result = await store.append(receipt())
            assert result.duplicate is False
            seqs.append(result.seq)
        assert seqs == [1, 2, 3, 4, 5]
        assert await store.last_seq() == 5

    async def test_get_returns_the_receipt_as_appended(self, make_store: MakeStore) -> None:
        store = await make_store()
        new = receipt()
        result = await store.append(new)
        got = await store.get(result.seq)
        assert isinstance(got, Receipt)
        assert got.seq == result.seq
        assert got.source == new.source
        assert got.received_at == new.received_at
        assert got.content_type == new.content_type
        assert got.body == new.body
        assert got.headers == new.headers
        assert got.peer == new.peer
        assert got.body_sha256 == body_digest(new.body)
        assert len(got.chain_hash) == 32
        assert await store.get(result.seq + 1) is None

    async def test_read_after_and_limit(self, make_store: MakeStore) -> None:
        store = await make_store()
        bodies = [receipt() for _ in range(7)]
        for new in bodies:
            await store.append(new)
        everything = await store.read()
        assert [r.seq for r in everything] == list(range(1, 8))
        assert [r.body for r in everything] == [new.body for new in bodies]
        assert [r.seq for r in await store.read(after_seq=3)] == [4, 5, 6, 7]
        assert [r.seq for r in await store.read(after_seq=2, limit=3)] == [3, 4, 5]
        assert [r.seq for r in await store.read(after_seq=6, limit=10)] == [7]
        assert await store.read(after_seq=7) == []

    async def test_chain_links_each_record_to_the_previous(self, make_store: MakeStore) -> None:
        store = await make_store()
        for _ in range(3):
            await store.append(receipt())
        hashes = [r.chain_hash for r in await store.read()]
        assert len(set(hashes)) == 3

    async def test_byte_identical_redelivery_is_not_appended(self, make_store: MakeStore) -> None:
        store = await make_store()
        body = b"event=bounce&bounce=hard&rcpt=a%40example.org"
        first = await store.append(receipt(body))
        await store.append(receipt())
        again = await store.append(receipt(body))
        assert first.duplicate is False
        assert again.seq == first.seq
        assert again.duplicate is True
        assert await store.last_seq() == 2
        assert [r.body for r in await store.read()].count(body) == 1

    async def test_redelivery_within_one_batch_is_not_appended(self, make_store: MakeStore) -> None:
        store = await make_store()
        body = b'{"event":"spam","id":"same"}'
        results = await asyncio.gather(*(store.append(receipt(body)) for _ in range(5)))
        assert {r.seq for r in results} == {1}
        assert sorted(r.duplicate for r in results) == [False, True, True, True, True]
        assert await store.last_seq() == 1

    async def test_same_bytes_from_another_source_are_appended(self, make_store: MakeStore) -> None:
        store = await make_store()
        body = b'{"event":"bounce","id":"shared"}'
        first = await store.append(receipt(body, source="smtp2go"))
        other = await store.append(receipt(body, source="operator"))
        assert other.duplicate is False
        assert other.seq == first.seq + 1
        got = await store.get(other.seq)
        assert got is not None
        assert got.source == "operator"
        assert got.body == body

    async def test_verify_intact_chain(self, make_store: MakeStore) -> None:
        store = await make_store()
        for _ in range(12):
            await store.append(receipt())
        assert await store.verify() == (12, None)
        assert await store.verify(chunk=5) == (12, None)

    async def test_concurrent_appends_get_distinct_seqs(self, make_store: MakeStore) -> None:
        store = await make_store()
        bodies = [receipt() for _ in range(200)]
        results = await asyncio.gather(*(store.append(new) for new in bodies))
        seqs = [r.seq for r in results]
        assert sorted(seqs) == list(range(1, 201))
        assert not any(r.duplicate for r in results)
        stored = await store.read(limit=1000)
        assert len(stored) == 200
        by_seq = {r.seq: r.body for r in stored}
        for new, result in zip(bodies, results, strict=True):
            assert by_seq[result.seq] == new.body
        assert await store.verify() == (200, None)


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    async def make_store(self, tmp_path: Path) -> AsyncIterator[MakeStore]:
        opened: list[SQLiteStore] = []

        async def make() -> Store:
            store = await SQLiteStore.open(tmp_path / f"ledger-{len(opened)}.db")
            opened.append(store)
            return store

        yield make
        for store in opened:
            await store.close()

    async def test_reopened_store_continues_the_chain(self, tmp_path: Path) -> None:
        path = tmp_path / "reopen.db"
        store = await SQLiteStore.open(path)
        try:
            first = await store.append(receipt())
        finally:
            await store.close()
        store = await SQLiteStore.open(path)
        try:
            second = await store.append(receipt())
            again = await store.append(_fields(await store.get(first.seq)))
            assert second.seq == first.seq + 1
            assert again == AppendResult(first.seq, duplicate=True)
            assert await store.verify() == (2, None)
        finally:
            await store.close()


def _fields(stored: Receipt | None) -> NewReceipt:
    """The NewReceipt a stored receipt was made from (for a byte-identical redelivery)."""
    assert stored is not None
    return NewReceipt(
        source=stored.source,
        received_at=stored.received_at,
        content_type=stored.content_type,
        body=stored.body,
        headers=stored.headers,
        peer=stored.peer,
    )
