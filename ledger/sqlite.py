"""The SQLite ledger store: one write connection, group commit, append-only receipts.

Every write in the process — receipt appends and the projector's view updates — goes
through the one write connection, serialized by an asyncio lock. That keeps SQLite's
single-writer rule inside the process (and away from the WAL-reset race of SQLite
before 3.51.3, which needs two connections writing or checkpointing at once).

Appends are group-committed (ledger/group.py), each batch in one transaction committed
with `synchronous=FULL` before any of its requests hears back.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Concatenate

import aiosqlite
import msgspec

from ledger import schema
from ledger.chain import GENESIS, ChainRow, IdentityRow, verbatim_chunks, verify_chain
from ledger.errors import StoreUnavailable, ValueRefused
from ledger.group import MAX_BATCH, CommitReport, GroupCommit, GroupCommitted
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.sql import SQLiteTx, Tx
from ledger.store import Identify
from ledger.writer import (
    RECEIPT_COLUMNS,
    P,
    T,
    append_rows,
    in_transaction,
    on_thread,
)

_decode_headers = msgspec.json.Decoder(dict[str, str]).decode

__all__ = ["CommitReport", "SQLiteStore"]

_OPEN_TRIES = 5
# Every write transaction on the one write connection states its own level first, so a
# relaxed one can never leave the next append's commit unsynced.
_DURABLE = "PRAGMA synchronous=FULL"
_RELAXED = "PRAGMA synchronous=NORMAL"


def _receipt(row: Sequence[Any]) -> Receipt:
    return Receipt(
        seq=row[0],
        received_at=row[1],
        source=row[2],
        content_type=row[3],
        headers=_decode_headers(row[4]),
        peer=row[5],
        body=row[6],
        body_sha256=row[7],
        chain_hash=row[8],
    )


class SQLiteStore(GroupCommitted):
    """The ledger on one SQLite file (WAL mode)."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._group = GroupCommit(lambda batch: self._write_batch(batch))

    @classmethod
    async def open(cls, path: str | Path, *, schema_scripts: Iterable[str] = ()) -> SQLiteStore:
        """Open (creating if needed) the ledger at `path`, plus any extra schema.

        Another process (or instance) opening the same new file at the same moment can
        make the switch to WAL or the schema's creation find the file locked before the
        busy timeout applies: that is retried a few times, briefly, before giving up.
        """
        path = Path(path)
        for attempt in range(_OPEN_TRIES):
            try:
                return await cls._open(path, schema_scripts)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _OPEN_TRIES - 1:
                    raise StoreUnavailable(f"cannot open ledger at {path}: {exc}") from exc
                await asyncio.sleep(0.05 * (attempt + 1))
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open ledger at {path}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    async def _open(cls, path: Path, schema_scripts: Iterable[str]) -> SQLiteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            for pragma in schema.PRAGMAS:
                await writer.execute(pragma)
            await writer.executescript(schema.RECEIPTS)
            await writer.executescript(schema.QUARANTINE)
            for script in schema_scripts:
                await writer.executescript(script)
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        try:
            await reader.execute("PRAGMA busy_timeout=10000")
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(path, writer, reader)

    async def close(self) -> None:
        """Finish queued appends, then close (reader first, so the writer checkpoints)."""
        await self._group.drain()
        await self._reader.close()
        await self._writer.close()

    # -- appends ---------------------------------------------------------------

    async def _write_batch(self, batch: list[NewReceipt]) -> list[AppendResult]:
        return await self.transact(append_rows, batch)

    async def transact(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(connection, …)` in one write transaction, all of it on the writer's thread.

        The hot paths (group commits, projector steps) use this rather than `write()`: a
        transaction that is one hop holds the write lock for its SQL alone.
        """
        async with self._write_lock:
            try:
                return await on_thread(self._writer, in_transaction, fn, *args, **kwargs)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"ledger write failed: {exc}") from exc

    async def append_verbatim(
        self,
        receipts: Iterable[Receipt],
        progress: Callable[[int], None] | None = None,
        identify: Identify | None = None,
    ) -> int:
        """Append already-chained receipts (an import), checking each continues the chain.

        All in one transaction: raises AppendRejected naming the first receipt that does
        not continue the chain (or whatever `receipts` raises), and nothing is written then.
        `progress` hears the running count after each chunk; `identify` gives the door
        identities to record beside them (ledger/chain.py, verbatim_chunks).
        """
        async with self.write() as db:
            async with db.execute(
                "SELECT seq, chain_hash FROM receipts ORDER BY seq DESC LIMIT 1"
            ) as cursor:
                head = await cursor.fetchone()
            seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS)
            count = 0
            for chunk in verbatim_chunks(receipts, seq, prev_hash, identify, MAX_BATCH):
                count += await self._insert(db, chunk.rows, chunk.identities)
                if progress and chunk.rows:
                    progress(count)
        self._group.appended.set()
        return count

    @staticmethod
    async def _insert(
        db: aiosqlite.Connection,
        rows: list[tuple[Any, ...]],
        identities: list[IdentityRow],
    ) -> int:
        await db.executemany(
            f"INSERT INTO receipts ({RECEIPT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows
        )
        await db.executemany(
            "INSERT OR IGNORE INTO door_ids (source, identity, seq, body_sha256) VALUES (?,?,?,?)",
            identities,
        )
        return len(rows)

    async def exposure(self) -> list[str]:
        """What lets others interfere with this ledger: nothing the store can see (the
        file's permissions are the machine's business)."""
        return []

    async def recheck_writable(self) -> bool:
        """After a failed commit: try the append path and a real one-row write (outside
        the chain) again, and clear `write_error` if both succeed."""
        try:
            await self._write_batch([])
            async with self.write() as db:
                await db.execute(
                    "CREATE TABLE IF NOT EXISTS write_probe "
                    "(id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL)"
                )
                await db.execute(
                    "INSERT OR REPLACE INTO write_probe VALUES (1, ?)", (time.time_ns() // 1000,)
                )
        except Exception as exc:  # still failing: keep reporting it
            self.write_error = str(exc) or type(exc).__name__
            return False
        self.write_error = None
        return True

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT) on the single write connection.

        Rolled back on any error; SQLite errors surface as StoreUnavailable.
        """
        async with self._write_lock:
            db = self._writer
            try:
                await db.execute(_DURABLE)
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    await db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        await db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"ledger write failed: {exc}") from exc

    @contextlib.asynccontextmanager
    async def writing(self, *, durable: bool = True) -> AsyncIterator[SQLiteTx]:
        """One write transaction as a `Tx` (ledger/sql.py): queued writes and the COMMIT
        go to the writer's thread together. Rolled back on any error; SQLite errors
        surface as StoreUnavailable.

        `durable=False` (derived data only: the projector's steps, a rebuild's chunks)
        commits without waiting for the disk (`synchronous=NORMAL` for this transaction):
        in WAL mode the commit stays atomic and in order, and the next durable commit
        syncs it with its own; a power cut may take back the last such commits, which
        are re-derived from the ledger. The projector's fsync held the write lock ~8 ms
        a step under load, and every group commit queued behind it (issue 11).
        """
        begin = (_DURABLE if durable else _RELAXED, "BEGIN IMMEDIATE")
        async with self._write_lock:
            tx = SQLiteTx(self._writer, begin=begin, durable=durable)
            try:
                try:
                    yield tx
                    await tx.finish("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        await self._writer.execute("ROLLBACK")
                    raise
            except sqlite3.DataError as exc:
                raise ValueRefused(f"the database refused a value: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"ledger write failed: {exc}") from exc

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[SQLiteTx]:
        """A read transaction as a `Tx`: every statement sees the same committed state."""
        async with self.snapshot() as db:
            yield SQLiteTx(db, readonly=True)

    async def append_in(self, tx: Tx, receipt: NewReceipt) -> AppendResult:
        """Append one receipt inside a `writing()` transaction (it commits with it)."""
        if not isinstance(tx, SQLiteTx) or not tx.durable:
            raise TypeError("append_in needs this store's own durable write transaction")
        results = await tx.call(append_rows, [receipt])
        self._group.appended.set()
        return results[0]

    async def projector_lease(self) -> bool:
        """Whether this process may run the projector: always (a step that finds the
        checkpoint moved by another process writes nothing, so no lease is needed)."""
        return True

    # -- reads -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        async with self._read_lock:
            db = self._reader
            try:
                await db.execute("BEGIN")
                try:
                    yield db
                finally:
                    await db.execute("COMMIT")
            except sqlite3.DataError as exc:
                raise ValueRefused(f"the database refused a value: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"ledger read failed: {exc}") from exc

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]:
        """Receipts with seq > after_seq, in order, at most `limit`."""
        async with (
            self.snapshot() as db,
            db.execute(
                f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ) as cursor,
        ):
            return [_receipt(row) for row in await cursor.fetchall()]

    async def arrivals(self, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, int]]:
        """(seq, received_at) of the receipts with seq > after_seq, in order, at most
        `limit`: what the projector needs of receipts whose facts it was handed."""
        async with (
            self.snapshot() as db,
            db.execute(
                "SELECT seq, received_at FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ) as cursor,
        ):
            return [(row[0], row[1]) for row in await cursor.fetchall()]

    async def list_receipts(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[Receipt]:
        """Receipts in sequence order, filtered by source and received time [since, until)."""
        async with (
            self.snapshot() as db,
            db.execute(
                f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq > ? "
                "AND (? IS NULL OR source = ?) AND received_at >= ? AND received_at < ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, source, source, since or 0, until or 2**62, limit),
            ) as cursor,
        ):
            return [_receipt(row) for row in await cursor.fetchall()]

    async def get(self, seq: int) -> Receipt | None:
        """One receipt by sequence number."""
        async with (
            self.snapshot() as db,
            db.execute(f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq = ?", (seq,)) as cursor,
        ):
            row = await cursor.fetchone()
        return _receipt(row) if row else None

    async def last_seq(self) -> int:
        """The sequence number of the newest receipt (0 when empty)."""
        async with self.snapshot() as db, db.execute("SELECT MAX(seq) FROM receipts") as cursor:
            row = await cursor.fetchone()
        return int(row[0] or 0) if row else 0

    async def wait_for_appends(self, timeout: float) -> None:
        """Wait until something was appended by this process, or `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._group.appended.wait(), timeout)
        self._group.appended.clear()

    async def verify(self, chunk: int = 5000) -> tuple[int, int | None]:
        """Recompute the chain: (receipts checked, first broken seq or None)."""

        async def rows_after(seq: int) -> list[ChainRow]:
            async with (
                self.snapshot() as db,
                db.execute(
                    f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?",
                    (seq, chunk),
                ) as cursor,
            ):
                return [ChainRow(*row) for row in await cursor.fetchall()]

        return await verify_chain(rows_after)
