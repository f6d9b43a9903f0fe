"""The PostgreSQL ledger store: several instances append to one ledger.

Order, chain and de-duplication are decided under one row lock: every append
transaction starts with `SELECT … FROM ledger_head WHERE id = 1 FOR UPDATE`, so appends
from all instances serialize there, sequence numbers are dense and in commit order (a
tailing reader never skips a gap that fills later), and each receipt's chain hash links
to the one committed before it. A body already stored from the same source — by this
instance or another — is found under the same lock and answered with the first copy's
sequence number. Within an instance, appends are group-committed (ledger/group.py): one
transaction per batch, and no request hears back before its batch's commit. A commit is
durable only if the server says so: a server whose `synchronous_commit` is `off` is
refused at start.

Each batch ends with a NOTIFY on `bounceledger_appended`, a wake-up for tailers on other
instances (who also poll, as a notification can be missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from ledger.chain import (
    GENESIS,
    ChainRow,
    batch_identities,
    body_digest,
    link_batch,
    verbatim_row,
    verify_chain,
)
from ledger.errors import StoreUnavailable
from ledger.group import MAX_BATCH, GroupCommit, GroupCommitted
from ledger.records import AppendResult, NewReceipt, Receipt
from ledger.store import redact
from ledger.writer import RECEIPT_COLUMNS

log = logging.getLogger("bounceledger.ledger")

# The layout this code reads and writes; a database with a newer one is refused.
SCHEMA_VERSION = 1
CHANNEL = "bounceledger_appended"
# Serializes schema creation between instances starting at once (any constant will do).
_SCHEMA_LOCK = 0x626C5F736368656D  # "bl_schem"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS bl_schema (
    id      integer PRIMARY KEY CHECK (id = 1),
    version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    seq          bigint  PRIMARY KEY,
    received_at  bigint  NOT NULL,
    source       text    NOT NULL,
    content_type text    NOT NULL,
    headers      text    NOT NULL,
    peer         text,
    body         bytea   NOT NULL,
    body_sha256  bytea   NOT NULL,
    chain_hash   bytea   NOT NULL,
    UNIQUE (source, body_sha256)
);
CREATE INDEX IF NOT EXISTS receipts_by_digest ON receipts (body_sha256);
CREATE TABLE IF NOT EXISTS ledger_head (
    id        integer PRIMARY KEY CHECK (id = 1),
    last_seq  bigint  NOT NULL,
    last_hash bytea   NOT NULL
);
INSERT INTO ledger_head VALUES (1, 0, '\\x{GENESIS.hex()}') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS door_ids (
    source      text    NOT NULL,
    identity    text    NOT NULL,
    seq         bigint  NOT NULL,
    body_sha256 bytea   NOT NULL,
    PRIMARY KEY (identity, source)
);
CREATE OR REPLACE FUNCTION receipts_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'receipts are append-only: % refused', TG_OP;
END
$$;
DROP TRIGGER IF EXISTS receipts_refuse_rows ON receipts;
CREATE TRIGGER receipts_refuse_rows BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION receipts_refuse_change();
DROP TRIGGER IF EXISTS receipts_refuse_truncate ON receipts;
CREATE TRIGGER receipts_refuse_truncate BEFORE TRUNCATE ON receipts
    FOR EACH STATEMENT EXECUTE FUNCTION receipts_refuse_change();
"""

_decode_headers = msgspec.json.Decoder(dict[str, str]).decode

# A connection, pooled or not.
Connection = asyncpg.Connection | PoolConnectionProxy

# What asyncpg raises when the server is down, restarting or refuses a statement.
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


def _receipt(row: asyncpg.Record) -> Receipt:
    return Receipt(
        seq=row[0],
        received_at=row[1],
        source=row[2],
        content_type=row[3],
        headers=_decode_headers(row[4]),
        peer=row[5],
        body=bytes(row[6]),
        body_sha256=bytes(row[7]),
        chain_hash=bytes(row[8]),
    )


