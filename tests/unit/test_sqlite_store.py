"""The SQLite store's own edges: opening (a locked file retried, then given up; folders
made; every pragma set; connections closed on failure), the WAL truncated after an
erasure (or the reason it could not be), and the refusals' words."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from ledger import AppendRejected, NewReceipt, StoreUnavailable
from ledger import sqlite as sqlite_module
from ledger.sqlite import _OPEN_TRIES, SQLiteStore


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The store's waits, recorded instead of slept."""
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(sqlite_module.asyncio, "sleep", record)
    return waited


def failing_open(monkeypatch: pytest.MonkeyPatch, errors: list[BaseException]) -> list[int]:
    """`SQLiteStore._open` failing with `errors`, one per attempt, then opening for real."""
    real = SQLiteStore._open.__func__  # type: ignore[attr-defined]
    attempts: list[int] = []

    async def fake(cls: type[SQLiteStore], path: Path) -> SQLiteStore:
        attempts.append(1)
        if errors:
            raise errors.pop(0)
        return await real(cls, path)  # type: ignore[no-any-return]

    monkeypatch.setattr(SQLiteStore, "_open", classmethod(fake))
    return attempts


async def test_a_locked_file_is_retried_with_growing_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    locked = [sqlite3.OperationalError("database is locked")] * (_OPEN_TRIES - 2)
    attempts = failing_open(monkeypatch, [*locked, StoreUnavailable("table is locked")])
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    await store.close()
    assert len(attempts) == _OPEN_TRIES
    assert sleeps == pytest.approx([0.05 * n for n in range(1, _OPEN_TRIES)])


async def test_a_file_locked_at_every_try_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    attempts = failing_open(
        monkeypatch, [sqlite3.OperationalError("database is locked")] * (_OPEN_TRIES + 1)
    )
    path = tmp_path / "ledger.db"
    with pytest.raises(StoreUnavailable) as refused:
        await SQLiteStore.open(path)
    assert str(refused.value) == f"cannot open ledger at {path}: database is locked"
    assert len(attempts) == _OPEN_TRIES
    assert len(sleeps) == _OPEN_TRIES - 1


@pytest.mark.parametrize(
    "error",
    [sqlite3.OperationalError("disk I/O error"), sqlite3.DatabaseError("file is not a database"),
     PermissionError("denied")],
)  # fmt: skip
async def test_any_other_failure_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: list[float], error: Exception
) -> None:
    attempts = failing_open(monkeypatch, [error])
    path = tmp_path / "ledger.db"
    with pytest.raises(StoreUnavailable) as refused:
        await SQLiteStore.open(path)
    assert str(refused.value) == f"cannot open ledger at {path}: {error}"
    assert (len(attempts), sleeps) == (1, [])


