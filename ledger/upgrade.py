"""Upgrades of a ledger laid out by an older release, run by `schema.ensure` inside its
write transaction (under the schema lock, so one instance upgrades and the others wait).

Version 2 → 3, `bodies_apart`: the bodies leave the chained `receipts` rows for body
storage (ledger/body_store.py), compressed with a dictionary trained per source on that
source's newest bodies. The chain is untouched — it covers the digests, which stay —
and every body comes back byte for byte (`verify` proves it). The space the old column
took is free pages in a SQLite file until `VACUUM` (README: Body storage), and dead
tuples on PostgreSQL until its VACUUM.

Version 3 → 4, `erasable`: a body row says which erasure record changed it (`erased_by`,
ledger/erasures.py); none has been, so the new column is empty.

Version 4 → 5, `digest_prefix`: the index of every receipt's whole body digest goes
(0.08x the bodies' raw bytes at 1,000,000 receipts): SQLite's appends look a digest up by
its first 8 bytes (an index the backend's own statements create), PostgreSQL's by its
unique (source, digest).
"""

from __future__ import annotations

from ledger import body_store
from ledger.sql import Tx

_CHUNK = 5000


async def bodies_apart(tx: Tx) -> None:
    """Move every body out of `receipts` into `bodies`, then drop the old column (a
    database already laid out so is left alone)."""
    if "body" not in await tx.columns("receipts"):
        return
    packer = body_store.Packer()
    for (source,) in await tx.fetch("SELECT DISTINCT source FROM receipts"):
        rows = await tx.fetch(
            "SELECT body FROM receipts WHERE source = ? ORDER BY seq DESC LIMIT ?",
            source,
            body_store.TRAIN_ON,
        )
        dictionary = await body_store.train(tx, source, [bytes(row[0]) for row in rows])
        if dictionary is not None:
            packer.use(source, dictionary)
    seq = 0
    while rows := await tx.fetch(
        "SELECT seq, source, body FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?", seq, _CHUNK
    ):
        bodies = [(int(row[0]), str(row[1]), bytes(row[2])) for row in rows]
        await tx.executemany(
            body_store.INSERT_BODIES + " ON CONFLICT (seq) DO NOTHING", packer.rows(bodies)
        )
        seq = bodies[-1][0]
    await tx.execute("ALTER TABLE receipts DROP COLUMN body")


async def erasable(tx: Tx) -> None:
    """Give `bodies` the column that names the erasure record that changed a body (a
    database that has it already is left alone)."""
    if "erased_by" not in await tx.columns("bodies"):
        await tx.execute("ALTER TABLE bodies ADD COLUMN erased_by {int}".format(**tx.types))


async def digest_prefix(tx: Tx) -> None:
    """Drop the index of the whole body digest (a database without it is left alone)."""
    await tx.execute("DROP INDEX IF EXISTS receipts_by_digest")
