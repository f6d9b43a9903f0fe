"""What a SQLite ledger file holds, read past the store with the stdlib sqlite3 module:
its bodies decompressed here, and every byte of its files — what the searches for a
secret (or, after an erasure, a person) look through."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.bodies import Dictionary, Stored, unpack


def stored_bodies(db: Path) -> dict[int, bytes]:
    """Every stored body, by receipt, decompressed here (bypassing the store)."""
    connection = sqlite3.connect(db)
    try:
        known = {
            int(ident): Dictionary(bytes(data))
            for ident, data in connection.execute("SELECT id, data FROM body_dictionaries")
        }
        found = connection.execute("SELECT seq, codec, dictionary, data FROM bodies").fetchall()
    finally:
        connection.close()
    return {
        int(seq): unpack(Stored(codec, ident, bytes(data)), known)
        for seq, codec, ident, data in found
    }


def database_bytes(db: Path) -> dict[str, bytes]:
    """The bytes of the database file, its WAL and shared memory, and of every body it
    stores, decompressed (a body is compressed on disk: a search of the files alone
    would miss what it holds)."""
    files = [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm"))]
    found = {path.name: path.read_bytes() for path in files if path.exists()}
    found["bodies, decompressed"] = b"\n".join(stored_bodies(db).values())
    return found
