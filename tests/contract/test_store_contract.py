"""The store contract: every ledger backend passes this suite (SQLite and PostgreSQL).

A backend's test class subclasses StoreContract and provides the `ledgers` fixture: a
Ledgers whose `open(name)` opens a new store instance on the ledger called `name` (the
same name is the same ledger: a reopen, or a second instance beside the first), and
whose `execute_raw(name, sql)` runs SQL on that ledger with the database's own client,
past the store. `make_store` is built on it: a fresh, empty, opened store. Every store
opened through `ledgers` is closed after the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest

from ledger import (
    AppendRejected,
    AppendResult,
    NewReceipt,
    Receipt,
    Store,
    StoreUnavailable,
    receipts,
    schema,
)
from ledger.chain import body_digest
from tests.contract.backends import Ledgers, OnPostgres, OnSQLite

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
    """Behaviour every Store must have. Subclasses provide `ledgers`."""

    @pytest.fixture
    def make_store(self, ledgers: Ledgers) -> MakeStore:
        return ledgers.fresh

    async def test_a_newer_schema_is_refused(self, ledgers: Ledgers) -> None:
        """Both backends keep the layout's version in the same table, and refuse a ledger
        laid out by newer code instead of misreading it."""
        store = await ledgers.open("versioned")
        await store.append(receipt())
        await ledgers.close(store)
        newer = schema.VERSION + 1
        await ledgers.execute_raw("versioned", f"UPDATE bl_schema SET version = {newer}")
        with pytest.raises(StoreUnavailable, match=rf"schema.*\b{newer}\b"):
            await ledgers.open("versioned")
        await ledgers.execute_raw("versioned", f"UPDATE bl_schema SET version = {schema.VERSION}")
        again = await ledgers.open("versioned")
        assert await again.verify() == (1, None)

    async def test_transactions_answer_the_catalogue_questions(self, ledgers: Ledgers) -> None:
        """What the SQL above the backends asks of a `Tx` instead of naming a database."""
        store = await ledgers.fresh()
        async with store.writing() as tx:
            assert await tx.has_table("receipts")
            assert not await tx.has_table("no_such_table")
            assert {"seq", "body_sha256", "chain_hash"} <= await tx.columns("receipts")
            assert await tx.columns("no_such_table") == set()
            await tx.lock(0x626C5F74657374)  # held to the commit; twice is fine
            await tx.lock(0x626C5F74657374)
            template = (
                "CREATE TABLE t_old (id {int} PRIMARY KEY, data {blob}, name TEXT {text}){table}"
            )
            await tx.execute(template.format(**tx.types))
            await tx.execute("INSERT INTO t_old VALUES (?, ?, ?)", 1, b"\x00\xff", "b")
            await tx.rename_table("t_old", "t_new")
            await tx.execute(template.format(**tx.types))  # the old name is free again
        async with store.reading() as tx:
            rows = await tx.fetch("SELECT id, data, name FROM t_new")
            assert [(int(r[0]), bytes(r[1]), r[2]) for r in rows] == [(1, b"\x00\xff", "b")]
            assert await tx.has_table("t_old")
            assert isinstance(tx.plans_ranges, bool)

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

    async def test_an_append_is_refused_inside_a_transaction_that_skips_the_sync(
        self, make_store: MakeStore
    ) -> None:
        """A relaxed transaction (derived data) commits without waiting for the disk: a
        receipt appended in it could be acknowledged and then lost, so none is."""
        store = await make_store()
        refusal = "append_in needs this store's own durable write transaction"
        with pytest.raises(TypeError, match=refusal):
            async with store.writing(durable=False) as tx:
                await store.append_in(tx, receipt())
        async with store.writing() as tx:
            result = await store.append_in(tx, receipt())
        assert result.seq == 1
        assert await store.last_seq() == 1

    async def test_an_append_is_refused_inside_a_read(self, make_store: MakeStore) -> None:
        """A read commits nothing (SQLite's read connection once committed it all the
        same): a receipt appended in one would be acknowledged on no durable commit."""
        store = await make_store()
        refusal = "append_in needs this store's own durable write transaction"
        async with store.reading() as tx:
            with pytest.raises(TypeError, match=refusal):
                await store.append_in(tx, receipt())
        assert await store.last_seq() == 0

    async def test_transactions_cancelled_at_any_point_leave_the_store_usable(
        self, make_store: MakeStore
    ) -> None:
        """A request cancelled (its client gone) on its way into or out of a read or a
        write: later reads and writes work (SQLite's reader once stayed inside the
        cancelled read's transaction, and every later read failed)."""
        store = await make_store()

        async def read() -> None:
            async with store.reading() as tx:
                await tx.fetch("SELECT 1")

        async def write() -> None:
            async with store.writing() as tx:
                await tx.execute("CREATE TABLE IF NOT EXISTS scratch_probe (x INTEGER)")

        appended = 0
        for work in (read, write):
            for steps in range(8):  # cancelled at each point of the way in and out
                task = asyncio.create_task(work())
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                assert await store.last_seq() == appended, (work.__name__, steps)
                appended += 1
                assert (await store.append(receipt())).seq == appended, (work.__name__, steps)

    async def test_arrivals_are_the_seq_and_arrival_of_what_read_returns(
        self, make_store: MakeStore
    ) -> None:
        store = await make_store()
        assert await store.arrivals() == []
        for _ in range(7):
            await store.append(receipt())
        for after, limit in [(0, 1000), (2, 3), (6, 10), (7, 5)]:
            expected = [(r.seq, r.received_at) for r in await store.read(after, limit)]
            assert await store.arrivals(after, limit) == expected
        assert [seq for seq, _ in await store.arrivals(2, 3)] == [3, 4, 5]

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

    async def test_verify_counts_what_verified_before_a_break_in_any_chunk(
        self, ledgers: Ledgers
    ) -> None:
        store = await ledgers.open("chunks")
        for _ in range(7):
            await store.append(receipt())
        await ledgers.execute_raw("chunks", "DELETE FROM bodies WHERE seq = 6")
        for chunk in (1, 2, 3, 5, 100):
            assert await store.verify(chunk=chunk) == (5, 6), chunk

    async def test_read_gives_at_most_a_thousand_by_default(self, make_store: MakeStore) -> None:
        store = await make_store()
        await asyncio.gather(*(store.append(receipt()) for _ in range(1001)))
        assert [r.seq for r in await store.read()] == list(range(1, 1001))
        assert [r.seq for r in await store.read(1000)] == [1001]
        assert [seq for seq, _ in await store.arrivals()] == list(range(1, 1001))
        assert [r.seq for r in await store.list_receipts()] == list(range(1, 101))
        # the sources and arrival times of receipts named by number, past any chunking
        wanted = list(range(1, 1002))
        async with store.reading() as tx:
            sources = await receipts.sources(tx, [*wanted, 5000])
            received = await receipts.received(tx, wanted)
        assert sources == dict.fromkeys(wanted, "smtp2go")
        assert received == {r.seq: r.received_at for r in await store.read(limit=2000)}

    async def test_newest_receipts_and_bodies_page_backwards(self, make_store: MakeStore) -> None:
        store = await make_store()
        sent = [receipt(source="ses" if n % 2 else "smtp2go") for n in range(5)]
        for new in sent:
            await store.append(new)
        async with store.reading() as tx:
            everything = await receipts.newest(tx, before=None, source=None, limit=10)
            older = await receipts.newest(tx, before=4, source=None, limit=2)
            ses = await receipts.newest(tx, before=None, source="ses", limit=10)
            bodies = await receipts.newest_bodies(tx, source="smtp2go", limit=2)
        assert [(seq, source) for seq, source, _, _ in everything] == [
            (5, "smtp2go"), (4, "ses"), (3, "smtp2go"), (2, "ses"), (1, "smtp2go"),
        ]  # fmt: skip
        assert [(at, size) for _, _, at, size in everything] == [
            (new.received_at, len(new.body)) for new in reversed(sent)
        ]
        assert [seq for seq, *_ in older] == [3, 2]
        assert [seq for seq, *_ in ses] == [4, 2]
        assert bodies == [(5, sent[4].body), (3, sent[2].body)]

    async def test_a_receipt_of_time_zero_is_listed(self, make_store: MakeStore) -> None:
        store = await make_store()
        await store.append(NewReceipt(source="ses", received_at=0, content_type="", body=b"x"))
        assert [r.seq for r in await store.list_receipts()] == [1]

    async def test_waiting_for_appends_ends_at_the_timeout(self, make_store: MakeStore) -> None:
        store = await make_store()
        started = time.monotonic()
        await asyncio.wait_for(store.wait_for_appends(0.05), 5)
        assert time.monotonic() - started < 2

    async def test_recheck_writable_clears_a_write_error_only_when_writes_work(
        self, make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = await make_store()
        assert await store.recheck_writable() is True
        assert store.write_error is None
        kind = type(store)

        async def failing(self: Any, batch: list[NewReceipt]) -> list[AppendResult]:
            raise StoreUnavailable("")  # a failure without a message: its type is shown

        monkeypatch.setattr(kind, "_write_batch", failing)
        assert await store.recheck_writable() is False
        assert store.write_error == "StoreUnavailable"
        monkeypatch.undo()
        assert await store.recheck_writable() is True
        assert store.write_error is None
        assert (await store.append(receipt())).seq == 1  # the probe is no receipt

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

    async def test_list_receipts_filters_by_source_and_time(self, make_store: MakeStore) -> None:
        store = await make_store()
        news = [receipt(source="smtp2go" if n % 2 else "operator") for n in range(6)]
        for new in news:
            await store.append(new)
        listed = await store.list_receipts(source="operator")
        assert [r.seq for r in listed] == [1, 3, 5]
        since, until = news[1].received_at, news[4].received_at
        listed = await store.list_receipts(since=since, until=until)
        assert [r.seq for r in listed] == [2, 3, 4]
        listed = await store.list_receipts(after_seq=2, limit=2)
        assert [r.seq for r in listed] == [3, 4]

    async def test_append_verbatim_copies_a_ledger_and_continues_it(
        self, make_store: MakeStore
    ) -> None:
        source, target = await make_store(), await make_store()
        for _ in range(5):
            await source.append(receipt())
        copied = await source.read()
        heard: list[int] = []
        assert await target.append_verbatim(copied, heard.append) == 5
        assert heard[-1:] == [5]
        assert await target.read() == copied
        assert await target.last_seq() == 5
        assert await target.verify() == (5, None)
        assert (await target.append(receipt())).seq == 6
        assert await target.verify() == (6, None)

    async def test_append_verbatim_keeps_the_door_identities_it_is_given(
        self, make_store: MakeStore
    ) -> None:
        def token(source: str, body: bytes) -> str | None:
            return str(json.loads(body)["token"]) if source == "mailgun" else None

        signed = receipt(b'{"token": "tok-1", "n": 1}', source="mailgun")
        source = await make_store()
        first = await source.append(msgspec.structs.replace(signed, identity="tok-1"))
        remembered, forgot = await make_store(), await make_store()
        await remembered.append_verbatim(await source.read(), identify=token)
        await forgot.append_verbatim(await source.read())
        replay = receipt(b'{"token": "tok-1", "n": 2}', source="mailgun")
        replay = msgspec.structs.replace(replay, identity="tok-1")
        refused = await remembered.append(replay)
        assert (refused.conflict, refused.seq) == (True, first.seq)
        assert (await forgot.append(replay)).conflict is False  # what a bare copy loses

    async def test_append_verbatim_refuses_what_does_not_continue_the_chain(
        self, make_store: MakeStore
    ) -> None:
        source, target = await make_store(), await make_store()
        for _ in range(4):
            await source.append(receipt())
        copied = await source.read()
        await target.append(receipt())
        with pytest.raises(AppendRejected, match="does not follow"):  # a target not empty
            await target.append_verbatim(copied)
        empty = await make_store()
        tampered = [*copied[:2], msgspec.structs.replace(copied[2], peer="10.0.0.9"), copied[3]]
        with pytest.raises(AppendRejected, match="chain hash"):
            await empty.append_verbatim(tampered)
        assert await empty.last_seq() == 0  # nothing written: one transaction
        assert await empty.read() == []

    # -- one ledger, several instances (a reopen, a CLI beside a server, replicas) --

    async def test_reopened_store_continues_the_chain(self, ledgers: Ledgers) -> None:
        store = await ledgers.open("reopen")
        first = await store.append(receipt())
        await ledgers.close(store)
        store = await ledgers.open("reopen")
        second = await store.append(receipt())
        again = await store.append(_fields(await store.get(first.seq)))
        assert second.seq == first.seq + 1
        assert again == AppendResult(first.seq, duplicate=True)
        assert await store.verify() == (2, None)

    async def test_instances_opening_at_once_agree(self, ledgers: Ledgers) -> None:
        stores = await asyncio.gather(*(ledgers.open("shared") for _ in range(3)))
        result = await stores[0].append(receipt())
        for store in stores:
            assert await store.last_seq() == result.seq == 1
            assert await store.verify() == (1, None)

    async def test_two_instances_appending_at_once_get_dense_seqs(self, ledgers: Ledgers) -> None:
        a = await ledgers.open("shared")
        b = await ledgers.open("shared")
        bodies = [receipt() for _ in range(200)]
        results = await asyncio.gather(
            *((a if i % 2 else b).append(new) for i, new in enumerate(bodies))
        )
        assert sorted(r.seq for r in results) == list(range(1, 201))
        assert not any(r.duplicate for r in results)
        for store in (a, b):
            stored = await store.read(limit=1000)
            assert [r.seq for r in stored] == list(range(1, 201))
            by_seq = {r.seq: r.body for r in stored}
            for new, result in zip(bodies, results, strict=True):
                assert by_seq[result.seq] == new.body
            assert await store.last_seq() == 200
            assert await store.verify() == (200, None)

    async def test_a_tailer_never_skips_a_receipt_that_commits_later(
        self, ledgers: Ledgers
    ) -> None:
        """The ordering every tailer (the projector) relies on, on every backend: while two
        instances append at once, a reader that remembers the last sequence number it saw
        sees every receipt, once, in order — no gap it passed is filled afterwards."""
        a = await ledgers.open("tailed")
        b = await ledgers.open("tailed")
        reader = await ledgers.open("tailed")
        total = 300
        seen: list[int] = []
        done = asyncio.Event()

        async def tail() -> None:
            after = 0
            while not (done.is_set() and after >= total):
                arrived = await reader.arrivals(after, 50)
                for seq, _ in arrived:
                    seen.append(seq)
                after = arrived[-1][0] if arrived else after
                await asyncio.sleep(0)

        async def write(store: Store, count: int) -> None:
            for _ in range(count):
                await asyncio.gather(*(store.append(receipt()) for _ in range(5)))

        tailing = asyncio.create_task(tail())
        await asyncio.gather(write(a, total // 10), write(b, total // 10))
        done.set()
        await asyncio.wait_for(tailing, 20)
        assert seen == list(range(1, total + 1))

    async def test_redelivery_to_another_instance_gets_the_first_seq(
        self, ledgers: Ledgers
    ) -> None:
        a = await ledgers.open("shared")
        b = await ledgers.open("shared")
        body = b'{"event":"bounce","id":"to-a-then-b"}'
        await a.append(receipt())
        first = await a.append(receipt(body))
        await b.append(receipt())
        again = await b.append(receipt(body))
        assert first == AppendResult(2, duplicate=False)
        assert again == AppendResult(first.seq, duplicate=True)
        assert await a.last_seq() == await b.last_seq() == 3
        assert [r.body for r in await b.read()].count(body) == 1
        assert await b.verify() == (3, None)

    async def test_same_body_to_two_instances_at_once_is_appended_once(
        self, ledgers: Ledgers
    ) -> None:
        a = await ledgers.open("shared")
        b = await ledgers.open("shared")
        for n in range(10):
            body = b'{"event":"bounce","id":"both-%d"}' % n
            results = await asyncio.gather(a.append(receipt(body)), b.append(receipt(body)))
            assert results[0].seq == results[1].seq == n + 1
            assert sorted(r.duplicate for r in results) == [False, True]
        assert await a.verify() == (10, None)

    # -- append-only, enforced by the database itself ----------------------------

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE receipts SET peer = 'tampered' WHERE seq = 1",
            "UPDATE receipts SET peer = peer",
            "DELETE FROM receipts WHERE seq = 2",
            "DELETE FROM receipts",
        ],
    )
    async def test_the_database_refuses_update_and_delete(self, ledgers: Ledgers, sql: str) -> None:
        store = await ledgers.open("append-only")
        for _ in range(3):
            await store.append(receipt())
        before = await store.read()
        with pytest.raises(ledgers.refused, match="append-only"):
            await ledgers.execute_raw("append-only", sql)
        assert await store.read() == before
        assert await store.verify() == (3, None)


class TestSQLiteStore(OnSQLite, StoreContract):
    """The store contract on SQLite."""


@pytest.mark.postgres
class TestPostgresStore(OnPostgres, StoreContract):
    async def test_the_database_refuses_truncate(self, ledgers: Ledgers) -> None:
        store = await ledgers.open("append-only")
        await store.append(receipt())
        with pytest.raises(ledgers.refused, match="append-only"):
            await ledgers.execute_raw("append-only", "TRUNCATE receipts")
        with pytest.raises(ledgers.refused, match="append-only"):
            await ledgers.execute_raw("append-only", "TRUNCATE receipts CASCADE")
        assert await store.verify() == (1, None)

    async def test_wait_for_appends_hears_another_instance(self, ledgers: Ledgers) -> None:
        a = await ledgers.open("shared")
        b = await ledgers.open("shared")
        await b.wait_for_appends(0.01)  # starts listening
        waiting = asyncio.create_task(b.wait_for_appends(10))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await a.append(receipt())
        await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - started < 1
        assert await b.last_seq() == 1

    async def test_synchronous_commit_off_is_refused(self, pg_url: str) -> None:
        from ledger.postgres import PostgresStore

        # asyncpg passes unknown URL parameters on as server settings
        with pytest.raises(StoreUnavailable, match="synchronous_commit"):
            await PostgresStore.open(f"{pg_url}&synchronous_commit=off")

    async def test_an_unreachable_server_is_unavailable_quickly(self) -> None:
        from ledger.postgres import PostgresStore

        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            await PostgresStore.open("postgresql://bl:s3cret@127.0.0.1:1/nowhere")
        assert time.monotonic() - started < 15
        assert "s3cret" not in str(raised.value)


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
