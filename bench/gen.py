"""Generate a ledger of N SMTP2GO receipts straight into SQLite, fast and verifiable.

Bulk `executemany` in large transactions with the store's own DDL (`ledger.schema`), the
chain computed with `ledger.chain`, so `bounceledger verify` passes; the audit headers
are those the webhook door keeps (`api.webhooks.AUDIT_HEADERS`) of what SMTP2GO sends.
Bodies go to body storage as the store keeps them (`ledger.body_store.Packer`): without a
dictionary until `TRAIN_AFTER` are stored, then with one trained on the newest of them.
Generated ledgers are cached in bench/.cache, keyed by size, seed and a hash of what
they depend on (schema, kept headers, chain, this generator), so the lead can iterate
without regenerating.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from api.webhooks import AUDIT_HEADERS
from bench.payloads import Maker, population
from ledger import schema
from ledger import sqlite as sqlite_backend
from ledger.bodies import Dictionary
from ledger.bodies import train as train_dictionary
from ledger.body_store import INSERT_BODIES, TRAIN_AFTER, TRAIN_ON, Packer
from ledger.chain import GENESIS, body_digest, encode_headers, link_hash
from ledger.receipts import COLUMNS

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CHUNK = 50_000
SEED = 5
PEER = "203.0.113.10"


def fingerprint() -> str:
    """Changes whenever the stored receipts could differ: their DDL, the headers the door
    keeps, the chain, this generator and its payloads."""
    digest = hashlib.sha256(
        repr(
            (sqlite_backend.PRAGMAS, schema.TABLES, sqlite_backend.APPEND_ONLY, AUDIT_HEADERS)
        ).encode()
    )
    for path in (
        HERE.parent / "ledger/chain.py",
        HERE.parent / "ledger/bodies.py",
        HERE.parent / "ledger/body_store.py",
        HERE / "payloads.py",
        HERE / "gen.py",
    ):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


async def _create(path: Path) -> None:
    """The store's own schema, created as the store creates it on first open."""
    store = await sqlite_backend.SQLiteStore.open(path)
    await store.close()


def generate(path: Path, events: int, *, seed: int = SEED, deadline_s: float = 3600) -> float:
    """Write a fresh ledger of `events` receipts at `path`; returns the seconds it took."""
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    asyncio.run(_create(path))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # a generated file: no need to fsync
        insert = f"INSERT INTO receipts ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
        prev, rows = GENESIS, list[tuple[object, ...]]()
        bodies: list[tuple[object, ...]] = []
        packer, newest = Packer(), list[bytes]()
        for seq, (received, event) in enumerate(
            Maker(seed, population(events)).events(events), start=1
        ):
            sent = {
                "user-agent": "SMTP2GO",
                "content-type": event.content_type,
                "content-length": str(len(event.body)),
            }
            headers = encode_headers({k: v for k, v in sent.items() if k in AUDIT_HEADERS})
            digest = body_digest(event.body)
            prev = link_hash(
                prev,
                seq=seq,
                received_at=received,
                source="smtp2go",
                content_type=event.content_type,
                headers_json=headers,
                peer=PEER,
                body_sha256=digest,
            )
            rows.append((seq, received, "smtp2go", event.content_type, headers, PEER, digest, prev))
            bodies += packer.rows([(seq, "smtp2go", event.body)])
            if seq <= TRAIN_AFTER:  # as the store does: a dictionary once enough are stored
                newest.append(event.body)
                if seq == TRAIN_AFTER:
                    _train(conn, packer, newest[-TRAIN_ON:])
            if len(rows) >= CHUNK:
                _flush(conn, insert, rows, bodies)
                if time.perf_counter() - started > deadline_s:
                    raise TimeoutError(f"generating {events} receipts took over {deadline_s} s")
        _flush(conn, insert, rows, bodies)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def _flush(
    conn: sqlite3.Connection,
    insert: str,
    rows: list[tuple[object, ...]],
    bodies: list[tuple[object, ...]],
) -> None:
    conn.execute("BEGIN")
    conn.executemany(insert, rows)
    conn.executemany(INSERT_BODIES, bodies)
    conn.execute("COMMIT")
    rows.clear()
    bodies.clear()


def _train(conn: sqlite3.Connection, packer: Packer, samples: list[bytes]) -> None:
    """Train and keep the source's dictionary, as `ledger.body_store.save` does."""
    data = train_dictionary(samples)
    if data is None:
        return
    dictionary = Dictionary(data)
    conn.execute(
        "INSERT INTO body_dictionaries (id, source, created_at, samples, data) "
        "VALUES (?, ?, ?, ?, ?)",
        (dictionary.id, "smtp2go", 0, len(samples), data),
    )
    packer.use("smtp2go", dictionary)


def ledger(dest: Path, events: int, *, cache: bool = True, seed: int = SEED) -> str:
    """A ledger of `events` receipts at `dest` (copied from the cache when there);
    returns how it was obtained, for the report."""
    if not cache:
        return f"generated in {generate(dest, events, seed=seed):.1f} s"
    mark = fingerprint()
    name = f"ledger-{events}-s{seed}-{mark}.db"
    return from_cache(dest, name, mark, lambda path: generate(path, events, seed=seed))


def from_cache(dest: Path, name: str, mark: str, make: Callable[[Path], float]) -> str:
    """`dest` copied from bench/.cache/`name`, which `make` (returning its seconds) writes
    first when it is not there; cached files of the same kind (the name's first word)
    without `mark` in their name were made by other code and go. Says how, for the report."""
    CACHE.mkdir(exist_ok=True)
    for stale in CACHE.glob(name.split("-")[0] + "-*"):
        if mark not in stale.name:  # made by other code: never valid again
            stale.unlink()
    cached = CACHE / name
    how = "copied from cache"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        seconds = make(partial)
        partial.replace(cached)
        for suffix in ("-wal", "-shm"):
            partial.with_name(partial.name + suffix).unlink(missing_ok=True)
        how = f"generated in {seconds:.1f} s (now cached)"
    shutil.copyfile(cached, dest)
    return f"{how}: {cached.name}"
