"""SQLite's writing on the writer's own thread: one hop per transaction, and the group
commit's batch append (chain, de-duplicate, insert) that runs there.

Under load every separate `await db.execute(…)` queues behind the requests waiting on
the event loop; a write transaction made of many of them holds the write lock that long.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import aiosqlite

from ledger.body_store import INSERT_BODIES, Packer
from ledger.chain import GENESIS, KnownIdentities, batch_identities, body_digest, link_batch
from ledger.receipts import COLUMNS, DIGEST_PREFIX
from ledger.records import AppendResult, NewReceipt

T = TypeVar("T")
P = ParamSpec("P")


async def on_thread(
    db: aiosqlite.Connection,
    fn: Callable[Concatenate[sqlite3.Connection, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run `fn(connection, …)` on the connection's own thread, in one hop.

    aiosqlite has no public way to run a function on its thread: `_execute` and `_conn`
    are stable through the pinned 0.22 series, and this is the one place using them.
    """
    result: T = await db._execute(fn, db._conn, *args, **kwargs)  # type: ignore[no-untyped-call]
    return result


def in_transaction(
    conn: sqlite3.Connection,
    fn: Callable[Concatenate[sqlite3.Connection, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """BEGIN IMMEDIATE, `fn`, COMMIT — or ROLLBACK on any error (on the writer's thread).
    Synced at the commit (synchronous=FULL), whatever the transaction before asked for."""
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args, **kwargs)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return result


def append_rows(
    conn: sqlite3.Connection, batch: list[NewReceipt], packer: Packer
) -> list[AppendResult]:
    """Chain and insert a batch inside the caller's transaction (on the writer's thread),
    each body compressed by `packer` into body storage.

    A body already stored from the same source is a redelivery: it gets the first copy's
    sequence number and is not inserted again. A door identity already stored with
    another body is a replay: refused (`conflict`), nothing inserted. The identities
    are recorded in the same transaction as their receipts.
    """
    head = conn.execute("SELECT seq, chain_hash FROM receipts ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS)
    digests = [body_digest(receipt.body) for receipt in batch]
    known_ids = known_identities(conn, batch_identities(batch))
    linked = link_batch(batch, digests, known_digests(conn, digests), seq, prev_hash, known_ids)
    conn.executemany(f"INSERT INTO receipts ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", linked.rows)
    conn.executemany(INSERT_BODIES, packer.rows(linked.bodies))
    conn.executemany(
        "INSERT OR IGNORE INTO door_ids (source, identity, seq, body_sha256) VALUES (?,?,?,?)",
        linked.identities,
    )
    return linked.results


def known_identities(conn: sqlite3.Connection, identities: list[str]) -> KnownIdentities:
    """(source, identity) -> (seq, digest) for the identities already recorded."""
    known: KnownIdentities = {}
    for start in range(0, len(identities), 500):
        chunk = identities[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for source, identity, seq, digest in conn.execute(
            f"SELECT source, identity, seq, body_sha256 FROM door_ids WHERE identity IN ({marks})",
            chunk,
        ):
            known[(source, identity)] = (seq, digest)
    return known


def known_digests(conn: sqlite3.Connection, digests: list[bytes]) -> dict[tuple[str, bytes], int]:
    """(source, digest) -> the first receipt of that source with that body's digest, for
    the digests given that the ledger holds: looked up by their first 8 bytes (the index,
    ledger/sqlite.py), then compared whole."""
    wanted = set(digests)
    prefixes = list({digest[:8] for digest in wanted})
    known: dict[tuple[str, bytes], int] = {}
    for start in range(0, len(prefixes), 500):
        chunk = prefixes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for source, digest, seq in conn.execute(
            f"SELECT source, body_sha256, MIN(seq) FROM receipts "
            f"WHERE {DIGEST_PREFIX} IN ({marks}) GROUP BY source, body_sha256",
            chunk,
        ):
            if digest in wanted:
                known[(source, digest)] = seq
    return known
