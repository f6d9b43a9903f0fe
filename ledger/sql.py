"""One way to run SQL inside a transaction on either backend.

The projection and the quarantine are plain tables on both backends; their statements
are written once, in the SQL both SQLite and PostgreSQL accept (`?` placeholders,
`INSERT … ON CONFLICT`, `RETURNING`), and run through a `Tx`: SQLite's runs them on its
connection's thread, PostgreSQL's numbers the placeholders (`$1`, `$2`, …) for asyncpg.
What the dialects do not share (DDL types, row locks) is chosen by `Tx.dialect`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Protocol

import aiosqlite

from ledger.writer import T, on_thread

Row = Sequence[Any]
Dialect = Literal["sqlite", "postgresql"]


class Tx(Protocol):
    """Statements inside one transaction (a read snapshot or a write)."""

    dialect: Dialect
    # Appended to a SELECT that reads a row the transaction will write: under
    # PostgreSQL's READ COMMITTED it must hold the row; SQLite's writer already does.
    for_update: str

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def execute(self, sql: str, *args: Any) -> None: ...
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


async def fetchrow(tx: Tx, sql: str, *args: Any) -> Row | None:
    """The first row of a query, or None."""
    rows = await tx.fetch(sql, *args)
    return rows[0] if rows else None


class SQLiteTx:
    """A transaction on one aiosqlite connection, each round trip one hop to its thread.

    Writes are queued and sent with the next read, or with the COMMIT (`finish`): a
    write transaction of a read and some writes costs two hops, however many statements
    it holds — under load every hop waits its turn on the event loop, with the write
    lock held. `begin` is sent before the first statement (nothing: already begun).
    """

    dialect: Dialect = "sqlite"
    for_update = ""

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


class PostgresTx:
    """A transaction on one asyncpg connection (the caller opened the transaction)."""

    dialect: Dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, conn: Any, *, durable: bool = True) -> None:
        self.durable = durable  # False: commits without waiting for the WAL flush
        self._conn = conn

    @property
    def connection(self) -> Any:
        """The asyncpg connection (for the ledger's own statements)."""
        return self._conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self._conn.fetch(numbered(sql), *args)
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(numbered(sql), *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(numbered(sql), rows)


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`, … (no statement here holds a `?`
    inside a string literal)."""
    parts = sql.split("?")
    out = [parts[0]]
    for index, part in enumerate(parts[1:], start=1):
        out.append(f"${index}{part}")
    return "".join(out)
