"""Only derived data commits without waiting for the disk: a relaxed transaction states
its level, and every other commit — an append above all — is synced (synchronous=FULL)
whatever ran before it on the one write connection."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ledger import NewReceipt
from ledger.sqlite import SQLiteStore

FULL, NORMAL = 2, 1


def _receipt(n: int) -> NewReceipt:
    return NewReceipt(
        source="smtp2go",
        received_at=time.time_ns() // 1000,
        content_type="application/json",
        body=b'{"event":"delivered","n":%d}' % n,
        headers={},
    )


def _level(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def test_a_relaxed_transaction_never_leaves_an_append_unsynced(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "ledger.db")
    try:
        async with store.writing(durable=False) as tx:
            assert [tuple(row) for row in await tx.fetch("PRAGMA synchronous")] == [(NORMAL,)]
        # the group commit's transaction, right after, on the same connection
        assert await store.transact(_level) == FULL
        await store.append(_receipt(1))
        async with store.writing(durable=False) as tx:
            await tx.execute("CREATE TABLE IF NOT EXISTS derived (x INTEGER)")
        async with store.writing() as tx:
            assert [tuple(row) for row in await tx.fetch("PRAGMA synchronous")] == [(FULL,)]
        async with store.writing(durable=False):
            pass
        assert await store.transact(_level) == FULL
    finally:
        await store.close()
