"""The SQLite backend (aiosqlite): one file, one write connection, group commit.

Every write in the process — receipt appends and the projector's view updates — goes
through the one write connection, serialized by an asyncio lock. That keeps SQLite's
single-writer rule inside the process (and away from the WAL-reset race of SQLite
before 3.51.3, which needs two connections writing or checkpointing at once).

Appends are group-committed (ledger/group.py), each batch in one transaction committed
with `synchronous=FULL` before any of its requests hears back, run on the writer's
thread in one hop (ledger/writer.py). What the SQL backends share is in
ledger/sqlstore.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Concatenate

import aiosqlite

from ledger import schema
from ledger.body_store import Packer, load_packer
from ledger.chain import GENESIS, BodyRow, IdentityRow
from ledger.errors import AppendRejected, StoreUnavailable, ValueRefused
from ledger.group import CommitReport, GroupCommit
from ledger.receipts import DIGEST_PREFIX
from ledger.records import AppendResult, NewReceipt
from ledger.sql import Row, Tx, fetchrow
from ledger.sqlstore import SqlStore
from ledger.writer import P, T, append_rows, in_transaction, on_thread

__all__ = ["CommitReport", "SQLiteStore", "SQLiteTx", "open_at"]

_OPEN_TRIES = 5
# Every write transaction on the one write connection states its own level first, so a
# relaxed one can never leave the next append's commit unsynced.
_DURABLE = "PRAGMA synchronous=FULL"
_RELAXED = "PRAGMA synchronous=NORMAL"

PRAGMAS = (
    # First: every statement after it, the switch to WAL included, waits for a lock held
    # by another connection (another instance opening the same file) instead of failing.
    "PRAGMA busy_timeout=10000",
    "PRAGMA journal_mode=WAL",
    # FULL: the WAL is synced at every commit, so an acknowledged receipt survives an
    # OS crash or power loss, not only a process crash. Group commit pays for it.
    _DURABLE,
    "PRAGMA foreign_keys=ON",
    # A rebuild's copy of the fact index is one large transaction: the WAL grows by the
    # table's size. Once a checkpoint has reset it, it is truncated back to 64 MiB
    # rather than keeping that size on disk until the last connection closes.
    "PRAGMA journal_size_limit=67108864",
    # What a write frees (a deleted row, an erased body, a state's old copy) is
    # overwritten with zeros, not left readable in free pages: an erasure leaves no copy
    # of what it removed in the file (the WAL: `forget_freed`).
    "PRAGMA secure_delete=ON",
)
# What only SQLite's ledger needs: the database itself refuses to change a receipt.
APPEND_ONLY = (
    """CREATE TRIGGER IF NOT EXISTS receipts_refuse_update BEFORE UPDATE ON receipts
    BEGIN SELECT RAISE(ABORT, 'receipts are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS receipts_refuse_delete BEFORE DELETE ON receipts
    BEGIN SELECT RAISE(ABORT, 'receipts are append-only: DELETE refused'); END""",
    # The appends find a redelivered body by its digest (ledger/writer.py known_digests):
    # by its first 8 bytes, which narrow a lookup to one row in practice, at a third of
    # what indexing the whole 32 would cost.
    f"CREATE INDEX IF NOT EXISTS receipts_by_digest_prefix ON receipts ({DIGEST_PREFIX})",
)
TYPES = {
    "int": "INTEGER",
    "blob": "BLOB",
    "text": "",
    "table": " WITHOUT ROWID",
    "identity": "INTEGER PRIMARY KEY",
    # A table of the one writer connection, in a temporary file: dropped, it leaves no
    # free pages in the ledger's own file (a re-derivation's staging, 0.3x the bodies).
    "scratch": "TEMP",
}


class SQLiteTx:
    """A transaction on one aiosqlite connection, each round trip one hop to its thread.

    Writes are queued and sent with the next read, or with the COMMIT (`finish`): a
    write transaction of a read and some writes costs two hops, however many statements
    it holds — under load every hop waits its turn on the event loop, with the write
    lock held. `begin` is sent before the first statement (nothing: already begun).
    """

    dialect = "sqlite"
    types = TYPES
    for_update = ""  # the one writer already holds every row it reads
    plans_ranges = False  # SQLite keeps no statistics: a query may steer it

    def __init__(
        self,
        db: aiosqlite.Connection,
        begin: Sequence[str] = (),
        *,
        readonly: bool = False,
        durable: bool = True,
    ) -> None:
        self.durable = durable  # False: commits without waiting for the disk (derived data)
        self._db = db
        self._begin = tuple(begin)
        self._readonly = readonly
        self._pending: list[tuple[str, Any, bool]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await on_thread(self._db, self._fetch, sql, args)
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        self._queue(sql, args, False)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._queue(sql, list(rows), True)

    async def has_table(self, name: str) -> bool:
        row = await fetchrow(
            self, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name
        )
        return bool(row and row[0])

    async def columns(self, table: str) -> set[str]:
        return {
            str(row[0]) for row in await self.fetch("SELECT name FROM pragma_table_info(?)", table)
        }

    async def rename_table(self, old: str, new: str) -> None:
        await self.execute(f"ALTER TABLE {old} RENAME TO {new}")  # its indexes follow

    async def lock(self, key: int) -> None:
        """Nothing to do: the one write connection is held for the whole transaction."""

    def _queue(self, sql: str, params: Any, many: bool) -> None:
        if self._readonly:  # a read snapshot is never committed: the write would vanish
            raise sqlite3.ProgrammingError("a write inside a read transaction")
        self._pending.append((sql, params, many))

    async def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`fn(connection, …)` on the connection's thread, after what is queued."""
        return await on_thread(self._db, self._call, fn, *args)

    def _call(self, conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
        self._flush(conn)
        return fn(conn, *args)

    async def finish(self, end: str) -> None:
        """Send what is queued, then `end` (COMMIT), in one hop."""
        await on_thread(self._db, self._finish, end)

    def _fetch(self, conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
        self._flush(conn)
        return conn.execute(sql, args).fetchall()

    def _finish(self, conn: sqlite3.Connection, end: str) -> None:
        self._flush(conn)
        conn.execute(end)

    def _flush(self, conn: sqlite3.Connection) -> None:
        for statement in self._begin:
            conn.execute(statement)
        self._begin = ()
        pending, self._pending = self._pending, []
        for sql, params, many in pending:
            if many:
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params)


async def _end_read(db: aiosqlite.Connection) -> None:
    """End a read transaction: queued after its BEGIN on the connection's thread, also
    when the BEGIN failed (then there is nothing to end) or the caller was cancelled."""
    try:
        await db.execute("COMMIT")
    except sqlite3.OperationalError:
        if db.in_transaction:
            raise  # a read that cannot end: the reader is not usable


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """The driver's errors as the ledger's: a value refused (ValueRefused), anything else
    StoreUnavailable."""
    try:
        yield
    except sqlite3.DataError as exc:
        raise ValueRefused(f"the database refused a value: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"ledger {what} failed: {exc}") from exc


def _nothing(conn: sqlite3.Connection) -> None:
    """Run on the writer's thread after what is queued: nothing more."""


async def open_at(target: str | Path, *, pool_min: int = 2, pool_max: int = 10) -> SQLiteStore:
    """The backends' registry entry (ledger/backends.py): the file at `target` (SQLite
    has no pool: the sizes are not used)."""
    return await SQLiteStore.open(Path(target))


class SQLiteStore(SqlStore):
    """The ledger on one SQLite file (WAL mode)."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._group = GroupCommit(lambda batch: self._write_batch(batch))
        self.packer = Packer()

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        """Open (creating if needed) the ledger at `path`.

        Another process (or instance) opening the same new file at the same moment can
        make the switch to WAL or the schema's creation find the file locked before the
        busy timeout applies: that is retried a few times, briefly, before giving up.
        """
        path = Path(path)
        for attempt in range(_OPEN_TRIES):
            try:
                return await cls._open(path)
            except (sqlite3.OperationalError, StoreUnavailable) as exc:
                if "locked" not in str(exc) or attempt == _OPEN_TRIES - 1:
                    raise StoreUnavailable(f"cannot open ledger at {path}: {exc}") from exc
                await asyncio.sleep(0.05 * (attempt + 1))
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open ledger at {path}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    async def _open(cls, path: Path) -> SQLiteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        reader = None
        try:
            for pragma in PRAGMAS:
                await writer.execute(pragma)
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=10000")
            store = cls(path, writer, reader)
            async with store.writing() as tx:
                await schema.ensure(tx, str(path), APPEND_ONLY)
                store.packer = await load_packer(tx)
        except BaseException:
            if reader is not None:
                await reader.close()
            await writer.close()
            raise
        return store

    async def forget_freed(self) -> None:
        """Copy the WAL into the database and truncate it to nothing: the WAL holds the
        pages as they were before the last writes until then. A reader's open snapshot
        holds the checkpoint back: it waits for readers as long as any write waits for a
        lock (busy_timeout), then leaves the WAL to the next checkpoint and says so."""
        async with self._write_lock:
            cursor = await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (busy, *_) = await cursor.fetchone() or (1,)
        if busy:
            raise StoreUnavailable(
                f"{self.path}: the write-ahead log could not be truncated (a reader held it): "
                "what the erasure removed stays in it until the next checkpoint"
            )

    async def close(self) -> None:
        await self._group.drain()
        await self._stop_training()
        await self._reader.close()
        await self._writer.close()

    # -- appends ---------------------------------------------------------------

    async def _write_batch(self, batch: list[NewReceipt]) -> list[AppendResult]:
        results = await self.transact(append_rows, batch, self.packer)
        self._train_when_due()
        return results

    async def transact(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(connection, …)` in one durable write transaction, all of it on the writer's
        thread: the group commit's path, which holds the write lock for its SQL alone."""
        async with self._write_lock:
            try:
                return await on_thread(self._writer, in_transaction, fn, *args, **kwargs)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"ledger write failed: {exc}") from exc

    async def append_in(self, tx: Tx, receipt: NewReceipt) -> AppendResult:
        if not isinstance(tx, SQLiteTx) or not tx.durable:
            raise TypeError("append_in needs this store's own durable write transaction")
        results = await tx.call(append_rows, [receipt], self.packer)
        self._group.appended.set()
        return results[0]

    async def _head(self, tx: Tx) -> tuple[int, bytes]:
        head = await fetchrow(tx, "SELECT seq, chain_hash FROM receipts ORDER BY seq DESC LIMIT 1")
        return (int(head[0]), bytes(head[1])) if head else (0, GENESIS)

    async def _advance(self, tx: Tx, seq: int, chain_hash: bytes, appended: int) -> None:
        """SQLite keeps no head row (the last receipt is the head): check that the
        verbatim append left the head where its chain says."""
        if await self._head(tx) != (seq, chain_hash):
            raise AppendRejected(f"the ledger's head is not receipt {seq} after the append")

    async def _insert(
        self, tx: Tx, rows: list[tuple[Any, ...]], ids: list[IdentityRow], bodies: list[BodyRow]
    ) -> None:
        await super()._insert(tx, rows, ids, bodies)
        if isinstance(tx, SQLiteTx):
            await tx.call(_nothing)  # send the chunk now, not all of an import at the commit

    # -- transactions ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writing(self, *, durable: bool = True) -> AsyncIterator[SQLiteTx]:
        """On the one write connection: queued writes and the COMMIT go to the writer's
        thread together. `durable=False` commits with `synchronous=NORMAL` for this
        transaction: in WAL mode the commit stays atomic and in order, and the next
        durable commit syncs it with its own. An fsync per projector step would hold the
        write lock while every group commit queued behind it."""
        begin = (_DURABLE if durable else _RELAXED, "BEGIN IMMEDIATE")
        async with self._write_lock:
            tx = SQLiteTx(self._writer, begin=begin, durable=durable)
            with _translated("write"):
                try:
                    yield tx
                    await tx.finish("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        await self._writer.execute("ROLLBACK")
                    raise

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[SQLiteTx]:
        """On the read connection (one reader at a time, beside the writer).

        The transaction ends whatever happens to the caller: a BEGIN runs on the reader's
        thread even when the request awaiting it is cancelled (its client gone), so the
        COMMIT is queued behind it in every case — else every later read of the process
        would fail, "within a transaction"."""
        async with self._read_lock:
            db = self._reader
            with _translated("read"):
                try:
                    await db.execute("BEGIN")
                    yield SQLiteTx(db, readonly=True, durable=False)  # commits nothing
                finally:
                    await _end_read(db)