class PostgresStore(GroupCommitted):
    """The ledger in one PostgreSQL database, shared by any number of instances."""

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        self.url = url
        self._pool = pool
        self._group = GroupCommit(lambda batch: self._write_batch(batch))
        self._listener: Connection | None = None

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0
    ) -> PostgresStore:
        """Connect, refuse a server that would not make commits durable, create or check
        the schema. StoreUnavailable names what is wrong (never the password)."""
        where = redact(url)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=timeout, command_timeout=60
            )
        except (*_DB_ERRORS, ValueError) as exc:
            raise StoreUnavailable(f"cannot connect to {where}: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                durable = await conn.fetchval("SHOW synchronous_commit")
                if durable == "off":
                    raise StoreUnavailable(
                        f"{where}: synchronous_commit is off, so a commit is not durable when "
                        "it returns and a 2xx could be lost; set it to on (or remote_apply, "
                        "remote_write, local) for this database or role"
                    )
                await _ensure_schema(conn, where)
        except BaseException:
            await pool.close()
            raise
        return cls(url, pool)

    async def close(self) -> None:
        """Finish queued appends, then close the connections."""
        await self._group.drain()
        if self._listener is not None:
            with contextlib.suppress(*_DB_ERRORS):
                await self._listener.close()
        await self._pool.close()

    # -- appends ---------------------------------------------------------------

    async def _write_batch(self, batch: list[NewReceipt]) -> list[AppendResult]:
        digests = [body_digest(receipt.body) for receipt in batch]
        async with self.transaction() as conn:
            head = await _lock_head(conn)
            rows = await conn.fetch(
                "SELECT source, body_sha256, seq FROM receipts WHERE body_sha256 = ANY($1)",
                list(set(digests)),
            )
            known = {(row[0], bytes(row[1])): row[2] for row in rows}
            ids = await conn.fetch(
                "SELECT source, identity, seq, body_sha256 FROM door_ids WHERE identity = ANY($1)",
                batch_identities(batch),
            )
            known_ids = {(row[0], row[1]): (row[2], bytes(row[3])) for row in ids}
            linked = link_batch(batch, digests, known, *head, known_ids)
            if linked.identities:
                await conn.executemany(
                    "INSERT INTO door_ids (source, identity, seq, body_sha256) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    linked.identities,
                )
            if linked.rows:
                await conn.copy_records_to_table(
                    "receipts", records=linked.rows, columns=RECEIPT_COLUMNS.split(", ")
                )
                await conn.execute(
                    "UPDATE ledger_head SET last_seq = $1, last_hash = $2 WHERE id = 1",
                    linked.seq,
                    linked.chain_hash,
                )
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(linked.seq))
        return linked.results

    async def append_verbatim(
        self, receipts: Iterable[Receipt], progress: Callable[[int], None] | None = None
    ) -> int:
        """Append already-chained receipts (an import or a migration), each continuing the
        chain, all in one transaction: AppendRejected names the first that does not, and
        nothing is written then. `progress` hears the running count after each chunk."""
        count = 0
        async with self.transaction() as conn:
            seq, prev_hash = await _lock_head(conn)
            rows: list[tuple[Any, ...]] = []
            for receipt in receipts:
                rows.append(verbatim_row(receipt, seq, prev_hash))
                seq, prev_hash = receipt.seq, receipt.chain_hash
                if len(rows) >= MAX_BATCH:
                    count += await self._copy(conn, rows, progress, count)
                    rows = []
            count += await self._copy(conn, rows, progress, count)
            await conn.execute(
                "UPDATE ledger_head SET last_seq = $1, last_hash = $2 WHERE id = 1", seq, prev_hash
            )
            if count:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(seq))
        self._group.appended.set()
        return count

    @staticmethod
    async def _copy(
        conn: Connection,
        rows: list[tuple[Any, ...]],
        progress: Callable[[int], None] | None,
        done: int,
    ) -> int:
        if rows:
            await conn.copy_records_to_table(
                "receipts", records=rows, columns=RECEIPT_COLUMNS.split(", ")
            )
            if progress:
                progress(done + len(rows))
        return len(rows)

    async def recheck_writable(self) -> bool:
        """After a failed commit: try a real (empty) append transaction again, and clear
        `write_error` if it succeeds."""
        try:
            await self._write_batch([])
        except Exception as exc:  # still failing: keep reporting it
            self.write_error = str(exc) or type(exc).__name__
            return False
        self.write_error = None
        return True

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """One transaction on a pooled connection; database errors as StoreUnavailable."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn
        except _DB_ERRORS as exc:
            raise StoreUnavailable(f"ledger write failed: {exc}") from exc

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Connection]:
        """A read-only transaction: every statement inside sees the same committed state."""
        try:
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                yield conn
        except _DB_ERRORS as exc:
            raise StoreUnavailable(f"ledger read failed: {exc}") from exc

    # -- reads -----------------------------------------------------------------

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self._pool.acquire() as conn:
                rows: list[asyncpg.Record] = await conn.fetch(query, *args)
                return rows
        except _DB_ERRORS as exc:
            raise StoreUnavailable(f"ledger read failed: {exc}") from exc

    async def read(self, after_seq: int = 0, limit: int = 1000) -> list[Receipt]:
        """Receipts with seq > after_seq, in order, at most `limit`."""
        rows = await self._fetch(
            f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2",
            after_seq,
            limit,
        )
        return [_receipt(row) for row in rows]

    async def list_receipts(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        source: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[Receipt]:
        """Receipts in sequence order, filtered by source and received time [since, until)."""
        rows = await self._fetch(
            f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq > $1 "
            "AND ($2::text IS NULL OR source = $2) AND received_at >= $3 AND received_at < $4 "
            "ORDER BY seq LIMIT $5",
            after_seq,
            source,
            since or 0,
            until or 2**62,
            limit,
        )
        return [_receipt(row) for row in rows]

    async def get(self, seq: int) -> Receipt | None:
        """One receipt by sequence number."""
        rows = await self._fetch(f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq = $1", seq)
        return _receipt(rows[0]) if rows else None

    async def last_seq(self) -> int:
        """The sequence number of the newest receipt (0 when empty)."""
        rows = await self._fetch("SELECT last_seq FROM ledger_head WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    async def wait_for_appends(self, timeout: float) -> None:
        """Wait until something was appended — by this instance, or by another (heard as a
        NOTIFY) — or `timeout` seconds."""
        await self._listen()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._group.appended.wait(), timeout)
        self._group.appended.clear()

    async def _listen(self) -> None:
        """LISTEN on a connection of its own (outside the pool); best effort: when it is
        lost, waiting falls back to the timeout, and the next wait listens again."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(self.url, timeout=5)
            await self._listener.add_listener(CHANNEL, self._heard)
        except (*_DB_ERRORS, ValueError) as exc:
            log.warning("cannot listen for appends on %s: %s", redact(self.url), exc)
            self._listener = None

    def _heard(self, *_: Any) -> None:
        self._group.appended.set()

    async def verify(self, chunk: int = 5000) -> tuple[int, int | None]:
        """Recompute the chain: (receipts checked, first broken seq or None)."""

        async def rows_after(seq: int) -> list[ChainRow]:
            records = await self._fetch(
                f"SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2",
                seq,
                chunk,
            )
            return [
                ChainRow(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), bytes(r[7]), bytes(r[8]))
                for r in records
            ]

        return await verify_chain(rows_after)


async def _lock_head(conn: Connection) -> tuple[int, bytes]:
    """Take the head row's lock (held to the end of the transaction): the ledger's last
    sequence number and chain hash, which no other append can move meanwhile."""
    head = await conn.fetchrow(
        "SELECT last_seq, last_hash FROM ledger_head WHERE id = 1 FOR UPDATE"
    )
    if head is None:
        raise StoreUnavailable("the ledger's head row is missing: the schema is damaged")
    return int(head[0]), bytes(head[1])


async def _ensure_schema(conn: Connection, where: str) -> None:
    """Create the schema on first use; refuse a database laid out by newer code."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        exists = await conn.fetchval("SELECT to_regclass('bl_schema') IS NOT NULL")
        if exists:
            version = await conn.fetchval("SELECT version FROM bl_schema WHERE id = 1")
            if version is not None and version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"{where}: the database's schema is version {version}, newer than this "
                    f"bounceledger knows ({SCHEMA_VERSION}); upgrade bounceledger"
                )
            if version == SCHEMA_VERSION:
                return
        await conn.execute(_SCHEMA)
        await conn.execute(
            "INSERT INTO bl_schema VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = $1",
            SCHEMA_VERSION,
        )
