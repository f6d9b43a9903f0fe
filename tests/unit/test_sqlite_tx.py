"""SQLite's transaction (ledger/sqlite.py): writes are queued and sent with the next hop
to the writer's thread, so a function run there sees every write queued before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.sqlite import SQLiteStore


async def test_a_function_on_the_writer_thread_sees_the_writes_queued_before_it(
    tmp_path: Path,
) -> None:
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:

        def read(conn: sqlite3.Connection, table: str) -> list[tuple[int, ...]]:
            return conn.execute(f"SELECT x FROM {table} ORDER BY x").fetchall()

        async with store.writing() as tx:
            await tx.execute("CREATE TABLE queued (x INTEGER)")
            await tx.executemany("INSERT INTO queued VALUES (?)", [(2,), (1,)])
            assert await tx.call(read, "queued") == [(1,), (2,)]
        async with store.reading() as tx:
            assert await tx.fetch("SELECT count(*) FROM queued") == [(2,)]
    finally:
        await store.close()
