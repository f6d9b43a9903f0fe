"""Sign-outs that every instance honours: the nonce of each session ended by signing out,
kept in the ledger's database until the session would have expired anyway.

A session cookie is verified by its signature alone (api/console/session.py), so without
this a cookie saved before sign-out would work for the rest of its eight hours, on every
instance. One row per sign-out; expired rows are purged at the next sign-out.
"""

from __future__ import annotations

import time

from ledger import Store
from ledger.sql import fetchrow

_TABLE = "console_signouts"
_LOCK = 0x626C5F7369676E  # "bl_sign": instances starting at once create the table in turn


# DDL a backend fills in with its own words (`Tx.types`).
_SCHEMA = f"CREATE TABLE IF NOT EXISTS {_TABLE} (nonce TEXT PRIMARY KEY, expires {{int}} NOT NULL)"


async def ensure(store: Store) -> None:
    """Create the table (at the service's start; one instance at a time)."""
    async with store.writing() as tx:
        await tx.lock(_LOCK)
        await tx.execute(_SCHEMA.format(**tx.types))


async def sign_out(store: Store, nonce: str, expires: int) -> None:
    """End the session with `nonce` on every instance (and forget ended sessions that
    have expired since)."""
    async with store.writing() as tx:
        await tx.execute(
            f"INSERT INTO {_TABLE} (nonce, expires) VALUES (?, ?) ON CONFLICT DO NOTHING",
            nonce,
            expires,
        )
        await tx.execute(f"DELETE FROM {_TABLE} WHERE expires < ?", int(time.time()))


async def signed_out(store: Store, nonce: str) -> bool:
    """Whether the session with `nonce` was ended by signing out."""
    async with store.reading() as tx:
        row = await fetchrow(tx, f"SELECT 1 FROM {_TABLE} WHERE nonce = ?", nonce)
    return row is not None