async def test_open_makes_the_folders_and_sets_every_pragma(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    store = await SQLiteStore.open(path)
    try:
        assert store.path == path
        writer, reader = store._writer, store._reader
        assert (writer.isolation_level, reader.isolation_level) == (None, None)

        async def pragma(db: aiosqlite.Connection, name: str) -> Any:
            cursor = await db.execute(f"PRAGMA {name}")
            return (await cursor.fetchone())[0]  # type: ignore[index]

        assert await pragma(writer, "journal_mode") == "wal"
        assert await pragma(writer, "secure_delete") == 1
        assert await pragma(writer, "foreign_keys") == 1
        assert await pragma(writer, "journal_size_limit") == 67_108_864
        assert await pragma(writer, "busy_timeout") == 10_000
        assert await pragma(reader, "busy_timeout") == 10_000
    finally:
        await store.close()


async def test_a_failed_open_closes_what_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[aiosqlite.Connection] = []
    connect = aiosqlite.connect

    def recording(*args: Any, **kwargs: Any) -> Any:
        connection = connect(*args, **kwargs)
        opened.append(connection)
        return connection

    monkeypatch.setattr(sqlite_module.aiosqlite, "connect", recording)
    # before the reader is opened: a pragma the database refuses
    monkeypatch.setattr(sqlite_module, "PRAGMAS", ("PRAGMA journal_mode=WAL", "PRAGMA nonsense("))
    with pytest.raises(StoreUnavailable, match="cannot open ledger at"):
        await SQLiteStore.open(tmp_path / "one.db")
    monkeypatch.undo()
    monkeypatch.setattr(sqlite_module.aiosqlite, "connect", recording)

    async def refuse(*_: Any, **__: Any) -> None:  # after both are opened: the schema
        raise sqlite3.DatabaseError("malformed")

    monkeypatch.setattr(sqlite_module.schema, "ensure", refuse)
    with pytest.raises(StoreUnavailable, match="malformed"):
        await SQLiteStore.open(tmp_path / "two.db")
    assert len(opened) == 3
    for connection in opened:
        with pytest.raises(ValueError, match="no active connection"):
            await connection.execute("SELECT 1")


async def test_forget_freed_truncates_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = await SQLiteStore.open(path)
    try:
        await store.append(NewReceipt(source="ses", received_at=1, content_type="", body=b"x"))
        assert Path(f"{path}-wal").stat().st_size > 0
        await store.forget_freed()
        assert Path(f"{path}-wal").stat().st_size == 0
    finally:
        await store.close()


async def test_a_reader_holding_the_log_makes_forget_freed_say_so(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = await SQLiteStore.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store._writer.execute("PRAGMA busy_timeout=50")  # what it waits for readers
        await store.append(NewReceipt(source="ses", received_at=1, content_type="", body=b"x"))
        other.execute("BEGIN")
        other.execute("SELECT COUNT(*) FROM receipts").fetchone()  # a snapshot held open
        await store.append(NewReceipt(source="ses", received_at=2, content_type="", body=b"y"))
        with pytest.raises(StoreUnavailable) as refused:
            await store.forget_freed()
        assert str(refused.value) == (
            f"{path}: the write-ahead log could not be truncated (a reader held it): what the "
            "erasure removed stays in it until the next checkpoint"
        )
        other.execute("COMMIT")
        await store.forget_freed()
        assert Path(f"{path}-wal").stat().st_size == 0
    finally:
        other.close()
        await store.close()


async def test_the_refusals_say_what_was_refused(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:
        async with store.reading() as tx:
            with pytest.raises(sqlite3.ProgrammingError) as refused:
                await tx.execute("DELETE FROM quarantine")
            assert str(refused.value) == "a write inside a read transaction"
            nothing = NewReceipt(source="s", received_at=1, content_type="", body=b"")
            with pytest.raises(TypeError) as wrong:
                await store.append_in(tx, nothing)  # a read commits nothing: it is refused
        assert str(wrong.value) == "append_in needs this store's own durable write transaction"
        assert await store.last_seq() == 0

        def broken(connection: sqlite3.Connection) -> None:
            raise sqlite3.OperationalError("no such table: nowhere")

        with pytest.raises(StoreUnavailable) as failed:
            await store.transact(broken)
        assert str(failed.value) == "ledger write failed: no such table: nowhere"
        async with store.writing() as tx:
            with pytest.raises(AppendRejected) as moved:
                await store._advance(tx, 99, b"\x00" * 32, 1)
        assert str(moved.value) == "the ledger's head is not receipt 99 after the append"
    finally:
        await store.close()


async def test_a_database_laid_out_by_newer_code_is_refused_by_its_path(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = await SQLiteStore.open(path)
    await store.close()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE bl_schema SET version = 99")
    connection.close()
    with pytest.raises(StoreUnavailable) as refused:
        await SQLiteStore.open(path)
    assert f"{path}: the database's schema is version 99, newer than" in str(refused.value)


async def test_transact_passes_keywords_through(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:

        def count(connection: sqlite3.Connection, *, table: str) -> int:
            return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

        assert await store.transact(count, table="receipts") == 0
    finally:
        await store.close()
