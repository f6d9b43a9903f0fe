"""Reading a ledger file from outside (no server running): counts, body bytes, size."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


def receipts(path: Path) -> int:
    with connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM receipts").fetchone()[0])


# The database against the raw bytes of the bodies it keeps (issue 21; issue 5 asked
# for 1.6, met once bodies were compressed).
TARGET_RATIO = 0.5


@dataclass(frozen=True)
class Size:
    """The file's size after a checkpoint, against the bodies it keeps."""

    receipts: int
    body_bytes: int
    file_bytes: int  # database + WAL after wal_checkpoint(TRUNCATE)
    free_bytes: int  # pages on the freelist (counted in file_bytes)
    by_table: dict[str, int]  # bytes per table and index (dbstat)

    @property
    def ratio(self) -> float:
        return self.file_bytes / self.body_bytes if self.body_bytes else 0.0


def size(path: Path) -> Size:
    """Checkpoint (TRUNCATE) then measure db + wal; must not run while a server writes."""
    with connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        count, body = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM bodies").fetchone()
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0]) * page
        try:
            tables = dict(
                conn.execute(
                    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
                ).fetchall()
            )
        except sqlite3.Error:
            tables = {}
    wal = path.with_name(path.name + "-wal")
    total = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return Size(int(count), int(body), total, free, tables)


def projected(path: Path) -> tuple[int | None, int | None]:
    """(the projection's checkpoint, the last receipt's seq) of a ledger no server has
    open, read through a read-only connection; None for what is not there (no
    projection_meta row, no receipt)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    try:
        last = conn.execute("SELECT MAX(seq) FROM receipts").fetchone()[0]
        try:
            row = conn.execute("SELECT seq FROM projection_meta WHERE id = 1").fetchone()
        except sqlite3.OperationalError:  # no such table: never projected
            row = None
    finally:
        conn.close()
    return (None if row is None else int(row[0])), (None if last is None else int(last))
