"""The SQLite backend: append-only in the database, tamper detection, group commit,
failed commits, byte-exact bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import NewReceipt, StoreUnavailable
from ledger.sqlite import SQLiteStore
from projections import DEFAULT_POLICY, rebuild
from tests.api.helpers import event


def receipt(n: int, *, body: bytes | None = None) -> NewReceipt:
    return NewReceipt(
        source="smtp2go",
        received_at=1_780_000_000_000_000 + n,
        content_type="application/x-www-form-urlencoded",
        body=body
        if body is not None
        else b"event=delivered&id=%d&rcpt=r%d%%40example.org" % (n, n),
        headers={"user-agent": "integration-test"},
        peer="192.0.2.1",
    )


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection on the ledger file, closed afterwards."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def drop_triggers(path: Path) -> None:
    with raw(path) as db:
        db.execute("DROP TRIGGER receipts_refuse_update")
        db.execute("DROP TRIGGER receipts_refuse_delete")


async def filled(path: Path, count: int) -> None:
    store = await SQLiteStore.open(path)
    try:
        for n in range(1, count + 1):
            await store.append(receipt(n))
        assert await store.verify() == (count, None)
    finally:
        await store.close()


async def verify(path: Path) -> tuple[int, int | None]:
    """verify() with chunks smaller and larger than the ledger: both must agree."""
    store = await SQLiteStore.open(path)
    try:
        small, large = await store.verify(chunk=2), await store.verify()
    finally:
        await store.close()
    assert small == large
    return large


# -- append-only -------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE receipts SET body_sha256 = x'00' WHERE seq = 2",
        "UPDATE receipts SET source = 'operator'",
        "DELETE FROM receipts WHERE seq = 2",
        "DELETE FROM receipts",
    ],
)
async def test_database_refuses_update_and_delete(db_path: Path, statement: str) -> None:
    await filled(db_path, 3)
    with raw(db_path) as db, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute(statement)
    assert await verify(db_path) == (3, None)


async def test_refusal_holds_while_the_store_is_open(store: SQLiteStore) -> None:
    await store.append(receipt(1))
    with raw(store.path) as db, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE receipts SET peer = 'x' WHERE seq = 1")
    got = await store.get(1)
    assert got is not None
    assert got.peer == "192.0.2.1"


# -- tamper detection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("source", "operator"),
        ("received_at", 1),
        ("content_type", "application/json"),
        ("headers", '{"user-agent":"forged"}'),
        ("peer", "203.0.113.9"),
        ("body_sha256", bytes(32)),
        ("chain_hash", bytes(32)),
    ],
)
async def test_verify_names_the_tampered_receipt(db_path: Path, column: str, value: object) -> None:
    await filled(db_path, 5)
    drop_triggers(db_path)
    with raw(db_path) as db:
        changed = db.execute(f"UPDATE receipts SET {column} = ? WHERE seq = 3", (value,))
        assert changed.rowcount == 1
    count, broken = await verify(db_path)
    assert broken == 3
    assert count == 2


async def test_verify_names_a_body_changed_in_body_storage(db_path: Path) -> None:
    """Body storage has no trigger: the digest the chain covers is what catches a change."""
    await filled(db_path, 5)
    forged = b"event=bounce&bounce=hard&rcpt=victim%40example.org"
    with raw(db_path) as db:
        db.execute(
            "UPDATE bodies SET codec = 0, dictionary = NULL, data = ? WHERE seq = 3", (forged,)
        )
    assert await verify(db_path) == (2, 3)


async def test_verify_detects_a_body_rewritten_with_its_digest(db_path: Path) -> None:
    """A forger who also updates body_sha256 still breaks the chain hash."""
    import hashlib

    await filled(db_path, 4)
    drop_triggers(db_path)
    forged = b"event=spam&rcpt=victim%40example.org"
    with raw(db_path) as db:
        db.execute(
            "UPDATE bodies SET codec = 0, dictionary = NULL, data = ? WHERE seq = 2", (forged,)
        )
        db.execute(
            "UPDATE receipts SET body_sha256 = ? WHERE seq = 2", (hashlib.sha256(forged).digest(),)
        )
    assert (await verify(db_path))[1] == 2


async def test_verify_detects_a_deleted_middle_row(db_path: Path) -> None:
    await filled(db_path, 6)
    drop_triggers(db_path)
    with raw(db_path) as db:
        db.execute("DELETE FROM receipts WHERE seq = 4")
    count, broken = await verify(db_path)
    assert broken == 4
    assert count == 3


async def test_verify_detects_a_deleted_first_row(db_path: Path) -> None:
    await filled(db_path, 3)
    drop_triggers(db_path)
    with raw(db_path) as db:
        db.execute("DELETE FROM receipts WHERE seq = 1")
    assert await verify(db_path) == (0, 1)


# -- group commit ------------------------------------------------------------------


async def test_concurrent_appends_share_commits(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = SQLiteStore._write_batch

    async def counting(self: SQLiteStore, batch: list[NewReceipt]) -> object:
        calls.append(len(batch))
        return await original(self, batch)

    monkeypatch.setattr(SQLiteStore, "_write_batch", counting)
    results = await asyncio.gather(*(store.append(receipt(n)) for n in range(200)))
    assert sorted(r.seq for r in results) == list(range(1, 201))
    assert sum(calls) == 200
    assert len(calls) <= 20, f"200 appends took {len(calls)} transactions"
    assert await store.verify() == (200, None)


async def test_failed_commit_fails_every_waiter_and_writes_nothing(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append(receipt(0))
    original = SQLiteStore._write_batch

    async def failing(self: SQLiteStore, batch: list[NewReceipt]) -> object:
        async with self.writing() as tx:
            await tx.executemany(
                "INSERT INTO receipts (seq, received_at, source, content_type, headers, peer, "
                "body_sha256, chain_hash) VALUES (?, 0, 'smtp2go', '', '{}', NULL, ?, ?)",
                [(100 + i, bytes(32), bytes(32)) for i, _ in enumerate(batch)],
            )
            raise sqlite3.OperationalError("disk I/O error")
        raise AssertionError("unreachable")  # pragma: no cover

    monkeypatch.setattr(SQLiteStore, "_write_batch", failing)
    outcomes = await asyncio.gather(
        *(store.append(receipt(n)) for n in range(1, 21)), return_exceptions=True
    )
    assert len(outcomes) == 20
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes), outcomes
    assert await store.last_seq() == 1
    assert [r.seq for r in await store.read()] == [1]

    monkeypatch.setattr(SQLiteStore, "_write_batch", original)
    after = await store.append(receipt(21))
    assert after.seq == 2
    assert after.duplicate is False
    # a body whose first attempt failed is not mistaken for a redelivery
    retried = await store.append(receipt(1))
    assert (retried.seq, retried.duplicate) == (3, False)
    assert await store.verify() == (3, None)


async def test_failed_commit_on_a_real_error_rolls_back(store: SQLiteStore) -> None:
    """A genuine SQLite failure (the table locked by another writer) is StoreUnavailable."""
    await store.append(receipt(0))
    with raw(store.path) as db:
        db.execute("PRAGMA busy_timeout=0")
        db.execute("BEGIN EXCLUSIVE")
        try:
            await store._writer.execute("PRAGMA busy_timeout=50")
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(store.append(receipt(1)), timeout=10)
        finally:
            db.execute("ROLLBACK")
    await store._writer.execute("PRAGMA busy_timeout=10000")
    assert (await store.append(receipt(2))).seq == 2
    assert await store.verify() == (2, None)


# -- bodies are kept byte for byte ---------------------------------------------------


async def test_bodies_round_trip_byte_for_byte(store: SQLiteStore) -> None:
    rng = random.Random(20260504)
    bodies = [
        b"\xff\xfe\x00\x80 not utf-8 \xc3\x28",
        b"\x00" * 17,
        b'\xef\xbb\xbf{"event": "bounce"}\r\n',
        "caf\u00e9 \u2603".encode("utf-16"),
        b"  leading and trailing whitespace  \n",
        *(rng.randbytes(rng.randint(1, 4096)) for _ in range(20)),
    ]
    seqs = [(await store.append(receipt(n, body=body))).seq for n, body in enumerate(bodies)]
    for seq, body in zip(seqs, bodies, strict=True):
        got = await store.get(seq)
        assert got is not None
        assert got.body == body
        assert type(got.body) is bytes
    assert await store.verify() == (len(bodies), None)


async def test_instances_opening_one_new_file_at_once_all_open(tmp_path: Path) -> None:
    """Several instances opening the same new file at once: the switch to WAL or the
    schema's creation may find it locked before the busy timeout applies (seen as a flaky
    contract test under load); the open retries briefly instead of failing."""
    for round_ in range(20):
        path = tmp_path / f"race-{round_}.db"
        stores = await asyncio.gather(*(SQLiteStore.open(path) for _ in range(4)))
        try:
            assert {await store.last_seq() for store in stores} == {0}
        finally:
            for store in stores:
                await store.close()


async def test_a_write_inside_a_read_transaction_is_refused_not_lost(tmp_path: Path) -> None:
    """A read snapshot is never committed: a write queued in it would vanish silently."""
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:
        with pytest.raises(StoreUnavailable, match="a write inside a read transaction"):
            async with store.reading() as tx:
                await tx.execute("CREATE TABLE nothing (x INTEGER)")
    finally:
        await store.close()


async def test_a_rederivation_leaves_no_free_pages_in_the_ledger_file(tmp_path: Path) -> None:
    """The facts a re-derivation stages are dropped once copied: in a temporary table of
    the writer's connection, not in the ledger's own file (where they left the file about
    a third larger than it needs to be, as free pages — bench size)."""
    path = tmp_path / "ledger.db"
    store = await SQLiteStore.open(path)
    try:
        for n in range(3000):
            soft = event("bounce", f"r{n % 50}@example.org", f"e{n}", bounce="soft")
            body = json.dumps(soft).encode()
            await store.append(receipt(n, body=body))
        await rebuild(store, DEFAULT_POLICY)
        with raw(path) as db:
            facts = db.execute("SELECT COUNT(*) FROM recipient_facts").fetchone()[0]
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    finally:
        await store.close()
    assert facts == 3000
    assert free < 10  # the old state tables' and the first fact index's pages, no more
    assert "recipient_facts_staged" not in tables
