"""The ledger's tables, as data every backend fills in with its own words (`Tx.types`) and
extends with what only it needs (ledger/sqlite.py: the append-only triggers, the digest
prefix index; ledger/postgres.py: the head row, its triggers, the unique digest), and the
schema version both keep in the same table.

- `receipts`: the log itself, append-only (each backend refuses UPDATE and DELETE in the
  database itself): each row chains its body's digest, not its bytes;
- `bodies`, `body_dictionaries`: the bodies, compressed, beside the log
  (ledger/body_store.py) — proven by the digests the chain covers; a body an erasure
  removed or redacted names the record that did (`erased_by`, ledger/erasures.py);
- `door_ids`: door identities (an SNS MessageId, a Mailgun token) -> the receipt that
  first carried one, and its body's digest: the same identity with other bytes is a
  replay, refused; written in the receipt's own transaction, outside the chain;
- `quarantine`: deliveries refused as undecodable after authentication
  (ledger/quarantine.py), kept aside, outside the chain, until replayed;
- `bl_schema`: the layout's version; a database laid out by newer code is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger import upgrade
from ledger.errors import StoreUnavailable
from ledger.sql import Tx, fetchrow, statements

# The layout this code reads and writes. 2: the quarantine. 3: bodies kept compressed
# apart from the receipts (ledger/upgrade.py moves them). 4: a body says which erasure
# record changed it (ledger/erasures.py). 5: no index of the whole body digest (SQLite
# indexes its first 8 bytes; PostgreSQL's unique (source, digest) serves its lookups). A
# SQLite ledger laid out before SQLite kept the version table is at version 2 (the tables
# are the same).
VERSION = 5
# Serializes creating the schema between instances starting at once.
LOCK = 0x626C5F736368656D  # "bl_schem"

# A delivery's own fields, as a receipt and a quarantined delivery both keep them (a
# quarantined one with its body beside them, a receipt's in `bodies`).
_DELIVERY = """
        received_at  {int}  NOT NULL,
        source       TEXT   NOT NULL,
        content_type TEXT   NOT NULL,
        headers      TEXT   NOT NULL,
        peer         TEXT,
        body_sha256  {blob} NOT NULL"""

TABLES = (
    """CREATE TABLE IF NOT EXISTS bl_schema (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS receipts (\n        seq {int} PRIMARY KEY,"
    + _DELIVERY
    + ",\n        chain_hash {blob} NOT NULL{receipts_constraints}\n    )",
    """CREATE TABLE IF NOT EXISTS bodies (
        seq        {int}    PRIMARY KEY,
        codec      SMALLINT NOT NULL,
        dictionary {int},
        size       {int}    NOT NULL,
        data       {blob}   NOT NULL,
        erased_by  {int}
    )""",
    """CREATE TABLE IF NOT EXISTS body_dictionaries (
        id         {int}   PRIMARY KEY,
        source     TEXT    NOT NULL,
        created_at {int}   NOT NULL,
        samples    INTEGER NOT NULL,
        data       {blob}  NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS door_ids (
        source      TEXT   NOT NULL,
        identity    TEXT   NOT NULL,
        seq         {int}  NOT NULL,
        body_sha256 {blob} NOT NULL,
        PRIMARY KEY (identity, source)
    ){table}""",
    "CREATE TABLE IF NOT EXISTS quarantine (\n        id {identity},"
    + _DELIVERY
    + """,
        body         {blob}  NOT NULL,
        reason       TEXT    NOT NULL,
        seen         INTEGER NOT NULL DEFAULT 1,
        replayed_seq {int}
    )""",
    "CREATE INDEX IF NOT EXISTS quarantine_by_digest ON quarantine (body_sha256)",
    "CREATE INDEX IF NOT EXISTS quarantine_by_source ON quarantine (source, replayed_seq)",
)


async def ensure(
    tx: Tx, where: str, extra: Sequence[str] = (), receipts_constraints: str = ""
) -> None:
    """Create the ledger's tables (and a backend's `extra` statements) on first use, in
    the caller's write transaction; refuse a database whose layout is newer than VERSION
    (StoreUnavailable naming `where`)."""
    await tx.lock(LOCK)
    if await tx.has_table("bl_schema"):
        row = await fetchrow(tx, "SELECT version FROM bl_schema WHERE id = 1")
        version = int(row[0]) if row else None
        if version is not None and version > VERSION:
            raise StoreUnavailable(
                f"{where}: the database's schema is version {version}, newer than this "
                f"bounceledger knows ({VERSION}); upgrade bounceledger"
            )
        if version == VERSION:
            return
    for statement in _all(tx, extra, receipts_constraints):
        await tx.execute(statement)
    await upgrade.bodies_apart(tx)
    await upgrade.erasable(tx)
    await upgrade.digest_prefix(tx)
    await tx.execute(
        "INSERT INTO bl_schema VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = ?",
        VERSION,
        VERSION,
    )


def _all(tx: Tx, extra: Iterable[str], receipts_constraints: str) -> list[str]:
    return [
        *statements(TABLES, tx.types, receipts_constraints=receipts_constraints),
        *extra,
    ]
